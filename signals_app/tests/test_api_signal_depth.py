"""GET /api/signals/<id>/depth: the depth view the engine left beside a signal (`signal:depth:{id}`).

Against a Redis of the module's own: 200 with the stored view byte for byte (one a real engine
wrote, and seeded ones), 404 when the key is absent or expired, 502 when it holds something else,
503 when Redis is away, 400 for an id no signal has, 405 for anything but GET.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from openapi_schema_validator import OAS31Validator

from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from signals_app.api_schema import SCHEMA
from signals_app.contracts.depth_view import DEPTH_VIEW_TTL_S, DepthView, depth_view_key, encode_depth_view
from signals_app.contracts.keys import SIGNALS_HISTORY
from signals_app.contracts.tick import book, encode_ticks
from signals_app.tests import api_fixtures

api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis

SIGNAL_ID = "BTC:binance:okx:1705670123456"


def url(signal_id: str) -> str:
    return f"/api/signals/{quote(signal_id, safe='')}/depth"


def documented(response: Any) -> Any:
    """The response's JSON body, checked against what /api/schema says of its status."""
    documented = SCHEMA["paths"]["/api/signals/{id}/depth"]["get"]["responses"][str(response.status_code)]
    schema = documented["content"]["application/json"]["schema"]
    body = orjson.loads(response.content)
    validator = OAS31Validator({**schema, "components": SCHEMA["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors
    return body


def make_view(signal_id: str = SIGNAL_ID, **fields: Any) -> DepthView:
    view: DepthView = {
        "id": signal_id,
        "status": "open",
        "timestamp": 1705670123456,
        "buy_exchange": "binance",
        "buy_symbol": "BTC/USDT",
        "sell_exchange": "okx",
        "sell_symbol": "BTC/USDT",
        "asks": [[100.0, 1.0], [100.2, 2.0]],
        "bids": [[101.5, 0.5], [101.3, 1.5]],
        "curve": [[0.0, 0.0, 0.0], [0.5, 50.05, 0.65], [1.0, 100.1, 1.1], [2.0, 200.5, 0.4]],
        "depth_size": 1.0,
        "depth_profit": 1.1,
        "threshold_pct": 0.5,
    }
    return {**view, **fields}  # type: ignore[typeddict-item]


def test_a_stored_view_is_served_byte_for_byte(client, api_redis):
    data = encode_depth_view(make_view())
    api_redis.set(depth_view_key(SIGNAL_ID), data, ex=DEPTH_VIEW_TTL_S)
    response = client.get(url(SIGNAL_ID))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.content == data


def test_the_view_a_real_engine_wrote_is_served(client, api_redis, api_redis_server):
    """Two books that cross: the engine opens a signal with depth and writes its view beside it."""
    binance = ([[99.9, 1.0]], [[100.0, 1.0], [100.2, 2.0], [101.0, 5.0]])
    okx = ([[101.5, 0.5], [101.3, 1.5], [100.0, 10.0]], [[101.6, 1.0]])
    config = EngineConfig(threshold_pct=0.5, fees_pct={"binance": 0.1, "okx": 0.1}, target_notional=500.0)
    service = EngineService(EngineServiceConfig(engine=config, redis_url=api_redis_server.url, health_port=0))
    now_ms = time.time_ns() // 1_000_000

    async def steps() -> None:
        try:
            service.handle_batch(
                [
                    encode_ticks([book("binance", "BTC/USDT", *binance, now_ms, now_ms * 1_000_000)]),
                    encode_ticks([book("okx", "BTC/USDT", *okx, now_ms, now_ms * 1_000_000 + 1)]),
                ]
            )
            assert await service.publisher.flush()
        finally:
            await service.publisher.close()

    asyncio.run(steps())
    (signal_json,) = api_redis.zrange(SIGNALS_HISTORY, 0, -1)
    signal = orjson.loads(signal_json)
    assert signal["depth_size"] is not None, signal

    response = client.get(url(signal["id"]))
    assert response.status_code == 200, response.content
    assert response.content == api_redis.get(depth_view_key(signal["id"]))
    assert 0 < api_redis.ttl(depth_view_key(signal["id"])) <= 3600  # DEPTH_VIEW_TTL_S
    view = documented(response)
    assert view["id"] == signal["id"]
    assert (view["asks"], view["bids"]) == (binance[1], okx[0])
    assert view["asks"][0][0] == signal["buy_price"]
    assert view["bids"][0][0] == signal["sell_price"]
    assert view["depth_size"] == signal["depth_size"]
    assert view["curve"][0] == [0.0, 0.0, 0.0]
    assert len(view["curve"]) > 2


@pytest.mark.parametrize(
    "signal_id",
    [
        'X<img src=x onerror="1">:binance:coinbase:1705670123456',
        "BTC:bin/ance:coin?base:1705670123456",  # a slash and a question mark, URL-encoded
        "ÉTH:binance:coinbase:1705670123456",
    ],
)
def test_any_id_is_looked_up_exactly(client, api_redis, signal_id):
    data = encode_depth_view(make_view(signal_id))
    api_redis.set(depth_view_key(signal_id), data)
    response = client.get(url(signal_id))
    assert response.status_code == 200, response.content
    assert response.content == data
    assert client.get(url(signal_id + "0")).status_code == 404


def test_an_absent_view_is_a_404(client, api_redis):
    response = client.get(url(SIGNAL_ID))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = documented(response)
    assert list(body) == ["error"]
    assert SIGNAL_ID in body["error"]


def test_an_expired_view_is_a_404(client, api_redis):
    api_redis.set(depth_view_key(SIGNAL_ID), encode_depth_view(make_view()), px=50)
    assert client.get(url(SIGNAL_ID)).status_code == 200
    time.sleep(0.15)
    assert client.get(url(SIGNAL_ID)).status_code == 404


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2, 3]", "not an object"),
        (orjson.dumps({**make_view(), "curve": None}), "no curve"),
        (orjson.dumps({k: v for k, v in make_view().items() if k != "asks"}), "no asks"),
    ],
)
def test_a_value_that_is_no_view_is_a_502(client, api_redis, stored, problem):
    api_redis.set(depth_view_key(SIGNAL_ID), stored)
    response = client.get(url(SIGNAL_ID))
    assert response.status_code == 502
    error = documented(response)["error"]
    assert error.startswith("malformed depth view"), error
    assert problem in error


def test_a_key_of_another_type_is_a_502(client, api_redis):
    # Redis refuses GET on a hash (WRONGTYPE): Redis answered, the key holds no depth view.
    api_redis.hset(depth_view_key(SIGNAL_ID), "a", "b")
    response = client.get(url(SIGNAL_ID))
    assert response.status_code == 502
    error = orjson.loads(response.content)["error"]
    assert error.startswith("malformed depth view"), error
    assert "WRONGTYPE" in error


def test_redis_down_is_a_503_not_a_500(client, settings):
    from arbsite.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get(url(SIGNAL_ID))
    assert response.status_code == 503
    assert "redis unavailable" in documented(response)["error"]


def test_an_id_longer_than_any_signal_id_is_a_400(client, api_redis):
    response = client.get(url("B" * 257))
    assert response.status_code == 400
    assert documented(response)["error"].startswith("id: ")
    assert client.get(url("B" * 256)).status_code == 404


def test_only_get(client, api_redis):
    api_redis.set(depth_view_key(SIGNAL_ID), encode_depth_view(make_view()))
    response = client.post(url(SIGNAL_ID))
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    documented(response)


def test_no_id_or_no_depth_suffix_is_the_api_404(client, api_redis):
    for path in ("/api/signals//depth", f"/api/signals/{SIGNAL_ID}/depths", f"/api/signals/{SIGNAL_ID}"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "no such endpoint" in orjson.loads(response.content)["error"], path
