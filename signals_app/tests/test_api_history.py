"""GET /api/signals/history: the newest `limit` of signals:history, oldest first, byte for byte."""

from __future__ import annotations

import orjson
import pytest

from signals_app.contracts import keys
from signals_app.tests import api_fixtures
from signals_app.tests.api_fixtures import make_signal

# Fixtures this module uses, brought into its namespace where pytest looks for them.
api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis

URL = "/api/signals/history"


def publish(client, count: int, start_ms: int = 1_705_670_000_000) -> list[bytes]:
    """ZADD `count` signals the way the engine's publisher does; their JSON, oldest first."""
    published = []
    for i in range(count):
        signal = make_signal(start_ms + i * 10, asset=["BTC", "ETH"][i % 2], status=["open", "update", "close"][i % 3])
        data = orjson.dumps(signal)
        client.zadd(keys.SIGNALS_HISTORY, {data: signal["timestamp"]})
        published.append(data)
    return published


def test_default_limit_is_the_newest_50_oldest_first(client, api_redis):
    published = publish(api_redis, 80)
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = orjson.loads(response.content)
    assert [s["timestamp"] for s in body] == [orjson.loads(d)["timestamp"] for d in published[-50:]]


def test_history_is_byte_exact_published_json(client, api_redis):
    published = publish(api_redis, 5)
    # Formatting the API would never produce itself: the bytes must come back untouched.
    odd = b'{"type":"ARBITRAGE_OPPORTUNITY","id":"X:1","note":"caf\xc3\xa9 \\u00e9 1.0e2","timestamp":1705670099999}'
    api_redis.zadd(keys.SIGNALS_HISTORY, {odd: 1705670099999})
    response = client.get(URL, {"limit": "6"})
    assert response.content == b"[" + b",".join([*published, odd]) + b"]"


@pytest.mark.parametrize(("limit", "expected"), [("1", 1), ("7", 7), ("1000", 20)])
def test_limit_takes_the_newest(client, api_redis, limit, expected):
    published = publish(api_redis, 20)
    response = client.get(URL, {"limit": limit})
    assert response.status_code == 200
    assert response.content == b"[" + b",".join(published[-expected:]) + b"]"


def test_limit_1000_returns_the_whole_kept_history(client, api_redis):
    published = publish(api_redis, 1000)
    body = orjson.loads(client.get(URL, {"limit": "1000"}).content)
    assert len(body) == 1000
    assert body[0] == orjson.loads(published[0])
    assert body[-1] == orjson.loads(published[-1])


def test_empty_history_is_an_empty_array(client, api_redis):
    response = client.get(URL)
    assert response.status_code == 200
    assert response.content == b"[]"


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1.5", "1e3", " 5", "+5", "99999999999999999999999"])
def test_bad_limit_is_a_400_naming_limit(client, api_redis, limit):
    response = client.get(URL, {"limit": limit})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content)["error"].startswith("limit: ")


def test_redis_down_is_a_503_not_a_500(client, settings):
    from arbsite.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get(URL)
    assert response.status_code == 503
    assert "redis unavailable" in orjson.loads(response.content)["error"]
