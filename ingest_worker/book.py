"""One market's L2 order book: the price levels of both sides, as a venue's depth channel gives them.

Every venue parser that keeps a book (kraken, bitstamp, gemini) keeps it in an
`L2Book`; the venue's own rules (what a snapshot looks like, sequence numbers,
checksums, when a book is dropped) stay in its module. The book is pure: no
I/O, no clock, no validation (the parser has checked every price and size).

Each side is a dict price -> size beside the list of its prices in price
order, kept with `bisect`, the best price last (ask prices are stored negated,
so that both lists ascend towards their best). A new size at a known price is
one dict write; a level that comes or goes is a bisection and a list insert or
delete, and since most of them are near the best level, at the list's end, the
insert or delete moves few items even in a book thousands of levels deep. The
best level and the top N levels are read off the list's end, with no sorting:
what a quote and the depth walk read on every frame.

A book may keep a text per level (`texts=True`): whatever string the venue's
checksum is computed over, in the venue's own format (Kraken's CRC32 reads each
level's price and size as the wire spelled them). The formula stays with the
venue; the book gives it the texts of the top levels in order.

A book may be capped at `depth` levels a side, as a venue that sends a fixed
depth (Kraken `book-10`) keeps it: a level that would rank beyond the cap is
not kept, and one pushed beyond it by a better level is forgotten (such venues
send no delete for it).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# The best bid, its size, the best ask, its size; None where a side is empty.
Top = tuple[float | None, float | None, float | None, float | None]
Levels = Sequence[tuple[float, float]]  # (price, size), ...
Texts = Sequence[str] | None  # one text per level, for a book that keeps texts

_NO_CAP = 1 << 62  # a depth no book reaches: the cap check then never trims


class L2Book:
    """The price levels of one market. Prices and sizes are floats; a size of 0 removes a level.

    Each side is a dict key -> size and the list of its keys in ascending order, where a key
    is the bid price or the negated ask price: both lists end with the best level.
    `emitted` is for the parser that keeps the book: the top it last sent as a quote.
    """

    __slots__ = (
        "_ask_keys",
        "_ask_sizes",
        "_ask_texts",
        "_bid_keys",
        "_bid_sizes",
        "_bid_texts",
        "_cap",
        "depth",
        "emitted",
    )

    def __init__(self, depth: int | None = None, *, texts: bool = False) -> None:
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self.depth = depth  # levels kept per side; None: all of them
        self._cap = _NO_CAP if depth is None else depth
        self._bid_sizes: dict[float, float] = {}  # price -> size
        self._ask_sizes: dict[float, float] = {}  # -price -> size
        self._bid_keys: list[float] = []  # bid prices, ascending: best bid last
        self._ask_keys: list[float] = []  # negated ask prices, ascending: best ask last
        self._bid_texts: dict[float, str] | None = {} if texts else None  # price -> text
        self._ask_texts: dict[float, str] | None = {} if texts else None  # -price -> text
        self.emitted: object = None

    # --- changes -------------------------------------------------------------
    def replace(self, bids: Levels, asks: Levels, bid_texts: Texts = None, ask_texts: Texts = None) -> None:
        """Apply a snapshot: both sides become these (price, size) levels, given in any order.

        Where a price comes twice the later level wins, and a size of 0 leaves the price
        out (without a cap, the book these levels would make applied one by one to an empty
        book); a capped book keeps the best `depth` of what remains. On a book with texts,
        `bid_texts[i]` is the text of `bids[i]`, and likewise for asks.
        """
        self._bid_keys = _fill(self._bid_sizes, self._bid_texts, bids, bid_texts, self._cap)
        self._ask_keys = _fill(
            self._ask_sizes, self._ask_texts, [(-price, size) for price, size in asks], ask_texts, self._cap
        )

    def update(self, bids: Levels, asks: Levels, bid_texts: Texts = None, ask_texts: Texts = None) -> None:
        """Apply changes: each (price, size) level in turn sets that price's size on its side;
        a size of 0 removes the level. On a book with texts, `bid_texts[i]` is the new text of
        `bids[i]`, and likewise for asks.

        On a capped book a new level that would rank beyond the cap is not kept, and one that
        pushes the worst level beyond it makes the book forget that level.
        """
        cap = self._cap
        # One loop for both sides, without a call per side or per level: a function call costs
        # as much as the rest of a change.
        for negate, changes, sizes, keys, texts, change_texts in (
            (False, bids, self._bid_sizes, self._bid_keys, self._bid_texts, bid_texts),
            (True, asks, self._ask_sizes, self._ask_keys, self._ask_texts, ask_texts),
        ):
            if not changes:
                continue
            if texts is not None and (change_texts is None or len(change_texts) != len(changes)):
                raise ValueError("a book with texts needs one text per level")
            index = -1
            for price, size in changes:
                index += 1
                key = -price if negate else price
                if not size:
                    if sizes.pop(key, None) is not None:
                        del keys[bisect_left(keys, key)]
                        if texts is not None:
                            del texts[key]
                    continue
                if key not in sizes:  # a new level (the common change is a level's new size)
                    position = bisect_left(keys, key)
                    if len(keys) - position >= cap:
                        continue  # as many better levels as the cap: not kept
                    keys.insert(position, key)
                    if len(keys) > cap:  # the worst level is pushed beyond the cap: forgotten
                        worst = keys.pop(0)
                        del sizes[worst]
                        if texts is not None:
                            del texts[worst]
                sizes[key] = size
                if texts is not None:
                    texts[key] = change_texts[index]  # type: ignore[index]

    # --- reads ---------------------------------------------------------------
    def best_bid(self) -> float | None:
        keys = self._bid_keys
        return keys[-1] if keys else None

    def best_ask(self) -> float | None:
        keys = self._ask_keys
        return -keys[-1] if keys else None

    def top(self) -> Top:
        """(best bid, its size, best ask, its size); None for both of an empty side."""
        keys = self._bid_keys
        if keys:
            bid: float | None = keys[-1]
            bid_size: float | None = self._bid_sizes[keys[-1]]
        else:
            bid = bid_size = None
        keys = self._ask_keys
        if keys:
            key = keys[-1]
            ask: float | None = -key
            ask_size: float | None = self._ask_sizes[key]
        else:
            ask = ask_size = None
        return bid, bid_size, ask, ask_size

    def crossed(self) -> bool:
        """Whether the best bid is at or above the best ask (resting orders never are)."""
        bid_keys, ask_keys = self._bid_keys, self._ask_keys
        return bool(bid_keys and ask_keys) and bid_keys[-1] >= -ask_keys[-1]

    def bid_levels(self, n: int | None = None) -> list[tuple[float, float]]:
        """The top `n` bid levels (all of them with None) as (price, size), best (highest) first."""
        sizes, keys = self._bid_sizes, self._bid_keys
        return [(key, sizes[key]) for key in (keys[::-1] if n is None else keys[: -n - 1 : -1])]

    def ask_levels(self, n: int | None = None) -> list[tuple[float, float]]:
        """The top `n` ask levels (all of them with None) as (price, size), best (lowest) first."""
        sizes, keys = self._ask_sizes, self._ask_keys
        return [(-key, sizes[key]) for key in (keys[::-1] if n is None else keys[: -n - 1 : -1])]

    def bid_texts(self, n: int | None = None) -> list[str]:
        """The texts of the top `n` bid levels, best first: a checksum's input."""
        texts = self._bid_texts
        if texts is None:
            raise ValueError("this book keeps no texts")
        keys = self._bid_keys
        return [texts[key] for key in (keys[::-1] if n is None else keys[: -n - 1 : -1])]

    def ask_texts(self, n: int | None = None) -> list[str]:
        """The texts of the top `n` ask levels, best first: a checksum's input."""
        texts = self._ask_texts
        if texts is None:
            raise ValueError("this book keeps no texts")
        keys = self._ask_keys
        return [texts[key] for key in (keys[::-1] if n is None else keys[: -n - 1 : -1])]


def _fill(
    sizes: dict[float, float],
    texts: dict[float, str] | None,
    levels: Levels,
    level_texts: Texts,
    cap: int,
) -> list[float]:
    """Refill one side's dicts in place with (key, size) `levels`; the side's new key list."""
    sizes.clear()
    sizes.update(levels)
    if texts is not None:
        if level_texts is None or len(level_texts) != len(levels):
            raise ValueError("a book with texts needs one text per level")
        texts.clear()
        texts.update(zip([key for key, _ in levels], level_texts, strict=True))
    if 0.0 in sizes.values():
        for key in [key for key, size in sizes.items() if not size]:
            del sizes[key]
            if texts is not None:
                del texts[key]
    keys = sorted(sizes)  # best last
    if len(keys) > cap:
        for key in keys[:-cap]:
            del sizes[key]
            if texts is not None:
                del texts[key]
        del keys[:-cap]
    return keys


__all__ = ["L2Book", "Levels", "Texts", "Top"]
