"""Coinbase Exchange (`ws-feed`): the `ticker` and `level2` channels, plus their control frames.

A `ticker` frame reports the trade that moved it (price, last_size, trade_id)
and the best bid and ask after it; it becomes a quote tick and, when it
carries a trade, a trade tick. Frames before 2022 have no `best_bid_size` /
`best_ask_size`: the quote's sizes are then None. Wire fields used:

    type: "ticker", product_id: "BTC-USD", sequence: per-product sequence number,
    best_bid, best_bid_size, best_ask, best_ask_size, price: last trade price,
    last_size: last trade size, trade_id, side, time: ISO 8601 UTC ("...T16:43:30.244075Z")

The `level2` and `level2_batch` channels (the same frames; the batch channel groups 50 ms
of changes into one `l2update`) give a market's whole order book, kept here in an
`L2Book` per product, and each frame that changes its top `depth_levels` levels becomes a
book tick (DESIGN.md "Depth"). Wire fields used:

    type: "snapshot", product_id, bids / asks: [[price, size], ...] (decimal strings, the
        whole book), time: on newer snapshots only (the receive time stands in otherwise)
    type: "l2update", product_id, time, changes: [[side "buy"|"sell", price, size], ...]
        (size is the level's new size, "0" removes it)

The level2 stream has neither a sequence number nor a checksum, so the book is checked the
only ways it can be: an `l2update` needs the market's snapshot before it, and resting
orders never cross. An update before its snapshot, or one that leaves the book crossed
(an update was missed), drops the book (counted as `book_gap`; a crossed snapshot as
`crossed_book`) and names the product in `resync_needed`, once per loss, until a snapshot
rebuilds it. An `l2update` that cannot be applied (a bad number: NaN, a price <= 0, a
negative size, not a number; a malformed change or time) drops the book the same way, under
its own reason, none of its changes applied: the venue's book moved and ours cannot follow
it without them. A snapshot that cannot be used leaves the market without a book (its updates
would follow that snapshot).

Live, the client reads `ticker`, `heartbeat` and `level2_batch` (CHANNELS), and a dropped book
is resubscribed (`resubscribe_messages`: unsubscribe + subscribe level2_batch for the product,
which opens with a new snapshot). Which channel sets the top: the newest tick. Both kinds of
tick reach the engine, and a walk takes a ticker newer than the book first and then only the
book's levels behind it (`engine_worker/book.py` `Quote.ask_levels`/`bid_levels`), so no level
better than the newer top is ever walked; the next l2update (within 50 ms) gives the whole book
again, with the top the ticker gave.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import msgspec
import orjson

from ingest_worker.book import L2Book
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
    NO_TICKS,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    BookParser,
    _number,
)
from ingest_worker.venues.declaration import SimProfile, Venue
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import QUOTE, TRADE, Tick

# --- declaration ----------------------------------------------------------------
NAME = "coinbase"
LIVE_WS_URL = "wss://ws-feed.exchange.coinbase.com"
LIVE_REST_URL = "https://api.exchange.coinbase.com"
PRODUCTS_PATH = "/products"
# `level2_batch`, not `level2`: Coinbase serves `level2` to authenticated connections only, and
# the batch (50 ms of changes per l2update) is the same book for a tenth of the frames.
CHANNELS = {"quote": "ticker", "trade": "ticker", "heartbeat": "heartbeat", "book": "level2_batch"}
CONTROL_TYPES = frozenset({"subscriptions", "heartbeat"})
# Real Coinbase message types of channels we do not use (counted as ignored).
IGNORED_TYPES = frozenset({"match", "last_match", "received", "open", "done", "change", "activate", "status"})
# Book frames that give no tick (counted as ignored): the top `depth_levels` levels are what the
# last book tick carried, or one side of the book is empty.
TOP_UNCHANGED = "l2_top_unchanged"
ONE_SIDED_BOOK = "l2_one_sided"


def to_native(symbol: str) -> str:
    """`BTC/USD` -> `BTC-USD`."""
    return symbol.replace("/", "-")


def split_product(native: str) -> tuple[str, str] | None:
    base, sep, quote = native.partition("-")
    if not sep or not base.isalnum() or not quote.isalnum():
        return None
    return base, quote


def subscribe_message(natives: Iterable[str]) -> dict[str, Any]:
    return {"type": "subscribe", "product_ids": list(natives), "channels": ["ticker", "heartbeat", CHANNELS["book"]]}


def resubscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """Leave and join these products' level2_batch channel: the join opens with a fresh snapshot."""
    products = list(natives)
    return [
        {"type": "unsubscribe", "product_ids": products, "channels": [CHANNELS["book"]]},
        {"type": "subscribe", "product_ids": products, "channels": [CHANNELS["book"]]},
    ]


