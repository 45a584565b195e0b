"""Binance spot: `<symbol>@bookTicker` quotes, `<symbol>@trade` trades, and order books.

Frames arrive raw (`/ws/<stream>`: the payload itself) or wrapped by the
combined endpoint (`/stream?streams=a/b`: `{"stream": ..., "data": payload}`);
both are accepted. Spot `bookTicker` carries no event time, so its tick's
timestamp is the receive time. Wire field names are Binance's own:

    bookTicker    u: update id, s: symbol, b/B: best bid price/qty, a/A: best ask price/qty
                  (futures add e: "bookTicker", E: event time, T: transaction time)
    trade         e: "trade", E: event time, s: symbol, t: trade id, p: price, q: quantity,
                  T: trade time, m: buyer is maker
    aggTrade      as trade, with a: aggregate trade id (accepted as a trade)
    partial depth `<symbol>@depth<N>[@100ms]`: lastUpdateId, bids/asks: [[price, qty], ...] best first,
                  the top N levels (a full snapshot each time; no symbol, no event time)
    depthUpdate   e: "depthUpdate", E: event time, s: symbol, U: first update id, u: final update id,
                  b/a: [[price, qty], ...] changes, qty "0" removes the level
    REST depth    `/api/v3/depth?symbol=X&limit=1000` (`/api/v1/depth` in 2021 recordings):
                  lastUpdateId, bids, asks, as partial depth

Books (DESIGN.md "Depth"). A partial-depth frame replaces the market's book. A raw one names
no market: it is attributed only by a parser told its connection's single stream
(`BinanceParser(stream="btcusdt@depth20@100ms")`); otherwise it is counted as ignored
(`depth_without_symbol`), never guessed, as is a REST depth body fed as a frame, which looks
the same. Diff depth follows Binance's "How to manage a local order book correctly": events
are buffered (at most MAX_BUFFERED_EVENTS a market; an event that pushes out the oldest is
counted as `depth_buffer_overflow`) until `seed` gives the REST snapshot; then events with
u <= lastUpdateId are discarded, the first applied one must have U <= lastUpdateId + 1 <= u,
and every later one U == the previous u + 1. Anything else is a gap: the book is dropped
(`book_gap`), the market goes to `resync_needed` and `awaiting_snapshot()`, and its events are
buffered again for the next snapshot. A diff that cannot be applied (a bad number) or that
leaves the book crossed drops it the same way, under its own reason. Each book change gives a
book tick of the top `depth_levels` levels when they changed (`book_unchanged` when not); its
timestamp is the event time E, the receive time for partial depth and a bare snapshot. A bad
partial-depth frame drops the book too and names the market in `resync_needed` once, until a
good frame comes (the feed then resubscribes the stream, `resubscribe_messages`).

Live, the client reads `bookTicker`, `trade` and `depth20@100ms` (CHANNELS; 3 streams a market,
so 341 markets a connection under Binance's 1024). Both the bookTicker's quote ticks and the
book ticks reach the engine, and the newest tick sets the market's top: a quote tick carries
no levels, and a walk takes a quote newer than the book first and then only the book's levels
behind it (`engine_worker/book.py` `Quote.ask_levels`/`bid_levels`), so no level better than
the newer top is ever walked; the next depth frame (within 100 ms, its top that quote's, same
update id) replaces the book. Which is newer is decided by Binance's order book update id, not
by arrival: a depth frame whose `lastUpdateId` (a diff's `u`) is below the last bookTicker's `u`
arrived after that quote but shows an older book, so its book tick is followed by that quote
again (the same tick), and the engine keeps the newer top in front of the book's levels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson

from ingest_worker.book import L2Book, Levels
from ingest_worker.venues._levels import read_levels
from ingest_worker.venues.base import (
    BAD_PRICE,
    BAD_SIZE,
    BAD_TIMESTAMP,
    BOOK_GAP,
    CROSSED_BOOK,
    DEPTH_LEVELS,
    MALFORMED_JSON,
    MAX_PRICE,
    MAX_SIZE,
    MAX_TICK_AGE_MS,
    MISSING_FIELD,
    UNEXPECTED,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    VenueParser,
)
from ingest_worker.venues.base import BOOK_UNCHANGED as BOOK_UNCHANGED  # the kind tests count
from ingest_worker.venues.declaration import SimProfile, Venue
from signals_app.contracts.symbols import SymbolTable, split_concatenated
from signals_app.contracts.tick import QUOTE, Tick

# --- declaration ----------------------------------------------------------------
NAME = "binance"
LIVE_WS_URL = "wss://stream.binance.com:9443"
LIVE_REST_URL = "https://api.binance.com"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
# What the live client subscribes to per market. The book is the 20-level partial depth: a whole
# snapshot every 100 ms, so no REST snapshot, no sequence to follow and nothing to resync but a
# bad frame (the next one replaces it). Diff depth would give every change, at the cost of a REST
# snapshot per market per (re)connection against Binance's request weight limits, for levels that
# DEPTH_LEVELS (20) caps anyway.
CHANNELS = {"quote": "bookTicker", "trade": "trade", "book": "depth20@100ms"}
MAX_STREAMS_PER_CONNECTION = 1024  # Binance's cap on the streams of one connection
# Payload types that are real Binance data we do not use (counted as ignored).
IGNORED_EVENTS = frozenset({"kline", "24hrTicker", "24hrMiniTicker", "avgPrice", "outboundAccountPosition"})
DEPTH_SNAPSHOT_PATHS = ("/api/v3/depth", "/api/v1/depth")  # REST answers that seed a diff-depth book
# Partial depth streams: `btcusdt@depth20`, `btcusdt@depth5@100ms` (diff depth is `@depth`, `@depth@100ms`).
PARTIAL_DEPTH_STREAM = re.compile(r"([a-z0-9]+)@depth(5|10|20)(@100ms)?")
MAX_BUFFERED_EVENTS = 1000  # diff events kept per market while it waits for a snapshot
# Outcomes of a book frame that gives no tick, counted as ignored under these kinds (and base.py's
# BOOK_UNCHANGED, which `book_ticks` counts, and ONE_SIDED_BOOK).
DEPTH_BUFFERED = "depth_buffered"  # a diff held until the market's snapshot comes
DEPTH_BUFFER_OVERFLOW = "depth_buffer_overflow"  # held, and the oldest held diff of the market let go
ALREADY_IN_BOOK = "depth_already_in_book"  # a diff the book already holds (u <= its update id)
DEPTH_WITHOUT_SYMBOL = "depth_without_symbol"  # a raw partial-depth (or REST) body with no market to give it to


def to_native(symbol: str) -> str:
    """`BTC/USDT` -> `BTCUSDT`."""
    return symbol.replace("/", "")


def stream_names(natives: Iterable[str]) -> list[str]:
    return [f"{native.lower()}@{channel}" for native in natives for channel in CHANNELS.values()]


def subscribe_message(natives: Iterable[str], request_id: int = 1) -> dict[str, Any]:
    return {"method": "SUBSCRIBE", "params": stream_names(natives), "id": request_id}


def resubscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """UNSUBSCRIBE then SUBSCRIBE of these markets' partial-depth streams: their next frame is a fresh book."""
    streams = [f"{native.lower()}@{CHANNELS['book']}" for native in natives]
    return [
        {"method": "UNSUBSCRIBE", "params": streams, "id": 901},
        {"method": "SUBSCRIBE", "params": streams, "id": 902},
    ]


