"""Kraken spot: WebSocket v2 (`ticker`, `trade`, `book`) live, and v1 (`ticker`, `trade`, `book`) as recorded.

The live client speaks v2 (`wss://ws.kraken.com/v2`): JSON objects with a
`channel` and a `data` list, symbols already canonical (`BTC/USD`), numbers as
JSON numbers, times as RFC 3339. The recordings in ../shared/market-data/kraken
are v1: arrays `[channelID, data..., channelName, pair]` with `XBT` for bitcoin,
decimal strings and times in epoch seconds. The parser takes both. Wire fields:

    v2 ticker   data[]: symbol, bid, bid_qty, ask, ask_qty, last, volume, ...,
                timestamp (RFC 3339; absent from older frames and snapshots)
    v2 trade    data[]: symbol, side, price, qty, ord_type, trade_id, timestamp (RFC 3339)
    v2 book     {"channel": "book", "type": "snapshot"|"update", "data": [{symbol, bids: [{price, qty}, ...],
                asks: [...], checksum: CRC32 (unsigned int), timestamp (RFC 3339; updates, newer snapshots)}]};
                qty 0 removes a level; the book is kept to the subscribed depth (BOOK_DEPTH)
    v2 control  {"method": "subscribe"|"unsubscribe"|"pong", "success": bool, ...},
                {"channel": "heartbeat"}, {"channel": "status", ...}
    v1 ticker   [id, {a: [price, wholeLotVolume, lotVolume], b: [...], c: last trade, v, p, t, l, h, o},
                "ticker", pair]  -- no event time: the receive time is used
    v1 trade    [id, [[price, volume, time (epoch s, "1618678142.557535"), side, orderType, misc], ...],
                "trade", pair]
    v1 book     [id, {as: [[price, volume, time], ...], bs: [...]}, "book-<depth>", pair]  snapshot
                [id, {a: [...]} and/or {b: [...], c: checksum}, "book-<depth>", pair]     update;
                an update level [price, "0.00000000", time] deletes the level, a 4th item "r"
                marks a republished level
    v1 control  {"event": "heartbeat"|"systemStatus"|"subscriptionStatus"|"pong", ...}

Books (v1 `book-<depth>` and v2 `book`) are kept per market name (snapshot + updates,
truncated to the subscribed depth), and every checksum is verified: CRC32 of the top ten
asks then the top ten bids, each level's price and size as the wire spells them with '.'
removed and then leading zeros ("0.05005" -> "5005"). v1 sends decimal strings; v2 sends
JSON numbers written at the pair's precision ("pushed onto the wire containing full
precision", Kraken's v2 checksum guide: `0.00100000`, trailing zeros kept), so v2 book
frames are decoded keeping each number's text. A frame that changes the top
`depth_levels` levels becomes a book tick (DESIGN.md "Depth").

A book is dropped when an update fails its checksum (`book_gap`), leaves the book crossed
(`book_gap`: an update was missed), comes before any snapshot (`book_gap`), or a snapshot
is crossed (`crossed_book`) or fails its checksum (`book_gap`); a frame with a bad level
drops it too, under that level's reason. The market's name then goes to `resync_needed`
once per loss and its updates are refused until a snapshot rebuilds it;
`resubscribe_messages` unsubscribes and subscribes that symbol's v2 book again, which
brings the snapshot.

Which channel sets the top: the book. The live client subscribes to `book` (depth 25)
besides `ticker` and `trade`; while a market has a book its ticker frames are counted as
ignored (`ticker_behind_book`), never sent as quotes, so the only top the engine sees is
the book tick's and no level better than a newer top is ever walked. A market without a
book (before its snapshot, or after a loss until the resubscription's snapshot) is quoted
from its ticker. The frame that loses a book also gives the engine a book-lost tick
(`ingest_worker/venues/base.py`), so none of the lost book's levels is walked behind the
ticker's top: the market signals from its ticker without depth until the next snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zlib
from collections.abc import Iterable
from typing import Any

import orjson

from ingest_worker.book import L2Book
from ingest_worker.venues.base import (
    BAD_PRICE,
    BAD_SIZE,
    BAD_TIMESTAMP,
    BOOK_GAP,
    MALFORMED_JSON,
    MAX_PRICE,
    MAX_SIZE,
    MISSING_FIELD,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    BookParser,
)
from ingest_worker.venues.declaration import SimProfile, Venue
from signals_app.contracts.symbols import SymbolTable, canonical
from signals_app.contracts.tick import Tick

# --- declaration ----------------------------------------------------------------
NAME = "kraken"
LIVE_WS_URL = "wss://ws.kraken.com"
LIVE_REST_URL = "https://api.kraken.com"
WS_V2_PATH = "/v2"
ASSET_PAIRS_PATH = "/0/public/AssetPairs"
CHANNELS = {"quote": "ticker", "trade": "trade", "book": "book"}
BOOK_DEPTH = 25  # levels a side of the v2 book subscription: at least DEPTH_LEVELS (20)
# v1 `event` messages and v2 `channel` messages that are about the connection, not a market.
CONTROL_EVENTS = frozenset({"heartbeat", "systemStatus", "subscriptionStatus", "pong"})
CONTROL_CHANNELS = frozenset({"heartbeat", "status"})
CONTROL_METHODS = frozenset({"subscribe", "unsubscribe", "pong"})
# Real Kraken channels we do not use (counted as ignored). v1 names carry a suffix
# (`ohlc-1`, `book-10` is used): they are matched on the part before the dash.
IGNORED_CHANNELS = frozenset({"spread", "ohlc", "instrument", "level3", "openOrders", "ownTrades"})
# Frames that give no tick (counted as ignored): a ticker of a market whose book sets the top, a
# book frame that left the top `depth_levels` levels as they were, a book with an empty side.
TICKER_BEHIND_BOOK = "ticker_behind_book"
BOOK_BELOW_TOP = "book_below_top"
ONE_SIDED_BOOK = "book_one_sided"


def to_native(symbol: str) -> str:
    """`BTC/USD` -> `BTC/USD`: v2 names are the canonical ones (v1 said `XBT/USD`)."""
    return symbol


def split_pair(native: str) -> tuple[str, str] | None:
    """`XBT/EUR` -> (`XBT`, `EUR`); None when the name is not `BASE/QUOTE`."""
    base, sep, quote = native.partition("/")
    if not sep or not _is_asset(base) or not _is_asset(quote):
        return None
    return base, quote


def _is_asset(name: str) -> bool:
    # Kraken assets are alphanumeric, some with a dot (`ETH2.S`).
    return 0 < len(name) <= 16 and name.isascii() and name.replace(".", "").isalnum()


def connect_url(ws_base: str) -> str:
    """The v2 endpoint under `ws_base` (the live host or the simulator's)."""
    base = ws_base.rstrip("/")
    return base if base.endswith(WS_V2_PATH) else base + WS_V2_PATH


def subscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """v2 subscriptions: the book (BOOK_DEPTH levels, with its snapshot), the ticker on every
    change of the best bid/offer (the top of a market without a book), and trades without the
    snapshot of past trades (they would be dropped as stale anyway)."""
    symbols = list(natives)
    return [
        _book_subscription("subscribe", symbols),
        {
            "method": "subscribe",
            "params": {"channel": "ticker", "symbol": symbols, "event_trigger": "bbo", "snapshot": True},
            "req_id": 1,
        },
        {"method": "subscribe", "params": {"channel": "trade", "symbol": symbols, "snapshot": False}, "req_id": 2},
    ]


def resubscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """A fresh book for each market: leave its v2 `book` and subscribe again, which sends the snapshot."""
    symbols = list(natives)
    return [_book_subscription("unsubscribe", symbols), _book_subscription("subscribe", symbols)]


def _book_subscription(method: str, symbols: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"channel": "book", "symbol": symbols, "depth": BOOK_DEPTH}
    if method == "subscribe":
        params["snapshot"] = True
    return {"method": method, "params": params, "req_id": 3}


def markets_from_asset_pairs(payload: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(native v2 name, base, quote) of every online pair of a `/0/public/AssetPairs` answer.

    The pairs' `wsname` is the v1 name (`XBT/USD`); v2 uses the canonical spelling
    (`BTC/USD`), which is what the live client subscribes with. Dark pools have no wsname.
    """
    markets: list[tuple[str, str, str]] = []
    for pair in (payload.get("result") or {}).values():
        if pair.get("status", "online") != "online":
            continue
        parts = split_pair(pair.get("wsname") or "")
        if parts is not None:
            markets.append((canonical(*parts), *parts))
    return markets


MARKETS_PATH = ASSET_PAIRS_PATH
markets_from_rest = markets_from_asset_pairs


# --- parser -----------------------------------------------------------------------
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z", re.ASCII)
_CHECKSUM_LEVELS = 10  # a checksum (v1 and v2) covers the top ten asks, then the top ten bids
_MAX_DEPTH = 1000  # the deepest v1 book subscription


def _checksum_text(price_text: str, size_text: str) -> str:
    """A level's slice of the checksum string: "0.05005" and "1.2300" -> "5005" and "12300"
    ('.' removed, then leading zeros). The book keeps it as the level's text."""
    return price_text.replace(".", "").lstrip("0") + size_text.replace(".", "").lstrip("0")


def _checksum(book: L2Book) -> int:
    """Kraken's book checksum (v1 and v2): CRC32 of the top ten asks' texts, then the top ten bids'."""
    texts = book.ask_texts(_CHECKSUM_LEVELS) + book.bid_texts(_CHECKSUM_LEVELS)
    return zlib.crc32("".join(texts).encode())


class _BadLevel(Exception):
    def __init__(self, reason: str, detail: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class KrakenParser(BookParser):
    name = NAME
    ONE_SIDED = ONE_SIDED_BOOK
    UNCHANGED_BOOK = BOOK_BELOW_TOP

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_pair)

    def books_awaiting_snapshot(self) -> list[str]:
        """Market names whose book was dropped: resubscribe them to get a new snapshot."""
        return sorted(self._awaited)

    def _symbol(self, native: object) -> str | None:
        """The canonical symbol of a v1 or v2 name. A market list from AssetPairs holds v2 names
        (`BTC/USD`); a v1 name (`XBT/USD`) is then found through its canonical spelling."""
        if native.__class__ is not str:
            return None
        resolve = self.symbols.resolve
        symbol = resolve(native)  # type: ignore[arg-type]
        if symbol is None and self.symbols.strict:
            parts = split_pair(native)  # type: ignore[arg-type]
            if parts is not None:
                symbol = resolve(canonical(*parts))
        return symbol

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is list:
            return self._v1_data(msg, recv_ns)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        channel = msg.get("channel")
        if channel == "book":
            # Again, keeping each number's text: the checksum is over the wire's digits.
            return self._v2_book(json.loads(frame, parse_float=_WireNumber), recv_ns)
        if channel is not None:
            return self._v2_channel(channel, msg, recv_ns)
        method = msg.get("method")
        if method is not None:
            if method.__class__ is not str or method not in CONTROL_METHODS:
                return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
            if msg.get("success") is False or "error" in msg:
                return self.exchange_error(recv_ns, frame)
            return self.control(method)
        event = msg.get("event")
        if event is not None:
            if event == "error" or (event == "subscriptionStatus" and msg.get("status") == "error"):
                return self.exchange_error(recv_ns, frame)
            if event.__class__ is str and event in CONTROL_EVENTS:
                return self.control(event)
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        if "error" in msg:
            return self.exchange_error(recv_ns, frame)
        return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)

    # --- v2 ------------------------------------------------------------------
    def _v2_channel(self, channel: object, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        if channel.__class__ is not str:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, msg)
        if channel == "ticker" or channel == "trade":
            data = msg.get("data")
            if data.__class__ is not list or not data:
                return self.drop(MISSING_FIELD, recv_ns, f"v2 {channel} without data")
            ticks: list[Tick] = []
            handle = self._v2_ticker if channel == "ticker" else self._v2_trade
            for item in data:
                if item.__class__ is not dict:
                    return self.drop(MISSING_FIELD, recv_ns, f"v2 {channel} item {item!r}")
                made = handle(item, recv_ns)
                if not made:
                    return made  # counted: the rest of a frame with a bad item is not trusted either
                ticks += made
            return ticks
        if channel in CONTROL_CHANNELS:
            return self.control(channel)
        if channel in IGNORED_CHANNELS:
            return self.ignore(channel)
        return self.drop(UNKNOWN_MESSAGE, recv_ns, msg)

    def _v2_ticker(self, item: dict[str, Any], recv_ns: int) -> list[Tick]:
        native = item.get("symbol")
        if native is None:
            return self.drop(MISSING_FIELD, recv_ns, "v2 ticker without symbol")
        symbol = self._symbol(native)
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        if self.has_book_of(symbol):  # the book sets this market's top
            return self.ignore(TICKER_BEHIND_BOOK)
        bid, ask = item.get("bid"), item.get("ask")
        if bid is None or ask is None:
            return self.drop(MISSING_FIELD, recv_ns, f"{native} v2 ticker without bid/ask")
        if "bid_qty" not in item or "ask_qty" not in item:
            return self.drop(MISSING_FIELD, recv_ns, f"{native} v2 ticker without bid_qty/ask_qty")
        bid_size, ask_size = item["bid_qty"], item["ask_qty"]
        if bid_size is None or ask_size is None:  # Kraken always sends sizes: null is not "unknown"
            return self.drop(BAD_SIZE, recv_ns, f"{native} sizes {bid_size!r}/{ask_size!r}")
        raw_time = item.get("timestamp")
        if raw_time is None:  # snapshots and frames before the field existed carry none
            timestamp = recv_ns // 1_000_000
        else:
            parsed = _rfc3339_ms(raw_time)
            if parsed is None:
                return self.drop(BAD_TIMESTAMP, recv_ns, f"{native} timestamp={raw_time!r}")
            timestamp = parsed
        return self.make_quote(symbol, bid, ask, bid_size, ask_size, timestamp, recv_ns)

    def _v2_trade(self, item: dict[str, Any], recv_ns: int) -> list[Tick]:
        native, raw_time = item.get("symbol"), item.get("timestamp")
        if native is None or raw_time is None or "price" not in item or "qty" not in item:
            return self.drop(MISSING_FIELD, recv_ns, f"v2 trade {item!r}")
        price, qty = item["price"], item["qty"]  # null: a bad number, counted by make_trade
        symbol = self._symbol(native)
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        timestamp = _rfc3339_ms(raw_time)
        if timestamp is None:
            return self.drop(BAD_TIMESTAMP, recv_ns, f"{native} timestamp={raw_time!r}")
        return self.make_trade(symbol, price, qty, timestamp, recv_ns)

    def _v2_book(self, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        """A v2 `book` frame (its numbers as their wire texts): each market's snapshot or update."""
        kind, data = msg.get("type"), msg.get("data")
        if kind != "snapshot" and kind != "update":
            return self.drop(UNKNOWN_MESSAGE, recv_ns, f"v2 book type {kind!r}")
        if data.__class__ is not list or not data:
            return self.drop(MISSING_FIELD, recv_ns, "v2 book without data")
        ticks: list[Tick] = []
        for item in data:
            if item.__class__ is not dict:
                return self.drop(MISSING_FIELD, recv_ns, f"v2 book item {item!r}")
            ticks += self._v2_book_item(kind == "snapshot", item, recv_ns)
        return ticks

    def _v2_book_item(self, is_snapshot: bool, item: dict[str, Any], recv_ns: int) -> list[Tick]:
        native = item.get("symbol")
        symbol = self._symbol(native)
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL if native is not None else MISSING_FIELD, recv_ns, f"v2 book {native!r}")
        assert isinstance(native, str)  # _symbol resolves strings only
        book = None if is_snapshot else self.book(native)
        if not is_snapshot and book is None:
            # The book was dropped, or its snapshot never came: nothing to apply the update to.
            return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} update without a book")
        checksum = item.get("checksum")
        if checksum.__class__ is not int or not 0 <= checksum < 2**32:
            return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} v2 book checksum {checksum!r}")
        raw_time = item.get("timestamp")
        timestamp = recv_ns // 1_000_000 if raw_time is None else _rfc3339_ms(raw_time)
        if timestamp is None:
            return self.lose_book(native, BAD_TIMESTAMP, recv_ns, f"{native} v2 book timestamp={raw_time!r}")
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        bid_texts: list[str] = []
        ask_texts: list[str] = []
        try:
            _read_v2_levels(item.get("bids", ()), bids, bid_texts, allow_delete=not is_snapshot)
            _read_v2_levels(item.get("asks", ()), asks, ask_texts, allow_delete=not is_snapshot)
        except _BadLevel as bad:
            return self.lose_book(native, bad.reason, recv_ns, f"{native} v2 book {bad.detail}")
        applied = self.apply_levels(native, symbol, book, bids, asks, bid_texts, ask_texts, recv_ns, BOOK_DEPTH)
        if isinstance(applied, list):
            return applied
        book = applied
        if _checksum(book) != checksum:
            return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} checksum {checksum} does not match")
        return self.book_ticks(symbol, book, timestamp, recv_ns)

    # --- v1 ------------------------------------------------------------------
    def _v1_data(self, msg: list[Any], recv_ns: int) -> list[Tick]:
        if len(msg) < 4:
            return self.drop(MISSING_FIELD, recv_ns, msg)
        channel, native = msg[-2], msg[-1]
        if channel.__class__ is not str or native.__class__ is not str:
            return self.drop(MISSING_FIELD, recv_ns, msg)
        kind = channel.partition("-")[0]
        if kind != "ticker" and kind != "trade" and kind != "book":
            return self.ignore(kind) if kind in IGNORED_CHANNELS else self.drop(UNKNOWN_MESSAGE, recv_ns, msg)
        symbol = self._symbol(native)
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        if kind == "book":
            return self._v1_book(channel, native, symbol, msg[1:-2], recv_ns)
        if len(msg) != 4:
            return self.drop(MISSING_FIELD, recv_ns, msg)
        if kind == "ticker":
            return self._v1_ticker(native, symbol, msg[1], recv_ns)
        return self._v1_trades(native, symbol, msg[1], recv_ns)

    def _v1_ticker(self, native: str, symbol: str, data: object, recv_ns: int) -> list[Tick]:
        if self.has_book_of(symbol):  # the book sets this market's top
            return self.ignore(TICKER_BEHIND_BOOK)
        ask = data.get("a") if isinstance(data, dict) else None
        bid = data.get("b") if isinstance(data, dict) else None
        if not isinstance(ask, list) or not isinstance(bid, list) or len(ask) < 3 or len(bid) < 3:
            return self.drop(MISSING_FIELD, recv_ns, f"{native} ticker a={ask!r} b={bid!r}")
        # [price, whole lot volume, lot volume]: the lot volume is the size in base units.
        if bid[2] is None or ask[2] is None:  # Kraken always sends sizes: null is not "unknown"
            return self.drop(BAD_SIZE, recv_ns, f"{native} ticker sizes {bid[2]!r}/{ask[2]!r}")
        return self.make_quote(symbol, bid[0], ask[0], bid[2], ask[2], recv_ns // 1_000_000, recv_ns)

    def _v1_trades(self, native: str, symbol: str, data: object, recv_ns: int) -> list[Tick]:
        if not isinstance(data, list) or not data:
            return self.drop(MISSING_FIELD, recv_ns, f"{native} trade data {data!r}")
        ticks: list[Tick] = []
        for entry in data:
            if entry.__class__ is not list or len(entry) < 3:
                return self.drop(MISSING_FIELD, recv_ns, f"{native} trade {entry!r}")
            timestamp = _epoch_ms(entry[2])
            if timestamp is None:
                return self.drop(BAD_TIMESTAMP, recv_ns, f"{native} trade time {entry[2]!r}")
            made = self.make_trade(symbol, entry[0], entry[1], timestamp, recv_ns)
            if not made:
                return made  # counted once: the other trades of a bad frame are not trusted
            ticks += made
        return ticks

    def _v1_book(self, channel: str, native: str, symbol: str, parts: list[Any], recv_ns: int) -> list[Tick]:
        if not parts or len(parts) > 2 or any(part.__class__ is not dict for part in parts):
            return self.drop(MISSING_FIELD, recv_ns, f"{native} {channel} parts {parts!r}")
        first: dict[str, Any] = parts[0]
        if "as" in first or "bs" in first:
            return self._v1_snapshot(channel, native, symbol, first, len(parts), recv_ns)
        book = self.book(native)
        if book is None:
            # The book was dropped after a gap, or its snapshot never came: nothing to apply to.
            return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} update without a book")
        checksum = parts[-1].get("c")
        if (
            not isinstance(checksum, str)
            or not 0 < len(checksum) <= 10
            or not checksum.isascii()
            or not checksum.isdigit()
        ):
            return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} update without a checksum")
        asks: list[tuple[float, float]] = []
        bids: list[tuple[float, float]] = []
        ask_texts: list[str] = []
        bid_texts: list[str] = []
        latest_ms = -1
        try:
            for part in parts:
                levels = part.get("a")
                if levels is not None:
                    latest_ms = max(latest_ms, _read_levels(levels, asks, ask_texts, allow_delete=True))
                levels = part.get("b")
                if levels is not None:
                    latest_ms = max(latest_ms, _read_levels(levels, bids, bid_texts, allow_delete=True))
        except _BadLevel as bad:
            # An update we cannot apply leaves the book wrong.
            return self.lose_book(native, bad.reason, recv_ns, f"{native} {bad.detail}")
        if not asks and not bids:
            return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} update without levels")
        applied = self.apply_levels(native, symbol, book, bids, asks, bid_texts, ask_texts, recv_ns)
        if isinstance(applied, list):
            return applied
        if _checksum(applied) != int(checksum):
            return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} checksum {checksum} does not match")
        timestamp = latest_ms if latest_ms >= 0 else recv_ns // 1_000_000
        return self.book_ticks(symbol, book, timestamp, recv_ns)

    def _v1_snapshot(
        self, channel: str, native: str, symbol: str, data: dict[str, Any], parts: int, recv_ns: int
    ) -> list[Tick]:
        raw_asks, raw_bids = data.get("as"), data.get("bs")
        if parts != 1 or raw_asks is None or raw_bids is None:
            return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} snapshot without as/bs")
        _, _, depth_text = channel.partition("-")
        depth = int(depth_text) if depth_text.isascii() and depth_text.isdigit() else _MAX_DEPTH
        asks: list[tuple[float, float]] = []
        bids: list[tuple[float, float]] = []
        ask_texts: list[str] = []
        bid_texts: list[str] = []
        try:
            _read_levels(raw_asks, asks, ask_texts, allow_delete=False)
            _read_levels(raw_bids, bids, bid_texts, allow_delete=False)
        except _BadLevel as bad:
            return self.lose_book(native, bad.reason, recv_ns, f"{native} snapshot {bad.detail}")
        # Truncated to the subscribed depth, as Kraken keeps it: the checksums are over that book.
        depth = max(1, min(depth, _MAX_DEPTH))
        book = self.apply_levels(native, symbol, None, bids, asks, bid_texts, ask_texts, recv_ns, depth)
        if isinstance(book, list):
            return book
        # A snapshot has no event time of its own (its levels carry the times they last changed).
        return self.book_ticks(symbol, book, recv_ns // 1_000_000, recv_ns)

    # --- books ---------------------------------------------------------------


def _read_v2_levels(levels: object, out: list[tuple[float, float]], texts: list[str], *, allow_delete: bool) -> None:
    """Append the (price, qty) of a list of v2 levels `{"price": ..., "qty": ...}` (numbers as their
    wire texts, or ints) to `out` and their checksum texts to `texts`. Raises _BadLevel."""
    if levels.__class__ is not list:
        raise _BadLevel(MISSING_FIELD, f"levels {levels!r}")
    for entry in levels:  # type: ignore[attr-defined]
        if entry.__class__ is not dict or "price" not in entry or "qty" not in entry:
            raise _BadLevel(MISSING_FIELD, f"level {entry!r}")
        raw_price, raw_qty = entry["price"], entry["qty"]
        price_text = _number_text(raw_price)
        if price_text is None:
            raise _BadLevel(BAD_PRICE, f"level {entry!r}")
        price = float(price_text)
        if not 0.0 < price < MAX_PRICE:
            raise _BadLevel(BAD_PRICE, f"level {entry!r}")
        qty_text = _number_text(raw_qty)
        if qty_text is None:
            raise _BadLevel(BAD_SIZE, f"level {entry!r}")
        qty = float(qty_text)
        if not (0.0 < qty < MAX_SIZE or (allow_delete and qty == 0.0)):
            raise _BadLevel(BAD_SIZE, f"level {entry!r}")
        out.append((price, qty))
        texts.append(_checksum_text(price_text, qty_text) if qty else "")


class _WireNumber(str):
    """A JSON number with a fraction, decoded as the text the wire spelled it with (v2 book frames)."""

    __slots__ = ()


def _number_text(raw: object) -> str | None:
    """The wire text of a v2 number: a JSON number decoded as its text (`_WireNumber`) or an int;
    None for anything else (a quoted string, a boolean, null) or a text that is no plain decimal."""
    cls = raw.__class__
    if cls is int:
        return str(raw)
    if cls is not _WireNumber:
        return None
    text: str = raw  # type: ignore[assignment]
    # A JSON number with an exponent (1e-05) or a sign is not how Kraken writes a price or a size.
    whole, _, fraction = text.partition(".")
    if not (whole.isascii() and whole.isdigit()) or (fraction and not (fraction.isascii() and fraction.isdigit())):
        return None
    return text


def _read_levels(levels: object, out: list[tuple[float, float]], texts: list[str], *, allow_delete: bool) -> int:
    """Append the (price, size) changes of a list of v1 levels to `out` and their checksum texts to
    `texts`; the latest level time in Unix ms.

    A level is [price, volume, time] (a 4th item "r" marks a republished level). Volume zero
    deletes the level in an update; a snapshot holds no zero volumes. Raises _BadLevel.
    """
    if not isinstance(levels, list):
        raise _BadLevel(MISSING_FIELD, f"levels {levels!r}")
    latest = -1
    for entry in levels:
        if entry.__class__ is not list or len(entry) < 3:
            raise _BadLevel(MISSING_FIELD, f"level {entry!r}")
        price_text, size_text = entry[0], entry[1]
        if price_text.__class__ is not str or size_text.__class__ is not str:
            raise _BadLevel(BAD_PRICE if price_text.__class__ is not str else BAD_SIZE, f"level {entry!r}")
        try:
            price = float(price_text)
        except ValueError:
            raise _BadLevel(BAD_PRICE, f"level {entry!r}") from None
        if not 0.0 < price < MAX_PRICE:
            raise _BadLevel(BAD_PRICE, f"level {entry!r}")
        try:
            size = float(size_text)
        except ValueError:
            raise _BadLevel(BAD_SIZE, f"level {entry!r}") from None
        if not (0.0 < size < MAX_SIZE or (allow_delete and size == 0.0)):
            raise _BadLevel(BAD_SIZE, f"level {entry!r}")
        level_ms = _epoch_ms(entry[2])
        if level_ms is None:
            raise _BadLevel(BAD_TIMESTAMP, f"level {entry!r}")
        latest = max(latest, level_ms)
        out.append((price, size))
        texts.append(_checksum_text(price_text, size_text) if size else "")
    return latest


def _epoch_ms(raw: object) -> int | None:
    """Unix ms of a v1 time, epoch seconds as a decimal string ("1618678142.557535"), or None."""
    if raw.__class__ is not str:
        return None
    seconds, _, fraction = raw.partition(".")  # type: ignore[attr-defined]
    # int() alone would also take "-1", "+1", " 1", "1_0" and non-ASCII digits.
    if not (0 < len(seconds) <= 12 and seconds.isascii() and seconds.isdigit()):
        return None
    if fraction and not (fraction.isascii() and fraction.isdigit()):
        return None
    return int(seconds) * 1000 + int(fraction[:3].ljust(3, "0"))


def _rfc3339_ms(raw: object) -> int | None:
    """Unix ms of a v2 time ("2023-09-25T07:49:37.708706Z"), or None when it is not one."""
    if raw.__class__ is not str:
        return None
    match = _RFC3339.fullmatch(raw)  # type: ignore[arg-type]
    if match is None:
        return None
    try:
        moment = dt.datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    fraction = match[2] or ""
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1) + int(fraction[:3].ljust(3, "0"))


# --- the declaration the registry reads (ingest_worker/venues/__init__.py) -----------
VENUE = Venue(
    name=NAME,
    live_ws_url=LIVE_WS_URL,
    live_rest_url=LIVE_REST_URL,
    markets_path=ASSET_PAIRS_PATH,
    read_markets=markets_from_asset_pairs,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    parser=KrakenParser,
    to_native=to_native,
    default_fee_pct=0.4,
    resubscribe_messages=resubscribe_messages,
    sim_port=9103,
    sim=SimProfile("USD", (0.5, 2.0), 2.0, 0.5, 0.3, 8, reference_markets=("USDT/USD", "USDC/USD")),
)


__all__ = [
    "ASSET_PAIRS_PATH",
    "BOOK_DEPTH",
    "CHANNELS",
    "LIVE_REST_URL",
    "LIVE_WS_URL",
    "MARKETS_PATH",
    "NAME",
    "VENUE",
    "KrakenParser",
    "connect_url",
    "markets_from_asset_pairs",
    "markets_from_rest",
    "resubscribe_messages",
    "split_pair",
    "subscribe_messages",
    "to_native",
]