def connect_url(ws_base: str) -> str:
    return ws_base


def subscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    return [subscribe_message(natives)]


def markets_from_products(payload: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(native, base, quote) of every online market in a `/products` answer."""
    return [
        (product["id"], product["base_currency"], product["quote_currency"])
        for product in payload
        if product.get("status", "online") == "online"
    ]


MARKETS_PATH = PRODUCTS_PATH
markets_from_rest = markets_from_products


# --- parser -----------------------------------------------------------------------
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# The hot path, as for Binance: a ticker frame decoded straight into a typed struct,
# decimal strings converted inside msgspec. Anything it refuses or that fails a check
# takes the general path, which decides and counts; the fast path only ever agrees.
class _Ticker(msgspec.Struct):
    type: str
    product_id: str
    best_bid: float
    best_ask: float
    time: str
    price: float | None = None  # last trade price
    best_bid_size: float | None = None  # absent before 2022
    best_ask_size: float | None = None
    trade_id: int | None = None
    last_size: float | None = None  # last trade size


_decode_ticker = msgspec.json.Decoder(_Ticker, strict=False).decode
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeEncodeError)
_NUMBER_ERRORS = (TypeError, ValueError, OverflowError)
_new_tuple = tuple.__new__


class CoinbaseParser(BookParser):
    name = NAME
    ONE_SIDED = ONE_SIDED_BOOK
    UNCHANGED_BOOK = TOP_UNCHANGED

    def __init__(
        self,
        symbols: SymbolTable | None = None,
        *,
        max_age_ms: int | None = MAX_TICK_AGE_MS,
        depth_levels: int = DEPTH_LEVELS,
    ) -> None:
        super().__init__(symbols, max_age_ms=max_age_ms, depth_levels=depth_levels)
        self._minute_ms: dict[str, int] = {}  # "2021-04-17T16:43" -> Unix ms of that minute

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_product)

    def parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        """Ticks in `frame`; never raises. Complete ticker frames take a fast path."""
        if frame.__class__ is str and frame.startswith('{"type":"ticker",'):  # type: ignore[union-attr]
            try:
                ticker = _decode_ticker(frame)
            except _FAST_ERRORS:
                ticker = None
            if ticker is not None:
                ticks = self._fast_ticker(ticker, recv_ns)
                if ticks is not None:
                    stats = self.stats
                    stats.frames += 1
                    stats.ticks += len(ticks)
                    return ticks
        return super().parse(frame, recv_ns)

    def _fast_ticker(self, ticker: _Ticker, recv_ns: int) -> list[Tick] | None:
        """The ticks of a well-formed ticker, or None to let the general path decide."""
        symbol = self.symbols.resolve(ticker.product_id)
        timestamp = self._time_ms(ticker.time)
        bid = ticker.best_bid
        ask = ticker.best_ask
        bid_size = ticker.best_bid_size
        ask_size = ticker.best_ask_size
        if (
            symbol is None
            or timestamp is None
            or ticker.type != "ticker"
            or not 0.0 < bid < ask < MAX_PRICE
            or (bid_size is not None and not 0.0 < bid_size < MAX_SIZE)
            or (ask_size is not None and not 0.0 < ask_size < MAX_SIZE)
            or (self.max_age_ms is not None and abs(recv_ns // 1_000_000 - timestamp) > self.max_age_ms)
        ):
            return None
        quote = _new_tuple(
            Tick,
            (NAME, symbol, QUOTE, (bid + ask) * 0.5, 0.0, bid, ask, bid_size, ask_size, timestamp, recv_ns, None, None),
        )
        if ticker.trade_id is None:
            return [quote]
        price = ticker.price
        size = ticker.last_size
        if price is None or size is None or not 0.0 < price < MAX_PRICE or not 0.0 < size < MAX_SIZE:
            return None
        trade = _new_tuple(
            Tick, (NAME, symbol, TRADE, price, size, None, None, None, None, timestamp, recv_ns, None, None)
        )
        return [quote, trade]

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        kind = msg.get("type")
        if kind == "l2update":
            return self._l2update(msg, recv_ns)
        if kind == "ticker":
            return self._ticker(msg, recv_ns)
        if kind == "snapshot":
            return self._snapshot(msg, recv_ns)
        if kind.__class__ is not str:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        if kind in CONTROL_TYPES:
            return self.control(kind)
        if kind == "error":
            return self.exchange_error(recv_ns, frame)
        if kind in IGNORED_TYPES:
            return self.ignore(kind)
        return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)

    def _ticker(self, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        product = self._product(msg, "ticker", recv_ns)
        if product is None:
            return NO_TICKS
        native, symbol = product
        timestamp = self._event_ms(msg, recv_ns)  # the snapshot ticker sent on subscribe may carry no time
        if timestamp is None:
            return self.drop(BAD_TIMESTAMP, recv_ns, f"{native} time={msg['time']!r}")
        raw_bid = msg.get("best_bid")
        raw_ask = msg.get("best_ask")
        trade_id = msg.get("trade_id")
        ticks: list[Tick] = []
        if raw_bid is not None or raw_ask is not None:
            if raw_bid is None or raw_ask is None:
                return self.drop(MISSING_FIELD, recv_ns, f"{native} ticker with one side only")
            ticks = self.make_quote(
                symbol, raw_bid, raw_ask, msg.get("best_bid_size"), msg.get("best_ask_size"), timestamp, recv_ns
            )
            if not ticks:
                return ticks  # dropped and counted: the trade in a bad frame is not trusted either
        if trade_id is not None:
            raw_price = msg.get("price")
            raw_size = msg.get("last_size")
            if raw_price is None or raw_size is None:
                return self.drop(MISSING_FIELD, recv_ns, f"{native} ticker trade without price/last_size")
            trade = self.make_trade(symbol, raw_price, raw_size, timestamp, recv_ns)
            if not trade:
                return trade
            ticks = ticks + trade if ticks else trade
        if not ticks:
            return self.drop(MISSING_FIELD, recv_ns, f"{native} ticker with neither quote nor trade")
        return ticks

    # --- level2 --------------------------------------------------------------------
    def _snapshot(self, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        """The whole book of a product: it replaces whatever was kept."""
        product = self._product(msg, "snapshot", recv_ns)
        if product is None:
            return NO_TICKS
        native, symbol = product
        timestamp = self._event_ms(msg, recv_ns)
        if timestamp is None:
            return self.lose_book(native, BAD_TIMESTAMP, recv_ns, f"{native} snapshot time={msg['time']!r}")
        bids = _snapshot_side(msg.get("bids"))
        if isinstance(bids, str):
            return self.lose_book(native, bids, recv_ns, f"{native} snapshot bids: {bids}")
        asks = _snapshot_side(msg.get("asks"))
        if isinstance(asks, str):
            return self.lose_book(native, asks, recv_ns, f"{native} snapshot asks: {asks}")
        book = L2Book()
        book.replace(bids, asks)
        if book.crossed():
            return self.lose_book(native, CROSSED_BOOK, recv_ns, f"{native} snapshot crossed: {book.top()}")
        self.keep(native, symbol, book)  # a lost book was forgotten (lose_book): its first tick goes whatever it holds
        return self.book_ticks(symbol, book, timestamp, recv_ns)

    def _l2update(self, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        """Changes to a product's book, all checked before any is applied."""
        product = self._product(msg, "l2update", recv_ns)
        if product is None:
            return NO_TICKS
        native, symbol = product
        book = self.book(native)
        if book is None:
            return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} l2update before its snapshot")
        timestamp = self._event_ms(msg, recv_ns)
        if timestamp is None:
            return self.lose_book(native, BAD_TIMESTAMP, recv_ns, f"{native} time={msg['time']!r}")
        changes = msg.get("changes")
        if changes.__class__ is not list:
            return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} l2update without a changes list")
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        for change in changes:  # type: ignore[union-attr]
            if change.__class__ is not list or len(change) != 3:
                return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} change {change!r}")
            side, raw_price, raw_size = change
            if side == "buy":
                side_changes = bids
            elif side == "sell":
                side_changes = asks
            else:
                return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} change side {side!r}")
            level = _level(raw_price, raw_size, removes=True)
            if isinstance(level, str):
                # The level changed to something unreadable: the book no longer says what the venue holds.
                return self.lose_book(native, level, recv_ns, f"{native} change {change!r}")
            side_changes.append(level)
        book.update(bids, asks)
        if book.crossed():  # resting orders never cross: an update was missed
            return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} book crossed: {book.top()}")
        return self.book_ticks(symbol, book, timestamp, recv_ns)

    def _product(self, msg: dict[str, Any], kind: str, recv_ns: int) -> tuple[str, str] | None:
        """(product_id, canonical symbol) of a frame, or None when the frame was dropped for it."""
        native = msg.get("product_id")
        if native is None:
            self.drop(MISSING_FIELD, recv_ns, f"{kind} without product_id")
            return None
        symbol = self.symbols.resolve(native) if native.__class__ is str else None
        if symbol is None:
            self.drop(UNKNOWN_SYMBOL, recv_ns, native)
            return None
        return native, symbol

    def _event_ms(self, msg: dict[str, Any], recv_ns: int) -> int | None:
        """The frame's `time` in Unix ms, the receive time when it has none, None when it is bad."""
        raw_time = msg.get("time")
        if raw_time is None:
            return recv_ns // 1_000_000
        return self._time_ms(raw_time)

    def _time_ms(self, raw: object) -> int | None:
        """Unix ms of `2021-04-17T16:43:30.244075Z`, or None when it is not such a time.

        The minute (`2021-04-17T16:43`) is parsed once and cached: a feed's times share it.
        """
        if raw.__class__ is not str:
            return None
        text: str = raw  # type: ignore[assignment]
        minute = self._minute_ms.get(text[:16])
        if minute is None:
            minute = self._parse_minute(text[:16])
            if minute is None:
                return None
        rest = text[16:]  # ":30.244075Z"
        seconds = rest[1:3]
        fraction = rest[4:-1]
        # int() alone would also take "-1", "+1", " 1" and non-ASCII digits.
        if (
            len(rest) < 4
            or rest[0] != ":"
            or rest[-1] != "Z"
            or not seconds.isascii()
            or not seconds.isdigit()
            or (len(rest) > 4 and (rest[3] != "." or not fraction.isascii() or not fraction.isdigit()))
        ):
            return None
        second = int(seconds)
        if second > 60:
            return None
        return minute + second * 1000 + (int(fraction[:3].ljust(3, "0")) if fraction else 0)

    def _parse_minute(self, text: str) -> int | None:
        """Unix ms of `2021-04-17T16:43`, cached (bounded), or None when it is not one."""
        if len(text) != 16 or not text.isascii() or text[10] != "T":
            return None
        try:
            parsed = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M").replace(tzinfo=dt.UTC)
        except ValueError:
            return None
        # strptime accepts "2021-4-7T1:2"-style short fields; the length check above and this
        # round trip make sure only the canonical form is taken.
        if parsed.strftime("%Y-%m-%dT%H:%M") != text:
            return None
        minute = (parsed - _EPOCH) // dt.timedelta(milliseconds=1)
        if len(self._minute_ms) < 100_000:
            self._minute_ms[text] = minute
        return minute


