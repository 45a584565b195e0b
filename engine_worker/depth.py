"""The depth walk (DESIGN.md "Depth: what a trader can actually take"): executable figures, pure.

For "buy on A, sell on B" with both books known, `walk` takes A's asks upward and B's bids
downward together. Each step takes q = min(what is left of the current ask level, what is left
of the current bid level) at the marginal net % of that pair of prices: the contract's
`net_pct(cost_per_unit(ask, rate_A, fee_A), proceeds_per_unit(bid, rate_B, fee_B))`
(signals_app/contracts/spread.py), so the first step's marginal net % is the top-of-book
`net_spread_pct` to the last bit, and depth never changes when an opportunity opens or closes.
Steps are taken while the marginal net % > the threshold; the walk stops at the first step at
or below it, when either side has no level left, or when the cost so far
(Σ q·ask·rate_A·(1 + fee_A)) reaches `max_notional` (None: unset); the step that crosses
`max_notional` takes only the part that fits.

Units: levels are (price, size) best first (asks lowest first, bids highest first), each in its
market's own quote currency; any re-iterable of 2-sequences will do (a book tick's
`[[price, size], ...]`), sizes > 0 as a book keeps them. A rate converts its market's quote into
the common one (1.0 with fixed rates); fees are fractions (0.001 for 0.1 %); `threshold_pct`
is percent; `max_notional` and `target_notional` are in the common quote, fees included.

    depth_size              Σ q, base units
    depth_buy_vwap          Σ q·ask / Σ q, A's own quote
    depth_sell_vwap         Σ q·bid / Σ q, B's own quote
    depth_profit            Σ q·proceeds per unit − Σ q·cost per unit, common quote
    depth_net_spread_pct    net_pct(Σ q·cost per unit, Σ q·proceeds per unit), unrounded
    depth_levels            (how many of A's ask levels the steps took from, of B's bid levels)
    net_spread_at_target_pct  buy `target_notional` up A's asks, sell that quantity down B's bids:
                            net_pct(target_notional, proceeds), whatever the threshold; None
                            when either book is too thin for it

`depth_profit` is DESIGN's Σ q·(proceeds − cost) summed as two totals, and
`depth_net_spread_pct` is the contract's net of those totals (DESIGN's depth_profit / Σ cost ·
100): the same numbers but for the last bits, with the formula written once.

When no step is above the threshold (exactly when the top-of-book net is at or below it),
nothing is taken: `depth_size` 0.0, `depth_levels` (0, 0), `depth_profit` 0.0, and the other
figures are their limits for a vanishing walk: the vwaps are the best ask and the best bid and
`depth_net_spread_pct` is the first step's marginal net % (the top-of-book net). So only
`net_spread_at_target_pct` (too thin) is ever None in a Depth; "either market has no book" is a
Depth of None (`walk` gives None when a side holds no level), and `signal_fields(None)` is DESIGN's
all-null depth. Percent fields are rounded to 4 decimals only by `signal_fields`, as the
signal's other percents are.

The cost of a call grows with the levels the walks take, never with the length of the books:
loops that stop early, no copy or sort of the levels (`walk` runs for every evaluated pair).
`target_notional` and a set `max_notional` are > 0 (configuration's business, not checked here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, TypedDict

from signals_app.contracts.spread import cost_per_unit, net_pct, proceeds_per_unit

__all__ = ["Depth", "DepthFields", "Levels", "curve", "net_spread_at_target_pct", "signal_fields", "walk"]

# [(price, size), ...] best first: a list, or any iterable that can be iterated more than once
# (the engine's book gives a newer top followed by the levels behind it without copying them).
Levels = Iterable[Sequence[float]]


class Depth(NamedTuple):
    """What the walk of two books found; DESIGN's depth fields, unrounded."""

    depth_size: float  # base units
    depth_buy_vwap: float  # A's own quote; the best ask when nothing is taken
    depth_sell_vwap: float  # B's own quote; the best bid when nothing is taken
    depth_profit: float  # common quote
    depth_net_spread_pct: float  # the top-of-book net when nothing is taken
    depth_levels: tuple[int, int]  # (A's ask levels taken from, B's bid levels taken from)
    net_spread_at_target_pct: float | None  # None when a book is too thin for the target


class DepthFields(TypedDict):
    """A signal's depth fields as DESIGN's JSON carries them."""

    depth_size: float | None
    depth_buy_vwap: float | None
    depth_sell_vwap: float | None
    depth_profit: float | None
    depth_net_spread_pct: float | None
    depth_levels: list[int] | None
    net_spread_at_target_pct: float | None


