"""Coinbase `level2` frames keep each product's book, and its book ticks carry the book's top levels.

The recorded session (`snapshot` then `l2update` frames of ten products) is replayed
against an independent book kept here: a plain dict per side, filled from
`json.loads` and Decimal. After every frame the parser's book equals it, and a book
tick comes exactly when the top `depth_levels` levels of that book changed, carrying
them. Hand-made frames cover what the recording does not: an update before its
snapshot, an update that crosses the book, bad numbers, removals, a second snapshot.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.tests.recorded import COINBASE_SYMBOLS, frames, lost
from ingest_worker.venues.base import BAD_PRICE, BAD_SIZE, BOOK_GAP, CROSSED_BOOK, MISSING_FIELD, STALE
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts import tick

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
RECV_NS = 1_705_665_600_100_000_000  # 2024-01-19T12:00:00.100Z
LOST = lost("coinbase", "BTC/USD", RECV_NS)  # what a frame that drops the BTC-USD book sent gives
TIME = "2024-01-19T12:00:00.050000Z"
TIME_MS = 1_705_665_600_050


def number(text: str) -> float:
    assert isinstance(text, str), text
    return float(Decimal(text))


def unix_ms(iso: str) -> int:
    return (dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) - EPOCH) // dt.timedelta(milliseconds=1)


class ReferenceBooks:
    """Every product's book as two dicts price -> size, rebuilt from the frames alone, and the
    prices of each side in a plain ascending list (insort and remove) to read the top from."""

    def __init__(self) -> None:
        self.bids: dict[str, dict[float, float]] = {}
        self.asks: dict[str, dict[float, float]] = {}
        self.prices: dict[tuple[str, str], list[float]] = {}  # (product, "bids"|"asks") -> ascending

    def apply(self, msg: dict[str, object]) -> tuple[str, set[str]]:
        """(the frame's product, the sides it touched: "bids", "asks")."""
        native = msg["product_id"]
        assert isinstance(native, str)
        if msg["type"] == "snapshot":
            self.bids[native] = {number(price): number(size) for price, size in msg["bids"]}  # type: ignore[attr-defined]
            self.asks[native] = {number(price): number(size) for price, size in msg["asks"]}  # type: ignore[attr-defined]
            self.prices[native, "bids"] = sorted(self.bids[native])
            self.prices[native, "asks"] = sorted(self.asks[native])
            return native, {"bids", "asks"}
        touched = set()
        for side, price_text, size_text in msg["changes"]:  # type: ignore[attr-defined]
            name = "bids" if side == "buy" else "asks"
            touched.add(name)
            levels = self.bids[native] if side == "buy" else self.asks[native]
            prices = self.prices[native, name]
            price, size = number(price_text), number(size_text)
            if size == 0:
                if levels.pop(price, None) is not None:
                    prices.remove(price)
            else:
                if price not in levels:
                    bisect.insort(prices, price)
                levels[price] = size
        return native, touched

    def top(self, native: str, n: int) -> tuple[list[list[float]], list[list[float]]]:
        bid_prices = self.prices[native, "bids"][::-1][:n]
        ask_prices = self.prices[native, "asks"][:n]
        return (
            [[price, self.bids[native][price]] for price in bid_prices],
            [[price, self.asks[native][price]] for price in ask_prices],
        )


def test_the_book_after_every_recorded_frame_equals_an_independent_rebuild(market_data: Path) -> None:
    parser = CoinbaseParser(max_age_ms=None)
    reference = ReferenceBooks()
    for line, (frame, recv_ns) in enumerate(frames(market_data / "coinbase" / "level2.jsonl"), 1):
        parser.parse(frame, recv_ns)
        native, touched = reference.apply(json.loads(frame))
        book = parser.book(native)
        assert book is not None, f"level2.jsonl:{line}"
        # The side a frame did not touch cannot have moved (checked for every product at the end).
        if "bids" in touched:
            assert dict(book.bid_levels()) == reference.bids[native], f"level2.jsonl:{line} bids"
        if "asks" in touched:
            assert dict(book.ask_levels()) == reference.asks[native], f"level2.jsonl:{line} asks"
    assert set(reference.bids) == set(COINBASE_SYMBOLS)
    for native in COINBASE_SYMBOLS:
        book = parser.book(native)
        assert book is not None
        # Best first, as the book's reads promise.
        assert book.bid_levels() == sorted(reference.bids[native].items(), reverse=True), native
        assert book.ask_levels() == sorted(reference.asks[native].items()), native
    assert parser.stats.dropped == dict.fromkeys(parser.stats.dropped, 0)
    assert parser.resync_needed == parser.awaiting_snapshot() == set()


@pytest.mark.parametrize("depth_levels", [1, 5, 20])
def test_a_book_tick_carries_the_top_levels_exactly_when_they_change(market_data: Path, depth_levels: int) -> None:
    parser = CoinbaseParser(max_age_ms=None, depth_levels=depth_levels)
    reference = ReferenceBooks()
    sent: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
    unchanged = 0
    recorded = frames(market_data / "coinbase" / "level2.jsonl")
    for line, (frame, recv_ns) in enumerate(recorded, 1):
        ticks = parser.parse(frame, recv_ns)
        msg = json.loads(frame)
        native, _ = reference.apply(msg)
        top = reference.top(native, depth_levels)
        if sent.get(native) == top:
            assert ticks == [], f"level2.jsonl:{line}: nothing changed in the top {depth_levels}"
            unchanged += 1
            continue
        sent[native] = top
        (book_tick,) = ticks
        bids, asks = top
        assert book_tick.type == tick.BOOK
        assert (book_tick.exchange, book_tick.symbol) == ("coinbase", COINBASE_SYMBOLS[native])
        assert (book_tick.bids, book_tick.asks) == (bids, asks), f"level2.jsonl:{line}"
        assert (book_tick.bid, book_tick.bid_size, book_tick.ask, book_tick.ask_size) == (*bids[0], *asks[0])
        # The recorded snapshots carry no time: the receive time stands in.
        want_ms = unix_ms(msg["time"]) if msg["type"] == "l2update" else recv_ns // 1_000_000
        assert (book_tick.timestamp, book_tick.recv_ns) == (want_ms, recv_ns), f"level2.jsonl:{line}"
        assert tick.decode(tick.encode(book_tick)) == book_tick  # what the engine accepts
    assert unchanged > 0  # the recording has such frames at every depth tried; otherwise this proves nothing
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": len(recorded) - unchanged,
        "control": {},
        "ignored": {"l2_top_unchanged": unchanged},
        "dropped": {},
    }


