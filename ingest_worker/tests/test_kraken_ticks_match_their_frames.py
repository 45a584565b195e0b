"""Every field of every tick from the recorded Kraken v1 ticker and trade frames equals what the frame says.

A v1 `ticker` frame gives a quote: best bid/ask with their lot volumes, no event
time (the receive time stands in). A v1 `trade` frame lists trades, each with its
own time in epoch seconds. The expected ticks are worked out here from
`json.loads` and Decimal, independently of the parser; every other frame of the
recordings is accounted for as a control frame.
"""

from __future__ import annotations

import json
from decimal import Decimal

from ingest_worker.tests.recorded import frames
from ingest_worker.venues.kraken import KrakenParser
from signals_app.contracts.tick import Tick

# Every pair in market-data/kraken, and its canonical symbol (XBT is BTC), written out by hand.
KRAKEN_SYMBOLS = {
    "ADA/XBT": "ADA/BTC",
    "ETH/CHF": "ETH/CHF",
    "GRT/ETH": "GRT/ETH",
    "KSM/XBT": "KSM/BTC",
    "OCEAN/XBT": "OCEAN/BTC",
    "OMG/USD": "OMG/USD",
    "SC/EUR": "SC/EUR",
    "WAVES/EUR": "WAVES/EUR",
    "XBT/CHF": "BTC/CHF",
    "XMR/USD": "XMR/USD",
}


def number(text: str) -> float:
    assert isinstance(text, str), text
    return float(Decimal(text))


def epoch_ms(text: str) -> int:
    """`1618678142.557535` -> 1618678142557: Unix ms, the sub-millisecond digits cut off."""
    return int(Decimal(text) * 1000)


def assert_same(got: list[Tick], want: list[Tick], where: str) -> None:
    assert len(got) == len(want), where
    for got_tick, want_tick in zip(got, want, strict=True):
        assert type(got_tick) is Tick
        for field in Tick._fields:
            got_value, want_value = getattr(got_tick, field), getattr(want_tick, field)
            assert got_value == want_value, f"{where} {field}: {got_value!r} != {want_value!r}"
            assert type(got_value) is type(want_value), f"{where} {field}"


def test_every_ticker_quote_field_comes_from_its_frame(market_data):
    parser = KrakenParser()
    recorded = frames(market_data / "kraken" / "ticker.jsonl")
    quotes = subscribed = 0
    for line, (frame, recv_ns) in enumerate(recorded, 1):
        msg = json.loads(frame)
        got = parser.parse(frame, recv_ns)
        if isinstance(msg, dict):
            assert msg["event"] == "subscriptionStatus"
            assert msg["status"] == "subscribed"
            assert got == []
            subscribed += 1
            continue
        _, data, channel, pair = msg
        assert channel == "ticker"
        bid, ask = number(data["b"][0]), number(data["a"][0])
        want = Tick(
            "kraken",
            KRAKEN_SYMBOLS[pair],
            "quote",
            (bid + ask) / 2,
            0.0,
            bid,
            ask,
            number(data["b"][2]),
            number(data["a"][2]),  # the lot volume, not the whole-lot one
            recv_ns // 1_000_000,
            recv_ns,
        )
        assert_same(got, [want], f"ticker.jsonl:{line}")
        quotes += 1
    assert quotes == 18
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": quotes,
        "control": {"subscriptionStatus": subscribed},
        "ignored": {},
        "dropped": {},
    }


def test_every_trade_field_comes_from_its_frame(market_data):
    parser = KrakenParser()  # the 60 s clock check is on: every recorded trade is fresh
    recorded = frames(market_data / "kraken" / "trade.jsonl")
    trades = trade_frames = subscribed = 0
    for line, (frame, recv_ns) in enumerate(recorded, 1):
        msg = json.loads(frame)
        got = parser.parse(frame, recv_ns)
        if isinstance(msg, dict):
            assert msg["event"] == "subscriptionStatus"
            assert got == []
            subscribed += 1
            continue
        _, data, channel, pair = msg
        assert channel == "trade"
        want = [
            Tick(
                "kraken",
                KRAKEN_SYMBOLS[pair],
                "trade",
                number(price),
                number(volume),
                None,
                None,
                None,
                None,
                epoch_ms(time),
                recv_ns,
            )
            for price, volume, time, *_ in data
        ]
        assert_same(got, want, f"trade.jsonl:{line}")
        trades += len(want)
        trade_frames += 1
    assert trades >= trade_frames == 8
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": trades,
        "control": {"subscriptionStatus": subscribed},
        "ignored": {},
        "dropped": {},
    }


def test_connection_messages_are_control_frames(market_data):
    parser = KrakenParser()
    recorded = frames(market_data / "kraken" / "control.jsonl")
    kinds: dict[str, int] = {}
    for frame, recv_ns in recorded:
        assert parser.parse(frame, recv_ns) == []
        kind = json.loads(frame)["event"]
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == {"heartbeat": 92, "systemStatus": 3}
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": 0,
        "control": kinds,
        "ignored": {},
        "dropped": {},
    }


def test_every_recorded_pair_maps_to_its_canonical_symbol():
    table = KrakenParser.default_symbols()
    for native, symbol in KRAKEN_SYMBOLS.items():
        assert table.resolve(native) == symbol
    assert table.resolve("XBT/USDT") == "BTC/USDT"  # USDT stays USDT
    assert table.resolve("XDG/EUR") == "DOGE/EUR"
