"""The arbitrage signal: its JSON form and how it is built (DESIGN.md "Arbitrage opportunity and signal").

A signal is a plain dict whose keys are in the contract's order, so that its JSON
(orjson keeps insertion order) is byte-identical wherever it is produced: `FIELDS`, then
`quote_rates` with QUOTE_RATES=live, then, on a close only, `close_reason` (DESIGN.md lifecycle
rule 8).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import orjson

SIGNAL_TYPE = "ARBITRAGE_OPPORTUNITY"
OPEN: Literal["open"] = "open"
UPDATE: Literal["update"] = "update"
CLOSE: Literal["close"] = "close"
STATUSES = (OPEN, UPDATE, CLOSE)

# Why a close was sent (its `close_reason`; DESIGN.md lifecycle rule 8). Open and update signals carry none.
THRESHOLD: Literal["threshold"] = "threshold"  # evaluated at or below the threshold
# Its quotes are no longer usable: one it used went stale (by the timer or on the next tick), its
# book was lost and took the quote with it, its market turned suspect, or (live rates) its quote
# currency lost its rate. In every case nothing fresh is left to trade on.
STALE: Literal["stale"] = "stale"
FEED_DOWN: Literal["feed_down"] = "feed_down"  # the feed of one of its exchanges went down
# A restarted engine found it open and it did not come back fresh within STALE_MS of the start.
ENGINE_RESTART: Literal["engine_restart"] = "engine_restart"
CLOSE_REASONS: tuple[str, ...] = (THRESHOLD, STALE, FEED_DOWN, ENGINE_RESTART)
CLOSE_REASON = "close_reason"  # the key, last in a close

PCT_DECIMALS = 4  # percent fields are rounded for display, as in the seed; money and sizes are not

FIELDS: tuple[str, ...] = (
    "type",
    "id",
    "status",
    "action",
    "symbol",
    "asset",
    "buy_exchange",
    "sell_exchange",
    "buy_symbol",
    "sell_symbol",
    "buy_price",
    "sell_price",
    "spread_pct",
    "net_spread_pct",
    "size",
    "profit_per_unit",
    "profit_estimate",
    # DESIGN.md "Depth: what a trader can actually take": all None when either market has no book.
    "depth_size",
    "depth_buy_vwap",
    "depth_sell_vwap",
    "depth_profit",
    "depth_net_spread_pct",
    "depth_levels",
    "net_spread_at_target_pct",
    "fees_pct",
    "opened_at",
    "duration_ms",
    "peak_net_spread_pct",
    "tick_recv_ns",
    "timestamp",
)

# The keys of a close (with fixed rates; a close with live rates has `quote_rates` before its reason).
CLOSE_FIELDS: tuple[str, ...] = (*FIELDS, CLOSE_REASON)

# The depth fields, in FIELDS' order; a signal published before them (stored history) lacks them.
DEPTH_FIELDS: tuple[str, ...] = FIELDS[FIELDS.index("depth_size") : FIELDS.index("net_spread_at_target_pct") + 1]

Signal = dict[str, Any]


def signal_id(asset: str, buy_exchange: str, sell_exchange: str, opened_at: int) -> str:
    """Deterministic id of one opportunity: `BTC:binance:coinbase:1705670123456`."""
    return f"{asset}:{buy_exchange}:{sell_exchange}:{opened_at}"


def action(buy_exchange: str, sell_exchange: str) -> str:
    return f"BUY_{buy_exchange.upper()}_SELL_{sell_exchange.upper()}"


def pct(value: float) -> float:
    return round(value, PCT_DECIMALS)


def encode(signal: Signal) -> bytes:
    return orjson.dumps(signal)


def decode(data: bytes | str) -> Signal:
    obj = orjson.loads(data)
    if not isinstance(obj, dict) or obj.get("type") != SIGNAL_TYPE:
        raise ValueError("not an arbitrage signal")
    return obj


_TEXT = ("id", "action", "symbol", "asset", "buy_exchange", "sell_exchange", "buy_symbol", "sell_symbol")
_INTEGERS = ("opened_at", "duration_ms", "tick_recv_ns", "timestamp")
_PRICES = ("buy_price", "sell_price")  # finite and > 0
_NUMBERS = ("spread_pct", "net_spread_pct", "profit_per_unit", "peak_net_spread_pct")  # finite
_NULLABLE_NUMBERS = ("size", "profit_estimate", *(name for name in DEPTH_FIELDS if name != "depth_levels"))


def open_problem(obj: object) -> str | None:
    """What makes `obj` not a whole open or update signal (what a restarted engine may resume), or None.

    Every field of the contract with its type, a status of open or update, finite prices above 0,
    an `id` and `action` that follow from its key and `opened_at`, and `timestamp` − `opened_at`
    = `duration_ms` ≥ 0.
    """
    if not isinstance(obj, dict):
        return "not an object"
    if obj.get("type") != SIGNAL_TYPE:
        return "not an arbitrage signal"
    if obj.get("status") not in (OPEN, UPDATE):
        return f"status {obj.get('status')!r}: not open or update"
    missing = [name for name in FIELDS if name not in obj]
    if missing:
        return f"missing {', '.join(missing)}"
    for name in _TEXT:
        if not isinstance(obj[name], str) or not obj[name]:
            return f"{name} is not a string"
    for name in _INTEGERS:
        if not _is_int(obj[name]):
            return f"{name} is not an integer"
    for name in _PRICES:
        if not _is_number(obj[name]) or obj[name] <= 0:
            return f"{name} is not a price"
    for name in _NUMBERS:
        if not _is_number(obj[name]):
            return f"{name} is not a number"
    for name in _NULLABLE_NUMBERS:
        if obj[name] is not None and not _is_number(obj[name]):
            return f"{name} is not a number or null"
    depth = [obj[name] is None for name in DEPTH_FIELDS if name != "net_spread_at_target_pct"]
    if any(depth) and not all(depth):
        return "some depth fields null and others not"
    levels = obj["depth_levels"]
    if levels is not None and not (isinstance(levels, list) and len(levels) == 2 and all(map(_is_int, levels))):
        return "depth_levels is not two integers or null"
    fees = obj["fees_pct"]
    if not isinstance(fees, dict) or not all(_is_number(fee) for fee in fees.values()):
        return "fees_pct is not an object of numbers"
    rates = obj.get("quote_rates")
    if rates is not None and (not isinstance(rates, dict) or not all(_is_number(rate) for rate in rates.values())):
        return "quote_rates is not an object of numbers"
    if obj["id"] != signal_id(obj["asset"], obj["buy_exchange"], obj["sell_exchange"], obj["opened_at"]):
        return "id does not follow from its key and opened_at"
    if obj["action"] != action(obj["buy_exchange"], obj["sell_exchange"]):
        return "action does not follow from its exchanges"
    if obj["duration_ms"] < 0 or obj["timestamp"] - obj["opened_at"] != obj["duration_ms"]:
        return "duration_ms is not timestamp - opened_at"
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
