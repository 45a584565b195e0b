"""Each browser's bounded queue: every signal once per browser, in order; a browser that stops reading
loses its backlog, is told how many it missed (MISSED), gets the newer signals, and the count shows
on /api/health. Real Redis, the real ASGI application, real consumers and relay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from channels.testing import WebsocketCommunicator

from arbsite.asgi import application
from arbsite.redis_server import EmbeddedRedis, free_port
from signals_app import relay as relay_module
from signals_app.contracts.keys import SIGNALS_CHANNEL
from signals_app.contracts.live_feed import BROWSER_QUEUE_MAX, decode_missed, missed_message
from signals_app.tests.channels_helpers import (
    ALLOWED_ORIGIN,
    connected_browser,
    eventually,
    private_redis,
    publish,
    run,
    signal_json,
)

T0 = 1705670123456


@pytest.fixture
def redis_server(settings: Any) -> Iterator[EmbeddedRedis]:
    with private_redis(settings) as server:
        yield server


class SlowBrowser:
    """A WebSocket client whose socket takes `window` unread frames and then pushes back.

    The consumer's write of a further frame waits (as a full TCP window makes a server's write
    wait) until the test reads one with `read`.
    """

    def __init__(self, window: int = 1) -> None:
        self.unread: asyncio.Queue[None] = asyncio.Queue(maxsize=window)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            async def pushing_back(message: dict[str, Any]) -> None:
                if message["type"] == "websocket.send":
                    await self.unread.put(None)
                await send(message)

            await application(scope, receive, pushing_back)

        headers = [(b"host", b"127.0.0.1:3000"), (b"origin", ALLOWED_ORIGIN)]
        self.communicator = WebsocketCommunicator(app, "/ws/signals/", headers=headers)

    async def connect(self) -> None:
        connected, _ = await self.communicator.connect(timeout=5)
        assert connected

    async def read(self) -> str:
        text = await self.communicator.receive_from(timeout=5)
        self.unread.get_nowait()
        return str(text)


async def publish_all(client: aioredis.Redis, payloads: list[bytes]) -> None:
    pipe = client.pipeline(transaction=False)
    for payload in payloads:
        pipe.publish(SIGNALS_CHANNEL, payload)
    await pipe.execute()


def relay_stats() -> dict[str, Any]:
    relay = relay_module.current_relay()
    assert relay is not None
    return relay.stats()


async def relay_reaches(what: str, timeout_s: float = 10.0, **expected: int) -> None:
    """Wait until the relay's stats show every `expected` value."""

    async def reached() -> bool:
        stats = relay_stats()
        return all(stats[name] == value for name, value in expected.items())

    await eventually(reached, what, timeout_s)


def test_two_browsers_of_one_process_each_get_every_signal_once_in_order(redis_server: EmbeddedRedis) -> None:
    payloads = [signal_json(T0 + i, status="update", opened_at=T0) for i in range(200)]

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        browsers = [await connected_browser(), await connected_browser()]
        await publish_all(client, payloads)
        for browser in browsers:
            assert [(await browser.receive_from(timeout=5)).encode() for _ in payloads] == payloads
            assert await browser.receive_nothing(timeout=0.3)  # no repeat
        assert relay_stats()["relayed"] == len(payloads)
        assert (relay_stats()["missed"], relay_stats()["queued"]) == (0, 0)
        for browser in browsers:
            await browser.disconnect()
        await relay_reaches("both browsers detached", browsers=0)
        await client.aclose()

    run(body)


@pytest.mark.django_db
def test_a_browser_that_stops_reading_is_told_what_it_missed_then_gets_the_newer_signals(
    redis_server: EmbeddedRedis, settings: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    first = [signal_json(T0 + i, status="update", opened_at=T0) for i in range(3)]
    # A full queue, one more (which empties it), and a few newer ones.
    burst = [signal_json(T0 + 10 + i, status="update", opened_at=T0) for i in range(BROWSER_QUEUE_MAX + 10)]
    kept = burst[BROWSER_QUEUE_MAX:]
    stopped_relay: list[relay_module.SignalRelay] = []

    async def body() -> None:
        redis_client = aioredis.Redis.from_url(redis_server.url)
        slow = SlowBrowser(window=1)
        await slow.connect()
        # Another browser, reading all along. Its queue cannot fill during the burst: the relay
        # reads the subscription from a stream buffer that holds at most a few hundred signals,
        # and the reader's drain runs each time the relay waits for more.
        reader = await connected_browser()
        await publish(redis_client, first[0])
        assert (await slow.read()).encode() == first[0]
        # The next one sits unread in the socket; the one after is being written (the write waits).
        for payload in first[1:]:
            await publish(redis_client, payload)
        await relay_reaches("the slow browser's write of the third signal waits", relayed=3, queued=0)
        await publish_all(redis_client, burst)
        # Relayed, and the reading browser's queue drained: what is left queued is the slow one's.
        await relay_reaches("the burst relayed", 15.0, relayed=3 + len(burst), queued=len(kept))
        stats = relay_stats()
        assert (stats["missed"], stats["overflows"]) == (BROWSER_QUEUE_MAX, 1)

        frames = [await slow.read() for _ in range(2 + 1 + len(kept))]
        assert [frame.encode() for frame in frames[:2]] == first[1:]
        # `since`: the last signal it was sent before the gap, the one whose write was waiting.
        assert frames[2] == missed_message(BROWSER_QUEUE_MAX, T0 + 2)
        assert decode_missed(frames[2]) == {"type": "MISSED", "missed": BROWSER_QUEUE_MAX, "since": T0 + 2}
        assert [frame.encode() for frame in frames[3:]] == kept
        assert await slow.communicator.receive_nothing(timeout=0.3)
        # The reading browser lost nothing and was told nothing.
        everything = first + burst
        assert [(await reader.receive_from(timeout=5)).encode() for _ in everything] == everything
        assert await reader.receive_nothing(timeout=0.1)

        await slow.communicator.disconnect()
        await reader.disconnect()
        await redis_client.aclose()
        relay = relay_module.current_relay()
        assert relay is not None
        stopped_relay.append(relay)

    with caplog.at_level(logging.WARNING, logger="signals_app.relay"):
        run(body, timeout=30)
    warnings = [record.getMessage() for record in caplog.records if "fell" in record.getMessage()]
    assert len(warnings) == 1
    assert f"{BROWSER_QUEUE_MAX} signals behind" in warnings[0]

    # /api/health shows this process's relay, with the count (the relay object of the run above).
    settings.INGESTOR_HEALTH_URL = f"http://127.0.0.1:{free_port()}/health"
    relay_module._relay = stopped_relay[0]
    try:
        response = client.get("/api/health")
    finally:
        relay_module._relay = None
    shown = orjson.loads(response.content)["relay"]
    assert (shown["missed"], shown["overflows"], shown["queue_max"]) == (BROWSER_QUEUE_MAX, 1, BROWSER_QUEUE_MAX)
    assert shown["relayed"] == 3 + len(burst)


def test_the_missed_message_reads_back_and_signals_are_not_taken_for_it() -> None:
    assert decode_missed(missed_message(5, None)) == {"type": "MISSED", "missed": 5, "since": None}
    assert decode_missed(missed_message(1, T0)) == {"type": "MISSED", "missed": 1, "since": T0}
    for frame in [signal_json(T0), b"{}", b"not json", b'{"type": "MISSED", "missed": 0, "since": null}']:
        assert decode_missed(frame) is None
    assert decode_missed(b'{"type": "MISSED", "missed": true, "since": null}') is None
    assert decode_missed(b'{"type": "MISSED", "missed": 3, "since": "yesterday"}') is None


def test_a_queue_that_overflows_twice_before_its_browser_reads_reports_both_in_one_message() -> None:
    async def body() -> None:
        feed = relay_module.BrowserFeed(capacity=3)
        assert [feed.put(f"s{i}", T0 + i) for i in range(3)] == [0, 0, 0]
        assert feed.put("s3", T0 + 3) == 3  # full: s0..s2 dropped, s3 kept
        assert [feed.put(f"s{i}", T0 + i) for i in range(4, 6)] == [0, 0]
        assert feed.put("s6", T0 + 6) == 3  # full again before anything was read: s3..s5
        # Nothing was sent before the gap: no `since`.
        assert await feed.next_frame() == missed_message(6, None)
        assert await feed.next_frame() == "s6"
        assert len(feed) == 0
        # Then a gap after a signal sent: `since` is that signal's timestamp.
        for i in range(7, 11):
            feed.put(f"s{i}", T0 + i)
        assert [await feed.next_frame() for _ in range(2)] == [missed_message(3, T0 + 6), "s10"]
        waiting = asyncio.ensure_future(feed.next_frame())
        await asyncio.sleep(0.01)
        assert not waiting.done()  # an empty queue waits for the next signal
        feed.put("s11", None)
        assert await asyncio.wait_for(waiting, 1) == "s11"

    asyncio.run(body())
