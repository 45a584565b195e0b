"""The normalized tick: what the ingestor sends the engine, one ZeroMQ message each.

Fields and meaning are the contract in DESIGN.md ("Normalized tick"). A tick is
an immutable `NamedTuple`: attribute access is as fast as a tuple's and
building one costs a fraction of a dataclass, which matters at 20k ticks/s.

A **book tick** (DESIGN.md "Depth") is a quote that carries the market's levels too:
`type` "book", `bids` and `asks` as `[[price, size], ...]` best first (at most
`DEPTH_LEVELS` each), and `bid`/`ask`/sizes the first level of each. A **book-lost tick**
is a book tick with both level lists empty and no top (`bid`, `ask` and sizes null, price
0): the venue's book of that market was dropped (a gap, a failed checksum, a crossed or
one-sided book) and nothing of it may be walked or quoted until its next book tick. The two fields
exist on every tick and are None on quotes and trades, whose wire form leaves them
out, so a quote's bytes are the same as before books existed. Level lists are shared,
not copied: nobody mutates them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

QUOTE = "quote"
TRADE = "trade"
BOOK = "book"
MAX_LEVELS = 1000  # a book tick with more levels a side than this is refused (DEPTH_LEVELS is far below)

Levels = list[list[float]]  # [[price, size], ...], best first


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
    """The wire form: one JSON object with the contract's field names (levels only on a book tick)."""
    return orjson.dumps(dict(zip(BOOK_FIELDS if tick.bids is not None else FIELDS, tick, strict=False)))


class TickDecodeError(ValueError):
    """Bytes that are not a tick; the receiver counts and drops them."""


def decode(data: bytes | str) -> Tick:
    """Parse the wire form back into a Tick, refusing anything that is not a valid one."""
    message = decode_message(data)
    if not isinstance(message, Tick):
        raise TickDecodeError("a feed state, not a tick")
    return message


# --- feed state messages ---------------------------------------------------------
# The same ZeroMQ socket carries the ingestor's word on each feed, so that the engine
# stops counting the quotes of a feed that went down (DESIGN.md: a quote from a feed
# that is down never takes part). They are told apart from ticks by the "feed" key.
FEED_DOWN = "down"
FEED_UP = "up"


class FeedState(NamedTuple):
    exchange: str
    state: str  # FEED_DOWN or FEED_UP
    timestamp: int  # Unix ms when the ingestor saw the change


def encode_feed_state(exchange: str, state: str, timestamp: int) -> bytes:
    return orjson.dumps({"feed": exchange, "state": state, "timestamp": timestamp})


def decode_message(data: bytes | str) -> Tick | FeedState:
    """A ZeroMQ message from the ingestor: a tick or a feed state; TickDecodeError otherwise."""
    try:
        obj = orjson.loads(data)
        if "feed" in obj:
            state = FeedState(obj["feed"], obj["state"], obj["timestamp"])
            if state.state not in (FEED_DOWN, FEED_UP) or not isinstance(state.exchange, str):
                raise TickDecodeError("not a feed state")
            return state
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
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise TickDecodeError(f"not a tick: {exc}") from None
    # The engine re-checks what it is sent: a bad message must be a counted drop, never a
    # crash in the spread arithmetic nor a false signal.
    if not (_is_name(tick.exchange) and _is_name(tick.symbol) and "/" in tick.symbol):
        raise TickDecodeError("not a tick: bad exchange or symbol")
    if tick.recv_ns.__class__ is not int or tick.timestamp.__class__ is not int:
        raise TickDecodeError("not a tick: bad times")
    if tick.type == BOOK and tick.bids == [] and tick.asks == []:  # a book-lost tick: nothing else set
        if tick.bid is not None or tick.ask is not None or tick.bid_size is not None or tick.ask_size is not None:
            raise TickDecodeError("not a tick: a top on a book without levels")
    elif tick.type == QUOTE or tick.type == BOOK:
        bid, ask = tick.bid, tick.ask
        if bid.__class__ is not float or ask.__class__ is not float or not 0.0 < bid < ask < _INF:
            raise TickDecodeError("not a tick: bad quote prices")
        for size in (tick.bid_size, tick.ask_size):
            if size is not None and (size.__class__ is not float or not 0.0 < size < _INF):
                raise TickDecodeError("not a tick: bad quote size")
        if tick.type == BOOK:
            _check_book(tick)
        elif tick.bids is not None or tick.asks is not None:
            raise TickDecodeError("not a tick: levels on a quote")
    elif tick.type == TRADE:
        if tick.price.__class__ is not float or not 0.0 < tick.price < _INF:
            raise TickDecodeError("not a tick: bad trade price")
        if tick.bids is not None or tick.asks is not None:
            raise TickDecodeError("not a tick: levels on a trade")
    else:
        raise TickDecodeError("not a tick: unknown type")
    return tick


def _check_book(tick: Tick) -> None:
    """A book tick's levels: non-empty lists of [price, size] floats > 0, strictly ordered best
    first, at most MAX_LEVELS a side, the first level of each side its top."""
    for levels, top, ascending in (
        (tick.bids, [tick.bid, tick.bid_size], False),
        (tick.asks, [tick.ask, tick.ask_size], True),
    ):
        if levels.__class__ is not list or not 0 < len(levels) <= MAX_LEVELS:  # type: ignore[arg-type]
            raise TickDecodeError("not a tick: a book side is no list of levels")
        previous = 0.0 if ascending else _INF
        for level in levels:  # type: ignore[union-attr]
            if level.__class__ is not list or len(level) != 2:
                raise TickDecodeError("not a tick: a level is no [price, size]")
            price, size = level
            if price.__class__ is not float or size.__class__ is not float or not 0.0 < size < _INF:
                raise TickDecodeError("not a tick: bad level")
            if not (previous < price < _INF if ascending else 0.0 < price < previous):
                raise TickDecodeError("not a tick: levels out of order")
            previous = price
        if levels[0] != top:  # type: ignore[index]
            raise TickDecodeError("not a tick: the top is not the first level")


_INF = float("inf")


def _is_name(value: object) -> bool:
    return value.__class__ is str and 0 < len(value) <= 64  # type: ignore[arg-type]
