"""Bad Bitstamp frames give no tick and are counted once, under the reason that says what was wrong;
one that drops a book a book tick was sent of gives that market's book-lost tick, and nothing else.

Also: control events, ignored channels, the live `order_book` channel (a book tick only when
its top levels change), and the diff book dropped on a gap until the next snapshot.
"""

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
from ingest_worker.venues.bitstamp import BitstampParser
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import Tick

RECV_NS = 1_641_343_697_403_365_900  # 2022-01-05T00:48:17.403Z
RECV_US = RECV_NS // 1000
RECV_MS = RECV_NS // 1_000_000

TRADE_DATA: dict[str, object] = {
    "amount": 0.25,
    "price": 100.5,
    "microtimestamp": str(RECV_US - 5_000),
    "timestamp": "1",
    "id": 7,
}
TRADE: dict[str, object] = {"channel": "live_trades_btcusd", "event": "trade", "data": TRADE_DATA}
BOOK_DATA: dict[str, object] = {
    "timestamp": str(RECV_US // 1_000_000),
    "microtimestamp": str(RECV_US - 2_000),
    "bids": [["100.5", "1.5"], ["100.4", "3"]],
    "asks": [["100.6", "2.5"], ["100.7", "1"]],
}
BOOK: dict[str, object] = {"channel": "order_book_btcusd", "event": "data", "data": BOOK_DATA}
SNAPSHOT: dict[str, object] = {
    "microtimestamp": str(RECV_US - 10_000),
    "bids": [["100.5", "1.5"]],
    "asks": [["100.6", "2.5"]],
}
DIFF_DATA: dict[str, object] = {"microtimestamp": str(RECV_US - 1_000), "bids": [["100.55", "1"]], "asks": []}
DIFF: dict[str, object] = {"channel": "diff_order_book_btcusd", "event": "data", "data": DIFF_DATA}

# Bad numbers as JSON strings and as other JSON values (as in the other venues' test).
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1", "0", "0.0", "-0", "", "abc", "1,5", "0x10"]
BAD_PRICES = [*BAD_NUMBERS, "1e10", -1, 0, 0.0, -0.5, 1e10, 10**16, True, False, [1], {"v": 1}]
BAD_SIZES = [*BAD_NUMBERS, "1e15", -1, 0, 0.0, -0.5, 1e15, 10**16, True, False, [1], {"v": 1}]


def frame(base: dict[str, object], **data_changes: object) -> str:
    """`base` with fields of its `data` changed (`...` removes one)."""
    data = {k: v for k, v in (base["data"] | data_changes).items() if v is not ...}  # type: ignore[operator]
    return json.dumps(base | {"data": data}, separators=(",", ":"))


def seeded() -> BitstampParser:
    parser = BitstampParser()
    assert len(parser.load_snapshot("btcusd", json.dumps(SNAPSHOT), RECV_NS)) == 1
    parser.stats.__init__()  # type: ignore[misc]  # count only what the test sends next
    return parser


def outcome(parser: BitstampParser) -> dict[str, object]:
    return parser.stats.as_dict()


def assert_dropped(parser: BitstampParser, frame_: str | bytes, reason: str, *, book_lost: bool = False) -> None:
    """`frame_` is dropped under `reason`: no tick, or with `book_lost` (it drops the book sent of
    BTC/USD) that market's book-lost tick alone."""
    expected = [lost("bitstamp", "BTC/USD", RECV_NS)] if book_lost else []
    assert parser.parse(frame_, RECV_NS) == expected
    ticks = len(expected)
    assert outcome(parser) == {"frames": 1, "ticks": ticks, "control": {}, "ignored": {}, "dropped": {reason: 1}}, (
        frame_
    )
    assert parser.stats.books() == {"ticks": 0, "clock_skewed": 0, "lost": ticks}


def test_the_good_frames_these_tests_break_are_good():
    (trade,) = BitstampParser().parse(frame(TRADE), RECV_NS)
    assert trade == Tick("bitstamp", "BTC/USD", "trade", 100.5, 0.25, None, None, None, None, RECV_MS - 5, RECV_NS)
    (book,) = BitstampParser().parse(frame(BOOK), RECV_NS)
    assert book == Tick(
        "bitstamp", "BTC/USD", "book", (100.5 + 100.6) / 2, 0.0, 100.5, 100.6, 1.5, 2.5, RECV_MS - 2, RECV_NS,
        [[100.5, 1.5], [100.4, 3.0]], [[100.6, 2.5], [100.7, 1.0]],
    )  # fmt: skip
    parser = seeded()
    (book,) = parser.parse(frame(DIFF), RECV_NS)
    assert book == Tick(
        "bitstamp", "BTC/USD", "book", (100.55 + 100.6) / 2, 0.0, 100.55, 100.6, 1.0, 2.5, RECV_MS - 1, RECV_NS,
        [[100.55, 1.0], [100.5, 1.5]], [[100.6, 2.5]],
    )  # fmt: skip


@pytest.mark.parametrize("bad", ["", " ", "{", '{"event":"trade",', "not json", "[1,2", '{"a":1}}', "{'a': 1}", "\x00"])
def test_malformed_json(bad):
    assert_dropped(BitstampParser(), bad, MALFORMED_JSON)
    assert_dropped(BitstampParser(), bad.encode(), MALFORMED_JSON)
    parser = BitstampParser()
    assert parser.load_snapshot("btcusd", bad, RECV_NS) == []
    assert outcome(parser)["dropped"] == {MALFORMED_JSON: 1}


@pytest.mark.parametrize(
    "bad",
    [
        "[]",
        "1",
        '"x"',
        "null",
        "{}",
        '{"event":"nope","channel":"live_trades_btcusd","data":{}}',
        '{"event":"data","channel":"live_trades_btcusd","data":{}}',  # a trade channel with a book event
        '{"event":"trade","channel":"order_book_btcusd","data":{}}',
        '{"event":"data","channel":"candles_btcusd","data":{}}',
        '{"event":"trade","data":{}}',
        '{"event":1,"channel":"live_trades_btcusd"}',
    ],
)
def test_unknown_messages(bad):
    assert_dropped(BitstampParser(), bad, UNKNOWN_MESSAGE)


@pytest.mark.parametrize(
    ("base", "field"),
    [(TRADE, "price"), (TRADE, "amount"), (BOOK, "bids"), (BOOK, "asks"), (DIFF, "bids"), (DIFF, "asks")],
)
def test_missing_fields(base, field):
    parser = seeded()
    # A book frame without a side drops the book of its market, which the seeded snapshot sent.
    assert_dropped(parser, frame(base, **{field: ...}), MISSING_FIELD, book_lost=base is not TRADE)


@pytest.mark.parametrize("base", [TRADE, BOOK, DIFF])
def test_missing_data(base):
    parser = seeded()
    assert_dropped(parser, json.dumps({k: v for k, v in base.items() if k != "data"}), MISSING_FIELD)


def test_order_book_levels_that_are_not_pairs_are_missing_fields():
    assert_dropped(BitstampParser(), frame(BOOK, bids=[["100.5"]]), MISSING_FIELD)
    assert_dropped(BitstampParser(), frame(BOOK, asks=["100.6"]), MISSING_FIELD)


@pytest.mark.parametrize("bad", BAD_PRICES)
def test_bad_prices(bad):
    assert_dropped(BitstampParser(), frame(TRADE, price=bad), BAD_PRICE)
    assert_dropped(BitstampParser(), frame(BOOK, bids=[[bad, "1"]]), BAD_PRICE)
    assert_dropped(BitstampParser(), frame(BOOK, asks=[[bad, "1"]]), BAD_PRICE)
    assert_dropped(seeded(), frame(DIFF, bids=[[bad, "1"]]), BAD_PRICE, book_lost=True)
    parser = BitstampParser()
    assert parser.load_snapshot("btcusd", json.dumps(SNAPSHOT | {"asks": [[bad, "1"]]}), RECV_NS) == []
    assert outcome(parser)["dropped"] == {BAD_PRICE: 1}


@pytest.mark.parametrize("bad", [*BAD_SIZES, None])
def test_bad_book_sizes(bad):
    assert_dropped(BitstampParser(), frame(BOOK, bids=[["100.5", bad]]), BAD_SIZE)
    assert_dropped(BitstampParser(), frame(BOOK, asks=[["100.6", bad]]), BAD_SIZE)
    if bad not in ("0", "0.0", "-0", 0, 0.0):  # in a diff, amount 0 removes the level
        assert_dropped(seeded(), frame(DIFF, bids=[["100.5", bad]]), BAD_SIZE, book_lost=True)
    parser = BitstampParser()
    assert parser.load_snapshot("btcusd", json.dumps(SNAPSHOT | {"bids": [["100.5", bad]]}), RECV_NS) == []
    assert outcome(parser)["dropped"] == {BAD_SIZE: 1}


@pytest.mark.parametrize("bad", BAD_SIZES)
def test_bad_sizes(bad):
    assert_dropped(BitstampParser(), frame(TRADE, amount=bad), BAD_SIZE)
    assert_dropped(BitstampParser(), frame(BOOK, bids=[["100.5", bad]]), BAD_SIZE)
    assert_dropped(BitstampParser(), frame(BOOK, asks=[["100.6", bad]]), BAD_SIZE)


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "1e15", "abc", True, None])
def test_bad_diff_amounts_drop_the_book(bad):
    parser = seeded()
    assert_dropped(parser, frame(DIFF, asks=[["100.7", bad]]), BAD_SIZE, book_lost=True)
    assert parser.awaiting_snapshot() == {"btcusd"}


