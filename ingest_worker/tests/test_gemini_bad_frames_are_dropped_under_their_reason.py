"""Bad Gemini frames give no tick and are counted once, under the reason that says what was wrong;
a book that missed a frame is dropped and its updates count as `book_gap` until the next snapshot.
A frame that drops a book a book tick was sent of gives that market's book-lost tick, and nothing else."""

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
from ingest_worker.venues.gemini import GeminiParser

RECV_NS = 1_618_677_942_700_000_000  # 2021-04-17T16:45:42.7Z
RECV_MS = RECV_NS // 1_000_000

SNAPSHOT: dict[str, object] = {
    "type": "l2_updates",
    "symbol": "BTCUSD",
    "changes": [["buy", "100.5", "1.5"], ["buy", "100.4", "3"], ["sell", "100.6", "2.5"], ["sell", "100.7", "4"]],
    "trades": [{"type": "trade", "symbol": "BTCUSD", "event_id": 1, "timestamp": RECV_MS - 3_600_000,
                "price": "99", "quantity": "1", "side": "buy"}],
    "auction_events": [],
}  # fmt: skip
UPDATE: dict[str, object] = {"type": "l2_updates", "symbol": "BTCUSD", "changes": [["buy", "100.55", "0.5"]]}
TRADE: dict[str, object] = {
    "type": "trade",
    "symbol": "BTCUSD",
    "event_id": 7,
    "timestamp": RECV_MS - 50,
    "price": "100.5",
    "quantity": "0.25",
    "side": "buy",
}

BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1", "", "abc", "1,5", "0x10"]
BAD_PRICES = [*BAD_NUMBERS, "0", "0.0", "-0", "1e10", -1, 0, 0.5e10 * 2, True, False, None, [1], {"v": 1}]
# A level's quantity 0 removes the level: only negative, non-finite or non-numbers are bad.
BAD_LEVEL_SIZES = [*BAD_NUMBERS, "1e15", -0.5, 1e15, True, None, [1], {"v": 1}]
BAD_TRADE_SIZES = [*BAD_LEVEL_SIZES, "0", "0.0", 0]


def frame(base: dict[str, object], /, **changes: object) -> str:
    obj = {key: value for key, value in (base | changes).items() if value is not ...}  # ... removes a key
    return json.dumps(obj, separators=(",", ":"))


def stats(parser: GeminiParser) -> dict[str, object]:
    return parser.stats.as_dict()


def assert_dropped(
    parser: GeminiParser, frame_: str | bytes, reason: str, recv_ns: int = RECV_NS, *, book_lost: bool = False
) -> None:
    """`frame_` is dropped under `reason`: no tick, or with `book_lost` (it drops the book sent of
    BTC/USD) that market's book-lost tick alone."""
    expected = [lost("gemini", "BTC/USD", recv_ns)] if book_lost else []
    before = stats(parser)
    lost_before = parser.stats.books_lost
    assert parser.parse(frame_, recv_ns) == expected
    after = stats(parser)
    dropped_before: dict[str, int] = before["dropped"]  # type: ignore[assignment]
    assert after["dropped"] == dropped_before | {reason: dropped_before.get(reason, 0) + 1}, frame_
    assert (after["control"], after["ignored"], after["ticks"]) == (
        before["control"],
        before["ignored"],
        before["ticks"] + len(expected),  # type: ignore[operator]
    )
    assert parser.stats.books_lost == lost_before + len(expected)


def with_snapshot(depth: int = 20) -> GeminiParser:
    parser = GeminiParser(depth_levels=depth)
    assert len(parser.parse(frame(SNAPSHOT), RECV_NS)) == 1
    return parser


def test_the_good_frames_these_tests_break_are_good():
    parser = GeminiParser()
    [quote] = parser.parse(frame(SNAPSHOT), RECV_NS)
    assert (quote.symbol, quote.bid, quote.bid_size, quote.ask, quote.ask_size, quote.timestamp) == (
        "BTC/USD", 100.5, 1.5, 100.6, 2.5, RECV_MS,
    )  # fmt: skip
    [quote] = parser.parse(frame(UPDATE), RECV_NS)
    assert (quote.bid, quote.bid_size, quote.ask) == (100.55, 0.5, 100.6)
    [trade] = parser.parse(frame(TRADE), RECV_NS)
    assert (trade.type, trade.price, trade.volume, trade.timestamp) == ("trade", 100.5, 0.25, RECV_MS - 50)
    # The snapshot's trades are history: no trade tick came from them.
    assert stats(parser) == {"frames": 3, "ticks": 3, "control": {}, "ignored": {}, "dropped": {}}


@pytest.mark.parametrize("bad", ["", " ", "{", '{"type":"trade",', "not json", "[1,2", '{"a":1}}', "{'a': 1}", "\x00"])
def test_malformed_json(bad):
    assert_dropped(GeminiParser(), bad, MALFORMED_JSON)
    assert_dropped(GeminiParser(), bad.encode(), MALFORMED_JSON)


