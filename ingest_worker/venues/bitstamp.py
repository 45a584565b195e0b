"""Bitstamp WebSocket v2 (`wss://ws.bitstamp.net`): order books (book ticks, the top too), trades.

Every frame is `{"event": ..., "channel": "<channel>_<pair>", "data": {...}}`, the pair a
lower-case url symbol (`btcusd`, `usdteur`, `xlmgbp`, `gbpusd`). Books (DESIGN.md "Depth"):

* Live, the book comes from `order_book_<pair>`: each message is a full snapshot of the top
  100 levels, best first, so it replaces the pair's book, and a book tick of its top
  `depth_levels` levels is sent when they changed (only those levels are read). A message
  that cannot be a book (a bad number, levels out of order, a crossed book) is dropped
  under its reason with the book; no resync is asked for, since the next message is a
  whole snapshot again.
* The recordings carry `diff_order_book_<pair>` instead: level updates (amount 0 removes a
  level) applied to a book seeded by the REST snapshot (`/api/v2/order_book/<pair>`, given
  to `seed` with its URL, as normalize and replay do with a capture's `rest` lines, or to
  `load_snapshot` with its pair). As Bitstamp's docs have it, an event whose microtimestamp
  is at or before the snapshot's is already in it and is skipped (`older_than_snapshot`).
  Diffs before a pair's first snapshot are held for it (at most MAX_HELD_DIFFS, counted as
  ignored `awaiting_snapshot`): the documented order is to subscribe, buffer, then fetch the
  snapshot and apply the buffered events newer than it. The diffs
  carry neither a sequence number nor a checksum, so the book is checked the only ways it
  can be: event times never go backwards, and the book never ends up crossed (a crossing
  order is matched, never rested). Each failure, and a diff or snapshot that cannot be
  applied, drops the book (`book_gap`, `crossed_book` for a snapshot, or the bad number's
  reason) and names the pair in `resync_needed`, once per loss; every diff until a snapshot
  seeds it again is dropped as `book_gap`. The live client subscribes `order_book` only, so
  nothing asks it for a diff book's snapshot.

A frame that leaves the top `depth_levels` levels as they were gives no tick
(`book_unchanged`), as does a book with an empty side (`one_sided_book`). Wire fields used:

    order_book, diff_order_book   data.bids / data.asks: [[price, amount], ...] as decimal strings
                                  (best first in order_book), data.microtimestamp: event time, Unix µs
                                  as a decimal string, data.timestamp: the same in seconds
    live_trades                   event "trade", data.price / data.amount: JSON numbers (also as
                                  price_str / amount_str), data.microtimestamp, data.id, data.type: 0 buy 1 sell
    events                        bts:subscription_succeeded, bts:unsubscription_succeeded, bts:heartbeat,
                                  bts:request_reconnect (control), bts:error (an exchange error)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson

from ingest_worker.book import L2Book, Levels
from ingest_worker.venues._levels import misordered, read_levels
from ingest_worker.venues.base import (
    BAD_TIMESTAMP,
    BOOK_GAP,
    DEPTH_LEVELS,
    MALFORMED_JSON,
    MAX_TICK_AGE_MS,
    MISSING_FIELD,
    UNEXPECTED,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    VenueParser,
)
from ingest_worker.venues.declaration import SimProfile, Venue
from signals_app.contracts.symbols import SymbolTable, split_concatenated
from signals_app.contracts.tick import Tick

# --- declaration ----------------------------------------------------------------
NAME = "bitstamp"
LIVE_WS_URL = "wss://ws.bitstamp.net"
LIVE_REST_URL = "https://www.bitstamp.net"
MARKETS_PATH = "/api/v2/trading-pairs-info/"
ORDER_BOOK_PATH = "/api/v2/order_book/{pair}"  # the REST snapshot that seeds a diff_order_book stream
CHANNELS = {"quote": "order_book", "trade": "live_trades"}
BOOK_CHANNEL = "order_book"  # full top-100 snapshots (live)
DIFF_BOOK_CHANNEL = "diff_order_book"  # level updates on a REST snapshot (as recorded)
TRADES_CHANNEL = "live_trades"
CONTROL_EVENTS = frozenset(
    {"bts:subscription_succeeded", "bts:unsubscription_succeeded", "bts:heartbeat", "bts:request_reconnect"}
)
# Real Bitstamp public channels we do not use (counted as ignored).
IGNORED_CHANNELS = frozenset({"live_orders", "detail_order_book", "full_order_book"})
# Quote currencies of Bitstamp's markets, longest first: the offline split of `usdteur`, `gusdusd`.
BITSTAMP_QUOTES: tuple[str, ...] = ("USDT", "USDC", "PAX", "USD", "EUR", "GBP", "CHF", "BTC", "ETH")
MAX_HELD_DIFFS = 1000  # diffs held per pair for its first snapshot; beyond, the oldest goes
# Outcomes of a diff that gives no tick, counted as ignored under these kinds.
OLDER_THAN_SNAPSHOT = "older_than_snapshot"  # a diff the snapshot already contains
AWAITING_SNAPSHOT = "awaiting_snapshot"  # a diff held for the pair's first snapshot


def to_native(symbol: str) -> str:
    """`BTC/USD` -> `btcusd`."""
    return symbol.replace("/", "").lower()


def split_pair(native: str) -> tuple[str, str] | None:
    """`usdteur` -> (`USDT`, `EUR`), at the longest known quote; None when it is no Bitstamp pair name."""
    if not (0 < len(native) <= 24 and native.isascii() and native.isalnum() and native.islower()):
        return None
    return split_concatenated(native, BITSTAMP_QUOTES)


def subscribe_message(channel: str) -> dict[str, Any]:
    return {"event": "bts:subscribe", "data": {"channel": channel}}


def connect_url(ws_base: str) -> str:
    return ws_base


def subscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """One `bts:subscribe` per channel and pair: Bitstamp takes a single channel per request."""
    return [subscribe_message(f"{channel}_{native}") for native in natives for channel in CHANNELS.values()]


def markets_from_rest(payload: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(native, base, quote) of every enabled market in a `/api/v2/trading-pairs-info/` answer."""
    markets = []
    for pair in payload:
        base, sep, quote = str(pair.get("name", "")).partition("/")
        if sep and base and quote and pair.get("trading", "Enabled") == "Enabled":
            markets.append((pair["url_symbol"], base, quote))
    return markets


