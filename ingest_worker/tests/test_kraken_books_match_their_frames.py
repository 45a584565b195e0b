"""Book ticks from the recorded Kraken v1 `book-1000` stream carry the top levels of a book rebuilt here independently.

The reference book below keeps every level as the wire's strings keyed by
Decimal, re-sorts on every read and checks Kraken's CRC32 checksum itself (top
ten asks then top ten bids, price and volume with '.' and leading zeros
removed): every recorded checksum must pass. The parser must emit a book tick
exactly when the reference's top `depth_levels` levels change, with the same
numbers; on a checksum mismatch it must drop the book, ask once for a resync
and refuse updates until the next snapshot.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

import pytest

from ingest_worker.tests.recorded import frames, lost
from ingest_worker.tests.test_kraken_ticks_match_their_frames import KRAKEN_SYMBOLS, assert_same, epoch_ms
from ingest_worker.venues.base import BOOK_GAP
from ingest_worker.venues.kraken import KrakenParser
from signals_app.contracts import tick as tick_contract
from signals_app.contracts.tick import Tick

DEPTH = 1000


class ReferenceBook:
    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.asks = {Decimal(p): (p, v) for p, v, *_ in snapshot["as"]}
        self.bids = {Decimal(p): (p, v) for p, v, *_ in snapshot["bs"]}

    def update(self, side: str, levels: list[Any]) -> None:
        book = self.asks if side == "a" else self.bids
        for price, volume, *_ in levels:
            if Decimal(volume) == 0:
                book.pop(Decimal(price), None)
            else:
                book[Decimal(price)] = (price, volume)
        if len(book) > DEPTH:  # levels pushed out of the subscribed depth are forgotten
            for price in self.sorted(side)[DEPTH:]:
                del book[price]

    def sorted(self, side: str) -> list[Decimal]:
        return sorted(self.asks) if side == "a" else sorted(self.bids, reverse=True)

    def checksum(self) -> int:
        text = ""
        for side, book in (("a", self.asks), ("b", self.bids)):
            for price in self.sorted(side)[:10]:
                p, v = book[price]
                text += p.replace(".", "").lstrip("0") + v.replace(".", "").lstrip("0")
        return zlib.crc32(text.encode())

    def top(self, n: int) -> tuple[list[list[float]], list[list[float]]]:
        """The top `n` bid and ask levels, best first, as a book tick carries them."""
        return (
            [[float(price), float(Decimal(self.bids[price][1]))] for price in self.sorted("b")[:n]],
            [[float(price), float(Decimal(self.asks[price][1]))] for price in self.sorted("a")[:n]],
        )

    def snapshot_frame(self, channel_id: int, pair: str) -> str:
        """This book as a v1 snapshot frame, as a resubscription would bring it."""
        levels = {
            "as": [[*self.asks[p], "1618678140.000000"] for p in self.sorted("a")],
            "bs": [[*self.bids[p], "1618678140.000000"] for p in self.sorted("b")],
        }
        return json.dumps([channel_id, levels, f"book-{DEPTH}", pair], separators=(",", ":"))


def expected_book(pair: str, top: tuple[list[list[float]], list[list[float]]], timestamp: int, recv_ns: int) -> Tick:
    return tick_contract.book("kraken", KRAKEN_SYMBOLS[pair], top[0], top[1], timestamp, recv_ns)


class Reference:
    """Books per pair and the last top sent: what the parser should emit for each frame."""

    def __init__(self, depth_levels: int = 20) -> None:
        self.depth_levels = depth_levels
        self.books: dict[str, ReferenceBook] = {}
        self.tops: dict[str, tuple[list[list[float]], list[list[float]]]] = {}

    def expect(self, frame: str, recv_ns: int) -> list[Tick] | None:
        """The ticks of a book frame; None for a frame that is not book data."""
        msg = json.loads(frame)
        if isinstance(msg, dict):
            return None
        pair, parts = msg[-1], msg[1:-2]
        if "as" in parts[0]:
            self.books[pair] = ReferenceBook(parts[0])
            timestamp = recv_ns // 1_000_000  # a snapshot has no event time of its own
        else:
            book = self.books[pair]
            times = []
            for part in parts:
                for side in ("a", "b"):
                    if side in part:
                        book.update(side, part[side])
                        times += [epoch_ms(level[2]) for level in part[side]]
            assert book.checksum() == int(parts[-1]["c"]), f"the reference book disagrees with Kraken: {frame}"
            timestamp = max(times)  # the latest change in the update
        top = self.books[pair].top(self.depth_levels)
        if self.tops.get(pair) == top:
            return []
        self.tops[pair] = top
        return [expected_book(pair, top, timestamp, recv_ns)]


@pytest.mark.parametrize("depth_levels", [1, 5, 20])
def test_book_ticks_carry_the_top_levels_of_an_independently_rebuilt_book(market_data, depth_levels):
    parser = KrakenParser(depth_levels=depth_levels)  # the 60 s clock check is on: the level times are fresh
    reference = Reference(depth_levels)
    recorded = frames(market_data / "kraken" / "book.jsonl")
    control = quotes = unchanged = 0
    for line, (frame, recv_ns) in enumerate(recorded, 1):
        got = parser.parse(frame, recv_ns)
        want = reference.expect(frame, recv_ns)
        if want is None:
            assert got == []
            control += 1
            continue
        assert_same(got, want, f"book.jsonl:{line}")
        quotes += len(want)
        unchanged += not want
    assert len(reference.books) == 10
    assert quotes > 500  # the recording moves the tops often; otherwise this proves little
    assert unchanged > 0  # and leaves them as they were at every depth tried
    # Every frame is accounted for: a book tick, a subscription answer, or an update below the top.
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": quotes,
        "control": {"subscriptionStatus": control},
        "ignored": {"book_below_top": unchanged},
        "dropped": {},
    }
    assert quotes + control + unchanged == len(recorded)
    assert parser.books_awaiting_snapshot() == []


def test_a_checksum_mismatch_drops_the_book_until_the_next_snapshot(market_data):
    recorded = frames(market_data / "kraken" / "book.jsonl")
    pair = "XMR/USD"
    updates = [i for i, (frame, _) in enumerate(recorded) if frame.endswith(f'"{pair}"]') and '"c":"' in frame]
    corrupt, resync = updates[100], updates[200]  # the book is lost in between
    parser = KrakenParser()
    reference = Reference()
    refused = 0
    for index, (frame, recv_ns) in enumerate(recorded):
        if index == resync:  # a resubscription: the next snapshot, as Kraken would send it
            channel_id = json.loads(frame)[0]
            snapshot = reference.books[pair].snapshot_frame(channel_id, pair)
            assert parser.books_awaiting_snapshot() == [pair]
            assert parser.resync_needed == {pair}  # asked once, for the lost pair only
            reference.tops.pop(pair)  # a new book: its first top is always emitted
            got = parser.parse(snapshot, recv_ns)
            top = reference.books[pair].top(20)
            assert_same(got, [expected_book(pair, top, recv_ns // 1_000_000, recv_ns)], "")
            reference.tops[pair] = top
            assert parser.books_awaiting_snapshot() == []
        sent = frame
        if index == corrupt:
            msg = json.loads(frame)
            msg[-3]["c"] = str((int(msg[-3]["c"]) + 1) % 2**32)
            sent = json.dumps(msg, separators=(",", ":"))
        got = parser.parse(sent, recv_ns)
        want = reference.expect(frame, recv_ns)  # the reference follows the true stream
        if corrupt <= index < resync and want is not None and frame.endswith(f'"{pair}"]'):
            # The corrupt update drops the book sent: the engine is told once; the updates after it are refused.
            assert got == ([lost("kraken", KRAKEN_SYMBOLS[pair], recv_ns)] if index == corrupt else []), index
            refused += 1
            continue
        if want is None:
            assert got == []
        else:
            assert_same(got, want, f"book.jsonl:{index + 1}")
    assert refused == 100  # the corrupt update and the 99 after it
    assert parser.stats.dropped[BOOK_GAP] == refused
    assert parser.stats.books_lost == 1
    assert parser.books_awaiting_snapshot() == []


def test_updates_before_any_snapshot_are_refused_as_a_gap_and_ask_once_for_the_snapshot():
    parser = KrakenParser(max_age_ms=None)
    frame = '[992,{"b":[["353.73000000","1.00000000","1618678133.478962"]],"c":"1453093704"},"book-1000","XMR/USD"]'
    assert parser.parse(frame, 1_618_678_133_500_000_000) == []
    assert parser.stats.dropped[BOOK_GAP] == 1
    assert parser.books_awaiting_snapshot() == ["XMR/USD"]
    assert parser.resync_needed == {"XMR/USD"}
    parser.resync_needed.clear()  # the live client took the request
    assert parser.parse(frame, 1_618_678_133_500_000_000) == []
    assert parser.stats.dropped[BOOK_GAP] == 2
    assert parser.resync_needed == set()


def levels(*pairs: tuple[str, str]) -> list[list[str]]:
    return [[price, volume, "1618678133.000000"] for price, volume in pairs]


def test_levels_pushed_out_of_the_subscribed_depth_are_forgotten():
    """A `book-10` keeps ten levels a side: a better level pushes the worst out, and a delete
    then leaves nine (Kraken sends no delete for the pushed-out level, and no refill)."""
    recv_ns = 1_618_678_133_500_000_000
    asks = [(f"{100 + i}.0", "1.0") for i in range(10)]
    bids = [(f"{90 - i}.0", "1.0") for i in range(10)]
    snapshot = {"as": levels(*asks), "bs": levels(*bids)}
    reference = ReferenceBook(snapshot)

    def send(part: dict[str, Any]) -> list[Tick]:
        for side in ("a", "b"):
            if side in part:
                reference.update(side, part[side])
                if len(reference.asks) > 10 or len(reference.bids) > 10:
                    book = reference.asks if side == "a" else reference.bids
                    for price in reference.sorted(side)[10:]:
                        del book[price]
        part = part | {"c": str(reference.checksum())}
        return parser.parse(json.dumps([1, part, "book-10", "XBT/USD"]), recv_ns)

    parser = KrakenParser(depth_levels=3)
    first = parser.parse(json.dumps([1, snapshot, "book-10", "XBT/USD"]), recv_ns)
    assert [(t.symbol, t.bid, t.ask) for t in first] == [("BTC/USD", 90.0, 100.0)]
    assert [(t.bid, t.ask) for t in send({"a": levels(("99.5", "2.0"))})] == [(90.0, 99.5)]
    assert send({"a": levels(("109.0", "3.0"))}) == []  # below the top; 109.0 was pushed out before
    assert [(t.bid, t.ask_size) for t in send({"a": levels(("99.5", "0.00000000"))})] == [(90.0, 1.0)]
    assert len(parser.book("XBT/USD").ask_levels()) == 9  # type: ignore[union-attr]
    assert parser.stats.dropped[BOOK_GAP] == 0  # every checksum, computed over the truncated book, matched
