"""Every tick from the recorded Gemini frames equals what the frames say, and every frame is accounted for.

Gemini gives its top of book only through the `l2` stream, so the expected
quotes come from a book rebuilt here, independently of the parser: Decimal
prices and sizes from `json.loads`, the top found by scanning the whole book
after every frame. A quote is expected exactly when that top (bid, bid size,
ask, ask size) differs from the one before; a trade tick for every `trade`
frame, with its event time; heartbeats are control frames.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from ingest_worker.tests.recorded import files, frames
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


class ReferenceBooks:
    """The books as the frames describe them, kept as plainly as possible."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[Levels, Levels]] = {}
        self.tops: dict[str, tuple[Decimal | None, ...]] = {}

    def apply(self, msg: dict[str, object]) -> tuple[Decimal | None, ...] | None:
        """Apply one l2_updates frame; the new top if it changed, else None."""
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
        best_bid = max(bids) if bids else None
        best_ask = min(asks) if asks else None
        top = (
            best_bid,
            None if best_bid is None else bids[best_bid],
            best_ask,
            None if best_ask is None else asks[best_ask],
        )
        if self.tops.get(native) == top:
            return None
        self.tops[native] = top
        return top


def quote_tick(native: str, top: tuple[Decimal | None, ...], recv_ns: int) -> Tick:
    bid, bid_size, ask, ask_size = (float(value) for value in top)  # type: ignore[arg-type]
    # l2 frames carry no event time: the receive time stands in.
    return Tick("gemini", GEMINI_SYMBOLS[native], "quote", (bid + ask) / 2, 0.0, bid, ask, bid_size, ask_size,
                recv_ns // 1_000_000, recv_ns)  # fmt: skip


def trade_tick(msg: dict[str, object], recv_ns: int) -> Tick:
    assert isinstance(msg["timestamp"], int)
    return Tick("gemini", GEMINI_SYMBOLS[msg["symbol"]], "trade", float(Decimal(msg["price"])),  # type: ignore[index,arg-type]
                float(Decimal(msg["quantity"])), None, None, None, None, msg["timestamp"], recv_ns)  # type: ignore[arg-type]  # fmt: skip


def assert_same(got: list[Tick], want: list[Tick], where: str) -> None:
    assert len(got) == len(want), where
    for got_tick, want_tick in zip(got, want, strict=True):
        assert type(got_tick) is Tick, where
        for field in Tick._fields:
            got_value, want_value = getattr(got_tick, field), getattr(want_tick, field)
            assert got_value == want_value, f"{where} {want_tick.type} {field}: {got_value!r} != {want_value!r}"
            assert type(got_value) is type(want_value), f"{where} {field}"


def replay_file(path: Path) -> tuple[GeminiParser, dict[str, int]]:
    """Parse every frame of `path` with the 60 s clock check; check each frame's ticks; count the outcomes."""
    parser = GeminiParser()
    reference = ReferenceBooks()
    counts = {"frames": 0, "quote": 0, "trade": 0, "heartbeat": 0, "top_unchanged": 0, "snapshot_trades": 0}
    for line, (frame, recv_ns) in enumerate(frames(path), 1):
        where = f"{path.name}:{line}"
        msg = json.loads(frame)
        counts["frames"] += 1
        want: list[Tick] = []
        if msg["type"] == "l2_updates":
            counts["snapshot_trades"] += len(msg.get("trades", []))
            top = reference.apply(msg)
            if top is None:
                counts["top_unchanged"] += 1
            else:
                assert None not in top, f"{where}: a one-sided book in the recording"
                want = [quote_tick(msg["symbol"], top, recv_ns)]
                counts["quote"] += 1
        elif msg["type"] == "trade":
            want = [trade_tick(msg, recv_ns)]
            counts["trade"] += 1
        else:
            assert msg["type"] == "heartbeat", where
            counts["heartbeat"] += 1
        assert_same(parser.parse(frame, recv_ns), want, where)
    return parser, counts


def test_every_tick_of_every_recorded_file_comes_from_its_frames(market_data):
    for path in files(market_data / "gemini", "*.jsonl"):
        parser, counts = replay_file(path)
        # Every frame has one outcome: ticks, control or ignored (the top did not move); none dropped.
        assert parser.stats.as_dict() == {
            "frames": counts["frames"],
            "ticks": counts["quote"] + counts["trade"],
            "control": {"heartbeat": counts["heartbeat"]} if counts["heartbeat"] else {},
            "ignored": {"l2_top_unchanged": counts["top_unchanged"]} if counts["top_unchanged"] else {},
            "dropped": {},
        }, path.name
        assert counts["frames"] == counts["quote"] + counts["trade"] + counts["heartbeat"] + counts["top_unchanged"]


def test_the_recordings_hold_what_these_tests_rely_on(market_data):
    """Otherwise the test above could pass without proving anything."""
    _, l2 = replay_file(market_data / "gemini" / "l2.jsonl")
    assert l2["quote"] > 300
    assert l2["top_unchanged"] > 300
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
