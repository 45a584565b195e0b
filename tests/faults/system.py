"""The whole system under the real supervisor (`python -m arbsite.supervisor`, as `make run`), for tests.

Free ports for every listener, a SQLite database in the test's directory, the test's own Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from arbsite.redis_server import free_port
from tests.procs import REPO


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
