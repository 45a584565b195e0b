"""Real processes for integration tests: start with free ports, wait until ready, stop with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent


class Proc:
    """A `manage.py` command run as a child process; its output is kept for failure messages."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.lines: list[str] = []
        self._lock = threading.Lock()
        full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "arbsite.settings", "PYTHONUNBUFFERED": "1", **env}
        self.popen = subprocess.Popen(
            [sys.executable, "-u", str(REPO / "manage.py"), *args],
            cwd=REPO,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines[-200:])

    def wait_for_line(self, predicate: Callable[[str], bool], timeout_s: float = 20.0) -> str:
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            with self._lock:
                fresh = self.lines[seen:]
                seen = len(self.lines)
            for line in fresh:
                if predicate(line):
                    return line
            if self.popen.poll() is not None and seen == len(self.lines):
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: no such line within {timeout_s} s:\n{self.output()}")

    def terminate(self, timeout_s: float = 5.0) -> int:
        """SIGTERM, then the exit code; AssertionError if it does not exit within `timeout_s`."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(
                f"{self.name} did not exit within {timeout_s} s of SIGTERM:\n{self.output()}"
            ) from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def get_json(url: str, timeout_s: float = 2.0) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read() or b"null")


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(interval_s)
    raise AssertionError(f"not within {timeout_s} s: {what}")


class Daphne:
    """daphne serving arbsite.asgi on a port (a free one by default), with a SQLite database of its
    own: /api/health checks one, and the suite's (maybe PostgreSQL's test database, created by
    pytest-django in this process only) is not for children. Ready once the API answers."""

    def __init__(self, env: dict[str, str], workdir: Path, port: int | None = None) -> None:
        from arbsite.redis_server import free_port

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"daphne-{time.monotonic_ns()}.log"
        full_env = {
            **os.environ,
            **env,
            "DJANGO_SETTINGS_MODULE": "arbsite.settings",
            "PYTHONUNBUFFERED": "1",
            "PORT": str(self.port),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"sqlite:///{workdir / 'web.sqlite3'}",
        }
        full_env.pop("TEST_DATABASE_URL", None)
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "arbsite.asgi:application"],
            cwd=REPO,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, 30, f"daphne answering on {self.url}:\n{self.output()}", interval_s=0.1)

    def _answers(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"daphne exited with {self.popen.returncode}:\n{self.output()}")
        status, _body = get_json(f"{self.url}/api/signals/history?limit=1")
        return status == 200

    def output(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-80:])

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 10 s; the exit code."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode
