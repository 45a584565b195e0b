"""Bad frames give no tick and are counted once, under the reason that says what was wrong."""

from __future__ import annotations

import json

import pytest

from ingest_worker.venues.base import (
    BAD_PRICE,
    BAD_SIZE,
    BAD_TIMESTAMP,
    CROSSED_BOOK,
    MALFORMED_JSON,
    MISSING_FIELD,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
    VenueParser,
)
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser

RECV_NS = 1_618_677_810_000_000_000  # 2021-04-17T16:43:30Z
TIME = "2021-04-17T16:43:30.244075Z"

BOOK = {"u": 1, "s": "BTCUSDT", "b": "100.5", "B": "1.5", "a": "100.6", "A": "2.5"}
TRADE = {"e": "trade", "E": RECV_NS // 1_000_000, "s": "BTCUSDT", "t": 7, "p": "100.5", "q": "0.25"}
TICKER = {
    "type": "ticker",
    "product_id": "BTC-USD",
    "price": "100.5",
    "best_bid": "100.5",
    "best_bid_size": "1.5",
    "best_ask": "100.6",
    "best_ask_size": "2.5",
    "time": TIME,
    "trade_id": 7,
    "last_size": "0.25",
}

# Bad numbers as JSON strings, and as other JSON values. JSON has no NaN or infinity: a frame
# carrying them as bare tokens is malformed JSON (see test_malformed_json). Prices stop below
# ten billion and sizes below a quadrillion (base.MAX_PRICE, MAX_SIZE).
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1", "0", "0.0", "-0", "", "abc", "1,5", "0x10"]
BAD_PRICES = [*BAD_NUMBERS, "1e10", -1, 0, 0.0, -0.5, 1e10, 10**16, True, False, None, [1], {"v": 1}]
BAD_SIZES = [*BAD_NUMBERS, "1e15", -1, 0, 0.0, -0.5, 1e15, 10**16, True, False, None, [1], {"v": 1}]


def frame(base: dict[str, object], wrap: bool = False, /, **changes: object) -> str:
    obj = {key: value for key, value in (base | changes).items() if value is not ...}  # ... removes a key
    if wrap:
        obj = {"stream": "btcusdt@bookTicker", "data": obj}
    return json.dumps(obj, separators=(",", ":"))


def assert_dropped(parser: VenueParser, frame_: str | bytes, reason: str) -> None:
    assert parser.parse(frame_, RECV_NS) == []
    assert parser.stats.as_dict() == {
        "frames": 1,
        "ticks": 0,
        "control": {},
        "ignored": {},
        "dropped": {reason: 1},
    }, frame_


def test_the_good_frames_these_tests_break_are_good():
    assert len(BinanceParser().parse(frame(BOOK), RECV_NS)) == 1
    assert len(BinanceParser().parse(frame(TRADE), RECV_NS)) == 1
    assert len(CoinbaseParser().parse(frame(TICKER), RECV_NS)) == 2


@pytest.mark.parametrize("parser_class", [BinanceParser, CoinbaseParser])
@pytest.mark.parametrize(
    "bad",
    ["", " ", "{", '{"u":1,', "not json", "[1,2", '{"a":1}}', "{'u': 1}", "\x00"],
)
def test_malformed_json(parser_class, bad):
    assert_dropped(parser_class(), bad, MALFORMED_JSON)
    assert_dropped(parser_class(), bad.encode(), MALFORMED_JSON)


# JSON has no NaN, no infinity and no number beyond the double range: a price written so is
# not a bad price but a frame that is not JSON.
@pytest.mark.parametrize("token", ["NaN", "-NaN", "Infinity", "-Infinity", "inf", "1e400", "-1e400"])
def test_non_finite_json_numbers_make_the_frame_malformed(token):
    assert_dropped(BinanceParser(), frame(BOOK).replace('"100.5"', token, 1), MALFORMED_JSON)
    assert_dropped(BinanceParser(), frame(BOOK).replace('"2.5"', token, 1), MALFORMED_JSON)
    assert_dropped(BinanceParser(), frame(TRADE).replace('"0.25"', token, 1), MALFORMED_JSON)
    assert_dropped(CoinbaseParser(), frame(TICKER).replace('"100.6"', token, 1), MALFORMED_JSON)


@pytest.mark.parametrize("parser_class", [BinanceParser, CoinbaseParser])
@pytest.mark.parametrize(
    "bad",
    [
        b"\xff\xfe",
        b'{"u":1,"s":"BTC\xffUSDT","b":"1","B":"1","a":"2","A":"1"}',
        b'{"type":"ticker","product_id":"BTC-\xc3\x28"}',  # a broken two-byte sequence
        b'{"u":1,"s":"\xed\xa0\x80"}',  # an encoded surrogate is not UTF-8
        "é".encode("latin-1"),
    ],
)
def test_bytes_that_are_not_utf8(parser_class, bad):
    assert_dropped(parser_class(), bad, MALFORMED_JSON)


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("key", ["s", "B", "A"])
def test_binance_book_ticker_missing_a_field(key, wrap):
    assert_dropped(BinanceParser(), frame(BOOK, wrap, **{key: ...}), MISSING_FIELD)


@pytest.mark.parametrize("key", ["b", "a"])
def test_binance_frame_without_a_bid_or_ask_is_no_book_ticker(key):
    assert_dropped(BinanceParser(), frame(BOOK, **{key: ...}), UNKNOWN_MESSAGE)


@pytest.mark.parametrize("event", ["trade", "aggTrade"])
@pytest.mark.parametrize("key", ["s", "p", "q", "E"])
def test_binance_trade_missing_a_field(event, key):
    assert_dropped(BinanceParser(), frame(TRADE, e=event, **{key: ...}), MISSING_FIELD)


@pytest.mark.parametrize("event_time", ["1618677810000", 1.6e12, None, True])
def test_binance_trade_whose_event_time_is_not_an_integer(event_time):
    assert_dropped(BinanceParser(), frame(TRADE, E=event_time), BAD_TIMESTAMP)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"product_id": ...}, MISSING_FIELD),
        ({"best_bid": ...}, MISSING_FIELD),  # one side only
        ({"best_ask": ...}, MISSING_FIELD),
        ({"price": ...}, MISSING_FIELD),  # a trade without its price
        ({"last_size": ...}, MISSING_FIELD),
        ({"best_bid": ..., "best_ask": ..., "trade_id": ...}, MISSING_FIELD),  # neither quote nor trade
    ],
)
def test_coinbase_ticker_missing_a_field(changes, reason):
    assert_dropped(CoinbaseParser(), frame(TICKER, **changes), reason)


