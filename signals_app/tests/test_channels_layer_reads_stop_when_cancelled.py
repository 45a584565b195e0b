"""A browser that leaves is let go at once: its consumer's blocking channel-layer read stops when cancelled.

Channels cancels that read when the socket closes. A cancellation that is lost
leaves the consumer in its blocking Redis read (BZPOPMIN, again and again) until
daphne kills it 10 s later, logging it, for browsers that leave just after a
signal: at 200 signals/s, nearly all of them. Python 3.11's asyncio.wait_for
loses a cancellation that lands as the awaited send completes (CPython gh-86296),
and redis-py sends through it whenever the connection has a socket_timeout (5 s
by default since redis-py 8), so the project's channel layer must have none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer

from arbsite.redis_server import EmbeddedRedis
from signals_app.tests.channels_helpers import private_redis, run

POSITIONS = 60  # event-loop steps into the read at which it is cancelled: every stage of it


@pytest.fixture
def redis_server(settings: Any) -> Iterator[EmbeddedRedis]:
    with private_redis(settings) as server:
        yield server


def test_a_read_stops_wherever_the_cancellation_lands(redis_server: EmbeddedRedis) -> None:
    async def body() -> None:
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        lost_at = []
        for steps in range(POSITIONS):
            read = asyncio.ensure_future(layer.receive(channel))
            for _ in range(steps):
                await asyncio.sleep(0)
            read.cancel()
            done, _ = await asyncio.wait({read}, timeout=0.5)
            if not done:
                lost_at.append(steps)
                while not read.done():  # clean up for the next position
                    read.cancel()
                    await asyncio.wait({read}, timeout=0.1)
        assert lost_at == [], f"cancellations lost at these steps into the read: {lost_at}"

    run(body)
