"""The net spread (DESIGN.md "Arbitrage opportunity and signal"): its one definition, pure.

For a buy on market A and a sell on market B of the same asset, prices converted into one
currency by the rates (1.0 for the same quote currency):

    cost per unit     = ask_A · rate_A · (1 + fee_A)
    proceeds per unit = bid_B · rate_B · (1 − fee_B)
    net_spread_pct    = (proceeds − cost) / cost · 100

Fees are fractions (0.001 for 0.1 %); a caller holding percent converts once, at its edge.
The engine prices each exchange's best markets with `cost_per_unit` and `proceeds_per_unit`
once, then keeps every pair clearly below the threshold out by `ratio_at` (proceeds against
cost times one number, where a call of `net_pct` per pair cost a tenth of a tick); the
simulator sets its dislocations with `bid_ask_ratio_for`, the same formula solved for bid / ask.
The operation order is part of the contract: thresholds compare unrounded values, so every
caller must get the same last bits.
"""

from __future__ import annotations


def cost_per_unit(ask: float, rate: float, fee: float) -> float:
    """What buying one unit at `ask` costs, taker fee paid, in the common currency."""
    return ask * rate * (1.0 + fee)


def proceeds_per_unit(bid: float, rate: float, fee: float) -> float:
    """What selling one unit at `bid` fetches, taker fee paid, in the common currency."""
    return bid * rate * (1.0 - fee)


def net_pct(cost: float, proceeds: float) -> float:
    """The net spread in percent of a unit bought for `cost` and sold for `proceeds`."""
    return (proceeds - cost) / cost * 100.0


def net_spread_pct(ask: float, bid: float, buy_fee: float, sell_fee: float) -> float:
    """Net spread of buying at `ask` and selling at `bid` (same currency), fees as fractions."""
    return net_pct(cost_per_unit(ask, 1.0, buy_fee), proceeds_per_unit(bid, 1.0, sell_fee))


def ratio_at(net_pct: float) -> float:
    """The proceeds / cost of a unit at a net spread of `net_pct`: `net_pct(cost, proceeds) > x`
    is `proceeds > cost · ratio_at(x)` (the engine's prefilter compares so, with a margin)."""
    return 1.0 + net_pct / 100.0


def bid_ask_ratio_for(target_net_pct: float, buy_fee: float, sell_fee: float) -> float:
    """The bid / ask (same currency) at which `net_spread_pct` is `target_net_pct`."""
    return (1.0 + target_net_pct / 100.0) * (1.0 + buy_fee) / (1.0 - sell_fee)
