"""The exchange simulator: each configured venue's dialect on its own port, driven by the model or a capture.

One `ExchangeSimulator` owns a WebSocket server per configured venue (`DIALECTS`:
Binance spot, Coinbase Exchange, ...), the market model (or a capture replay)
that feeds them, and the control API. Every port also answers plain HTTP: the venue's own
REST market list and the simulator's control endpoints, all JSON:

    GET|POST /sim/status
    GET|POST /sim/dislocate?asset=BTC&cheap=binance&rich=coinbase&net_pct=1.0&seconds=10
    GET|POST /sim/drop[?venue=NAME|all][&mode=close|abort]
    GET|POST /sim/silence[?seconds=5][&venue=NAME|all]   (no seconds: until resumed)
    GET|POST /sim/resume[?venue=NAME|all]
    GET|POST /sim/depeg?currency=USDT[&usd=0.98][&reprice=1|0][&reference=on|off]
    GET|POST /sim/fault?venue=NAME&market=NATIVE&kind=KIND   (one bad order-book frame to the
             market's subscribers: gemini `crossed` or `bad_level`, binance `gap` or
             `crossed`, coinbase `crossed` or `bad_level`, bitfinex `bad_checksum` or
             `crossed`, bitstamp `crossed`; see the dialects)

Parameters are in the query string (a POST body is refused by the HTTP parser
of the WebSocket server). A control request acts on the whole simulator, on
whichever venue port it arrives. Every state change is logged on one line.

The run loop is a handful of steps that tests can drive: `start()`,
`step_model(now_ns)`, `heartbeat(now_ns)`, `control(...)`, `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from ingest_worker.sim.coinbase import SUBSCRIBE_TIMEOUT_S
from ingest_worker.sim.model import (
    DEFAULT_ASSETS,
    STABLECOINS,
    VENUES,
    Dislocation,
    Market,
    MarketModel,
    Quote,
)
from ingest_worker.sim.okx import IDLE_TIMEOUT_S as OKX_IDLE_TIMEOUT_S
from ingest_worker.sim.replay import Capture, ReplayCursor, load_capture
from ingest_worker.sim.venue import VenueServer, json_text, log
from ingest_worker.venues import DEFAULT_FEES_PCT, SIM_PORTS
from ingest_worker.venues import VENUES as REGISTRY

# websockets logs every connection at INFO; the simulator logs its own, shorter, lines.
_ws_log = logging.getLogger("ingest_worker.sim.websockets")
_ws_log.setLevel(logging.WARNING)

REPLAY_BATCH = 2000  # frames sent per loop iteration at most, so that control requests stay answered
REPLAY_MAX_UNSENT = 4 * 1024 * 1024  # replay pauses while a client has this much unread
CONTROL_ENDPOINTS = ("status", "dislocate", "depeg", "drop", "silence", "resume", "fault")
# Each venue's usual simulator port (its declaration's; SIM_<VENUE>_PORT overrides it).
DEFAULT_PORTS: Mapping[str, int] = SIM_PORTS


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulator is built from; `run_exchange_sim` fills it from settings and options."""

    host: str = "127.0.0.1"
    venues: tuple[str, ...] = VENUES  # the dialects to serve, each on its own port
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))  # 0: a free port (see `urls`)
    seed: int = 0
    rate: float = 50.0  # quote updates per second across all markets
    assets: tuple[str, ...] = DEFAULT_ASSETS
    fees_pct: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FEES_PCT))
    auto_dislocations: bool = True
    ping_interval: float | None = 20.0  # server keepalive pings, as Binance (None: off)
    ping_timeout: float | None = 60.0  # no pong within this: the connection is closed
    close_timeout: float = 1.0  # how long a closing handshake may take (shutdown, drop)
    step_s: float = 0.005  # the model's step: frames are batched per step
    heartbeat_s: float = 1.0  # Coinbase heartbeat period
    subscribe_timeout_s: float = SUBSCRIBE_TIMEOUT_S  # Coinbase: subscribe within this or be disconnected
    okx_idle_timeout_s: float = OKX_IDLE_TIMEOUT_S  # OKX: a client that sends nothing this long is disconnected
    replay: Path | None = None  # serve this capture instead of the model
    speed: float = 1.0  # replay pace: N× the recorded one; 0: as fast as possible
    replay_wait: bool = True  # replay starts once every venue of the capture has a subscribed client

    def port(self, venue: str) -> int:
        """The port `venue` listens on (0: a free one)."""
        return self.ports.get(venue, DEFAULT_PORTS.get(venue, 0))


