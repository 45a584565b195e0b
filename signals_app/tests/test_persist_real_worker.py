"""The real thing: `celery -A arbsite worker --beat` moves signals:stream into a migrated SQLite file.

Signals published while the worker is down are in the database once it starts, exactly
once each; a worker SIGKILLed, with entries read and never acknowledged, adds no
duplicate when it comes back; a malformed entry is skipped and acknowledged; SIGTERM
stops the worker cleanly (exit 0).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from arbsite.redis_server import EmbeddedRedis
from signals_app import persist
from signals_app.contracts.keys import SIGNALS_STREAM, SIGNALS_STREAM_MAXLEN
from signals_app.contracts.signal import SIGNAL_TYPE

REPO = Path(__file__).resolve().parents[2]


class Worker:
    """One `celery worker --beat` in its own process group (its pool and beat children die with it)."""

    def __init__(self, env: dict[str, str], schedule: Path) -> None:
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "arbsite", "worker", "--beat",
                "--loglevel", "INFO", "--concurrency", "1",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--schedule", str(schedule),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def sigkill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def sigterm(self, timeout_s: float) -> int:
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.sigkill()
            raise AssertionError(f"worker still running {timeout_s} s after SIGTERM:\n{self.output()}") from None


def make_signal(n: int) -> bytes:
    timestamp = 1705670000000 + n * 1000
    signal_json: dict[str, Any] = {
        "type": SIGNAL_TYPE,
        "id": f"SOL:binance:coinbase:{timestamp}",
        "status": "open",
        "action": "BUY_BINANCE_SELL_COINBASE",
        "symbol": "SOL/USDT",
        "asset": "SOL",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "SOL/USDT",
        "sell_symbol": "SOL/USD",
        "buy_price": 100.0 + n,
        "sell_price": 101.5 + n,
        "spread_pct": 1.5,
        "net_spread_pct": 0.8,
        "size": 12.0,
        "profit_per_unit": 0.8,
        "profit_estimate": 9.6,
        "fees_pct": {"binance": 0.1, "coinbase": 0.6},
        "opened_at": timestamp,
        "duration_ms": 0,
        "peak_net_spread_pct": 0.8,
        "tick_recv_ns": timestamp * 1_000_000,
        "timestamp": timestamp,
    }
    return orjson.dumps(signal_json)


@pytest.fixture
def system(tmp_path: Path) -> Iterator[tuple[redis.Redis, dict[str, str], Path]]:
    """A private Redis and a freshly migrated SQLite file; the environment a worker needs."""
    with EmbeddedRedis() as server:
        database = tmp_path / "signals.sqlite3"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "arbsite.settings",
            "REDIS_URL": server.url,
            "DATABASE_URL": f"sqlite:///{database}",
            "TEST_DATABASE_URL": "",  # a PostgreSQL run of the suite must not redirect the worker
            "LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            # Django's system checks cover the URLs and admin, not this path; skipping them
            # keeps this test about persistence.
            "CELERY_SKIP_CHECKS": "1",
        }
        migrate = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "migrate", "--noinput", "--skip-checks", "-v", "0"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrate.returncode == 0, migrate.stderr
        client = redis.Redis.from_url(server.url)
        yield client, env, database
        client.close()


def rows(database: Path) -> list[tuple[str, str]]:
    """(stream_id, payload) of every stored row."""
    with sqlite3.connect(database, timeout=5) as db:
        return sorted(db.execute("SELECT stream_id, payload FROM signals_app_signal").fetchall())


def wait_for_rows(database: Path, count: int, worker: Worker, timeout_s: float = 20.0) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = rows(database)
        if len(found) >= count:
            return found
        assert worker.popen.poll() is None, f"worker exited:\n{worker.output()}"
        time.sleep(0.1)
    raise AssertionError(f"{len(rows(database))} of {count} rows after {timeout_s} s:\n{worker.output()}")


def publish(client: redis.Redis, numbers: range) -> dict[str, bytes]:
    """XADD as engine_worker.publish does; entry id -> the published bytes."""
    published = {}
    for n in numbers:
        entry_id: Any = client.xadd(
            SIGNALS_STREAM, {"signal": make_signal(n)}, maxlen=SIGNALS_STREAM_MAXLEN, approximate=True
        )
        published[entry_id.decode()] = make_signal(n)
    return published


def group_state(client: redis.Redis) -> tuple[int, str]:
    """(pending entries, last delivered id) of the writer's group."""
    groups: Any = client.xinfo_groups(SIGNALS_STREAM)
    [group] = [g for g in groups if g["name"] == persist.GROUP.encode()]
    return int(group["pending"]), group["last-delivered-id"].decode()


def last_id(client: redis.Redis) -> str:
    newest: Any = client.xrevrange(SIGNALS_STREAM, count=1)
    [(entry_id, _fields)] = newest
    return str(entry_id.decode())


def test_signals_published_while_the_worker_is_down_are_stored_once_each(
    system: tuple[redis.Redis, dict[str, str], Path], tmp_path: Path
) -> None:
    client, env, database = system
    schedule = tmp_path / "celerybeat-schedule"

    # Down: signals pile up in the stream, before the consumer group even exists.
    published = publish(client, range(30))
    bad: Any = client.xadd(SIGNALS_STREAM, {"signal": b'{"type": "ARBITRAGE_OPPORTUNITY", "status'})
    bad_id = bad.decode()
    published |= publish(client, range(30, 40))

    worker = Worker(env, schedule)
    try:
        found = wait_for_rows(database, len(published), worker)
        time.sleep(1.5)  # a few more beats: nothing is written twice
        found = rows(database)
        assert found == sorted((entry_id, data.decode()) for entry_id, data in published.items())
        assert group_state(client) == (0, last_id(client))
        assert any(f"malformed stream entry {bad_id}" in line for line in worker.lines), worker.output()
    finally:
        worker.sigkill()  # as hard as a crash or an OOM kill: no shutdown at all

    # Down again: new signals arrive, and some are read by the (dead) worker's consumer and
    # never acknowledged, as when it is killed between XREADGROUP and XACK.
    later = publish(client, range(40, 60))
    client.xreadgroup(persist.GROUP, persist.default_consumer(), {SIGNALS_STREAM: ">"}, count=8)
    assert group_state(client)[0] == 8

    worker = Worker(env, schedule)
    try:
        everything = published | later
        wait_for_rows(database, len(everything), worker)
        time.sleep(1.5)
        assert rows(database) == sorted((entry_id, data.decode()) for entry_id, data in everything.items())
        assert group_state(client) == (0, last_id(client))
    finally:
        code = worker.sigterm(timeout_s=15)
    assert code == 0, worker.output()
    assert "Warm shutdown" in worker.output()
