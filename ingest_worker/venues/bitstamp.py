"""Bitstamp WebSocket v2 (`wss://ws.bitstamp.net`): top of book from order-book channels, trades.

Every frame is `{"event": ..., "channel": "<channel>_<pair>", "data": {...}}`, the pair a
lower-case url symbol (`btcusd`, `usdteur`, `xlmgbp`, `gbpusd`). Live, the top of book comes
from `order_book_<pair>`: each message is a full snapshot of the top 100 levels, so nothing is
kept but the last top, and a quote tick is emitted when it changes. The recordings carry
`diff_order_book_<pair>` instead: level updates (amount 0 removes a level) that are applied to
a book seeded by the REST snapshot (`/api/v2/order_book/<pair>`, given to `load_snapshot`).
Bitstamp's diffs carry neither a sequence number nor a checksum, so the book is checked the
only ways it can be: event times never go backwards, and the book never ends up crossed (a
crossing order is matched, never rested). Either failure drops the book (counted as
`book_gap`) until the next snapshot. Wire fields used:

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

import orjson

from ingest_worker.book import L2Book
from ingest_worker.venues._levels import read_levels
from ingest_worker.venues.base import (
    BAD_SIZE,
    BAD_TIMESTAMP,
    BOOK_GAP,
    CROSSED_BOOK,
    DEPTH_LEVELS,
    MALFORMED_JSON,
    MAX_TICK_AGE_MS,
    MISSING_FIELD,
    UNEXPECTED,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    VenueParser,
    _number,
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
# Outcomes of a book frame that gives no tick, counted as ignored under these kinds.
TOP_UNCHANGED = "top_unchanged"  # the book moved below its top
AWAITING_SNAPSHOT = "awaiting_snapshot"  # a diff for a book not (or no longer) seeded
OLDER_THAN_SNAPSHOT = "older_than_snapshot"  # a diff the snapshot already contains
ONE_SIDED_BOOK = "one_sided_book"  # no bid or no ask: no quote to give


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


class _DiffBook(L2Book):
    """One market's order book from a REST snapshot and diff_order_book updates, and their times."""

    __slots__ = ("micros", "snapshot_micros")

    def __init__(self, micros: int) -> None:
        super().__init__()
        self.snapshot_micros = micros  # diffs at or before it are already in the snapshot
        self.micros = micros  # event time of the last change applied


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
    """Bitstamp frames to ticks; keeps the diff_order_book books and the last top of each book channel."""

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
        self._awaiting: set[str] = set()  # pairs whose diffs arrive without a book to apply them to
        self._tops: dict[str, tuple[float, float, float, float]] = {}  # order_book pair -> top last sent

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_pair)

    # --- what the ingestor calls besides parse ------------------------------------
    def load_snapshot(self, pair: str, body: str | bytes | dict[str, Any], recv_ns: int) -> list[Tick]:
        """Seed (or reseed) the diff book of `pair` with a REST `/api/v2/order_book/<pair>` body.

        Counted like a frame: it gives the book's top as a quote, or one other outcome. Never raises.
        """
        self.stats.frames += 1
        try:
            ticks = self._load_snapshot(pair, body, recv_ns)
        except Exception as exc:  # noqa: BLE001 - the same safety net as parse()
            self._books.pop(pair, None)
            return self.drop(UNEXPECTED, recv_ns, f"{type(exc).__name__}: {exc}")
        self.stats.ticks += len(ticks)
        return ticks

    def awaiting_snapshot(self) -> set[str]:
        """Pairs whose diffs arrive without a seeded book (never seeded, or dropped on a gap)."""
        return set(self._awaiting)

    def reset_books(self) -> None:
        """Forget every diff book: after a reconnect the updates missed meanwhile make them wrong."""
        self._awaiting.update(self._books)
        self._books.clear()
        self._tops.clear()

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
                # apply; `load_snapshot` takes it, with the pair from the request URL.
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
        """An order_book message: the top 100 levels, best first; a quote when the top changed."""
        bids = data.get("bids")
        asks = data.get("asks")
        if bids.__class__ is not list or asks.__class__ is not list:
            return self.drop(MISSING_FIELD, recv_ns, f"{symbol} order_book without bids/asks")
        if not bids or not asks:
            self._tops.pop(pair, None)
            return self.ignore(ONE_SIDED_BOOK)
        best_bid = bids[0]
        best_ask = asks[0]
        if best_bid.__class__ is not list or best_ask.__class__ is not list or len(best_bid) < 2 or len(best_ask) < 2:
            return self.drop(MISSING_FIELD, recv_ns, f"{symbol} order_book level is not [price, amount]")
        if best_bid[1] is None or best_ask[1] is None:  # make_quote would take None for "no size given"
            return self.drop(BAD_SIZE, recv_ns, f"{symbol} order_book level without amount")
        timestamp = self._event_ms(data, recv_ns)
        if timestamp is None:
            return self.drop(BAD_TIMESTAMP, recv_ns, f"{symbol} order_book time {data.get('microtimestamp')!r}")
        try:
            top = (_number(best_bid[0]), _number(best_bid[1]), _number(best_ask[0]), _number(best_ask[1]))
        except (TypeError, ValueError):
            top = None  # make_quote says which number is bad and counts it
        if top is not None and top == self._tops.get(pair):
            return self.ignore(TOP_UNCHANGED)
        ticks = self.make_quote(symbol, best_bid[0], best_ask[0], best_bid[1], best_ask[1], timestamp, recv_ns)
        if ticks and top is not None:
            self._tops[pair] = top
        return ticks

    def _diff(self, pair: str, symbol: str, data: dict[str, Any], recv_ns: int) -> list[Tick]:
        book = self._books.get(pair)
        if book is None:
            self._awaiting.add(pair)
            return self.ignore(AWAITING_SNAPSHOT)
        raw_micros = data.get("microtimestamp")
        if raw_micros is None:
            self._lose_book(pair)
            return self.drop(MISSING_FIELD, recv_ns, f"{symbol} diff without microtimestamp")
        micros = _micros(raw_micros)
        if micros is None:
            self._lose_book(pair)
            return self.drop(BAD_TIMESTAMP, recv_ns, f"{symbol} diff time {raw_micros!r}")
        if micros <= book.snapshot_micros:
            return self.ignore(OLDER_THAN_SNAPSHOT)
        bids = read_levels(data.get("bids"), removals=True)
        asks = read_levels(data.get("asks"), removals=True)
        # A diff that cannot be applied leaves the book without it: wrong from here on.
        if bids.__class__ is str:
            self._lose_book(pair)
            return self.drop(bids, recv_ns, f"{symbol} diff bids {data.get('bids')!r}")  # type: ignore[arg-type]
        if asks.__class__ is str:
            self._lose_book(pair)
            return self.drop(asks, recv_ns, f"{symbol} diff asks {data.get('asks')!r}")  # type: ignore[arg-type]
        if micros < book.micros:
            self._lose_book(pair)
            return self.drop(BOOK_GAP, recv_ns, f"{symbol} diff at {micros} after one at {book.micros}")
        book.update(bids, asks)  # type: ignore[arg-type]
        book.micros = micros
        return self._book_top(pair, symbol, book, micros // 1000, recv_ns, gap_when_crossed=True)

    def _book_top(
        self, pair: str, symbol: str, book: _DiffBook, timestamp: int, recv_ns: int, *, gap_when_crossed: bool
    ) -> list[Tick]:
        best_bid, bid_size, best_ask, ask_size = book.top()
        if best_bid is None or best_ask is None:
            book.emitted = None
            return self.ignore(ONE_SIDED_BOOK)
        if best_bid >= best_ask:
            self._lose_book(pair)
            if gap_when_crossed:  # resting orders never cross: an update was missed
                return self.drop(BOOK_GAP, recv_ns, f"{symbol} book crossed: bid {best_bid} >= ask {best_ask}")
            return self.drop(CROSSED_BOOK, recv_ns, f"{symbol} snapshot crossed: bid {best_bid} >= ask {best_ask}")
        top = (best_bid, bid_size, best_ask, ask_size)
        if top == book.emitted:
            return self.ignore(TOP_UNCHANGED)
        ticks = self.make_quote(symbol, top[0], top[2], top[1], top[3], timestamp, recv_ns)
        if ticks:
            book.emitted = top
        return ticks

    def _lose_book(self, pair: str) -> None:
        self._books.pop(pair, None)
        self._awaiting.add(pair)

    def _load_snapshot(self, pair: str, body: str | bytes | dict[str, Any], recv_ns: int) -> list[Tick]:
        self._lose_book(pair)  # whatever this body holds, the old book is replaced or gone
        if isinstance(body, dict):
            msg: object = body
        else:
            try:
                msg = _loads(body)
            except _JSONDecodeError:
                return self.drop(MALFORMED_JSON, recv_ns, body)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, body)
        data: dict[str, Any] = msg  # type: ignore[assignment]
        symbol = self.symbols.resolve(pair) if pair.__class__ is str else None
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, pair)
        raw_micros = data.get("microtimestamp")
        if raw_micros is None:
            return self.drop(MISSING_FIELD, recv_ns, f"{symbol} snapshot without microtimestamp")
        micros = _micros(raw_micros)
        if micros is None:
            return self.drop(BAD_TIMESTAMP, recv_ns, f"{symbol} snapshot time {raw_micros!r}")
        bids = read_levels(data.get("bids"), removals=False)
        if bids.__class__ is str:
            return self.drop(bids, recv_ns, f"{symbol} snapshot bids")  # type: ignore[arg-type]
        asks = read_levels(data.get("asks"), removals=False)
        if asks.__class__ is str:
            return self.drop(asks, recv_ns, f"{symbol} snapshot asks")  # type: ignore[arg-type]
        book = _DiffBook(micros)
        book.replace(bids, asks)  # type: ignore[arg-type]
        self._books[pair] = book
        self._awaiting.discard(pair)
        return self._book_top(pair, symbol, book, micros // 1000, recv_ns, gap_when_crossed=False)


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
