"""The figures of one opportunity (DESIGN.md "Arbitrage opportunity and signal"). Pure functions.

For a buy on market A and a sell on market B of the same asset, in one quote group:
    cost, proceeds and net_spread_pct: signals_app/contracts/spread.py (the one definition)
    spread_pct        = (bid_B·rate_B − ask_A·rate_A) / (ask_A·rate_A) · 100   (gross)
    size              = min(ask_size_A, bid_size_B), None when either is unknown
    profit_per_unit   = proceeds − cost;  profit_estimate = profit_per_unit · size
"""

from __future__ import annotations

from typing import NamedTuple

from engine_worker.book import Quote
from engine_worker.depth import Depth
from signals_app.contracts.spread import cost_per_unit, net_pct, net_spread_pct, proceeds_per_unit

__all__ = ["Figures", "figures", "net_spread_pct"]


class Figures(NamedTuple):
    """One evaluation of buying on `buy` and selling on `sell`."""

    buy: Quote
    sell: Quote
    buy_price: float  # the buy market's ask, in its own quote currency
    sell_price: float  # the sell market's bid, in its own quote currency
    spread_pct: float  # gross, unrounded
    net_spread_pct: float  # net of both taker fees, unrounded
    size: float | None
    profit_per_unit: float  # in the common quote currency
    profit_estimate: float | None
    buy_rate: float = 1.0  # what one unit of the buy market's quote currency was worth (live rates)
    sell_rate: float = 1.0
    depth: Depth | None = None  # the executable figures of the two books (None: either has none)

    def same_as(self, other: Figures) -> bool:
        """Whether a message with these figures would say the same as one with `other`."""
        return (
            self.buy.symbol == other.buy.symbol
            and self.sell.symbol == other.sell.symbol
            and self.buy_price == other.buy_price
            and self.sell_price == other.sell_price
            and self.size == other.size
            and round(self.net_spread_pct, 4) == round(other.net_spread_pct, 4)
            and _same_depth(self.depth, other.depth)
        )


def _same_depth(mine: Depth | None, theirs: Depth | None) -> bool:
    """Whether two walks would print the same depth fields (percents as rounded in the signal)."""
    if mine is None or theirs is None:
        return mine is theirs
    mine_target, theirs_target = mine.net_spread_at_target_pct, theirs.net_spread_at_target_pct
    return (
        mine.depth_size == theirs.depth_size
        and mine.depth_profit == theirs.depth_profit
        and mine.depth_levels == theirs.depth_levels
        and mine.depth_buy_vwap == theirs.depth_buy_vwap
        and mine.depth_sell_vwap == theirs.depth_sell_vwap
        and round(mine.depth_net_spread_pct, 4) == round(theirs.depth_net_spread_pct, 4)
        and (
            mine_target is theirs_target
            or (
                mine_target is not None
                and theirs_target is not None
                and round(mine_target, 4) == round(theirs_target, 4)
            )
        )
    )


def figures(
    buy: Quote, sell: Quote, buy_fee: float, sell_fee: float, buy_rate: float = 1.0, sell_rate: float = 1.0
) -> Figures:
    """All the figures of one opportunity; fees are fractions (0.001 for 0.1 %)."""
    ask = buy.ask * buy_rate
    bid = sell.bid * sell_rate
    cost = cost_per_unit(buy.ask, buy_rate, buy_fee)
    proceeds = proceeds_per_unit(sell.bid, sell_rate, sell_fee)
    profit_per_unit = proceeds - cost
    ask_size = buy.ask_size
    bid_size = sell.bid_size
    size = None if ask_size is None or bid_size is None else min(ask_size, bid_size)
    return Figures(
        buy,
        sell,
        buy.ask,
        sell.bid,
        (bid - ask) / ask * 100.0,
        net_pct(cost, proceeds),
        size,
        profit_per_unit,
        None if size is None else profit_per_unit * size,
        buy_rate,
        sell_rate,
    )
