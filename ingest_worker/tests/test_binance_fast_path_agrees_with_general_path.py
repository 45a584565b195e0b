"""The msgspec fast path for bookTicker and the general path give the same ticks and the same counts.

`VenueParser.parse(parser, frame, recv_ns)` is the general path alone (it skips
`BinanceParser.parse`, where the fast path lives). Both are run side by side on
every recorded frame of every binance* folder, on frames built to sit at the
fast path's edges, and on generated bookTicker-shaped frames.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.tests.recorded import files, frames
from ingest_worker.venues.base import VenueParser
from ingest_worker.venues.binance import BinanceParser

RECV_NS = 1_723_161_254_087_891_268


def assert_paths_agree(frame: str | bytes, recv_ns: int, fast: BinanceParser, general: BinanceParser) -> None:
    fast_ticks = fast.parse(frame, recv_ns)
    general_ticks = VenueParser.parse(general, frame, recv_ns)
    assert fast_ticks == general_ticks, frame
    assert [type(value) for tick in fast_ticks for value in tick] == [
        type(value) for tick in general_ticks for value in tick
    ], frame
    assert fast.stats.as_dict() == general.stats.as_dict(), frame


@pytest.mark.parametrize("folder", ["binance", "binance_usdm", "binance_coinm"])
def test_both_paths_agree_on_every_recorded_frame(market_data, folder):
    for path in files(market_data / folder, "*.jsonl"):
        fast, general = BinanceParser(), BinanceParser()
        for frame, recv_ns in frames(path):
            assert_paths_agree(frame, recv_ns, fast, general)
        assert fast.stats.frames > 0


@pytest.mark.parametrize("folder", ["binance_usdm", "binance_coinm"])
def test_futures_book_tickers_are_never_taken_for_spot_quotes(market_data, folder):
    # USDⓈ-M BTCUSDT is a perpetual, not the spot market of the same name.
    parser = BinanceParser()
    recorded = frames(market_data / folder / "bookTicker.jsonl")
    for frame, recv_ns in recorded:
        assert parser.parse(frame, recv_ns) == []
    stats = parser.stats.as_dict()
    assert stats["ignored"] == {"futuresBookTicker": len(recorded)}
    assert stats["dropped"] == {}


BOOK = '"s":"BTCUSDT","b":"100.5","B":"1.5","a":"100.6","A":"2.5"'


@pytest.mark.parametrize(
    "frame",
    [
        '{"u":1,' + BOOK + "}",
        '{"stream":"btcusdt@bookTicker","data":{"u":1,' + BOOK + "}}",
        # A zero event time is still an event time for the general path.
        '{"u":1,' + BOOK + ',"E":0}',
        '{"u":1,' + BOOK + ',"E":"0"}',
        '{"u":1,' + BOOK + ',"E":null}',
        # An "e" naming another event makes it that event, whatever else the frame holds.
        '{"u":1,' + BOOK + ',"e":"trade"}',
        '{"u":1,' + BOOK + ',"e":"kline"}',
        '{"u":1,' + BOOK + ',"e":"bookTicker"}',
        '{"stream":"btcusdt@bookTicker","data":{"u":1,' + BOOK + ',"e":"trade"}}',
        # A raw frame holding a "data" key is read as a combined frame by the general path.
        '{"u":1,' + BOOK + ',"data":5}',
        '{"u":1,' + BOOK + ',"data":null}',
        '{"u":1,' + BOOK + ',"data":{"result":null,"id":1}}',
        # Duplicate keys: the last one wins on both paths.
        '{"u":1,' + BOOK + ',"b":"100.55"}',
        '{"u":1,' + BOOK + ',"a":"100.4"}',
        # Decimal strings at the edges of what float() accepts.
        '{"u":1,"s":"BTCUSDT","b":"1_0","B":"1","a":"20","A":"1"}',
        '{"u":1,"s":"BTCUSDT","b":" 1","B":"1","a":"20","A":"1"}',
        '{"u":1,"s":"BTCUSDT","b":"1e-400","B":"1","a":"20","A":"1"}',
        '{"u":1,"s":"BTCUSDT","b":"nan","B":"1","a":"20","A":"1"}',
        '{"u":1,"s":"BTCUSDT","b":1,"B":1,"a":2,"A":1e-300}',
        '{"u":"x","s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}',
        # A str no UTF-8 encoder accepts (a lone surrogate): malformed, not a crash.
        '{"u":1,"s":"BTCUSDT","b":"\ud800","B":"1","a":"2","A":"1"}',
        '{"stream":"x@bookTicker","data":{"u":1,"s":"\udfff","b":"1","B":"1","a":"2","A":"1"}}',
    ],
)
def test_both_paths_agree_at_the_fast_paths_edges(frame):
    assert_paths_agree(frame, RECV_NS, BinanceParser(max_age_ms=None), BinanceParser(max_age_ms=None))


# Generated frames start as a valid bookTicker, then have a few fields replaced by
# anything (or removed) and a few keys added, so that most get far enough to matter.
_decimal_text = st.one_of(
    st.sampled_from(["0", "-0", "-1", "1", "0.1", "nan", "inf", "-inf", "1e400", "1e10", "9999999999.99", "1_0", ""]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.floats().map(repr),
    st.integers().map(str),
)
_values = st.one_of(
    _decimal_text,
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.sampled_from(["bookTicker", "trade", "aggTrade", "kline", "BTCUSDT", "BTCUSD_PERP"]),
    st.text(max_size=8),
)
_cents = st.integers(min_value=1, max_value=10_000_000)


@st.composite
def book_ticker_frames(draw: st.DrawFn) -> str:
    bid_cents = draw(_cents)
    book: dict[str, object] = {
        "u": draw(st.integers(min_value=0, max_value=2**63)),
        "s": draw(st.sampled_from(["BTCUSDT", "ETHBTC", "NKNUSDT"])),
        "b": f"{bid_cents / 100:.2f}",
        "B": str(draw(_cents) / 1000),
        "a": f"{(bid_cents + draw(_cents)) / 100:.2f}",
        "A": str(draw(_cents) / 1000),
    }
    for key in draw(st.lists(st.sampled_from(list(book)), max_size=2, unique=True)):
        if draw(st.booleans()):
            book[key] = draw(_values)
        else:
            del book[key]
    book.update(draw(st.dictionaries(st.sampled_from(["e", "E", "T", "data", "ps", "stream"]), _values, max_size=2)))
    if draw(st.booleans()):
        book = {"stream": "btcusdt@bookTicker", "data": book}
    return json.dumps(book, separators=(",", ":"))


@settings(max_examples=500, deadline=None)
@given(frame=book_ticker_frames(), recv_ns=st.integers(min_value=0, max_value=2**63 - 1))
def test_both_paths_agree_on_generated_book_ticker_frames(frame, recv_ns):
    assert_paths_agree(frame, recv_ns, BinanceParser(max_age_ms=None), BinanceParser(max_age_ms=None))
    assert_paths_agree(frame, recv_ns, BinanceParser(), BinanceParser())
