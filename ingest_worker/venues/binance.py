"""Binance spot: `<symbol>@bookTicker` quotes and `<symbol>@trade` trades.

Frames arrive raw (`/ws/<stream>`: the payload itself) or wrapped by the
combined endpoint (`/stream?streams=a/b`: `{"stream": ..., "data": payload}`);
both are accepted. Spot `bookTicker` carries no event time, so its tick's
timestamp is the receive time. Wire field names are Binance's own:

    bookTicker  u: update id, s: symbol, b/B: best bid price/qty, a/A: best ask price/qty
                (futures add e: "bookTicker", E: event time, T: transaction time)
    trade       e: "trade", E: event time, s: symbol, t: trade id, p: price, q: quantity,
                T: trade time, m: buyer is maker
    aggTrade    as trade, with a: aggregate trade id (accepted as a trade)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import orjson

from ingest_worker.venues.base import (
    BAD_SIZE,
    BAD_TIMESTAMP,
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
from signals_app.contracts.tick import QUOTE, Tick

# --- declaration ----------------------------------------------------------------
NAME = "binance"
LIVE_WS_URL = "wss://stream.binance.com:9443"
LIVE_REST_URL = "https://api.binance.com"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
CHANNELS = {"quote": "bookTicker", "trade": "trade"}
# Payload types that are real Binance data we do not use (counted as ignored).
IGNORED_EVENTS = frozenset(
    {"depthUpdate", "kline", "24hrTicker", "24hrMiniTicker", "avgPrice", "outboundAccountPosition"}
)


def to_native(symbol: str) -> str:
    """`BTC/USDT` -> `BTCUSDT`."""
    return symbol.replace("/", "")


def stream_names(natives: Iterable[str]) -> list[str]:
    return [f"{native.lower()}@{channel}" for native in natives for channel in CHANNELS.values()]


def subscribe_message(natives: Iterable[str], request_id: int = 1) -> dict[str, Any]:
    return {"method": "SUBSCRIBE", "params": stream_names(natives), "id": request_id}


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


class BinanceParser(VenueParser):
    name = NAME

    def __init__(
        self,
        symbols: SymbolTable | None = None,
        *,
        max_age_ms: int | None = MAX_TICK_AGE_MS,
        depth_levels: int = DEPTH_LEVELS,
    ) -> None:
        super().__init__(symbols, max_age_ms=max_age_ms, depth_levels=depth_levels)
        self._symbol_of = self.symbols.resolve
        self._resolved = self.symbols.resolved_get()

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_concatenated)

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
                    return [
                        _new_tuple(
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
                    ]
        return super().parse(frame, recv_ns)

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        data = msg.get("data")
        if data is not None:  # combined stream wrapper
            if data.__class__ is not dict:
                return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
            msg = data
        event = msg.get("e")
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
            return self.make_quote(symbol, raw_bid, raw_ask, raw_bid_size, raw_ask_size, timestamp, recv_ns)
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
        if "lastUpdateId" in msg:  # a REST depth snapshot in a recording
            return self.ignore("depthSnapshot")
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
    sim=SimProfile("USDT", (0.1, 0.8), 1.5, 1.0, 0.1, reference_markets=("USDC/USDT",), reference_price_decimals=4),
)