def _snapshot_side(raw: object) -> list[tuple[float, float]] | str:
    """A snapshot side `[[price, size], ...]` as floats, or the drop reason (a resting level has a size)."""
    if raw.__class__ is not list:
        return MISSING_FIELD
    levels = []
    for pair in raw:  # type: ignore[attr-defined]
        if pair.__class__ is not list or len(pair) != 2:
            return MISSING_FIELD
        level = _level(pair[0], pair[1], removes=False)
        if isinstance(level, str):
            return level
        levels.append(level)
    return levels


def _level(raw_price: object, raw_size: object, removes: bool) -> tuple[float, float] | str:
    """(price, size) as floats, or the drop reason. A size of 0 only where it removes a level."""
    try:
        price = _number(raw_price)
    except _NUMBER_ERRORS:
        return BAD_PRICE
    if not 0.0 < price < MAX_PRICE:  # NaN fails every comparison
        return BAD_PRICE
    try:
        size = _number(raw_size)
    except _NUMBER_ERRORS:
        return BAD_SIZE
    if not ((size >= 0.0 if removes else size > 0.0) and size < MAX_SIZE):
        return BAD_SIZE
    return price, size


# --- the declaration the registry reads (ingest_worker/venues/__init__.py) -----------
VENUE = Venue(
    name=NAME,
    live_ws_url=LIVE_WS_URL,
    live_rest_url=LIVE_REST_URL,
    markets_path=PRODUCTS_PATH,
    read_markets=markets_from_products,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    parser=CoinbaseParser,
    to_native=to_native,
    resubscribe_messages=resubscribe_messages,
    default_fee_pct=0.6,
    sim_port=9102,
    sim=SimProfile("USD", (0.5, 2.5), 2.0, 0.6, 0.5, 8, reference_markets=("USDT/USD",), price_ticks="coinbase"),
)