@pytest.mark.parametrize(
    "bad_time",
    [
        *["", "yesterday", "2021-04-17", "2021-04-17 16:43:30.244Z", "2021-04-17T25:43:30Z", "2021-02-30T16:43:30Z"],
        *["2021-04-17T16:61:30Z", "2021-04-17T16:43:30.2x4Z", "2021-04-17T16:43:30+00:00", 1618677810244, [TIME]],
        # Signs, spaces and non-ASCII digits that int() would read as numbers.
        *["2021-04-17T-1:43:30Z", "2021-04-17T+1:43:30Z", "2021-04-17T 1:43:30Z", "2021-04-17T16:-3:30.5Z"],
        *["2021-04-17T16:43:30.\u0661\u0662\u0663Z", "2021-04-17T\u0661\u0666:43:30Z"],
    ],
)
def test_coinbase_ticker_with_a_time_that_is_not_iso_utc(bad_time):
    assert_dropped(CoinbaseParser(), frame(TICKER, time=bad_time), BAD_TIMESTAMP)


# --- prices and sizes --------------------------------------------------------------
@pytest.mark.parametrize("value", BAD_PRICES)
@pytest.mark.parametrize("key", ["b", "a"])
def test_binance_bad_bid_or_ask(key, value):
    assert_dropped(BinanceParser(), frame(BOOK, **{key: value}), BAD_PRICE)
    assert_dropped(BinanceParser(), frame(BOOK, True, **{key: value}), BAD_PRICE)


