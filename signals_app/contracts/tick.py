"""The normalized tick: what the ingestor sends the engine, and its two encodings.

Fields and meaning are the contract in DESIGN.md ("Normalized tick"). A tick is
an immutable `NamedTuple`: attribute access is as fast as a tuple's and
building one costs a fraction of a dataclass, which matters at 20k ticks/s.

A **book tick** (DESIGN.md "Depth") is a quote that carries the market's levels too:
`type` "book", `bids` and `asks` as `[[price, size], ...]` best first (at most
`DEPTH_LEVELS` each), and `bid`/`ask`/sizes the first level of each. A **book-lost tick**
is a book tick with both level lists empty and no top (`bid`, `ask` and sizes null, price
0): the venue's book of that market was dropped (a gap, a failed checksum, a crossed or
one-sided book) and nothing of it may be walked or quoted until its next book tick. The two fields
exist on every tick and are None on quotes and trades. Level lists are shared, not copied:
nobody mutates them.

Two encodings, one set of rules (`_refusal`): `encode`/`decode`, one JSON object with the
contract's field names (the `price:*` cache, `normalize`'s output; a quote's object has no
level fields, as before books existed), and the ZeroMQ hop's, `encode_ticks` /
`encode_feed_state` / `decode_message`: every tick of one frame in one msgpack message of
positional fields (see "the ZeroMQ hop" below).
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Sequence
from itertools import islice
from operator import itemgetter
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import orjson

QUOTE = "quote"
TRADE = "trade"
BOOK = "book"
MAX_LEVELS = 1000  # a book tick with more levels a side than this is refused (DEPTH_LEVELS is far below)

# [[price, size], ...], best first. The Annotated bounds are msgspec's, checked in C as it decodes
# a ZeroMQ message (see "the ZeroMQ hop" below): two floats a level, each > 0 and finite, at most
# MAX_LEVELS a side. To mypy and everyone else this is list[list[float]].
_Positive = Annotated[float, msgspec.Meta(gt=0.0, le=sys.float_info.max)]
Level = Annotated[list[_Positive], msgspec.Meta(min_length=2, max_length=2)]
Levels = Annotated[list[Level], msgspec.Meta(max_length=MAX_LEVELS)]


class Tick(NamedTuple):
    exchange: str  # lower-case venue name: "binance", "coinbase", ...
    symbol: str  # canonical BASE/QUOTE with the market's real quote: "BTC/USDT"
    type: str  # QUOTE (best bid/ask) or TRADE
    price: float  # trade price; for a quote the mid price
    volume: float  # trade size; 0.0 for a quote
    bid: float | None  # best bid (quotes only)
    ask: float | None  # best ask (quotes only)
    bid_size: float | None  # None where the feed gives no size
    ask_size: float | None
    timestamp: int  # exchange event time, Unix ms; the receive time where the frame has none
    recv_ns: int  # local receive time of the frame, time.time_ns()
    bids: Levels | None = None  # book ticks only: bid levels, best (highest) first
    asks: Levels | None = None  # book ticks only: ask levels, best (lowest) first


BOOK_FIELDS: tuple[str, ...] = Tick._fields  # the wire form of a book tick
FIELDS: tuple[str, ...] = BOOK_FIELDS[:-2]  # the wire form of a quote or a trade: no levels
_new_tick = tuple.__new__


def quote(
    exchange: str,
    symbol: str,
    bid: float,
    ask: float,
    bid_size: float | None,
    ask_size: float | None,
    timestamp: int,
    recv_ns: int,
) -> Tick:
    """A quote tick; its price is the mid. Callers have validated the numbers."""
    return _new_tick(
        Tick,
        (exchange, symbol, QUOTE, (bid + ask) * 0.5, 0.0, bid, ask, bid_size, ask_size, timestamp, recv_ns, None, None),
    )


def book(exchange: str, symbol: str, bids: Levels, asks: Levels, timestamp: int, recv_ns: int) -> Tick:
    """A book tick: the levels, best first, and the top as a quote's fields. Callers have validated
    the levels (both sides non-empty, prices strictly ordered, sizes > 0, best bid < best ask)."""
    bid, bid_size = bids[0]
    ask, ask_size = asks[0]
    return _new_tick(
        Tick,
        (exchange, symbol, BOOK, (bid + ask) * 0.5, 0.0, bid, ask, bid_size, ask_size, timestamp, recv_ns, bids, asks),
    )


def book_lost(exchange: str, symbol: str, timestamp: int, recv_ns: int) -> Tick:
    """A book-lost tick: the market's book is gone until its next book tick."""
    return _new_tick(Tick, (exchange, symbol, BOOK, 0.0, 0.0, None, None, None, None, timestamp, recv_ns, [], []))


