"""Every field of every tick from the recorded Binance spot frames equals what the frame says.

The expected tick is worked out here from `json.loads` of the frame, Decimal
for the decimal strings and the hand-written symbol table, then compared field
by field with what the parser made.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ingest_worker.tests.recorded import BINANCE_SYMBOLS, files, frames
from ingest_worker.venues.binance import BinanceParser
from signals_app.contracts.tick import Tick


def number(text: str) -> float:
    assert isinstance(text, str), text  # Binance sends prices and sizes as decimal strings
    return float(Decimal(text))


def spot_symbol(native: str) -> str:
    symbol = BINANCE_SYMBOLS[native]
    assert symbol is not None, f"{native} is no spot market"
    return symbol


def expected_quote(frame: str, recv_ns: int) -> Tick:
    data = json.loads(frame)["data"]
    bid, ask = number(data["b"]), number(data["a"])
    return Tick(
        exchange="binance",
        symbol=spot_symbol(data["s"]),
        type="quote",
        price=(bid + ask) / 2,
        volume=0.0,
        bid=bid,
        ask=ask,
        bid_size=number(data["B"]),
        ask_size=number(data["A"]),
        timestamp=recv_ns // 1_000_000,  # spot bookTicker has no event time: the receive time stands in
        recv_ns=recv_ns,
    )


def expected_trade(frame: str, recv_ns: int) -> Tick:
    data = json.loads(frame)["data"]
    return Tick(
        exchange="binance",
        symbol=spot_symbol(data["s"]),
        type="trade",
        price=number(data["p"]),
        volume=number(data["q"]),
        bid=None,
        ask=None,
        bid_size=None,
        ask_size=None,
        timestamp=data["E"],  # the event time
        recv_ns=recv_ns,
    )


def assert_same_tick(got: Tick, want: Tick, where: str) -> None:
    assert type(got) is Tick, where
    for field in Tick._fields:
        got_value, want_value = getattr(got, field), getattr(want, field)
        assert got_value == want_value, f"{where}: {field} is {got_value!r}, the frame says {want_value!r}"
        assert type(got_value) is type(want_value), f"{where}: {field} is a {type(got_value).__name__}"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("bookTicker*.jsonl", expected_quote),
        ("trade*.jsonl", expected_trade),
        ("aggTrade*.jsonl", expected_trade),
    ],
)
def test_every_tick_field_comes_from_its_frame(market_data, pattern, expected):
    for path in files(market_data / "binance", pattern):
        parser = BinanceParser()  # with the default 60 s clock check: every recorded frame passes it
        recorded = frames(path)
        for line, (frame, recv_ns) in enumerate(recorded, 1):
            ticks = parser.parse(frame, recv_ns)
            assert len(ticks) == 1, f"{path.name}:{line} gave {len(ticks)} ticks"
            assert_same_tick(ticks[0], expected(frame, recv_ns), f"{path.name}:{line}")
        assert parser.stats.frames == parser.stats.ticks == len(recorded)
        assert parser.stats.as_dict()["dropped"] == {}


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [
        # Diffs with no snapshot given: held for it (test_binance_books_match_their_frames.py seeds them).
        ("depthUpdate*.jsonl", "depth_buffered"),
        # REST bodies fed as frames name no market: never applied to a guessed one.
        ("depth_snapshot_rest*.jsonl", "depth_without_symbol"),
        ("kline_1m*.jsonl", "kline"),
    ],
)
def test_frames_that_give_no_tick_alone_are_counted_ignored(market_data, pattern, kind):
    for path in files(market_data / "binance", pattern):
        parser = BinanceParser()
        recorded = frames(path)
        for frame, recv_ns in recorded:
            assert parser.parse(frame, recv_ns) == []
        assert parser.stats.as_dict() == {
            "frames": len(recorded),
            "ticks": 0,
            "control": {},
            "ignored": {kind: len(recorded)},
            "dropped": {},
        }, path.name


def test_every_recorded_binance_spot_file_is_covered(market_data):
    """A new kind of recorded file must be added to the tests above, not silently skipped."""
    covered = ("bookTicker", "trade", "aggTrade", "depthUpdate", "depth_snapshot_rest", "kline_1m")
    for path in files(market_data / "binance", "*.jsonl"):
        assert path.name.split(".")[0] in covered, path.name
