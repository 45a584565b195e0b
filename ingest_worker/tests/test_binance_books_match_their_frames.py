"""Binance diff-depth books, rebuilt from the recorded REST snapshots and depthUpdate events,
equal a book the test keeps itself with Binance's rules ("How to manage a local order book
correctly"), after every frame; book ticks carry exactly its top `depth_levels` levels, and a
frame that changes nothing there sends none. Gaps, early events, crossed books and bad numbers
drop the book under their reason and ask for a fresh snapshot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest_worker.tests.recorded import BINANCE_SYMBOLS, files, frames, lost
from ingest_worker.venues.base import BAD_PRICE, BAD_SIZE, BOOK_GAP, CROSSED_BOOK
from ingest_worker.venues.binance import BinanceParser
from signals_app.contracts.tick import Tick

# One recorded session: (kind, url or None, text, recv_ns), REST lines and frames merged in receive order.
Line = tuple[str, str | None, str, int]


def session(market_data: Path, suffix: str) -> list[Line]:
    folder = market_data / "binance"
    rest = folder / f"depth_snapshot_rest{suffix}.jsonl"
    urls = rest.with_suffix(".url").read_text().split()
    merged: list[tuple[int, int, int, Line]] = [
        (recv_ns, 0, i, ("rest", urls[i], body, recv_ns)) for i, (body, recv_ns) in enumerate(frames(rest))
    ]
    merged += [
        (recv_ns, 1, i, ("ws", None, frame, recv_ns))
        for i, (frame, recv_ns) in enumerate(frames(folder / f"depthUpdate{suffix}.jsonl"))
    ]
    merged.sort(key=lambda item: item[:3])  # ties: REST first, then file order
    return [line for *_, line in merged]


def suffixes(market_data: Path) -> list[str]:
    return [
        path.name.removeprefix("depthUpdate").removesuffix(".jsonl")
        for path in files(market_data / "binance", "depthUpdate*.jsonl")
    ]


class RebuiltBook:
    """The test's own book of one market: plain dicts, Binance's documented rules."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.bids = {float(p): float(q) for p, q in snapshot["bids"]}
        self.asks = {float(p): float(q) for p, q in snapshot["asks"]}
        self.update_id: int = snapshot["lastUpdateId"]
        self.first_applied = False

    def apply(self, event: dict[str, Any]) -> bool | None:
        """True when applied, None when older than the book, False on a gap."""
        if event["u"] <= self.update_id:
            return None
        if self.first_applied:
            if event["U"] != self.update_id + 1:
                return False
        elif not event["U"] <= self.update_id + 1 <= event["u"]:
            return False
        for side, changes in ((self.bids, event["b"]), (self.asks, event["a"])):
            for p, q in changes:
                if float(q) == 0.0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = float(q)
        self.update_id = event["u"]
        self.first_applied = True
        return True

    def top(self, n: int) -> tuple[list[list[float]], list[list[float]]]:
        bids = [[p, self.bids[p]] for p in sorted(self.bids, reverse=True)[:n]]
        asks = [[p, self.asks[p]] for p in sorted(self.asks)[:n]]
        return bids, asks


def payload(frame: str) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(frame)
    data: dict[str, Any] = msg.get("data", msg)
    return data