def test_with_the_clock_check_the_recorded_books_are_fresh(market_data: Path) -> None:
    recorded = frames(market_data / "coinbase" / "level2.jsonl")
    checked, unchecked = CoinbaseParser(), CoinbaseParser(max_age_ms=None)
    for frame, recv_ns in recorded:
        assert checked.parse(frame, recv_ns) == unchecked.parse(frame, recv_ns)
    assert checked.stats.dropped[STALE] == 0


# --- hand-made frames ---------------------------------------------------------------------
def snapshot(bids: list[list[str]], asks: list[list[str]], product: str = "BTC-USD", **extra: object) -> str:
    return json.dumps({"type": "snapshot", "product_id": product, "bids": bids, "asks": asks} | extra)


def l2update(*changes: object, product: str = "BTC-USD", time: str = TIME) -> str:
    return json.dumps({"type": "l2update", "product_id": product, "changes": list(changes), "time": time})


BIDS = [["100.5", "1.5"], ["100.4", "3"], ["100.3", "2"]]
ASKS = [["100.6", "2.5"], ["100.7", "4"], ["100.8", "1"]]


def levels(parser: CoinbaseParser, native: str = "BTC-USD") -> tuple[list[tuple[float, float]], ...]:
    book = parser.book(native)
    assert book is not None
    return book.bid_levels(), book.ask_levels()


def dropped(parser: CoinbaseParser) -> dict[str, int]:
    return {reason: count for reason, count in parser.stats.dropped.items() if count}


def test_a_snapshot_gives_the_book_and_its_tick_stamped_with_the_receive_time() -> None:
    parser = CoinbaseParser(depth_levels=2)
    (book_tick,) = parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    assert (book_tick.bids, book_tick.asks) == ([[100.5, 1.5], [100.4, 3.0]], [[100.6, 2.5], [100.7, 4.0]])
    assert book_tick.timestamp == RECV_NS // 1_000_000
    assert levels(parser) == ([(100.5, 1.5), (100.4, 3.0), (100.3, 2.0)], [(100.6, 2.5), (100.7, 4.0), (100.8, 1.0)])
    # A newer snapshot's own time, where it carries one, stamps the tick.
    (timed,) = CoinbaseParser().parse(snapshot(BIDS, ASKS, time=TIME), RECV_NS)
    assert timed.timestamp == TIME_MS


