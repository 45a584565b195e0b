"""Reading a venue's `[[price, size], ...]` levels, as Bitstamp and Binance send their books.

A pure helper of the venue parsers: each level's price and size checked as DESIGN.md's
validation has it (finite, > 0, below the feed-bug bounds of base.py), the first failure
named by its drop reason, so that the parser drops and counts the frame.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from itertools import pairwise

from ingest_worker.venues.base import BAD_PRICE, BAD_SIZE, CROSSED_BOOK, MAX_PRICE, MAX_SIZE, MISSING_FIELD, _number


def interleaved_checksum(bids: Sequence[str], asks: Sequence[str]) -> int:
    """OKX's and Bitfinex's book checksum: the CRC32, as a signed 32-bit integer, of the top bid and
    ask level texts ("price:size", best first) interleaved bid, ask, bid, ... and joined by ":"."""
    parts: list[str] = []
    for index in range(max(len(bids), len(asks))):
        if index < len(bids):
            parts.append(bids[index])
        if index < len(asks):
            parts.append(asks[index])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def read_levels(raw: object, *, removals: bool) -> list[tuple[float, float]] | str:
    """[[price, size], ...] as (price, size) floats, or the drop reason (missing_field, bad_price,
    bad_size). A size of 0 is allowed only with `removals` (a change that removes the level)."""
    if raw.__class__ is not list:
        return MISSING_FIELD
    levels = []
    for level in raw:  # type: ignore[attr-defined]
        if level.__class__ is not list or len(level) < 2:
            return MISSING_FIELD
        try:
            price = _number(level[0])
        except (TypeError, ValueError):
            return BAD_PRICE
        if not 0.0 < price < MAX_PRICE:  # NaN fails every comparison
            return BAD_PRICE
        try:
            size = _number(level[1])
        except (TypeError, ValueError):
            return BAD_SIZE
        big_enough = size >= 0.0 if removals else size > 0.0  # NaN is neither
        if not (big_enough and size < MAX_SIZE):
            return BAD_SIZE
        levels.append((price, size))
    return levels


def misordered(bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> str | None:
    """Why a snapshot's sides, best first, cannot be a book: bad_price when bids do not strictly
    descend or asks strictly ascend (out of order, or a price twice), crossed_book when the best
    bid is at or above the best ask; None when they can."""
    if any(better[0] <= worse[0] for better, worse in pairwise(bids)) or any(
        better[0] >= worse[0] for better, worse in pairwise(asks)
    ):
        return BAD_PRICE
    if bids and asks and bids[0][0] >= asks[0][0]:
        return CROSSED_BOOK
    return None
