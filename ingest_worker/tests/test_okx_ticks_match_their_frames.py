"""Every field of every tick from the recorded OKX frames equals what the frame says, and every frame is accounted for.

`tickers` pushes give quotes (best bid/ask with sizes), `trades` pushes trades;
futures, swaps and options on the same connection are skipped and counted as
ignored under their kind, subscription answers are control frames, and the
order-book channels are ignored. The expected ticks and counts are worked out
here from `json.loads`, Decimal and a hand-written instrument table,
independently of the parser.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingest_worker.tests.recorded import files, frames
from ingest_worker.venues.okx import OkxParser
from signals_app.contracts.tick import Tick

# Every instrument in market-data/okx: its canonical symbol when it is a spot market,
# else its kind (the parser must skip those and count them as ignored).
OKX_SPOT: dict[str, str] = {
    "AUCTION-USDT": "AUCTION/USDT",
    "BTC-USDT": "BTC/USDT",
    "DHT-USDT": "DHT/USDT",
    "ELON-USDT": "ELON/USDT",
    "FUN-BTC": "FUN/BTC",
    "OKT-BTC": "OKT/BTC",
    "ONT-USDT": "ONT/USDT",
    "PAY-BTC": "PAY/BTC",
    "PROPS-ETH": "PROPS/ETH",
    "ZEN-USDT": "ZEN/USDT",
}
OKX_DERIVATIVES: dict[str, str] = {
    "BTC-USD-210924-42000-P": "option",
    "BTC-USD-210924-66000-C": "option",
    "BTC-USD-220325-40000-C": "option",
    "ETH-USD-220228-3000-C": "option",
    "ETH-USD-220325-8800-P": "option",
    "ETH-USD-220429-1900-P": "option",
    "ETH-USD-220624-12000-P": "option",
    "ETH-USD-220624-20000-C": "option",
    "BTC-USD-220527": "futures",
    "TRX-USDT-210924": "futures",
    "UNI-USD-SWAP": "swap",
    "XMR-USDT-SWAP": "swap",
}
MAX_AGE_MS = 60_000


def number(text: str) -> float:
    assert isinstance(text, str), text
    return float(Decimal(text))


def expected_ticks(msg: dict[str, Any], recv_ns: int) -> list[Tick]:
    """The ticks of a spot `tickers` or `trades` push."""
    channel = msg["arg"]["channel"]
    ticks = []
    for item in msg["data"]:
        symbol = OKX_SPOT[item["instId"]]
        timestamp = int(item["ts"])
        if channel == "tickers":
            bid, ask = number(item["bidPx"]), number(item["askPx"])
            ticks.append(
                Tick(
                    "okx", symbol, "quote", (bid + ask) / 2, 0.0, bid, ask, number(item["bidSz"]),
                    number(item["askSz"]), timestamp, recv_ns,
                )
            )  # fmt: skip
        else:
            assert channel == "trades"
            ticks.append(
                Tick(
                    "okx", symbol, "trade", number(item["px"]), number(item["sz"]), None, None, None, None,
                    timestamp, recv_ns,
                )
            )  # fmt: skip
    return ticks


def age_ms(msg: dict[str, Any], recv_ns: int) -> int:
    return max(abs(recv_ns // 1_000_000 - int(item["ts"])) for item in msg["data"])


def assert_same_ticks(got: list[Tick], want: list[Tick], where: str) -> None:
    assert len(got) == len(want), where
    for got_tick, want_tick in zip(got, want, strict=True):
        assert type(got_tick) is Tick, where
        for field in Tick._fields:
            got_value, want_value = getattr(got_tick, field), getattr(want_tick, field)
            assert got_value == want_value, f"{where} {want_tick.type} {field}: {got_value!r} != {want_value!r}"
            assert type(got_value) is type(want_value), f"{where} {field}"


def data_files(market_data: Path) -> list[Path]:
    return [*files(market_data / "okx", "tickers*.jsonl"), *files(market_data / "okx", "trades*.jsonl")]


@pytest.mark.parametrize("max_age_ms", [None, MAX_AGE_MS])
def test_every_tickers_and_trades_tick_field_comes_from_its_frame(market_data, max_age_ms):
    for path in data_files(market_data):
        parser = OkxParser(max_age_ms=max_age_ms)
        recorded = frames(path)
        control = ignored = ticking = stale = ticks = 0
        ignored_kinds: Counter[str] = Counter()
        for line, (frame, recv_ns) in enumerate(recorded, 1):
            where = f"{path.name}:{line}"
            msg = json.loads(frame)
            got = parser.parse(frame, recv_ns)
            if "event" in msg:
                assert msg["event"] == "subscribe", where
                assert got == [], where
                control += 1
                continue
            kinds = {OKX_DERIVATIVES.get(item["instId"]) for item in msg["data"]}
            if kinds != {None}:  # a derivative: never a spot price
                assert len(kinds) == 1, where  # the recordings never mix spot and derivatives in one push
                assert got == [], where
                ignored += 1
                ignored_kinds[kinds.pop()] += 1  # type: ignore[index]
                continue
            if max_age_ms is not None and age_ms(msg, recv_ns) > max_age_ms:
                assert got == [], where
                stale += 1
                continue
            assert_same_ticks(got, expected_ticks(msg, recv_ns), where)
            ticking += 1
            ticks += len(got)
        assert ticking > 0, path.name  # every data file has spot frames; otherwise this proves nothing
        assert ticking + control + ignored + stale == len(recorded)
        assert parser.stats.as_dict() == {
            "frames": len(recorded),
            "ticks": ticks,
            "control": {"subscribe": control},
            "ignored": dict(sorted(ignored_kinds.items())),
            "dropped": {"stale": stale} if stale else {},
        }, path.name


def test_only_the_old_trade_sent_on_subscribe_is_stale(market_data):
    """OKX pushes the last trade of a market on subscribe, however old: PROPS-ETH's is hours old."""
    parser = OkxParser(max_age_ms=MAX_AGE_MS)
    stale = []
    for path in data_files(market_data):
        for frame, recv_ns in frames(path):
            msg = json.loads(frame)
            if "data" in msg and not parser.parse(frame, recv_ns) and msg["data"][0]["instId"] in OKX_SPOT:
                stale.append((path.name, msg["data"][0]["instId"]))
    assert stale == [("trades.20220227.jsonl", "PROPS-ETH")]
    assert parser.stats.dropped["stale"] == 1


def test_tickers_give_quotes_only_and_trades_give_trades_only(market_data):
    for path in data_files(market_data):
        parser = OkxParser(max_age_ms=None)
        types = {tick.type for frame, recv_ns in frames(path) for tick in parser.parse(frame, recv_ns)}
        assert types == ({"quote"} if path.name.startswith("tickers") else {"trade"}), path.name


def test_the_offline_table_knows_every_recorded_spot_market_and_no_derivative():
    table = OkxParser.default_symbols()
    for native, symbol in OKX_SPOT.items():
        assert table.resolve(native) == symbol
    for native in OKX_DERIVATIVES:
        assert table.resolve(native) is None, native
