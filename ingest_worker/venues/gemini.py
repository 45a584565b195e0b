"""Gemini market data v2 (`wss://api.gemini.com/v2/marketdata`): the `l2` subscription.

One `l2` subscription brings three kinds of frame per symbol: `l2_updates` (order
book changes), `trade` (one executed trade) and, per connection, `heartbeat`.
Gemini has no top-of-book channel: the book ticks (DESIGN.md "Depth": the top
`depth_levels` levels, also the market's quote) come from a book kept here per
symbol. The first `l2_updates` of a symbol after subscribing is the full book;
it alone carries the `trades` (the last ~50 trades, up to hours old) and
`auction_events` lists, and that is how it is told apart from an update. The
l2 stream has neither a sequence number nor a checksum, so the only gaps that
can be seen are an update with no snapshot before it, an update that cannot be
applied (a bad level) and an update that leaves the book crossed (resting
orders never cross: an update was missed). Each drops the book and counts
`book_gap` (or the bad level's reason; a crossed snapshot `crossed_book`) until
the next snapshot, and every update until then is a `book_gap`; the symbol is
put in `resync_needed`, and the live client gets that snapshot with
`resubscribe_messages`: `unsubscribe` then `subscribe` again (Gemini sends a
symbol's book only when it is subscribed). Wire fields used:

    l2_updates  symbol: "BTCUSD", changes: [[side "buy"|"sell", price, quantity], ...]
                (decimal strings; quantity "0" removes the level; no event time),
                trades / auction_events: only in the snapshot
    trade       symbol, event_id, timestamp: Unix ms, price, quantity, side: taker side
    heartbeat   timestamp: Unix ms (every 5 s)
    error       {"result": "error", "reason": ..., "message": ...}
    unsubscribe {"type": "unsubscribe", "subscriptions": [{"name": "l2", "symbols": [...]}]} (no answer)

Symbols are concatenated (`BTCUSD`, `ETHBTC`, `ZECLTC`, `BTCGBP`) and split at
the longest known quote currency that ends them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    VenueParser,
)
from ingest_worker.venues.declaration import SimProfile, Venue
from signals_app.contracts.symbols import SymbolTable, split_concatenated
from signals_app.contracts.tick import Tick

# --- declaration ----------------------------------------------------------------
NAME = "gemini"
LIVE_WS_URL = "wss://api.gemini.com"
LIVE_REST_URL = "https://api.gemini.com"
WS_PATH = "/v2/marketdata"
SYMBOLS_PATH = "/v1/symbols"  # ["btcusd", "ethbtc", ...], lower case; the WS speaks upper case
MARKETS_PATH = SYMBOLS_PATH
# Both the quote (from the book) and the trades come from the one `l2` subscription.
CHANNELS = {"quote": "l2", "trade": "l2"}
CONTROL_TYPES = frozenset({"heartbeat"})
# Real v2 message types of subscriptions we do not make (counted as ignored).
IGNORED_TYPES = frozenset({"mark_price_updates", "funding_amount_updates", "auction_result", "auction_indicative"})
IGNORED_PREFIX = "candles_"  # candles_1m_updates, candles_1h_updates, ...

# Every quote currency Gemini has listed, longest first at split time (GUSD before USD).
_QUOTE_CURRENCIES = "USD GUSD USDT USDC DAI GBP EUR SGD AUD CAD CHF HKD JPY BTC ETH LTC BCH"
GEMINI_QUOTES: tuple[str, ...] = tuple(sorted(_QUOTE_CURRENCIES.split(), key=lambda quote: (-len(quote), quote)))


def split_symbol(native: str) -> tuple[str, str] | None:
    """`ZECLTC` -> (`ZEC`, `LTC`); None for names no known quote ends (perpetuals: `BTCGUSDPERP`)."""
    return split_concatenated(native, GEMINI_QUOTES)


def to_native(symbol: str) -> str:
    """`BTC/USD` -> `BTCUSD`."""
    return symbol.replace("/", "")


def connect_url(ws_base: str) -> str:
    return f"{ws_base}{WS_PATH}"


def subscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """One `l2` subscription for every symbol: it brings the book, the trades and heartbeats."""
    return [{"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": list(natives)}]}]


def resubscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """A fresh book for each symbol: leave its `l2` and subscribe again; the first `l2_updates` is the book."""
    symbols = list(natives)
    return [
        {"type": "unsubscribe", "subscriptions": [{"name": "l2", "symbols": symbols}]},
        *subscribe_messages(symbols),
    ]


def markets_from_rest(payload: object) -> list[tuple[str, str, str]]:
    """(native, base, quote) of every spot market in a `/v1/symbols` answer.

    `/v1/symbols` lists names only (`["btcusd", ...]`): they are split with the
    quote table. A list of `/v1/symbols/details/<symbol>` answers is taken too,
    using its `base_currency`/`quote_currency` (open markets only).
    """
    markets: list[tuple[str, str, str]] = []
    if not isinstance(payload, list):
        return markets
    for entry in payload:
        if isinstance(entry, str):
            parts = split_symbol(entry)
            if parts is not None:
                markets.append((entry.upper(), *parts))
        elif isinstance(entry, dict) and entry.get("status", "open") == "open":
            native, base, quote = entry.get("symbol"), entry.get("base_currency"), entry.get("quote_currency")
            if isinstance(native, str) and isinstance(base, str) and isinstance(quote, str):
                markets.append((native.upper(), base, quote))
    return markets


# --- parser -----------------------------------------------------------------------
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_NUMBER_ERRORS = (TypeError, ValueError, OverflowError)


def _amount(value: object) -> float:
    """A price or quantity from the wire: a decimal string or a JSON number, never a boolean."""
    cls = value.__class__
    if cls is str or cls is float or cls is int:
        return float(value)  # type: ignore[arg-type]
    raise TypeError(f"not a number: {value!r}")


class GeminiParser(VenueParser):
    """Gemini v2 `l2`: a book tick whenever a symbol's top `depth_levels` levels change, a trade tick per trade.

    An `l2_updates` frame that leaves those levels as they were gives no tick and
    is counted as ignored (`book_unchanged`), as is a book with an empty side
    (`one_sided_book`): every frame has exactly one outcome. The snapshot's
    `trades` list is history (the last ~50 trades, often older than the 60 s
    clock check) and gives no trade ticks; live trades come as `trade` frames.
    """

    name = NAME

    def __init__(
        self,
        symbols: SymbolTable | None = None,
        *,
        max_age_ms: int | None = MAX_TICK_AGE_MS,
        depth_levels: int = DEPTH_LEVELS,
    ) -> None:
        super().__init__(symbols, max_age_ms=max_age_ms, depth_levels=depth_levels)
        self._books: dict[str, L2Book] = {}  # native symbol -> its book since the last snapshot
        # Symbols whose book was dropped on this connection: only a frame carrying `trades`
        # (a new subscription's snapshot) starts them again.
        self._lost: set[str] = set()

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_symbol)

    def reset(self) -> None:
        """Forget every book: on a new connection the first `l2_updates` of each symbol is its snapshot."""
        self._books.clear()
        self._lost.clear()
        self.resync_needed.clear()

    def new_connection(self) -> None:
        super().new_connection()
        self.reset()

    def has_book(self, native: str) -> bool:
        return native in self._books

    def awaiting_snapshot(self) -> set[str]:
        """Symbols whose book was dropped; the feed resubscribes them (or reconnects) to get a snapshot."""
        return set(self._lost)

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        kind = msg.get("type")
        if kind == "l2_updates":
            return self._l2_updates(msg, recv_ns)
        if kind == "trade":
            return self._trade(msg, recv_ns)
        if kind.__class__ is not str:
            if msg.get("result") == "error":
                return self.exchange_error(recv_ns, frame)
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        if kind in CONTROL_TYPES:
            return self.control(kind)
        if kind in IGNORED_TYPES or kind.startswith(IGNORED_PREFIX):
            return self.ignore(kind)
        return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)

    def _l2_updates(self, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        native = msg.get("symbol")
        if native is None:
            return self.drop(MISSING_FIELD, recv_ns, "l2_updates without symbol")
        symbol = self.symbols.resolve(native) if native.__class__ is str else None
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        changes = msg.get("changes")
        if changes.__class__ is not list:
            return self._lose_book(native, MISSING_FIELD, recv_ns, f"{native} l2_updates without a changes list")
        # Check every change before touching the book, so that a bad frame changes nothing.
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        for change in changes:
            if change.__class__ is not list or len(change) != 3:
                return self._lose_book(native, MISSING_FIELD, recv_ns, f"{native} change {change!r}")
            side, raw_price, raw_size = change
            if side == "buy":
                side_levels = bids
            elif side == "sell":
                side_levels = asks
            else:
                return self._lose_book(native, MISSING_FIELD, recv_ns, f"{native} change side {side!r}")
            try:
                price = _amount(raw_price)
            except _NUMBER_ERRORS:
                return self._lose_book(native, BAD_PRICE, recv_ns, f"{native} level price {raw_price!r}")
            if not 0.0 < price < MAX_PRICE:
                return self._lose_book(native, BAD_PRICE, recv_ns, f"{native} level price {raw_price!r}")
            try:
                size = _amount(raw_size)
            except _NUMBER_ERRORS:
                return self._lose_book(native, BAD_SIZE, recv_ns, f"{native} level quantity {raw_size!r}")
            if not 0.0 <= size < MAX_SIZE:  # 0 removes the level
                return self._lose_book(native, BAD_SIZE, recv_ns, f"{native} level quantity {raw_size!r}")
            side_levels.append((price, size))

        found = self._books.get(native)
        # The snapshot is the first l2_updates of a symbol on a connection; it is also the only
        # one that carries the recent trades, which tells a new subscription's snapshot apart.
        is_snapshot = "trades" in msg or (found is None and native not in self._lost)
        if is_snapshot:
            book = self._books[native] = L2Book()
            book.replace(bids, asks)
            self._lost.discard(native)
            self.forget_book(symbol)  # a new book: sent whatever it holds
        else:
            if found is None:
                return self.drop(BOOK_GAP, recv_ns, f"{native} update while its book waits for a snapshot")
            book = found
            book.update(bids, asks)
        if book.crossed():
            # Resting orders never cross: a kept book that does after an update has missed one;
            # a crossed snapshot cannot be used either. Both ask for a fresh one.
            reason, what = (CROSSED_BOOK, "snapshot") if is_snapshot else (BOOK_GAP, "book after an update")
            return self._lose_book(native, reason, recv_ns, f"{native} {what} crossed: {book.top()}")
        # l2_updates carry no event time: the book tick is stamped with the receive time.
        return self.book_tick(symbol, book, recv_ns // 1_000_000, recv_ns)

    def _lose_book(self, native: str, reason: str, recv_ns: int, detail: str) -> list[Tick]:
        """A frame that cannot be applied: the book has missed it, so it is dropped until the next snapshot."""
        self._books.pop(native, None)
        symbol = self.symbols.resolve(native)
        if symbol is not None:
            self.forget_book(symbol)
        if native not in self._lost:  # one request per loss, however many frames arrive before the snapshot
            self._lost.add(native)
            self.resync_needed.add(native)
        return self.drop(reason, recv_ns, detail)

    def _trade(self, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        native = msg.get("symbol")
        raw_price = msg.get("price")
        raw_size = msg.get("quantity")
        timestamp = msg.get("timestamp")
        if native is None or raw_price is None or raw_size is None or timestamp is None:
            return self.drop(MISSING_FIELD, recv_ns, f"trade without symbol/price/quantity/timestamp: {msg!r}")
        symbol = self.symbols.resolve(native) if native.__class__ is str else None
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        if timestamp.__class__ is not int:
            return self.drop(BAD_TIMESTAMP, recv_ns, f"{native} timestamp={timestamp!r}")
        return self.make_trade(symbol, raw_price, raw_size, timestamp, recv_ns)


# --- the declaration the registry reads (ingest_worker/venues/__init__.py) -----------
VENUE = Venue(
    name=NAME,
    live_ws_url=LIVE_WS_URL,
    live_rest_url=LIVE_REST_URL,
    markets_path=MARKETS_PATH,
    read_markets=markets_from_rest,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    parser=GeminiParser,
    to_native=to_native,
    default_fee_pct=0.4,
    sim_port=9106,
    sim=SimProfile("USD", (1.0, 3.0), 2.5, 0.3, 0.3, 8),
    resubscribe_messages=resubscribe_messages,
)