def run_and_rebuild(parser: BinanceParser, lines: list[Line]) -> int:
    """Feed `lines`; after each, the parser's book and ticks must be the rebuilt book's. Ticks seen."""
    n = parser.depth_levels
    rebuilt: dict[str, RebuiltBook] = {}
    held: dict[str, list[dict[str, Any]]] = {}
    sent: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
    ticks_seen = 0
    for kind, url, text, recv_ns in lines:
        if kind == "rest":
            assert url is not None
            native = url.split("symbol=")[1].split("&")[0]
            ticks: list[Tick] = parser.seed(url, text, recv_ns)
            book = rebuilt[native] = RebuiltBook(json.loads(text))
            for event in held.pop(native, []):
                assert book.apply(event) is not False, f"{native}: the recording has a gap"
        else:
            event = payload(text)
            native = event["s"]
            ticks = parser.parse(text, recv_ns)
            if native not in rebuilt:
                held.setdefault(native, []).append(event)
                assert ticks == [], "no tick before the snapshot"
                continue
            assert rebuilt[native].apply(event) is not False, f"{native}: the recording has a gap"
        book = rebuilt[native]
        kept = parser._diff_books[native]
        assert kept.bid_levels() == sorted(book.bids.items(), reverse=True), native
        assert kept.ask_levels() == sorted(book.asks.items()), native
        top = book.top(n)
        if top == sent.get(native):
            assert ticks == [], f"{native}: a tick though the top {n} levels did not change"
            continue
        [tick] = ticks
        ticks_seen += 1
        assert (tick.type, tick.exchange) == ("book", "binance")
        assert [list(level) for level in tick.bids or []] == top[0]
        assert [list(level) for level in tick.asks or []] == top[1]
        assert (tick.bid, tick.bid_size, tick.ask, tick.ask_size) == (*top[0][0], *top[1][0])
        sent[native] = top
    return ticks_seen


@pytest.mark.parametrize("depth_levels", [1, 5, 20])
def test_recorded_books_equal_an_independent_rebuild_after_every_frame(market_data, depth_levels):
    for suffix in suffixes(market_data):
        parser = BinanceParser(max_age_ms=None, depth_levels=depth_levels)
        lines = session(market_data, suffix)
        assert run_and_rebuild(parser, lines) > 20, suffix
        stats = parser.stats.as_dict()
        assert stats["dropped"] == {}, (suffix, stats)
        assert stats["frames"] == len(lines)
        assert parser.awaiting_snapshot() == set()
        assert parser.resync_needed == set()


def test_events_before_the_snapshot_are_held_and_those_it_lacks_applied(market_data):
    lines = session(market_data, "")  # BTCUSDT: three events come before its snapshot
    parser = BinanceParser(max_age_ms=None)
    early = [line for line in lines[: next(i for i, line in enumerate(lines) if line[0] == "rest")]]
    assert early
    assert all(kind == "ws" for kind, *_ in early)
    run_and_rebuild(parser, lines)
    assert parser.stats.ignored["depth_buffered"] == len(early)


def lost_book(native: str, recv_ns: int) -> Tick:
    """The book-lost tick of the frame at `recv_ns` that dropped the sent book of `native`."""
    symbol = BINANCE_SYMBOLS[native]
    assert symbol is not None
    return lost("binance", symbol, recv_ns)


def fed(lines: list[Line]) -> BinanceParser:
    """A parser given `lines`: REST lines to seed, frames to parse."""
    parser = BinanceParser(max_age_ms=None)
    for kind, url, text, recv_ns in lines:
        if kind == "rest":
            assert url is not None
            parser.seed(url, text, recv_ns)
        else:
            parser.parse(text, recv_ns)
    return parser


def first_applied_event(lines: list[Line]) -> int:
    """The index of the first event after the first snapshot that is newer than it."""
    rest_at = next(i for i, line in enumerate(lines) if line[0] == "rest")
    last_update_id = json.loads(lines[rest_at][2])["lastUpdateId"]
    native = lines[rest_at][1].split("symbol=")[1].split("&")[0]  # type: ignore[union-attr]
    return next(
        i
        for i in range(rest_at + 1, len(lines))
        if lines[i][0] == "ws" and payload(lines[i][2])["s"] == native and payload(lines[i][2])["u"] > last_update_id
    )