@pytest.mark.parametrize("value", BAD_SIZES)
@pytest.mark.parametrize("key", ["B", "A"])
def test_binance_bad_bid_or_ask_size(key, value):
    # null too: Binance always sends sizes, so null is not "the feed gives none".
    assert_dropped(BinanceParser(), frame(BOOK, **{key: value}), BAD_SIZE)
    assert_dropped(BinanceParser(), frame(BOOK, True, **{key: value}), BAD_SIZE)


@pytest.mark.parametrize("value", BAD_PRICES)
def test_binance_bad_trade_price(value):
    assert_dropped(BinanceParser(), frame(TRADE, p=value), BAD_PRICE)


@pytest.mark.parametrize("value", BAD_SIZES)
def test_binance_bad_trade_size(value):
    assert_dropped(BinanceParser(), frame(TRADE, q=value), BAD_SIZE)


# Coinbase: a null price, or a null trade size, is a missing field (tested above); null
# quote sizes are the sizes pre-2022 frames do not give (tested below).
@pytest.mark.parametrize("value", [value for value in BAD_PRICES if value is not None])
@pytest.mark.parametrize("key", ["best_bid", "best_ask", "price"])
def test_coinbase_bad_price(key, value):
    assert_dropped(CoinbaseParser(), frame(TICKER, **{key: value}), BAD_PRICE)


@pytest.mark.parametrize("value", [value for value in BAD_SIZES if value is not None])
@pytest.mark.parametrize("key", ["best_bid_size", "best_ask_size", "last_size"])
def test_coinbase_bad_size(key, value):
    assert_dropped(CoinbaseParser(), frame(TICKER, **{key: value}), BAD_SIZE)


def test_coinbase_ticker_without_sizes_is_a_quote_with_unknown_sizes():
    ticks = CoinbaseParser().parse(frame(TICKER, best_bid_size=..., best_ask_size=None), RECV_NS)
    assert [(tick.type, tick.bid_size, tick.ask_size) for tick in ticks] == [
        ("quote", None, None),
        ("trade", None, None),
    ]


# --- crossed books ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bid", "ask"), [("100.6", "100.5"), ("100.5", "100.5"), ("100.50", "100.5"), (100.5, "100.5")]
)
def test_crossed_or_locked_books(bid, ask):
    assert_dropped(BinanceParser(), frame(BOOK, b=bid, a=ask), CROSSED_BOOK)
    assert_dropped(BinanceParser(), frame(BOOK, True, b=bid, a=ask), CROSSED_BOOK)
    assert_dropped(CoinbaseParser(), frame(TICKER, best_bid=bid, best_ask=ask), CROSSED_BOOK)


# --- symbols ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["FOOBAR", "BTCUSD_PERP", "USDT", "", "BTC/USDT", "BTC-USDT", 42, None, ["BTCUSDT"]])
def test_binance_unknown_symbols(name):
    assert_dropped(BinanceParser(), frame(BOOK, s=name), UNKNOWN_SYMBOL)
    assert_dropped(BinanceParser(), frame(BOOK, True, s=name), UNKNOWN_SYMBOL)
    assert_dropped(BinanceParser(), frame(TRADE, s=name), UNKNOWN_SYMBOL)


@pytest.mark.parametrize("name", ["BTCUSD", "BTC-", "-USD", "BTC-USD-PERP", "BTC/USD", "", 42, ["BTC-USD"]])
def test_coinbase_unknown_symbols(name):
    assert_dropped(CoinbaseParser(), frame(TICKER, product_id=name), UNKNOWN_SYMBOL)


# --- messages of no known kind ------------------------------------------------------
@pytest.mark.parametrize("bad", ["[]", "1", '"bookTicker"', "null", "{}", '{"e":"unheardOf","s":"BTCUSDT"}'])
def test_binance_unknown_messages(bad):
    assert_dropped(BinanceParser(), bad, UNKNOWN_MESSAGE)


@pytest.mark.parametrize("bad", ["[]", "1", "null", "{}", '{"type":"unheardOf"}', '{"type":5}', '{"type":null}'])
def test_coinbase_unknown_messages(bad):
    assert_dropped(CoinbaseParser(), bad, UNKNOWN_MESSAGE)
