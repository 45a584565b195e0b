"""The order book behind a simulated quote: what every dialect's depth channel serves.

A pure helper of the dialects. `book_levels(quote, n)` gives the `n` best levels a side, in the
market's own ticks and lots, best first: level 0 is the quote's top, exactly as its ticker says
(so books and tickers always agree), and the deeper levels sit on a grid `level_gap` ticks apart
(about 0.2 bp, at least one tick) with sizes around the market's typical top size that depend
only on the price: a new quote moves the top and the grid levels it crossed, and nothing else.

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

from ingest_worker.sim.model import typical_size

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
    """The `levels` best bids and asks behind `quote` (bids stop before a price of 0 ticks).

    Behind the top, levels sit on a fixed grid (multiples of `level_gap` ticks) with a size that
    depends only on the price, so a new quote changes the top and the few grid levels it moved
    across, as on a real book, and an incremental channel sends a few changes, not a whole book.
    """
    gap = level_gap(quote.bid)
    typical = grid_typical_lots(quote)
    thin_bids, thin_asks, thin_gap = quote.thin_bids, quote.thin_asks, quote.thin_gap
    bids: Levels = [(quote.bid, quote.bid_size)]
    grid = (quote.bid - 1) // gap * gap  # the grid level strictly below the top bid
    while len(bids) < levels:
        price = grid - (thin_gap if thin_bids and len(bids) >= thin_bids else 0)
        if price <= 0:
            break
        bids.append((price, grid_size(grid, typical)))
        grid -= gap
    asks: Levels = [(quote.ask, quote.ask_size)]
    grid = (quote.ask // gap + 1) * gap  # the grid level strictly above the top ask
    while len(asks) < levels:
        asks.append((grid + (thin_gap if thin_asks and len(asks) >= thin_asks else 0), grid_size(grid, typical)))
        grid += gap
    return bids[:levels], asks[:levels]


def grid_typical_lots(quote: Quote) -> int:
    """The usual size of a level behind the top, in lots: the market's typical top size."""
    market = quote.market
    return max(1, round(typical_size(market) * market.size_scale))


def grid_size(price: int, typical: int) -> int:
    """The size of the grid level at `price` ticks: the same whenever that level is shown."""
    factor = LEVEL_SIZE_FACTORS[(price * 2654435761 >> 7) % len(LEVEL_SIZE_FACTORS)]
    return max(1, round(typical * factor))


def level_changes(old: Mapping[int, int], new: Mapping[int, int]) -> list[tuple[int, int]]:
    """The (price, size) changes turning side `old` into `new`: removals (size 0) first, then new or resized."""
    changes = [(price, 0) for price in old if price not in new]
    changes += [(price, size) for price, size in new.items() if old.get(price) != size]
    return changes


class IncrementalSide:
    """One book side as an incremental channel's clients hold it, and the changes that bring them level.

    The book a dialect sends updates of is computed when an update is due (from the latest
    quote), not kept per quote; its clients hold either the book of the last update sent or a
    snapshot served since (a REST answer, a subscription's first frame). `changes(new)` names
    every level on which any of those differ from `new`, with `new`'s size (0: removed), so
    that every client applying them holds `new` exactly, whichever of them it started from.

    A snapshot that carries an update id (Binance's `lastUpdateId`) is held until an update
    beyond that id is built: a client drops every update whose final id is not past its
    snapshot's (`u <= lastUpdateId`), so an update built after the snapshot was served but
    ending on its very id (no change came between the two) does not bring that client level,
    and the next update must still name the snapshot's differences.
    """

    __slots__ = ("held",)

    def __init__(self, sent: Mapping[int, int]) -> None:
        # What clients hold: the last update's book (id None), then snapshots served since, with their update id.
        self.held: list[tuple[Mapping[int, int], int | None]] = [(sent, None)]

    def served(self, snapshot: Mapping[int, int], update_id: int | None = None) -> None:
        """A client was given `snapshot` (it holds that book now); `update_id`: the id the snapshot is at,
        if its clients drop the updates that end at or before it (None: it applies the next update)."""
        self.held.append((snapshot, update_id))

    def changes(self, new: Mapping[int, int], final_id: int | None = None) -> list[tuple[int, int]]:
        """The changes every holder needs to reach `new` (removals first), in an update ending on
        `final_id`; `new` is then what they hold, except the holders of a snapshot at `final_id` or
        later, who drop this update and still hold their snapshot."""
        removed: dict[int, int] = {}
        changed: dict[int, int] = {}
        for old, _ in self.held:
            for price, size in level_changes(old, new):
                (changed if size else removed)[price] = size
        still = [] if final_id is None else [(old, at) for old, at in self.held if at is not None and at >= final_id]
        self.held = [(new, None), *still]
        return [*removed.items(), *changed.items()]


def next_book(
    quote: Quote, levels: int, bids: Mapping[int, int], asks: Mapping[int, int]
) -> tuple[dict[int, int], dict[int, int], list[tuple[int, int]], list[tuple[int, int]]]:
    """The book behind `quote` (`levels` a side) as price -> size dicts, best first, and the bid and
    ask changes that turn the book `bids`/`asks` into it."""
    new_bids, new_asks = (dict(side) for side in book_levels(quote, levels))
    return new_bids, new_asks, level_changes(bids, new_bids), level_changes(asks, new_asks)
