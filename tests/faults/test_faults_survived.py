"""Faults survived under `make run`'s supervisor, with real processes and signals flowing.

One system for the module (the supervisor, the simulator at SIM_RATE=200 with its random
dislocations and ours, the ingestor, the engine, daphne, the Celery worker with beat; a Redis
with an append-only file). Each scenario breaks one part: the engine, the ingestor, the Celery
worker's main process and daphne each killed with SIGKILL, Redis frozen for 10 s (SIGSTOP, then
SIGCONT) and Redis killed and started again. After each, the supervisor has restarted what died,
/api/health is 200 again (persistence lag included), fresh signals reach the stream, and the SQL
table holds every entry of `signals:stream` exactly once. And the Celery worker stopped (SIGSTOP
of its group) turns /api/health 503 naming `persistence` once its lag passes the limit. The
scenarios run in order on the same system; each starts by waiting for a healthy one, so a
failure names its own scenario.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from arbsite.redis_server import EmbeddedRedis
from signals_app.contracts import keys
from signals_app.contracts.signal import CLOSE_REASONS
from tests.faults.system import RunningSystem
from tests.procs import wait_until

LAG_LIMIT_S = 4.0  # /api/health's persistence limit here: below the 10 s default, for a short stop


@pytest.fixture(scope="module")
def durable_redis() -> Iterator[EmbeddedRedis]:
    """With an append-only file, as the compose file runs Redis: killed with SIGKILL and started
    again on the same port and directory, it comes back with the stream and the consumer group
    (Redis writes the file before it replies, so whatever it acknowledged is kept)."""
    server = EmbeddedRedis(appendonly=True).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def system(durable_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    workdir: Path = tmp_path_factory.mktemp("faults")
    running = RunningSystem(
        durable_redis.url, workdir, SIM_RATE="200", FEED_SILENCE_TIMEOUT_S="3", PERSIST_LAG_LIMIT_S=str(LAG_LIMIT_S)
    )
    try:
        running.wait_healthy(90)
        yield running
    finally:
        running.stop()


@pytest.fixture
def healthy(system: RunningSystem) -> RunningSystem:
    """The system healthy and raising signals before the scenario breaks something."""
    system.wait_healthy()
    system.signals_flow()
    return system


def kill_and_recover(system: RunningSystem, name: str, load_s: float = 3.0) -> None:
    """SIGKILL `name` under load; the supervisor restarts it (a new pid); healthy, signals, stored once each."""
    starts = len(system.pids(name))
    system.sleep_with_load(1.0)
    killed = system.kill(name)
    system.sleep_with_load(load_s)  # signals raised while it is away (or none, for the engine)
    system.wait_restarted(name, starts)
    assert system.pids(name)[-1] != killed
    system.wait_healthy()
    system.signals_flow()
    system.assert_stream_stored_exactly_once()


def open_opportunities(system: RunningSystem) -> set[str]:
    """Ids of the opportunities whose last word on the stream is not a close."""
    last: dict[str, str] = {}
    for _entry_id, fields in system.stream_entries():
        signal_json = orjson.loads(fields[keys.SIGNALS_STREAM_FIELD.encode()])
        last[signal_json["id"]] = signal_json["status"]
    return {signal_id for signal_id, status in last.items() if status != "close"}


def stream_signals(system: RunningSystem) -> list[dict[str, Any]]:
    return [orjson.loads(fields[keys.SIGNALS_STREAM_FIELD.encode()]) for _entry_id, fields in system.stream_entries()]


def test_the_engine_killed_is_restarted_and_leaves_no_orphans(healthy: RunningSystem):
    """DESIGN.md lifecycle rule 8: what a SIGKILLed engine left open is taken back by the one the
    supervisor starts: resumed under its old id while its market is still crossed, closed
    otherwise; every open ends in a close on the stream (and so in the table and the browsers)."""
    system = healthy
    system.dislocate(asset="SOL", seconds=60)  # an opportunity open when the engine dies
    wait_until(lambda: any(i.startswith("SOL:") for i in open_opportunities(system)), 10, "a SOL opportunity open")
    system.sleep_with_load(1.0)
    starts = len(system.pids("engine"))
    killed = system.kill("engine")
    time.sleep(0.5)  # whatever the killed engine wrote has landed; it writes nothing more
    orphans = open_opportunities(system)
    resuming = {signal_id for signal_id in orphans if signal_id.startswith("SOL:binance:coinbase:")}
    assert resuming, orphans
    system.wait_restarted("engine", starts)
    assert system.pids("engine")[-1] != killed
    system.wait_healthy()
    system.signals_flow()
    system.dislocate(asset="SOL", seconds=0.5)  # ends the long one
    try:
        wait_until(lambda: not open_opportunities(system) & orphans, 20, "every orphan closed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {open_opportunities(system) & orphans}\n{system.output()}") from None
    signals = stream_signals(system)
    closes = {each["id"]: each for each in signals if each["status"] == "close" and each["id"] in orphans}
    assert set(closes) == orphans
    assert {each["close_reason"] for each in closes.values()} <= set(CLOSE_REASONS)
    # The SOL route stayed crossed across the restart: it resumed under its old id (no second open
    # of the key) and closed when the dislocation ended, by the threshold.
    (resumed_id,) = resuming
    assert closes[resumed_id]["close_reason"] == "threshold", closes[resumed_id]
    assert closes[resumed_id]["opened_at"] == int(resumed_id.rsplit(":", 1)[1])
    reopened = [
        each["id"]
        for each in signals
        if each["status"] == "open"
        and each["id"].startswith("SOL:binance:coinbase:")
        and each["id"] != resumed_id
        and each["timestamp"] <= closes[resumed_id]["timestamp"]
        and each["timestamp"] >= closes[resumed_id]["opened_at"]
    ]
    assert not reopened, reopened
    assert not system.redis.hgetall(keys.ENGINE_OPEN).keys() & {i.encode() for i in orphans}
    system.assert_stream_stored_exactly_once()


def test_the_ingestor_killed_is_restarted_and_signals_resume(healthy: RunningSystem):
    kill_and_recover(healthy, "ingestor")
    assert all(feed["ok"] for feed in healthy.health()[1]["feeds"].values())


def test_the_celery_worker_main_process_killed_is_restarted_and_nothing_is_lost(healthy: RunningSystem):
    system = healthy
    leader = system.pids("worker")[-1]
    # Its pool child and beat, forked from it: they keep the output pipe open after it died.
    forked = [int(pid) for pid in Path(f"/proc/{leader}/task/{leader}/children").read_text().split()]
    assert forked, "the worker forks its pool and beat"
    kill_and_recover(system, "worker", load_s=4.0)
    assert not [pid for pid in forked if Path(f"/proc/{pid}").exists() and not zombie(pid)], "leftovers run on"
    assert system.health()[1]["persistence"]["ok"] is True


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return False


def test_a_stopped_writer_turns_api_health_503_naming_persistence_until_it_moves_again(healthy: RunningSystem):
    system = healthy
    mark = system.log_mark()
    worker = system.pids("worker")[-1]
    os.killpg(worker, signal.SIGSTOP)  # the worker and its pool: alive, writing nothing
    try:
        system.sleep_with_load(LAG_LIMIT_S + 2)
        status, body = system.health()
    finally:
        os.killpg(worker, signal.SIGCONT)
    assert status == 503, body
    assert "persistence" in body["failing"], body
    assert body["persistence"]["lag_s"] > LAG_LIMIT_S, body["persistence"]
    assert "is the Celery worker running?" in body["persistence"]["error"]
    system.wait_healthy()
    system.assert_stream_stored_exactly_once()
    assert system.restarts_since(mark) == [], system.output()


def test_daphne_killed_is_restarted_and_the_api_answers_again(healthy: RunningSystem):
    kill_and_recover(healthy, "web")
    status, body = healthy.health()
    assert status == 200, body


def test_redis_frozen_for_10_s_every_process_carries_on(healthy: RunningSystem, durable_redis: EmbeddedRedis):
    system = healthy
    mark = system.log_mark()
    assert durable_redis.process is not None
    os.kill(durable_redis.process.pid, signal.SIGSTOP)
    try:
        system.sleep_with_load(10.0)
    finally:
        os.kill(durable_redis.process.pid, signal.SIGCONT)
    system.wait_healthy()
    system.signals_flow()
    system.assert_stream_stored_exactly_once()
    assert system.restarts_since(mark) == [], system.output()


def test_redis_killed_and_started_again_every_process_carries_on(healthy: RunningSystem, durable_redis: EmbeddedRedis):
    system = healthy
    mark = system.log_mark()
    before = system.stream_ids()
    assert durable_redis.process is not None
    durable_redis.process.kill()
    durable_redis.process.wait()
    system.sleep_with_load(3.0)
    durable_redis.start()  # same port, same append-only file
    system.wait_healthy()
    system.signals_flow()
    after = system.stream_ids()
    assert set(before) <= set(after), "the stream came back from the append-only file"
    system.assert_stream_stored_exactly_once()
    assert system.restarts_since(mark) == [], system.output()


def test_after_every_fault_ctrl_c_stops_every_process_with_exit_0(system: RunningSystem):
    system.wait_healthy()
    code = system.stop()
    stopped = [line for line in system.output().splitlines() if "stopped: exit codes" in line]
    assert stopped, system.output()
    assert stopped[-1].endswith("{'sim': 0, 'engine': 0, 'ingestor': 0, 'web': 0, 'worker': 0}"), system.output()
    assert code == 0, system.output()