def test_an_update_before_its_snapshot_is_dropped_and_asks_once_for_the_snapshot() -> None:
    parser = CoinbaseParser()
    assert parser.parse(l2update(["buy", "100.5", "1"]), RECV_NS) == []
    assert dropped(parser) == {BOOK_GAP: 1}
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTC-USD"}
    parser.resync_needed.clear()  # the live client took the request
    assert parser.parse(l2update(["sell", "100.6", "1"]), RECV_NS) == []
    assert dropped(parser) == {BOOK_GAP: 2}
    assert parser.resync_needed == set()  # asked once per loss
    assert parser.book("BTC-USD") is None
    assert len(parser.parse(snapshot(BIDS, ASKS), RECV_NS)) == 1
    assert parser.awaiting_snapshot() == set()
    (book_tick,) = parser.parse(l2update(["buy", "100.55", "1"]), RECV_NS)
    assert (book_tick.bid, book_tick.timestamp) == (100.55, TIME_MS)


def test_an_update_that_crosses_the_book_drops_it_until_the_next_snapshot() -> None:
    parser = CoinbaseParser()
    (first,) = parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    parser.parse(snapshot(BIDS, ASKS, product="ETH-USD"), RECV_NS)
    # A bid at the best ask: the book missed the update that took that ask away. The engine is told.
    assert parser.parse(l2update(["buy", "100.6", "1"]), RECV_NS) == [LOST]
    assert dropped(parser) == {BOOK_GAP: 1}
    assert parser.book("BTC-USD") is None
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTC-USD"}
    assert parser.parse(l2update(["sell", "100.9", "1"]), RECV_NS) == []  # nothing to apply it to
    assert dropped(parser) == {BOOK_GAP: 2}
    assert parser.book("ETH-USD") is not None  # the other product's book carries on
    # The same book again after the loss is sent again: the engine may have dropped the market.
    assert parser.parse(snapshot(BIDS, ASKS), RECV_NS) == [first]
    assert parser.awaiting_snapshot() == set()


def test_a_crossed_or_bad_snapshot_leaves_the_product_without_a_book() -> None:
    parser = CoinbaseParser()
    assert parser.parse(snapshot([["100.7", "1"]], ASKS), RECV_NS) == []  # no book was sent: none is lost
    assert dropped(parser) == {CROSSED_BOOK: 1}
    assert parser.resync_needed == {"BTC-USD"}
    assert len(parser.parse(snapshot(BIDS, ASKS), RECV_NS)) == 1
    # A snapshot replaces: none is left, and the engine is told the book it was sent is gone.
    assert parser.parse(snapshot(BIDS, [["100.6", "-1"]]), RECV_NS) == [LOST]
    assert dropped(parser) == {CROSSED_BOOK: 1, BAD_SIZE: 1}
    assert parser.book("BTC-USD") is None
    assert parser.parse(l2update(["buy", "100.55", "1"]), RECV_NS) == []
    assert dropped(parser)[BOOK_GAP] == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (["buy", "nan", "1"], BAD_PRICE),
        (["buy", "NaN", "1"], BAD_PRICE),
        (["sell", "0", "1"], BAD_PRICE),
        (["sell", "-100.6", "1"], BAD_PRICE),
        (["buy", "inf", "1"], BAD_PRICE),
        (["buy", "abc", "1"], BAD_PRICE),
        (["buy", None, "1"], BAD_PRICE),
        (["buy", True, "1"], BAD_PRICE),
        (["buy", "100.45", "-1"], BAD_SIZE),
        (["buy", "100.45", "nan"], BAD_SIZE),
        (["buy", "100.45", "1e400"], BAD_SIZE),
        (["buy", "100.45", "one"], BAD_SIZE),
        (["buy", "100.45", [1]], BAD_SIZE),
        (["bid", "100.45", "1"], MISSING_FIELD),
        (["buy", "100.45"], MISSING_FIELD),
        ("buy 100.45 1", MISSING_FIELD),
    ],
)
def test_a_bad_change_drops_its_frame_and_the_book_until_the_next_snapshot(change: object, reason: str) -> None:
    parser = CoinbaseParser()
    (first,) = parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    # None of the frame's changes is applied, the good one before the bad one neither: the venue's
    # book moved and ours cannot follow it, so it is dropped (the engine told) and asked for again, once.
    assert parser.parse(l2update(["buy", "100.55", "9"], change), RECV_NS) == [LOST]
    assert dropped(parser) == {reason: 1}
    assert parser.book("BTC-USD") is None
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTC-USD"}
    parser.resync_needed.clear()  # the live client took the request
    assert parser.parse(l2update(["buy", "100.55", "9"]), RECV_NS) == []  # nothing to apply it to
    assert parser.resync_needed == set()
    assert parser.parse(snapshot(BIDS, ASKS), RECV_NS) == [first]
    (book_tick,) = parser.parse(l2update(["buy", "100.55", "9"]), RECV_NS)  # the new book goes on
    assert book_tick.bids[:2] == [[100.55, 9.0], [100.5, 1.5]]  # type: ignore[index]


