"""Bad Kraken frames (v1 and v2) give no tick and are counted once, under the reason that says what was wrong."""

from __future__ import annotations

import json

import pytest

from ingest_worker.tests.recorded import lost
from ingest_worker.venues.base import (
    BAD_PRICE,
    BAD_SIZE,
    BAD_TIMESTAMP,
    BOOK_GAP,
    CROSSED_BOOK,
    MALFORMED_JSON,
    MISSING_FIELD,
    STALE,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
)
from ingest_worker.venues.kraken import KrakenParser
from signals_app.contracts.symbols import SymbolTable

RECV_NS = 1_618_678_142_600_000_000  # 2021-04-17T16:49:02.600Z
TIME_S = "1618678142.557535"  # 43 ms before the receive time
TIME_ISO = "2021-04-17T16:49:02.557535Z"

V1_TICKER = {"a": ["355.24000000", 27, "27.19106411"], "b": ["354.32000000", 6, "6.87748868"], "c": ["355.2", "1.2"]}
V1_TRADE = ["354.11000000", "0.89594024", TIME_S, "s", "l", ""]
V2_TICKER = {"symbol": "BTC/USD", "bid": 100.5, "bid_qty": 1.5, "ask": 100.6, "ask_qty": 2.5, "last": 100.6}
V2_TRADE = {"symbol": "BTC/USD", "side": "buy", "price": 100.5, "qty": 0.25, "ord_type": "market",
            "trade_id": 7, "timestamp": TIME_ISO}  # fmt: skip
SNAPSHOT = {"as": [["100.6", "2.5", TIME_S]], "bs": [["100.5", "1.5", TIME_S]]}

BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1", "0", "0.0", "-0", "", "abc", "1,5", "0x10"]
BAD_PRICES = [*BAD_NUMBERS, "1e10", -1, 0, 0.0, -0.5, 1e10, True, False, [1], {"v": 1}]
BAD_SIZES = [*BAD_NUMBERS, "1e15", -1, 0, 0.0, -0.5, 1e15, True, False, None, [1], {"v": 1}]


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def v1_ticker(pair: str = "XMR/USD", **changes: object) -> str:
    return dumps([996, V1_TICKER | changes, "ticker", pair])


def v1_trade(*trades: list[object], pair: str = "XMR/USD") -> str:
    return dumps([993, list(trades) or [V1_TRADE], "trade", pair])


def v2(channel: str, item: dict[str, object], **changes: object) -> str:
    data = {key: value for key, value in (item | changes).items() if value is not ...}  # ... removes a key
    return dumps({"channel": channel, "type": "update", "data": [data]})


def assert_dropped(parser: KrakenParser, frame: str | bytes, reason: str) -> None:
    before = parser.stats.frames
    assert parser.parse(frame, RECV_NS) == []
    assert parser.stats.as_dict() | {"frames": 0} == {
        "frames": 0,
        "ticks": 0,
        "control": {},
        "ignored": {},
        "dropped": {reason: 1},
    }, frame
    assert parser.stats.frames == before + 1


def test_the_good_frames_these_tests_break_are_good():
    assert len(KrakenParser().parse(v1_ticker(), RECV_NS)) == 1
    assert len(KrakenParser().parse(v1_trade(), RECV_NS)) == 1
    assert len(KrakenParser().parse(v2("ticker", V2_TICKER), RECV_NS)) == 1
    assert len(KrakenParser().parse(v2("trade", V2_TRADE), RECV_NS)) == 1
    assert len(KrakenParser().parse(dumps([1, SNAPSHOT, "book-10", "XBT/USD"]), RECV_NS)) == 1


@pytest.mark.parametrize(
    "bad", ["", " ", "{", "[1,", "not json", '{"a":1}}', "{'event': 'heartbeat'}", "\x00", "[1,NaN,2]"]
)
def test_malformed_json(bad):
    assert_dropped(KrakenParser(), bad, MALFORMED_JSON)
    assert_dropped(KrakenParser(), bad.encode(), MALFORMED_JSON)


