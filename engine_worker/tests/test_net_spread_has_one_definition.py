"""The engine's figures, its spread matrix and the simulator compute the contract's net spread, bit for bit.

signals_app/contracts/spread.py holds the formula once; thresholds compare unrounded
values, so each caller must get the same last bits, not merely close ones.
"""

from __future__ import annotations

import random

import pytest

from engine_worker.book import Quote
from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from engine_worker.spread import figures
from ingest_worker.sim import model
from signals_app.contracts import spread, tick

NOW = 1_705_670_123_456  # a fixed engine clock, Unix ms
MS = 1_000_000
FEES_PCT = {"binance": 0.1, "coinbase": 0.6, "kraken": 0.26}


def slot(exchange: str, symbol: str, bid: float, ask: float) -> Quote:
    market = Quote(exchange, symbol)
    market.update(tick.quote(exchange, symbol, bid, ask, 1.0, 1.0, NOW, NOW * MS))
    return market


def prices(seed: int, count: int = 200) -> list[tuple[float, float, float, float]]:
    """(ask, bid, buy fee %, sell fee %) around a few price levels, crossed and not."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        ask = rng.choice((45_000.0, 2_500.0, 0.6, 0.000123)) * rng.uniform(0.9, 1.1)
        out.append((ask, ask * rng.uniform(0.98, 1.03), rng.choice((0.0, 0.1, 0.26, 0.6)), rng.choice((0.1, 0.4))))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_figures_and_the_simulator_give_the_contracts_net_spread_exactly(seed: int) -> None:
    for ask, bid, buy_fee_pct, sell_fee_pct in prices(seed):
        expected = spread.net_spread_pct(ask, bid, buy_fee_pct / 100.0, sell_fee_pct / 100.0)
        found = figures(
            slot("binance", "BTC/USDT", ask * 0.999, ask),
            slot("coinbase", "BTC/USD", bid, bid * 1.001),
            buy_fee_pct / 100.0,
            sell_fee_pct / 100.0,
        )
        assert found.net_spread_pct == expected
        assert model.net_spread_pct(bid, ask, buy_fee_pct, sell_fee_pct) == expected


def test_the_simulators_dislocation_ratio_gives_back_its_net_spread() -> None:
    for target in (0.5, 0.8, 1.5):
        for buy_fee, sell_fee in ((0.001, 0.006), (0.004, 0.002)):
            ask = 45_000.0
            bid = ask * spread.bid_ask_ratio_for(target, buy_fee, sell_fee)
            assert spread.net_spread_pct(ask, bid, buy_fee, sell_fee) == pytest.approx(target, rel=1e-12)


def test_spread_matrix_is_the_contracts_net_spread_of_the_latest_quotes() -> None:
    engine = Engine(EngineConfig(fees_pct=FEES_PCT))
    rng = random.Random(3)
    for step in range(50):
        now = NOW + step
        for exchange in FEES_PCT:
            mid = 45_000.0 * rng.uniform(0.99, 1.01)
            engine.on_tick(tick.quote(exchange, "BTC/USD", mid - 1.0, mid + 1.0, 1.0, 1.0, now, now * MS), now)
        book = {exchange: markets[0] for exchange, markets in engine.book.assets["BTC"].groups["USD"].venues.items()}
        matrix = engine.spread_matrix(now)["BTC"]
        for buy, row in matrix.items():
            for sell, net in row.items():
                fees = (FEES_PCT[buy] / 100.0, FEES_PCT[sell] / 100.0)
                assert net == spread.net_spread_pct(book[buy].ask, book[sell].bid, *fees)


def test_a_market_that_ticks_into_a_crossing_opens_on_that_tick() -> None:
    # Each exchange quotes one market of the group, so the engine keeps one priced entry per
    # market for its prefilter: the market's own later quote must reprice it.
    engine = Engine(EngineConfig(threshold_pct=0.5, fees_pct=FEES_PCT))
    assert engine.on_tick(tick.quote("binance", "BTC/USD", 45_000.0, 45_010.0, 1.0, 1.0, NOW, NOW * MS), NOW) == []
    assert engine.on_tick(tick.quote("coinbase", "BTC/USD", 45_000.0, 45_010.0, 1.0, 1.0, NOW, NOW * MS), NOW) == []
    # cost 44400 · 1.001 = 44444.4, proceeds 45000 · 0.994 = 44730: net 0.6426 % > 0.5
    later = NOW + 1
    out = engine.on_tick(tick.quote("binance", "BTC/USD", 44_390.0, 44_400.0, 1.0, 1.0, later, later * MS), later)
    assert [(signal["status"], signal["buy_exchange"], signal["net_spread_pct"]) for signal in out] == [
        ("open", "binance", 0.6426)
    ]


def test_the_prefilters_ratio_is_the_net_spread_turned_round() -> None:
    rng = random.Random(5)
    for _ in range(10_000):
        cost = rng.uniform(0.01, 100_000.0)
        threshold = rng.uniform(0.0, 5.0)
        proceeds = cost * (1.0 + rng.uniform(-0.06, 0.06))
        net = spread.net_pct(cost, proceeds)
        if abs(net - threshold) > 1e-9:  # away from the margin both say the same
            assert (proceeds > cost * spread.ratio_at(threshold)) == (net > threshold)
