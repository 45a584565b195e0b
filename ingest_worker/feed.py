"""One exchange's market-data connection: connect, subscribe, parse, push; reconnect forever.

The loop is made of steps a test can drive: `load_markets` (the venue's market
list over HTTP), `session` (one WebSocket connection until it ends) and the
backoff between sessions: 1, 2, 4 ... 30 s plus jitter, back to 1 s after a
connection that delivered ticks. A feed silent for `silence_timeout_s` is
declared dead and reconnected, and the engine is told (its quotes stop
counting) whenever a feed goes down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from arbsite.latency import LatencyWindow
from ingest_worker.push import TickPusher
from ingest_worker.record import CaptureWriter
from ingest_worker.symbols import SymbolTable, base_of, quote_of
from ingest_worker.venues import PARSERS
from ingest_worker.venues.base import MAX_TICK_AGE_MS, VenueParser
from signals_app.contracts.tick import FEED_DOWN, FEED_UP

log = logging.getLogger("ingest_worker.feed")

# Feed states, as /health and /metrics show them.
STARTING = "starting"
CONNECTING = "connecting"
LIVE = "live"
RECONNECTING = "reconnecting"
STOPPED = "stopped"
STATES = (STARTING, CONNECTING, LIVE, RECONNECTING, STOPPED)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0


class Feed:
    """The reconnecting client of one venue."""

    def __init__(
        self,
        venue: ModuleType,
        *,
        ws_base: str,
        rest_base: str,
        pusher: TickPusher,
        symbols: Iterable[str] = (),
        assets: Iterable[str] = (),
        quotes: Iterable[str] = (),
        quote_groups: Iterable[Iterable[str]] = (),
        recorder: CaptureWriter | None = None,
        silence_timeout_s: float = 10.0,
        ping_interval_s: float = 20.0,
        max_age_ms: int | None = MAX_TICK_AGE_MS,  # None: no clock check
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.venue = venue
        self.name: str = venue.NAME
        self.ws_base = ws_base.rstrip("/")
        self.rest_base = rest_base.rstrip("/")
        self.pusher = pusher
        self.recorder = recorder
        self.wanted_symbols = [symbol.upper() for symbol in symbols]  # canonical; empty: by asset
        self.assets = {asset.upper() for asset in assets}
        self.quotes = {quote.upper() for quote in quotes}
        # Reference markets (USDT/USD: base and quote in one group) give the engine its live rates.
        self.reference_pairs = {
            (base.upper(), quote.upper())
            for group in quote_groups
            for base in group
            for quote in group
            if base != quote
        }
        self.silence_timeout_s = silence_timeout_s
        self.ping_interval_s = ping_interval_s
        self.max_age_ms = max_age_ms
        self._rng = rng or random.Random()
        self._clock_ns = clock_ns

        self.state = STARTING
        self.parser: VenueParser | None = None
        self.natives: list[str] = []
        self.backoff_s = BACKOFF_FIRST_S
        self.connects = 0
        self.disconnects = 0
        self.dead_declared = 0  # silent past the timeout
        self.frames = 0
        self.ticks_sent = 0
        self.last_message_ns = 0
        self._connected_ns = 0
        self.push_latency = LatencyWindow()  # frame received -> its ticks handed to ZeroMQ
        self._rate_samples: deque[tuple[int, int]] = deque(maxlen=6)  # (ns, frames), about 1 s apart

    # --- the loop ----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: load markets, connect, stream; on any failure wait and retry."""
        while not stop.is_set():
            ticked = False
            try:
                if self.parser is None:
                    await self.load_markets()
                ticked = await self.session(stop)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.WebSocketException, ValueError) as exc:
                log.warning("%s: connection failed: %s: %s", self.name, type(exc).__name__, exc)
            except Exception:  # a malformed market list, a bug: the feed retries rather than dies
                log.exception("%s: unexpected failure; retrying", self.name)
            if ticked:
                self.backoff_s = BACKOFF_FIRST_S  # a good connection resets the backoff
            if stop.is_set():
                break
            delay = self.backoff_s + self._rng.uniform(0, self.backoff_s / 4)
            self.backoff_s = min(self.backoff_s * 2, BACKOFF_MAX_S)
            self._set_state(RECONNECTING, f"retrying in {delay:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        self._set_state(STOPPED, "stopped")

    async def load_markets(self) -> None:
        """The venue's market list: builds the strict symbol table and picks the markets to subscribe."""
        url = f"{self.rest_base}{self.venue.MARKETS_PATH}"
        self._set_state(CONNECTING, f"fetching markets from {url}")
        payload = await asyncio.to_thread(_get_json, url)
        markets = self.venue.markets_from_rest(payload)
        table = SymbolTable(markets)
        if self.wanted_symbols:
            natives = [table.native(symbol) for symbol in self.wanted_symbols]
            missing = [s for s, n in zip(self.wanted_symbols, natives, strict=True) if n is None]
            if missing:
                log.warning("%s: not listed, skipped: %s", self.name, ", ".join(missing))
            self.natives = [native for native in natives if native is not None]
        else:
            self.natives = [native for native, _, _ in markets if self._wanted(table.resolve(native) or "")]
        if not self.natives:
            raise ValueError(f"{self.name}: no market to subscribe to")
        self.parser = PARSERS[self.name](table, max_age_ms=self.max_age_ms)
        log.info("%s: %d markets listed, subscribing to %d", self.name, len(markets), len(self.natives))

    def _wanted(self, symbol: str) -> bool:
        """Without SYMBOLS: a market of an asset in ASSETS quoted in QUOTE_GROUPS, or a reference market."""
        base, quote = base_of(symbol), quote_of(symbol)
        return (base in self.assets and quote in self.quotes) or (base, quote) in self.reference_pairs

    async def session(self, stop: asyncio.Event) -> bool:
        """One connection, until it closes, goes silent or `stop` is set. True if it delivered ticks."""
        parser = self.parser
        assert parser is not None
        url = self.venue.connect_url(self.ws_base)
        self._set_state(CONNECTING, f"connecting to {url}")
        ticked = False
        async with connect(
            url,
            ping_interval=self.ping_interval_s,
            ping_timeout=self.ping_interval_s,
            open_timeout=10,
            close_timeout=2,
            max_size=1 << 22,
            compression=None,
        ) as ws:
            self.connects += 1
            self._connected_ns = self.last_message_ns = self._clock_ns()
            for message in self.venue.subscribe_messages(self.natives):
                await ws.send(orjson.dumps(message).decode())
            watchdog = asyncio.create_task(self._watchdog(ws, stop))
            parse = parser.parse
            push = self.pusher.send_tick
            recorder = self.recorder
            clock_ns = self._clock_ns
            name = self.name
            push_latency = self.push_latency
            try:
                async for frame in ws:
                    recv_ns = clock_ns()
                    self.frames += 1
                    self.last_message_ns = recv_ns
                    if recorder is not None:
                        recorder.write(name, recv_ns, frame)
                    ticks = parse(frame, recv_ns)
                    if not ticks:
                        continue
                    for tick in ticks:
                        if push(tick):
                            self.ticks_sent += 1
                    push_latency.add((clock_ns() - recv_ns) / 1000)
                    if not ticked:
                        ticked = True
                        self._set_state(LIVE, "live")
                        self.pusher.send_feed_state(name, FEED_UP, recv_ns // 1_000_000)
            except websockets.ConnectionClosedError as exc:
                log.warning("%s: connection lost: %s", name, exc)
            finally:
                watchdog.cancel()
                self.disconnects += 1
                self.pusher.send_feed_state(name, FEED_DOWN, self._clock_ns() // 1_000_000)
        return ticked

    async def _watchdog(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        """Close the connection when `stop` is set, or when the feed has been silent too long."""
        interval = min(1.0, self.silence_timeout_s / 4)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                await ws.close()
                return
            self._rate_samples.append((self._clock_ns(), self.frames))
            silent_s = (self._clock_ns() - self.last_message_ns) / 1e9
            if silent_s > self.silence_timeout_s:
                self.dead_declared += 1
                log.warning("%s: silent for %.1f s, declaring the feed dead and reconnecting", self.name, silent_s)
                await ws.close()
                return

    # --- state -------------------------------------------------------------------
    def _set_state(self, state: str, detail: str) -> None:
        if state != self.state:
            log.info("%s: %s -> %s (%s)", self.name, self.state, state, detail)
        self.state = state

    def last_message_age_s(self) -> float | None:
        if not self.last_message_ns:
            return None
        return (self._clock_ns() - self.last_message_ns) / 1e9

    def message_rate(self) -> float:
        """Frames per second over the last few seconds (0 when not connected)."""
        if self.state != LIVE or len(self._rate_samples) < 2:
            return 0.0
        (first_ns, first_frames), (last_ns, last_frames) = self._rate_samples[0], self._rate_samples[-1]
        return (last_frames - first_frames) / max((last_ns - first_ns) / 1e9, 1e-3)

    def snapshot(self) -> dict[str, Any]:
        parser_stats = self.parser.stats.as_dict() if self.parser else {}
        return {
            "state": self.state,
            "last_message_age_s": self.last_message_age_s(),
            "frames": self.frames,
            "message_rate": round(self.message_rate(), 1),
            "ticks_sent": self.ticks_sent,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "dead_declared": self.dead_declared,
            "markets": len(self.natives),
            "latency_frame_to_tick_sent": self.push_latency.percentiles(),
            "parse": parser_stats,
        }


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())