@pytest.mark.parametrize("bad", [b"\xff\xfe", b'[1,{"a":["1",1,"1"]},"ticker","XBT\xffUSD"]', "é".encode("latin-1")])
def test_bytes_that_are_not_utf8(bad):
    assert_dropped(KrakenParser(), bad, MALFORMED_JSON)


@pytest.mark.parametrize(
    "frame",
    [
        "1", '"heartbeat"', "null", "{}", '{"event":"party"}', '{"event":["heartbeat"]}', '{"method":"dance"}',
        '{"channel":"gossip"}', '{"channel":7}', '[1,{},"candles","XBT/USD"]',
    ],
)  # fmt: skip
def test_messages_that_are_no_kraken_message(frame):
    assert_dropped(KrakenParser(), frame, UNKNOWN_MESSAGE)


@pytest.mark.parametrize(
    "frame",
    [
        '[1,"ticker","XBT/USD"]',  # too short
        '[1,{},"ticker",7]',  # no pair
        '[1,{},{},"ticker","XBT/USD"]',  # a ticker in two parts
        dumps([996, {"b": V1_TICKER["b"]}, "ticker", "XMR/USD"]),  # no ask
        v1_ticker(a=["355.24000000", 27]),  # no lot volume
        v1_trade(["354.1", "0.5"]),  # no time
        dumps([993, [], "trade", "XMR/USD"]),
        dumps([993, {"price": "1"}, "trade", "XMR/USD"]),
        v2("ticker", V2_TICKER, bid=...),
        v2("ticker", V2_TICKER, ask_qty=...),
        v2("ticker", V2_TICKER, symbol=...),
        v2("trade", V2_TRADE, price=...),
        v2("trade", V2_TRADE, qty=...),
        v2("trade", V2_TRADE, timestamp=...),
        '{"channel":"ticker","type":"update","data":[]}',
        '{"channel":"trade","type":"update","data":["BTC/USD"]}',
        dumps([1, {"as": SNAPSHOT["as"]}, "book-10", "XBT/USD"]),  # a snapshot with one side
        dumps([1, [SNAPSHOT], "book-10", "XBT/USD"]),
    ],
)
def test_frames_missing_a_field(frame):
    assert_dropped(KrakenParser(), frame, MISSING_FIELD)


@pytest.mark.parametrize("value", BAD_PRICES)
def test_bad_prices(value):
    assert_dropped(KrakenParser(), v1_ticker(b=[value, 6, "6.87748868"]), BAD_PRICE)
    assert_dropped(KrakenParser(), v1_ticker(a=[value, 6, "6.87748868"]), BAD_PRICE)
    assert_dropped(KrakenParser(), v1_trade([value, "0.5", TIME_S, "s", "l", ""]), BAD_PRICE)
    assert_dropped(KrakenParser(), v2("ticker", V2_TICKER, bid=value), BAD_PRICE)
    assert_dropped(KrakenParser(), v2("ticker", V2_TICKER, ask=value), BAD_PRICE)
    assert_dropped(KrakenParser(), v2("trade", V2_TRADE, price=value), BAD_PRICE)
    snapshot = {"as": [[value, "2.5", TIME_S]], "bs": SNAPSHOT["bs"]}
    assert_dropped(KrakenParser(), dumps([1, snapshot, "book-10", "XBT/USD"]), BAD_PRICE)


