"""Signals the engine had to drop are counted where an operator looks: its /health, its /metrics, /api/health.

A real EngineService on a private Redis, its publishing task not running (as when Redis is
away), holds at most `max_pending` signals: crossing markets of five assets raise five opens
and the three oldest are dropped. The engine's own HTTP server then serves /health and
/metrics, its heartbeat step writes to Redis, and the web's /api/health reads it there.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import orjson
import pytest

from arbsite.health import start_http
from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from signals_app.contracts.tick import encode_ticks, quote
from signals_app.tests import api_fixtures

api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis
fake_ingestor = api_fixtures.fake_ingestor

pytestmark = pytest.mark.django_db

ASSETS = ("BTC", "ETH", "SOL", "XRP", "ADA")


def crossing_quotes(now_ms: int) -> list[bytes]:
    """Each asset 1 % dearer on coinbase than on binance: one open per asset, buy binance, sell coinbase."""
    messages = []
    for asset in ASSETS:
        for exchange, symbol, bid, ask in (
            ("binance", f"{asset}/USDT", 99.9, 100.0),
            ("coinbase", f"{asset}/USD", 101.0, 101.1),
        ):
            messages.append(encode_ticks([quote(exchange, symbol, bid, ask, 1.0, 1.0, now_ms, now_ms * 1_000_000)]))
    return messages


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:  # 503 while the engine has no Redis: the body says so
        return error.code, error.read()


def test_dropped_signals_are_on_the_engines_health_metrics_and_api_health(
    client, api_redis, api_redis_server, fake_ingestor
):
    config = EngineServiceConfig(
        engine=EngineConfig(fees_pct={"binance": 0.1, "coinbase": 0.1}), redis_url=api_redis_server.url, health_port=0
    )
    service = EngineService(config)
    service.publisher.max_pending = 2
    service.handle_batch(crossing_quotes(time.time_ns() // 1_000_000))
    assert service.engine.lifecycle.counts["open"] == len(ASSETS)
    assert service.publisher.pending() == 2

    async def engine_views() -> tuple[dict[str, object], str]:
        server = await start_http("127.0.0.1", 0, {"/health": service.health, "/metrics": service.metrics})
        port = server.sockets[0].getsockname()[1]
        try:
            status, health = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/health")
            assert (status, orjson.loads(health)["failing"]) == (503, ["redis"])  # never connected yet
            _, metrics = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
            await service.beat()  # the heartbeat step: engine:heartbeat (and engine:markets) on Redis
        finally:
            server.close()
            await service.publisher.close()
        return orjson.loads(health), metrics.decode()

    health, metrics = asyncio.run(engine_views())
    assert health["signals_dropped"] == 3
    assert health["signals_pending"] == 2
    assert (health["signals_holding"], health["signals_held"]) == (2, len(ASSETS))
    assert "arb_engine_signals_dropped_total 3.0" in metrics.splitlines()

    engine_check = orjson.loads(client.get("/api/health").content)["engine"]
    assert engine_check["ok"] is True, engine_check
    assert engine_check["signals_dropped"] == 3
    assert engine_check["signals_pending"] == 2
