"""Every field of every tick from the recorded Bitfinex frames equals what the frame says.

The expected ticks are worked out here from `json.loads` (numbers as Decimal) and a
channel map built by this test from the `subscribed` events, independently of the
parser; book ticks from books kept here by Bitfinex's documented rules (a ticker of a
market with a book is ignored: the book gives the top). Every frame is accounted for:
tick-giving, control, ignored or dropped.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingest_worker.tests.recorded import files, frames
from ingest_worker.venues.bitfinex import BitfinexParser
from signals_app.contracts.tick import Tick

# Every market in market-data/bitfinex and its canonical symbol, written out by hand.
# Bitfinex's IOT, MNA, ODE, SNG are IOTA, MANA, ODEM, SNGLS; DOG is MDOGE (a million DOGE).
BITFINEX_SYMBOLS = {
    "tBFTUSD": "BFT/USD",
    "tIOTETH": "IOTA/ETH",
    "tDOGUSD": "MDOGE/USD",
    "tMNABTC": "MANA/BTC",
    "tODEUSD": "ODEM/USD",
    "tSNGUSD": "SNGLS/USD",
    "tTESTBTC:TESTUSD": "TESTBTC/TESTUSD",
}


def number(value: object) -> float:
    assert isinstance(value, Decimal | int), value
    assert not isinstance(value, bool), value
    return float(value)


def load(frame: str) -> object:
    return json.loads(frame, parse_float=Decimal)


class Expectation:
    """What each frame of one connection must give, from this test's own reading of the frames."""

    def __init__(self, max_age_ms: int | None, depth: int = 20) -> None:
        self.max_age_ms = max_age_ms
        self.depth = depth
        self.channels: dict[int, tuple[str, str]] = {}  # chanId -> (channel, canonical symbol)
        self.books: dict[int, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}  # chanId -> bids, asks
        self.sent: dict[str, tuple[list[list[float]], list[list[float]]]] = {}  # symbol -> last levels
        self.control: dict[str, int] = {}
        self.ignored: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.tick_frames = 0
        self.last_seq: int | None = None
        self.gaps = 0

    def count(self, counter: dict[str, int], kind: str) -> list[Tick]:
        counter[kind] = counter.get(kind, 0) + 1
        return []

    def ticks(self, frame: str, recv_ns: int) -> list[Tick]:
        msg = load(frame)
        if isinstance(msg, dict):
            if msg["event"] == "subscribed":
                self.channels[msg["chanId"]] = (msg["channel"], BITFINEX_SYMBOLS[msg["symbol"]])
            return self.count(self.control, msg["event"])
        assert isinstance(msg, list)
        assert len(msg) == 3, frame  # conf SEQ_ALL: every list frame ends with the sequence number
        seq = msg[-1]
        if self.last_seq is not None and seq != self.last_seq + 1:
            self.gaps += 1
        self.last_seq = seq
        chan_id, payload = msg[0], msg[1]
        if payload == "hb":
            return self.count(self.control, "hb" if chan_id in self.channels else "hb_unknown_channel")
        channel, symbol = self.channels[chan_id]
        if channel == "book":
            return self.book(chan_id, symbol, payload, recv_ns)
        if channel == "ticker":
            if any(self.channels[book_id][1] == symbol for book_id in self.books):
                return self.count(self.ignored, "ticker_behind_book")  # the book gives the top
            bid, bid_size, ask, ask_size = (number(value) for value in payload[:4])
            assert len(payload) == 10
            assert 0 < bid < ask
            assert bid_size > 0
            assert ask_size > 0
            # No event time in a ticker frame; the sizes are 25-level sums, so not emitted.
            timestamp = recv_ns // 1_000_000
            self.tick_frames += 1
            return [Tick("bitfinex", symbol, "quote", (bid + ask) / 2, 0.0, bid, ask, None, None, timestamp, recv_ns)]
        assert channel == "trades"
        assert all(isinstance(entry, list) for entry in payload), frame  # the recordings hold snapshots only
        want = []
        for trade_id, mts, amount, price in reversed(payload):  # newest first on the wire; oldest first out
            assert isinstance(trade_id, int)
            assert isinstance(mts, int)
            if self.max_age_ms is not None and abs(recv_ns // 1_000_000 - mts) > self.max_age_ms:
                continue
            want.append(Tick("bitfinex", symbol, "trade", number(price), abs(number(amount)), None, None, None,
                             None, mts, recv_ns))  # fmt: skip
        if want:
            self.tick_frames += 1
            return want
        return self.count(self.dropped, "stale")

    def book(self, chan_id: int, symbol: str, payload: list[Any], recv_ns: int) -> list[Tick]:
        """A book frame read by Bitfinex's documented rules; the book tick when the top levels changed."""
        if not payload or isinstance(payload[0], list):
            self.books[chan_id] = ({}, {})
            self.sent.pop(symbol, None)
            levels = payload
        else:
            levels = [payload]
        bids, asks = self.books[chan_id]
        for price, count, amount in levels:
            side = bids if amount > 0 else asks
            if count == 0:
                side.pop(Decimal(price), None)
            else:
                side[Decimal(price)] = abs(Decimal(amount))
        top = (
            [[float(p), float(bids[p])] for p in sorted(bids, reverse=True)[: self.depth]],
            [[float(p), float(asks[p])] for p in sorted(asks)[: self.depth]],
        )
        assert top[0], "a one-sided book in the recording"
        assert top[1], "a one-sided book in the recording"
        assert top[0][0][0] < top[1][0][0], "a crossed book in the recording"
        if top == self.sent.get(symbol):
            return self.count(self.ignored, "book_unchanged")
        self.sent[symbol] = top
        (bid, bid_size), (ask, ask_size) = top[0][0], top[1][0]
        self.tick_frames += 1
        return [Tick("bitfinex", symbol, "book", (bid + ask) / 2, 0.0, bid, ask, bid_size, ask_size,
                     recv_ns // 1_000_000, recv_ns, *top)]  # fmt: skip


def check_file(parser: BitfinexParser, expect: Expectation, recorded: list[tuple[str, int]], label: str) -> int:
    made = 0
    for line, (frame, recv_ns) in enumerate(recorded, 1):
        got = parser.parse(frame, recv_ns)
        want = expect.ticks(frame, recv_ns)
        assert len(got) == len(want), f"{label}:{line}"
        for got_tick, want_tick in zip(got, want, strict=True):
            assert type(got_tick) is Tick
            for field in Tick._fields:
                got_value, want_value = getattr(got_tick, field), getattr(want_tick, field)
                assert got_value == want_value, f"{label}:{line} {want_tick.type} {field}: {got_value!r}"
                assert type(got_value) is type(want_value), f"{label}:{line} {field}"
        made += len(got)
    return made


def merged(folder: Path) -> list[tuple[str, int]]:
    """The recorded connection put back together: every file's frames in receive order."""
    everything = [item for path in files(folder, "*.jsonl") for item in frames(path)]
    return sorted(everything, key=lambda item: item[1])  # sorted() is stable: ties keep file order


@pytest.mark.parametrize("max_age_ms", [None, 60_000])
@pytest.mark.parametrize("name", ["control.jsonl", "ticker.jsonl", "trades.jsonl", "book.jsonl"])
def test_every_tick_of_every_recorded_file_comes_from_its_frame(market_data, name, max_age_ms):
    parser = BitfinexParser(max_age_ms=max_age_ms)
    expect = Expectation(max_age_ms)
    recorded = frames(market_data / "bitfinex" / name)
    made = check_file(parser, expect, recorded, name)
    stats = parser.stats
    assert stats.as_dict() == {
        "frames": len(recorded),
        "ticks": made,
        "control": dict(sorted(expect.control.items())),
        "ignored": dict(sorted(expect.ignored.items())),
        "dropped": dict(sorted(expect.dropped.items())),
    }
    outcomes = sum(stats.control.values()) + sum(stats.ignored.values()) + sum(stats.dropped.values())
    assert expect.tick_frames + outcomes == len(recorded)
    # Each file holds one channel's share of one connection: the others' frames are the gaps.
    assert parser.sequence_gaps == expect.gaps


def test_all_files_are_one_connection_without_a_sequence_gap(market_data):
    recorded = merged(market_data / "bitfinex")
    parser = BitfinexParser(max_age_ms=None)
    expect = Expectation(None)
    made = check_file(parser, expect, recorded, "bitfinex/*")
    assert parser.sequence_gaps == expect.gaps == 0
    behind = expect.ignored["ticker_behind_book"]
    unchanged = expect.ignored["book_unchanged"]
    # Every ticker frame before its market's book; every trade of the seven snapshots; each book change.
    assert made == 21 - behind + 7 * 30 + 1600 - unchanged
    assert behind > 0
    assert parser.stats.as_dict() == {
        "frames": 1693,
        "ticks": made,
        "control": {"conf": 1, "hb": 40, "hb_unknown_channel": 2, "info": 1, "subscribed": 21},
        "ignored": {"book_unchanged": unchanged, "ticker_behind_book": behind},
        "dropped": {},
    }
    assert parser.snapshot_trades_skipped == {}


def test_with_the_clock_check_snapshot_trades_older_than_60_s_are_skipped(market_data):
    """A trades snapshot is the market's history: on subscribe most of it is hours old."""
    parser = BitfinexParser()  # 60 s
    recorded = frames(market_data / "bitfinex" / "trades.jsonl")
    fresh = stale = 0
    for frame, recv_ns in recorded:
        msg = json.loads(frame)
        if isinstance(msg, list) and isinstance(msg[1], list):
            for entry in msg[1]:
                if abs(recv_ns // 1_000_000 - entry[1]) > 60_000:
                    stale += 1
                else:
                    fresh += 1
        parser.parse(frame, recv_ns)
    assert fresh >= 1  # the recording holds a trade seconds before the subscription
    assert stale >= 1
    assert parser.stats.ticks == fresh
    assert parser.stats.dropped["stale"] == 6  # six of the seven snapshots hold no fresh trade
    assert parser.snapshot_trades_skipped == {"stale": stale - 6 * 30}
