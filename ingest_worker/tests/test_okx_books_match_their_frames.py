"""OKX `books` and `books-l2-tbt` frames keep each spot market's book, checked by checksum and sequence.

The recorded sessions (`snapshot` then `update` pushes, spot and derivatives on one
connection) are replayed against an independent book kept here: the wire's strings keyed
by Decimal, re-sorted on every read. Its CRC32 (top 25 bids and asks interleaved,
"bid:size:ask:size", read as a signed int, per OKX's docs) must equal every recorded
checksum; the parser's book ticks must carry its top levels exactly when they change.
Hand-made frames cover what the recordings do not: a corrupted checksum, a seqId gap, a
crossed book, an update before its snapshot; each drops the book and asks once for a resync.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from ingest_worker.tests.recorded import files, frames, lost
from ingest_worker.venues import okx
from ingest_worker.venues.base import BAD_PRICE, BAD_SIZE, BOOK_GAP, CROSSED_BOOK, MISSING_FIELD
from ingest_worker.venues.okx import OkxParser
from signals_app.contracts import tick as tick_contract

RECV_NS = 1_652_459_223_100_000_000
TS = "1652459223003"
LOST = lost("okx", "BTC/USDT", RECV_NS)  # what a frame that drops the BTC-USDT book sent gives


class ReferenceBook:
    def __init__(self, data: dict[str, Any]) -> None:
        self.sides: dict[str, dict[Decimal, tuple[str, str]]] = {"bids": {}, "asks": {}}
        self.apply(data)

    def apply(self, data: dict[str, Any]) -> None:
        for side in ("bids", "asks"):
            for price, size, *_ in data[side]:
                if Decimal(size) == 0:
                    self.sides[side].pop(Decimal(price), None)
                else:
                    self.sides[side][Decimal(price)] = (price, size)

    def sorted(self, side: str) -> list[tuple[str, str]]:
        levels = self.sides[side]
        return [levels[price] for price in sorted(levels, reverse=side == "bids")]

    def checksum(self) -> int:
        bids, asks = self.sorted("bids")[:25], self.sorted("asks")[:25]
        parts: list[str] = []
        for index in range(max(len(bids), len(asks))):
            for levels in (bids, asks):
                if index < len(levels):
                    parts += levels[index]
        crc = zlib.crc32(":".join(parts).encode())
        return crc - 2**32 if crc >= 2**31 else crc

    def top(self, n: int) -> tuple[list[list[float]], list[list[float]]]:
        bids, asks = (
            [[float(Decimal(p)), float(Decimal(s))] for p, s in self.sorted(side)[:n]] for side in ("bids", "asks")
        )
        return bids, asks


def book_files(market_data: Path) -> list[Path]:
    paths = files(market_data / "okx", "books*.jsonl")
    assert len(paths) == 3
    return paths


class Replayed(NamedTuple):
    """One recorded frame, and for a push the instrument's reference book after it."""

    where: str
    frame: str
    recv_ns: int
    native: str | None  # None: a subscription answer
    data: dict[str, Any]
    book: ReferenceBook | None


def replayed(path: Path) -> Iterator[Replayed]:
    books: dict[str, ReferenceBook] = {}
    for line, (frame, recv_ns) in enumerate(frames(path), 1):
        msg = json.loads(frame)
        where = f"{path.name}:{line}"
        if "event" in msg:
            yield Replayed(where, frame, recv_ns, None, msg, None)
            continue
        native, (data,) = msg["arg"]["instId"], msg["data"]
        if msg["action"] == "snapshot":
            books[native] = ReferenceBook(data)
        else:
            books[native].apply(data)
        yield Replayed(where, frame, recv_ns, native, data, books[native])


def test_every_recorded_checksum_is_the_checksum_of_the_independent_book(market_data: Path) -> None:
    checked: dict[str, int] = {}
    for path in book_files(market_data):
        for item in replayed(path):
            if item.book is not None:
                assert item.book.checksum() == item.data["checksum"], item.where
                checked[path.name] = checked.get(path.name, 0) + 1
    # SOURCES.md counts these pushes.
    assert checked == {"books.jsonl": 290, "books-l2-tbt.20220227.jsonl": 3679, "books-l2-tbt.20210722.jsonl": 1504}


