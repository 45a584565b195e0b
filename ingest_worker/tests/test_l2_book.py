"""The L2 book keeps what a depth channel says: snapshots replace, changes set or remove a level,
levels read best first, a cap forgets what falls beyond it, and the checksum texts follow the levels.

The last tests replay random snapshots and changes against a reference kept here the plain
way (a dict per side, sorted on every read), with and without a cap and texts.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.book import L2Book


def book_of(bids: list[tuple[float, float]], asks: list[tuple[float, float]], depth: int | None = None) -> L2Book:
    book = L2Book(depth)
    book.replace(bids, asks)
    return book


# --- snapshots -------------------------------------------------------------------
def test_a_snapshot_gives_both_sides_best_first_in_whatever_order_it_came():
    book = book_of([(99.0, 1.0), (100.0, 2.0), (98.5, 3.0)], [(102.0, 4.0), (101.0, 5.0), (101.5, 6.0)])
    assert book.bid_levels() == [(100.0, 2.0), (99.0, 1.0), (98.5, 3.0)]
    assert book.ask_levels() == [(101.0, 5.0), (101.5, 6.0), (102.0, 4.0)]
    assert book.top() == (100.0, 2.0, 101.0, 5.0)
    assert (book.best_bid(), book.best_ask()) == (100.0, 101.0)


def test_a_snapshot_replaces_every_level_of_both_sides():
    book = book_of([(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)])
    book.replace([(95.0, 7.0)], [(96.0, 8.0)])
    assert book.bid_levels() == [(95.0, 7.0)]
    assert book.ask_levels() == [(96.0, 8.0)]
    book.update([(100.0, 0.0)], [(101.0, 0.0)])  # the old levels are gone: removing them changes nothing
    assert book.top() == (95.0, 7.0, 96.0, 8.0)


def test_in_a_snapshot_the_later_level_of_a_price_wins_and_size_zero_leaves_it_out():
    book = book_of([(100.0, 1.0), (100.0, 2.0), (99.0, 5.0), (99.0, 0.0)], [(101.0, 0.0), (101.0, 3.0)])
    assert book.bid_levels() == [(100.0, 2.0)]
    assert book.ask_levels() == [(101.0, 3.0)]


def test_an_empty_side_has_no_best_level():
    book = book_of([], [(101.0, 1.0)])
    assert book.top() == (None, None, 101.0, 1.0)
    assert book.best_bid() is None
    assert book.bid_levels() == []
    assert L2Book().top() == (None, None, None, None)


# --- changes ---------------------------------------------------------------------
def test_a_change_sets_a_new_level_in_its_place_or_a_new_size_at_a_known_price():
    book = book_of([(100.0, 1.0), (98.0, 1.0)], [(101.0, 1.0), (103.0, 1.0)])
    book.update([(99.0, 2.0), (100.0, 5.0)], [(102.0, 3.0), (100.5, 4.0)])
    assert book.bid_levels() == [(100.0, 5.0), (99.0, 2.0), (98.0, 1.0)]
    assert book.ask_levels() == [(100.5, 4.0), (101.0, 1.0), (102.0, 3.0), (103.0, 1.0)]


def test_size_zero_removes_a_level_and_the_next_one_becomes_the_best():
    book = book_of([(100.0, 1.0), (99.0, 2.0)], [(101.0, 3.0), (102.0, 4.0)])
    book.update([(100.0, 0.0)], [(101.0, 0.0), (150.0, 0.0)])  # 150 was never there: nothing to remove
    assert book.top() == (99.0, 2.0, 102.0, 4.0)
    book.update([(99.0, 0.0)], [])
    assert book.top() == (None, None, 102.0, 4.0)


def test_changes_apply_in_order():
    book = book_of([], [])
    book.update([(100.0, 1.0), (100.0, 0.0), (99.0, 0.0), (99.0, 2.0)], [(101.0, 1.0), (101.0, 6.0)])
    assert book.bid_levels() == [(99.0, 2.0)]
    assert book.ask_levels() == [(101.0, 6.0)]


def test_the_top_n_levels_are_the_best_n_in_price_order():
    bids = [(100.0 - i, float(i + 1)) for i in range(30)]
    asks = [(101.0 + i, float(i + 1)) for i in range(30)]
    book = book_of(bids[::-1], asks[::-1])
    assert book.bid_levels(3) == [(100.0, 1.0), (99.0, 2.0), (98.0, 3.0)]
    assert book.ask_levels(3) == [(101.0, 1.0), (102.0, 2.0), (103.0, 3.0)]
    assert book.bid_levels(100) == bids
    assert book.ask_levels() == asks
    assert book.bid_levels(0) == []


# --- crossed ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bid", "ask", "crossed"),
    [(100.0, 101.0, False), (100.0, 100.0, True), (101.0, 100.0, True)],
)
def test_a_book_is_crossed_when_its_best_bid_reaches_its_best_ask(bid, ask, crossed):
    assert book_of([(bid, 1.0), (bid - 5, 1.0)], [(ask, 1.0), (ask + 5, 1.0)]).crossed() is crossed


def test_a_change_can_cross_a_book_and_another_uncross_it():
    book = book_of([(100.0, 1.0)], [(101.0, 1.0)])
    book.update([(101.5, 1.0)], [])
    assert book.crossed()
    book.update([(101.5, 0.0)], [])
    assert not book.crossed()


def test_a_one_sided_book_is_not_crossed():
    assert not book_of([(100.0, 1.0)], []).crossed()
    assert not book_of([], [(100.0, 1.0)]).crossed()


# --- depth cap -------------------------------------------------------------------
def test_a_capped_snapshot_keeps_the_best_levels():
    book = book_of([(90.0 + i, 1.0) for i in range(10)], [(200.0 - i, 1.0) for i in range(10)], depth=3)
    assert [price for price, _ in book.bid_levels()] == [99.0, 98.0, 97.0]
    assert [price for price, _ in book.ask_levels()] == [191.0, 192.0, 193.0]


def test_a_capped_book_does_not_keep_a_level_beyond_its_depth():
    book = book_of([(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)], depth=2)
    book.update([(98.0, 5.0)], [(103.0, 5.0)])
    assert book.bid_levels() == [(100.0, 1.0), (99.0, 1.0)]
    assert book.ask_levels() == [(101.0, 1.0), (102.0, 1.0)]
    book.update([(100.0, 0.0)], [])  # a delete leaves one level: the refused one does not come back
    assert book.bid_levels() == [(99.0, 1.0)]


def test_a_better_level_pushes_the_worst_out_of_a_capped_book_for_good():
    book = book_of([(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)], depth=2)
    book.update([(100.5, 2.0)], [(100.8, 2.0)])
    assert book.bid_levels() == [(100.5, 2.0), (100.0, 1.0)]
    assert book.ask_levels() == [(100.8, 2.0), (101.0, 1.0)]
    book.update([(100.5, 0.0)], [(100.8, 0.0)])  # the venue sends no delete for what it pushed out
    assert book.bid_levels() == [(100.0, 1.0)]
    assert book.ask_levels() == [(101.0, 1.0)]


def test_a_capped_book_that_is_not_full_takes_a_worse_level():
    book = book_of([(100.0, 1.0)], [], depth=3)
    book.update([(98.0, 1.0), (97.0, 1.0), (96.0, 1.0)], [])
    assert [price for price, _ in book.bid_levels()] == [100.0, 98.0, 97.0]


def test_a_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth"):
        L2Book(0)


# --- checksum texts --------------------------------------------------------------
def test_the_texts_of_the_top_levels_come_best_first_and_follow_each_change():
    book = L2Book(texts=True)
    book.replace([(99.0, 1.0), (100.0, 2.0)], [(102.0, 3.0), (101.0, 4.0)], ["b99", "b100"], ["a102", "a101"])
    assert book.bid_texts() == ["b100", "b99"]
    assert book.ask_texts(1) == ["a101"]
    book.update([(100.0, 5.0), (99.5, 1.0)], [(101.0, 0.0)], ["b100 again", "b99.5"], [""])
    assert book.bid_texts() == ["b100 again", "b99.5", "b99"]
    assert book.ask_texts() == ["a102"]
    assert book.bid_levels() == [(100.0, 5.0), (99.5, 1.0), (99.0, 1.0)]


def test_a_capped_book_forgets_the_text_of_a_level_pushed_out():
    book = L2Book(2, texts=True)
    book.replace([], [(101.0, 1.0), (102.0, 1.0), (103.0, 1.0)], [], ["a101", "a102", "a103"])
    assert book.ask_texts() == ["a101", "a102"]
    book.update([], [(100.0, 1.0)], [], ["a100"])
    book.update([], [(100.0, 0.0), (102.5, 1.0)], [], ["", "a102.5"])
    assert book.ask_texts() == ["a101", "a102.5"]  # 102 was pushed out and is not back
    assert book.ask_levels() == [(101.0, 1.0), (102.5, 1.0)]


def test_a_long_lived_capped_book_holds_no_texts_of_forgotten_levels():
    """Kraken sends no delete for what a better level pushes out: the book must drop those texts
    itself, or a `book-10` kept for hours would hold the text of every price it ever saw."""
    book = L2Book(10, texts=True)
    book.replace([], [], [], [])
    for step in range(1000):
        book.update([], [(10_000.0 - step, 1.0)], [], [f"a{step}"])
    assert book.ask_texts() == [f"a{step}" for step in range(999, 989, -1)]
    assert len(book._ask_texts or {}) == 10  # private, read only here: nothing else shows a leak


def test_texts_are_refused_where_they_cannot_match_the_levels():
    with pytest.raises(ValueError, match="keeps no texts"):
        L2Book().bid_texts(10)
    book = L2Book(texts=True)
    with pytest.raises(ValueError, match="one text per level"):
        book.replace([(100.0, 1.0)], [])
    with pytest.raises(ValueError, match="one text per level"):
        book.update([], [(101.0, 1.0)], [], [])


# --- against a reference ---------------------------------------------------------
class ReferenceBook:
    """Each side a dict price -> (size, text), sorted on every read; levels applied one at a time."""

    def __init__(self, depth: int | None) -> None:
        self.depth = depth
        self.sides: dict[bool, dict[float, tuple[float, str]]] = {True: {}, False: {}}

    def best_first(self, is_bid: bool) -> list[float]:
        return sorted(self.sides[is_bid], reverse=is_bid)

    def apply(self, is_bid: bool, price: float, size: float, text: str) -> None:
        side = self.sides[is_bid]
        if size == 0:
            side.pop(price, None)
            return
        side[price] = (size, text)
        self.trim(is_bid)

    def snapshot(self, is_bid: bool, changes: list[tuple[float, float]], texts: list[str] | None) -> None:
        """The last level of each price, those with a size, the best `depth` of them."""
        side = self.sides[is_bid]
        side.clear()
        for index, (price, size) in enumerate(changes):
            side[price] = (size, texts[index] if texts else "")
        for price in [price for price, (size, _) in side.items() if size == 0]:
            del side[price]
        self.trim(is_bid)

    def trim(self, is_bid: bool) -> None:
        if self.depth is not None:
            for worse in self.best_first(is_bid)[self.depth :]:
                del self.sides[is_bid][worse]

    def levels(self, is_bid: bool) -> list[tuple[float, float]]:
        return [(price, self.sides[is_bid][price][0]) for price in self.best_first(is_bid)]

    def texts(self, is_bid: bool) -> list[str]:
        return [self.sides[is_bid][price][1] for price in self.best_first(is_bid)]


prices = st.integers(min_value=9_900, max_value=10_100).map(lambda cents: cents / 100)
sizes = st.one_of(st.just(0.0), st.integers(min_value=1, max_value=500).map(lambda units: units / 10))
levels = st.lists(st.tuples(prices, sizes), max_size=12)
steps = st.lists(st.tuples(st.booleans(), levels, levels), min_size=1, max_size=25)  # (is snapshot, bids, asks)


def texts_of(side: str, changes: list[tuple[float, float]], step: int) -> list[str]:
    return [f"{side}{price}/{size}@{step}" for price, size in changes]


@settings(max_examples=300, deadline=None)
@given(steps=steps, depth=st.one_of(st.none(), st.integers(min_value=1, max_value=6)), with_texts=st.booleans())
def test_the_book_agrees_with_a_reference_over_random_snapshots_and_changes(steps, depth, with_texts):
    book = L2Book(depth, texts=with_texts)
    reference = ReferenceBook(depth)
    for step, (is_snapshot, bids, asks) in enumerate(steps):
        bid_texts = texts_of("b", bids, step) if with_texts else None
        ask_texts = texts_of("a", asks, step) if with_texts else None
        if is_snapshot:
            book.replace(bids, asks, bid_texts, ask_texts)
        else:
            book.update(bids, asks, bid_texts, ask_texts)
        for is_bid, changes, texts in ((True, bids, bid_texts), (False, asks, ask_texts)):
            if is_snapshot:
                reference.snapshot(is_bid, changes, texts)
                continue
            for index, (price, size) in enumerate(changes):
                reference.apply(is_bid, price, size, texts[index] if texts else "")
        assert book.bid_levels() == reference.levels(True)
        assert book.ask_levels() == reference.levels(False)
        assert book.bid_levels(3) == reference.levels(True)[:3]
        best_bid = reference.levels(True)[0] if reference.sides[True] else (None, None)
        best_ask = reference.levels(False)[0] if reference.sides[False] else (None, None)
        assert book.top() == (*best_bid, *best_ask)
        assert book.crossed() == (best_bid[0] is not None and best_ask[0] is not None and best_bid[0] >= best_ask[0])
        if with_texts:
            assert book.bid_texts() == reference.texts(True)
            assert book.ask_texts(2) == reference.texts(False)[:2]
