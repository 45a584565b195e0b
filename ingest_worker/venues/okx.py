"""OKX v5 public WebSocket: `books` order books, `tickers` quotes and `trades` trades, spot markets only.

Every push is `{"arg": {"channel": ..., "instId": ...}, "data": [...]}`; connection
answers are `{"event": "subscribe" | "unsubscribe" | "error" | "notice" | ..., ...}`,
and the server answers the client's text `ping` with a bare `pong`. OKX breaks a
connection after 30 s without data (its docs: "if the subscription is not established
or data has not been pushed for more than 30 seconds"; its close, 4004 "No data
received in 30s.", speaks of what the client sent), and asks clients to send `ping`
within N < 30 s: `KEEPALIVE` has the feed send it every 25 s at most. One public
connection carries spot, futures (`BTC-USD-220527`), swaps (`UNI-USD-SWAP`) and
options (`BTC-USD-210924-42000-P`): the derivatives are recognised by their
instrument id and counted as ignored, never passed off as spot prices. Wire fields used:

    tickers  instId: "BTC-USDT", bidPx/bidSz: best bid price/size, askPx/askSz: best ask
             price/size, last/lastSz: last trade (not used: `trades` gives every trade),
             ts: event time, Unix ms as a decimal string
    trades   instId, tradeId, px: price, sz: size, side: taker side, ts: trade time (Unix ms string)
    books, books-l2-tbt, books50-l2-tbt
             action: "snapshot" | "update", data[0]: asks/bids [[price, size, "0" (deprecated),
             orders], ...] (decimal strings, best first; size "0" removes the level), ts,
             checksum: CRC32 as a signed 32-bit int, and on newer frames seqId/prevSeqId
             (a snapshot's prevSeqId is -1; an update's prevSeqId is the seqId before it)

Each spot market's book is kept from its snapshot (`books`: 400 levels a side), and every
frame's checksum is verified as OKX documents it: the top 25 bids and asks interleaved,
"bid price:bid size:ask price:ask size:..." (a side with fewer levels simply ends), in the
wire's own strings, CRC32 read as a signed int. A frame that changes the top `depth_levels`
levels becomes a book tick (DESIGN.md "Depth"). The book is dropped when a checksum fails
(`book_gap`), an update's prevSeqId is not the previous seqId (`book_gap`), an update leaves
the book crossed (`book_gap`) or comes before any snapshot (`book_gap`), a snapshot is
crossed (`crossed_book`), or a frame holds a bad level (its reason); the instId then goes
to `resync_needed` once per loss, and `resubscribe_messages` unsubscribes and subscribes
that instrument's `books` again, which brings a new snapshot.

Which channel sets the top: the book. The live client subscribes to `books` besides
`tickers` and `trades`; while a market has a book its `tickers` pushes are counted as
ignored (`tickers_behind_book`), never sent as quotes, so no level better than a newer top
is ever walked. A market without a book (before its snapshot, or after a loss until the
new snapshot) is quoted from `tickers`, without depth: the frame that lost the book gave
the engine a book-lost tick, so nothing of the lost book is walked behind that top.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ingest_worker.book import L2Book
from ingest_worker.venues._levels import interleaved_checksum, read_levels
from ingest_worker.venues.base import (
    BAD_SIZE,
    BAD_TIMESTAMP,
    BOOK_GAP,
    MALFORMED_JSON,
    MISSING_FIELD,
    NO_TICKS,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    BookParser,
    TextKeepalive,
)
from ingest_worker.venues.declaration import SimProfile, Venue
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import Tick

# --- declaration ----------------------------------------------------------------
NAME = "okx"
LIVE_WS_URL = "wss://ws.okx.com:8443"
LIVE_REST_URL = "https://www.okx.com"
PUBLIC_WS_PATH = "/ws/v5/public"
INSTRUMENTS_PATH = "/api/v5/public/instruments?instType=SPOT"
CHANNELS = {"book": "books", "quote": "tickers", "trade": "trades"}
# The incremental book channels, all with the same snapshot, checksum and sequence rules.
BOOK_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
# Answers to the client's requests and the server's own notices (counted as control).
CONTROL_EVENTS = frozenset({"subscribe", "unsubscribe", "login", "notice", "channel-conn-count"})
# Real OKX public channels we do not use (counted as ignored). `candle*` channels are
# matched by prefix: there is one per bar size.
IGNORED_CHANNELS = frozenset(
    {
        *("books5", "bbo-tbt", "trades-all"),
        *("instruments", "open-interest", "funding-rate", "price-limit", "opt-summary", "estimated-price"),
        *("mark-price", "index-tickers", "liquidation-orders", "status", "call-auction-details"),
    }
)
# OKX refuses a request longer than 4096 bytes; 40 arguments stay well below it.
ARGS_PER_REQUEST = 40
# The text `ping` (not a WebSocket ping frame) at least every 25 s: OKX cuts a connection at 30 s.
KEEPALIVE = TextKeepalive("ping", 25.0)
CHECKSUM_LEVELS = 25  # the checksum covers the top 25 bids and asks
# Frames that give no tick (counted as ignored): a ticker of a market whose book sets the top, a
# book frame that left the top `depth_levels` levels as they were, a book with an empty side.
TICKERS_BEHIND_BOOK = "tickers_behind_book"
BOOK_UNCHANGED = "book_top_unchanged"
ONE_SIDED_BOOK = "book_one_sided"


def to_native(symbol: str) -> str:
    """`BTC/USDT` -> `BTC-USDT`."""
    return symbol.replace("/", "-")


def split_inst_id(native: str) -> tuple[str, str] | None:
    """(`BTC`, `USDT`) of a spot instrument id `BTC-USDT`; None for anything else."""
    base, sep, quote = native.partition("-")
    if not sep or not _is_asset(base) or not _is_asset(quote):
        return None
    return base, quote


def derivative_kind(native: str) -> str | None:
    """`futures`, `swap` or `option` for a derivative instrument id; None otherwise."""
    parts = native.split("-")
    if len(parts) == 3 and _is_asset(parts[0]) and _is_asset(parts[1]):
        if parts[2] == "SWAP":
            return "swap"  # UNI-USD-SWAP, XMR-USDT-SWAP
        if len(parts[2]) == 6 and parts[2].isascii() and parts[2].isdigit():
            return "futures"  # BTC-USD-220527: expiry YYMMDD
    if len(parts) == 5 and _is_asset(parts[0]) and _is_asset(parts[1]) and parts[4] in ("C", "P"):
        return "option"  # BTC-USD-210924-42000-P: expiry, strike, call/put
    return None


def subscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """`subscribe` requests for the book, tickers and trades of every market, split to fit OKX's size limit."""
    return _requests("subscribe", [(channel, native) for native in natives for channel in CHANNELS.values()])


def resubscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """A fresh book for each market: leave its `books` and subscribe again, which sends the snapshot."""
    books = [(CHANNELS["book"], native) for native in natives]
    return _requests("unsubscribe", books) + _requests("subscribe", books)


def _requests(op: str, channels: list[tuple[str, str]]) -> list[dict[str, Any]]:
    args = [{"channel": channel, "instId": native} for channel, native in channels]
    return [
        {"op": op, "args": args[start : start + ARGS_PER_REQUEST]} for start in range(0, len(args), ARGS_PER_REQUEST)
    ]


def connect_url(ws_base: str) -> str:
    return f"{ws_base}{PUBLIC_WS_PATH}"


def markets_from_instruments(payload: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(native, base, quote) of every live spot market in an `/api/v5/public/instruments` answer."""
    return [
        (market["instId"], market["baseCcy"], market["quoteCcy"])
        for market in payload.get("data", [])
        if market.get("instType", "SPOT") == "SPOT" and market.get("state", "live") == "live"
    ]


MARKETS_PATH = INSTRUMENTS_PATH
markets_from_rest = markets_from_instruments


def _is_asset(name: str) -> bool:
    # Upper-case ASCII letters and digits (`1INCH`, `USDT`): what OKX lists.
    return name.isascii() and name.isalnum() and name == name.upper()


# --- parser -----------------------------------------------------------------------
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_QUOTE_FIELDS = ("bidPx", "askPx", "bidSz", "askSz")


def _event_ms(raw: object) -> int | None:
    """Unix ms of OKX's `ts` ("1652459223003"; a JSON integer is taken too), or None."""
    if raw.__class__ is str:
        text: str = raw  # type: ignore[assignment]
        # int() alone would also take "-1", "+1", " 1", "1_0" and non-ASCII digits.
        if 0 < len(text) <= 15 and text.isascii() and text.isdigit():
            return int(text)
        return None
    if raw.__class__ is int and 0 <= raw < 10**15:  # type: ignore[operator]
        return raw  # type: ignore[return-value]
    return None


def _checksum(book: L2Book) -> int:
    """OKX's book checksum: CRC32 of the top 25 bid and ask texts interleaved, as a signed 32-bit int."""
    return interleaved_checksum(book.bid_texts(CHECKSUM_LEVELS), book.ask_texts(CHECKSUM_LEVELS))


def _sequence(raw: object) -> int | None:
    """A seqId/prevSeqId: a JSON integer (never a boolean); None when absent or not one."""
    return raw if raw.__class__ is int else None  # type: ignore[return-value]


class OkxParser(BookParser):
    name = NAME
    ONE_SIDED = ONE_SIDED_BOOK
    UNCHANGED_BOOK = BOOK_UNCHANGED

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_inst_id)

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        if frame == "pong" or frame == b"pong":  # the answer to our text `ping`
            return self.control("pong")
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        event = msg.get("event")
        if event is not None:
            if event == "error":
                return self.exchange_error(recv_ns, frame)
            if event.__class__ is str and event in CONTROL_EVENTS:
                return self.control(event)
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        arg = msg.get("arg")
        channel = arg.get("channel") if arg.__class__ is dict else None
        if channel.__class__ is not str or "data" not in msg:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        if channel == "tickers":
            return self._items(msg["data"], True, recv_ns)
        if channel == "trades":
            return self._items(msg["data"], False, recv_ns)
        if channel in BOOK_CHANNELS:
            return self._book_push(channel, arg.get("instId"), msg, recv_ns)  # type: ignore[union-attr]
        if channel in IGNORED_CHANNELS or channel.startswith(("candle", "mark-price-candle", "index-candle")):
            return self.ignore(channel)
        return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)

    def _items(self, data: object, is_ticker: bool, recv_ns: int) -> list[Tick]:
        """The ticks of every entry of a `tickers` or `trades` push.

        A frame is one outcome: if any spot entry is bad, the frame is dropped under that
        entry's reason and none of its ticks is sent. Derivative entries are skipped; a
        frame of derivatives only is counted as ignored under the instrument kind.
        """
        kind = "tickers" if is_ticker else "trades"
        if data.__class__ is not list:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, f"{kind} data {data!r}")
        if not data:
            return self.drop(MISSING_FIELD, recv_ns, f"{kind} push without data")
        ticks: list[Tick] = []
        skipped: str | None = None
        for item in data:  # type: ignore[attr-defined]
            if item.__class__ is not dict:
                return self.drop(UNKNOWN_MESSAGE, recv_ns, f"{kind} entry {item!r}")
            native = item.get("instId")
            if native is None:
                return self.drop(MISSING_FIELD, recv_ns, f"{kind} entry without instId")
            symbol = self.symbols.resolve(native) if native.__class__ is str else None
            if symbol is None:
                derivative = derivative_kind(native) if native.__class__ is str else None
                if derivative is None:
                    return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
                skipped = derivative
                continue
            raw_ts = item.get("ts")
            if raw_ts is None:
                return self.drop(MISSING_FIELD, recv_ns, f"{native} {kind} without ts")
            timestamp = _event_ms(raw_ts)
            if timestamp is None:
                return self.drop(BAD_TIMESTAMP, recv_ns, f"{native} {kind} ts={raw_ts!r}")
            if is_ticker:
                if self.has_book_of(symbol):  # the book sets this market's top
                    return self.ignore(TICKERS_BEHIND_BOOK)
                for field in _QUOTE_FIELDS:
                    if field not in item:
                        return self.drop(MISSING_FIELD, recv_ns, f"{native} ticker without {field}")
                raw_bid_size = item["bidSz"]
                raw_ask_size = item["askSz"]
                if raw_bid_size is None or raw_ask_size is None:
                    # make_quote reads None as "the feed gives no size"; OKX always gives one.
                    return self.drop(BAD_SIZE, recv_ns, f"{native} sizes {raw_bid_size!r}/{raw_ask_size!r}")
                made = self.make_quote(
                    symbol, item["bidPx"], item["askPx"], raw_bid_size, raw_ask_size, timestamp, recv_ns
                )
            else:
                if "px" not in item or "sz" not in item:
                    return self.drop(MISSING_FIELD, recv_ns, f"{native} trade without px/sz")
                made = self.make_trade(symbol, item["px"], item["sz"], timestamp, recv_ns)
            if not made:
                return NO_TICKS  # dropped and counted by make_quote/make_trade
            ticks += made
        if not ticks:
            assert skipped is not None  # data is not empty, and every other way out returned
            return self.ignore(skipped)
        return ticks

    # --- books ---------------------------------------------------------------
    def _book_push(self, channel: str, native: object, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        """A `books` push: the instrument's snapshot or update, checked by sequence and checksum."""
        symbol = self.symbols.resolve(native) if native.__class__ is str else None  # type: ignore[arg-type]
        if symbol is None:
            derivative = derivative_kind(native) if native.__class__ is str else None  # type: ignore[arg-type]
            if derivative is None:
                return self.drop(
                    UNKNOWN_SYMBOL if native is not None else MISSING_FIELD, recv_ns, f"{channel} {native!r}"
                )
            return self.ignore(derivative)
        assert isinstance(native, str)
        action, data = msg.get("action"), msg["data"]
        if action != "snapshot" and action != "update":
            return self.drop(UNKNOWN_MESSAGE, recv_ns, f"{native} {channel} action {action!r}")
        if data.__class__ is not list or len(data) != 1 or data[0].__class__ is not dict:
            return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} {channel} data {data!r:.100}")
        item: dict[str, Any] = data[0]
        is_snapshot = action == "snapshot"
        book = None if is_snapshot else self.book(native)
        if not is_snapshot and book is None:
            return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} update without a book")
        raw_ts, checksum = item.get("ts"), item.get("checksum")
        timestamp = _event_ms(raw_ts)
        if timestamp is None:
            return self.lose_book(native, BAD_TIMESTAMP, recv_ns, f"{native} {channel} ts={raw_ts!r}")
        if checksum.__class__ is not int or not -(1 << 31) <= checksum < 1 << 31:
            return self.lose_book(native, MISSING_FIELD, recv_ns, f"{native} checksum {checksum!r}")
        seq, prev_seq = _sequence(item.get("seqId")), _sequence(item.get("prevSeqId"))
        last_seq = self.sequence.get(native)
        if not is_snapshot and last_seq is not None and prev_seq != last_seq:
            # An update in between was missed (an equal seqId and prevSeqId is a push without changes).
            detail = f"{native} prevSeqId {prev_seq!r} after seqId {last_seq}"
            return self.lose_book(native, BOOK_GAP, recv_ns, detail)
        raw_bids, raw_asks = item.get("bids"), item.get("asks")
        bids = read_levels(raw_bids, removals=not is_snapshot)
        if isinstance(bids, str):
            return self.lose_book(native, bids, recv_ns, f"{native} bids {raw_bids!r:.100}")
        asks = read_levels(raw_asks, removals=not is_snapshot)
        if isinstance(asks, str):
            return self.lose_book(native, asks, recv_ns, f"{native} asks {raw_asks!r:.100}")
        # The checksum reads each level's price and size as the wire spelled them.
        bid_texts = [f"{level[0]}:{level[1]}" for level in raw_bids]  # type: ignore[union-attr]
        ask_texts = [f"{level[0]}:{level[1]}" for level in raw_asks]  # type: ignore[union-attr]
        applied = self.apply_levels(native, symbol, book, bids, asks, bid_texts, ask_texts, recv_ns)
        if isinstance(applied, list):
            return applied
        book = applied
        if _checksum(book) != checksum:
            return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} checksum {checksum} does not match")
        if seq is not None:
            self.sequence[native] = seq
        return self.book_ticks(symbol, book, timestamp, recv_ns)


# --- the declaration the registry reads (ingest_worker/venues/__init__.py) -----------
VENUE = Venue(
    name=NAME,
    live_ws_url=LIVE_WS_URL,
    live_rest_url=LIVE_REST_URL,
    markets_path=INSTRUMENTS_PATH,
    read_markets=markets_from_instruments,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    parser=OkxParser,
    to_native=to_native,
    default_fee_pct=0.1,
    resubscribe_messages=resubscribe_messages,
    sim_port=9104,
    sim=SimProfile("USDT", (0.1, 1.0), 1.5, 0.9, 0.2, reference_markets=("USDC/USDT",), reference_price_decimals=4),
    keepalive=KEEPALIVE,
)
