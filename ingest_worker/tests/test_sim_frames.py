"""The simulator's frames are shaped exactly like the venues' recorded ones, and our parsers take every one."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest_worker.sim.binance import BinanceFrames, decimal8
from ingest_worker.sim.coinbase import CoinbaseFrames, fixed, trimmed
from ingest_worker.sim.model import BINANCE, COINBASE, DEFAULT_ASSETS, MarketModel, Quote
from ingest_worker.sim.venue import IsoTime
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts.symbols import SymbolTable

T0 = 1_705_665_600_000_000_000
MS = 1_000_000
DECIMAL8 = re.compile(r"^\d+\.\d{8}$")
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
# Coinbase's ticker fields in the order the feed sends them (the 2021 recording, plus the sizes added in 2022).
COINBASE_TICKER_KEYS = [
    "type",
    "sequence",
    "product_id",
    "price",
    "open_24h",
    "volume_24h",
    "low_24h",
    "high_24h",
    "volume_30d",
    "best_bid",
    "best_bid_size",
    "best_ask",
    "best_ask_size",
    "side",
    "time",
    "trade_id",
    "last_size",
]


def model_quotes(seconds: int = 20, rate: float = 200) -> list[Quote]:
    model = MarketModel(DEFAULT_ASSETS, T0, seed=9, rate=rate, venues=(BINANCE, COINBASE))
    quotes: list[Quote] = []
    for i in range(1, seconds * 100 + 1):
        quotes.extend(model.advance(T0 + i * 10 * MS).quotes)
    return quotes


def first_line(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        line: dict[str, Any] = orjson.loads(handle.readline())
    return line


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [(4_500_012, 2, "45000.12000000"), (5, 0, "5.00000000"), (123, 5, "0.00123000"), (6001, 4, "0.60010000")],
)
def test_binance_numbers_have_eight_decimals(units: int, decimals: int, text: str) -> None:
    assert decimal8(units, decimals) == text


@pytest.mark.parametrize(
    ("units", "decimals", "fixed_text", "trimmed_text"),
    [(246_780, 2, "2467.80", "2467.8"), (4_060_000, 2, "40600.00", "40600"), (5_000, 4, "0.5000", "0.5")],
)
def test_coinbase_numbers_keep_the_increment_or_drop_trailing_zeros(
    units: int, decimals: int, fixed_text: str, trimmed_text: str
) -> None:
    assert fixed(units, decimals) == fixed_text
    assert trimmed(units, decimals) == trimmed_text


def test_times_are_iso_with_microseconds_and_z() -> None:
    iso = IsoTime()
    ns = 1_705_665_601_234_567_891
    assert iso(ns) == "2024-01-19T12:00:01.234567Z"
    assert iso(ns + 1_000_000_000) == "2024-01-19T12:00:02.234567Z"
    expected = dt.datetime.fromtimestamp(ns // 1000 / 1e6, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert iso(ns) == expected


def test_binance_frames_have_the_recorded_keys_in_order(market_data: Path) -> None:
    quotes = [q for q in model_quotes(5) if q.market.venue == BINANCE]
    frames = BinanceFrames([q.market for q in quotes])
    book = orjson.loads(frames.book_ticker(quotes[0]))
    trade = orjson.loads(frames.trade(next(q for q in quotes if q.trade is not None)))
    recorded_book = first_line(market_data / "binance" / "bookTicker.jsonl")["data"]
    recorded_trade = first_line(market_data / "binance" / "trade.jsonl")["data"]
    assert list(book) == list(recorded_book) == ["u", "s", "b", "B", "a", "A"]
    assert list(trade) == list(recorded_trade)
    for value in (book["b"], book["B"], book["a"], book["A"], trade["p"], trade["q"]):
        assert DECIMAL8.match(value)
    assert isinstance(trade["m"], bool)
    assert trade["M"] is True
    assert trade["E"] >= trade["T"]


def test_coinbase_frames_have_the_feed_keys_in_order(market_data: Path) -> None:
    quotes = [q for q in model_quotes(5) if q.market.venue == COINBASE]
    frames = CoinbaseFrames([q.market for q in quotes])
    ticker = orjson.loads(frames.ticker(frames.update(quotes[0])))
    assert list(ticker) == COINBASE_TICKER_KEYS
    recorded = list(first_line(market_data / "coinbase" / "ticker.jsonl"))
    assert [key for key in COINBASE_TICKER_KEYS if key in recorded] == recorded  # same order, minus new sizes
    assert ISO_TIME.match(ticker["time"])
    assert ticker["side"] in ("buy", "sell")
    assert isinstance(ticker["sequence"], int)
    assert isinstance(ticker["trade_id"], int)
    assert re.match(r"^\d+\.\d{2}$", ticker["best_bid"])  # BTC-USD's quote increment is 0.01
    assert re.match(r"^\d+\.\d{8}$", ticker["best_bid_size"])
    heartbeat = orjson.loads(frames.heartbeat(frames.products[quotes[0].market.native], T0))
    assert list(heartbeat) == ["type", "last_trade_id", "product_id", "sequence", "time"]
    assert heartbeat["last_trade_id"] == ticker["trade_id"]
    assert heartbeat["sequence"] == ticker["sequence"]


def test_our_parsers_turn_every_simulated_frame_into_valid_ticks() -> None:
    quotes = model_quotes(20)
    markets = {q.market.native: q.market for q in quotes}.values()
    binance_frames = BinanceFrames([m for m in markets if m.venue == BINANCE])
    coinbase_frames = CoinbaseFrames([m for m in markets if m.venue == COINBASE])
    binance = BinanceParser(SymbolTable([(m.native, m.asset, m.quote) for m in markets if m.venue == BINANCE]))
    coinbase = CoinbaseParser(SymbolTable([(m.native, m.asset, m.quote) for m in markets if m.venue == COINBASE]))
    sent = {BINANCE: 0, COINBASE: 0}
    for quote in quotes:
        recv_ns = quote.time_ns + 2 * MS
        market = quote.market
        if market.venue == BINANCE:
            stream = f"{market.native.lower()}@bookTicker"
            payload = binance_frames.book_ticker(quote)
            ticks = binance.parse(f'{{"stream":"{stream}","data":{payload}}}', recv_ns)  # combined
            assert ticks[0].bid == quote.bid / market.price_scale
            assert ticks[0].ask_size == quote.ask_size / market.size_scale
            assert ticks[0].symbol == market.symbol
            sent[BINANCE] += 1
            if quote.trade is not None:
                (tick,) = binance.parse(binance_frames.trade(quote), recv_ns)  # raw
                assert tick.price == quote.trade.price / market.price_scale
                sent[BINANCE] += 1
        else:
            ticks = coinbase.parse(coinbase_frames.ticker(coinbase_frames.update(quote)), recv_ns)
            assert ticks[0].bid == quote.bid / market.price_scale
            assert ticks[0].timestamp == quote.time_ns // MS
            assert (
                coinbase.parse(coinbase_frames.heartbeat(coinbase_frames.products[market.native], recv_ns), recv_ns)
                == []
            )
            sent[COINBASE] += 2
    for parser in (binance, coinbase):
        stats = parser.stats.as_dict()
        assert stats["dropped"] == {}, stats
    assert binance.stats.frames == sent[BINANCE]
    assert coinbase.stats.frames == sent[COINBASE]
    assert binance.stats.ticks == sent[BINANCE]
    assert coinbase.stats.control == {"heartbeat": sent[COINBASE] // 2}