def test_a_skipped_event_is_a_gap_the_book_is_dropped_and_a_new_snapshot_restores_it(market_data):
    lines = session(market_data, ".20211012")
    at = first_applied_event(lines)
    native = payload(lines[at][2])["s"]
    later = [i for i in range(at + 1, len(lines)) if lines[i][0] == "ws" and payload(lines[i][2])["s"] == native]
    skipped = later[0]
    parser = fed(lines[:skipped])
    assert native in parser._diff_books
    # The event after the skipped one: its U is not the last u + 1. The engine is told the book is gone.
    assert parser.parse(lines[later[1]][2], lines[later[1]][3]) == [lost_book(native, lines[later[1]][3])]
    assert parser.stats.dropped[BOOK_GAP] == 1
    assert parser.resync_needed == parser.awaiting_snapshot() == {native}
    assert native not in parser._diff_books
    # Later events are held for the next snapshot, not counted as gaps again nor asked for twice
    # (nor told as lost again).
    parser.resync_needed.clear()
    assert parser.parse(lines[later[2]][2], lines[later[2]][3]) == []
    assert parser.stats.dropped[BOOK_GAP] == 1
    assert parser.resync_needed == set()
    # A snapshot of the book as it was before the held event rebuilds it, applying that event.
    book = parser_book_before(market_data, lines, later[2])
    snapshot = {
        "lastUpdateId": book.update_id,
        "bids": [[str(p), str(q)] for p, q in sorted(book.bids.items(), reverse=True)],
        "asks": [[str(p), str(q)] for p, q in sorted(book.asks.items())],
    }
    url = f"https://api.binance.com/api/v3/depth?symbol={native}&limit=1000"
    [tick] = parser.seed(url, json.dumps(snapshot), lines[later[2]][3])
    assert parser.awaiting_snapshot() == set()
    book.apply(payload(lines[later[2]][2]))
    assert [list(level) for level in tick.bids or []] == book.top(parser.depth_levels)[0]
    assert [list(level) for level in tick.asks or []] == book.top(parser.depth_levels)[1]


def parser_book_before(market_data: Path, lines: list[Line], index: int) -> RebuiltBook:
    """The rebuilt book of line `index`'s market just before it (from the recording, no gap)."""
    native = payload(lines[index][2])["s"]
    book: RebuiltBook | None = None
    held: list[dict[str, Any]] = []
    for kind, url, text, _ in lines[:index]:
        if kind == "rest" and url is not None and f"symbol={native}&" in url:
            book = RebuiltBook(json.loads(text))
            for event in held:
                book.apply(event)
        elif kind == "ws" and payload(text)["s"] == native:
            if book is None:
                held.append(payload(text))
            else:
                book.apply(payload(text))
    assert book is not None
    return book


def test_an_event_that_crosses_the_book_drops_it(market_data):
    lines = session(market_data, ".20211012")
    at = first_applied_event(lines)
    parser = fed(lines[:at])
    event = payload(lines[at][2])
    native = event["s"]
    best_ask = parser._diff_books[native].best_ask()
    event["b"] = [*event["b"], [str(best_ask * 1.01), "1"]]  # type: ignore[operator]
    assert parser.parse(json.dumps(event), lines[at][3]) == [lost_book(native, lines[at][3])]
    assert parser.stats.dropped[CROSSED_BOOK] == 1
    assert parser.resync_needed == parser.awaiting_snapshot() == {native}


@pytest.mark.parametrize(
    ("level", "reason"),
    [(["nan", "1"], BAD_PRICE), (["-1", "1"], BAD_PRICE), (["1.5", "inf"], BAD_SIZE), (["1.5", "-2"], BAD_SIZE)],
)
def test_an_event_with_a_bad_number_drops_the_book(market_data, level, reason):
    lines = session(market_data, ".20211012")
    at = first_applied_event(lines)
    parser = fed(lines[:at])
    event = payload(lines[at][2])
    event["a"] = [*event["a"], level]
    assert parser.parse(json.dumps(event), lines[at][3]) == [lost_book(event["s"], lines[at][3])]
    assert parser.stats.dropped[reason] == 1
    assert parser.resync_needed == {event["s"]}