def _dialects() -> dict[str, Callable[[Sequence[Market], SimConfig], VenueServer]]:
    """venue -> its dialect's `dialect(markets, config)`: the module named after it in this package."""
    found: dict[str, Callable[[Sequence[Market], SimConfig], VenueServer]] = {}
    for name in REGISTRY:
        module = importlib.import_module(f"ingest_worker.sim.{name}")
        found[name] = module.dialect
    return found


# venue -> the dialect's server, built from the simulator's markets (it keeps its own) and configuration.
# Every registered venue has one (a venue is its declaration, its parser and its dialect).
DIALECTS: Mapping[str, Callable[[Sequence[Market], SimConfig], VenueServer]] = _dialects()


class ControlError(ValueError):
    """A control request that cannot be carried out; answered with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ExchangeSimulator:
    """Every simulated venue, their feed (model or replay) and the control API."""

    def __init__(self, config: SimConfig, clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.clock = clock
        self.model: MarketModel | None = None
        self.capture: Capture | None = None
        self.cursor: ReplayCursor | None = None
        self.replay_state = "off"
        unknown = [name for name in config.venues if name not in DIALECTS]
        if unknown or not config.venues:
            raise ValueError(
                f"no simulator dialect for {', '.join(unknown) or 'an empty venue list'}; "
                f"simulated venues: {', '.join(DIALECTS)}"
            )
        if config.replay is not None:
            self.capture = load_capture(config.replay)
            markets = self.capture.markets
            self.cursor = ReplayCursor(self.capture.frames, config.speed)
            self.replay_state = "waiting"
        else:
            self.model = MarketModel(
                config.assets,
                clock(),
                seed=config.seed,
                rate=config.rate,
                fees_pct=config.fees_pct,
                venues=config.venues,
                auto_dislocations=config.auto_dislocations,
            )
            markets = self.model.markets
        self.venues: dict[str, VenueServer] = {name: DIALECTS[name](markets, config) for name in config.venues}
        if self.capture is not None:
            for name, venue in self.venues.items():
                venue.replaying([frame.raw for frame in self.capture.frames if frame.exchange == name])
        self.ports: dict[str, int] = {}
        self._servers: list[Server] = []
        self._tasks: list[asyncio.Task[None]] = []

    # --- life cycle ---------------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return {name: f"ws://{shown}:{port}" for name, port in self.ports.items()}

    async def start(self) -> dict[str, str]:
        """Listen on every venue's port and start the feed; the venues' URLs."""
        config = self.config
        for name, venue in self.venues.items():
            server = await serve(
                venue.handle,
                config.host,
                config.port(name),
                process_request=partial(self._process_request, venue),
                compression=None,  # the frames are small; deflate would cost more CPU than it saves
                ping_interval=config.ping_interval,
                ping_timeout=config.ping_timeout,
                close_timeout=config.close_timeout,
                max_size=2**16,  # requests are small; a client has no business sending more
                logger=_ws_log,
            )
            self._servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]
            log.info("%s: listening on %s", name, self.urls[name])
        if self.capture is not None:
            log.info("replay of %s at %s: %s", config.replay, _speed(config.speed), self.capture.summary())
            self._spawn(self._run_replay())
        else:
            assert self.model is not None
            log.info(
                "model: assets %s, %g quote updates/s, seed %d, dislocations %s",
                ",".join(self.model.assets),
                self.model.rate,
                config.seed,
                "every 8-20 s" if config.auto_dislocations else "only when asked",
            )
            self._spawn(self._run_model())
            self._spawn(self._run_heartbeats())
        return self.urls

    async def close(self) -> None:
        """Stop the feed, close every connection (1001 going away) and every venue's server."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for server in self._servers:
            server.close(close_connections=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        log.info("simulator closed")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        task.add_done_callback(_log_crash)
        self._tasks.append(task)

    # --- the model feed -------------------------------------------------------------------
    async def _run_model(self) -> None:
        step_s = self.config.step_s
        while True:
            self.step_model(self.clock())
            await asyncio.sleep(step_s)

    def step_model(self, now_ns: int) -> int:
        """Advance the model to `now_ns` and send what it produced; the number of updates."""
        model = self.model
        assert model is not None
        step = model.advance(now_ns)
        for event in step.ended:
            log.info("dislocation end: %s", _describe(event))
        for event in step.started:
            log.info("dislocation start: %s", _describe(event))
        quotes = step.quotes
        per_venue: dict[str, list[Quote]] = {name: [] for name in self.venues}
        for quote in quotes:
            per_venue[quote.market.venue].append(quote)
        for name, venue in self.venues.items():
            silent = venue.silent(now_ns)
            venue.publish(per_venue[name], silent)
            venue.due(now_ns, silent)
        for venue in self.venues.values():
            venue.flush()
        return len(quotes)

    async def _run_heartbeats(self) -> None:
        period = self.config.heartbeat_s
        while True:
            await asyncio.sleep(period)
            self.heartbeat(self.clock())

    def heartbeat(self, now_ns: int) -> None:
        for venue in self.venues.values():
            venue.heartbeat(now_ns, venue.silent(now_ns))
            venue.flush()

    # --- the replay feed -------------------------------------------------------------------
    async def _run_replay(self) -> None:
        capture = self.capture
        cursor = self.cursor
        assert capture is not None
        assert cursor is not None
        if self.config.replay_wait and capture.venues:
            log.info("replay waits for a subscribed client on %s", " and ".join(capture.venues))
            for name in capture.venues:
                if name in self.venues:
                    await self.venues[name].any_subscribed.wait()
        self.replay_state = "playing"
        log.info("replay started: %d frames", len(capture.frames))
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not cursor.done:
            elapsed_ms = (loop.time() - started) * 1000.0
            batch = cursor.take(elapsed_ms, REPLAY_BATCH)
            if batch:
                now_ns = self.clock()
                silent = {name: venue.silent(now_ns) for name, venue in self.venues.items()}
                writing: VenueServer | None = None
                for frame in batch:
                    if silent.get(frame.exchange, True):  # a venue not served here stays silent
                        continue
                    venue = self.venues[frame.exchange]
                    if venue is not writing:
                        # Written in capture order across the venues' sockets, not venue by venue.
                        if writing is not None:
                            writing.flush()
                        writing = venue
                    venue.send_raw(frame.raw)
                if writing is not None:
                    writing.flush()
            # No backpressure on a live feed; a replay as fast as possible must not bury its client.
            while max(venue.max_unsent_bytes() for venue in self.venues.values()) > REPLAY_MAX_UNSENT:  # noqa: ASYNC110 - polls socket buffers, no event to wait on
                await asyncio.sleep(0.002)
            next_ms = cursor.next_due_ms()
            if next_ms is None:
                break
            await asyncio.sleep(max(0.0, next_ms - (loop.time() - started) * 1000.0) / 1000.0)
        self.replay_state = "finished"
        log.info("replay finished: %d frames sent; connections stay open", cursor.position)

    # --- HTTP: REST and control -----------------------------------------------------------
    def _process_request(self, venue: VenueServer, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        now_ns = self.clock()
        if path == "/sim" or path.startswith("/sim/"):
            if request.method not in ("GET", "POST"):
                return _json_response(connection, 405, {"error": f"{request.method} not allowed: use GET or POST"})
            try:
                body: object = self.control(path.removeprefix("/sim").strip("/"), query, now_ns)
                status = 200
            except ControlError as exc:
                status, body = exc.status, {"error": str(exc)}
            return _json_response(connection, status, body)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if not upgrade:
            answer = venue.rest(path, query, now_ns)
            if answer is not None:
                if request.method != "GET":
                    return _json_response(connection, 405, {"error": f"{request.method} not allowed: use GET"})
                return _json_response(connection, *answer)
        if not venue.accepts_path(path):
            return _json_response(connection, 404, {"error": f"no such path on the {venue.name} simulator: {path}"})
        return None  # a WebSocket handshake (or a plain GET of a WebSocket path: websockets answers 426)

    def control(self, action: str, query: Mapping[str, list[str]], now_ns: int) -> dict[str, Any]:
        """Carry out one control request; its JSON answer. ControlError for a bad one."""
        if action == "status":
            return self.status(now_ns)
        if action == "dislocate":
            return self._dislocate(query, now_ns)
        if action == "depeg":
            return self._depeg(query)
        if action == "drop":
            abort = _param(query, "mode", "close") == "abort"
            if _param(query, "mode", "close") not in ("close", "abort"):
                raise ControlError(400, "mode must be close or abort")
            dropped = {name: self.venues[name].drop(abort=abort) for name in self._venues_of(query)}
            return {"ok": True, "dropped": dropped, "mode": "abort" if abort else "close"}
        if action == "silence":
            text = _param(query, "seconds", "")
            seconds = None if text == "" else _number(text, "seconds")
            if seconds is not None and not 0.0 < seconds <= 86_400.0:
                raise ControlError(400, "seconds must be in (0, 86400]; leave it out to stay silent until /sim/resume")
            names = self._venues_of(query)
            for name in names:
                self.venues[name].silence(seconds, now_ns)
            return {"ok": True, "silenced": names, "seconds": seconds}
        if action == "resume":
            names = self._venues_of(query)
            resumed = [name for name in names if self.venues[name].resume()]
            return {"ok": True, "resumed": resumed}
        if action == "fault":
            return self._fault(query)
        raise ControlError(404, f"unknown control endpoint /sim/{action}; known: {', '.join(CONTROL_ENDPOINTS)}")

    def _dislocate(self, query: Mapping[str, list[str]], now_ns: int) -> dict[str, Any]:
        if self.model is None:
            raise ControlError(409, "a replay serves recorded frames: there is no model to dislocate")
        asset = _param(query, "asset", "")
        cheap = _param(query, "cheap", "").lower()
        rich = _param(query, "rich", "").lower()
        if not asset or not cheap or not rich:
            raise ControlError(400, "asset, cheap and rich are required (e.g. asset=BTC&cheap=binance&rich=coinbase)")
        net_pct = _number(_param(query, "net_pct", "1.0"), "net_pct")
        seconds = _number(_param(query, "seconds", "10"), "seconds")
        try:
            event, replaced = self.model.dislocate(asset, cheap, rich, net_pct, seconds, now_ns)
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        if replaced is not None:
            log.info("dislocation replaced: %s", _describe(replaced))
        answer: dict[str, Any] = {"ok": True, "dislocation": event.as_dict()}
        if replaced is not None:
            answer["replaced"] = replaced.as_dict()
        return answer

    def _depeg(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        """A stablecoin's USD value, whether its asset markets follow it, whether its reference markets quote."""
        if self.model is None:
            raise ControlError(409, "a replay serves recorded frames: there is no model to depeg")
        currency = _param(query, "currency", "")
        if not currency:
            raise ControlError(400, "currency is required (e.g. currency=USDT&usd=0.98)")
        text = _param(query, "usd", "")
        usd = None if text == "" else _number(text, "usd")
        reprice = _flag(_param(query, "reprice", "1"), "reprice")
        text = _param(query, "reference", "")
        reference = None if text == "" else _flag(text, "reference")
        try:
            state = self.model.set_currency(currency, usd=usd, reprice=reprice, reference=reference)
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        log.info(
            "depeg: %s worth %s USD, asset markets priced at %s, reference markets %s",
            state["currency"],
            state["usd"],
            state["pricing"],
            "quoted" if state["reference"] else "halted",
        )
        return {"ok": True, **state}

    def _fault(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        venue = _param(query, "venue", "").lower()
        market = _param(query, "market", "")
        kind = _param(query, "kind", "")
        if venue not in self.venues or not market or not kind:
            raise ControlError(
                400,
                f"venue (one of {', '.join(self.venues)}), market and kind are required (e.g. venue=gemini"
                "&market=BTCUSD&kind=crossed)",
            )
        try:
            sent = self.venues[venue].fault(market, kind)
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        return {"ok": True, **sent}

    def _venues_of(self, query: Mapping[str, list[str]]) -> list[str]:
        venue = _param(query, "venue", "all").lower()
        if venue == "all":
            return list(self.venues)
        if venue not in self.venues:
            raise ControlError(400, f"venue must be one of: {', '.join(self.venues)}, all")
        return [venue]

    def status(self, now_ns: int) -> dict[str, Any]:
        config = self.config
        status: dict[str, Any] = {
            "mode": "replay" if self.capture is not None else "model",
            "time_ms": now_ns // 1_000_000,
            "venues": {
                name: {"url": self.urls.get(name), **venue.status(now_ns)} for name, venue in self.venues.items()
            },
        }
        if self.model is not None:
            model = self.model
            status["model"] = {
                "seed": config.seed,
                "rate": model.rate,
                "assets": list(model.assets),
                "auto_dislocations": model.auto_dislocations,
                "fees_pct": {venue: model.fees_pct.get(venue) for venue in model.venues},
                "mids": {asset: round(mid, 8) for asset, mid in model.mids.items()},
                "dislocations": [event.as_dict() for event in model.dislocations.values()],
                "stablecoins": {coin: model.currency_state(coin) for coin in STABLECOINS},
            }
        if self.capture is not None and self.cursor is not None:
            status["replay"] = {
                "file": str(config.replay),
                "speed": config.speed,
                "state": self.replay_state,
                "frames": len(self.capture.frames),
                "frames_sent": self.cursor.position,
            }
        return status


def _json_response(connection: ServerConnection, status: int, body: object) -> Response:
    response = connection.respond(status, json_text(body) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


def _param(query: Mapping[str, list[str]], name: str, default: str) -> str:
    values = query.get(name)
    return values[-1].strip() if values else default


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise ControlError(400, f"{name} must be on or off (1/0), not {text!r}")


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ControlError(400, f"{name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise ControlError(400, f"{name} must be finite")
    return value


def _describe(event: Dislocation) -> str:
    net = f"{event.start_net_pct:.2f} %"
    if abs(event.end_net_pct - event.start_net_pct) >= 0.005:
        net += f" -> {event.end_net_pct:.2f} %"
    forced = " (forced)" if event.forced else ""
    seconds = (event.end_ns - event.start_ns) / 1e9
    return f"{event.asset} cheap on {event.cheap}, rich on {event.rich}, net {net} after fees, {seconds:.1f} s{forced}"


def _speed(speed: float) -> str:
    return "full speed" if speed == 0 else f"{speed:g}x the recorded pace"


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("simulator task failed", exc_info=task.exception())


async def run(config: SimConfig, stop: asyncio.Event, on_ready: Callable[[dict[str, str]], None]) -> None:
    """Run the simulator until `stop` is set: start, report the URLs, wait, close."""
    simulator = ExchangeSimulator(config)
    try:
        on_ready(await simulator.start())
        await stop.wait()
    finally:
        await simulator.close()
