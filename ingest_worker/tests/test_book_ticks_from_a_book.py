"""A parser's book tick (DESIGN.md "Depth"): the top DEPTH_LEVELS levels a side of its book, sent
after a frame that changes them and not after one that changes nothing within them."""

from __future__ import annotations

from ingest_worker.book import L2Book
from ingest_worker.venues import make_parser
from signals_app.contracts import tick

RECV_NS = 1_705_670_123_456_000_000
NOW_MS = RECV_NS // 1_000_000


def test_a_book_tick_carries_the_top_levels_and_only_when_they_change() -> None:
    parser = make_parser("kraken", depth_levels=2)
    book = L2Book()
    book.replace([(100.0, 1.0), (99.0, 2.0), (98.0, 1.0)], [(101.0, 1.0), (102.0, 3.0)])
    (first,) = parser.make_book("BTC/USD", book, NOW_MS, RECV_NS)
    assert first.type == tick.BOOK
    assert (first.bids, first.asks) == ([[100.0, 1.0], [99.0, 2.0]], [[101.0, 1.0], [102.0, 3.0]])
    assert (first.bid, first.bid_size, first.ask, first.ask_size) == (100.0, 1.0, 101.0, 1.0)
    assert tick.decode(tick.encode(first)) == first  # what the engine will accept
    assert parser.make_book("BTC/USD", book, NOW_MS, RECV_NS) == []  # nothing changed
    book.update([(97.0, 5.0)], [])  # below the top two levels
    assert parser.make_book("BTC/USD", book, NOW_MS, RECV_NS) == []
    book.update([(99.0, 0.5)], [])
    (changed,) = parser.make_book("BTC/USD", book, NOW_MS, RECV_NS)
    assert changed.bids == [[100.0, 1.0], [99.0, 0.5]]
    parser.forget_book("BTC/USD")  # a dropped book: the next one goes whatever it holds
    assert parser.make_book("BTC/USD", book, NOW_MS, RECV_NS) == [changed]


def test_a_one_sided_or_stale_book_gives_no_tick() -> None:
    parser = make_parser("gemini")
    book = L2Book()
    book.replace([(100.0, 1.0)], [])
    assert parser.make_book("BTC/USD", book, NOW_MS, RECV_NS) == []
    book.update([], [(101.0, 1.0)])
    assert parser.make_book("BTC/USD", book, NOW_MS - 61_000, RECV_NS) == []
    assert parser.stats.as_dict()["dropped"] == {"stale": 1}


def test_a_book_whose_venue_clock_runs_over_a_second_off_is_sent_and_counted() -> None:
    parser = make_parser("gemini")
    book = L2Book()
    book.replace([(100.0, 1.0)], [(101.0, 1.0)])
    assert parser.make_book("BTC/USD", book, NOW_MS - 1000, RECV_NS)  # a second off: fine
    book.update([(100.0, 2.0)], [])
    assert parser.make_book("BTC/USD", book, NOW_MS - 1500, RECV_NS)  # sent (within 60 s), and counted
    book.update([(100.0, 3.0)], [])
    assert parser.make_book("BTC/USD", book, NOW_MS + 2000, RECV_NS)  # ahead of us counts too
    assert parser.stats.books() == {"ticks": 3, "clock_skewed": 2, "lost": 0}
    assert parser.stats.as_dict()["dropped"] == {}
