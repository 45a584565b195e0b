"""The arbitrage signal: its JSON form and how it is built (DESIGN.md "Arbitrage opportunity and signal").

A signal is a plain dict whose keys are in the contract's order, so that its JSON
(orjson keeps insertion order) is byte-identical wherever it is produced.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

SIGNAL_TYPE = "ARBITRAGE_OPPORTUNITY"
OPEN: Literal["open"] = "open"
UPDATE: Literal["update"] = "update"
CLOSE: Literal["close"] = "close"
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
