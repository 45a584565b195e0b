"""GET /api/health reports the persistence lag and fails `persistence` past PERSIST_LAG_LIMIT_S.

The lag is the age of the oldest `signals:stream` entry the `db-writer` group has not
acknowledged: never delivered (no worker, or one behind) and delivered but pending (a worker
killed mid-batch) both count. A real Redis; entries are written with ids in the past, as an
engine would have written them while the writer was stopped.
"""

from __future__ import annotations

import orjson
import pytest
import redis

from signals_app import persist
from signals_app.contracts import keys
from signals_app.tests import api_fixtures
from signals_app.tests.api_fixtures import make_signal
from signals_app.tests.test_api_health import beat

api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis
fake_ingestor = api_fixtures.fake_ingestor

pytestmark = pytest.mark.django_db

URL = "/api/health"
CONSUMER = "worker@test"


def redis_now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def add(client: redis.Redis, age_ms: int | None = None) -> str:
    """One signal entry on the stream, `age_ms` old on Redis's clock (now when None); its id."""
    stamp = redis_now_ms(client) - (age_ms or 0)
    entry_id = "*" if age_ms is None else f"{stamp}-0"
    added = client.xadd(keys.SIGNALS_STREAM, {keys.SIGNALS_STREAM_FIELD: orjson.dumps(make_signal(stamp))}, id=entry_id)
    return added.decode() if isinstance(added, bytes) else str(added)


def health(django_client):
    response = django_client.get(URL)
    return response.status_code, orjson.loads(response.content)


def test_nothing_published_is_no_lag_and_all_fine(client, api_redis, fake_ingestor):
    beat(api_redis)
    status, body = health(client)
    assert status == 200, body
    assert body["persistence"] == {
        "ok": True,
        "error": None,
        "lag_s": 0.0,
        "oldest_unpersisted_id": None,
        "pending": 0,
        "limit_s": 10.0,
    }


@pytest.mark.parametrize("group", ["never created", "created"])
def test_signals_never_delivered_to_the_writer_fail_persistence_past_the_limit(client, api_redis, fake_ingestor, group):
    beat(api_redis)
    if group == "created":
        persist.ensure_group(api_redis)  # a worker ran once, then stopped
    oldest = add(api_redis, age_ms=15_000)
    add(api_redis)
    status, body = health(client)
    assert status == 503, body
    assert body["failing"] == ["persistence"]
    check = body["persistence"]
    assert check["ok"] is False
    assert check["oldest_unpersisted_id"] == oldest
    assert 15.0 <= check["lag_s"] < 17.0
    assert check["pending"] == 0
    assert "is the Celery worker running?" in check["error"]


def test_delivered_but_unacknowledged_signals_count_until_acknowledged(client, api_redis, fake_ingestor):
    beat(api_redis)
    persist.ensure_group(api_redis)
    old = add(api_redis, age_ms=20_000)
    api_redis.xreadgroup(keys.SIGNALS_STREAM_GROUP, CONSUMER, {keys.SIGNALS_STREAM: ">"}, count=10)  # then killed
    fresh = add(api_redis)
    status, body = health(client)
    assert status == 503, body
    assert body["persistence"]["oldest_unpersisted_id"] == old
    assert body["persistence"]["pending"] == 1
    assert body["persistence"]["lag_s"] >= 20.0

    api_redis.xack(keys.SIGNALS_STREAM, keys.SIGNALS_STREAM_GROUP, old)
    status, body = health(client)
    assert status == 200, body
    assert body["persistence"]["oldest_unpersisted_id"] == fresh  # never delivered: still waiting
    assert body["persistence"]["pending"] == 0
    assert 0.0 <= body["persistence"]["lag_s"] < 2.0


def test_a_drain_stores_the_backlog_and_the_lag_is_gone(client, api_redis, fake_ingestor):
    beat(api_redis)
    for age_ms in (30_000, 20_000, 12_000):
        add(api_redis, age_ms=age_ms)
    assert health(client)[0] == 503
    stats = persist.drain(api_redis, CONSUMER)
    assert stats.stored == 3
    status, body = health(client)
    assert status == 200, body
    assert body["persistence"]["lag_s"] == 0.0
    assert body["persistence"]["oldest_unpersisted_id"] is None


def test_the_limit_is_the_setting(client, api_redis, fake_ingestor, settings):
    beat(api_redis)
    add(api_redis, age_ms=15_000)
    settings.PERSIST_LAG_LIMIT_S = 30.0
    status, body = health(client)
    assert status == 200, body
    assert body["persistence"]["limit_s"] == 30.0
    settings.PERSIST_LAG_LIMIT_S = 5.0
    status, body = health(client)
    assert status == 503
    assert body["failing"] == ["persistence"]
