"""Bitstamp books: the recorded REST snapshots (`order_book_rest*.jsonl`, seeded with their
request URL) updated by the recorded `diff_order_book` frames give book ticks that equal a book
rebuilt here independently (json.loads, Decimal, Bitstamp's documented rule: an event at or
before the snapshot's microtimestamp is in it already), exactly when its top `depth_levels`
levels change; normalize and replay seed the books from a capture's `rest` lines. Diffs
before their snapshot are held and applied when it comes; the live `order_book` channel's
full snapshots replace the book, and one that is crossed is dropped without a resync (the
next message is a whole snapshot again).
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine_worker.config import EngineConfig
from engine_worker.replay import replay_files
from ingest_worker.normalize import normalize_lines
from ingest_worker.tests.recorded import frames, lost
from ingest_worker.tests.test_bitstamp_ticks_match_their_frames import BITSTAMP_SYMBOLS, SESSIONS, pair_of
from ingest_worker.venues import make_parser
from ingest_worker.venues.base import BOOK_GAP, CROSSED_BOOK, UNKNOWN_MESSAGE
from ingest_worker.venues.bitstamp import BitstampParser
from signals_app.contracts import capture
from signals_app.contracts.tick import Tick, encode

Levels = list[list[float]]
# (kind, url or None, text, recv_ns): REST lines and frames of one session, in receive order.
Line = tuple[str, str | None, str, int]


def session_lines(market_data: Path, session: str) -> list[Line]:
    folder = market_data / "bitstamp"
    rest = frames(folder / f"order_book_rest{session}.jsonl")
    urls = (folder / f"order_book_rest{session}.url").read_text().split()
    assert len(urls) == len(rest)
    lines: list[Line] = [("rest", url, body, ns) for url, (body, ns) in zip(urls, rest, strict=True)]
    lines += [("ws", None, frame, ns) for frame, ns in frames(folder / f"diff_order_book{session}.jsonl")]
    return sorted(lines, key=lambda line: line[3])  # stable: file order within a receive time


class ReferenceBook:
    """The book as the frames describe it, in Decimal: price -> amount per side."""

    def __init__(self, body: dict[str, object]) -> None:
        self.micros = int(body["microtimestamp"])  # type: ignore[call-overload]
        self.bids = {Decimal(p): Decimal(a) for p, a in body["bids"]}  # type: ignore[attr-defined]
        self.asks = {Decimal(p): Decimal(a) for p, a in body["asks"]}  # type: ignore[attr-defined]

    def apply(self, data: dict[str, list[list[str]]]) -> None:
        for side, updates in ((self.bids, data["bids"]), (self.asks, data["asks"])):
            for price, amount in updates:
                if Decimal(amount) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(amount)

    def top(self, n: int) -> tuple[Levels, Levels]:
        bids = [[float(p), float(self.bids[p])] for p in sorted(self.bids, reverse=True)[:n]]
        asks = [[float(p), float(self.asks[p])] for p in sorted(self.asks)[:n]]
        assert bids[0][0] < asks[0][0], "a real book is never crossed"
        return bids, asks


@pytest.mark.parametrize("depth", [1, 5, 20])
@pytest.mark.parametrize("session", SESSIONS)
def test_diff_books_match_a_book_rebuilt_from_the_same_frames(market_data, session, depth):
    parser = BitstampParser(depth_levels=depth)
    books: dict[str, ReferenceBook] = {}
    sent: dict[str, tuple[Levels, Levels]] = {}
    ticks_seen = unchanged = older = control = 0
    for number, (kind, url, text, recv_ns) in enumerate(session_lines(market_data, session), 1):
        where = f"bitstamp{session} line {number}"
        if kind == "rest":
            assert url is not None
            got = parser.seed(url, text, recv_ns)
            pair = url.rsplit("/", 1)[1]
            book = books[pair] = ReferenceBook(json.loads(text))
            sent.pop(pair, None)
            timestamp = book.micros // 1000
        else:
            got = parser.parse(text, recv_ns)
            msg = json.loads(text)
            if msg["event"] == "bts:subscription_succeeded":
                control += 1
                assert got == [], where
                continue
            pair = pair_of(msg["channel"])
            book = books[pair]  # every snapshot arrives before the diffs in these recordings
            micros = int(msg["data"]["microtimestamp"])
            if micros <= book.micros:
                older += 1
                assert got == [], where
                continue
            book.apply(msg["data"])
            timestamp = micros // 1000
        levels = book.top(depth)
        if levels == sent.get(pair):
            unchanged += 1
            assert got == [], where
            continue
        sent[pair] = levels
        bids, asks = levels
        (bid, bid_size), (ask, ask_size) = bids[0], asks[0]
        want = Tick(
            "bitstamp", BITSTAMP_SYMBOLS[pair], "book", (bid + ask) / 2, 0.0, bid, ask, bid_size, ask_size,
            timestamp, recv_ns, bids, asks,
        )  # fmt: skip
        assert got == [want], where
        ticks_seen += 1
    assert ticks_seen > 100
    assert older > 100
    if depth == 1:
        assert unchanged > 100  # moves below the top
    assert parser.stats.as_dict() == {
        "frames": ticks_seen + unchanged + older + control,
        "ticks": ticks_seen,
        "control": {"bts:subscription_succeeded": control},
        "ignored": {"older_than_snapshot": older} | ({"book_unchanged": unchanged} if unchanged else {}),
        "dropped": {},
    }
    assert parser.awaiting_snapshot() == parser.resync_needed == set()


@pytest.mark.parametrize("session", SESSIONS)
def test_diffs_before_their_snapshot_are_held_and_applied_when_it_comes(market_data, session):
    """Bitstamp's documented order: subscribe, buffer, fetch the snapshot, apply what is newer."""
    lines = session_lines(market_data, session)
    parser = BitstampParser()
    diffs = [line for line in lines if line[0] == "ws"]
    for _, _, text, recv_ns in diffs:
        assert parser.parse(text, recv_ns) == []
    data = [msg for msg in (json.loads(text) for _, _, text, _ in diffs) if msg["event"] == "data"]
    assert parser.stats.as_dict()["ignored"] == {"awaiting_snapshot": len(data)}
    assert parser.awaiting_snapshot() == {pair_of(msg["channel"]) for msg in data}
    assert parser.resync_needed == set()  # the first snapshot is on its way: nothing to ask
    last_recv_ns = diffs[-1][3]
    for _, url, text, _ in (line for line in lines if line[0] == "rest"):
        assert url is not None
        pair = url.rsplit("/", 1)[1]
        book = ReferenceBook(json.loads(text))
        for msg in data:
            if pair_of(msg["channel"]) == pair and int(msg["data"]["microtimestamp"]) > book.micros:
                book.apply(msg["data"])
        [tick] = parser.seed(url, text, last_recv_ns)
        assert (tick.bids, tick.asks) == book.top(parser.depth_levels), pair
    assert parser.awaiting_snapshot() == parser.resync_needed == set()
    assert parser.stats.as_dict()["dropped"] == {}


