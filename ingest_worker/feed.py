"""One exchange's market data: connect, subscribe, parse, push; reconnect forever.

The loop is made of steps a test can drive: `load_markets` (the venue's market list
over HTTP, split over the connections the venue needs), `session` (one WebSocket
connection until it ends) and the backoff between sessions: 1, 2, 4 ... 30 s plus
jitter, back to 1 s after a connection that delivered ticks. A connection silent for
`silence_timeout_s` is declared dead and reopened, and the engine is told (the venue's
quotes stop counting) whenever a connection goes down.

What a venue's declaration (`ingest_worker.venues.declaration.Venue`) may say besides its
URLs, subscribe messages and parser (the feed itself names no venue):

    max_channels_per_connection, channels_per_market (default 1)
        the venue caps the subscriptions of one connection (Bitfinex: 25 channels, two per
        market). The markets are split evenly over as few connections as fit; each has its
        own parser (channel ids, sequence numbers and books belong to a connection), its
        own watchdog and its own reconnect loop.
    keepalive = TextKeepalive("ping", 25.0)
        a text the venue wants from the client at least this often (OKX closes a
        connection that sent nothing for 30 s). Sent every `min(interval, ping_interval_s)`
        whatever else flows; the answer is the parser's business (a control frame).
    resubscribe_messages(natives)
        how to get fresh order-book snapshots of some markets. When the parser drops a book
        (a failed checksum, a gap, a crossed book) it names the market in `resync_needed`;
        the feed sends these messages at once, at most once per market every
        RESYNC_MIN_INTERVAL_S. A venue that declares none gets its connection reopened
        instead, and a resubscription that brings no snapshot within RESYNC_TIMEOUT_S
        reopens the connection too: a new connection starts every book afresh.

A market list that leaves nothing to subscribe to (SYMBOLS or ASSETS and QUOTE_GROUPS that
the venue does not list) is a configuration error (`NothingToSubscribe`): retrying cannot mend
it, so the feed stops and the ingestor exits with the message.

To /health, /metrics and the engine a feed is one venue, whatever its connections. It is
live when every connection is live. When one connection of several ends, the engine is
told the venue is down: FEED_DOWN is the only word the contract has for it
(signals_app/contracts/tick.py), and it is the honest one. The engine forgets every quote
of the venue and closes what they were part of; the markets of the connections still up
come back with their next tick (the engine takes a venue's ticks again as soon as they
come), so no quote from the dead connection ever takes part, and the healthy markets are
out only until they tick again. Withholding the healthy connections' ticks until every
connection is back would throw good prices away; saying nothing would let the dead
connection's last quotes count until they went stale. FEED_UP follows when every
connection is live again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from arbsite.latency import LatencyWindow
from ingest_worker.push import TickPusher
from ingest_worker.record import CaptureWriter
from ingest_worker.venues.base import DEPTH_LEVELS, MAX_TICK_AGE_MS, ParseStats, TextKeepalive, VenueParser
from ingest_worker.venues.declaration import Messages, Venue
from signals_app.contracts.heartbeat import FEED_LIVE, FeedHealth
from signals_app.contracts.symbols import SymbolTable, base_of, quote_of
from signals_app.contracts.tick import FEED_DOWN, FEED_UP

log = logging.getLogger("ingest_worker.feed")

# Feed states, as /health and /metrics show them.
STARTING = "starting"
CONNECTING = "connecting"
LIVE = FEED_LIVE  # the contracted word for a feed that is up (signals_app.contracts.heartbeat)
RECONNECTING = "reconnecting"
STOPPED = "stopped"
STATES = (STARTING, CONNECTING, LIVE, RECONNECTING, STOPPED)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
RESYNC_MIN_INTERVAL_S = 2.0  # a market's book is resubscribed at most this often
RESYNC_TIMEOUT_S = 10.0  # a resubscription without a snapshot after this long reopens the connection


class NothingToSubscribe(Exception):
    """The venue lists none of the markets the configuration asks for: a configuration error."""


@dataclass(frozen=True)
class ConnectionRules:
    """What a venue's declaration says about its connections (see the module docstring)."""

    markets_per_connection: int | None  # None: every market on one connection
    keepalive: TextKeepalive | None
    resubscribe: Messages | None

    @classmethod
    def of(cls, venue: Venue) -> ConnectionRules:
        return cls(venue.markets_per_connection, venue.keepalive, venue.resubscribe_messages)


