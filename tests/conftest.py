"""Fixtures for the integration tests: a private Redis and the real processes on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from arbsite.redis_server import EmbeddedRedis, free_port
from tests.procs import Proc, get_json, wait_until


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    """A Redis of our own (never the machine's), on a free port."""
    server = EmbeddedRedis().start()
    yield server
    server.cleanup()


class Pipeline:
    """Simulator, ingestor and engine, wired together on free ports."""

    def __init__(self, redis_url: str, tmp_path: Path, record: Path | None = None, sim_args: list[str] | None = None):
        self.redis_url = redis_url
        self.sim = Proc(
            "sim",
            [
                "run_exchange_sim",
                "--port", "binance=0",
                "--port", "coinbase=0",
                "--seed", "7",
                "--rate", "200",
                "--ping-interval", "1",
                "--no-auto-dislocations",
                *(sim_args or []),
            ],
            {},
        )  # fmt: skip
        ready = self.sim.wait_for_line(lambda line: line.startswith("SIM_READY "))
        self.sim_urls: dict[str, str] = orjson.loads(ready.removeprefix("SIM_READY "))
        self.sim_http = {name: url.replace("ws://", "http://") for name, url in self.sim_urls.items()}
        self.ingestor_health = free_port()
        self.engine_health = free_port()
        self.env = {
            "REDIS_URL": redis_url,
            "ZMQ_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
            "HEALTH_PORT": str(self.ingestor_health),
            "ENGINE_HEALTH_PORT": str(self.engine_health),
            "SIM_BINANCE_PORT": self.sim_urls["binance"].rsplit(":", 1)[1],
            "SIM_COINBASE_PORT": self.sim_urls["coinbase"].rsplit(":", 1)[1],
            "MARKET_SOURCE": "sim",
            "FEED_SILENCE_TIMEOUT_S": "2",
            "WS_PING_INTERVAL_S": "1",
            "LOG_LEVEL": "info",
        }
        self.engine = Proc("engine", ["run_engine"], self.env)
        ingest_args = ["run_ingestor"] + (["--record", str(record)] if record else [])
        self.ingestor = Proc("ingestor", ingest_args, self.env)
        wait_until(lambda: self.ingestor_status()[0] == 200, 20, "every feed live", interval_s=0.1)
        wait_until(lambda: self.engine_status()[0] == 200, 20, "engine answering", interval_s=0.1)

    def ingestor_status(self) -> tuple[int, dict[str, Any]]:
        return get_json(f"http://127.0.0.1:{self.ingestor_health}/health")  # type: ignore[return-value]

    def engine_status(self) -> tuple[int, dict[str, Any]]:
        return get_json(f"http://127.0.0.1:{self.engine_health}/health")  # type: ignore[return-value]

    def control(self, action: str, **params: object) -> dict[str, Any]:
        query = "&".join(f"{key}={value}" for key, value in params.items())
        status, body = get_json(f"{self.sim_http['binance']}/sim/{action}?{query}")
        assert status == 200, body
        return body  # type: ignore[return-value]

    def stop(self) -> dict[str, int]:
        """SIGTERM to each process, ingestor first; their exit codes."""
        return {proc.name: proc.terminate(5.0) for proc in (self.ingestor, self.engine, self.sim)}

    def kill(self) -> None:
        for proc in (self.ingestor, self.engine, self.sim):
            proc.kill()

    def output(self) -> str:
        return "\n\n".join(f"--- {p.name}\n{p.output()}" for p in (self.sim, self.ingestor, self.engine))
