"""End to end over real sockets: the ingestor's pusher on loopback TCP, a running EngineService
(its own ZeroMQ PULL, a private Redis). A frame of many book ticks (a Binance REST seed, the
books a reconnection lost) crosses as one message, and every tick of it is applied: each
market's levels are the ones sent, the book-lost tick forgets its market's, the quote and the
trade count, and the engine counts one message per frame."""

from __future__ import annotations

import asyncio
import time

import uvloop

from arbsite.redis_server import EmbeddedRedis, free_port
from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from ingest_worker.push import TickPusher
from signals_app.contracts.tick import FEED_UP, Tick, book, book_lost, quote, trade

MARKETS = 200
LEVELS = 20


def books(now_ns: int) -> list[Tick]:
    ms = now_ns // 1_000_000
    out = []
    for n in range(MARKETS):
        mid = 100.0 + n
        bids = [[mid - 0.01 * (k + 1), 1.0 + k] for k in range(LEVELS)]
        asks = [[mid + 0.01 * (k + 1), 2.0 + k] for k in range(LEVELS)]
        out.append(book("binance", f"A{n}/USDT", bids, asks, ms, now_ns))
    return out


def test_a_frame_of_many_book_ticks_is_one_message_and_every_tick_is_applied() -> None:
    server = EmbeddedRedis().start()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pusher = TickPusher(endpoint)
    service = EngineService(
        EngineServiceConfig(engine=EngineConfig(), zmq_endpoint=endpoint, redis_url=server.url, health_port=0)
    )

    async def until(condition: object, what: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
            await asyncio.sleep(0.01)

    async def body() -> None:
        running = asyncio.create_task(service.run())
        try:
            pusher.send_feed_state("binance", FEED_UP, 1)  # held until the engine connects, then first
            await until(lambda: service.feed_states == {"binance": FEED_UP}, "the engine connected")
            now_ns = time.time_ns()
            first = books(now_ns)
            assert pusher.send_ticks(first) == MARKETS  # one frame, one message
            await until(lambda: service.engine.ticks == MARKETS, "the frame's every book applied")
            lost_and_more = [
                book_lost("binance", "A7/USDT", now_ns // 1_000_000, now_ns + 1),
                *books(now_ns + 2)[100:],
                quote("binance", "B/USDT", 1.0, 1.1, 1.0, 1.0, now_ns // 1_000_000, now_ns + 3),
                trade("binance", "B/USDT", 1.05, 1.0, now_ns // 1_000_000, now_ns + 3),
            ]
            assert pusher.send_ticks(lost_and_more) == len(lost_and_more)
            await until(lambda: service.engine.ticks == MARKETS + len(lost_and_more), "the second frame applied")
        finally:
            service.stop.set()
            await asyncio.wait_for(running, 10)

        assert (service.messages, service.bad_messages, service.bad_ticks) == (3, 0, 0)  # the state and two frames
        assert service.feed_states == {"binance": FEED_UP}
        assert service.engine.trades == 1
        for sent in first:
            entry = service.engine.book.get("binance", sent.symbol)
            assert entry is not None, sent.symbol
            levels = (entry[0].bids, entry[0].asks)
            assert levels == ((None, None) if sent.symbol == "A7/USDT" else (sent.bids, sent.asks)), sent.symbol
        assert not service.engine.has_quote("binance", "A7/USDT")  # its quote went with its book
        assert service.engine.has_quote("binance", "B/USDT")

    try:
        uvloop.run(asyncio.wait_for(body(), 30))
    finally:
        pusher.close()
        server.cleanup()
