"""Whatever arrives, a parser never raises, never emits an impossible tick, and accounts for every frame once.

Property tests over arbitrary bytes, arbitrary text (lone surrogates included),
arbitrary JSON values, and frame-shaped JSON: bookTicker, trade and Coinbase
ticker objects whose field values are drawn from anything JSON can hold, with a
bias towards the strings that break number parsing ("nan", "inf", "1e400", ...).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from itertools import pairwise

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ingest_worker.tests.recorded import lost
from ingest_worker.venues.base import ONE_SIDED_BOOK, UNEXPECTED, VenueParser
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts.tick import BOOK, QUOTE, TRADE, Tick, is_book_lost

PARSERS = [BinanceParser, CoinbaseParser]
EXAMPLES = settings(max_examples=400, deadline=None)

recv_times = st.integers(min_value=0, max_value=2**63 - 1)
# What the clock check sees: off, or the contract's 60 s.
max_ages = st.sampled_from([None, 60_000])

number_strings = st.one_of(
    st.sampled_from(
        [
            *["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-1", "0", "-0", "0.0", "1e400", "-1e400", "1e-400"],
            *["1", "0.5", "1e10", "9999999999", "1e15", "1_000", " 1 ", "", "0x10", "true"],
        ]
    ),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.floats().map(repr),
    st.integers().map(str),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),  # beyond 64 bits too
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    number_strings,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(number_strings, json_scalars, json_values)
any_text = st.text(st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)), max_size=200)
cents = st.integers(min_value=1, max_value=10**12)  # a valid amount: 0.01 .. 10 billion


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, object]) -> dict[str, object]:
    """`valid` with up to three fields removed or replaced by anything, and up to two keys added."""
    frame = dict(valid)
    for key in draw(st.lists(st.sampled_from(sorted(frame)), max_size=3, unique=True)):
        how = draw(st.sampled_from(["remove", "number string", "anything"]))
        if how == "remove":
            del frame[key]
        else:
            frame[key] = draw(number_strings if how == "number string" else field_values)
    frame.update(draw(st.dictionaries(st.text(max_size=3), field_values, max_size=2)))
    return frame


def decimal(amount_cents: int) -> str:
    return f"{amount_cents // 100}.{amount_cents % 100:02d}"


# (frame object, receive time): frames start valid, with event times within two minutes of the receive time.
@st.composite
def binance_frames(draw: st.DrawFn) -> tuple[dict[str, object], int]:
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    event_ms = recv_ns // 1_000_000 + draw(st.integers(min_value=-120_000, max_value=120_000))
    symbol = draw(st.sampled_from(["BTCUSDT", "NKNUSDT", "BTCUSD_PERP", "USDT"]))
    bid = draw(cents)
    if draw(st.booleans()):
        valid: dict[str, object] = {
            "u": draw(st.integers(min_value=0, max_value=2**64)),
            "s": symbol,
            "b": decimal(bid),
            "B": decimal(draw(cents)),
            "a": decimal(bid + draw(cents)),
            "A": decimal(draw(cents)),
        }
        if draw(st.booleans()):  # the futures form
            valid |= {"e": "bookTicker", "E": event_ms, "T": event_ms}
    else:
        kind = draw(st.sampled_from(["trade", "aggTrade"]))
        valid = {"e": kind, "E": event_ms, "s": symbol, "t": 1, "p": decimal(bid), "q": decimal(draw(cents))}
    payload = draw(mutated(valid))
    if draw(st.booleans()):
        return {"stream": "btcusdt@bookTicker", "data": payload}, recv_ns
    return payload, recv_ns


@st.composite
def coinbase_frames(draw: st.DrawFn) -> tuple[dict[str, object], int]:
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    event = dt.datetime.fromtimestamp(recv_ns // 1000 / 1e6, dt.UTC) + dt.timedelta(
        milliseconds=draw(st.integers(min_value=-120_000, max_value=120_000))
    )
    bid = draw(cents)
    valid: dict[str, object] = {
        "type": "ticker",
        "sequence": 1,
        "product_id": draw(st.sampled_from(["BTC-USD", "SKL-GBP", "BTCUSD", "-USD", "BTC-"])),
        "price": decimal(draw(cents)),
        "best_bid": decimal(bid),
        "best_bid_size": decimal(draw(cents)),
        "best_ask": decimal(bid + draw(cents)),
        "best_ask_size": decimal(draw(cents)),
        "side": "buy",
        "time": draw(
            st.one_of(
                st.just(event.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
                st.sampled_from(["2021-04-17T25:00:00Z", "2021-02-30T00:00:00.1Z", "2021-04-17T16:43:30Z"]),
            )
        ),
        "trade_id": draw(st.integers(min_value=0, max_value=2**40)),
        "last_size": decimal(draw(cents)),
    }
    return draw(mutated(valid)), recv_ns


def as_frame(value: object, form: str) -> str | bytes:
    text = json.dumps(value, separators=(",", ":"))  # NaN/Infinity tokens included: not JSON, to be dropped
    return text.encode() if form == "bytes" else text


def assert_valid_tick(tick: Tick, parser: VenueParser) -> None:
    assert type(tick) is Tick
    assert tick.exchange == parser.name
    assert isinstance(tick.symbol, str)
    assert tick.symbol.count("/") == 1
    assert type(tick.timestamp) is int
    assert type(tick.recv_ns) is int
    assert type(tick.price) is float
    if is_book_lost(tick):  # a dropped book: exactly the contract's book-lost tick, nothing else set
        assert type(tick.volume) is float
        assert tick == lost(parser.name, tick.symbol, tick.recv_ns)
        return
    assert math.isfinite(tick.price)
    assert tick.price > 0
    if tick.type == BOOK:  # also a quote: its top is its best levels
        assert_valid_levels(tick, parser)
    if tick.type in (QUOTE, BOOK):
        assert type(tick.bid) is float
        assert type(tick.ask) is float
        assert math.isfinite(tick.bid)
        assert math.isfinite(tick.ask)
        assert 0 < tick.bid < tick.ask
        assert tick.bid <= tick.price <= tick.ask
        assert tick.volume == 0.0
        for size in (tick.bid_size, tick.ask_size):
            assert size is None or (type(size) is float and math.isfinite(size) and size > 0)
    else:
        assert tick.type == TRADE
        assert type(tick.volume) is float
        assert math.isfinite(tick.volume)
        assert tick.volume > 0
        assert tick.bid is tick.ask is tick.bid_size is tick.ask_size is None


def assert_valid_levels(tick: Tick, parser: VenueParser) -> None:
    """A book tick's levels: 1 to depth_levels a side, best first, strictly ordered, finite sizes > 0,
    the best of each side its top."""
    assert tick.bids is not None
    assert tick.asks is not None
    for levels, ordered in ((tick.bids, 1.0), (tick.asks, -1.0)):
        assert 1 <= len(levels) <= parser.depth_levels
        for price, size in levels:
            assert type(price) is float
            assert type(size) is float
            assert math.isfinite(price)
            assert price > 0
            assert math.isfinite(size)
            assert size > 0
        prices = [price for price, _ in levels]
        assert all((better - worse) * ordered > 0 for better, worse in pairwise(prices))
    assert [tick.bid, tick.bid_size] == tick.bids[0]
    assert [tick.ask, tick.ask_size] == tick.asks[0]


def outcomes(parser: VenueParser) -> int:
    stats = parser.stats
    return sum(stats.control.values()) + sum(stats.ignored.values()) + sum(stats.dropped.values())


def check_frame_ticks(parser: VenueParser, ticks: list[Tick], before: tuple[int, int, int, int]) -> None:
    """The ticks of one frame, given `frame_counts(parser)` from before it: each valid and counted; a
    tick-giving frame or exactly one other outcome. Book-lost ticks are counted, one per market, never
    beside a new book of it, and only in a frame that dropped a book (or whose snapshot replaced a
    sent book with a one-sided one): such a frame gives no other tick, so it has its one outcome."""
    for tick in ticks:
        assert_valid_tick(tick, parser)
    lost_symbols = [tick.symbol for tick in ticks if is_book_lost(tick)]
    assert len(set(lost_symbols)) == len(lost_symbols)
    assert not set(lost_symbols) & {tick.symbol for tick in ticks if tick.type == BOOK and not is_book_lost(tick)}
    after = frame_counts(parser)
    made, books_lost, losses, other_outcomes = (now - then for now, then in zip(after, before, strict=True))
    assert made == len(ticks)
    assert books_lost == len(lost_symbols)
    if lost_symbols:
        assert losses == 1
    assert other_outcomes == (0 if len(ticks) > len(lost_symbols) else 1)


def frame_counts(parser: VenueParser) -> tuple[int, int, int, int]:
    """What check_frame_ticks compares a frame's ticks with: ticks made, book-lost ticks, the outcomes
    that may lose a book (drops, one-sided books) and all outcomes other than ticks."""
    stats = parser.stats
    one_sided = sum(stats.ignored.get(kind, 0) for kind in {ONE_SIDED_BOOK, parser.ONE_SIDED})
    return stats.ticks, stats.books_lost, sum(stats.dropped.values()) + one_sided, outcomes(parser)


def check(parser: VenueParser, frames: list[str | bytes], recv_ns: int) -> None:
    """Feed the frames one by one: each is a tick-giving frame or exactly one other outcome (a frame
    that drops a sent book gives its book-lost tick too)."""
    for calls, frame in enumerate(frames, 1):
        before = frame_counts(parser)
        ticks = parser.parse(frame, recv_ns)
        check_frame_ticks(parser, ticks, before)
        assert parser.stats.frames == calls
        kinds = {"book lost" if is_book_lost(tick) else "ticks" for tick in ticks}
        event(f"{parser.name}: {', '.join(sorted(kinds)) if ticks else 'no tick'}")
    # The safety net in VenueParser.parse catches parser bugs; no input may reach it.
    assert parser.stats.dropped[UNEXPECTED] == 0


@pytest.mark.parametrize("parser_class", PARSERS)
@EXAMPLES
@given(data=st.binary(max_size=300), recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_bytes(parser_class, data, recv_ns, max_age_ms):
    check(parser_class(max_age_ms=max_age_ms), [data, b'{"u":' + data, b'{"stream":' + data], recv_ns)


@pytest.mark.parametrize("parser_class", PARSERS)
@EXAMPLES
@given(text=any_text, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_text(parser_class, text, recv_ns, max_age_ms):
    # The prefixes lead Binance's fast path into the text.
    frames: list[str | bytes] = [text, '{"u":' + text, '{"stream":"x@bookTicker","data":' + text]
    check(parser_class(max_age_ms=max_age_ms), frames, recv_ns)


@pytest.mark.parametrize("parser_class", PARSERS)
@EXAMPLES
@given(value=json_values, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_json_values(parser_class, value, recv_ns, max_age_ms):
    check(parser_class(max_age_ms=max_age_ms), [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)


@EXAMPLES
@given(shaped=binance_frames(), max_age_ms=max_ages)
def test_frame_shaped_binance_json(shaped, max_age_ms):
    value, recv_ns = shaped
    check(BinanceParser(max_age_ms=max_age_ms), [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)


@EXAMPLES
@given(shaped=coinbase_frames(), max_age_ms=max_ages)
def test_frame_shaped_coinbase_json(shaped, max_age_ms):
    value, recv_ns = shaped
    check(CoinbaseParser(max_age_ms=max_age_ms), [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)
