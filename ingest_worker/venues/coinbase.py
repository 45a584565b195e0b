"""Coinbase Exchange (`ws-feed`): the `ticker` channel, plus its control frames.

A `ticker` frame reports the trade that moved it (price, last_size, trade_id)
and the best bid and ask after it; it becomes a quote tick and, when it
carries a trade, a trade tick. Frames before 2022 have no `best_bid_size` /
`best_ask_size`: the quote's sizes are then None. Wire fields used:

    type: "ticker", product_id: "BTC-USD", sequence: per-product sequence number,
    best_bid, best_bid_size, best_ask, best_ask_size, price: last trade price,
    last_size: last trade size, trade_id, side, time: ISO 8601 UTC ("...T16:43:30.244075Z")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import orjson

from ingest_worker.symbols import SymbolTable
from ingest_worker.venues.base import (
    BAD_TIMESTAMP,
    MALFORMED_JSON,
    MISSING_FIELD,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    VenueParser,
)
from signals_app.contracts.tick import Tick

# --- declaration ----------------------------------------------------------------
NAME = "coinbase"
LIVE_WS_URL = "wss://ws-feed.exchange.coinbase.com"
LIVE_REST_URL = "https://api.exchange.coinbase.com"
PRODUCTS_PATH = "/products"
CHANNELS = {"quote": "ticker", "trade": "ticker", "heartbeat": "heartbeat"}
CONTROL_TYPES = frozenset({"subscriptions", "heartbeat"})
# Real Coinbase message types of channels we do not use (counted as ignored).
IGNORED_TYPES = frozenset(
    {"snapshot", "l2update", "match", "last_match", "received", "open", "done", "change", "activate", "status"}
)


def to_native(symbol: str) -> str:
    """`BTC/USD` -> `BTC-USD`."""
    return symbol.replace("/", "-")


def split_product(native: str) -> tuple[str, str] | None:
    base, sep, quote = native.partition("-")
    if not sep or not base.isalnum() or not quote.isalnum():
        return None
    return base, quote


def subscribe_message(natives: Iterable[str]) -> dict[str, Any]:
    return {"type": "subscribe", "product_ids": list(natives), "channels": ["ticker", "heartbeat"]}


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


class CoinbaseParser(VenueParser):
    name = NAME

    def __init__(self, symbols: SymbolTable | None = None, *, max_age_ms: int | None = 60_000) -> None:
        super().__init__(symbols, max_age_ms=max_age_ms)
        self._day_ms: dict[str, int] = {}  # "2021-04-17" -> Unix ms of its midnight

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        return SymbolTable(fallback=split_product)

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        try:
            msg = _loads(frame)
        except _JSONDecodeError:
            return self.drop(MALFORMED_JSON, recv_ns, frame)
        if msg.__class__ is not dict:
            return self.drop(UNKNOWN_MESSAGE, recv_ns, frame)
        kind = msg.get("type")
        if kind == "ticker":
            return self._ticker(msg, recv_ns)
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
        native = msg.get("product_id")
        if native is None:
            return self.drop(MISSING_FIELD, recv_ns, "ticker without product_id")
        symbol = self.symbols.resolve(native) if native.__class__ is str else None
        if symbol is None:
            return self.drop(UNKNOWN_SYMBOL, recv_ns, native)
        raw_time = msg.get("time")
        if raw_time is None:  # the snapshot ticker sent on subscribe may carry no time
            timestamp = recv_ns // 1_000_000
        else:
            parsed = self._time_ms(raw_time)
            if parsed is None:
                return self.drop(BAD_TIMESTAMP, recv_ns, f"{native} time={raw_time!r}")
            timestamp = parsed
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

    def _time_ms(self, raw: object) -> int | None:
        """Unix ms of `2021-04-17T16:43:30.244075Z`, or None when it is not such a time."""
        if raw.__class__ is not str:
            return None
        text: str = raw  # type: ignore[assignment]
        if len(text) < 20 or text[10] != "T" or text[13] != ":" or text[16] != ":" or text[-1] != "Z":
            return None
        # int() alone would also take "-1", "+1", " 1" and non-ASCII digits as hours or minutes.
        if not text.isascii() or not (text[11:13] + text[14:16] + text[17:19]).isdigit():
            return None
        day = self._day_ms.get(text[:10])
        if day is None:
            try:
                midnight = dt.datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=dt.UTC)
            except ValueError:
                return None
            day = (midnight - _EPOCH) // dt.timedelta(milliseconds=1)
            if len(self._day_ms) < 10_000:
                self._day_ms[text[:10]] = day
        clock = text[11:19]
        fraction = text[19:-1]
        try:
            hours, minutes, seconds = int(clock[0:2]), int(clock[3:5]), int(clock[6:8])
            millis = int((fraction[1:] + "000")[:3]) if fraction else 0
        except ValueError:
            return None
        if (
            hours > 23
            or minutes > 59
            or seconds > 60
            or (fraction and (fraction[0] != "." or not fraction[1:].isdigit()))
        ):
            return None
        return day + ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis
