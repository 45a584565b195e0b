"""Every tick from the recorded Gemini frames equals what the frames say, and every frame is accounted for.

Gemini gives its book only through the `l2` stream, so the expected book ticks
come from a book rebuilt here, independently of the parser: Decimal prices and
sizes from `json.loads`, the top `depth` levels found by sorting the whole book
after every frame. A book tick is expected exactly when those levels differ
from the ones before; a trade tick for every `trade` frame, with its event
time; heartbeats are control frames.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from ingest_worker.tests.recorded import files, frames
from ingest_worker.tests.test_okx_ticks_match_their_frames import assert_same_ticks as assert_same
from ingest_worker.venues.gemini import GeminiParser
from signals_app.contracts.tick import Tick

# Every market in market-data/gemini and its canonical symbol, written out by hand.
GEMINI_SYMBOLS: dict[str, str] = {
    "ALCXUSD": "ALCX/USD",
    "AMPUSD": "AMP/USD",
    "ANKRUSD": "ANKR/USD",
    "BALUSD": "BAL/USD",
    "BATBTC": "BAT/BTC",
    "BCHBTC": "BCH/BTC",
    "BTCGBP": "BTC/GBP",
    "BTCUSD": "BTC/USD",
    "ETHBTC": "ETH/BTC",
    "ETHEUR": "ETH/EUR",
    "ETHUSD": "ETH/USD",
    "FILUSD": "FIL/USD",
    "GRTUSD": "GRT/USD",
    "LINKETH": "LINK/ETH",
    "LTCETH": "LTC/ETH",
    "LTCUSD": "LTC/USD",
    "MKRUSD": "MKR/USD",
    "OXTUSD": "OXT/USD",
    "ZECBTC": "ZEC/BTC",
    "ZECLTC": "ZEC/LTC",
}

Levels = dict[Decimal, Decimal]
TopLevels = tuple[list[list[float]], list[list[float]]]


class ReferenceBooks:
    """The books as the frames describe them, kept as plainly as possible."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.books: dict[str, tuple[Levels, Levels]] = {}
        self.tops: dict[str, TopLevels] = {}

    def apply(self, msg: dict[str, object]) -> TopLevels | None:
        """Apply one l2_updates frame; the new top `depth` levels if they changed, else None."""
        native = msg["symbol"]
        assert isinstance(native, str)
        if native not in self.books:
            # The recordings start each symbol with its snapshot, which carries the recent trades.
            assert "trades" in msg, f"{native}: first l2_updates is not a snapshot"
            self.books[native] = ({}, {})
        else:
            assert "trades" not in msg, f"{native}: a second snapshot on one connection"
        bids, asks = self.books[native]
        changes = msg["changes"]
        assert isinstance(changes, list)
        for side, price, quantity in changes:
            levels = bids if side == "buy" else asks
            assert side in ("buy", "sell")
            if Decimal(quantity) == 0:
                levels.pop(Decimal(price), None)
            else:
                levels[Decimal(price)] = Decimal(quantity)
        assert bids, f"{native}: a one-sided book in the recording"
        assert asks, f"{native}: a one-sided book in the recording"
        top = (
            [[float(p), float(bids[p])] for p in sorted(bids, reverse=True)[: self.depth]],
            [[float(p), float(asks[p])] for p in sorted(asks)[: self.depth]],
        )
        assert top[0][0][0] < top[1][0][0], f"{native}: a crossed book in the recording"
        if self.tops.get(native) == top:
            return None
        self.tops[native] = top
        return top


