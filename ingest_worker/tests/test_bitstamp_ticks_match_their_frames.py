"""Every field of every trade tick from the recorded Bitstamp frames equals what the frames say,
and every recorded pair maps to its canonical symbol (written out by hand). The book ticks of
the recorded diff_order_book frames: test_bitstamp_books_match_their_frames.py.
"""

from __future__ import annotations

import json
from decimal import Decimal

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