# --- parser -----------------------------------------------------------------------
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_MAX_MICROS = 2**62
_Diff = tuple[int, list[tuple[float, float]], list[tuple[float, float]]]  # microtimestamp, bid and ask changes


class _DiffBook(L2Book):
    """One market's order book from a REST snapshot and diff_order_book updates, and their times."""

    __slots__ = ("micros", "snapshot_micros")

    def __init__(self, micros: int) -> None:
        super().__init__()
        self.snapshot_micros = micros  # diffs at or before it are already in the snapshot
        self.micros = micros  # event time of the last change applied

    def apply(self, micros: int, bids: Levels, asks: Levels) -> bool:
        """Apply the diff at `micros` (after the snapshot); False, changing nothing, when it is
        older than the last one applied (event times never go backwards)."""
        if micros < self.micros:
            return False
        self.update(bids, asks)
        self.micros = micros
        return True


def _micros(value: object) -> int | None:
    """Unix µs from Bitstamp's decimal string (or a JSON integer); None when it is not one."""
    if value.__class__ is str:
        text: str = value  # type: ignore[assignment]
        if 0 < len(text) <= 18 and text.isascii() and text.isdigit():
            return int(text)
        return None
    if value.__class__ is int and 0 <= value < _MAX_MICROS:  # type: ignore[operator]
        return value  # type: ignore[return-value]
    return None


