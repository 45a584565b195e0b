"""A close as the real engine publishes it reaches the database with its close_reason, and the API finds it.

The engine (a real EngineService on our own Redis, stepped by hand) opens an opportunity and
closes it when the spread falls back under the threshold; the real persistence drain moves
`signals:stream` into the table; GET /api/signals?close_reason= filters on the column.
"""

from __future__ import annotations

import time

import orjson
import pytest

from engine_worker.config import EngineConfig
from signals_app import persist
from signals_app.models import Signal
from signals_app.tests import api_fixtures
from signals_app.tests.api_fixtures import PublishingEngine

api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis

pytestmark = pytest.mark.django_db


def test_a_threshold_close_from_the_engine_is_stored_and_filtered_by_its_reason(client, api_redis, api_redis_server):
    engine = PublishingEngine(api_redis_server.url, EngineConfig(fees_pct={"binance": 0.1, "coinbase": 0.1}))
    now = time.time_ns() // 1_000_000
    engine.quote("binance", "BTC/USDT", 44_990.0, 45_000.0, now)
    engine.quote("coinbase", "BTC/USD", 45_400.0, 45_410.0, now + 1)  # crossed: net ~0.7 % > 0.5 %: open
    engine.quote("coinbase", "BTC/USD", 45_005.0, 45_010.0, now + 2)  # back under the threshold: close
    engine.publish(beat=False)
    assert persist.drain(api_redis).stored >= 2

    rows = list(Signal.objects.order_by("timestamp_ms", "id").values_list("status", "close_reason"))
    assert rows[0] == ("open", None)
    assert rows[-1] == ("close", "threshold")
    response = client.get("/api/signals", {"close_reason": "threshold"})
    assert response.status_code == 200
    found = orjson.loads(response.content)["results"]
    assert [(s["status"], s["close_reason"]) for s in found] == [("close", "threshold")]
    assert orjson.loads(client.get("/api/signals", {"close_reason": "stale"}).content)["results"] == []