def walk(
    asks: Levels,
    bids: Levels,
    buy_fee: float,
    sell_fee: float,
    buy_rate: float,
    sell_rate: float,
    threshold_pct: float,
    target_notional: float,
    max_notional: float | None = None,
    points: list[list[float]] | None = None,
) -> Depth | None:
    """Walk A's `asks` (the buy market's) and B's `bids` (the sell market's) together, as the
    module says; None when a side holds no level (no book). `points`, when given, gets
    `[size, cost, profit]` so far appended after each step (`curve`)."""
    ask_iter = iter(asks)
    bid_iter = iter(bids)
    first_ask = next(ask_iter, None)
    first_bid = next(bid_iter, None)
    if first_ask is None or first_bid is None:
        return None
    at_target = net_spread_at_target_pct(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, target_notional)
    ask, ask_left = first_ask
    bid, bid_left = first_bid
    cost_unit = cost_per_unit(ask, buy_rate, buy_fee)
    proceeds_unit = proceeds_per_unit(bid, sell_rate, sell_fee)
    first_net = net_pct(cost_unit, proceeds_unit)
    if not first_net > threshold_pct:
        return Depth(0.0, ask, bid, 0.0, first_net, (0, 0), at_target)
    budget = float("inf") if max_notional is None else max_notional
    i = j = 0  # the ask and bid levels the next step takes from
    asks_taken = bids_taken = 0
    size = bought = sold = cost = proceeds = 0.0  # Σ q, Σ q·ask, Σ q·bid, Σ q·cost_unit, Σ q·proceeds_unit
    while True:
        q = ask_left if ask_left < bid_left else bid_left
        step_cost = q * cost_unit
        reached = cost + step_cost >= budget
        if reached:  # this step reaches MAX_NOTIONAL: it takes what fits, and is the last
            fits = (budget - cost) / cost_unit
            if fits < q:
                q = fits
                step_cost = q * cost_unit
        size += q
        bought += q * ask
        sold += q * bid
        cost += step_cost
        proceeds += q * proceeds_unit
        if points is not None:
            points.append([size, cost, proceeds - cost])
        asks_taken = i + 1
        bids_taken = j + 1
        if reached:
            break
        ask_left -= q  # the smaller side is left with exactly 0.0
        bid_left -= q
        if ask_left <= 0.0:
            level = next(ask_iter, None)
            if level is None:
                break
            i += 1
            ask, ask_left = level
            cost_unit = cost_per_unit(ask, buy_rate, buy_fee)
        if bid_left <= 0.0:
            level = next(bid_iter, None)
            if level is None:
                break
            j += 1
            bid, bid_left = level
            proceeds_unit = proceeds_per_unit(bid, sell_rate, sell_fee)
        if not net_pct(cost_unit, proceeds_unit) > threshold_pct:
            break
    return Depth(
        size, bought / size, sold / size, proceeds - cost, net_pct(cost, proceeds), (asks_taken, bids_taken), at_target
    )


def net_spread_at_target_pct(
    asks: Levels,
    bids: Levels,
    buy_fee: float,
    sell_fee: float,
    buy_rate: float,
    sell_rate: float,
    target_notional: float,
) -> float | None:
    """Buy `target_notional` (common quote, fees included, > 0) up `asks`, sell that quantity
    down `bids`: the net % of the two, or None when either side is too thin for it."""
    quantity = 0.0
    cost = 0.0
    for price, size in asks:  # an iterator over the levels: stops early, copies nothing
        cost_unit = cost_per_unit(price, buy_rate, buy_fee)
        level_cost = size * cost_unit
        if cost + level_cost >= target_notional:
            quantity += (target_notional - cost) / cost_unit
            break
        cost += level_cost
        quantity += size
    else:
        return None
    proceeds = 0.0
    for price, size in bids:
        if size >= quantity:
            proceeds += quantity * proceeds_per_unit(price, sell_rate, sell_fee)
            return net_pct(target_notional, proceeds)
        proceeds += size * proceeds_per_unit(price, sell_rate, sell_fee)
        quantity -= size
    return None


def signal_fields(depth: Depth | None) -> DepthFields:
    """A signal's depth fields: percents rounded to 4 decimals (prices, sizes and money are not),
    and every field None for None (either market has no book)."""
    if depth is None:
        return {
            "depth_size": None,
            "depth_buy_vwap": None,
            "depth_sell_vwap": None,
            "depth_profit": None,
            "depth_net_spread_pct": None,
            "depth_levels": None,
            "net_spread_at_target_pct": None,
        }
    at_target = depth.net_spread_at_target_pct
    return {
        "depth_size": depth.depth_size,
        "depth_buy_vwap": depth.depth_buy_vwap,
        "depth_sell_vwap": depth.depth_sell_vwap,
        "depth_profit": depth.depth_profit,
        "depth_net_spread_pct": round(depth.depth_net_spread_pct, 4),
        "depth_levels": list(depth.depth_levels),
        "net_spread_at_target_pct": None if at_target is None else round(at_target, 4),
    }


def curve(
    asks: Levels,
    bids: Levels,
    buy_fee: float,
    sell_fee: float,
    buy_rate: float,
    sell_rate: float,
) -> list[list[float]]:
    """The walk without its threshold stop, for the trader's chart: `[size, cost, profit]`
    cumulative after each step (common quote, fees and rates included), from `[0, 0, 0]`, until
    either side runs out. The profit rises while the marginal net % is positive, peaks where it
    turns negative, and falls; the step where `walk` stops (at the threshold) is on it."""
    points = [[0.0, 0.0, 0.0]]
    walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, -_INF, _INF, points=points)
    return points


_INF = float("inf")