def connect_url(ws_base: str) -> str:
    """The combined-stream endpoint; streams are added with SUBSCRIBE after connecting."""
    return f"{ws_base}/stream"


def subscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """SUBSCRIBE requests, at most 200 streams each (Binance refuses very long requests)."""
    streams = stream_names(natives)
    return [
        {"method": "SUBSCRIBE", "params": streams[start : start + 200], "id": number}
        for number, start in enumerate(range(0, len(streams), 200), start=1)
    ]


def markets_from_exchange_info(payload: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(native, base, quote) of every trading spot market in an `/api/v3/exchangeInfo` answer."""
    return [
        (market["symbol"], market["baseAsset"], market["quoteAsset"])
        for market in payload.get("symbols", [])
        if market.get("status", "TRADING") == "TRADING"
    ]


MARKETS_PATH = EXCHANGE_INFO_PATH
markets_from_rest = markets_from_exchange_info


# --- parser -----------------------------------------------------------------------
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


# The hot path: bookTicker frames decoded straight into typed structs, the decimal
# strings converted to floats inside msgspec (`strict=False` allows "61837.63" ->
# float and nothing looser than Python's float() would). Anything it refuses, and
# anything that fails validation, takes the general path below, which decides and
# counts; the fast path only ever agrees with it. It takes exactly the six fields
# of a spot bookTicker: any other key (futures' e/E/T, an "e" naming another event,
# a "data" wrapper inside a raw frame) changes what the general path decides, so
# such frames are refused here (`forbid_unknown_fields`) and decided there.
class _BookTicker(msgspec.Struct, forbid_unknown_fields=True):
    u: int  # order book update id
    s: str  # symbol
    b: float  # best bid price
    B: float  # best bid quantity
    a: float  # best ask price
    A: float  # best ask quantity


class _CombinedBookTicker(msgspec.Struct):
    data: _BookTicker


_decode_combined = msgspec.json.Decoder(_CombinedBookTicker, strict=False).decode
_decode_raw = msgspec.json.Decoder(_BookTicker, strict=False).decode
# UnicodeEncodeError: msgspec encodes a str frame to UTF-8 first, and a str holding a
# lone surrogate cannot be; the general path then counts it as malformed JSON.
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeEncodeError)
_new_tuple = tuple.__new__

# A diff event held for the snapshot: U, u, E, bid changes, ask changes.
_Event = tuple[int, int, int, list[tuple[float, float]], list[tuple[float, float]]]


class _DiffBook(L2Book):
    """A diff-depth book: the levels, the id of the last update in them, whether an event followed the snapshot."""

    __slots__ = ("bridged", "update_id")

    def __init__(self, update_id: int) -> None:
        super().__init__()
        self.update_id = update_id  # the snapshot's lastUpdateId, then the last applied event's u
        self.bridged = False  # an event has been applied on the snapshot: the next U must be update_id + 1

    def apply(self, first: int, final: int, bids: Levels, asks: Levels) -> bool:
        """Apply the event U=`first`..u=`final` (u > update_id); False, leaving the book as it was,
        when it does not follow: Binance's first event after the snapshot has U <= lastUpdateId + 1
        <= u, and each later one U == the previous u + 1."""
        if first > self.update_id + 1 or (self.bridged and first != self.update_id + 1):
            return False
        self.update(bids, asks)
        self.update_id = final
        self.bridged = True
        return True


class BinanceParser(VenueParser):
    """Binance spot frames into ticks; keeps the order book of each market with a depth stream.

    `stream`, for a raw `/ws/<stream>` connection, is its single stream: a raw partial-depth
    frame names no market, and is attributed to this stream's market only.
    """

    name = NAME

    def __init__(
        self,
        symbols: SymbolTable | None = None,
        *,
        max_age_ms: int | None = MAX_TICK_AGE_MS,
        depth_levels: int = DEPTH_LEVELS,
        stream: str | None = None,
    ) -> None:
        super().__init__(symbols, max_age_ms=max_age_ms, depth_levels=depth_levels)
        self._symbol_of = self.symbols.resolve
        self._resolved = self.symbols.resolved_get()
        self.stream = stream
        self._partial_books: dict[str, L2Book] = {}  # native -> book of its partial-depth stream
        self._diff_books: dict[str, _DiffBook] = {}  # native -> seeded diff-depth book
        self._buffered: dict[str, list[_Event]] = {}  # native -> diffs waiting for its snapshot, oldest first
        self._lost: set[str] = set()  # natives whose diff book was dropped and not yet reseeded
        self._partial_lost: set[str] = set()  # natives whose partial-depth book was dropped, until a good frame
        # symbol -> (update id, tick) of its last bookTicker quote: a book older than it is followed
        # by it again, so the engine's top stays the newer one (the module's docstring).
        self._quotes: dict[str, tuple[int, Tick]] = {}

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_concatenated)

    def new_connection(self) -> None:
        """A new connection subscribes afresh: its partial-depth streams bring whole books again."""
        super().new_connection()
        self._partial_lost.clear()
        self._quotes.clear()

    def awaiting_snapshot(self) -> set[str]:
        """Markets with diff events but no seeded book (never seeded yet, or dropped on a gap), and
        markets whose partial-depth book was dropped and no good frame has come since."""
        return ((self._lost | self._buffered.keys()) - self._diff_books.keys()) | self._partial_lost

    # --- the REST snapshot ----------------------------------------------------------
    def seed(self, url: str, body: str | bytes, recv_ns: int) -> list[Tick]:
        """Seed (or reseed) the diff book of the market `url` names (`/api/v3/depth?symbol=X`)
        with the REST answer `body`, then apply the diffs held for it; its book tick, or a counted
        outcome. Counted as a frame. Never raises."""
        self.stats.frames += 1
        try:
            ticks = self._seed(url, body, recv_ns)
        except Exception as exc:  # noqa: BLE001 - the same safety net as parse()
            ticks = self.drop(UNEXPECTED, recv_ns, f"{type(exc).__name__}: {exc}")
        return self.outcome(ticks, recv_ns)

    def _seed(self, url: str, body: str | bytes, recv_ns: int) -> list[Tick]:
        parts = urlsplit(url)
        if not parts.path.endswith(DEPTH_SNAPSHOT_PATHS):
            return self.drop(UNKNOWN_MESSAGE, recv_ns, f"REST answer of {url}: not a depth snapshot")
        natives = parse_qs(parts.query).get("symbol")
        if not natives:
            return self.drop(MISSING_FIELD, recv_ns, f"depth snapshot URL without symbol: {url}")
        native = natives[0].upper()
        symbol = self._symbol_of(native)
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        try:
            msg = _loads(body)
        except _JSONDecodeError:
            return self._lose(native, symbol, MALFORMED_JSON, recv_ns, f"depth snapshot of {native}: {body!r}")
        levels = self._snapshot(msg)
        if isinstance(levels, str):
            return self._lose(native, symbol, levels, recv_ns, f"depth snapshot of {native}")
        last_update_id, bids, asks = levels
        book = _DiffBook(last_update_id)
        book.replace(bids, asks)
        timestamp = recv_ns // 1_000_000  # a REST answer has no event time
        for first, final, event_ms, bid_changes, ask_changes in self._buffered.pop(native, ()):
            if final <= book.update_id:
                continue  # the snapshot holds it already
            if not book.apply(first, final, bid_changes, ask_changes):
                return self._lose(
                    native, symbol, BOOK_GAP, recv_ns, f"{native} buffered diff {first}..{final} after {book.update_id}"
                )
            timestamp = event_ms
        self._diff_books[native] = book
        self._lost.discard(native)
        self.forget_book(symbol)  # a new book: sent whatever it holds
        if book.crossed():
            return self._lose(native, symbol, CROSSED_BOOK, recv_ns, f"{native} seeded book is crossed")
        return self._behind_quote(symbol, book.update_id, self.book_ticks(symbol, book, timestamp, recv_ns))

    def _snapshot(self, msg: object) -> tuple[int, list[tuple[float, float]], list[tuple[float, float]]] | str:
        """(lastUpdateId, bids, asks) of a snapshot body, or the drop reason: every size > 0,
        bids strictly descending, asks strictly ascending, best bid below best ask."""
        if msg.__class__ is not dict:
            return UNKNOWN_MESSAGE
        last_update_id = msg.get("lastUpdateId")  # type: ignore[attr-defined]
        if last_update_id.__class__ is not int:
            return MISSING_FIELD
        bids = read_levels(msg.get("bids"), removals=False)  # type: ignore[attr-defined]
        if isinstance(bids, str):
            return bids
        asks = read_levels(msg.get("asks"), removals=False)  # type: ignore[attr-defined]
        if isinstance(asks, str):
            return asks
        bid_prices = [price for price, _ in bids]
        ask_prices = [price for price, _ in asks]
        if any(better <= worse for better, worse in pairwise(bid_prices)) or any(
            better >= worse for better, worse in pairwise(ask_prices)
        ):
            return BAD_PRICE  # out of price order, or a price twice
        if bid_prices and ask_prices and bid_prices[0] >= ask_prices[0]:
            return CROSSED_BOOK
        return last_update_id, bids, asks

    # --- books ----------------------------------------------------------------------
    def _lose(self, native: str, symbol: str, reason: str, recv_ns: int, detail: object) -> list[Tick]:
        """Drop the diff book of `native` (counted under `reason`) and ask once per loss for a new snapshot."""
        self._diff_books.pop(native, None)
        self._buffered.pop(native, None)
        self.forget_book(symbol)
        if native not in self._lost:
            self._lost.add(native)
            self.resync_needed.add(native)
        return self.drop(reason, recv_ns, detail)

    def _partial_depth(self, native: str, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        """A partial-depth frame: the top N levels, which replace the market's book."""
        symbol = self._symbol_of(native)
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        levels = self._snapshot(msg)
        if isinstance(levels, str):
            # The book is unknown until a good frame brings all of it again. The next frame should,
            # but a stream that keeps sending bad ones is resubscribed (once per loss), as any book.
            self._partial_books.pop(native, None)
            self.forget_book(symbol)
            if native not in self._partial_lost:
                self._partial_lost.add(native)
                self.resync_needed.add(native)
            return self.drop(levels, recv_ns, f"{native} partial depth")
        update_id, bids, asks = levels
        self._partial_lost.discard(native)
        book = self._partial_books.get(native)
        if book is None:
            book = self._partial_books[native] = L2Book()
        book.replace(bids, asks)
        return self._behind_quote(symbol, update_id, self.book_ticks(symbol, book, recv_ns // 1_000_000, recv_ns))

    def _behind_quote(self, symbol: str, update_id: int, ticks: list[Tick]) -> list[Tick]:
        """A book tick of the book at `update_id`, followed by the market's last bookTicker quote
        when that quote is newer (a higher update id): the engine then walks the newer top first
        and only the book's levels behind it, instead of taking the older book's top as the market's."""
        if not ticks:
            return ticks
        last = self._quotes.get(symbol)
        if last is None or last[0] <= update_id:
            return ticks
        return [*ticks, last[1]]

    def _diff(self, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        """A depthUpdate event: applied to the market's seeded book, or held for its snapshot."""
        try:
            native = msg["s"]
            first = msg["U"]
            final = msg["u"]
            event_ms = msg["E"]
            raw_bids = msg["b"]
            raw_asks = msg["a"]
        except KeyError as missing:
            return self.drop(MISSING_FIELD, recv_ns, f"depthUpdate without {missing}")
        if first.__class__ is not int or final.__class__ is not int or first > final:
            return self.drop(MISSING_FIELD, recv_ns, f"depthUpdate update ids {first!r}..{final!r}")
        if event_ms.__class__ is not int:
            return self.drop(BAD_TIMESTAMP, recv_ns, f"depthUpdate with event time {event_ms!r}")
        symbol = self._symbol_of(native) if native.__class__ is str else None
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        book = self._diff_books.get(native)
        if book is not None and final <= book.update_id:
            return self.ignore(ALREADY_IN_BOOK)
        bids = read_levels(raw_bids, removals=True)
        asks = read_levels(raw_asks, removals=True)
        for changes, raw in ((bids, raw_bids), (asks, raw_asks)):
            if isinstance(changes, str):
                detail = f"{native} depthUpdate {first}..{final}: {raw!r}"
                if book is None:  # held events keep their gap: the snapshot's chain check finds it
                    return self.drop(changes, recv_ns, detail)
                return self._lose(native, symbol, changes, recv_ns, detail)
        if book is None:
            held = self._buffered.get(native)
            if held is None:
                held = self._buffered[native] = []
            held.append((first, final, event_ms, bids, asks))  # type: ignore[arg-type]
            if len(held) > MAX_BUFFERED_EVENTS:
                del held[0]
                return self.ignore(DEPTH_BUFFER_OVERFLOW)
            return self.ignore(DEPTH_BUFFERED)
        if not book.apply(first, final, bids, asks):  # type: ignore[arg-type]
            return self._lose(
                native, symbol, BOOK_GAP, recv_ns, f"{native} diff {first}..{final} after {book.update_id}"
            )
        if book.crossed():
            return self._lose(native, symbol, CROSSED_BOOK, recv_ns, f"{native} book crossed after {first}..{final}")
        return self._behind_quote(symbol, final, self.book_ticks(symbol, book, event_ms, recv_ns))

    def parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        """Ticks in `frame`; never raises. Spot bookTicker frames take a fast path."""
        if frame.__class__ is str:
            try:
                if frame.startswith('{"stream":'):  # type: ignore[union-attr]
                    book = _decode_combined(frame).data if "@bookTicker" in frame else None  # type: ignore[operator]
                else:
                    book = _decode_raw(frame) if frame.startswith('{"u":') else None  # type: ignore[union-attr]
            except _FAST_ERRORS:
                book = None
            if book is not None:
                bid = book.b
                ask = book.a
                symbol = self._resolved(book.s) or self._symbol_of(book.s)
                if (
                    symbol is not None
                    and 0.0 < bid < ask < MAX_PRICE
                    and 0.0 < book.B < MAX_SIZE
                    and 0.0 < book.A < MAX_SIZE
                ):
                    stats = self.stats
                    stats.frames += 1
                    stats.ticks += 1
                    # Spot bookTicker has no event time: the receive time stands in (DESIGN.md).
                    tick = _new_tuple(
                        Tick,
                        (
                            NAME,
                            symbol,
                            QUOTE,
                            (bid + ask) * 0.5,
                            0.0,
                            bid,
                            ask,
                            book.B,
                            book.A,
                            recv_ns // 1_000_000,
                            recv_ns,
                            None,
                            None,
                        ),
                    )
                    self._quotes[symbol] = (book.u, tick)
                    return [tick]
        return super().parse(frame, recv_ns)

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        data = msg.get("data")
        stream = self.stream
        if data is not None:  # combined stream wrapper
            if data.__class__ is not dict:
                return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
            stream = msg.get("stream")
            msg = data
        event = msg.get("e")
        if event == "depthUpdate":
            return self._diff(msg, recv_ns)
        if event == "bookTicker":
            # Spot bookTicker frames carry no "e"; USDⓈ-M and COIN-M futures ones do. A futures
            # price is not a spot price: counted as ignored, never passed off as spot.
            return self.ignore("futuresBookTicker")
        if event is None and "b" in msg and "a" in msg:  # spot bookTicker
            try:
                native = msg["s"]
                raw_bid = msg["b"]
                raw_ask = msg["a"]
                raw_bid_size = msg["B"]
                raw_ask_size = msg["A"]
            except KeyError as missing:
                return self.drop(MISSING_FIELD, recv_ns, f"bookTicker without {missing}")
            symbol = self._symbol_of(native) if native.__class__ is str else None
            if symbol is None:
                return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
            if raw_bid_size is None or raw_ask_size is None:
                # make_quote reads None as "the feed gives no size"; Binance always gives one.
                return self.drop(BAD_SIZE, recv_ns, f"{native} sizes {raw_bid_size!r}/{raw_ask_size!r}")
            event_ms = msg.get("E")  # futures only; spot bookTicker has no event time
            timestamp = event_ms if event_ms.__class__ is int else recv_ns // 1_000_000
            ticks = self.make_quote(symbol, raw_bid, raw_ask, raw_bid_size, raw_ask_size, timestamp, recv_ns)
            update_id = msg.get("u")
            if ticks and update_id.__class__ is int:
                self._quotes[symbol] = (update_id, ticks[0])
            return ticks
        if event == "trade" or event == "aggTrade":
            try:
                native = msg["s"]
                raw_price = msg["p"]
                raw_size = msg["q"]
                event_ms = msg["E"]
            except KeyError as missing:
                return self.drop(MISSING_FIELD, recv_ns, f"{event} without {missing}")
            if event_ms.__class__ is not int:
                return self.drop(BAD_TIMESTAMP, recv_ns, f"{event} with event time {event_ms!r}")
            symbol = self._symbol_of(native) if native.__class__ is str else None
            if symbol is None:
                return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
            return self.make_trade(symbol, raw_price, raw_size, event_ms, recv_ns)
        if event.__class__ is str and event in IGNORED_EVENTS:
            return self.ignore(event)
        if "result" in msg and "id" in msg:  # answer to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS
            return self.control("subscription")
        if ("code" in msg and "msg" in msg) or "error" in msg:
            return self.exchange_error(recv_ns, frame)
        if "lastUpdateId" in msg:  # partial depth, or a REST depth body fed as a frame
            matched = PARTIAL_DEPTH_STREAM.fullmatch(stream) if stream.__class__ is str else None
            if matched is None:
                return self.ignore(DEPTH_WITHOUT_SYMBOL)
            return self._partial_depth(matched[1].upper(), msg, recv_ns)
        return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)


# --- the declaration the registry reads (ingest_worker/venues/__init__.py) -----------
VENUE = Venue(
    name=NAME,
    live_ws_url=LIVE_WS_URL,
    live_rest_url=LIVE_REST_URL,
    markets_path=EXCHANGE_INFO_PATH,
    read_markets=markets_from_exchange_info,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    parser=BinanceParser,
    to_native=to_native,
    default_fee_pct=0.1,
    sim_port=9101,
    resubscribe_messages=resubscribe_messages,
    max_channels_per_connection=MAX_STREAMS_PER_CONNECTION,
    channels_per_market=len(CHANNELS),
    sim=SimProfile("USDT", (0.1, 0.8), 1.5, 1.0, 0.1, reference_markets=("USDC/USDT",), reference_price_decimals=4),
)