@pytest.mark.parametrize("depth_levels", [1, 5, 20])
def test_book_ticks_carry_the_top_levels_of_the_independent_book_exactly_when_they_change(
    market_data: Path, depth_levels: int
) -> None:
    for path in book_files(market_data):
        parser = OkxParser(max_age_ms=None, depth_levels=depth_levels)
        sent: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
        counts = {"ticks": 0, "unchanged": 0, "derivative": 0, "subscribe": 0}
        for item in replayed(path):
            ticks = parser.parse(item.frame, item.recv_ns)
            if item.native is None or item.book is None:
                counts["subscribe"] += 1
                assert ticks == []
                continue
            if okx.derivative_kind(item.native) is not None:
                counts["derivative"] += 1
                assert ticks == [], f"{item.where}: a derivative is never a spot book"
                continue
            top = item.book.top(depth_levels)
            if sent.get(item.native) == top:
                assert ticks == [], item.where
                counts["unchanged"] += 1
                continue
            sent[item.native] = top
            symbol = item.native.replace("-", "/")
            timestamp = int(item.data["ts"])
            assert ticks == [tick_contract.book("okx", symbol, *top, timestamp, item.recv_ns)], item.where
            counts["ticks"] += 1
        assert counts["ticks"] > 50
        stats = parser.stats.as_dict()
        assert (stats["ticks"], stats["dropped"], stats["control"]) == (
            counts["ticks"],
            {},
            {"subscribe": counts["subscribe"]},
        )
        ignored = stats["ignored"]
        assert isinstance(ignored, dict)
        assert ignored.pop("book_top_unchanged", 0) == counts["unchanged"]
        assert sum(ignored.values()) == counts["derivative"]  # under futures, swap, option
        assert parser.resync_needed == parser.awaiting_snapshot() == set()


def test_a_corrupted_recorded_checksum_drops_the_book_until_the_next_snapshot(market_data: Path) -> None:
    recorded = frames(market_data / "okx" / "books.jsonl")
    native = "BTC-USDT"
    updates = [i for i, (f, _) in enumerate(recorded) if f'"instId":"{native}"}},"action":"update"' in f]
    corrupt = updates[40]
    parser = OkxParser(max_age_ms=None)
    reference: ReferenceBook | None = None
    for index, (frame, recv_ns) in enumerate(recorded):
        msg = json.loads(frame)
        if msg.get("arg", {}).get("instId") == native and "data" in msg:
            data = msg["data"][0]
            reference = ReferenceBook(data) if msg["action"] == "snapshot" else reference
            if msg["action"] == "update":
                assert reference is not None
                reference.apply(data)
        if index == corrupt:
            msg["data"][0]["checksum"] ^= 1
            assert parser.parse(json.dumps(msg), recv_ns) == [lost("okx", "BTC/USDT", recv_ns)]  # the book sent is gone
            assert parser.stats.dropped[BOOK_GAP] == 1
            assert parser.resync_needed == parser.awaiting_snapshot() == {native}
            parser.resync_needed.clear()
            continue
        ticks = parser.parse(frame, recv_ns)
        if index > corrupt and msg.get("arg", {}).get("instId") == native:
            assert ticks == []  # refused: no book to apply it to
    assert parser.stats.dropped[BOOK_GAP] == 1 + len(updates) - 41
    assert parser.resync_needed == set()  # asked once
    assert parser.stats.books_lost == 1  # and told once
    # The resubscription's snapshot: the book as it stands, sent whatever the last tick held.
    assert reference is not None
    asks = [[p, s, "0", "1"] for p, s in reference.sorted("asks")]
    bids = [[p, s, "0", "1"] for p, s in reference.sorted("bids")]
    data = {"asks": asks, "bids": bids, "ts": TS, "checksum": reference.checksum()}
    snapshot = json.dumps({"arg": {"channel": "books", "instId": native}, "action": "snapshot", "data": [data]})
    (book_tick,) = parser.parse(snapshot, RECV_NS)
    assert (book_tick.bids, book_tick.asks) == reference.top(20)
    assert parser.awaiting_snapshot() == set()


# --- hand-made frames -----------------------------------------------------------------------
BIDS = [["30243.4", "0.5", "0", "2"], ["30243.1", "1.2", "0", "1"], ["30240", "3", "0", "4"]]
ASKS = [["30243.5", "1.44679", "0", "6"], ["30244", "0.08", "0", "1"], ["30246.1", "0.05426064", "0", "1"]]