@pytest.mark.parametrize(
    ("field", "reason"),
    [({"changes": "none"}, MISSING_FIELD), ({"time": "yesterday"}, "bad_timestamp")],
)
def test_a_frame_without_changes_or_with_a_bad_time_drops_the_book(field: dict[str, str], reason: str) -> None:
    parser = CoinbaseParser()
    parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    frame = json.loads(l2update(["buy", "100.55", "1"]))
    assert parser.parse(json.dumps(frame | field), RECV_NS) == [LOST]
    assert dropped(parser) == {reason: 1}
    assert parser.book("BTC-USD") is None
    assert parser.resync_needed == {"BTC-USD"}


def test_a_frame_of_an_unknown_product_leaves_the_books_alone() -> None:
    parser = CoinbaseParser()
    parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    before = levels(parser)
    frame = json.loads(l2update(["buy", "100.55", "1"]))
    assert parser.parse(json.dumps(frame | {"product_id": "BTCUSD"}), RECV_NS) == []
    assert dropped(parser) == {"unknown_symbol": 1}
    assert levels(parser) == before
    assert parser.resync_needed == set()


def test_size_zero_removes_a_level() -> None:
    parser = CoinbaseParser(depth_levels=2)
    parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    (book_tick,) = parser.parse(l2update(["buy", "100.5", "0"]), RECV_NS)
    assert book_tick.bids == [[100.4, 3.0], [100.3, 2.0]]
    assert levels(parser)[0] == [(100.4, 3.0), (100.3, 2.0)]
    # A removal of a price the book does not hold changes nothing: no tick, counted as ignored.
    assert parser.parse(l2update(["sell", "101", "0.000"]), RECV_NS) == []
    assert parser.stats.ignored == {"l2_top_unchanged": 1}


def test_a_change_below_the_top_levels_gives_no_tick_but_is_kept() -> None:
    parser = CoinbaseParser(depth_levels=2)
    parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    assert parser.parse(l2update(["buy", "100.3", "7"], ["sell", "100.9", "1"]), RECV_NS) == []
    assert levels(parser)[0][2] == (100.3, 7.0)
    assert levels(parser)[1][3] == (100.9, 1.0)
    # A batch (level2_batch) of changes gives one tick of the book after all of them.
    (book_tick,) = parser.parse(l2update(["buy", "100.5", "0"], ["buy", "100.4", "0"]), RECV_NS)
    assert book_tick.bids == [[100.3, 7.0]]


def test_a_second_snapshot_replaces_the_book() -> None:
    parser = CoinbaseParser()
    parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    parser.parse(l2update(["buy", "100.1", "5"]), RECV_NS)
    (book_tick,) = parser.parse(snapshot([["99", "1"]], [["101", "2"], ["102", "3"]]), RECV_NS)
    assert (book_tick.bids, book_tick.asks) == ([[99.0, 1.0]], [[101.0, 2.0], [102.0, 3.0]])
    assert levels(parser) == ([(99.0, 1.0)], [(101.0, 2.0), (102.0, 3.0)])


def test_an_emptied_side_gives_no_tick_until_it_fills_again() -> None:
    parser = CoinbaseParser()
    parser.parse(snapshot([["100.5", "1"]], ASKS), RECV_NS)
    assert parser.parse(l2update(["buy", "100.5", "0"]), RECV_NS) == []
    assert parser.stats.ignored == {"l2_one_sided": 1}
    (book_tick,) = parser.parse(l2update(["buy", "100.2", "1"]), RECV_NS)
    assert book_tick.bids == [[100.2, 1.0]]


def test_a_stale_update_sends_no_tick_but_moves_the_book() -> None:
    parser = CoinbaseParser()  # 60 s
    parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    assert parser.parse(l2update(["buy", "100.55", "1"], time="2024-01-19T11:58:00.000000Z"), RECV_NS) == []
    assert dropped(parser) == {STALE: 1}
    assert levels(parser)[0][0] == (100.55, 1.0)
    # The next fresh frame's tick carries the whole current top, the stale change included.
    (book_tick,) = parser.parse(l2update(["sell", "100.9", "1"]), RECV_NS)
    assert book_tick.bids[0] == [100.55, 1.0]  # type: ignore[index]


