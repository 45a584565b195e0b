"""Bitfinex WebSocket v2: `ticker` quotes and `trades` trades, with the connection's sequence numbers.

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
    book        [chanId, [[PRICE, COUNT, AMOUNT], ...], seq] / [chanId, [PRICE, COUNT, AMOUNT], seq]

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
* `book` is recorded but not used (the ticker gives the top): counted as ignored, as
  are funding channels (`fUSD`) and channels of other kinds.
* Frames for a channel id that has no `subscribed` event yet are tolerated: Bitfinex
  sends heartbeats before the event (SOURCES.md); such heartbeats are control
  `hb_unknown_channel`, such data is ignored as `unknown_channel`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from ingest_worker.venues.base import (
    BAD_SIZE,
    BAD_TIMESTAMP,
    DEPTH_LEVELS,
    DROP_REASONS,
    MALFORMED_JSON,
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
SEQ_ALL = 65536  # conf flag: every list frame ends with the connection's sequence number
CONF_MESSAGE: dict[str, Any] = {"event": "conf", "flags": SEQ_ALL}
# "You can subscribe to 25 channels at the same time on the same connection" (docs.bitfinex.com,
# Public Channels; the General page says 30, and the server has been seen to take a few more).
# Past the cap a subscription gets error 10305 "subscribe: limit", so the feed spreads the
# markets over several connections (ingest_worker/feed.py), each market taking its channels.
MAX_CHANNELS_PER_CONNECTION = 25
CHANNELS_PER_MARKET = len(set(CHANNELS.values()))  # ticker + trades
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


def subscribe_messages(natives: Iterable[str]) -> list[dict[str, Any]]:
    """SEQ_ALL first, then one `ticker` and one `trades` subscription per market."""
    return [dict(CONF_MESSAGE)] + [
        {"event": "subscribe", "channel": channel, "symbol": native}
        for native in natives
        for channel in CHANNELS.values()
    ]


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
USED_CHANNELS = frozenset(CHANNELS.values())
KNOWN_CHANNELS = frozenset({"ticker", "trades", "book", "candles", "status"})  # Bitfinex's public channels


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
        self._last_seq: int | None = None
        self.sequence_gaps = 0  # frames whose sequence number is not the previous one + 1
        self.snapshot_trades_skipped: dict[str, int] = {}  # bad entries of tick-giving trade snapshots

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_pair)

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
                self._channels.clear()
                self._last_seq = None
            return self.control("info")
        if event in ("conf", "pong"):
            return self.control(event)
        if event == "unsubscribed":
            chan_id = msg.get("chanId")
            if chan_id.__class__ is int:
                self._channels.pop(chan_id, None)
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
    max_channels_per_connection=MAX_CHANNELS_PER_CONNECTION,
    channels_per_market=CHANNELS_PER_MARKET,
)
