"""Binance partial depth (`<symbol>@depth<N>[@100ms]`): each frame is the whole top N and
replaces the market's book. The recordings hold none, so the frames are made here, after
Binance's documented payload. A raw frame names no market: only a parser told its
connection's stream takes it; snapshots and diffs made by hand check the rest of the rules.
"""

from __future__ import annotations

import json

import pytest

from ingest_worker.tests.recorded import lost
from ingest_worker.venues import binance
from ingest_worker.venues.base import BAD_PRICE, BAD_SIZE, BOOK_GAP, CROSSED_BOOK, MISSING_FIELD, UNKNOWN_SYMBOL
from ingest_worker.venues.binance import BinanceParser

RECV_NS = 1_723_161_254_000_000_000
BIDS = [["61837.63", "1.5"], ["61837.00", "2"], ["61830.10", "0.25"]]
ASKS = [["61837.64", "0.5"], ["61838.00", "3"], ["61840.00", "1"]]
URL = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"


def partial(bids: list[list[str]], asks: list[list[str]], update_id: int = 100) -> dict[str, object]:
    return {"lastUpdateId": update_id, "bids": bids, "asks": asks}


def combined(data: object, stream: str = "btcusdt@depth20@100ms") -> str:
    return json.dumps({"stream": stream, "data": data})


def levels(raw: list[list[str]]) -> list[list[float]]:
    return [[float(price), float(size)] for price, size in raw]


@pytest.mark.parametrize("stream", ["btcusdt@depth5", "btcusdt@depth10@100ms", "btcusdt@depth20@100ms"])
def test_a_combined_frame_gives_its_levels_as_a_book_tick(stream):
    parser = BinanceParser()
    [tick] = parser.parse(combined(partial(BIDS, ASKS), stream), RECV_NS)
    assert (tick.exchange, tick.symbol, tick.type) == ("binance", "BTC/USDT", "book")
    assert list(tick.bids or []) == levels(BIDS)
    assert list(tick.asks or []) == levels(ASKS)
    assert (tick.bid, tick.bid_size, tick.ask, tick.ask_size) == (61837.63, 1.5, 61837.64, 0.5)
    assert tick.timestamp == RECV_NS // 1_000_000  # partial depth carries no event time


def test_each_frame_replaces_the_book_and_one_that_changes_nothing_in_the_top_sends_nothing():
    parser = BinanceParser(depth_levels=2)
    assert len(parser.parse(combined(partial(BIDS, ASKS)), RECV_NS)) == 1
    # Only the third level moves: beyond the two levels a tick carries.
    assert parser.parse(combined(partial([*BIDS[:2], ["61800", "9"]], ASKS)), RECV_NS) == []
    assert parser.stats.ignored[binance.BOOK_UNCHANGED] == 1
    # A level gone from the snapshot is gone from the book (no delete is ever sent).
    [tick] = parser.parse(combined(partial(BIDS[1:], ASKS)), RECV_NS)
    assert list(tick.bids or []) == levels(BIDS[1:3])


def test_a_raw_frame_is_taken_only_by_a_parser_told_its_stream():
    raw = json.dumps(partial(BIDS, ASKS))
    told = BinanceParser(stream="btcusdt@depth10@100ms")
    [tick] = told.parse(raw, RECV_NS)
    assert tick == BinanceParser().parse(combined(partial(BIDS, ASKS)), RECV_NS)[0]
    # Not told, or told a stream that is no partial depth: counted, never guessed.
    for parser in (BinanceParser(), BinanceParser(stream="btcusdt@bookTicker")):
        assert parser.parse(raw, RECV_NS) == []
        assert parser.stats.ignored == {binance.DEPTH_WITHOUT_SYMBOL: 1}


@pytest.mark.parametrize(
    ("bids", "asks", "reason"),
    [
        ([["61837.63", "0"]], ASKS, BAD_SIZE),  # a size of 0 removes nothing in a snapshot
        ([["nan", "1"]], ASKS, BAD_PRICE),
        ([["61837.63", "inf"]], ASKS, BAD_SIZE),
        ([["-1", "1"]], ASKS, BAD_PRICE),
        (list(reversed(BIDS)), ASKS, BAD_PRICE),  # bids not best first
        (BIDS, list(reversed(ASKS)), BAD_PRICE),
        ([BIDS[0], BIDS[0]], ASKS, BAD_PRICE),  # a price twice
        ([["61840.00", "1"]], ASKS, CROSSED_BOOK),
        ([["61837.63"]], ASKS, MISSING_FIELD),
        (None, ASKS, MISSING_FIELD),
    ],
)
def test_a_bad_snapshot_is_dropped_under_its_reason_and_the_next_good_one_is_sent(bids, asks, reason):
    parser = BinanceParser()
    assert len(parser.parse(combined(partial(BIDS, ASKS)), RECV_NS)) == 1
    # The book sent is gone: the engine is told so.
    assert parser.parse(combined(partial(bids, asks)), RECV_NS) == [lost("binance", "BTC/USDT", RECV_NS)]
    assert parser.stats.dropped[reason] == 1
    assert parser.stats.books() == {"ticks": 1, "clock_skewed": 0, "lost": 1}
    # The book is unknown after a bad frame: the next good one is sent even if it is the same.
    assert len(parser.parse(combined(partial(BIDS, ASKS)), RECV_NS)) == 1