def test_a_rest_url_that_is_no_order_book_is_dropped():
    parser = BitstampParser()
    assert parser.seed("https://www.bitstamp.net/api/v2/ticker/btcusd", "{}", 1) == []
    assert parser.stats.as_dict()["dropped"] == {UNKNOWN_MESSAGE: 1}
    assert parser.stats.frames == 1


def write_capture(market_data: Path, session: str, out: Path) -> Path:
    with out.open("wb") as handle:
        for kind, url, text, recv_ns in session_lines(market_data, session):
            handle.write(capture.encode("bitstamp", recv_ns, text, rest=url if kind == "rest" else None))
    return out


@pytest.mark.parametrize("session", SESSIONS)
def test_normalize_and_replay_seed_bitstamp_books_from_rest_lines(market_data, session, tmp_path):
    path = write_capture(market_data, session, tmp_path / "bitstamp.jsonl")
    expected = []
    parser = BitstampParser(max_age_ms=None)
    with path.open("rb") as written:
        for line in map(capture.decode, written):  # receive times as the capture holds them
            ticks = (
                parser.seed(line.rest, line.raw, line.recv_ns) if line.rest else parser.parse(line.raw, line.recv_ns)
            )
            expected += [encode(tick) for tick in ticks]
    assert len(expected) > 100
    out = io.BytesIO()
    with path.open("rb") as lines:
        counts = normalize_lines(lines, make_parser("bitstamp", max_age_ms=None), out)
    assert out.getvalue().splitlines() == expected
    assert counts.skipped == {}
    assert counts.stats.as_dict()["dropped"] == {}
    stats = replay_files([path], EngineConfig(), io.BytesIO(), make_parser=make_parser)
    bitstamp = stats.parsers["bitstamp"].stats
    assert bitstamp.ticks == len(expected)
    assert bitstamp.as_dict()["dropped"] == {}
    assert stats.unseeded_rest == 0


