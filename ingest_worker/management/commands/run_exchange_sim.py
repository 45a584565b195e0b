"""`manage.py run_exchange_sim`: local Binance and Coinbase servers fed by the market model or a capture.

Prints one machine-readable line on stdout once both ports listen,
`SIM_READY {"binance": "ws://127.0.0.1:9101", "coinbase": "ws://127.0.0.1:9102"}`,
logs every state change on stderr, and exits 0 on SIGINT/SIGTERM after closing
every connection. The work is `ingest_worker.sim.server`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import sys
from pathlib import Path
from typing import Any

import uvloop
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest_worker.sim.model import parse_assets
from ingest_worker.sim.server import SimConfig, run

log = logging.getLogger("ingest_worker.sim")


class Command(BaseCommand):
    help = (
        "Run the exchange simulator: a Binance spot and a Coinbase Exchange WebSocket server (with their REST "
        "market lists and the /sim/ control endpoints) driven by a market model, or replaying a capture."
    )
    requires_system_checks = ()  # touches no model or database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="address to bind (default SIM_HOST, 127.0.0.1)")
        parser.add_argument("--binance-port", type=int, default=None, help="0: a free port (default SIM_BINANCE_PORT)")
        parser.add_argument(
            "--coinbase-port", type=int, default=None, help="0: a free port (default SIM_COINBASE_PORT)"
        )
        parser.add_argument("--seed", type=int, default=None, help="model seed (default SIM_SEED)")
        parser.add_argument("--rate", type=float, default=50.0, help="quote updates per second, all markets (50)")
        parser.add_argument("--assets", default=None, help="comma-separated base assets (default SIM_ASSETS)")
        parser.add_argument(
            "--ping-interval", type=float, default=20.0, help="seconds between server pings; 0 turns them off (20)"
        )
        parser.add_argument(
            "--no-auto-dislocations",
            action="store_true",
            help="no random dislocations: only those asked for with /sim/dislocate",
        )
        parser.add_argument("--replay", type=Path, default=None, metavar="CAPTURE", help="serve this capture file")
        parser.add_argument(
            "--speed", type=float, default=1.0, help="replay pace: N times the recorded one; 0: as fast as possible"
        )
        parser.add_argument(
            "--replay-no-wait",
            action="store_true",
            help="start the replay at once instead of when every venue of the capture has a subscribed client",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = self.config(options)
        try:
            uvloop.run(self.serve(config))
        except OSError as exc:  # the port is taken, the host is not ours, ...
            raise CommandError(f"cannot listen on {config.host}: {exc}") from None

    def config(self, options: dict[str, Any]) -> SimConfig:
        """The simulator's configuration from the options, falling back on the SIM_* settings."""
        ports = {}
        for venue in ("binance", "coinbase"):
            port = options[f"{venue}_port"]
            port = getattr(settings, f"SIM_{venue.upper()}_PORT") if port is None else port
            if not 0 <= port <= 65535:
                raise CommandError(f"--{venue}-port {port}: a port is 0..65535 (0 picks a free one)")
            ports[venue] = port
        if ports["binance"] == ports["coinbase"] != 0:
            raise CommandError(f"binance and coinbase cannot share port {ports['binance']}")
        rate: float = options["rate"]
        if not (math.isfinite(rate) and 0 <= rate <= 1_000_000):
            raise CommandError(f"--rate {rate}: quote updates per second, 0..1000000")
        ping: float = options["ping_interval"]
        if not (math.isfinite(ping) and ping >= 0):
            raise CommandError(f"--ping-interval {ping}: seconds >= 0")
        speed: float = options["speed"]
        if not (math.isfinite(speed) and speed >= 0):
            raise CommandError(f"--speed {speed}: a factor >= 0 (0: as fast as possible)")
        try:
            assets = parse_assets(options["assets"] if options["assets"] is not None else settings.SIM_ASSETS)
        except ValueError as exc:
            raise CommandError(f"--assets: {exc}") from None
        replay: Path | None = options["replay"]
        if replay is not None and not replay.is_file():
            raise CommandError(f"--replay {replay}: no such file")
        seed = options["seed"] if options["seed"] is not None else settings.SIM_SEED
        return SimConfig(
            host=options["host"] or settings.SIM_HOST,
            binance_port=ports["binance"],
            coinbase_port=ports["coinbase"],
            seed=seed,
            rate=rate,
            assets=assets,
            fees_pct=dict(settings.FEES_PCT),
            auto_dislocations=not options["no_auto_dislocations"],
            ping_interval=ping or None,
            replay=replay,
            speed=speed,
            replay_wait=not options["replay_no_wait"],
        )

    async def serve(self, config: SimConfig) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _stop, stop, signal.Signals(signum).name)
        await run(config, stop, _ready)


def _stop(stop: asyncio.Event, name: str) -> None:
    if not stop.is_set():
        log.info("%s received: closing connections and stopping", name)
    stop.set()


def _ready(urls: dict[str, str]) -> None:
    # The one machine-readable line: tests and supervisors read the chosen ports from it.
    sys.stdout.write(f"SIM_READY {json.dumps(urls)}\n")
    sys.stdout.flush()