def split_markets(natives: Sequence[str], per_connection: int | None) -> list[list[str]]:
    """The markets of each connection: as few connections as `per_connection` allows, filled evenly, order kept."""
    if per_connection is None or len(natives) <= per_connection:
        return [list(natives)]
    count = -(-len(natives) // per_connection)
    size, extra = divmod(len(natives), count)
    groups: list[list[str]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        groups.append(list(natives[start:end]))
        start = end
    return groups


class Connection:
    """One WebSocket connection of a feed: its markets, its parser, its state and its counters."""

    def __init__(self, label: str, natives: list[str], parser: VenueParser, number: int | None = None) -> None:
        self.label = label  # "bitfinex", or "bitfinex#2" when the venue needs several
        self.number = number  # 1, 2, ... when the venue needs several; None when one will do
        self.natives = natives
        self.parser = parser
        self.state = STARTING
        self.backoff_s = BACKOFF_FIRST_S
        self.connects = 0
        self.disconnects = 0
        self.dead_declared = 0  # silent past the timeout
        self.frames = 0
        self.ticks_sent = 0
        self.keepalives_sent = 0
        self.resyncs = 0  # markets resubscribed for a fresh snapshot
        self.last_message_ns = 0
        self.resync_sent_ns: dict[str, int] = {}  # market -> when its last resubscription went out
        self.rate_samples: deque[tuple[int, int]] = deque(maxlen=6)  # (ns, frames), about 1 s apart

    def message_rate(self) -> float:
        """Frames per second over the last few seconds (0 when not live)."""
        if self.state != LIVE or len(self.rate_samples) < 2:
            return 0.0
        (first_ns, first_frames), (last_ns, last_frames) = self.rate_samples[0], self.rate_samples[-1]
        return (last_frames - first_frames) / max((last_ns - first_ns) / 1e9, 1e-3)

    def snapshot(self, now_ns: int) -> dict[str, Any]:
        return {
            "label": self.label,
            "state": self.state,
            "markets": len(self.natives),
            "last_message_age_s": (now_ns - self.last_message_ns) / 1e9 if self.last_message_ns else None,
            "frames": self.frames,
            "ticks_sent": self.ticks_sent,
            "connects": self.connects,
            "dead_declared": self.dead_declared,
            "keepalives_sent": self.keepalives_sent,
            "resyncs": self.resyncs,
        }


class Feed:
    """The reconnecting client of one venue, over one or more connections."""

    def __init__(
        self,
        venue: Venue,
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
        depth_levels: int = DEPTH_LEVELS,  # the levels a side each book tick carries
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.venue = venue
        self.name = venue.name
        self.rules = ConnectionRules.of(venue)
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
        self.depth_levels = depth_levels
        self._rng = rng or random.Random()
        self._clock_ns = clock_ns

        self.state = STARTING
        self.natives: list[str] = []
        self.connections: list[Connection] = []
        self.backoff_s = BACKOFF_FIRST_S  # between attempts at the market list
        self.push_latency = LatencyWindow()  # frame received -> its ticks handed to ZeroMQ

    # --- the loop ----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: load markets, then keep every connection up (each retries on its own)."""
        while not self.connections and not stop.is_set():
            try:
                await self.load_markets()
            except asyncio.CancelledError:
                raise
            except NothingToSubscribe:
                self._set_state(STOPPED, "nothing to subscribe to")
                raise
            except (OSError, TimeoutError, ValueError) as exc:
                log.warning("%s: market list failed: %s: %s", self.name, type(exc).__name__, exc)
            except Exception:  # a malformed market list, a bug: the feed retries rather than dies
                log.exception("%s: unexpected failure loading markets; retrying", self.name)
            if not self.connections and not stop.is_set():
                delay = self._next_delay(self)
                self._set_state(RECONNECTING, f"retrying the market list in {delay:.1f} s")
                await _sleep_unless(stop, delay)
        if self.connections:
            await asyncio.gather(*(self._keep_up(connection, stop) for connection in self.connections))
        self._set_state(STOPPED, "stopped")

    async def _keep_up(self, connection: Connection, stop: asyncio.Event) -> None:
        """One connection's loop: connect, stream; on any failure wait and retry."""
        while not stop.is_set():
            ticked = False
            try:
                ticked = await self.session(connection, stop)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.WebSocketException, ValueError) as exc:
                log.warning("%s: connection failed: %s: %s", connection.label, type(exc).__name__, exc)
            except Exception:  # a bug: the connection retries rather than dies
                log.exception("%s: unexpected failure; retrying", connection.label)
            if ticked:
                connection.backoff_s = BACKOFF_FIRST_S  # a good connection resets the backoff
            if stop.is_set():
                break
            delay = self._next_delay(connection)
            self._connection_state(connection, RECONNECTING, f"retrying in {delay:.1f} s")
            await _sleep_unless(stop, delay)

    def _next_delay(self, backing_off: Feed | Connection) -> float:
        delay = backing_off.backoff_s + self._rng.uniform(0, backing_off.backoff_s / 4)
        backing_off.backoff_s = min(backing_off.backoff_s * 2, BACKOFF_MAX_S)
        return delay

    async def load_markets(self) -> None:
        """The venue's market list: builds the strict symbol table, picks the markets, splits them over connections."""
        url = f"{self.rest_base}{self.venue.markets_path}"
        self._set_state(CONNECTING, f"fetching markets from {url}")
        payload = await asyncio.to_thread(_get_json, url)
        markets = self.venue.read_markets(payload)
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
            asked = ", ".join(self.wanted_symbols) or (
                f"assets {', '.join(sorted(self.assets))} in {', '.join(sorted(self.quotes))}"
            )
            raise NothingToSubscribe(f"{self.name}: lists {len(markets)} markets, none of them {asked}")
        groups = split_markets(self.natives, self.rules.markets_per_connection)
        parser_class = self.venue.parser
        self.connections = [
            Connection(
                self.name if len(groups) == 1 else f"{self.name}#{number}",
                group,
                parser_class(table, max_age_ms=self.max_age_ms, depth_levels=self.depth_levels),
                None if len(groups) == 1 else number,
            )
            for number, group in enumerate(groups, start=1)
        ]
        log.info(
            "%s: %d markets listed, subscribing to %d over %d connection(s)",
            self.name,
            len(markets),
            len(self.natives),
            len(self.connections),
        )

    def _wanted(self, symbol: str) -> bool:
        """Without SYMBOLS: a market of an asset in ASSETS quoted in QUOTE_GROUPS, or a reference market."""
        base, quote = base_of(symbol), quote_of(symbol)
        return (base in self.assets and quote in self.quotes) or (base, quote) in self.reference_pairs

    async def session(self, connection: Connection, stop: asyncio.Event) -> bool:
        """One connection, until it closes, goes silent or `stop` is set. True if it delivered ticks."""
        parser = connection.parser
        url = self.venue.connect_url(self.ws_base)
        self._connection_state(connection, CONNECTING, f"connecting to {url}")
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
            connection.connects += 1
            connection.last_message_ns = self._clock_ns()
            connection.resync_sent_ns.clear()
            parser.new_connection()
            for message in self.venue.subscribe_messages(connection.natives):
                await ws.send(orjson.dumps(message).decode())
            helpers = [asyncio.create_task(self._watchdog(ws, stop, connection))]
            keepalive = self.rules.keepalive
            if keepalive is not None:
                interval_s = min(keepalive.interval_s, self.ping_interval_s)
                helpers.append(asyncio.create_task(self._keepalive(ws, connection, keepalive.message, interval_s)))
            parse = parser.parse
            resync_needed = parser.resync_needed  # filled in place by the parser, never replaced
            push = self.pusher.send_ticks  # a frame's ticks in one message
            recorder = self.recorder
            clock_ns = self._clock_ns
            name = self.name
            push_latency = self.push_latency
            try:
                async for frame in ws:
                    recv_ns = clock_ns()
                    connection.frames += 1
                    connection.last_message_ns = recv_ns
                    if recorder is not None:
                        recorder.write(name, recv_ns, frame, connection.number)
                    ticks = parse(frame, recv_ns)
                    if resync_needed:
                        await self._resync(ws, connection)
                    if not ticks:
                        continue
                    connection.ticks_sent += push(ticks)
                    push_latency.add((clock_ns() - recv_ns) / 1000)
                    if not ticked:
                        ticked = True
                        self._connection_state(connection, LIVE, "live")
            except websockets.ConnectionClosedError as exc:
                log.warning("%s: connection lost: %s", connection.label, exc)
            finally:
                for helper in helpers:
                    helper.cancel()
                connection.disconnects += 1
                self.pusher.send_feed_state(name, FEED_DOWN, self._clock_ns() // 1_000_000)
        return ticked

    async def _watchdog(self, ws: ClientConnection, stop: asyncio.Event, connection: Connection) -> None:
        """Close the connection when `stop` is set, when it has been silent too long, or when a resync is stuck."""
        interval = min(1.0, self.silence_timeout_s / 4)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                await ws.close()
                return
            now_ns = self._clock_ns()
            connection.rate_samples.append((now_ns, connection.frames))
            silent_s = (now_ns - connection.last_message_ns) / 1e9
            if silent_s > self.silence_timeout_s:
                connection.dead_declared += 1
                log.warning(
                    "%s: silent for %.1f s, declaring the feed dead and reconnecting", connection.label, silent_s
                )
                await ws.close()
                return
            if connection.parser.resync_needed:  # requests held back by the minimum interval
                await self._resync(ws, connection)
            stuck = self._stuck_resyncs(connection, now_ns)
            if stuck:
                log.warning(
                    "%s: no snapshot for %s within %g s of resubscribing; reconnecting",
                    connection.label,
                    ", ".join(stuck),
                    RESYNC_TIMEOUT_S,
                )
                await ws.close()
                return

    async def _keepalive(self, ws: ClientConnection, connection: Connection, text: str, interval_s: float) -> None:
        """The venue's own keepalive text, every `interval_s`, whatever else flows."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(interval_s)
                await ws.send(text)
                connection.keepalives_sent += 1

    async def _resync(self, ws: ClientConnection, connection: Connection) -> None:
        """Ask the venue for fresh snapshots of the markets whose book the parser dropped."""
        wanted = connection.parser.resync_needed
        now_ns = self._clock_ns()
        sent = connection.resync_sent_ns
        min_gap_ns = RESYNC_MIN_INTERVAL_S * 1e9
        due = sorted(native for native in wanted if native not in sent or now_ns - sent[native] >= min_gap_ns)
        if not due:
            return  # held back: the watchdog looks again within a second
        wanted.difference_update(due)
        messages = connection.parser.resubscribe_messages(due)  # the connection's own, where they differ
        if messages is None:
            resubscribe = self.rules.resubscribe
            if resubscribe is None:
                log.warning(
                    "%s: book of %s dropped; reconnecting for fresh snapshots", connection.label, ", ".join(due)
                )
                await ws.close()
                return
            messages = resubscribe(due)
        for native in due:
            sent[native] = now_ns
        connection.resyncs += len(due)
        log.warning("%s: book of %s dropped; resubscribing for a fresh snapshot", connection.label, ", ".join(due))
        for message in messages:
            await ws.send(orjson.dumps(message).decode())

    def _stuck_resyncs(self, connection: Connection, now_ns: int) -> list[str]:
        """Markets resubscribed more than RESYNC_TIMEOUT_S ago that still have no book."""
        sent = connection.resync_sent_ns
        if not sent:
            return []
        awaiting = connection.parser.awaiting_snapshot()
        served = [n for n, at in sent.items() if n not in awaiting and now_ns - at >= RESYNC_MIN_INTERVAL_S * 1e9]
        for native in served:
            del sent[native]
        return sorted(n for n, at in sent.items() if n in awaiting and now_ns - at > RESYNC_TIMEOUT_S * 1e9)

    # --- state -------------------------------------------------------------------
    def _set_state(self, state: str, detail: str) -> None:
        if state != self.state:
            log.info("%s: %s -> %s (%s)", self.name, self.state, state, detail)
        self.state = state

    def _connection_state(self, connection: Connection, state: str, detail: str) -> None:
        """A connection's new state, and the venue's: live when every connection is."""
        if len(self.connections) > 1 and state != connection.state:
            log.info("%s: %s -> %s (%s)", connection.label, connection.state, state, detail)
        connection.state = state
        states = {each.state for each in self.connections}
        if states == {LIVE}:
            venue_state = LIVE
        elif RECONNECTING in states:
            venue_state = RECONNECTING
        else:
            venue_state = CONNECTING
        was_live = self.state == LIVE
        self._set_state(venue_state, detail if len(self.connections) == 1 else f"{connection.label}: {detail}")
        if venue_state == LIVE and not was_live:
            self.pusher.send_feed_state(self.name, FEED_UP, self._clock_ns() // 1_000_000)

    # --- what /health and /metrics read -------------------------------------------
    @property
    def frames(self) -> int:
        return sum(connection.frames for connection in self.connections)

    @property
    def ticks_sent(self) -> int:
        return sum(connection.ticks_sent for connection in self.connections)

    @property
    def connects(self) -> int:
        return sum(connection.connects for connection in self.connections)

    @property
    def disconnects(self) -> int:
        return sum(connection.disconnects for connection in self.connections)

    @property
    def dead_declared(self) -> int:
        return sum(connection.dead_declared for connection in self.connections)

    @property
    def resyncs(self) -> int:
        return sum(connection.resyncs for connection in self.connections)

    def parse_stats(self) -> ParseStats:
        """The parsers' counters, summed over the connections."""
        return ParseStats.combined(connection.parser.stats for connection in self.connections)

    def last_message_age_s(self) -> float | None:
        """Seconds since the last frame of the connection that has been quiet the longest."""
        heard = [connection.last_message_ns for connection in self.connections if connection.last_message_ns]
        if not heard:
            return None
        return (self._clock_ns() - min(heard)) / 1e9

    def message_rate(self) -> float:
        """Frames per second over the last few seconds, over the live connections."""
        return sum(connection.message_rate() for connection in self.connections)

    def snapshot(self) -> FeedHealth:
        now_ns = self._clock_ns()
        stats = self.parse_stats()
        return {
            "state": self.state,
            "last_message_age_s": self.last_message_age_s(),
            "frames": self.frames,
            "message_rate": round(self.message_rate(), 1),
            "ticks_sent": self.ticks_sent,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "dead_declared": self.dead_declared,
            "resyncs": self.resyncs,
            "markets": len(self.natives),
            "connections": [connection.snapshot(now_ns) for connection in self.connections],
            "latency_frame_to_tick_sent": self.push_latency.percentiles(),
            "parse": stats.as_dict(),
            # Book ticks made, and those whose venue time was over a second off the receive time.
            "books": stats.books(),
        }


async def _sleep_unless(stop: asyncio.Event, delay_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())
