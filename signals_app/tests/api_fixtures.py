"""Fixtures and builders for the API and admin tests: a private Redis, signals, quotes, a real engine, a fake ingestor.

Test modules import what they use from here (a shared conftest.py belongs to everyone).
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis

from arbsite.redis_server import EmbeddedRedis
from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from signals_app.contracts.signal import SIGNAL_TYPE, action, signal_id
from signals_app.contracts.tick import encode, encode_ticks, quote
from signals_app.models import Signal
from signals_app.persist import signal_row


@pytest.fixture(scope="module")
def api_redis_server() -> Iterator[EmbeddedRedis]:
    """A Redis of our own for the module (never the machine's), on a free port."""
    server = EmbeddedRedis().start()
    yield server
    server.cleanup()


@pytest.fixture
def api_redis(api_redis_server: EmbeddedRedis, settings: Any) -> Iterator[redis.Redis]:
    """An empty Redis, and the views pointed at it (REDIS_URL overridden for this test)."""
    settings.REDIS_URL = api_redis_server.url
    client = redis.Redis.from_url(api_redis_server.url)
    client.flushdb()
    yield client
    client.close()


def make_signal(
    timestamp: int,
    asset: str = "BTC",
    buy: str = "binance",
    sell: str = "coinbase",
    status: str = "open",
    opened_at: int | None = None,
    net_spread_pct: float = 0.6123,
    size: float | None = 0.5,
) -> dict[str, Any]:
    """A signal dict in the contract's field order, as the engine publishes it."""
    opened = timestamp if opened_at is None else opened_at
    buy_price, sell_price = 45000.0, 45300.0
    profit_per_unit = 209.7
    return {
        "type": SIGNAL_TYPE,
        "id": signal_id(asset, buy, sell, opened),
        "status": status,
        "action": action(buy, sell),
        "symbol": f"{asset}/USDT",
        "asset": asset,
        "buy_exchange": buy,
        "sell_exchange": sell,
        "buy_symbol": f"{asset}/USDT",
        "sell_symbol": f"{asset}/USD",
        "buy_price": buy_price,
        "sell_price": sell_price,
        "spread_pct": 0.6667,
        "net_spread_pct": net_spread_pct,
        "size": size,
        "profit_per_unit": profit_per_unit,
        "profit_estimate": None if size is None else profit_per_unit * size,
        "fees_pct": {buy: 0.1, sell: 0.6},
        "opened_at": opened,
        "duration_ms": timestamp - opened,
        "peak_net_spread_pct": net_spread_pct,
        "tick_recv_ns": timestamp * 1_000_000 - 1000,
        "timestamp": timestamp,
    }


_stream_ids = iter(range(1, 10**9))


def store_signal(signal: dict[str, Any], payload: bytes | None = None) -> Signal:
    """A Signal row exactly as the persistence task writes it (signals_app.persist.signal_row)."""
    data = orjson.dumps(signal) if payload is None else payload
    row = signal_row(f"{signal['timestamp']}-{next(_stream_ids)}", data)
    row.save()
    return row


class PublishingEngine:
    """A real EngineService on the test Redis, stepped by hand: `quote` feeds it, `publish` writes Redis."""

    def __init__(self, redis_url: str, config: EngineConfig) -> None:
        self.service = EngineService(EngineServiceConfig(engine=config, redis_url=redis_url))

    def quote(
        self,
        exchange: str,
        symbol: str,
        bid: float,
        ask: float,
        recv_ms: int,
        bid_size: float | None = 1.0,
        ask_size: float | None = 1.0,
    ) -> bytes:
        """One quote tick through the engine's step; returns its JSON as the price cache will hold it."""
        tick = quote(exchange, symbol, bid, ask, bid_size, ask_size, recv_ms, recv_ms * 1_000_000)
        self.service.handle_batch([encode_ticks([tick])])
        return encode(tick)

    def publish(self, beat: bool = True) -> None:
        """What the engine's loops do: flush signals and quotes, then (`beat`) one heartbeat step: its matrix."""

        async def steps() -> None:
            try:
                assert await self.service.publisher.flush()
                if beat:
                    await self.service.beat()
            finally:
                await self.service.publisher.close()

        asyncio.run(steps())


class FakeIngestor:
    """A tiny HTTP server answering /health with whatever body and status the test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict[str, Any] = {"status": "ok", "not_live": [], "feeds": {}}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = orjson.dumps(owner.body)
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def set_feeds(self, feeds: dict[str, dict[str, Any]]) -> None:
        not_live = [name for name, feed in feeds.items() if feed["state"] != "live"]
        self.status = 503 if not_live else 200
        self.body = {"status": "degraded" if not_live else "ok", "not_live": not_live, "feeds": feeds}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def live_feed(age_s: float = 0.05, rate: float = 120.5) -> dict[str, Any]:
    """A feed as the ingestor's /health reports it (ingest_worker.feed.Feed.snapshot), trimmed."""
    return {"state": "live", "last_message_age_s": age_s, "frames": 1000, "message_rate": rate, "ticks_sent": 990}


@pytest.fixture
def fake_ingestor(settings: Any) -> Iterator[FakeIngestor]:
    """A fake ingestor /health with every configured feed live, and the views pointed at it."""
    ingestor = FakeIngestor()
    settings.INGESTOR_HEALTH_URL = ingestor.url
    settings.EXCHANGES = ["binance", "coinbase"]
    ingestor.set_feeds({"binance": live_feed(), "coinbase": live_feed(0.4, 12.0)})
    yield ingestor
    ingestor.close()