@pytest.mark.parametrize("value", BAD_SIZES)
def test_bad_sizes(value):
    assert_dropped(KrakenParser(), v1_ticker(b=["354.32", 6, value]), BAD_SIZE)
    assert_dropped(KrakenParser(), v1_trade(["354.11", value, TIME_S, "s", "l", ""]), BAD_SIZE)
    assert_dropped(KrakenParser(), v2("ticker", V2_TICKER, ask_qty=value), BAD_SIZE)
    assert_dropped(KrakenParser(), v2("trade", V2_TRADE, qty=value), BAD_SIZE)
    if value not in ("0", "0.0", "-0"):  # a zero volume in an update deletes the level
        snapshot = {"as": SNAPSHOT["as"], "bs": [["100.5", value, TIME_S]]}
        assert_dropped(KrakenParser(), dumps([1, snapshot, "book-10", "XBT/USD"]), BAD_SIZE)


def test_a_zero_volume_in_a_snapshot_is_a_bad_size():
    snapshot = {"as": SNAPSHOT["as"], "bs": [["100.5", "0.00000000", TIME_S]]}
    assert_dropped(KrakenParser(), dumps([1, snapshot, "book-10", "XBT/USD"]), BAD_SIZE)


@pytest.mark.parametrize(("bid", "ask"), [("100.6", "100.5"), ("100.5", "100.5")])
def test_crossed_or_locked_quotes(bid, ask):
    assert_dropped(KrakenParser(), v1_ticker(b=[bid, 1, "1.0"], a=[ask, 1, "1.0"]), CROSSED_BOOK)
    assert_dropped(KrakenParser(), v2("ticker", V2_TICKER, bid=float(bid), ask=float(ask)), CROSSED_BOOK)
    snapshot = {"as": [[ask, "1.0", TIME_S]], "bs": [[bid, "1.0", TIME_S]]}
    assert_dropped(KrakenParser(), dumps([1, snapshot, "book-10", "XBT/USD"]), CROSSED_BOOK)


@pytest.mark.parametrize("pair", ["XBTUSD", "XBT/", "/USD", "XBT/US D", "XBT/USD/EUR", "ÄBC/USD"])
def test_names_that_are_no_pair(pair):
    assert_dropped(KrakenParser(), v1_ticker(pair=pair), UNKNOWN_SYMBOL)
    assert_dropped(KrakenParser(), v2("ticker", V2_TICKER, symbol=pair), UNKNOWN_SYMBOL)


def test_with_a_market_list_only_listed_pairs_are_known():
    # The market list holds v2 names (BTC/USD); the v1 spelling XBT/USD finds the same market.
    parser = KrakenParser(SymbolTable([("BTC/USD", "XBT", "USD")]))
    assert [t.symbol for t in parser.parse(v1_ticker(pair="XBT/USD"), RECV_NS)] == ["BTC/USD"]
    assert [t.symbol for t in parser.parse(v2("ticker", V2_TICKER), RECV_NS)] == ["BTC/USD"]
    assert parser.parse(v1_ticker(pair="XMR/USD"), RECV_NS) == []
    assert parser.parse(v2("trade", V2_TRADE, symbol="ETH/USD"), RECV_NS) == []
    assert parser.stats.dropped[UNKNOWN_SYMBOL] == 2


@pytest.mark.parametrize(
    "bad_time",
    ["", "yesterday", "1618678142,5", "-1618678142.5", "+1618678142", " 1618678142", "1618678142.5x", "١٦١٨", 1.6e9],
)
def test_v1_trade_with_a_time_that_is_not_epoch_seconds(bad_time):
    assert_dropped(KrakenParser(), v1_trade(["354.11", "0.5", bad_time, "s", "l", ""]), BAD_TIMESTAMP)


@pytest.mark.parametrize(
    "bad_time",
    ["", "2021-04-17", "2021-04-17 16:49:02Z", "2021-04-17T25:49:02Z", "2021-02-30T16:49:02Z",
     "2021-04-17T16:49:02+00:00", "2021-04-17T16:49:02.Z", 1618678142557],
)  # fmt: skip
def test_v2_time_that_is_not_rfc3339_utc(bad_time):
    assert_dropped(KrakenParser(), v2("trade", V2_TRADE, timestamp=bad_time), BAD_TIMESTAMP)
    assert_dropped(KrakenParser(), v2("ticker", V2_TICKER, timestamp=bad_time), BAD_TIMESTAMP)


