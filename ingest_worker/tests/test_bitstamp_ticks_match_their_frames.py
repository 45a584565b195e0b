"""Every field of every tick from the recorded Bitstamp frames equals what the frames say.

Trades come straight from their `live_trades` frame. Quotes come from the book: the REST
snapshot of each pair (`order_book_rest*.jsonl`, its pair in the `.url` file) updated by the
`diff_order_book` frames; here the book is rebuilt independently, with `json.loads` and
Decimal, and a quote is expected exactly when its top (best bid/ask price or size) changes.
Symbols are written out by hand.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from ingest_worker.tests.recorded import files, frames
from ingest_worker.venues.bitstamp import BitstampParser
from signals_app.contracts.tick import Tick

# Every pair in market-data/bitstamp, and its canonical symbol.
BITSTAMP_SYMBOLS: dict[str, str] = {
    "adaeur": "ADA/EUR",
    "batbtc": "BAT/BTC",
    "bateur": "BAT/EUR",
    "bcheur": "BCH/EUR",
    "bchgbp": "BCH/GBP",
    "btcusd": "BTC/USD",
    "ethgbp": "ETH/GBP",
    "ethusd": "ETH/USD",
    "galaeur": "GALA/EUR",
    "gbpusd": "GBP/USD",
    "gusdusd": "GUSD/USD",
    "knceur": "KNC/EUR",
    "kncusd": "KNC/USD",
    "linkbtc": "LINK/BTC",
    "ltcusd": "LTC/USD",
    "sgbeur": "SGB/EUR",
    "usdteur": "USDT/EUR",
    "usdtusd": "USDT/USD",
    "xlmgbp": "XLM/GBP",
    "xrpeur": "XRP/EUR",
}
SESSIONS = ["", ".20210417"]  # the 2022-01-05 and 2021-04-17 recordings


def number(value: object) -> float:
    return float(Decimal(str(value)))


def pair_of(channel: str) -> str:
    return channel.split("_")[-1]


def assert_same_tick(got: Tick, want: Tick, where: str) -> None:
    assert type(got) is Tick, where
    for field in Tick._fields:
        got_value, want_value = getattr(got, field), getattr(want, field)
        assert got_value == want_value, f"{where} {want.type} {field}: {got_value!r} != {want_value!r}"
        assert type(got_value) is type(want_value), f"{where} {field}"


def test_every_recorded_pair_maps_to_its_canonical_symbol(market_data):
    table = BitstampParser.default_symbols()
    seen: set[str] = set()
    for path in files(market_data / "bitstamp", "*.jsonl"):
        if path.name.startswith("order_book_rest"):
            seen.update(url.rsplit("/", 1)[1] for url in path.with_suffix(".url").read_text().split())
        else:
            seen.update(pair_of(json.loads(frame)["channel"]) for frame, _ in frames(path))
    assert seen == set(BITSTAMP_SYMBOLS)
    for pair, symbol in BITSTAMP_SYMBOLS.items():
        assert table.resolve(pair) == symbol


@pytest.mark.parametrize("session", SESSIONS)
def test_every_trade_tick_field_comes_from_its_frame(market_data, session):
    name = f"live_trades{session}.jsonl"
    recorded = frames(market_data / "bitstamp" / name)
    parser = BitstampParser()  # the contract's 60 s clock check: these trades are all fresh
    trades = subscribed = 0
    for line, (frame, recv_ns) in enumerate(recorded, 1):
        msg = json.loads(frame)
        got = parser.parse(frame, recv_ns)
        if msg["event"] == "bts:subscription_succeeded":
            subscribed += 1
            assert got == [], f"{name}:{line}"
            continue
        assert msg["event"] == "trade"
        data = msg["data"]
        price, amount = number(data["price"]), number(data["amount"])
        assert price == number(data["price_str"])
        assert amount == number(data["amount_str"])
        timestamp = int(data["microtimestamp"]) // 1000
        assert abs(recv_ns // 1_000_000 - timestamp) < 60_000
        symbol = BITSTAMP_SYMBOLS[pair_of(msg["channel"])]
        want = Tick("bitstamp", symbol, "trade", price, amount, None, None, None, None, timestamp, recv_ns)
        assert len(got) == 1, f"{name}:{line}"
        assert_same_tick(got[0], want, f"{name}:{line}")
        trades += 1
    assert trades >= 10
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": trades,
        "control": {"bts:subscription_succeeded": subscribed},
        "ignored": {},
        "dropped": {},
    }


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

    def top(self) -> tuple[float, float, float, float]:
        bid, ask = max(self.bids), min(self.asks)
        assert bid < ask, "a real book is never crossed"
        return float(bid), float(self.bids[bid]), float(ask), float(self.asks[ask])


def replay(market_data: Path, session: str) -> list[tuple[str, str | None, str, int]]:
    """(kind, pair, text, recv_ns) of the REST snapshots and the diff frames, in receive order."""
    folder = market_data / "bitstamp"
    rest = frames(folder / f"order_book_rest{session}.jsonl")
    urls = (folder / f"order_book_rest{session}.url").read_text().split()
    assert len(urls) == len(rest)
    events: list[tuple[str, str | None, str, int]] = [
        ("snapshot", url.rsplit("/", 1)[1], body, recv_ns) for url, (body, recv_ns) in zip(urls, rest, strict=True)
    ]
    events += [("frame", None, frame, recv_ns) for frame, recv_ns in frames(folder / f"diff_order_book{session}.jsonl")]
    return sorted(events, key=lambda event: event[3])  # stable: file order within a receive time


@pytest.mark.parametrize("session", SESSIONS)
def test_book_tops_match_a_book_rebuilt_from_the_same_frames(market_data, session):
    parser = BitstampParser()
    books: dict[str, ReferenceBook] = {}
    sent: dict[str, tuple[float, float, float, float] | None] = {}
    quotes = unchanged = older = control = 0
    for number_, (kind, pair, text, recv_ns) in enumerate(replay(market_data, session), 1):
        where = f"diff_order_book{session} event {number_}"
        if kind == "snapshot":
            assert pair is not None
            got = parser.load_snapshot(pair, text, recv_ns)
            book = books[pair] = ReferenceBook(json.loads(text))
            sent[pair] = None
            timestamp = book.micros // 1000
        else:
            got = parser.parse(text, recv_ns)
            msg = json.loads(text)
            if msg["event"] == "bts:subscription_succeeded":
                control += 1
                assert got == [], where
                continue
            assert msg["event"] == "data"
            pair = pair_of(msg["channel"])
            book = books[pair]  # every snapshot arrives before the diffs in these recordings
            micros = int(msg["data"]["microtimestamp"])
            if micros <= book.micros:  # already in the snapshot
                older += 1
                assert got == [], where
                continue
            book.apply(msg["data"])
            timestamp = micros // 1000
        top = book.top()
        if top == sent[pair]:
            unchanged += 1
            assert got == [], where
            continue
        sent[pair] = top
        bid, bid_size, ask, ask_size = top
        assert abs(recv_ns // 1_000_000 - timestamp) < 60_000
        want = Tick(
            "bitstamp", BITSTAMP_SYMBOLS[pair], "quote", (bid + ask) / 2, 0.0, bid, ask, bid_size, ask_size,
            timestamp, recv_ns,
        )  # fmt: skip
        assert len(got) == 1, where
        assert_same_tick(got[0], want, where)
        quotes += 1
    # The recordings exercise every branch: fresh tops, moves below the top, diffs the snapshot holds.
    assert quotes > 100
    assert unchanged > 100
    assert older > 100
    assert parser.stats.as_dict() == {
        "frames": quotes + unchanged + older + control,
        "ticks": quotes,
        "control": {"bts:subscription_succeeded": control},
        "ignored": {"older_than_snapshot": older, "top_unchanged": unchanged},
        "dropped": {},
    }
    assert parser.awaiting_snapshot() == set()


@pytest.mark.parametrize("session", SESSIONS)
def test_diffs_before_the_snapshot_are_counted_not_quoted(market_data, session):
    parser = BitstampParser()
    recorded = frames(market_data / "bitstamp" / f"diff_order_book{session}.jsonl")
    diffs = sum(json.loads(frame)["event"] == "data" for frame, _ in recorded)
    for frame, recv_ns in recorded:
        assert parser.parse(frame, recv_ns) == []
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": 0,
        "control": {"bts:subscription_succeeded": len(recorded) - diffs},
        "ignored": {"awaiting_snapshot": diffs},
        "dropped": {},
    }
    with_diffs = {
        pair_of(msg["channel"]) for msg in map(json.loads, (f for f, _ in recorded)) if msg["event"] == "data"
    }
    assert parser.awaiting_snapshot() == with_diffs
