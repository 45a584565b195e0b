"""Bitfinex WebSocket v2: `book` order books (checksummed), `ticker` quotes, `trades`, sequence numbers.

Bitfinex frames name no channel: each data frame starts with a channel id that the
connection's `subscribed` event maps to (channel, symbol). With the `conf` flag
SEQ_ALL (65536) every list frame ends with a per-connection sequence number; it is
tracked and its gaps counted (`sequence_gaps`). Wire shapes (Bitfinex's own order):

    events      {"event": "info"|"conf"|"subscribed"|"unsubscribed"|"error"|"pong", ...}
                subscribed: {"event":"subscribed","channel":"ticker","chanId":232949,"symbol":"tBFTUSD",...}
                error: the request's fields, then event, msg, code (10300 bad symbol or channel,
                10301 already subscribed, 10305 "subscribe: limit": too many channels on the connection)
    heartbeat   [chanId, "hb", seq]
    ticker      [chanId, [BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, DAILY_CHANGE_RELATIVE,
                          LAST_PRICE, VOLUME, HIGH, LOW], seq]
    trades      snapshot [chanId, [[ID, MTS, AMOUNT, PRICE], ...], seq] (newest first);
                update   [chanId, "te"|"tu", [ID, MTS, AMOUNT, PRICE], seq]; AMOUNT < 0 is a sell
    book        snapshot [chanId, [[PRICE, COUNT, AMOUNT], ...], seq]; update [chanId, [PRICE, COUNT, AMOUNT], seq]
                (AMOUNT > 0 a bid, < 0 an ask; COUNT 0 removes the level, AMOUNT 1 / -1 naming its side);
                checksum [chanId, "cs", CHECKSUM, seq] (with the conf flag OB_CHECKSUM, 131072)

Decisions:
* The ticker's BID_SIZE/ASK_SIZE are the sums of the 25 best levels, not the top level's
  size (the recorded tTESTBTC:TESTUSD book shows 0.688 at the best bid where the ticker
  says 76.17). A quote tick therefore carries sizes None ("unknown", DESIGN.md) rather
  than a figure that would inflate the engine's size and profit estimate; the sizes are
  still validated, so a frame with a bad one is dropped. The ticker carries no time:
  the timestamp is the receive time.
* Trades: "te" (execution) only; "tu" (the same trade again, with its final id) is
  counted as ignored, so a trade is never emitted twice. A snapshot (the last trades
  before subscribing, possibly hours old) gives one tick per valid trade, oldest first;
  its bad or stale entries are counted in `snapshot_trades_skipped` by reason, and a
  snapshot with no valid trade at all is one drop under the first entry's reason.
* Books (DESIGN.md "Depth"): the live client sends `conf` with SEQ_ALL | OB_CHECKSUM and
  subscribes `book` (P0, F0, len 25) for each market besides `ticker` and `trades` (three
  channels a market towards the 25 a connection). The snapshot replaces the channel's book,
  each update sets one level; each change of the top `depth_levels` levels gives a book tick
  (sizes are |AMOUNT|; the receive time stands in for the event time Bitfinex does not
  send). The book keeps each level's text "PRICE:AMOUNT" in JavaScript's spelling of the
  numbers (`js_number`: Bitfinex computes the checksum from its numbers so), and each `cs`
  frame is checked against the signed CRC32 of the top 25 bids and asks interleaved
  (`book_checksum`, docs.bitfinex.com "WebSocket Checksum"). A failed checksum (`book_gap`),
  an update before the snapshot (`book_gap`), a crossed book (`crossed_book`) or a bad level
  drops the book and names the market in `resync_needed`, once per loss (the changes still
  in flight are counted as ignored, `book_awaiting_snapshot`); the live client
  then sends `unsubscribe` (by the book's chanId, which only this parser knows:
  `resubscribe_messages`) and `subscribe` again, whose first frame is a fresh snapshot.
* Which channel sets the top: the book, once it has a snapshot; a ticker of that market is
  then counted as ignored (`ticker_behind_book`), since a quote tick would clear the
  engine's levels. Without a book (before its snapshot, after a drop) the ticker quotes.
* Funding channels (`fUSD`) and channels of other kinds are counted as ignored.
* Frames for a channel id that has no `subscribed` event yet are tolerated: Bitfinex
  sends heartbeats before the event (SOURCES.md); such heartbeats are control
  `hb_unknown_channel`, such data is ignored as `unknown_channel`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from ingest_worker.book import L2Book
from ingest_worker.venues._levels import interleaved_checksum
from ingest_worker.venues.base import (
    BAD_PRICE,
    BAD_SIZE,
    BAD_TIMESTAMP,
    BOOK_GAP,
    CROSSED_BOOK,
    DEPTH_LEVELS,
    DROP_REASONS,
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
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import Tick

# --- declaration ----------------------------------------------------------------
NAME = "bitfinex"
LIVE_WS_URL = "wss://api-pub.bitfinex.com"
LIVE_REST_URL = "https://api-pub.bitfinex.com"
WS_PATH = "/ws/2"
MARKETS_PATH = "/v2/conf/pub:list:pair:exchange"  # [["BTCUSD", "TESTBTC:TESTUSD", ...]]
CHANNELS = {"quote": "ticker", "trade": "trades"}
BOOK_CHANNEL = "book"  # P0 price levels; its book ticks set the market's top (the ticker stands in without one)
# The book subscription: precision P0 (exact prices), frequency F0 (real time), 25 levels a side.
BOOK_SUBSCRIPTION: dict[str, str] = {"prec": "P0", "freq": "F0", "len": "25"}
CHECKSUM_LEVELS = 25  # the checksum covers the top 25 bids and asks, whatever the book's len
SEQ_ALL = 65536  # conf flag: every list frame ends with the connection's sequence number
OB_CHECKSUM = 131072  # conf flag: each book channel sends [chanId, "cs", CHECKSUM] after its changes
CONF_MESSAGE: dict[str, Any] = {"event": "conf", "flags": SEQ_ALL | OB_CHECKSUM}
# "You can subscribe to 25 channels at the same time on the same connection" (docs.bitfinex.com,
# Public Channels; the General page says 30, and the server has been seen to take a few more).
# Past the cap a subscription gets error 10305 "subscribe: limit", so the feed spreads the
# markets over several connections (ingest_worker/feed.py), each market taking its channels.
MAX_CHANNELS_PER_CONNECTION = 25
CHANNELS_PER_MARKET = len(set(CHANNELS.values())) + 1  # ticker + trades + book
LIMIT_ERROR_CODE = 10305  # {"event":"error","msg":"subscribe: limit","code":10305,...}

# Bitfinex's three-letter spellings of assets, mapped to the names other venues use
# (Bitfinex `pub:map:currency:sym`, checked 2026-11). DOG is Bitfinex's "MDOGE", a
# million DOGE (278,200 USD in the 2021 recording): it must never meet DOGE or the
# unrelated DOG token of other venues, so it gets its own name.
BITFINEX_ALIASES: dict[str, str] = {
    "UST": "USDT",
    "UDC": "USDC",
    "TSD": "TUSD",
    "EUT": "EURT",
    "EUS": "EURS",
    "DSH": "DASH",
    "IOT": "IOTA",
    "QTM": "QTUM",
    "MNA": "MANA",
    "DAT": "DATA",
    "QSH": "QASH",
    "YYW": "YOYOW",
    "ALG": "ALGO",
    "ATO": "ATOM",
    "STJ": "STORJ",
    "SNG": "SNGLS",
    "ODE": "ODEM",
    "WBT": "WBTC",
    "VSY": "VSYS",
    "XCH": "XCHF",
    "AMP": "AMPL",
    "IQX": "IQ",
    "OMN": "OMNI",
    "DOG": "MDOGE",
}
_NATIVE_NAMES: dict[str, str] = {canonical: native for native, canonical in BITFINEX_ALIASES.items()}


def split_pair(native: str) -> tuple[str, str] | None:
    """`tBTCUST` -> (`BTC`, `USDT`), `tTESTBTC:TESTUSD` -> (`TESTBTC`, `TESTUSD`); None for funding (`fUSD`)."""
    if native[:1] != "t":
        return None
    pair = native[1:]
    if ":" in pair:
        base, _, quote = pair.partition(":")
    elif len(pair) == 6:
        base, quote = pair[:3], pair[3:]
    else:
        return None
    for part in (base, quote):
        if not part or not part.isascii() or not part.isalnum() or part != part.upper():
            return None
    return BITFINEX_ALIASES.get(base, base), BITFINEX_ALIASES.get(quote, quote)


def to_native(symbol: str) -> str:
    """`BTC/USDT` -> `tBTCUST`, `TESTBTC/TESTUSD` -> `tTESTBTC:TESTUSD`."""
    base, _, quote = symbol.partition("/")
    base = _NATIVE_NAMES.get(base, base)
    quote = _NATIVE_NAMES.get(quote, quote)
    if len(base) == 3 and len(quote) == 3:
        return f"t{base}{quote}"
    return f"t{base}:{quote}"


def connect_url(ws_base: str) -> str:
    return f"{ws_base}{WS_PATH}"


def book_subscription(native: str) -> dict[str, Any]:
    return {"event": "subscribe", "channel": BOOK_CHANNEL, "symbol": native, **BOOK_SUBSCRIPTION}


def subscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """`conf` (SEQ_ALL and OB_CHECKSUM) first, then a `ticker`, a `trades` and a `book` subscription per market."""
    messages = [dict(CONF_MESSAGE)]
    for native in natives:
        messages += [{"event": "subscribe", "channel": channel, "symbol": native} for channel in CHANNELS.values()]
        messages.append(book_subscription(native))
    return messages


def resubscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """A fresh book of each market: subscribe its book again. Bitfinex unsubscribes by channel id
    only, which the connection's parser knows: `BitfinexParser.resubscribe_messages` puts the
    `unsubscribe` first; this is what is left when it knows none (no book channel open)."""
    return [book_subscription(native) for native in natives]


def markets_from_rest(payload: Any) -> list[tuple[str, str, str]]:
    """(native, base, quote) of every exchange pair in a `conf/pub:list:pair:exchange` answer."""
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], list):
        return []
    markets: list[tuple[str, str, str]] = []
    for pair in payload[0]:
        if isinstance(pair, str):
            native = f"t{pair}"
            parts = split_pair(native)
            if parts is not None:
                markets.append((native, *parts))
    return markets


# --- parser -----------------------------------------------------------------------
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
MAX_TIME_MS = 10**14  # beyond year 5000: not a time
MAX_CHANNELS = 10_000  # garbage `subscribed` events must not grow the map without bound
USED_CHANNELS = frozenset({*CHANNELS.values(), BOOK_CHANNEL})
KNOWN_CHANNELS = frozenset({"ticker", "trades", "book", "candles", "status"})  # Bitfinex's public channels
TICKER_BEHIND_BOOK = "ticker_behind_book"  # a ticker of a market whose book gives its top (ignored)
CHECKSUM_WITHOUT_BOOK = "cs_without_book"  # a checksum of a dropped book, awaiting its snapshot (ignored)
BOOK_AWAITING_SNAPSHOT = "book_awaiting_snapshot"  # a level change of a dropped book, before its new snapshot


class _Channel(NamedTuple):
    channel: str  # "ticker", "trades", "book", ...
    native: str  # "tBTCUSD"; "" where the event names none
    symbol: str | None  # canonical symbol; None when unknown
    funding: bool  # a funding market (fUSD): not spot, skipped


class BitfinexParser(VenueParser):
    name = NAME

    def __init__(
        self,
        symbols: SymbolTable | None = None,
        *,
        max_age_ms: int | None = MAX_TICK_AGE_MS,
        depth_levels: int = DEPTH_LEVELS,
    ) -> None:
        super().__init__(symbols, max_age_ms=max_age_ms, depth_levels=depth_levels)
        self._channels: dict[int, _Channel] = {}
        self._books: dict[int, L2Book] = {}  # book chanId -> its book since the snapshot (texts: checksum input)
        self._booked: dict[str, int] = {}  # canonical symbol -> the chanId of its book: the ticker stands aside
        self._lost: set[str] = set()  # natives whose book was dropped: a resync asked, once per loss
        self._last_seq: int | None = None
        self.sequence_gaps = 0  # frames whose sequence number is not the previous one + 1
        self.snapshot_trades_skipped: dict[str, int] = {}  # bad entries of tick-giving trade snapshots

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_pair)

    def new_connection(self) -> None:
        """A new connection: channel ids, books and the sequence start afresh."""
        super().new_connection()
        self._reset()

    def _reset(self) -> None:
        self._channels.clear()
        self._books.clear()
        self._booked.clear()
        self._lost.clear()
        self._sent_levels.clear()
        self._last_seq = None

    def awaiting_snapshot(self) -> set[str]:
        """Markets whose book was dropped and has not been rebuilt by a snapshot."""
        return set(self._lost)

    def resubscribe_messages(self, natives: Iterable[str]) -> list[dict[str, Any]]:
        """A fresh book of each market: `unsubscribe` its book channel (Bitfinex takes a chanId
        only), then `subscribe` it again; its first frame is the snapshot."""
        wanted = set(natives)
        messages: list[dict[str, Any]] = [
            {"event": "unsubscribe", "chanId": chan_id}
            for chan_id, channel in self._channels.items()
            if channel.channel == BOOK_CHANNEL and channel.native in wanted
        ]
        return messages + resubscribe_messages(sorted(wanted))

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is list:
            return self._channel_frame(msg, frame, recv_ns)
        if msg.__class__ is dict:
            return self._event(msg, frame, recv_ns)
        return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)

    # --- events -------------------------------------------------------------------
    def _event(self, msg: dict[str, Any], frame: str | bytes, recv_ns: int) -> list[Tick]:
        event = msg.get("event")
        if event == "subscribed":
            return self._subscribed(msg, recv_ns)
        if event == "info":
            if "version" in msg:  # the first frame of every connection: channel ids and sequence start afresh
                self._reset()
            return self.control("info")
        if event in ("conf", "pong"):
            return self.control(event)
        if event == "unsubscribed":
            chan_id = msg.get("chanId")
            if chan_id.__class__ is int:
                self._channels.pop(chan_id, None)
                self._forget_book_channel(chan_id)
            return self.control("unsubscribed")
        if event == "error":
            return self.exchange_error(recv_ns, frame)
        return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)

    def _subscribed(self, msg: dict[str, Any], recv_ns: int) -> list[Tick]:
        chan_id = msg.get("chanId")
        channel = msg.get("channel")
        if chan_id.__class__ is not int or channel.__class__ is not str:
            return self.drop(MISSING_FIELD, recv_ns, f"subscribed without chanId/channel: {msg!r}")
        native = msg.get("symbol")
        if native.__class__ is not str:
            native = ""
        funding = native.startswith("f")
        symbol = None
        if channel in USED_CHANNELS and not funding and native:
            symbol = self.symbols.resolve(native)
        if chan_id in self._channels or len(self._channels) < MAX_CHANNELS:
            self._channels[chan_id] = _Channel(channel, native, symbol, funding)
            self._forget_book_channel(chan_id)  # a channel id taken again: its old book is not this one
        return self.control("subscribed")

    # --- channel frames -----------------------------------------------------------
    def _channel_frame(self, msg: list[Any], frame: str | bytes, recv_ns: int) -> list[Tick]:
        if len(msg) < 2:
            return self.drop(MISSING_FIELD, recv_ns, frame)
        chan_id = msg[0]
        if chan_id.__class__ is not int:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        second = msg[1]
        if second.__class__ is str:
            kind: str = second
            rest = 2 if kind == "hb" else 3  # [chanId, "hb", seq] / [chanId, "te", [...], seq]
        else:
            kind = ""
            rest = 2
        if len(msg) == rest + 1:
            self._sequence(msg[rest], recv_ns)
        elif len(msg) > rest + 1:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        channel = self._channels.get(chan_id)
        if kind == "hb":
            return self.control("hb" if channel is not None else "hb_unknown_channel")
        if channel is None:
            return self.ignore("unknown_channel")
        if channel.funding:
            return self.ignore("funding")
        if channel.channel not in USED_CHANNELS:
            # Named only when a real one, so that garbage events cannot mint counter names.
            return self.ignore(channel.channel if channel.channel in KNOWN_CHANNELS else "other_channel")
        if channel.symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, channel.native)
        if channel.channel == BOOK_CHANNEL:
            return self._book_frame(chan_id, channel, kind, msg, frame, recv_ns)
        if channel.channel == "ticker":
            if kind:
                return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
            return self._ticker(channel.symbol, second, recv_ns)
        # trades
        if kind == "te":
            if len(msg) < 3:
                return self.drop(MISSING_FIELD, recv_ns, frame)
            return self._trade(channel.symbol, msg[2], recv_ns)
        if kind == "tu":
            return self.ignore("trades_tu")
        if kind:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        if second.__class__ is not list:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        if not second:
            return self.control("empty_snapshot")  # no trade yet in that market
        if second[0].__class__ is not list:  # a lone trade must come as "te"/"tu"
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        return self._trade_snapshot(channel.symbol, second, recv_ns)

    # --- books --------------------------------------------------------------------
    def _book_frame(
        self, chan_id: int, channel: _Channel, kind: str, msg: list[Any], frame: str | bytes, recv_ns: int
    ) -> list[Tick]:
        """A book channel's frame: its snapshot, one level's change, or its checksum."""
        if kind == "cs":
            if len(msg) < 3:
                return self.drop(MISSING_FIELD, recv_ns, frame)
            return self._checksum(chan_id, channel, msg[2], recv_ns)
        if kind:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        levels = msg[1]
        if levels.__class__ is not list:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        if not levels or levels[0].__class__ is list:
            return self._book_snapshot(chan_id, channel, levels, recv_ns)
        return self._book_update(chan_id, channel, levels, recv_ns)

    def _book_snapshot(self, chan_id: int, channel: _Channel, entries: list[Any], recv_ns: int) -> list[Tick]:
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        bid_texts: list[str] = []
        ask_texts: list[str] = []
        for entry in entries:
            level = _level(entry)
            if isinstance(level, str):
                return self._lose_book(chan_id, channel, level, recv_ns, f"snapshot level {entry!r}")
            price, size, text, bid = level
            if not size:
                return self._lose_book(chan_id, channel, BAD_SIZE, recv_ns, f"snapshot level with count 0: {entry!r}")
            (bids if bid else asks).append((price, size))
            (bid_texts if bid else ask_texts).append(text)
        book = L2Book(texts=True)
        book.replace(bids, asks, bid_texts, ask_texts)
        symbol: str = channel.symbol  # type: ignore[assignment]  # checked by the caller
        self.forget_book(symbol)  # a new book: sent whatever it holds
        if book.crossed():
            return self._lose_book(chan_id, channel, CROSSED_BOOK, recv_ns, "snapshot crossed")
        self._books[chan_id] = book
        self._booked[symbol] = chan_id
        self._lost.discard(channel.native)
        return self.book_tick(symbol, book, recv_ns // 1_000_000, recv_ns)

    def _book_update(self, chan_id: int, channel: _Channel, entry: list[Any], recv_ns: int) -> list[Tick]:
        book = self._books.get(chan_id)
        if book is None:
            if channel.native in self._lost:  # in flight after the loss, until the new snapshot: unusable
                return self.ignore(BOOK_AWAITING_SNAPSHOT)
            return self._lose_book(chan_id, channel, BOOK_GAP, recv_ns, "book update before its snapshot")
        level = _level(entry)
        if isinstance(level, str):
            return self._lose_book(chan_id, channel, level, recv_ns, f"book level {entry!r}")
        price, size, text, bid = level
        if bid:
            book.update(((price, size),), (), (text,), ())
        else:
            book.update((), ((price, size),), (), (text,))
        if book.crossed():
            return self._lose_book(chan_id, channel, CROSSED_BOOK, recv_ns, f"book crossed by {entry!r}")
        # Book frames carry no event time: the receive time stands in.
        return self.book_tick(channel.symbol, book, recv_ns // 1_000_000, recv_ns)  # type: ignore[arg-type]

    def _checksum(self, chan_id: int, channel: _Channel, checksum: object, recv_ns: int) -> list[Tick]:
        """[chanId, "cs", CHECKSUM]: the server's CRC32 of its top 25 levels, to compare with ours."""
        if checksum.__class__ is not int:
            return self.drop(MISSING_FIELD, recv_ns, f"{channel.native} checksum {checksum!r}")
        book = self._books.get(chan_id)
        if book is None:
            return self.ignore(CHECKSUM_WITHOUT_BOOK)  # the book is dropped: nothing to check
        ours = book_checksum(book.bid_texts(CHECKSUM_LEVELS), book.ask_texts(CHECKSUM_LEVELS))
        if ours != checksum:
            return self._lose_book(chan_id, channel, BOOK_GAP, recv_ns, f"checksum {checksum}, ours {ours}")
        return self.control("cs")

    def _lose_book(self, chan_id: int, channel: _Channel, reason: str, recv_ns: int, detail: str) -> list[Tick]:
        """Drop the book of the channel (counted under `reason`); ask once per loss for a fresh one."""
        self._forget_book_channel(chan_id)
        if channel.symbol is not None:
            self.forget_book(channel.symbol)
        if channel.native not in self._lost:
            self._lost.add(channel.native)
            self.resync_needed.add(channel.native)
        return self.drop(reason, recv_ns, f"{channel.native} {detail}")

    def _forget_book_channel(self, chan_id: int) -> None:
        if self._books.pop(chan_id, None) is not None:
            for symbol, booked_id in list(self._booked.items()):
                if booked_id == chan_id:
                    del self._booked[symbol]

    def _sequence(self, seq: object, recv_ns: int) -> None:
        """Track the connection's sequence (SEQ_ALL); a jump is counted, not fatal: no state depends on it."""
        if seq.__class__ is not int:
            return
        last = self._last_seq
        if last is not None and seq != last + 1:
            self.sequence_gaps += 1
            self._warn("sequence_gap", recv_ns, "sequence gap: %s after %s", seq, last)
        self._last_seq = seq  # type: ignore[assignment]

    def _ticker(self, symbol: str, fields: object, recv_ns: int) -> list[Tick]:
        if fields.__class__ is not list or len(fields) < 4:  # type: ignore[arg-type]
            return self.drop(MISSING_FIELD, recv_ns, f"{symbol} ticker {fields!r}")
        if symbol in self._booked:
            # The book's ticks carry the top with its real sizes and the levels; a quote tick
            # would clear the engine's levels of the market (engine_worker/book.py).
            return self.ignore(TICKER_BEHIND_BOOK)
        bid, bid_size, ask, ask_size = fields[:4]  # type: ignore[index]
        # The ticker has no event time; its sizes are 25-level sums (module docstring): validated, not emitted.
        ticks = self.make_quote(symbol, bid, ask, bid_size, ask_size, recv_ns // 1_000_000, recv_ns)
        if not ticks:
            return ticks
        if bid_size is None or ask_size is None:  # make_quote takes None as "the feed gives none"; Bitfinex does
            return self.drop(BAD_SIZE, recv_ns, f"{symbol} ticker sizes {bid_size!r}/{ask_size!r}")
        return [ticks[0]._replace(bid_size=None, ask_size=None)]

    def _trade(self, symbol: str, entry: object, recv_ns: int) -> list[Tick]:
        """One [ID, MTS, AMOUNT, PRICE] trade: a tick, or a counted drop."""
        if entry.__class__ is not list or len(entry) < 4:  # type: ignore[arg-type]
            return self.drop(MISSING_FIELD, recv_ns, f"{symbol} trade {entry!r}")
        _, mts, amount, price = entry[:4]  # type: ignore[index]
        if mts.__class__ is not int or not 0 < mts < MAX_TIME_MS:
            return self.drop(BAD_TIMESTAMP, recv_ns, f"{symbol} trade time {mts!r}")
        # AMOUNT is signed (negative: the taker sold); anything but a number is left to make_trade to refuse.
        size = abs(amount) if amount.__class__ is int or amount.__class__ is float else amount
        return self.make_trade(symbol, price, size, mts, recv_ns)

    def _trade_snapshot(self, symbol: str, entries: list[Any], recv_ns: int) -> list[Tick]:
        """The trades before subscribing, oldest first; one outcome for the whole frame."""
        stats = self.stats
        counted = stats.dropped
        scratch = dict.fromkeys(DROP_REASONS, 0)
        stats.dropped = scratch  # each entry's verdict lands here, not in the frame counters
        ticks: list[Tick] = []
        first_reason: str | None = None
        try:
            for entry in reversed(entries):
                got = self._trade(symbol, entry, recv_ns)
                if got:
                    ticks.extend(got)
                elif first_reason is None:
                    first_reason = next(reason for reason, count in scratch.items() if count)
        finally:
            stats.dropped = counted
        if not ticks:
            return self.drop(first_reason or MISSING_FIELD, recv_ns, f"{symbol} trade snapshot without a good trade")
        skipped = self.snapshot_trades_skipped
        for reason, count in scratch.items():
            if count:
                skipped[reason] = skipped.get(reason, 0) + count
        return ticks


def js_number(value: int | float) -> str:
    """A JSON number as JavaScript's Number#toString spells it: the text Bitfinex's checksum reads.

    repr gives the shortest digits that read back as the same float, as JavaScript does; only
    the notation differs: JavaScript writes 0.00002505 and 1e-7 where repr writes 2.505e-05 and 1e-07.
    """
    if value.__class__ is int:
        return str(value)
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, _, exponent = text.partition("e")
    sign = "-" if mantissa[0] == "-" else ""
    digits = mantissa.lstrip("-").replace(".", "")
    point = int(exponent) + 1  # the value is 0.<digits> x 10**point
    if -6 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if 0 < point <= 21:
        return (
            f"{sign}{digits[:point]}.{digits[point:]}"
            if point < len(digits)
            else f"{sign}{digits}{'0' * (point - len(digits))}"
        )
    rest = f".{digits[1:]}" if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{rest}e{'+' if point > 0 else '-'}{abs(point - 1)}"


def book_checksum(bid_texts: list[str], ask_texts: list[str]) -> int:
    """Bitfinex's book checksum: the signed CRC32 of "bidPrice:bidAmount:askPrice:askAmount:..." over
    the top levels, best first, bids and asks interleaved (asks' amounts negative, as sent)."""
    return interleaved_checksum(bid_texts, ask_texts)


def _level(entry: object) -> tuple[float, float, str, bool] | str:
    """A [PRICE, COUNT, AMOUNT] level: (price, size, its checksum text "price:amount", bid?), size 0
    when COUNT is 0 (the level goes; AMOUNT 1 names the bids, -1 the asks); or the drop reason."""
    if entry.__class__ is not list or len(entry) != 3:  # type: ignore[arg-type]
        return MISSING_FIELD
    price, count, amount = entry  # type: ignore[misc]
    if (price.__class__ is not int and price.__class__ is not float) or not 0 < price < MAX_PRICE:
        return BAD_PRICE
    if count.__class__ is not int or count < 0:
        return BAD_SIZE
    if (amount.__class__ is not int and amount.__class__ is not float) or not 0 < abs(amount) < MAX_SIZE:
        return BAD_SIZE
    size = float(abs(amount)) if count else 0.0
    return float(price), size, f"{js_number(price)}:{js_number(amount)}", amount > 0


# --- the declaration the registry reads (ingest_worker/venues/__init__.py) -----------
VENUE = Venue(
    name=NAME,
    live_ws_url=LIVE_WS_URL,
    live_rest_url=LIVE_REST_URL,
    markets_path=MARKETS_PATH,
    read_markets=markets_from_rest,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    parser=BitfinexParser,
    to_native=to_native,
    default_fee_pct=0.2,
    sim_port=9107,
    sim=SimProfile("USD", (0.5, 2.0), 2.0, 0.4, 0.3, 8, reference_markets=("USDT/USD",)),
    resubscribe_messages=resubscribe_messages,
    max_channels_per_connection=MAX_CHANNELS_PER_CONNECTION,
    channels_per_market=CHANNELS_PER_MARKET,
)