def test_a_zero_amount_removes_a_diff_level_but_is_no_snapshot_level():
    parser = seeded()
    (quote,) = parser.parse(frame(DIFF, bids=[["100.5", "0"], ["100.4", "2"]]), RECV_NS)
    assert (quote.bid, quote.bid_size) == (100.4, 2.0)
    parser = BitstampParser()
    assert parser.load_snapshot("btcusd", json.dumps(SNAPSHOT | {"bids": [["100.5", "0"]]}), RECV_NS) == []
    assert outcome(parser)["dropped"] == {BAD_SIZE: 1}


def test_crossed_books():
    assert_dropped(BitstampParser(), frame(BOOK, bids=[["100.6", "1"]]), CROSSED_BOOK)
    assert_dropped(BitstampParser(), frame(BOOK, bids=[["100.7", "1"]]), CROSSED_BOOK)
    parser = BitstampParser()
    assert parser.load_snapshot("btcusd", json.dumps(SNAPSHOT | {"bids": [["100.6", "1"]]}), RECV_NS) == []
    assert outcome(parser)["dropped"] == {CROSSED_BOOK: 1}
    assert parser.awaiting_snapshot() == {"btcusd"}  # a crossed snapshot seeds nothing


def test_a_diff_that_crosses_the_book_is_a_gap_and_the_book_waits_for_the_next_snapshot():
    parser = seeded()
    assert_dropped(parser, frame(DIFF, bids=[["100.6", "1"]]), BOOK_GAP, book_lost=True)
    assert parser.awaiting_snapshot() == parser.resync_needed == {"btcusd"}
    parser.resync_needed.clear()  # the request was taken
    assert parser.parse(frame(DIFF, microtimestamp=str(RECV_US)), RECV_NS) == []  # the engine was told once
    assert outcome(parser)["dropped"] == {BOOK_GAP: 2}
    assert parser.stats.books_lost == 1
    assert parser.resync_needed == set()  # asked once per loss
    assert len(parser.load_snapshot("btcusd", json.dumps(SNAPSHOT), RECV_NS)) == 1
    assert parser.awaiting_snapshot() == set()
    assert len(parser.parse(frame(DIFF), RECV_NS)) == 1


def test_a_diff_older_than_the_last_applied_one_is_a_gap():
    parser = seeded()
    assert len(parser.parse(frame(DIFF), RECV_NS)) == 1
    earlier = str(int(DIFF_DATA["microtimestamp"]) - 1)  # type: ignore[call-overload]
    parser.stats.__init__()  # type: ignore[misc]
    assert_dropped(parser, frame(DIFF, microtimestamp=earlier, bids=[["100.45", "1"]]), BOOK_GAP, book_lost=True)
    assert parser.awaiting_snapshot() == {"btcusd"}


def test_diffs_at_or_before_the_snapshot_are_skipped():
    parser = seeded()
    for micros in (SNAPSHOT["microtimestamp"], str(int(SNAPSHOT["microtimestamp"]) - 1)):  # type: ignore[call-overload]
        assert parser.parse(frame(DIFF, microtimestamp=micros), RECV_NS) == []
    assert outcome(parser)["ignored"] == {"older_than_snapshot": 2}


@pytest.mark.parametrize("pair", ["xyzabc", "BTCUSD", "btc-usd", "usd", "", "btcusd\u00e9"])
def test_unknown_symbols(pair):
    assert_dropped(BitstampParser(), json.dumps(TRADE | {"channel": f"live_trades_{pair}"}), UNKNOWN_SYMBOL)
    assert_dropped(BitstampParser(), json.dumps(BOOK | {"channel": f"order_book_{pair}"}), UNKNOWN_SYMBOL)
    parser = BitstampParser()
    assert parser.load_snapshot(pair, json.dumps(SNAPSHOT), RECV_NS) == []
    assert outcome(parser)["dropped"] == {UNKNOWN_SYMBOL: 1}


def test_with_a_market_list_only_listed_pairs_are_known():
    listed = SymbolTable([("btcusd", "BTC", "USD")])
    assert len(BitstampParser(listed).parse(frame(TRADE), RECV_NS)) == 1
    assert_dropped(BitstampParser(listed), json.dumps(TRADE | {"channel": "live_trades_ethusd"}), UNKNOWN_SYMBOL)


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "", " 1", "1" * 19, -1, 1.5, True, [1]])
def test_bad_timestamps(bad):
    assert_dropped(BitstampParser(), frame(TRADE, microtimestamp=bad), BAD_TIMESTAMP)
    assert_dropped(BitstampParser(), frame(BOOK, microtimestamp=bad), BAD_TIMESTAMP)
    assert_dropped(seeded(), frame(DIFF, microtimestamp=bad), BAD_TIMESTAMP, book_lost=True)


def test_the_seconds_timestamp_stands_in_for_a_missing_microtimestamp_then_the_receive_time():
    (trade,) = BitstampParser().parse(frame(TRADE, microtimestamp=..., timestamp=str(RECV_MS // 1000)), RECV_NS)
    assert trade.timestamp == RECV_MS // 1000 * 1000
    (trade,) = BitstampParser().parse(frame(TRADE, microtimestamp=..., timestamp=...), RECV_NS)
    assert trade.timestamp == RECV_MS
    # A diff must be placed in time: one that cannot be loses the book.
    assert_dropped(seeded(), frame(DIFF, microtimestamp=...), MISSING_FIELD, book_lost=True)


@pytest.mark.parametrize("age_ms", [60_001, -60_001, 3_600_000])
def test_stale_frames(age_ms):
    micros = str(RECV_US - age_ms * 1000)
    assert_dropped(BitstampParser(), frame(TRADE, microtimestamp=micros), STALE)
    assert_dropped(BitstampParser(max_age_ms=60_000), frame(BOOK, microtimestamp=micros), STALE)
    assert len(BitstampParser(max_age_ms=None).parse(frame(TRADE, microtimestamp=micros), RECV_NS)) == 1


def test_fresh_frames_within_60_s_pass():
    micros = str(RECV_US - 59_999_000)
    assert len(BitstampParser().parse(frame(TRADE, microtimestamp=micros), RECV_NS)) == 1
    assert len(BitstampParser().parse(frame(BOOK, microtimestamp=micros), RECV_NS)) == 1


def test_control_events_and_errors_are_counted_as_control():
    parser = BitstampParser()
    for text in [
        '{"event":"bts:subscription_succeeded","channel":"order_book_btcusd","data":{}}',
        '{"event":"bts:unsubscription_succeeded","channel":"order_book_btcusd","data":{}}',
        '{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}',
        '{"event":"bts:request_reconnect","channel":"","data":""}',
        '{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription string."}}',
    ]:
        assert parser.parse(text, RECV_NS) == []
    assert outcome(parser) == {
        "frames": 5,
        "ticks": 0,
        "control": {
            "bts:heartbeat": 1,
            "bts:request_reconnect": 1,
            "bts:subscription_succeeded": 1,
            "bts:unsubscription_succeeded": 1,
            "error": 1,
        },
        "ignored": {},
        "dropped": {},
    }


def test_channels_we_do_not_use_are_ignored():
    parser = BitstampParser()
    for channel, event in [
        ("live_orders_btcusd", "order_created"),
        ("detail_order_book_btcusd", "data"),
        ("full_order_book_btcusd", "data"),
    ]:
        assert parser.parse(json.dumps({"event": event, "channel": channel, "data": {}}), RECV_NS) == []
    assert outcome(parser)["ignored"] == {"detail_order_book": 1, "full_order_book": 1, "live_orders": 1}


def test_the_live_order_book_gives_a_book_tick_only_when_its_top_levels_change():
    parser = BitstampParser(depth_levels=1)
    assert len(parser.parse(frame(BOOK), RECV_NS)) == 1
    deeper = [["100.5", "1.5"], ["100.3", "9"]]
    assert parser.parse(frame(BOOK, bids=deeper), RECV_NS) == []  # only below the top level
    (quote,) = parser.parse(frame(BOOK, bids=[["100.5", "1.6"]]), RECV_NS)  # the best bid's size
    assert quote.bid_size == 1.6
    (quote,) = parser.parse(frame(BOOK, bids=[["100.5", "1.6"]], asks=[["100.65", "2.5"]]), RECV_NS)
    assert quote.ask == 100.65
    assert parser.parse(frame(BOOK, bids=[]), RECV_NS) == []  # one side empty: no quote
    assert len(parser.parse(frame(BOOK, bids=[["100.5", "1.6"]], asks=[["100.65", "2.5"]]), RECV_NS)) == 1
    assert outcome(parser) == {
        "frames": 6,
        "ticks": 4,
        "control": {},
        "ignored": {"book_unchanged": 1, "one_sided_book": 1},
        "dropped": {},
    }


def test_a_diff_below_the_top_levels_gives_no_tick_and_removing_the_best_level_does():
    parser = BitstampParser(depth_levels=1)
    assert len(parser.load_snapshot("btcusd", json.dumps(SNAPSHOT), RECV_NS)) == 1
    parser.stats.__init__()  # type: ignore[misc]
    assert parser.parse(frame(DIFF, bids=[["100.1", "4"]]), RECV_NS) == []
    (quote,) = parser.parse(frame(DIFF, microtimestamp=str(RECV_US), bids=[["100.5", "0"]]), RECV_NS)
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (100.1, 4.0, 100.6, 2.5)
    assert outcome(parser)["ignored"] == {"book_unchanged": 1}


def test_reset_books_makes_every_diff_book_wait_for_a_snapshot():
    parser = seeded()
    parser.reset_books()
    assert parser.parse(frame(DIFF), RECV_NS) == []
    assert parser.awaiting_snapshot() == {"btcusd"}
