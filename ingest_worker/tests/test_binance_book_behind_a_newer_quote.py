"""Binance: a depth frame that arrives after a newer bookTicker (a higher update id) must not set
the market's top back to its older book. Its book tick is followed by that bookTicker quote again,
so the engine walks the newer top first and only the levels behind it."""

from __future__ import annotations

import orjson

from engine_worker.book import Quote
from ingest_worker.venues.binance import BinanceParser
from signals_app.contracts.tick import BOOK, QUOTE

RECV_NS = 1_705_670_123_456_000_000


def book_ticker(u: int, bid: str, ask: str) -> str:
    data = {"u": u, "s": "BTCUSDT", "b": bid, "B": "1.5", "a": ask, "A": "0.5"}
    return orjson.dumps({"stream": "btcusdt@bookTicker", "data": data}).decode()


def depth(last_update_id: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    data = {"lastUpdateId": last_update_id, "bids": bids, "asks": asks}
    return orjson.dumps({"stream": "btcusdt@depth20@100ms", "data": data}).decode()


BIDS = [["100.0", "1.0"], ["99.0", "2.0"]]
ASKS = [["101.0", "1.0"], ["102.0", "2.0"]]


def test_an_older_book_is_followed_by_the_newer_quote_and_the_walk_starts_there() -> None:
    parser = BinanceParser()
    (quote,) = parser.parse(book_ticker(200, "100.5", "100.8"), RECV_NS)
    ticks = parser.parse(depth(150, BIDS, ASKS), RECV_NS + 1000)
    assert [t.type for t in ticks] == [BOOK, QUOTE]
    assert ticks[1] is quote  # the same quote again: its receive time, its top
    slot = Quote("binance", "BTC/USDT")
    for each in (quote, *ticks):
        slot.update(each)
    assert (slot.bid, slot.ask) == (100.5, 100.8)
    asks = slot.ask_levels(0)
    assert asks is not None
    assert [list(level) for level in asks] == [[100.8, 0.5], [101.0, 1.0], [102.0, 2.0]]


def test_a_book_as_new_as_the_quote_or_newer_goes_alone() -> None:
    parser = BinanceParser()
    parser.parse(book_ticker(200, "100.0", "101.0"), RECV_NS)
    assert [t.type for t in parser.parse(depth(200, BIDS, ASKS), RECV_NS + 1000)] == [BOOK]
    later = parser.parse(depth(250, [["100.2", "1.0"]], ASKS), RECV_NS + 2000)
    assert [t.type for t in later] == [BOOK]


def test_without_a_quote_or_after_a_reconnect_a_book_goes_alone() -> None:
    parser = BinanceParser()
    assert [t.type for t in parser.parse(depth(150, BIDS, ASKS), RECV_NS)] == [BOOK]
    parser.parse(book_ticker(200, "100.5", "100.8"), RECV_NS)
    parser.new_connection()
    assert [t.type for t in parser.parse(depth(150, BIDS, ASKS), RECV_NS + 1000)] == [BOOK]