def push(
    action: str,
    bids: list[list[str]],
    asks: list[list[str]],
    book: ReferenceBook,
    *,
    seq: tuple[int, int] | None = None,
    native: str = "BTC-USDT",
    channel: str = "books",
) -> str:
    """A push whose checksum is that of `book` (the book after it, as the sender holds it)."""
    data: dict[str, object] = {"asks": asks, "bids": bids, "ts": TS, "checksum": book.checksum()}
    if seq is not None:
        data |= {"prevSeqId": seq[0], "seqId": seq[1]}
    return json.dumps({"arg": {"channel": channel, "instId": native}, "action": action, "data": [data]})


def snapshot(seq: tuple[int, int] | None = (-1, 100), **extra: Any) -> tuple[str, ReferenceBook]:
    book = ReferenceBook({"bids": BIDS, "asks": ASKS})
    return push("snapshot", BIDS, ASKS, book, seq=seq, **extra), book


def update(
    book: ReferenceBook, bids: list[list[str]], asks: list[list[str]], seq: tuple[int, int] | None, **extra: Any
) -> str:
    book.apply({"bids": bids, "asks": asks})
    return push("update", bids, asks, book, seq=seq, **extra)


def dropped(parser: OkxParser) -> dict[str, int]:
    return {reason: count for reason, count in parser.stats.dropped.items() if count}


def assert_lost_once(parser: OkxParser, reason: str) -> None:
    assert dropped(parser) == {reason: 1}
    assert parser.book("BTC-USDT") is None
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTC-USDT"}
    parser.resync_needed.clear()  # the live client took the request
    frame, book = snapshot()
    later = update(book, [["30243.2", "1", "0", "1"]], [], (100, 101))
    assert parser.parse(later, RECV_NS) == []  # still in flight: refused, and no second request
    assert parser.resync_needed == set()
    (book_tick,) = parser.parse(frame, RECV_NS)  # the resubscription's snapshot rebuilds it
    assert (book_tick.bids, book_tick.asks) == ReferenceBook({"bids": BIDS, "asks": ASKS}).top(20)
    assert parser.awaiting_snapshot() == set()
    assert len(parser.parse(later, RECV_NS)) == 1


@pytest.mark.parametrize("channel", ["books", "books-l2-tbt", "books50-l2-tbt"])
def test_updates_that_follow_their_sequence_move_the_book(channel: str) -> None:
    parser = OkxParser(depth_levels=2)
    frame, book = snapshot(channel=channel)
    (first,) = parser.parse(frame, RECV_NS)
    assert (first.bids, first.asks, first.timestamp) == (*book.top(2), int(TS))
    (second,) = parser.parse(update(book, [["30243.4", "0", "0", "0"]], [], (100, 101), channel=channel), RECV_NS)
    assert second.bids == [[30243.1, 1.2], [30240.0, 3.0]]
    # No change for a while: OKX pushes empty sides with seqId equal to prevSeqId.
    assert parser.parse(update(book, [], [], (101, 101), channel=channel), RECV_NS) == []
    # A sequence reset (maintenance) gives a smaller seqId; what counts is prevSeqId.
    (third,) = parser.parse(update(book, [], [["30243.6", "2", "0", "1"]], (101, 5), channel=channel), RECV_NS)
    assert third.asks == [[30243.5, 1.44679], [30243.6, 2.0]]
    assert parser.parse(update(book, [["30239", "4", "0", "1"]], [], (5, 6), channel=channel), RECV_NS) == []
    assert parser.stats.ignored == {"book_top_unchanged": 2}
    assert dropped(parser) == {}


def test_a_sequence_gap_drops_the_book_and_asks_once_for_a_resync() -> None:
    parser = OkxParser()
    frame, book = snapshot()
    parser.parse(frame, RECV_NS)
    parser.parse(update(book, [["30243.2", "1", "0", "1"]], [], (100, 101)), RECV_NS)
    assert parser.parse(update(book, [["30243.3", "1", "0", "1"]], [], (102, 103)), RECV_NS) == [LOST]  # 102 missed
    assert_lost_once(parser, BOOK_GAP)


def test_a_wrong_checksum_drops_the_book_and_asks_once_for_a_resync() -> None:
    parser = OkxParser()
    frame, book = snapshot()
    parser.parse(frame, RECV_NS)
    bad = json.loads(update(book, [["30243.2", "1", "0", "1"]], [], (100, 101)))
    bad["data"][0]["checksum"] += 1
    assert parser.parse(json.dumps(bad), RECV_NS) == [LOST]
    assert_lost_once(parser, BOOK_GAP)


