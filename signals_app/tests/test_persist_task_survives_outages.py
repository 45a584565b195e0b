"""The Celery task never raises: Redis or the database down → it logs, returns, and the next run catches up.

The task is called in-process (`persist_signals()` runs its body); the real worker is
in test_persist_real_worker.py.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from django.conf import LazySettings
from django.db import connection

from arbsite.redis_server import EmbeddedRedis, free_port
from signals_app import persist, tasks
from signals_app.contracts.keys import SIGNALS_STREAM
from signals_app.contracts.signal import SIGNAL_TYPE
from signals_app.models import Signal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(settings: LazySettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    monkeypatch.setattr(tasks, "_outage_since", {})  # outage logging is rate-limited per process
    with EmbeddedRedis() as server:
        settings.REDIS_URL = server.url
        client = redis.Redis.from_url(server.url)
        yield client
        client.close()


def publish(client: redis.Redis, count: int) -> list[bytes]:
    ids: list[Any] = []
    for n in range(count):
        signal: dict[str, Any] = {
            "type": SIGNAL_TYPE,
            "id": f"ETH:coinbase:binance:{1705670000000 + n}",
            "status": "open",
            "action": "BUY_COINBASE_SELL_BINANCE",
            "symbol": "ETH/USD",
            "asset": "ETH",
            "buy_exchange": "coinbase",
            "sell_exchange": "binance",
            "buy_symbol": "ETH/USD",
            "sell_symbol": "ETH/USDT",
            "buy_price": 2500.0,
            "sell_price": 2530.0,
            "spread_pct": 1.2,
            "net_spread_pct": 0.5,
            "size": None,
            "profit_per_unit": 12.5,
            "profit_estimate": None,
            "fees_pct": {"coinbase": 0.6, "binance": 0.1},
            "opened_at": 1705670000000 + n,
            "duration_ms": 0,
            "peak_net_spread_pct": 0.5,
            "tick_recv_ns": (1705670000000 + n) * 1_000_000,
            "timestamp": 1705670000000 + n,
        }
        ids.append(client.xadd(SIGNALS_STREAM, {"signal": orjson.dumps(signal)}))
    return ids


def pending(client: redis.Redis) -> int:
    return int(client.xpending(SIGNALS_STREAM, persist.GROUP)["pending"])


@contextlib.contextmanager
def signal_table_gone() -> Iterator[None]:
    """Every statement on the signal table fails, as with the database gone (any backend)."""
    table = Signal._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")


def test_the_task_stores_what_the_stream_holds(client: redis.Redis) -> None:
    publish(client, 3)
    result = tasks.persist_signals()
    assert result["stored"] == 3
    assert Signal.objects.count() == 3


def test_database_down_nothing_is_acknowledged_and_once_back_nothing_is_lost(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    ids = publish(client, 4)
    with signal_table_gone(), caplog.at_level(logging.WARNING, logger="signals_app.tasks"):
        assert tasks.persist_signals() == {"error": "database"}
        assert tasks.persist_signals() == {"error": "database"}
        assert pending(client) == 4
    outage_lines = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outage_lines) == 1  # once per outage, not once per beat
    assert tasks.persist_signals()["read"] == 4
    assert sorted(Signal.objects.values_list("stream_id", flat=True)) == sorted(i.decode() for i in ids)
    assert pending(client) == 0


def test_redis_down_the_task_logs_and_returns(
    settings: LazySettings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tasks, "_outage_since", {})
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="signals_app.tasks"):
        assert tasks.persist_signals() == {"error": "redis"}
    assert any("redis unavailable" in record.getMessage() for record in caplog.records)


def test_redis_gone_mid_drain_leaves_the_batch_pending(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(client, 2)

    def connection_lost(*args: object) -> int:
        raise redis.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(redis.Redis, "xack", connection_lost)
    assert tasks.persist_signals() == {"error": "redis"}
    monkeypatch.undo()
    assert pending(client) == 2
    assert Signal.objects.count() == 2  # committed; the replay adds nothing
    tasks.persist_signals()
    assert Signal.objects.count() == 2
    assert pending(client) == 0


def test_a_run_while_another_drains_is_skipped(client: redis.Redis) -> None:
    publish(client, 2)
    other = client.lock(tasks.PERSIST_LOCK, timeout=tasks.PERSIST_LOCK_TTL_S)
    assert other.acquire(blocking=False)
    assert tasks.persist_signals() == {"skipped": "another drain is running"}
    assert Signal.objects.count() == 0
    other.release()
    assert tasks.persist_signals()["stored"] == 2


def test_the_lock_is_released_after_a_run(client: redis.Redis) -> None:
    tasks.persist_signals()
    assert client.get(tasks.PERSIST_LOCK) is None


def test_beat_runs_the_writer_every_second_without_piling_up_and_prunes_hourly(settings: LazySettings) -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE
    by_task = {entry["task"]: entry for entry in schedule.values()}
    persist_entry = by_task["signals_app.tasks.persist_signals"]
    assert persist_entry["schedule"] == 1.0
    assert persist_entry["options"]["expires"] <= 10  # a backlog of runs is dropped, not queued
    assert by_task["signals_app.tasks.prune_signals"]["schedule"] == 3600.0
    from arbsite.celery import app

    app.loader.import_default_modules()
    assert {"signals_app.tasks.persist_signals", "signals_app.tasks.prune_signals"} <= set(app.tasks)