@pytest.mark.parametrize("token", ["NaN", "-NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_json_numbers_make_the_frame_malformed(token):
    assert_dropped(GeminiParser(), frame(TRADE).replace('"100.5"', token, 1), MALFORMED_JSON)
    assert_dropped(GeminiParser(), frame(SNAPSHOT).replace('"100.5"', token, 1), MALFORMED_JSON)


@pytest.mark.parametrize(
    "bad",
    [b"\xff\xfe", b'{"type":"trade","symbol":"BTC\xffUSD"}', b'{"type":"l2_updates","symbol":"\xed\xa0\x80"}'],
)
def test_bytes_that_are_not_utf8(bad):
    assert_dropped(GeminiParser(), bad, MALFORMED_JSON)


@pytest.mark.parametrize("key", ["symbol", "price", "quantity", "timestamp"])
def test_trade_missing_a_field(key):
    assert_dropped(GeminiParser(), frame(TRADE, **{key: ...}), MISSING_FIELD)


@pytest.mark.parametrize("timestamp", ["1618677942650", 1.6e12, True, [1]])
def test_trade_whose_timestamp_is_not_an_integer(timestamp):
    assert_dropped(GeminiParser(), frame(TRADE, timestamp=timestamp), BAD_TIMESTAMP)


@pytest.mark.parametrize("value", BAD_PRICES)
def test_bad_trade_price(value):
    assert_dropped(GeminiParser(), frame(TRADE, price=value), BAD_PRICE if value is not None else MISSING_FIELD)


@pytest.mark.parametrize("value", BAD_TRADE_SIZES)
def test_bad_trade_size(value):
    assert_dropped(GeminiParser(), frame(TRADE, quantity=value), BAD_SIZE if value is not None else MISSING_FIELD)


@pytest.mark.parametrize("age_ms", [60_001, -60_001, 3_600_000])
def test_stale_trades_are_dropped_with_the_clock_check(age_ms):
    late = frame(TRADE, timestamp=RECV_MS - age_ms)
    assert_dropped(GeminiParser(max_age_ms=60_000), late, STALE)
    assert len(GeminiParser(max_age_ms=None).parse(late, RECV_NS)) == 1


def test_quotes_carry_the_receive_time_so_they_are_never_stale():
    [quote] = GeminiParser(max_age_ms=60_000).parse(frame(SNAPSHOT), RECV_NS + 10**15)
    assert quote.timestamp == (RECV_NS + 10**15) // 1_000_000


@pytest.mark.parametrize("key", ["symbol", "changes"])
def test_l2_updates_missing_a_field(key):
    assert_dropped(GeminiParser(), frame(SNAPSHOT, **{key: ...}), MISSING_FIELD)


@pytest.mark.parametrize(
    "change", [["buy", "100.5"], ["buy", "100.5", "1", "x"], "buy 100.5 1", {"side": "buy"}, ["bid", "100.5", "1"]]
)
def test_l2_level_that_is_not_side_price_quantity(change):
    assert_dropped(GeminiParser(), frame(SNAPSHOT, changes=[change]), MISSING_FIELD)


@pytest.mark.parametrize("value", BAD_PRICES)
def test_bad_level_price(value):
    assert_dropped(GeminiParser(), frame(SNAPSHOT, changes=[["buy", value, "1"], ["sell", "101", "1"]]), BAD_PRICE)
    assert_dropped(with_snapshot(), frame(UPDATE, changes=[["sell", value, "1"]]), BAD_PRICE, book_lost=True)


@pytest.mark.parametrize("value", BAD_LEVEL_SIZES)
def test_bad_level_quantity(value):
    assert_dropped(GeminiParser(), frame(SNAPSHOT, changes=[["buy", "100", value], ["sell", "101", "1"]]), BAD_SIZE)
    assert_dropped(with_snapshot(), frame(UPDATE, changes=[["buy", "100.1", value]]), BAD_SIZE, book_lost=True)


@pytest.mark.parametrize(("bid", "ask"), [("100.7", "100.6"), ("100.6", "100.6"), ("100.60", "100.6")])
def test_crossed_or_locked_books(bid, ask):
    # A crossed snapshot cannot be a book of resting orders: dropped, and a fresh one asked for (no
    # book of it was sent: none is lost).
    parser = GeminiParser()
    assert_dropped(parser, frame(SNAPSHOT, changes=[["buy", bid, "1"], ["sell", ask, "1"]]), CROSSED_BOOK)
    assert not parser.has_book("BTCUSD")
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTCUSD"}
    # An update that crosses the kept book: resting orders never cross, so the book missed an update.
    parser = with_snapshot()
    assert_dropped(parser, frame(UPDATE, changes=[["buy", "100.6", "1"]]), BOOK_GAP, book_lost=True)
    assert not parser.has_book("BTCUSD")
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTCUSD"}


@pytest.mark.parametrize(
    "name", ["BTCUSDPERP", "BTCGUSDPERP", "USD", "", "BTC/USD", "BTC-USD", "FOOBAR", 42, ["BTCUSD"]]
)
def test_unknown_symbols(name):
    assert_dropped(GeminiParser(), frame(SNAPSHOT, symbol=name), UNKNOWN_SYMBOL)
    assert_dropped(GeminiParser(), frame(TRADE, symbol=name), UNKNOWN_SYMBOL)


@pytest.mark.parametrize(
    "bad", ["[]", "1", "null", "{}", '{"type":"unheardOf"}', '{"type":5}', '{"type":null}', '{"result":"ok"}']
)
def test_unknown_messages(bad):
    assert_dropped(GeminiParser(), bad, UNKNOWN_MESSAGE)


def test_a_bad_update_drops_the_book_until_the_next_snapshot():
    parser = with_snapshot()
    bad = frame(UPDATE, changes=[["buy", "100.1", "1"], ["sell", "nan", "1"]])
    assert_dropped(parser, bad, BAD_PRICE, book_lost=True)
    assert not parser.has_book("BTCUSD")
    assert parser.awaiting_snapshot() == {"BTCUSD"}
    # The book missed a frame: no quote from it (and the engine was told once it is gone).
    assert_dropped(parser, frame(UPDATE), BOOK_GAP)
    assert_dropped(parser, frame(UPDATE, changes=[["sell", "100.65", "1"]]), BOOK_GAP)
    # Another symbol's book is not affected.
    assert len(parser.parse(frame(SNAPSHOT, symbol="ETHBTC"), RECV_NS)) == 1
    # A new subscription's snapshot (it carries the recent trades) starts the book again.
    [quote] = parser.parse(frame(SNAPSHOT), RECV_NS)
    assert (quote.bid, quote.ask) == (100.5, 100.6)
    assert parser.awaiting_snapshot() == set()
    assert len(parser.parse(frame(UPDATE), RECV_NS)) == 1
    # On a new connection the first l2_updates of a symbol is its snapshot, trades or not.
    parser.reset()
    [quote] = parser.parse(frame(SNAPSHOT, trades=..., auction_events=...), RECV_NS)
    assert (quote.bid, quote.ask) == (100.5, 100.6)


def test_a_bad_snapshot_makes_no_book():
    parser = GeminiParser()
    assert_dropped(parser, frame(SNAPSHOT, changes=[["buy", "100", "1"], ["sell", "-1", "1"]]), BAD_PRICE)
    assert not parser.has_book("BTCUSD")
    # The next update is not taken for the snapshot: it would make a book of one level.
    assert_dropped(parser, frame(UPDATE), BOOK_GAP)
    assert len(parser.parse(frame(SNAPSHOT), RECV_NS)) == 1


def test_book_updates_that_leave_the_top_levels_alone_are_counted_ignored():
    parser = with_snapshot(depth=1)
    # A level below the top, and the removal of a level that is not there.
    assert parser.parse(frame(UPDATE, changes=[["buy", "99", "1"], ["sell", "100.8", "0"]]), RECV_NS) == []
    assert stats(parser)["ignored"] == {"book_unchanged": 1}
    # Removing the best ask moves the top to the next level.
    [quote] = parser.parse(frame(UPDATE, changes=[["sell", "100.6", "0"]]), RECV_NS)
    assert (quote.ask, quote.ask_size) == (100.7, 4.0)
    # A size change at the top is a top change.
    [quote] = parser.parse(frame(UPDATE, changes=[["buy", "100.5", "2"]]), RECV_NS)
    assert quote.bid_size == 2.0


def test_a_book_with_an_empty_side_gives_no_quote():
    parser = GeminiParser()
    assert parser.parse(frame(SNAPSHOT, changes=[["buy", "100", "1"]]), RECV_NS) == []
    assert stats(parser)["ignored"] == {"one_sided_book": 1}
    [quote] = parser.parse(frame(UPDATE, changes=[["sell", "101", "1"]]), RECV_NS)
    assert (quote.bid, quote.ask) == (100.0, 101.0)


def test_control_error_and_ignored_frames():
    parser = GeminiParser()
    assert parser.parse('{"type":"heartbeat","timestamp":1618677942928}', RECV_NS) == []
    assert parser.parse('{"result":"error","reason":"InvalidJson","message":"bad"}', RECV_NS) == []
    assert parser.parse('{"type":"candles_1m_updates","symbol":"BTCUSD","changes":[]}', RECV_NS) == []
    assert stats(parser) == {
        "frames": 3,
        "ticks": 0,
        "control": {"error": 1, "heartbeat": 1},
        "ignored": {"candles_1m_updates": 1},
        "dropped": {},
    }
