"""The whole system under the real supervisor (`python -m arbsite.supervisor`, as `make run`), for tests.

Free ports for every listener, a SQLite database in the test's directory, the test's own Redis.
`RunningSystem` keeps one supervisor running with its log in a file, finds each child's pid in
that log (the supervisor's `started NAME (pid N)` lines), makes signals flow (the simulator's
`/sim/dislocate`), and compares `signals:stream` with the SQL table.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import redis

from arbsite.redis_server import free_port
from signals_app.contracts import keys
from tests.procs import REPO, get_json, wait_until


def supervisor_env(redis_url: str, workdir: Path, venues: str = "binance,coinbase", **overrides: str) -> dict[str, str]:
    """The environment of a supervisor whose every process listens on a free port."""
    ingestor_port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "PORT": str(free_port()),
        "HEALTH_PORT": str(ingestor_port),
        "ENGINE_HEALTH_PORT": str(free_port()),
        "INGESTOR_HEALTH_URL": f"http://127.0.0.1:{ingestor_port}/health",
        "ZMQ_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite:///{workdir / 'run.sqlite3'}",
        "SIM_VENUES": venues,
        "EXCHANGES": venues,
        **{f"SIM_{venue.upper()}_PORT": str(free_port()) for venue in venues.split(",")},
        **overrides,
    }
    env.pop("TEST_DATABASE_URL", None)  # the suite's database is not for children
    return env


def run_supervisor_to_end(env: dict[str, str], timeout_s: float = 90) -> tuple[int, str]:
    """Run the supervisor until it exits by itself; its exit code and output."""
    done = subprocess.run(
        [sys.executable, "-m", "arbsite.supervisor"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout_s,
        start_new_session=True,  # its own group, as a shell gives a foreground job
    )
    return done.returncode, done.stdout.decode()


class RunningSystem:
    """One supervisor (`make run`) with every process, its output in `log_path`."""

    def __init__(self, redis_url: str, workdir: Path, **overrides: str) -> None:
        self.env = supervisor_env(redis_url, workdir, **overrides)
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=1)
        self.database = workdir / "run.sqlite3"
        self.web = f"http://127.0.0.1:{self.env['PORT']}"
        self.sim_control = f"http://127.0.0.1:{self.env['SIM_BINANCE_PORT']}/sim"
        self.log_path = workdir / "supervisor.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "arbsite.supervisor"],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    # --- reading it -------------------------------------------------------------------------

    def output(self, last: int = 150) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-last:])

    def pids(self, name: str) -> list[int]:
        """Every pid the supervisor started `name` with, oldest first."""
        pattern = re.compile(rf"\| started {re.escape(name)} \(pid (\d+)\)")
        return [int(match.group(1)) for match in pattern.finditer(self.log_path.read_text(errors="replace"))]

    def health(self) -> tuple[int, dict[str, Any]]:
        return get_json(f"{self.web}/api/health", timeout_s=5)  # type: ignore[return-value]

    def engine_health(self) -> tuple[int, dict[str, Any]]:
        return get_json(f"http://127.0.0.1:{self.env['ENGINE_HEALTH_PORT']}/health")  # type: ignore[return-value]

    def ingestor_health(self) -> tuple[int, dict[str, Any]]:
        return get_json(f"http://127.0.0.1:{self.env['HEALTH_PORT']}/health")  # type: ignore[return-value]

    def wait_healthy(self, timeout_s: float = 60) -> None:
        """/api/health 200 (Redis, database, engine, ingestor, feeds, persistence lag) and the worker ready."""

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the supervisor exited with {self.process.returncode}:\n{self.output()}")
            return self.health()[0] == 200

        try:
            wait_until(healthy, timeout_s, "/api/health 200", interval_s=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.health()}\n{self.output()}") from None

    def stream_entries(self, after: str = "-") -> list[tuple[bytes, dict[bytes, bytes]]]:
        """The stream's entries from `after` (an id, "(id" exclusive), all of them by default."""
        return cast(list[tuple[bytes, dict[bytes, bytes]]], self.redis.xrange(keys.SIGNALS_STREAM, after, "+"))

    def stream_ids(self) -> list[str]:
        return [entry_id.decode() for entry_id, _fields in self.stream_entries()]

    def table_ids(self) -> list[str]:
        with sqlite3.connect(self.database, timeout=10) as db:
            return [row[0] for row in db.execute("SELECT stream_id FROM signals_app_signal")]

    # --- making it work -----------------------------------------------------------------------

    def dislocate(self, asset: str = "BTC", seconds: float = 2.0, cheap: str = "binance") -> None:
        rich = "coinbase" if cheap == "binance" else "binance"
        self.dislocate_query(f"asset={asset}&cheap={cheap}&rich={rich}&net_pct=1.2&seconds={seconds}")

    def dislocate_query(self, query: str) -> None:
        status, body = get_json(f"{self.sim_control}/dislocate?{query}")
        assert status == 200, body

    def signals_flow(self, timeout_s: float = 20) -> None:
        """A fresh dislocation reaches `signals:stream`: new entries after it was asked for."""
        before = self.redis.xlen(keys.SIGNALS_STREAM)
        self.dislocate(seconds=1.0)
        try:
            wait_until(lambda: self.redis.xlen(keys.SIGNALS_STREAM) > before, timeout_s, "new signals on the stream")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()}") from None

    def kill(self, name: str) -> int:
        """SIGKILL to the process `name` (only it: its group's leader); its pid."""
        pid = self.pids(name)[-1]
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, starts_before: int, timeout_s: float = 20) -> None:
        try:
            wait_until(lambda: len(self.pids(name)) > starts_before, timeout_s, f"{name} restarted", interval_s=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()}") from None

    def assert_stream_stored_exactly_once(self, timeout_s: float = 30) -> None:
        """Every entry of `signals:stream` is a row of the table, once; no row is from anywhere else."""
        wanted = set(self.stream_ids())
        assert wanted, "no signals at all"

        def stored() -> bool:
            return wanted <= set(self.table_ids())

        try:
            wait_until(stored, timeout_s, "every stream entry stored", interval_s=0.2)
        except AssertionError as exc:
            missing = sorted(wanted - set(self.table_ids()))
            raise AssertionError(
                f"{exc}: {len(missing)} of {len(wanted)} missing, {missing[:5]}\n{self.output()}"
            ) from None
        rows = self.table_ids()
        after = set(self.stream_ids())  # read after the table: whatever the table holds is in it
        assert len(rows) == len(set(rows)), "a stream entry stored twice"
        assert set(rows) <= after, f"rows of no stream entry: {sorted(set(rows) - after)[:5]}"

    def stop(self, timeout_s: float = 40) -> int:
        """Ctrl-C (SIGINT to its group, as a terminal does); its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        self.redis.close()
        return self.process.returncode

    def restarts_since(self, mark: int) -> list[str]:
        """The supervisor's `died` lines after character `mark` of its log."""
        return [line for line in self.log_path.read_text(errors="replace")[mark:].splitlines() if " died with " in line]

    def log_mark(self) -> int:
        return len(self.log_path.read_text(errors="replace"))

    def sleep_with_load(self, seconds: float) -> None:
        """Keep dislocations coming for `seconds` (signals flow into whatever fault is under way)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError, OSError):  # the simulator is not what is under test
                self.dislocate(asset="ETH", seconds=0.5, cheap="coinbase")
            time.sleep(0.7)
