"""Simulator, ingestor and engine for any set of venues, on free ports (tests/conftest.py's
`Pipeline` is the two-venue one with per-test simulator arguments)."""

from __future__ import annotations

from typing import Any

import orjson

from arbsite.redis_server import free_port
from tests.procs import Proc, get_json


class VenuesPipeline:
    def __init__(self, redis_url: str, venues: list[str], *, seed: int, env: dict[str, str] | None = None) -> None:
        self.redis_url = redis_url
        ports = [arg for venue in venues for arg in ("--port", f"{venue}=0")]
        self.sim = Proc(
            "sim",
            ["run_exchange_sim", *ports, "--seed", str(seed), "--rate", "300", "--no-auto-dislocations"],
            {"SIM_VENUES": ",".join(venues)},
        )
        ready = self.sim.wait_for_line(lambda line: line.startswith("SIM_READY "))
        urls: dict[str, str] = orjson.loads(ready.removeprefix("SIM_READY "))
        assert sorted(urls) == sorted(venues)
        self.control_url = urls[venues[0]].replace("ws://", "http://") + "/sim"
        self.ingestor_port = free_port()
        self.engine_port = free_port()
        full_env = {
            "REDIS_URL": redis_url,
            "ZMQ_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
            "HEALTH_PORT": str(self.ingestor_port),
            "ENGINE_HEALTH_PORT": str(self.engine_port),
            "EXCHANGES": ",".join(venues),
            "FEED_SILENCE_TIMEOUT_S": "3",
            **{f"SIM_{venue.upper()}_PORT": url.rsplit(":", 1)[1] for venue, url in urls.items()},
            **(env or {}),
        }
        self.engine = Proc("engine", ["run_engine"], full_env)
        self.ingestor = Proc("ingestor", ["run_ingestor"], full_env)
        self.procs = (self.ingestor, self.engine, self.sim)

    def feeds(self) -> dict[str, Any]:
        _, body = get_json(f"http://127.0.0.1:{self.ingestor_port}/health")
        assert isinstance(body, dict)
        return dict(body["feeds"])

    def engine_health(self) -> dict[str, Any]:
        _, body = get_json(f"http://127.0.0.1:{self.engine_port}/health")
        assert isinstance(body, dict)
        return body

    def control(self, action: str, **params: object) -> dict[str, Any]:
        query = "&".join(f"{key}={value}" for key, value in params.items())
        status, body = get_json(f"{self.control_url}/{action}?{query}")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def stop(self) -> dict[str, int]:
        """SIGTERM to each process, ingestor first; their exit codes."""
        return {proc.name: proc.terminate(8.0) for proc in self.procs}

    def kill(self) -> None:
        for proc in self.procs:
            proc.kill()

    def output(self) -> str:
        return "\n\n".join(f"--- {p.name}\n{p.output()}" for p in self.procs)