def test_a_frame_of_an_unknown_market_is_dropped():
    parser = BinanceParser()
    assert parser.parse(combined(partial(BIDS, ASKS), "nosuchthing@depth5"), RECV_NS) == []
    assert parser.stats.dropped[UNKNOWN_SYMBOL] == 1


# --- diff depth seeded by a REST snapshot, made by hand ---------------------------------
def diff(first: int, final: int, bids: list[list[str]], asks: list[list[str]] | None = None) -> str:
    event = {"e": "depthUpdate", "E": RECV_NS // 1_000_000, "s": "BTCUSDT", "U": first, "u": final}
    return combined(event | {"b": bids, "a": asks or []}, "btcusdt@depth@100ms")


def test_events_at_or_below_the_snapshot_are_discarded_and_the_first_must_bridge_it():
    parser = BinanceParser()
    assert parser.parse(diff(90, 95, [["61837.00", "7"]]), RECV_NS) == []  # held, then older than the snapshot
    assert parser.parse(diff(96, 101, [["61837.00", "8"]]), RECV_NS) == []  # held: U <= 101 <= u bridges
    [tick] = parser.seed(URL, json.dumps(partial(BIDS, ASKS)), RECV_NS)
    assert tick.bids is not None
    assert tick.bids[1] == [61837.0, 8.0]
    assert parser.parse(diff(101, 101, [["61837.00", "9"]]), RECV_NS) == []  # u <= the book's: already in it
    assert parser.stats.ignored[binance.ALREADY_IN_BOOK] == 1
    [tick] = parser.parse(diff(102, 103, [["61837.63", "0"]]), RECV_NS)  # removes the best bid
    assert tick.bid == 61837.0
    assert parser.stats.dropped[BOOK_GAP] == 0


def test_a_snapshot_newer_than_every_held_event_but_the_first_later_one_skipping_is_a_gap():
    parser = BinanceParser()
    assert len(parser.seed(URL, json.dumps(partial(BIDS, ASKS)), RECV_NS)) == 1
    # U > lastUpdateId + 1: the seeded book, sent, is gone
    assert parser.parse(diff(102, 104, [["61837.00", "8"]]), RECV_NS) == [lost("binance", "BTC/USDT", RECV_NS)]
    assert parser.stats.dropped[BOOK_GAP] == 1
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTCUSDT"}


def test_a_held_event_that_does_not_reach_the_snapshot_is_a_gap_when_it_comes():
    parser = BinanceParser()
    parser.parse(diff(105, 106, [["61837.00", "8"]]), RECV_NS)  # held
    assert parser.awaiting_snapshot() == {"BTCUSDT"}
    assert parser.resync_needed == set()
    assert parser.seed(URL, json.dumps(partial(BIDS, ASKS)), RECV_NS) == []  # lastUpdateId 100: 101..104 missing
    assert parser.stats.dropped[BOOK_GAP] == 1
    assert parser.resync_needed == {"BTCUSDT"}


def test_the_held_events_are_bounded_and_the_overflow_counted():
    parser = BinanceParser()
    for update_id in range(binance.MAX_BUFFERED_EVENTS + 5):
        parser.parse(diff(update_id + 1, update_id + 1, [["61837.00", str(update_id + 1)]]), RECV_NS)
    assert parser.stats.ignored[binance.DEPTH_BUFFERED] == binance.MAX_BUFFERED_EVENTS
    assert parser.stats.ignored[binance.DEPTH_BUFFER_OVERFLOW] == 5
    # The newest are kept: a snapshot at 1000 is bridged by them.
    [tick] = parser.seed(URL, json.dumps(partial(BIDS, ASKS, update_id=1000)), RECV_NS)
    assert tick.bids is not None
    assert tick.bids[1] == [61837.0, float(binance.MAX_BUFFERED_EVENTS + 5)]


@pytest.mark.parametrize(
    ("url", "body", "reason"),
    [
        ("https://api.binance.com/api/v3/depth?limit=1000", json.dumps(partial(BIDS, ASKS)), MISSING_FIELD),
        (
            "https://api.binance.com/api/v3/depth?symbol=NOSUCH&limit=1000",
            json.dumps(partial(BIDS, ASKS)),
            UNKNOWN_SYMBOL,
        ),
        ("https://api.binance.com/api/v3/exchangeInfo", "{}", "unknown_message"),
        (URL, "{not json", "malformed_json"),
        (URL, json.dumps({"bids": BIDS, "asks": ASKS}), MISSING_FIELD),
        (URL, json.dumps(partial([["61840.00", "1"]], ASKS)), CROSSED_BOOK),
    ],
)
def test_a_snapshot_that_cannot_seed_is_counted(url, body, reason):
    parser = BinanceParser()
    assert parser.seed(url, body, RECV_NS) == []
    assert parser.stats.dropped[reason] == 1
    assert parser.stats.frames == 1


def test_an_old_style_v1_url_seeds_too():
    parser = BinanceParser()
    url = "https://www.binance.com/api/v1/depth?symbol=BTCUSDT&limit=1000"
    assert len(parser.seed(url, json.dumps(partial(BIDS, ASKS)), RECV_NS)) == 1
