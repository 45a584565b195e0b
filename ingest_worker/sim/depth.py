"""The order book behind a simulated quote: what every dialect's depth channel serves.

A pure helper of the dialects. `book_levels(quote, n)` gives the `n` best levels a side, in the
market's own ticks and lots, best first: level 0 is the quote's top, exactly as its ticker says
(so books and tickers always agree), and each deeper level lies `level_gap` ticks further out
(about 0.2 bp, at least one tick) with a size that varies around the top's, as real books do.

A dislocation is deep on some routes and thin on others (the model decides, by route, see
`ingest_worker.sim.model.route_depth`): on the cheap venue only the first `quote.thin_asks`
ask levels are at the dislocated price, and the levels behind them lie `quote.thin_gap` ticks
higher, back where the market would be without the dislocation; on the rich venue the same for
its bids. 0 means the whole book is at the quoted price (not dislocated, or deep).

`level_changes(old, new)` turns one book side into the next as the incremental venues send it:
removals (size 0) first, then new or resized levels; `next_book` does both for both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest_worker.sim.model import Quote

Levels = list[tuple[int, int]]  # (price in ticks, size in lots), best first

# How the size of each level behind the top relates to the top's own (cycled, deterministic).
LEVEL_SIZE_FACTORS = (0.4, 1.3, 0.7, 2.2, 0.2, 1.0, 3.5, 0.5, 0.9, 1.8)
LEVEL_GAP = 2e-5  # the price step between two levels, as a share of the price


def level_gap(price: int) -> int:
    """The distance in ticks between two adjacent levels near `price` ticks: about 0.2 bp, at least a tick."""
    return max(1, round(price * LEVEL_GAP))


def level_size(top_size: int, depth: int) -> int:
    """The size in lots of the level `depth` steps behind a top of `top_size` lots (depth 0: the top itself)."""
    if depth == 0:
        return top_size
    return max(1, round(top_size * LEVEL_SIZE_FACTORS[(depth - 1) % len(LEVEL_SIZE_FACTORS)]))


def book_levels(quote: Quote, levels: int) -> tuple[Levels, Levels]:
    """The `levels` best bids and asks behind `quote` (bids stop before a price of 0 ticks)."""
    gap = level_gap(quote.bid)
    thin_bids, thin_asks, thin_gap = quote.thin_bids, quote.thin_asks, quote.thin_gap
    bids: Levels = []
    for i in range(levels):
        price = quote.bid - i * gap - (thin_gap if thin_bids and i >= thin_bids else 0)
        if price <= 0:
            break
        bids.append((price, level_size(quote.bid_size, i)))
    asks = [
        (quote.ask + i * gap + (thin_gap if thin_asks and i >= thin_asks else 0), level_size(quote.ask_size, i))
        for i in range(levels)
    ]
    return bids, asks


def level_changes(old: Mapping[int, int], new: Mapping[int, int]) -> list[tuple[int, int]]:
    """The (price, size) changes turning side `old` into `new`: removals (size 0) first, then new or resized."""
    changes = [(price, 0) for price in old if price not in new]
    changes += [(price, size) for price, size in new.items() if old.get(price) != size]
    return changes


def next_book(
    quote: Quote, levels: int, bids: Mapping[int, int], asks: Mapping[int, int]
) -> tuple[dict[int, int], dict[int, int], list[tuple[int, int]], list[tuple[int, int]]]:
    """The book behind `quote` (`levels` a side) as price -> size dicts, best first, and the bid and
    ask changes that turn the book `bids`/`asks` into it."""
    new_bids, new_asks = (dict(side) for side in book_levels(quote, levels))
    return new_bids, new_asks, level_changes(bids, new_bids), level_changes(asks, new_asks)