RECV_NS = 1_641_343_697_403_365_900
RECV_US = RECV_NS // 1000


def order_book(bids: list[list[str]], asks: list[list[str]], micros: int = RECV_US - 2_000) -> str:
    data = {"timestamp": str(micros // 1_000_000), "microtimestamp": str(micros), "bids": bids, "asks": asks}
    return json.dumps({"event": "data", "channel": "order_book_btcusd", "data": data})


def full_side(best: int, step: int) -> list[list[str]]:
    """100 levels, best first, a cent apart, sizes 1, 2, ... (Bitstamp's order_book depth)."""
    return [[f"{(best + step * i) / 100:.2f}", str(i + 1)] for i in range(100)]


def test_an_order_book_message_replaces_the_book_and_gives_its_top_levels():
    parser = BitstampParser(depth_levels=3)
    [tick] = parser.parse(order_book(full_side(10050, -1), full_side(10060, 1)), RECV_NS)
    assert (tick.type, tick.symbol, tick.timestamp) == ("book", "BTC/USD", (RECV_US - 2_000) // 1000)
    assert tick.bids == [[100.5, 1.0], [100.49, 2.0], [100.48, 3.0]]
    assert tick.asks == [[100.6, 1.0], [100.61, 2.0], [100.62, 3.0]]
    # A change beyond the top 3 levels sends nothing; one within them sends the new levels.
    deeper = full_side(10050, -1)
    deeper[50][1] = "99"
    assert parser.parse(order_book(deeper, full_side(10060, 1)), RECV_NS) == []
    [tick] = parser.parse(order_book(full_side(10051, -1), full_side(10060, 1)), RECV_NS)
    assert tick.bids == [[100.51, 1.0], [100.5, 2.0], [100.49, 3.0]]
    assert parser.stats.as_dict()["ignored"] == {"book_unchanged": 1}


def test_a_crossed_order_book_is_dropped_without_a_resync_and_the_next_message_restores_it():
    parser = BitstampParser()
    good = order_book(full_side(10050, -1), full_side(10060, 1))
    assert len(parser.parse(good, RECV_NS)) == 1
    crossed = order_book(full_side(10070, -1), full_side(10060, 1))
    assert parser.parse(crossed, RECV_NS) == [lost("bitstamp", "BTC/USD", RECV_NS)]  # the book sent is gone
    assert parser.stats.as_dict()["dropped"] == {CROSSED_BOOK: 1}
    assert parser.resync_needed == parser.awaiting_snapshot() == set()  # the next message is a whole book
    [tick] = parser.parse(good, RECV_NS)  # the same levels as before the drop: sent again
    assert tick.bid == 100.5


def test_order_book_levels_out_of_order_are_a_bad_price():
    parser = BitstampParser()
    assert parser.parse(order_book([["100.4", "1"], ["100.5", "1"]], [["100.6", "1"]]), RECV_NS) == []
    assert parser.stats.as_dict()["dropped"] == {"bad_price": 1}


def diff(bids: list[list[str]], asks: list[list[str]], micros: int) -> str:
    data = {"microtimestamp": str(micros), "bids": bids, "asks": asks}
    return json.dumps({"event": "data", "channel": "diff_order_book_btcusd", "data": data})


def test_a_diff_that_crosses_the_book_drops_it_and_asks_once_for_a_snapshot():
    parser = BitstampParser()
    snapshot = {"microtimestamp": str(RECV_US - 10_000), "bids": [["100.5", "1"]], "asks": [["100.6", "1"]]}
    url = "https://www.bitstamp.net/api/v2/order_book/btcusd"
    assert len(parser.seed(url, json.dumps(snapshot), RECV_NS)) == 1
    assert parser.parse(diff([["100.7", "1"]], [], RECV_US - 5_000), RECV_NS) == [lost("bitstamp", "BTC/USD", RECV_NS)]
    assert parser.stats.as_dict()["dropped"] == {BOOK_GAP: 1}
    assert parser.resync_needed == parser.awaiting_snapshot() == {"btcusd"}
    parser.resync_needed.clear()  # the request was taken
    assert parser.parse(diff([["100.4", "1"]], [], RECV_US - 4_000), RECV_NS) == []  # told once
    assert parser.stats.as_dict()["dropped"] == {BOOK_GAP: 2}
    assert parser.resync_needed == set()  # once per loss
    [tick] = parser.seed(url, json.dumps(snapshot), RECV_NS)
    assert (tick.bid, tick.ask) == (100.5, 100.6)
    assert parser.awaiting_snapshot() == set()