def is_book_lost(tick: Tick) -> bool:
    """Whether `tick` says its market's book was dropped (a book tick without levels)."""
    return tick.bids is not None and not tick.bids


def top_of(tick: Tick) -> Tick:
    """A book tick's top of book as a quote tick (what the `price:*` cache holds); a quote as it is."""
    if tick.type != BOOK:
        return tick
    return _new_tick(Tick, (*tick[:2], QUOTE, *tick[3:11], None, None))


def trade(exchange: str, symbol: str, price: float, volume: float, timestamp: int, recv_ns: int) -> Tick:
    """A trade tick. Callers have validated the numbers."""
    return _new_tick(
        Tick, (exchange, symbol, TRADE, price, volume, None, None, None, None, timestamp, recv_ns, None, None)
    )


def to_dict(tick: Tick) -> dict[str, Any]:
    """The contract's fields; `bids` and `asks` only on a book tick."""
    return dict(zip(BOOK_FIELDS if tick.bids is not None else FIELDS, tick, strict=False))


def encode(tick: Tick) -> bytes:
    """One tick as a JSON object with the contract's field names (levels only on a book tick): the
    form of the `price:*` cache and of `normalize`'s output. The ZeroMQ hop uses `encode_ticks`."""
    return orjson.dumps(dict(zip(BOOK_FIELDS if tick.bids is not None else FIELDS, tick, strict=False)))


class TickDecodeError(ValueError):
    """Bytes that are not a tick (or not a message of ticks); the receiver counts and drops them."""


