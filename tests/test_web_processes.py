"""Two web processes (daphne) on one Redis: every browser gets every signal exactly once, in order.

Each process relays Redis `arbitrage:signals` to its own browsers only (in process, each browser's
queue; the Channels group its consumers join is the process's own too): were the browsers of both
processes fed by each relay, every browser would get every signal twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from websockets.asyncio.client import connect
from websockets.typing import Origin

from arbsite.redis_server import EmbeddedRedis
from signals_app.contracts.keys import SIGNALS_CHANNEL
from signals_app.tests.channels_helpers import signal_json
from tests.procs import Daphne, wait_until

SIGNALS = 40


@pytest.fixture
def two_web_processes(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[list[Daphne]]:
    started: list[Daphne] = []
    try:
        started.extend(Daphne({"REDIS_URL": redis_server.url}, tmp_path) for _ in range(2))
        yield started
    finally:
        for daphne in started:
            if daphne.popen.poll() is None:
                daphne.stop()


def test_every_browser_gets_each_signal_once_from_either_web_process(
    two_web_processes: list[Daphne], redis_server: EmbeddedRedis
) -> None:
    payloads = [signal_json(1705670123456 + i) for i in range(SIGNALS)]

    async def body() -> list[list[bytes]]:
        browsers = []
        for daphne in two_web_processes:
            for _ in range(2):
                browsers.append(
                    await connect(
                        f"ws://127.0.0.1:{daphne.port}/ws/signals/", origin=Origin(f"http://127.0.0.1:{daphne.port}")
                    )
                )
        client = redis.Redis.from_url(redis_server.url)
        # Both processes' relays are subscribed before anything is published.
        await asyncio.to_thread(
            wait_until, lambda: client.pubsub_numsub(SIGNALS_CHANNEL)[0][1] == 2, 10, "two relay subscriptions"
        )
        for payload in payloads:
            client.publish(SIGNALS_CHANNEL, payload)
        received: list[list[bytes]] = []
        for ws in browsers:
            frames: list[bytes] = []
            try:
                while True:  # everything, and then a second of silence: a duplicate would show
                    frame = await asyncio.wait_for(ws.recv(), timeout=1.0)
                    frames.append(frame.encode() if isinstance(frame, str) else frame)
            except TimeoutError:
                pass
            received.append(frames)
            await ws.close()
        client.close()
        return received

    received = asyncio.run(body())
    assert len(received) == 4
    for frames in received:
        assert frames == payloads
    assert [daphne.stop() for daphne in two_web_processes] == [0, 0]