def test_stale_frames_beyond_60_s():
    old_s, old_iso = "1618678080.000000", "2021-04-17T16:48:00.000000Z"  # 62.6 s before the receive time
    assert_dropped(KrakenParser(max_age_ms=60_000), v1_trade(["354.11", "0.5", old_s, "s", "l", ""]), STALE)
    assert_dropped(KrakenParser(max_age_ms=60_000), v2("trade", V2_TRADE, timestamp=old_iso), STALE)
    assert_dropped(KrakenParser(max_age_ms=60_000), v2("ticker", V2_TICKER, timestamp=old_iso), STALE)
    # Without the clock check the same frames are good.
    assert len(KrakenParser(max_age_ms=None).parse(v2("trade", V2_TRADE, timestamp=old_iso), RECV_NS)) == 1


def test_a_book_update_with_old_level_times_gives_a_stale_quote_but_keeps_the_book():
    parser = KrakenParser(max_age_ms=60_000)
    assert len(parser.parse(dumps([1, SNAPSHOT, "book-10", "XBT/USD"]), RECV_NS)) == 1
    # Ask 100.55 replaces the top; checksum of asks [100.55 x 1.0, 100.6 x 2.5] then bids [100.5 x 1.5].
    import zlib

    checksum = zlib.crc32(b"1005510" + b"100625" + b"100515")
    update = dumps([1, {"a": [["100.55", "1.0", "1618678000.000000"]], "c": str(checksum)}, "book-10", "XBT/USD"])
    assert parser.parse(update, RECV_NS) == []
    assert parser.stats.dropped == {reason: 0 for reason in parser.stats.dropped} | {STALE: 1}
    assert parser.books_awaiting_snapshot() == []  # the book itself is good


def test_a_book_update_with_a_wrong_checksum_is_a_gap():
    parser = KrakenParser()
    assert len(parser.parse(dumps([1, SNAPSHOT, "book-10", "XBT/USD"]), RECV_NS)) == 1
    update = dumps([1, {"a": [["100.55", "1.0", TIME_S]], "c": "12345"}, "book-10", "XBT/USD"])
    assert parser.parse(update, RECV_NS) == [lost("kraken", "BTC/USD", RECV_NS)]  # the book sent is gone
    assert parser.stats.dropped[BOOK_GAP] == 1
    assert parser.books_awaiting_snapshot() == ["XBT/USD"]


@pytest.mark.parametrize("checksum", [None, 12345, "", "-1", "1e5", "9" * 5000])
def test_a_book_update_without_a_checksum_drops_the_book(checksum):
    parser = KrakenParser()
    assert len(parser.parse(dumps([1, SNAPSHOT, "book-10", "XBT/USD"]), RECV_NS)) == 1
    part: dict[str, object] = {"a": [["100.55", "1.0", TIME_S]]}
    if checksum is not None:
        part["c"] = checksum
    assert parser.parse(dumps([1, part, "book-10", "XBT/USD"]), RECV_NS) == [lost("kraken", "BTC/USD", RECV_NS)]
    assert parser.stats.dropped[MISSING_FIELD] == 1
    assert parser.books_awaiting_snapshot() == ["XBT/USD"]


def test_exchange_errors_are_control_frames_an_operator_sees():
    parser = KrakenParser()
    errors = [
        '{"errorMessage":"Currency pair not supported","event":"subscriptionStatus","status":"error"}',
        '{"event":"error","errorMessage":"Malformed request"}',
        '{"error":"Currency pair not supported BTC/XYZ","method":"subscribe","success":false}',
        '{"error":"Unsupported field"}',
    ]
    for frame in errors:
        assert parser.parse(frame, RECV_NS) == []
    assert parser.stats.as_dict()["control"] == {"error": len(errors)}
