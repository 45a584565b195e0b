"""The price cache follows a book-lost tick: a real EngineService on a private Redis deletes
`price:{exchange}:{symbol}` when the market's quote went with its book, and keeps it when a newer
quote tick (Binance's bookTicker, Kraken's ticker) still holds the top."""

from __future__ import annotations

import asyncio
import time

import orjson
import redis

from arbsite.redis_server import EmbeddedRedis
from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from signals_app.contracts.keys import price_key
from signals_app.contracts.tick import book, book_lost, encode_ticks, quote

BIDS = [[99.9, 1.0], [99.8, 2.0]]
ASKS = [[100.0, 1.0], [100.1, 2.0]]


def test_a_lost_book_deletes_the_cached_price_only_when_the_quote_went_with_it() -> None:
    server = EmbeddedRedis().start()
    client = redis.Redis.from_url(server.url)
    service = EngineService(EngineServiceConfig(engine=EngineConfig(), redis_url=server.url, health_port=0))

    async def steps() -> None:
        now_ms = time.time_ns() // 1_000_000
        ns = now_ms * 1_000_000
        try:
            service.handle_batch(
                [
                    encode_ticks([book("okx", "BTC/USDT", BIDS, ASKS, now_ms, ns)]),
                    encode_ticks([book("binance", "BTC/USDT", BIDS, ASKS, now_ms, ns)]),
                    encode_ticks([quote("binance", "BTC/USDT", 99.95, 100.0, 0.5, 0.5, now_ms, ns + 1)]),
                ]
            )
            assert await service.publisher.flush()
            assert client.get(price_key("okx", "BTC/USDT")) is not None
            service.handle_batch(
                [
                    encode_ticks(
                        [book_lost("okx", "BTC/USDT", now_ms, ns + 2), book_lost("binance", "BTC/USDT", now_ms, ns + 2)]
                    )
                ]
            )
            assert await service.publisher.flush()
        finally:
            await service.publisher.close()

    try:
        asyncio.run(steps())
        assert client.get(price_key("okx", "BTC/USDT")) is None
        raw = client.get(price_key("binance", "BTC/USDT"))
        assert isinstance(raw, bytes)
        cached = orjson.loads(raw)
        assert (cached["type"], cached["bid"], cached["ask"]) == ("quote", 99.95, 100.0)
        assert service.bad_messages == 0
    finally:
        client.close()
        server.cleanup()
