"""`make run`'s supervisor: every process starts, and Ctrl-C stops them all cleanly.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group. The supervisor runs
each child in a process group of its own and stops it with one SIGTERM: every process must
exit 0, and so must the supervisor. (Before the children had groups of their own, a daphne that
got the terminal's SIGINT and then the supervisor's SIGTERM could die of the second, exit -15:
a race seen by hand under `make run`, which this test does not reproduce reliably.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from arbsite.redis_server import EmbeddedRedis
from tests.faults.system import run_supervisor_to_end, supervisor_env
from tests.procs import REPO, get_json, wait_until


def test_everything_starts_and_ctrl_c_stops_every_process_with_exit_0(redis_server: EmbeddedRedis, tmp_path: Path):
    env = supervisor_env(redis_server.url, tmp_path)
    web_port, ingestor_port = env["PORT"], env["HEALTH_PORT"]
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
    # No such venue as mtgox: the ingestor cannot start, however often it tries.
    env = supervisor_env(redis_server.url, tmp_path, venues="binance", EXCHANGES="binance,mtgox")
    code, output = run_supervisor_to_end(env)
    assert code == 78, output
    assert "configuration error: EXCHANGES: no venue mtgox" in output, output
    assert "ingestor stopped on its configuration (exit code 78): not restarting" in output, output
    assert "restarting in" not in output, output
    assert output.count("started ingestor") == 1, output


# --- restarts: a group's leader gone is dead; backoff; giving up ------------------------------
# `supervise` on small real processes (python -c), in this process: fast, and the same code as `make run`.


def alive(pid: int) -> bool:
    """Running, not a zombie (nothing may reap orphans in a container)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


FORKING_CHILD = """
import os, sys, time
path = sys.argv[1]
if os.fork() == 0:  # like Celery's pool: a forked child holding the same output pipe
    with open(path, "a") as f:
        f.write(f"forked {os.getpid()}\\n")
    time.sleep(60)
    sys.exit(0)
with open(path, "a") as f:
    f.write(f"leader {os.getpid()}\\n")
print("ready", flush=True)
time.sleep(60)
"""


def pids(path: Path, kind: str) -> list[int]:
    if not path.exists():
        return []
    return [int(line.split()[1]) for line in path.read_text().splitlines() if line.startswith(kind + " ")]


def test_a_leader_killed_while_its_forked_children_live_on_is_restarted_and_the_leftovers_killed(tmp_path: Path):
    from arbsite import supervisor

    record = tmp_path / "pids"
    child = supervisor.Child("forker", [sys.executable, "-c", FORKING_CHILD, str(record)], "")

    async def body() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(supervisor.supervise(child, dict(os.environ), stop))
        try:
            await asyncio.to_thread(wait_until, lambda: len(pids(record, "forked")) == 1, 10, "first run up")
            first_leader, first_forked = pids(record, "leader")[0], pids(record, "forked")[0]
            os.kill(first_leader, signal.SIGKILL)  # the leader only: its forked child keeps the pipe open
            await asyncio.to_thread(wait_until, lambda: len(pids(record, "leader")) == 2, 10, "restarted")
            assert not alive(first_forked), "what was left of the dead leader's group still runs"
            assert child.restarts == 1
        finally:
            stop.set()
            if child.process is not None and child.process.returncode is None:
                os.killpg(child.process.pid, signal.SIGTERM)
            await asyncio.wait_for(runner, 10)

    asyncio.run(body())
    assert not any(alive(pid) for pid in pids(record, "leader") + pids(record, "forked"))


def test_a_process_failing_at_start_up_is_given_up_naming_it_with_its_last_lines(monkeypatch, capsys):
    from arbsite import supervisor

    monkeypatch.setattr(supervisor, "RESTART_PAUSE_S", 0.05)
    script = "import sys; print('binding 127.0.0.1:3000'); print('Address already in use', flush=True); sys.exit(3)"
    child = supervisor.Child("web", [sys.executable, "-c", script], "")
    stop = asyncio.Event()
    asyncio.run(asyncio.wait_for(supervisor.supervise(child, dict(os.environ), stop), 30))
    output = capsys.readouterr().out
    assert stop.is_set(), "giving up on one process stops everything"
    assert child.given_up
    assert output.count("started web") == supervisor.STARTUP_FAILURES_MAX, output
    assert (
        f"web failed at start-up {supervisor.STARTUP_FAILURES_MAX} times in a row (each exited within 10 s, "
        "the last with exit code 3): giving up on it; stopping everything"
    ) in output
    assert "run | web's last 2 lines:\n" in output
    assert output.endswith("run |   web | binding 127.0.0.1:3000\n      run |   web | Address already in use\n"), output


def test_a_process_that_ran_past_start_up_is_restarted_with_growing_pauses(monkeypatch, capsys):
    from arbsite import supervisor

    monkeypatch.setattr(supervisor, "RESTART_PAUSE_S", 0.05)
    monkeypatch.setattr(supervisor, "STARTUP_FAILURE_S", 0.2)  # runs of 0.4 s are past start-up, yet short
    child = supervisor.Child("engine", [sys.executable, "-c", "import time, sys; time.sleep(0.4); sys.exit(1)"], "")

    async def body() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(supervisor.supervise(child, dict(os.environ), stop))
        await asyncio.to_thread(wait_until, lambda: child.restarts >= 6, 30, "six restarts")
        stop.set()
        await asyncio.wait_for(runner, 10)

    asyncio.run(body())
    output = capsys.readouterr().out
    assert not child.given_up
    pauses = [
        float(line.rsplit("restarting in ", 1)[1].split()[0]) for line in output.splitlines() if "restarting in" in line
    ]
    assert pauses[:6] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6], output


def test_the_pause_doubles_after_each_short_run_up_to_its_cap():
    from arbsite.supervisor import RESTART_PAUSE_MAX_S, restart_pause

    assert [restart_pause(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert restart_pause(50) == RESTART_PAUSE_MAX_S


def test_make_run_gives_up_on_a_web_process_whose_port_is_taken_and_stops_everything(
    redis_server: EmbeddedRedis, tmp_path: Path
):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env = supervisor_env(redis_server.url, tmp_path, venues="binance", PORT=str(taken.getsockname()[1]))
    try:
        code, output = run_supervisor_to_end(env)
    finally:
        taken.close()
    assert code == 1, output
    assert "web failed at start-up 4 times in a row" in output, output
    assert "Address already in use" in output.split("web's last", 1)[1], output
    assert "gave up on web: it failed at start-up" in output, output
    stopped = [line for line in output.splitlines() if "stopped: exit codes" in line]
    assert stopped, output
    assert "'sim': 0, 'engine': 0, 'ingestor': 0" in stopped[-1], output
