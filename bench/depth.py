"""Benchmark the depth walk (engine_worker/depth.py) per evaluation, against a top-of-book figures() call.

    .venv/bin/python bench/depth.py        (or: make bench-depth)

Prints a markdown table and one line naming the machine; it asserts only that each book makes
the walk take the levels its row names. Books of 20 and of 1000 levels a side, one unit a
level, built so that the walk takes 1, 5 or 20 levels of each side (the marginal net falls below
the threshold on the next step) and the TARGET_NOTIONAL walk buys and sells through as many; a
walk's cost must follow the levels it takes, not the length of the books. The baseline is one
`figures()` call (engine_worker/spread.py) on the same top of book, the evaluation the engine
makes for every pair today. Calls are timed in batches (100 between two `perf_counter_ns`
reads), each batch's per-call mean is one sample; the walk and its baseline alternate rounds so
that machine noise hits both. The garbage collector stays on, as in the live processes.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")

# bench/core.py's table helpers: a script's own folder is first on sys.path
from core import machine_line, percentile, table  # noqa: E402

from engine_worker.book import Quote  # noqa: E402
from engine_worker.depth import walk  # noqa: E402
from engine_worker.spread import figures  # noqa: E402
from signals_app.contracts import spread  # noqa: E402
from signals_app.contracts.tick import quote  # noqa: E402

FEE = 0.001  # both sides' taker fee, a fraction
THRESHOLD_PCT = 0.5
STEP = 0.0005  # each level is 0.05 % worse than the one before it, on both sides
BATCH = 100  # calls per timed batch
ROUNDS = 20  # rounds per case, the walk and its baseline alternating which goes first
BATCHES_PER_ROUND = 100
NOW = 1_705_670_123_456


def books(book_levels: int, taken: int) -> tuple[list[list[float]], list[list[float]], float]:
    """(asks, bids, target notional) whose walk takes `taken` levels of each side."""
    # The marginal net of step k (ask level k against bid level k) crosses the threshold
    # halfway between steps taken − 1 and taken.
    middle = taken - 0.5
    top_bid = 100.0 * (1 + STEP * middle) / (1 - STEP * middle) * spread.bid_ask_ratio_for(THRESHOLD_PCT, FEE, FEE)
    asks = [[100.0 * (1 + STEP * k), 1.0] for k in range(book_levels)]
    bids = [[top_bid * (1 - STEP * k), 1.0] for k in range(book_levels)]
    # a target notional that buys `taken` − 1/2 units: the target walk takes `taken` levels too
    costs = [spread.cost_per_unit(price, 1.0, FEE) for price, _ in asks[:taken]]
    return asks, bids, sum(costs[:-1]) + costs[-1] / 2


def top_of_book(asks: list[list[float]], bids: list[list[float]]) -> tuple[Quote, Quote]:
    buy = Quote("binance", "BTC/USDT")
    buy.update(quote("binance", "BTC/USDT", asks[0][0] * 0.999, asks[0][0], 1.0, asks[0][1], NOW, NOW * 1_000_000))
    sell = Quote("coinbase", "BTC/USD")
    sell.update(quote("coinbase", "BTC/USD", bids[0][0], bids[0][0] * 1.001, bids[0][1], 1.0, NOW, NOW * 1_000_000))
    return buy, sell


def time_batches(call: Callable[[], object], out: list[float]) -> None:
    """Append BATCHES_PER_ROUND samples of `call`'s per-call mean (µs) to `out`."""
    clock = time.perf_counter_ns
    batch = range(BATCH)
    for _ in range(BATCHES_PER_ROUND):
        start = clock()
        for _ in batch:
            call()
        out.append((clock() - start) / BATCH / 1000)


def bench_case(book_levels: int, taken: int) -> tuple[object, ...]:
    asks, bids, target = books(book_levels, taken)
    depth = walk(asks, bids, FEE, FEE, 1.0, 1.0, THRESHOLD_PCT, target)
    if depth is None or depth.depth_levels != (taken, taken) or depth.net_spread_at_target_pct is None:
        raise SystemExit(f"books({book_levels}, {taken}) walk to {depth}, not {taken} levels a side")
    buy, sell = top_of_book(asks, bids)
    contenders: dict[str, Callable[[], object]] = {
        "walk": lambda: walk(asks, bids, FEE, FEE, 1.0, 1.0, THRESHOLD_PCT, target),
        "figures": lambda: figures(buy, sell, FEE, FEE, 1.0, 1.0),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for call in contenders.values():  # warm
        time_batches(call, [])
    gc.collect()
    for _ in range(ROUNDS):
        for name in order:
            time_batches(contenders[name], samples[name])
        order.reverse()
    walk_median = statistics.median(samples["walk"])
    figures_median = statistics.median(samples["figures"])
    return (
        book_levels,
        taken,
        walk_median,
        percentile(samples["walk"], 0.99),
        figures_median,
        percentile(samples["figures"], 0.99),
        f"{walk_median / figures_median:.1f}",
    )


def main() -> None:
    print("# Depth walk benchmark (µs per evaluation)\n")
    print(machine_line() + "\n")
    rows = [bench_case(book_levels, taken) for book_levels in (20, 1000) for taken in (1, 5, 20)]
    headers = ("levels a side", "levels taken", "walk median", "walk p99", "figures() median", "figures() p99")
    print(table((*headers, "walk / figures()"), rows))
    samples = ROUNDS * BATCHES_PER_ROUND
    print(
        f"\nEach walk also walks TARGET_NOTIONAL through as many levels. {samples} samples of {BATCH} calls"
        " per cell; the ratio is of the medians."
    )


if __name__ == "__main__":
    main()