def test_a_new_connection_forgets_every_book() -> None:
    parser = CoinbaseParser()
    (first,) = parser.parse(snapshot(BIDS, ASKS), RECV_NS)
    parser.parse(l2update(["buy", "1", "1"], product="ETH-USD"), RECV_NS)
    assert parser.resync_needed == {"ETH-USD"}
    parser.new_connection()
    assert parser.resync_needed == parser.awaiting_snapshot() == set()
    assert parser.book("BTC-USD") is None
    assert parser.parse(snapshot(BIDS, ASKS), RECV_NS) == [first]  # the same book is sent again


# --- generated frames -----------------------------------------------------------------------
# Prices on a grid around 100 so that updates often cross the book, sizes that set or remove a
# level, and values that are clearly not numbers the parser may take.
GOOD_PRICES = [f"{99 + tenth / 10:.1f}" for tenth in range(21)]
BAD_PRICES = ["nan", "-1", "0", "abc", "inf"]
GOOD_SIZES = ["0", "1", "2.5", "0.001"]
BAD_SIZES = ["-1", "nan", "abc"]
changes = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.one_of(st.sampled_from(GOOD_PRICES), st.sampled_from(BAD_PRICES)),
        st.one_of(st.sampled_from(GOOD_SIZES), st.sampled_from(BAD_SIZES)),
    ).map(list),
    min_size=1,
    max_size=3,
)
snapshots = st.tuples(
    st.lists(st.sampled_from(GOOD_PRICES[:10]), max_size=4, unique=True),  # bids below 100
    st.lists(st.sampled_from(GOOD_PRICES[11:]), max_size=4, unique=True),  # asks above 100
)
generated_frames = st.lists(st.one_of(changes, snapshots), max_size=25)


@settings(max_examples=300, deadline=None)
@given(sequence=generated_frames, depth_levels=st.sampled_from([1, 3, 20]))
def test_generated_frames_keep_the_book_and_its_ticks_right(
    sequence: list[list[list[str]] | tuple[list[str], list[str]]], depth_levels: int
) -> None:
    """A model of the rules: no book before a snapshot, a bad frame or a crossing drops the book
    (with a book-lost tick when a book tick of it had been sent), a tick exactly when the top
    `depth_levels` levels change."""
    parser = CoinbaseParser(depth_levels=depth_levels)
    book: dict[str, dict[float, float]] | None = None
    sent: tuple[list[list[float]], list[list[float]]] | None = None
    for item in sequence:
        gone = False  # this frame drops a book a tick was sent of
        if isinstance(item, tuple):
            bid_prices, ask_prices = item
            frame = snapshot([[price, "1"] for price in bid_prices], [[price, "1"] for price in ask_prices])
            book = {
                "buy": dict.fromkeys(map(float, bid_prices), 1.0),
                "sell": dict.fromkeys(map(float, ask_prices), 1.0),
            }
        else:
            frame = l2update(*item)
            if book is not None and not all(p in GOOD_PRICES and s in GOOD_SIZES for _, p, s in item):
                gone = sent is not None
                book, sent = None, None  # a change it cannot apply: dropped until the next snapshot
            elif book is not None:
                for side, price, size in item:
                    if float(size) == 0:
                        book[side].pop(float(price), None)
                    else:
                        book[side][float(price)] = float(size)
                if book["buy"] and book["sell"] and max(book["buy"]) >= min(book["sell"]):
                    gone = sent is not None
                    book, sent = None, None  # crossed: dropped until the next snapshot
        ticks = parser.parse(frame, RECV_NS)
        for book_tick in ticks:
            assert tick.decode(tick.encode(book_tick)) == book_tick  # valid levels, best bid < best ask
        if book is None:
            assert ticks == ([LOST] if gone else [])
            assert parser.book("BTC-USD") is None
            assert parser.awaiting_snapshot() == {"BTC-USD"}
            continue
        kept = parser.book("BTC-USD")
        assert kept is not None
        assert dict(kept.bid_levels()) == book["buy"]
        assert dict(kept.ask_levels()) == book["sell"]
        top = (
            [[price, book["buy"][price]] for price in sorted(book["buy"], reverse=True)[:depth_levels]],
            [[price, book["sell"][price]] for price in sorted(book["sell"])[:depth_levels]],
        )
        if top[0] and top[1] and top != sent:
            assert [(t.bids, t.asks) for t in ticks] == [top]
            sent = top
        else:
            assert ticks == []
    assert parser.stats.dropped["unexpected"] == 0
