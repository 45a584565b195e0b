"""GET /api/health: 200 only when Redis, the database, the engine and every feed are fine; else 503 naming them."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time

import orjson
import pytest
from django.db import OperationalError, connection

from arbsite.redis_server import EmbeddedRedis, free_port
from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from signals_app import api
from signals_app.contracts import keys, tick
from signals_app.tests import api_fixtures
from signals_app.tests.api_fixtures import live_feed

api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis
fake_ingestor = api_fixtures.fake_ingestor

pytestmark = pytest.mark.django_db

URL = "/api/health"


def heartbeat(age_ms: int = 0, suspect: bool = False) -> bytes:
    """The engine's real heartbeat snapshot, with some latencies recorded, `age_ms` old; with `suspect`,
    the engine has seen "BTC" on OKX at twice its price elsewhere (another token with the same ticker)."""
    service = EngineService(EngineServiceConfig(engine=EngineConfig(fees_pct={"binance": 0.1, "okx": 0.1})))
    if suspect:
        now_ns = time.time_ns()
        for exchange, bid in (("binance", 45_000.0), ("coinbase", 45_010.0), ("okx", 90_000.0)):
            service.engine.on_tick(tick.quote(exchange, "BTC/USD", bid, bid + 1, 1.0, 1.0, 0, now_ns), now_ns // 10**6)
    for micros in (100.0, 200.0, 300.0, 900.0):
        service.decision_latency.add(micros)
        service.signal_latency.add(micros * 3)
    snapshot = service.snapshot()
    snapshot["timestamp"] -= age_ms
    snapshot["ticks"] = 1234
    return orjson.dumps(snapshot)


def beat(client, age_ms: int = 0, suspect: bool = False) -> None:
    client.set(keys.ENGINE_HEARTBEAT, heartbeat(age_ms, suspect), ex=keys.ENGINE_HEARTBEAT_TTL_S)


def get(client):
    response = client.get(URL)
    assert response["Content-Type"] == "application/json"
    return response, orjson.loads(response.content)


def test_all_fine_is_200_with_what_the_dashboard_shows(client, api_redis, fake_ingestor):
    beat(api_redis)
    response, body = get(client)
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert body["redis"] == body["database"] == body["ingestor"] == {"ok": True, "error": None}
    assert body["feeds"] == {
        "binance": {"ok": True, "state": "live", "last_message_age_s": 0.05, "message_rate": 120.5},
        "coinbase": {"ok": True, "state": "live", "last_message_age_s": 0.4, "message_rate": 12.0},
    }
    engine = body["engine"]
    assert engine["ok"] is True
    assert 0 <= engine["heartbeat_age_ms"] < 1000
    assert engine["ticks"] == 1234
    assert engine["signals"] == {"open": 0, "update": 0, "close": 0}
    # the window's figures are its histogram's, within half a 1 % bucket (arbsite.latency)
    assert engine["latency_frame_to_decision"] == pytest.approx(
        {"p50_us": 300.0, "p90_us": 900.0, "p99_us": 900.0, "max_us": 900.0}, rel=0.005
    )
    assert engine["latency_frame_to_signal_published"]["max_us"] == pytest.approx(2700.0, rel=0.005)
    assert engine["suspect_markets"] == []


def test_a_suspect_market_is_listed_with_what_it_was_compared_with(client, api_redis, fake_ingestor):
    beat(api_redis, suspect=True)
    response, body = get(client)
    assert response.status_code == 200, body  # a suspect market is data health, not a failing part
    (suspect,) = body["engine"]["suspect_markets"]
    assert (suspect["exchange"], suspect["symbol"], suspect["venues_compared"]) == ("okx", "BTC/USD", 2)
    assert suspect["median_mid"] == 45_010.5  # of binance's and coinbase's mids, the one nearer OKX's
    assert suspect["deviation_pct"] > 20


def test_no_heartbeat_is_503_naming_engine(client, api_redis, fake_ingestor):
    response, body = get(client)
    assert response.status_code == 503
    assert body["status"] == "degraded"
    assert body["failing"] == ["engine"]
    assert "no heartbeat" in body["engine"]["error"]


def test_old_heartbeat_is_503_naming_engine(client, api_redis, fake_ingestor):
    beat(api_redis, age_ms=5200)  # still in Redis (EX 5 counts from the write), but 5.2 s old
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"] == ["engine"]
    assert body["engine"]["heartbeat_age_ms"] >= 5200
    assert body["engine"]["ticks"] == 1234  # the last word from the engine is still shown


def test_malformed_heartbeat_is_503_naming_engine(client, api_redis, fake_ingestor):
    api_redis.set(keys.ENGINE_HEARTBEAT, b'{"ticks": 3}')
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"] == ["engine"]
    assert "malformed" in body["engine"]["error"]


def test_redis_stopped_is_503_naming_redis_not_a_500(client, settings, fake_ingestor):
    server = EmbeddedRedis().start()
    try:
        settings.REDIS_URL = server.url
        import redis

        redis.Redis.from_url(server.url).set(keys.ENGINE_HEARTBEAT, heartbeat())
        assert get(client)[0].status_code == 200  # the pooled connection is open now
        server.stop()
        started = time.monotonic()
        response, body = get(client)
        elapsed = time.monotonic() - started
    finally:
        server.cleanup()
    assert response.status_code == 503
    assert body["failing"] == ["redis", "engine", "persistence"]  # the heartbeat and the stream are in that Redis
    assert body["redis"]["ok"] is False
    assert body["redis"]["error"]
    assert body["database"]["ok"] is True
    assert body["feeds"]["binance"]["ok"] is True
    assert elapsed < 2.0


def test_database_failure_is_503_naming_database(client, api_redis, fake_ingestor, monkeypatch):
    beat(api_redis)

    def broken_cursor(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"] == ["database"]
    assert "database is locked" in body["database"]["error"]


def test_feed_not_live_is_503_naming_the_feed(client, api_redis, fake_ingestor):
    beat(api_redis)
    fake_ingestor.set_feeds(
        {
            "binance": live_feed(),
            "coinbase": {"state": "reconnecting", "last_message_age_s": 12.5, "message_rate": 0.0},
        }
    )
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"] == ["feed:coinbase"]
    assert body["ingestor"]["ok"] is True  # it answered (with its own 503)
    assert body["feeds"]["coinbase"] == {
        "ok": False,
        "state": "reconnecting",
        "last_message_age_s": 12.5,
        "message_rate": 0.0,
    }


def test_silent_live_feed_is_503_naming_the_feed(client, api_redis, fake_ingestor, settings):
    settings.FEED_SILENCE_TIMEOUT_S = 2.0
    beat(api_redis)
    fake_ingestor.set_feeds({"binance": live_feed(age_s=2.0), "coinbase": live_feed(age_s=1.9)})
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"] == ["feed:binance"]


def test_live_feed_that_never_received_is_not_fine(client, api_redis, fake_ingestor):
    beat(api_redis)
    fake_ingestor.set_feeds({"binance": live_feed(), "coinbase": {"state": "live", "last_message_age_s": None}})
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"] == ["feed:coinbase"]


def test_configured_feed_missing_from_the_ingestor_is_503(client, api_redis, fake_ingestor, settings):
    settings.EXCHANGES = ["binance", "coinbase", "kraken"]
    beat(api_redis)
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"] == ["feed:kraken"]
    assert body["feeds"]["kraken"] == {"ok": False, "state": None, "last_message_age_s": None, "message_rate": None}


def test_switched_off_feed_is_not_expected(client, api_redis, fake_ingestor, settings):
    settings.COINBASE_ENABLED = False
    beat(api_redis)
    fake_ingestor.set_feeds({"binance": live_feed()})
    response, body = get(client)
    assert response.status_code == 200, body
    assert list(body["feeds"]) == ["binance"]


def test_ingestor_away_is_503_naming_it_and_every_feed(client, api_redis, settings):
    settings.INGESTOR_HEALTH_URL = f"http://127.0.0.1:{free_port()}/health"  # nothing listens there
    settings.EXCHANGES = ["binance", "coinbase"]
    beat(api_redis)
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"] == ["ingestor", "feed:binance", "feed:coinbase"]
    assert body["ingestor"]["ok"] is False


def test_ingestor_that_hangs_costs_half_a_second_not_a_hang(client, api_redis, settings):
    release = threading.Event()

    class Hanging(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            release.wait(5)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.INGESTOR_HEALTH_URL = f"http://127.0.0.1:{server.server_address[1]}/health"
    beat(api_redis)
    try:
        started = time.monotonic()
        response, body = get(client)
        elapsed = time.monotonic() - started
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert response.status_code == 503
    assert "ingestor" in body["failing"]
    assert elapsed < 1.5


def test_ingestor_answering_garbage_is_503(client, api_redis, fake_ingestor):
    beat(api_redis)
    fake_ingestor.body = ["not", "a", "health", "body"]  # type: ignore[assignment]
    response, body = get(client)
    assert response.status_code == 503
    assert body["failing"][0] == "ingestor"


def test_ingestor_port_speaking_no_http_is_503(client, api_redis, settings):
    listener = socket.create_server(("127.0.0.1", 0))
    settings.INGESTOR_HEALTH_URL = f"http://127.0.0.1:{listener.getsockname()[1]}/health"

    def answer_garbage() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    beat(api_redis)
    try:
        response, body = get(client)
    finally:
        thread.join(2)
        listener.close()
    assert response.status_code == 503
    assert body["failing"][0] == "ingestor"


def test_degraded_health_is_logged_once_per_change_not_per_poll(client, api_redis, fake_ingestor, caplog, monkeypatch):
    monkeypatch.setattr(api, "_last_failing", [])
    caplog.set_level(logging.INFO)
    for _ in range(3):  # the dashboard polls
        assert get(client)[0].status_code == 503
    beat(api_redis)
    assert get(client)[0].status_code == 200
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("signals_app.api", "WARNING", "health: degraded: engine failing"),
        ("signals_app.api", "INFO", "health: ok again"),
    ]


def test_only_get(client, api_redis):
    for method in (client.post, client.put, client.delete, client.patch):
        response = method(URL)
        assert response.status_code == 405
        assert response["Allow"] == "GET"
        assert "GET only" in orjson.loads(response.content)["error"]
