"""`make run`'s supervisor: every process starts, and Ctrl-C stops them all cleanly.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group. The supervisor runs
each child in a process group of its own and stops it with one SIGTERM: every process must
exit 0, and so must the supervisor. (Before the children had groups of their own, a daphne that
got the terminal's SIGINT and then the supervisor's SIGTERM could die of the second, exit -15:
a race seen by hand under `make run`, which this test does not reproduce reliably.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from arbsite.redis_server import EmbeddedRedis, free_port
from tests.procs import REPO, get_json, wait_until


def test_everything_starts_and_ctrl_c_stops_every_process_with_exit_0(redis_server: EmbeddedRedis, tmp_path: Path):
    web_port, ingestor_port, engine_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_server.url,
        "PORT": str(web_port),
        "HEALTH_PORT": str(ingestor_port),
        "ENGINE_HEALTH_PORT": str(engine_port),
        "INGESTOR_HEALTH_URL": f"http://127.0.0.1:{ingestor_port}/health",
        "ZMQ_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "SIM_VENUES": "binance,coinbase",
        "EXCHANGES": "binance,coinbase",
        "SIM_BINANCE_PORT": str(free_port()),
        "SIM_COINBASE_PORT": str(free_port()),
    }
    env.pop("TEST_DATABASE_URL", None)
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "arbsite.supervisor"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a shell gives a foreground job
        )
        try:

            def answering() -> bool:
                if supervisor.poll() is not None:
                    raise AssertionError(f"the supervisor exited with {supervisor.returncode}:\n{log_path.read_text()}")
                # The Celery worker installs its SIGTERM handler while it boots: stop it once ready.
                return (
                    get_json(f"http://127.0.0.1:{ingestor_port}/health")[0] == 200
                    and get_json(f"http://127.0.0.1:{web_port}/api/health")[0] == 200
                    and any("worker |" in line and "ready." in line for line in log_path.read_text().splitlines())
                )

            wait_until(answering, 60, "feeds live and the web process healthy", interval_s=0.2)
            os.killpg(supervisor.pid, signal.SIGINT)  # Ctrl-C
            code = supervisor.wait(timeout=30)
        finally:
            if supervisor.poll() is None:
                os.killpg(supervisor.pid, signal.SIGKILL)
                supervisor.wait()
    output = log_path.read_text()
    stopped = [line for line in output.splitlines() if "stopped: exit codes" in line]
    assert stopped, output
    assert stopped[-1].endswith("{'sim': 0, 'engine': 0, 'ingestor': 0, 'web': 0, 'worker': 0}"), output
    assert code == 0, output


def test_a_process_that_stops_on_its_configuration_is_not_restarted(redis_server: EmbeddedRedis, tmp_path: Path):
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_server.url,
        "PORT": str(free_port()),
        "HEALTH_PORT": str(free_port()),
        "ENGINE_HEALTH_PORT": str(free_port()),
        "ZMQ_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "SIM_VENUES": "binance",
        "EXCHANGES": "binance,mtgox",  # no such venue: the ingestor cannot start, however often it tries
        "SIM_BINANCE_PORT": str(free_port()),
    }
    env.pop("TEST_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "arbsite.supervisor"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=90,
        start_new_session=True,
    )
    output = done.stdout.decode()
    assert done.returncode == 78, output
    assert "configuration error: EXCHANGES: no venue mtgox" in output, output
    assert "ingestor stopped on its configuration (exit code 78): not restarting" in output, output
    assert "restarting in" not in output, output
    assert output.count("started ingestor") == 1, output