class BitstampParser(VenueParser):
    """Bitstamp frames to ticks; keeps each market's book of order_book and of diff_order_book."""

    name = NAME

    def __init__(
        self,
        symbols: SymbolTable | None = None,
        *,
        max_age_ms: int | None = MAX_TICK_AGE_MS,
        depth_levels: int = DEPTH_LEVELS,
    ) -> None:
        super().__init__(symbols, max_age_ms=max_age_ms, depth_levels=depth_levels)
        self._books: dict[str, _DiffBook] = {}  # pair -> seeded diff book
        self._unseeded: set[str] = set()  # pairs whose diffs came before their first snapshot
        self._lost: set[str] = set()  # pairs whose seeded diff book was dropped: a resync asked, once
        self._held: dict[str, list[_Diff]] = {}  # pair -> diffs before its first snapshot, oldest first
        self._full_books: dict[str, L2Book] = {}  # order_book pair -> the top levels of its last message

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_pair)

    # --- what the ingestor calls besides parse ------------------------------------
    def seed(self, url: str, body: str | bytes, recv_ns: int) -> list[Tick]:
        """Seed the diff book of the pair `url` names (`.../api/v2/order_book/<pair>`) with the REST
        answer `body`: a capture's `rest` line in normalize and replay. As `load_snapshot`."""
        path = urlsplit(url).path.rstrip("/")
        prefix, _, pair = path.rpartition("/")
        if not prefix.endswith(ORDER_BOOK_PATH.rpartition("/")[0]) or not pair:
            self.stats.frames += 1
            return self.drop(UNKNOWN_MESSAGE, recv_ns, f"REST answer of {url}: not an order book")
        return self.load_snapshot(pair, body, recv_ns)

    def load_snapshot(self, pair: str, body: str | bytes | dict[str, Any], recv_ns: int) -> list[Tick]:
        """Seed (or reseed) the diff book of `pair` with a REST `/api/v2/order_book/<pair>` body.

        Counted like a frame: it gives the book tick, or one other outcome. Never raises.
        """
        self.stats.frames += 1
        try:
            ticks = self._load_snapshot(pair, body, recv_ns)
        except Exception as exc:  # noqa: BLE001 - the same safety net as parse()
            self._books.pop(pair, None)
            ticks = self.drop(UNEXPECTED, recv_ns, f"{type(exc).__name__}: {exc}")
        return self.outcome(ticks, recv_ns)

    def awaiting_snapshot(self) -> set[str]:
        """Pairs whose diffs arrive without a seeded book (not seeded yet, or dropped)."""
        return self._unseeded | self._lost

    def reset_books(self) -> None:
        """Forget every book: after a reconnect the updates missed meanwhile make them wrong."""
        self._unseeded.update(self._books)
        self._books.clear()
        self._full_books.clear()
        self._sent_levels.clear()

    # --- frames -------------------------------------------------------------------
    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        event = msg.get("event")
        if event.__class__ is not str:
            if "event" not in msg and "bids" in msg and "asks" in msg and "microtimestamp" in msg:
                # A REST order book body in a recording: it names no pair, so it is not a frame to
                # apply; `seed` takes it, with the pair from the request URL.
                return self.ignore("rest_order_book")
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        if event in CONTROL_EVENTS:
            return self.control(event)
        if event == "bts:error":
            return self.exchange_error(recv_ns, frame)
        channel = msg.get("channel")
        if channel.__class__ is not str:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        kind, _, pair = channel.rpartition("_")
        if kind in IGNORED_CHANNELS:
            return self.ignore(kind)
        if (kind, event) not in _HANDLED:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        symbol = self.symbols.resolve(pair)
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, channel)
        data = msg.get("data")
        if data.__class__ is not dict:
            return self.drop(MISSING_FIELD, recv_ns, f"{channel} without data")
        if kind == DIFF_BOOK_CHANNEL:
            return self._diff(pair, symbol, data, recv_ns)
        if kind == TRADES_CHANNEL:
            return self._trade(symbol, data, recv_ns)
        return self._full_book(pair, symbol, data, recv_ns)

    def _event_ms(self, data: dict[str, Any], recv_ns: int) -> int | None:
        """The event time in Unix ms: microtimestamp, else timestamp (s), else the receive time; None if bad."""
        raw = data.get("microtimestamp")
        if raw is not None:
            micros = _micros(raw)
            return None if micros is None else micros // 1000
        raw = data.get("timestamp")
        if raw is not None:
            seconds = _micros(raw)
            return None if seconds is None or seconds >= _MAX_MICROS // 1_000_000 else seconds * 1000
        return recv_ns // 1_000_000

    def _trade(self, symbol: str, data: dict[str, Any], recv_ns: int) -> list[Tick]:
        raw_price = data.get("price")
        raw_amount = data.get("amount")
        if raw_price is None or raw_amount is None:
            return self.drop(MISSING_FIELD, recv_ns, f"{symbol} trade without price/amount")
        timestamp = self._event_ms(data, recv_ns)
        if timestamp is None:
            return self.drop(BAD_TIMESTAMP, recv_ns, f"{symbol} trade time {data.get('microtimestamp')!r}")
        return self.make_trade(symbol, raw_price, raw_amount, timestamp, recv_ns)

    def _full_book(self, pair: str, symbol: str, data: dict[str, Any], recv_ns: int) -> list[Tick]:
        """An order_book message: the top 100 levels, best first, which replace the pair's book; its
        book tick when its top depth_levels levels changed. Only those levels are read (a book tick
        carries no more). A message that cannot be a book is dropped, and so is the book, until the
        next message: that one is a whole snapshot again, so no resync is asked for."""
        raw_bids = data.get("bids")
        raw_asks = data.get("asks")
        if raw_bids.__class__ is not list or raw_asks.__class__ is not list:
            return self._drop_full_book(pair, symbol, MISSING_FIELD, recv_ns, "without bids/asks")
        n = self.depth_levels
        bids = read_levels(raw_bids[:n], removals=False)
        if isinstance(bids, str):
            return self._drop_full_book(pair, symbol, bids, recv_ns, f"bids {raw_bids[:2]!r}")
        asks = read_levels(raw_asks[:n], removals=False)
        if isinstance(asks, str):
            return self._drop_full_book(pair, symbol, asks, recv_ns, f"asks {raw_asks[:2]!r}")
        wrong = misordered(bids, asks)
        if wrong is not None:
            return self._drop_full_book(pair, symbol, wrong, recv_ns, f"levels {bids[:2]} / {asks[:2]}")
        timestamp = self._event_ms(data, recv_ns)
        if timestamp is None:
            return self._drop_full_book(pair, symbol, BAD_TIMESTAMP, recv_ns, f"time {data.get('microtimestamp')!r}")
        book = self._full_books.get(pair)
        if book is None:
            book = self._full_books[pair] = L2Book()
        book.replace(bids, asks)
        return self.book_tick(symbol, book, timestamp, recv_ns)

    def _drop_full_book(self, pair: str, symbol: str, reason: str, recv_ns: int, detail: str) -> list[Tick]:
        self._full_books.pop(pair, None)
        self.forget_book(symbol)
        return self.drop(reason, recv_ns, f"{symbol} order_book {detail}")

    def _diff(self, pair: str, symbol: str, data: dict[str, Any], recv_ns: int) -> list[Tick]:
        """A diff_order_book event: applied to the pair's seeded book when newer than its snapshot,
        held for the first snapshot when there is none yet."""
        book = self._books.get(pair)
        if book is None and pair in self._lost:  # dropped: nothing to apply diffs to until a snapshot
            return self.drop(BOOK_GAP, recv_ns, f"{symbol} diff while its book waits for a snapshot")
        raw_micros = data.get("microtimestamp")
        if raw_micros is None:
            return self._lose_book(pair, symbol, MISSING_FIELD, recv_ns, "diff without microtimestamp")
        micros = _micros(raw_micros)
        if micros is None:
            return self._lose_book(pair, symbol, BAD_TIMESTAMP, recv_ns, f"diff time {raw_micros!r}")
        if book is not None and micros <= book.snapshot_micros:
            return self.ignore(OLDER_THAN_SNAPSHOT)
        bids = read_levels(data.get("bids"), removals=True)
        asks = read_levels(data.get("asks"), removals=True)
        # A diff that cannot be applied leaves the book without it: wrong from here on.
        if isinstance(bids, str):
            return self._lose_book(pair, symbol, bids, recv_ns, f"diff bids {data.get('bids')!r}")
        if isinstance(asks, str):
            return self._lose_book(pair, symbol, asks, recv_ns, f"diff asks {data.get('asks')!r}")
        if book is None:
            # Before the first snapshot: Bitstamp's order is to subscribe, then fetch the snapshot,
            # so diffs come first; they are held, and those the snapshot holds skipped when it comes.
            held = self._held.setdefault(pair, [])
            held.append((micros, bids, asks))
            if len(held) > MAX_HELD_DIFFS:
                del held[0]
            self._unseeded.add(pair)
            return self.ignore(AWAITING_SNAPSHOT)
        if not book.apply(micros, bids, asks):
            return self._lose_book(pair, symbol, BOOK_GAP, recv_ns, f"diff at {micros} after one at {book.micros}")
        if book.crossed():  # resting orders never cross: an update was missed
            return self._lose_book(pair, symbol, BOOK_GAP, recv_ns, f"book crossed at {micros}")
        return self.book_tick(symbol, book, micros // 1000, recv_ns)

    def _lose_book(self, pair: str, symbol: str, reason: str, recv_ns: int, detail: str) -> list[Tick]:
        """Drop the diff book of `pair` (counted under `reason`); ask once per loss for a new snapshot."""
        self._books.pop(pair, None)
        self._held.pop(pair, None)
        self._unseeded.discard(pair)
        self.forget_book(symbol)
        if pair not in self._lost:
            self._lost.add(pair)
            self.resync_needed.add(pair)
        return self.drop(reason, recv_ns, f"{symbol} {detail}")

    def _load_snapshot(self, pair: str, body: str | bytes | dict[str, Any], recv_ns: int) -> list[Tick]:
        symbol = self.symbols.resolve(pair) if pair.__class__ is str else None
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, pair)
        self._books.pop(pair, None)  # whatever this body holds, the old book is replaced or gone
        self.forget_book(symbol)
        if isinstance(body, dict):
            msg: object = body
        else:
            try:
                msg = _loads(body)
            except _JSONDecodeError:
                return self._lose_book(pair, symbol, MALFORMED_JSON, recv_ns, f"snapshot {body!r:.100}")
        if msg.__class__ is not dict:
            return self._lose_book(pair, symbol, UNKNOWN_MESSAGE, recv_ns, f"snapshot {body!r:.100}")
        data: dict[str, Any] = msg  # type: ignore[assignment]
        raw_micros = data.get("microtimestamp")
        if raw_micros is None:
            return self._lose_book(pair, symbol, MISSING_FIELD, recv_ns, "snapshot without microtimestamp")
        micros = _micros(raw_micros)
        if micros is None:
            return self._lose_book(pair, symbol, BAD_TIMESTAMP, recv_ns, f"snapshot time {raw_micros!r}")
        bids = read_levels(data.get("bids"), removals=False)
        if isinstance(bids, str):
            return self._lose_book(pair, symbol, bids, recv_ns, "snapshot bids")
        asks = read_levels(data.get("asks"), removals=False)
        if isinstance(asks, str):
            return self._lose_book(pair, symbol, asks, recv_ns, "snapshot asks")
        wrong = misordered(bids, asks)
        if wrong is not None:
            return self._lose_book(pair, symbol, wrong, recv_ns, f"snapshot levels {bids[:2]} / {asks[:2]}")
        book = _DiffBook(micros)
        book.replace(bids, asks)
        for held_micros, held_bids, held_asks in self._held.pop(pair, ()):
            if held_micros > book.snapshot_micros and not book.apply(held_micros, held_bids, held_asks):
                return self._lose_book(pair, symbol, BOOK_GAP, recv_ns, f"held diff at {held_micros} out of order")
        if book.crossed():
            return self._lose_book(pair, symbol, BOOK_GAP, recv_ns, "book crossed after its held diffs")
        self._books[pair] = book
        self._unseeded.discard(pair)
        self._lost.discard(pair)
        return self.book_tick(symbol, book, book.micros // 1000, recv_ns)


_HANDLED = frozenset({(BOOK_CHANNEL, "data"), (DIFF_BOOK_CHANNEL, "data"), (TRADES_CHANNEL, "trade")})

# --- the declaration the registry reads (ingest_worker/venues/__init__.py) -----------
VENUE = Venue(
    name=NAME,
    live_ws_url=LIVE_WS_URL,
    live_rest_url=LIVE_REST_URL,
    markets_path=MARKETS_PATH,
    read_markets=markets_from_rest,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    parser=BitstampParser,
    to_native=to_native,
    default_fee_pct=0.4,
    sim_port=9105,
    sim=SimProfile("USD", (1.0, 3.0), 2.5, 0.3, 0.3, 8, reference_markets=("USDT/USD", "USDC/USD")),
)