def test_an_update_that_crosses_the_book_drops_it() -> None:
    parser = OkxParser()
    frame, book = snapshot()
    parser.parse(frame, RECV_NS)
    assert parser.parse(update(book, [["30243.5", "1", "0", "1"]], [], (100, 101)), RECV_NS) == [LOST]
    assert_lost_once(parser, BOOK_GAP)


def test_a_crossed_snapshot_is_no_book() -> None:
    parser = OkxParser()
    bids = [["30250", "1", "0", "1"], *BIDS]
    book = ReferenceBook({"bids": bids, "asks": ASKS})
    assert parser.parse(push("snapshot", bids, ASKS, book), RECV_NS) == []  # no book was sent: none is lost
    assert_lost_once(parser, CROSSED_BOOK)


def test_an_update_before_any_snapshot_asks_once_for_one() -> None:
    parser = OkxParser()
    _, book = snapshot()
    assert parser.parse(update(book, [["30243.2", "1", "0", "1"]], [], (100, 101)), RECV_NS) == []
    assert_lost_once(parser, BOOK_GAP)


@pytest.mark.parametrize(
    ("level", "reason"),
    [
        (["nan", "1", "0", "1"], BAD_PRICE),
        (["-30243.2", "1", "0", "1"], BAD_PRICE),
        (["30243.2", "-1", "0", "1"], BAD_SIZE),
        (["30243.2", "abc", "0", "1"], BAD_SIZE),
        (["30243.2"], MISSING_FIELD),
        ("30243.2:1", MISSING_FIELD),
    ],
)
def test_a_bad_level_drops_the_book_under_its_reason(level: object, reason: str) -> None:
    parser = OkxParser()
    frame, book = snapshot()
    parser.parse(frame, RECV_NS)
    bad = json.loads(push("update", [], [], book, seq=(100, 101)))
    bad["data"][0]["bids"] = [level]
    assert parser.parse(json.dumps(bad), RECV_NS) == [LOST]
    assert_lost_once(parser, reason)


def test_a_push_without_checksum_or_time_drops_the_book() -> None:
    for field, reason in (("checksum", MISSING_FIELD), ("ts", "bad_timestamp")):
        parser = OkxParser()
        frame, book = snapshot()
        parser.parse(frame, RECV_NS)
        bad = json.loads(update(book, [], [], (100, 100)))
        del bad["data"][0][field]
        assert parser.parse(json.dumps(bad), RECV_NS) == [LOST]
        assert_lost_once(parser, reason)


def test_while_a_market_has_a_book_its_tickers_give_no_quote() -> None:
    parser = OkxParser()
    ticker = json.dumps(
        {
            "arg": {"channel": "tickers", "instId": "BTC-USDT"},
            "data": [
                {"instId": "BTC-USDT", "bidPx": "30243.4", "bidSz": "0.5", "askPx": "30243.5", "askSz": "1", "ts": TS}
            ],
        }
    )
    (quote,) = parser.parse(ticker, RECV_NS)
    assert quote.type == tick_contract.QUOTE
    frame, book = snapshot()
    parser.parse(frame, RECV_NS)
    assert parser.parse(ticker, RECV_NS) == []
    assert parser.stats.ignored == {"tickers_behind_book": 1}
    assert parser.parse(update(book, [], [], (7, 8)), RECV_NS) == [LOST]  # a gap: the book is lost
    (quote,) = parser.parse(ticker, RECV_NS)  # and the ticker quotes the market again
    assert quote.type == tick_contract.QUOTE


def test_a_new_connection_forgets_every_book() -> None:
    parser = OkxParser()
    frame, _ = snapshot()
    (first,) = parser.parse(frame, RECV_NS)
    _, eth = snapshot(native="ETH-USDT")
    parser.parse(update(eth, [], [], (1, 2), native="ETH-USDT"), RECV_NS)
    assert parser.resync_needed == {"ETH-USDT"}
    parser.new_connection()
    assert parser.resync_needed == parser.awaiting_snapshot() == set()
    assert parser.book("BTC-USDT") is None
    assert parser.parse(frame, RECV_NS) == [first]  # the same book is sent again