def decode(data: bytes | str) -> Tick:
    """Parse `encode`'s JSON object back into a Tick, refusing anything that is not a valid one."""
    try:
        obj = orjson.loads(data)
        tick = _new_tick(
            Tick,
            (
                obj["exchange"],
                obj["symbol"],
                obj["type"],
                obj["price"],
                obj["volume"],
                obj["bid"],
                obj["ask"],
                obj["bid_size"],
                obj["ask_size"],
                obj["timestamp"],
                obj["recv_ns"],
                obj.get("bids"),
                obj.get("asks"),
            ),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise TickDecodeError(f"not a tick: {exc}") from None
    # JSON gives any types: the levels' shape is checked here, the rest by _refusal.
    reason = _json_levels_refusal(tick.bids) or _json_levels_refusal(tick.asks) or _refusal(tick)
    if reason is not None:
        raise TickDecodeError(f"not a tick: {reason}")
    return tick


# --- feed state messages ---------------------------------------------------------
# The same ZeroMQ socket carries the ingestor's word on each feed, so that the engine
# stops counting the quotes of a feed that went down (DESIGN.md: a quote from a feed
# that is down never takes part).
FEED_DOWN = "down"
FEED_UP = "up"


class FeedState(NamedTuple):
    exchange: str
    state: str  # FEED_DOWN or FEED_UP
    timestamp: int  # Unix ms when the ingestor saw the change


# --- the ZeroMQ hop (ingestor -> engine) -------------------------------------------
# One ZeroMQ message is either the ticks of one frame or one feed state, in msgpack (msgspec):
#
#   ticks       an array of ticks, each the array of Tick's 13 fields in order (positional: no
#               field names; a quote's or trade's levels are nil), so that msgspec encodes a
#               list of Ticks and decodes straight back into Ticks, types checked, in C;
#   feed state  a map {"feed": exchange, "state": "down"|"up", "timestamp": ms}.
#
# msgpack rather than JSON: floats go as their 8 bytes (no formatting, no parsing, exact), and
# the two shapes (array, map) tell a message's kind without a tag.
#
# What is refused, and how much of the message goes with it:
#   the whole message   it is not one of the two shapes with the right types (not msgpack, a
#                       field of the wrong type, 10 or 14 fields, a level that is no pair of
#                       floats > 0 and finite, more than MAX_LEVELS a side; msgspec checks all
#                       that in C as it decodes): TickDecodeError, and the receiver counts one
#                       bad message, since how many ticks it held cannot be known;
#   one tick            a tick of a well-formed message that breaks a rule between its values
#                       or of its kind (a crossed or NaN quote, levels out of order, a top that
#                       is not the first level, levels on a quote, a bad name): refused alone
#                       (`WireMessage.refused` says why), the others of its message are taken.
# Either way nothing of a refused tick reaches the engine: no crash, no false signal.


class _FeedStateWire(msgspec.Struct, forbid_unknown_fields=True):
    feed: str
    state: Literal["down", "up"]
    timestamp: int


_encode = msgspec.msgpack.Encoder().encode
_decode_wire = msgspec.msgpack.Decoder(list[Tick] | _FeedStateWire).decode


class TickEncodeError(ValueError):
    """Ticks that msgpack cannot carry (an integer beyond 64 bits); the sender counts and drops them."""


def encode_ticks(ticks: Sequence[Tick]) -> bytes:
    """One ZeroMQ message holding `ticks` (those of one frame), in order."""
    try:
        return _encode(ticks)
    except (msgspec.EncodeError, OverflowError, TypeError) as exc:
        raise TickEncodeError(f"not encodable: {exc}") from None


def encode_feed_state(exchange: str, state: str, timestamp: int) -> bytes:
    """One ZeroMQ message holding a feed state."""
    return _encode(_FeedStateWire(exchange, state, timestamp))  # type: ignore[arg-type]


class WireMessage(NamedTuple):
    """What one ZeroMQ message holds: its valid ticks in order (or its one feed state), and why
    each of its ticks that broke a rule was refused (empty when none was)."""

    items: Sequence[Tick | FeedState]
    refused: Sequence[str]


_NONE_REFUSED: tuple[str, ...] = ()


def decode_message(data: bytes) -> WireMessage:
    """A ZeroMQ message from the ingestor; TickDecodeError when it is not one (see above)."""
    try:
        decoded = _decode_wire(data)
    # msgspec.ValidationError is a DecodeError; a string that is no UTF-8 raises UnicodeDecodeError
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise TickDecodeError(f"not a message: {exc}") from None
    if decoded.__class__ is list:
        ticks: list[Tick] = decoded  # type: ignore[assignment]
        refused: list[str] | None = None
        for tick in ticks:
            reason = _refusal(tick)
            if reason is not None:
                refused = [] if refused is None else refused
                refused.append(reason)
        if refused is None:
            return WireMessage(ticks, _NONE_REFUSED)
        return WireMessage([tick for tick in ticks if _refusal(tick) is None], refused)
    state: _FeedStateWire = decoded  # type: ignore[assignment]
    if not _is_name(state.feed):
        raise TickDecodeError("not a feed state: bad exchange")
    return WireMessage([FeedState(state.feed, state.state, state.timestamp)], _NONE_REFUSED)


# --- validation -------------------------------------------------------------------
# The engine re-checks what it is sent: a bad tick must be a counted drop, never a crash in
# the spread arithmetic nor a false signal.


def _refusal(tick: Tick) -> str | None:
    """Why `tick` is not a valid tick, or None when it is. Its levels, when they are lists, hold
    [float, float] lists with finite sizes > 0 (msgspec's decoding, or `_json_levels_refusal`,
    saw to that)."""
    exchange, symbol, kind, price, volume, bid, ask, bid_size, ask_size, timestamp, recv_ns, bids, asks = tick
    if (  # _is_name written out: this runs for every tick the engine receives
        exchange.__class__ is not str
        or symbol.__class__ is not str
        or not 0 < len(exchange) <= 64
        or not 0 < len(symbol) <= 64
        or "/" not in symbol
    ):
        return "bad exchange or symbol"
    if recv_ns.__class__ is not int or timestamp.__class__ is not int:
        return "bad times"
    if (
        price.__class__ is not float
        or volume.__class__ is not float
        or not (0.0 <= price < _INF and 0.0 <= volume < _INF)
    ):
        return "bad price or volume"  # a quote's mid, a trade's figures: finite, never negative
    if kind in (QUOTE, BOOK):
        if kind == BOOK and bids == [] and asks == []:  # a book-lost tick: nothing else set
            if bid is not None or ask is not None or bid_size is not None or ask_size is not None:
                return "a top on a book without levels"
            return None
        if bid.__class__ is not float or ask.__class__ is not float or not 0.0 < bid < ask < _INF:  # type: ignore[operator]
            return "bad quote prices"
        if bid_size is not None and (bid_size.__class__ is not float or not 0.0 < bid_size < _INF):
            return "bad quote size"
        if ask_size is not None and (ask_size.__class__ is not float or not 0.0 < ask_size < _INF):
            return "bad quote size"
        if kind == BOOK:
            return _side_refusal(bids, bid, bid_size, _gt) or _side_refusal(asks, ask, ask_size, _lt)
        if bids is not None or asks is not None:
            return "levels on a quote"
        return None
    if kind == TRADE:
        if price.__class__ is not float or not 0.0 < price < _INF:
            return "bad trade price"
        if bids is not None or asks is not None:
            return "levels on a trade"
        if bid is not None or ask is not None or bid_size is not None or ask_size is not None:
            return "a top on a trade"
        return None
    return "unknown type"


def _side_refusal(
    levels: Levels | None, top: object, top_size: object, better: Callable[[float, float], bool]
) -> str | None:
    """One side of a book tick: 1 to MAX_LEVELS levels, prices strictly ordered best first
    (`better`: > for bids, < for asks) and finite, the first level the top. Each level is a
    [price, size] of floats with a finite size > 0 already: msgspec's bounds on `Level` saw to
    that as it decoded the message, `_json_levels_refusal` for `decode`.

    The prices are compared by `map` in C, not by a Python loop; a NaN fails every comparison."""
    if levels.__class__ is not list or not 0 < len(levels) <= MAX_LEVELS:  # type: ignore[arg-type]
        return "a book side is no list of levels"
    prices = list(map(_first, levels))  # type: ignore[arg-type]
    best, worst = prices[0], prices[-1]
    if not (0.0 < best < _INF and 0.0 < worst < _INF and all(map(better, prices, islice(prices, 1, None)))):
        return "levels out of order"
    if best != top or levels[0][1] != top_size:  # type: ignore[index]
        return "the top is not the first level"
    return None


def _json_levels_refusal(levels: object) -> str | None:
    """What msgspec's `Level` bounds check on the ZeroMQ hop, for JSON's levels: None, or a list
    of [float, float] lists with finite sizes > 0 (the rest is _side_refusal's)."""
    if levels.__class__ is not list:
        return None  # None, or no list at all: _refusal says which is wrong
    for level in levels:  # type: ignore[attr-defined]
        if level.__class__ is not list or len(level) != 2:
            return "a level is no [price, size]"
        price, size = level
        if price.__class__ is not float or size.__class__ is not float or not 0.0 < size < _INF:
            return "bad level"
    return None


_INF = float("inf")
_first = itemgetter(0)
_lt = operator.lt
_gt = operator.gt


def _is_name(value: object) -> bool:
    return value.__class__ is str and 0 < len(value) <= 64  # type: ignore[arg-type]
