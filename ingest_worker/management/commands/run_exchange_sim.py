"""`manage.py run_exchange_sim`: local venue servers (Binance, Coinbase, ...) fed by the market model or a capture.

Prints one machine-readable line on stdout once every port listens,
`SIM_READY {"binance": "ws://127.0.0.1:9101", "coinbase": "ws://127.0.0.1:9102"}`
(one entry per venue of `--venues`), logs every state change on stderr, and exits
0 on SIGINT/SIGTERM after closing every connection. The work is `ingest_worker.sim.server`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uvloop
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest_worker.sim.model import parse_assets
from ingest_worker.sim.okx import IDLE_TIMEOUT_S as OKX_IDLE_TIMEOUT_S
from ingest_worker.sim.server import DEFAULT_PORTS, DIALECTS, SimConfig, run
from ingest_worker.venues import DEFAULT_FEES_PCT

log = logging.getLogger("ingest_worker.sim")


class Command(BaseCommand):
    help = (
        "Run the exchange simulator: a WebSocket server per venue (Binance spot, Coinbase Exchange, ...; with "
        "their REST market lists and the /sim/ control endpoints) driven by a market model, or replaying a capture."
    )
    requires_system_checks = ()  # touches no model or database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="address to bind (default SIM_HOST, 127.0.0.1)")
        parser.add_argument(
            "--venues",
            default=None,
            help=f"comma-separated venues to simulate, of {','.join(DIALECTS)} (default SIM_VENUES)",
        )
        parser.add_argument(
            "--port",
            action="append",
            default=[],
            metavar="VENUE=PORT",
            help="a venue's port, 0: a free one (default SIM_<VENUE>_PORT); repeat for several venues",
        )
        parser.add_argument("--seed", type=int, default=None, help="model seed (default SIM_SEED)")
        parser.add_argument("--rate", type=float, default=50.0, help="quote updates per second, all markets (50)")
        parser.add_argument("--assets", default=None, help="comma-separated base assets (default SIM_ASSETS)")
        parser.add_argument(
            "--ping-interval", type=float, default=20.0, help="seconds between server pings; 0 turns them off (20)"
        )
        parser.add_argument(
            "--okx-idle-timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="OKX closes a connection that sent nothing for this long (30, as OKX)",
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
        venues = parse_venues(options["venues"] if options["venues"] is not None else settings.SIM_VENUES or DIALECTS)
        ports = {venue: settings.SIM_PORTS.get(venue, DEFAULT_PORTS[venue]) for venue in venues}
        for text in options["port"]:
            venue, sep, number = text.partition("=")
            venue = venue.strip().lower()
            if not sep or venue not in venues:
                raise CommandError(f"--port {text}: VENUE=PORT with VENUE one of {', '.join(venues)}")
            try:
                ports[venue] = int(number)
            except ValueError:
                raise CommandError(f"--port {text}: {number!r} is not a port number") from None
        for venue, port in ports.items():
            if not 0 <= port <= 65535:
                raise CommandError(f"{venue} port {port}: a port is 0..65535 (0 picks a free one)")
        taken: dict[int, str] = {}
        for venue, port in ports.items():
            if port and port in taken:
                raise CommandError(f"{taken[port]} and {venue} cannot share port {port}")
            taken[port] = venue
        rate: float = options["rate"]
        if not (math.isfinite(rate) and 0 <= rate <= 1_000_000):
            raise CommandError(f"--rate {rate}: quote updates per second, 0..1000000")
        ping: float = options["ping_interval"]
        if not (math.isfinite(ping) and ping >= 0):
            raise CommandError(f"--ping-interval {ping}: seconds >= 0")
        okx_idle: float | None = options["okx_idle_timeout"]
        if okx_idle is not None and not (math.isfinite(okx_idle) and okx_idle > 0):
            raise CommandError(f"--okx-idle-timeout {okx_idle}: seconds > 0")
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
            venues=venues,
            ports=ports,
            seed=seed,
            rate=rate,
            assets=assets,
            fees_pct={**DEFAULT_FEES_PCT, **settings.FEES_PCT},
            auto_dislocations=not options["no_auto_dislocations"],
            ping_interval=ping or None,
            okx_idle_timeout_s=okx_idle if okx_idle is not None else OKX_IDLE_TIMEOUT_S,
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


def parse_venues(text: str | Iterable[str]) -> tuple[str, ...]:
    """`"binance, OKX"` -> ("binance", "okx"); CommandError for an empty list, a repeat or a venue without a dialect."""
    items = text.split(",") if isinstance(text, str) else list(text)
    venues: list[str] = []
    for item in items:
        name = item.strip().lower()
        if not name:
            continue
        if name not in DIALECTS:
            raise CommandError(f"--venues: no simulator dialect for {name!r}; simulated: {', '.join(DIALECTS)}")
        if name in venues:
            raise CommandError(f"--venues: {name} is listed twice")
        venues.append(name)
    if not venues:
        raise CommandError("--venues: no venue given")
    return tuple(venues)


def _stop(stop: asyncio.Event, name: str) -> None:
    if not stop.is_set():
        log.info("%s received: closing connections and stopping", name)
    stop.set()


def _ready(urls: dict[str, str]) -> None:
    # The one machine-readable line: tests and supervisors read the chosen ports from it.
    sys.stdout.write(f"SIM_READY {json.dumps(urls)}\n")
    sys.stdout.flush()