def book_tick(native: str, top: TopLevels, recv_ns: int) -> Tick:
    bids, asks = top
    (bid, bid_size), (ask, ask_size) = bids[0], asks[0]
    # l2 frames carry no event time: the receive time stands in.
    return Tick("gemini", GEMINI_SYMBOLS[native], "book", (bid + ask) / 2, 0.0, bid, ask, bid_size, ask_size,
                recv_ns // 1_000_000, recv_ns, bids, asks)  # fmt: skip


def trade_tick(msg: dict[str, object], recv_ns: int) -> Tick:
    assert isinstance(msg["timestamp"], int)
    return Tick("gemini", GEMINI_SYMBOLS[msg["symbol"]], "trade", float(Decimal(msg["price"])),  # type: ignore[index,arg-type]
                float(Decimal(msg["quantity"])), None, None, None, None, msg["timestamp"], recv_ns)  # type: ignore[arg-type]  # fmt: skip


def replay_file(path: Path, depth: int = 20) -> tuple[GeminiParser, dict[str, int]]:
    """Parse every frame of `path` with the 60 s clock check; check each frame's ticks; count the outcomes."""
    parser = GeminiParser(depth_levels=depth)
    reference = ReferenceBooks(depth)
    counts = {"frames": 0, "book": 0, "trade": 0, "heartbeat": 0, "unchanged": 0, "snapshot_trades": 0}
    for line, (frame, recv_ns) in enumerate(frames(path), 1):
        where = f"{path.name}:{line}"
        msg = json.loads(frame)
        counts["frames"] += 1
        want: list[Tick] = []
        if msg["type"] == "l2_updates":
            counts["snapshot_trades"] += len(msg.get("trades", []))
            top = reference.apply(msg)
            if top is None:
                counts["unchanged"] += 1
            else:
                want = [book_tick(msg["symbol"], top, recv_ns)]
                counts["book"] += 1
        elif msg["type"] == "trade":
            want = [trade_tick(msg, recv_ns)]
            counts["trade"] += 1
        else:
            assert msg["type"] == "heartbeat", where
            counts["heartbeat"] += 1
        assert_same(parser.parse(frame, recv_ns), want, where)
    return parser, counts


@pytest.mark.parametrize("depth", [1, 5, 20])
def test_every_tick_of_every_recorded_file_comes_from_its_frames(market_data, depth):
    for path in files(market_data / "gemini", "*.jsonl"):
        parser, counts = replay_file(path, depth)
        # Every frame has one outcome: ticks, control or ignored (the top levels did not move); none dropped.
        assert parser.stats.as_dict() == {
            "frames": counts["frames"],
            "ticks": counts["book"] + counts["trade"],
            "control": {"heartbeat": counts["heartbeat"]} if counts["heartbeat"] else {},
            "ignored": {"book_unchanged": counts["unchanged"]} if counts["unchanged"] else {},
            "dropped": {},
        }, path.name
        assert counts["frames"] == counts["book"] + counts["trade"] + counts["heartbeat"] + counts["unchanged"]
        assert parser.resync_needed == parser.awaiting_snapshot() == set()


def test_the_recordings_hold_what_these_tests_rely_on(market_data):
    """Otherwise the test above could pass without proving anything."""
    _, l2 = replay_file(market_data / "gemini" / "l2.jsonl", depth=1)
    assert l2["book"] > 300
    assert l2["unchanged"] > 300
    assert l2["snapshot_trades"] == 500  # 10 symbols x 50: history, not trade ticks
    _, trades = replay_file(market_data / "gemini" / "trade.jsonl")
    assert trades["trade"] == 51
    _, heartbeats = replay_file(market_data / "gemini" / "heartbeat.jsonl")
    assert heartbeats["heartbeat"] == 7


def test_every_recorded_market_maps_to_its_canonical_symbol(market_data):
    parser = GeminiParser()
    seen = set()
    for path in files(market_data / "gemini", "*.jsonl"):
        for frame, _ in frames(path):
            native = json.loads(frame).get("symbol")
            if native is not None:
                seen.add(native)
                assert parser.symbols.resolve(native) == GEMINI_SYMBOLS[native]
    assert seen == set(GEMINI_SYMBOLS)


def test_a_second_connection_starts_from_new_snapshots(market_data):
    """The same recording twice on one parser (reset between, as on a reconnect) gives the same ticks."""
    recorded = frames(market_data / "gemini" / "l2.20210624.jsonl")
    parser = GeminiParser()
    first = [tick for frame, recv_ns in recorded for tick in parser.parse(frame, recv_ns)]
    parser.reset()
    second = [tick for frame, recv_ns in recorded for tick in parser.parse(frame, recv_ns)]
    assert first == second
    assert len(first) == parser.stats.ticks // 2
