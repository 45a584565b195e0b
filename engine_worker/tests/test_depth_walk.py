"""The depth walk takes what DESIGN.md's "Depth" section says, and never more than the books hold.

Hand-computed books first: each expected figure is worked out in the comments and written as
a literal or a `Fraction` (cost per unit = ask·rate_A·(1 + fee_A), proceeds per unit =
bid·rate_B·(1 − fee_B), net = (proceeds − cost) / cost · 100), never with the walk's code.
Then seeded random books against the rules that must hold for every book, and against a
reference walk that cuts the books at their cumulative sizes instead of following two cursors.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from fractions import Fraction

import pytest

from engine_worker.book import Quote
from engine_worker.depth import Depth, signal_fields, walk
from engine_worker.spread import figures
from signals_app.contracts import spread, tick

NOW = 1_705_670_123_456  # a fixed engine clock, Unix ms
MS = 1_000_000
BIG = 1e12  # a target notional no test book can fill


def no_fees_walk(asks, bids, threshold_pct=0.5, target_notional=BIG, max_notional=None):
    return walk(asks, bids, 0.0, 0.0, 1.0, 1.0, threshold_pct, target_notional, max_notional)


# --- hand-computed books --------------------------------------------------------------
def test_a_partly_taken_bid_level_and_the_bids_running_out() -> None:
    # step 1: 100 against 103 (3 %), q = min(1, 1.5) = 1, the ask level is empty
    # step 2: 101 against 103 (1.98 %), q = min(2, 0.5) = 0.5, the bid level is empty
    # step 3: 101 against 102 (0.99 %), q = min(1.5, 1) = 1: no bid level left
    depth = no_fees_walk([[100.0, 1.0], [101.0, 2.0]], [[103.0, 1.5], [102.0, 1.0]])
    assert depth is not None
    assert depth.depth_size == 2.5
    assert depth.depth_levels == (2, 2)
    assert depth.depth_buy_vwap == pytest.approx((100.0 + 0.5 * 101.0 + 101.0) / 2.5)  # 100.6
    assert depth.depth_sell_vwap == pytest.approx((1.5 * 103.0 + 102.0) / 2.5)  # 102.6
    assert depth.depth_profit == pytest.approx(3.0 + 0.5 * 2.0 + 1.0)  # 5.0
    assert depth.depth_net_spread_pct == pytest.approx(5.0 / 251.5 * 100.0)  # 1.98807…


def test_the_asks_running_out_with_a_bid_level_partly_taken() -> None:
    depth = no_fees_walk([(100.0, 1.0)], [(102.0, 3.0), (101.0, 1.0)])
    assert depth == Depth(1.0, 100.0, 102.0, 2.0, 2.0, (1, 1), None)  # (102 − 100) / 100: exact in floats


def test_the_walk_stops_at_the_first_step_at_or_below_the_threshold() -> None:
    # step 1: 100 against 101, 1 % > 0.5, q = 1; step 2: 100.6 against 101, 0.3976 % ≤ 0.5
    depth = no_fees_walk([(100.0, 1.0), (100.6, 1.0)], [(101.0, 5.0)])
    assert depth is not None
    assert (depth.depth_size, depth.depth_levels) == (1.0, (1, 1))
    # a step exactly at the threshold stops the walk too: 100 against 100.5 is 0.5 %
    at = no_fees_walk([(100.0, 1.0)], [(100.5, 1.0)], threshold_pct=spread.net_pct(100.0, 100.5))
    assert at is not None
    assert (at.depth_size, at.depth_levels) == (0.0, (0, 0))
    # and so does a later one: 100.5 against 101 at a threshold of exactly its net (0.4975 %)
    later = no_fees_walk([(100.0, 1.0), (100.5, 1.0)], [(101.0, 5.0)], threshold_pct=spread.net_pct(100.5, 101.0))
    assert later is not None
    assert (later.depth_size, later.depth_levels) == (1.0, (1, 1))


def test_max_notional_cuts_the_step_that_crosses_it() -> None:
    # step 1 costs 100; step 2 would cost 2 · 101 = 202 in all: 50.5 is left, q = 50.5 / 101 = 0.5
    depth = no_fees_walk([(100.0, 1.0), (101.0, 2.0)], [(103.0, 5.0)], max_notional=150.5)
    assert depth is not None
    assert depth.depth_size == pytest.approx(1.5)
    assert depth.depth_levels == (2, 1)
    assert depth.depth_buy_vwap == pytest.approx(150.5 / 1.5)
    assert depth.depth_profit == pytest.approx(1.5 * 103.0 - 150.5)  # 4.0
    # a step that ends exactly at MAX_NOTIONAL is taken whole, and is the last
    exact = no_fees_walk([(100.0, 1.0), (101.0, 2.0)], [(103.0, 5.0)], max_notional=100.0)
    assert exact is not None
    assert (exact.depth_size, exact.depth_levels) == (1.0, (1, 1))


def test_rates_and_fees_on_both_sides() -> None:
    # Buy BTC/USDT (1 USDT = 0.998, taker 0.1 %), sell BTC/USDC (1 USDC = 1.002, taker 0.2 %).
    f = Fraction
    rate_a, fee_a, rate_b, fee_b = f("0.998"), f("0.001"), f("1.002"), f("0.002")
    cost = [f(ask) * rate_a * (1 + fee_a) for ask in ("100", "100.5")]  # 99.8998, 100.399299
    proceeds = [f(bid) * rate_b * (1 - fee_b) for bid in ("102", "101.5", "100")]  # 101.999592, 101.499594, 99.9996
    asks = [[100.0, 1.0], [100.5, 2.0]]
    bids = [[102.0, 0.5], [101.5, 1.0], [100.0, 5.0]]
    # step 1: cost[0] / proceeds[0], 2.10 %, q 0.5 (bid level 0 empty)
    # step 2: cost[0] / proceeds[1], 1.60 %, q 0.5 (ask level 0 empty)
    # step 3: cost[1] / proceeds[1], 1.10 %, q 0.5 (bid level 1 empty)
    # step 4: cost[1] / proceeds[2] is negative: stop
    total_cost = f(1, 2) * (2 * cost[0] + cost[1])  # 150.0994495
    total_proceeds = f(1, 2) * (proceeds[0] + 2 * proceeds[1])  # 152.49939
    # the target, 200, buys all of ask level 0 (99.8998) and 100.1002 / 100.399299 of level 1
    quantity = 1 + (200 - cost[0]) / cost[1]  # 1.99702…
    sold = f(1, 2) * proceeds[0] + proceeds[1] + (quantity - f(3, 2)) * proceeds[2]
    depth = walk(asks, bids, 0.001, 0.002, 0.998, 1.002, 0.5, 200.0)
    assert depth is not None
    assert depth.depth_size == 1.5
    assert depth.depth_levels == (2, 2)
    assert depth.depth_buy_vwap == pytest.approx(150.25 / 1.5, rel=1e-12)  # own quote: no rate, no fee
    assert depth.depth_sell_vwap == pytest.approx(152.5 / 1.5, rel=1e-12)
    assert depth.depth_profit == pytest.approx(float(total_proceeds - total_cost), rel=1e-9)  # 2.3999405
    assert depth.depth_net_spread_pct == pytest.approx(
        float((total_proceeds - total_cost) / total_cost * 100), rel=1e-9
    )  # 1.59890…
    assert depth.net_spread_at_target_pct == pytest.approx(float((sold - 200) / 200 * 100), rel=1e-9)


def test_a_first_step_at_or_below_the_threshold_takes_nothing() -> None:
    # 100 against 100.3 is 0.3 %: nothing is taken; the target figure is there all the same
    depth = walk([(100.0, 1.0), (100.1, 5.0)], [(100.3, 2.0)], 0.0, 0.0, 1.0, 1.0, 0.5, 150.0)
    top = spread.net_pct(100.0, 100.3)
    # 150 buys 1 at 100 and 50 / 100.1 at 100.1; 1.4995… sold at 100.3
    quantity = 1.0 + 50.0 / 100.1
    assert depth is not None
    assert depth._replace(net_spread_at_target_pct=None) == Depth(0.0, 100.0, 100.3, 0.0, top, (0, 0), None)
    assert depth.net_spread_at_target_pct == pytest.approx((quantity * 100.3 - 150) / 150 * 100)
    fields = signal_fields(depth)
    assert fields["depth_size"] == 0.0
    assert fields["depth_net_spread_pct"] == 0.3
    assert fields["depth_levels"] == [0, 0]


@pytest.mark.parametrize(
    ("asks", "bids"),
    [
        ([(100.0, 1.0), (101.0, 0.98)], [(103.0, 10.0)]),  # 100 + 98.98 < 200 can be bought
        ([(100.0, 5.0)], [(103.0, 1.0), (102.0, 0.99)]),  # 2 bought, 1.99 can be sold
    ],
)
def test_a_book_too_thin_for_the_target_gives_none(asks, bids) -> None:
    depth = no_fees_walk(asks, bids, target_notional=200.0)
    assert depth is not None
    assert depth.depth_size > 0
    assert depth.net_spread_at_target_pct is None


def test_a_target_filled_exactly_by_the_books() -> None:
    # 201 buys 1 at 100 and 1 at 101; the 2 are sold at 103 and 102: (205 − 201) / 201
    depth = no_fees_walk([(100.0, 1.0), (101.0, 1.0)], [(103.0, 1.0), (102.0, 1.0)], target_notional=201.0)
    assert depth is not None
    assert depth.net_spread_at_target_pct == pytest.approx(4.0 / 201.0 * 100.0)


def test_no_book_on_either_side_gives_every_depth_field_null() -> None:
    assert no_fees_walk([], [(103.0, 1.0)]) is None
    assert no_fees_walk([(100.0, 1.0)], []) is None
    fields = signal_fields(None)
    assert set(fields) == {
        "depth_size",
        "depth_buy_vwap",
        "depth_sell_vwap",
        "depth_profit",
        "depth_net_spread_pct",
        "depth_levels",
        "net_spread_at_target_pct",
    }
    assert all(value is None for value in fields.values())


def test_signal_fields_round_only_the_percents() -> None:
    depth = Depth(1.0 / 3.0, 100.123456789, 101.987654321, 0.123456789, 1.234567891, (2, 3), -0.987654321)
    assert signal_fields(depth) == {
        "depth_size": 1.0 / 3.0,
        "depth_buy_vwap": 100.123456789,
        "depth_sell_vwap": 101.987654321,
        "depth_profit": 0.123456789,
        "depth_net_spread_pct": 1.2346,
        "depth_levels": [2, 3],
        "net_spread_at_target_pct": -0.9877,
    }


# --- random books -------------------------------------------------------------------
def levels(rng: random.Random, best: float, direction: float) -> list[list[float]]:
    """A book side, best first: prices move by `direction` (+1 asks, −1 bids); sizes are
    sometimes eighths, so that the two sides often empty levels on the same step."""
    count = rng.randint(1, 25)
    eighths = rng.random() < 0.3
    out = []
    price = best
    for _ in range(count):
        size = rng.randint(1, 16) / 8.0 if eighths else rng.uniform(0.001, 3.0)
        out.append([price, size])
        price *= 1.0 + direction * rng.uniform(0.00001, 0.004)
    return out


def cases(seed: int, count: int = 2000):
    """(asks, bids, buy fee, sell fee, buy rate, sell rate, threshold %, target, max notional)."""
    rng = random.Random(seed)
    for _ in range(count):
        ask = rng.choice((45_000.0, 2_500.0, 0.6)) * rng.uniform(0.95, 1.05)
        buy_rate = rng.choice((1.0, 0.9987, 1.0004))
        sell_rate = rng.choice((1.0, 0.9991, 1.0012))
        bid = ask * buy_rate / sell_rate * rng.uniform(0.99, 1.03)
        notional = ask * buy_rate  # about one unit's cost
        yield (
            levels(rng, ask, 1.0),
            levels(rng, bid, -1.0),
            rng.choice((0.0, 0.001, 0.0026, 0.006)),
            rng.choice((0.0, 0.001, 0.004)),
            buy_rate,
            sell_rate,
            rng.choice((0.0, 0.5, rng.uniform(-0.5, 2.0))),
            notional * rng.uniform(0.05, 20.0),
            rng.choice((None, notional * rng.uniform(0.01, 10.0))),
        )


def top_net(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate) -> float:
    """The engine's top-of-book net_spread_pct of the two books' best levels."""
    buy = Quote("binance", "BTC/USDT")
    buy.update(tick.quote("binance", "BTC/USDT", asks[0][0] * 0.999, asks[0][0], 1.0, asks[0][1], NOW, NOW * MS))
    sell = Quote("coinbase", "BTC/USD")
    sell.update(tick.quote("coinbase", "BTC/USD", bids[0][0], bids[0][0] * 1.001, bids[0][1], 1.0, NOW, NOW * MS))
    return figures(buy, sell, buy_fee, sell_fee, buy_rate, sell_rate).net_spread_pct


def cost_of(depth: Depth, buy_fee: float, buy_rate: float) -> float:
    """Σ q·ask·rate_A·(1 + fee_A) of the walk."""
    return depth.depth_size * depth.depth_buy_vwap * buy_rate * (1.0 + buy_fee)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_depth_never_exceeds_what_the_books_hold(seed: int) -> None:
    for asks, bids, *rest in cases(seed):
        depth = walk(asks, bids, *rest)
        assert depth is not None
        asks_taken, bids_taken = depth.depth_levels
        assert 0 <= asks_taken <= len(asks)
        assert 0 <= bids_taken <= len(bids)
        assert depth.depth_size <= sum(size for _, size in asks[:asks_taken]) * (1 + 1e-12)
        assert depth.depth_size <= sum(size for _, size in bids[:bids_taken]) * (1 + 1e-12)
        if depth.depth_size > 0:
            # the last level taken from on each side gave something
            assert depth.depth_size > sum(size for _, size in asks[: asks_taken - 1])
            assert depth.depth_size > sum(size for _, size in bids[: bids_taken - 1])
            # each vwap lies between its side's best price and the last price taken (float sums)
            assert asks[0][0] * (1 - 1e-12) <= depth.depth_buy_vwap <= asks[asks_taken - 1][0] * (1 + 1e-12)
            assert bids[0][0] * (1 + 1e-12) >= depth.depth_sell_vwap >= bids[bids_taken - 1][0] * (1 - 1e-12)
        else:
            assert depth.depth_levels == (0, 0)


@pytest.mark.parametrize("seed", [4, 5])
def test_depth_is_taken_exactly_when_the_top_of_book_net_is_above_the_threshold(seed: int) -> None:
    for asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, *rest in cases(seed):
        top = top_net(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate)
        depth = walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, *rest)
        assert depth is not None
        assert (depth.depth_size > 0) == (top > threshold)
        assert (depth.depth_levels[0] > 0) == (depth.depth_levels[1] > 0) == (top > threshold)


@pytest.mark.parametrize("seed", [6, 7])
def test_the_first_steps_marginal_net_is_the_top_of_book_net_to_the_last_bit(seed: int) -> None:
    for asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, _, *rest in cases(seed, 500):
        top = top_net(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate)
        # at a threshold of exactly the top net the first step is not above it: nothing taken,
        # and the zero-size walk reports that first marginal net
        at = walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, top, *rest)
        assert at is not None
        assert at.depth_size == 0.0
        assert at.depth_net_spread_pct == top
        # one bit below it, the first step is taken
        below = walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, math.nextafter(top, -math.inf), *rest)
        assert below is not None
        assert below.depth_size > 0.0


@pytest.mark.parametrize("seed", [8, 9])
def test_deeper_is_never_better_than_the_top_of_book_and_stays_above_the_threshold(seed: int) -> None:
    for asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, *rest in cases(seed):
        depth = walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, *rest)
        assert depth is not None
        if depth.depth_size > 0:
            top = top_net(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate)
            assert depth.depth_net_spread_pct <= top + 1e-9
            assert depth.depth_net_spread_pct > threshold - 1e-9  # every step taken was above it
            assert depth.depth_profit > 0 or threshold < 0


@pytest.mark.parametrize("seed", [10, 11])
def test_the_cost_never_exceeds_max_notional_and_reaches_it_when_it_binds(seed: int) -> None:
    for asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, target, max_notional in cases(seed):
        if max_notional is None:
            continue
        depth = walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, target, max_notional)
        free = walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, target)
        assert depth is not None
        assert free is not None
        cost = cost_of(depth, buy_fee, buy_rate)
        assert cost <= max_notional * (1 + 1e-12)
        if cost_of(free, buy_fee, buy_rate) <= max_notional:
            assert depth == free  # the limit did not bind: the same walk
        else:
            assert cost == pytest.approx(max_notional, rel=1e-12)
            assert depth.depth_size < free.depth_size


def reference_walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, max_notional):
    """(size, Σ q·ask, Σ q·bid, levels) by cutting the books at every cumulative size."""
    ask_ends = list(itertools.accumulate(size for _, size in asks))
    bid_ends = list(itertools.accumulate(size for _, size in bids))
    cuts = sorted({end for end in ask_ends + bid_ends if end <= min(ask_ends[-1], bid_ends[-1])})
    taken = bought = sold = cost = 0.0
    levels_taken = (0, 0)
    for cut in cuts:
        a = bisect.bisect_right(ask_ends, (taken + cut) / 2)  # the levels holding this slice
        b = bisect.bisect_right(bid_ends, (taken + cut) / 2)
        cost_unit = spread.cost_per_unit(asks[a][0], buy_rate, buy_fee)
        if not spread.net_pct(cost_unit, spread.proceeds_per_unit(bids[b][0], sell_rate, sell_fee)) > threshold:
            break
        q = cut - taken
        last = max_notional is not None and cost + q * cost_unit >= max_notional
        if last:
            q = min(q, (max_notional - cost) / cost_unit)
        taken += q
        bought += q * asks[a][0]
        sold += q * bids[b][0]
        cost += q * cost_unit
        levels_taken = (a + 1, b + 1)
        if last:
            break
    return taken, bought, sold, levels_taken


@pytest.mark.parametrize("seed", [12, 13])
def test_the_walk_takes_what_a_reference_walk_over_cumulative_sizes_takes(seed: int) -> None:
    for asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, target, max_notional in cases(seed):
        depth = walk(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, target, max_notional)
        size, bought, sold, levels_taken = reference_walk(
            asks, bids, buy_fee, sell_fee, buy_rate, sell_rate, threshold, max_notional
        )
        assert depth is not None
        assert depth.depth_levels == levels_taken
        assert depth.depth_size == pytest.approx(size, rel=1e-9)
        if size:
            assert depth.depth_buy_vwap == pytest.approx(bought / size, rel=1e-9)
            assert depth.depth_sell_vwap == pytest.approx(sold / size, rel=1e-9)
