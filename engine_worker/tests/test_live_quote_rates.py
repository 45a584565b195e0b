"""QUOTE_RATES=live: quote currencies converted at the feeds' own reference rates, never a silent 1.0."""

from __future__ import annotations

import pytest

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from engine_worker.rates import QuoteRates
from signals_app.contracts.tick import Tick, quote

T0 = 1_705_670_123_000
FEES = {"binance": 0.1, "coinbase": 0.6, "kraken": 0.4}


def tick(exchange: str, symbol: str, bid: float, ask: float, at_ms: int) -> Tick:
    return quote(exchange, symbol, bid, ask, 1.0, 0.5, at_ms, at_ms * 1_000_000)


def live_engine(**overrides: object) -> Engine:
    settings: dict[str, object] = {"fees_pct": FEES, "quote_rates": "live", "rate_stale_ms": 10_000}
    return Engine(EngineConfig(**(settings | overrides)))  # type: ignore[arg-type]


def crossed_btc(engine: Engine, at_ms: int) -> list[dict[str, object]]:
    """Binance sells BTC for 45000 USDT, Coinbase buys it for 45700 USD."""
    signals = engine.on_tick(tick("binance", "BTC/USDT", 44990.0, 45000.0, at_ms), at_ms)
    return signals + engine.on_tick(tick("coinbase", "BTC/USD", 45700.0, 45710.0, at_ms + 1), at_ms + 1)


def test_a_usdt_depeg_shifts_the_net_spread_by_the_depeg():
    engine = live_engine()
    # USDT/USD bid 0.9899, ask 0.9901: mid 0.99, one USDT is worth 0.99 USD.
    engine.on_tick(tick("kraken", "USDT/USD", 0.9899, 0.9901, T0), T0)
    [opened] = crossed_btc(engine, T0 + 10)
    rate = (0.9899 + 0.9901) / 2
    cost = 45000.0 * rate * 1.001  # buy on binance, paying in USDT worth `rate` USD each
    proceeds = 45700.0 * 0.994
    assert opened["net_spread_pct"] == round((proceeds - cost) / cost * 100, 4)
    assert opened["spread_pct"] == round((45700.0 - 45000.0 * rate) / (45000.0 * rate) * 100, 4)
    assert opened["profit_per_unit"] == pytest.approx(proceeds - cost, rel=1e-12)
    assert opened["quote_rates"] == {"USDT": rate, "USD": 1.0}
    # Against the pegged rate the depeg adds about one percentage point of net spread.
    pegged = (proceeds - 45000.0 * 1.001) / (45000.0 * 1.001) * 100
    assert opened["net_spread_pct"] - pegged == pytest.approx((1.0 / rate - 1.0) * 100, rel=0.02)


def test_no_rate_means_no_signal_for_the_markets_quoted_in_that_currency():
    engine = live_engine()
    assert crossed_btc(engine, T0) == []  # crossed by 1.5 %, but no USDT/USD rate is known yet


def test_a_stale_rate_takes_the_markets_out_until_a_fresh_one_arrives():
    engine = live_engine(rate_stale_ms=5_000)
    engine.on_tick(tick("kraken", "USDT/USD", 0.9999, 1.0001, T0), T0)
    assert crossed_btc(engine, T0 + 6_000) == []  # the rate is 6 s old
    engine.on_tick(tick("kraken", "USDT/USD", 0.9999, 1.0001, T0 + 6_100), T0 + 6_100)
    [opened] = crossed_btc(engine, T0 + 6_200)
    assert opened["status"] == "open"


def test_a_rate_can_come_through_another_currency_of_the_group():
    rates = QuoteRates((("USD", "USDT", "USDC"),), stale_ms=10_000)
    rates.observe(tick("kraken", "USDT/USD", 0.9899, 0.9901, T0))
    rates.observe(tick("binance", "USDC/USDT", 1.0099, 1.0101, T0))
    assert rates.rate("USDC", T0) == pytest.approx(1.01 * 0.99, rel=1e-12)
    assert rates.rate("USD", T0) == 1.0
    rates.observe(tick("bitstamp", "USD/USDT", 1.0, 1.0002, T0))  # the inverse market, newer
    assert rates.rate("USDT", T0) == pytest.approx(1 / 1.0001, rel=1e-12)
    assert rates.rate("USDT", T0 + 10_001) is None


def test_markets_in_different_groups_are_never_rates():
    rates = QuoteRates((("USD", "USDT"), ("EUR", "EURC")), stale_ms=10_000)
    rates.observe(tick("kraken", "EUR/USD", 1.08, 1.09, T0))
    assert rates.rate("EUR", T0) == 1.0  # the anchor of its own group
    assert rates.rate("USDT", T0) is None


def test_fixed_rates_leave_the_signal_as_the_contract_shows_it():
    engine = Engine(EngineConfig(fees_pct=FEES))
    [opened] = crossed_btc(engine, T0)
    assert "quote_rates" not in opened
    assert opened["net_spread_pct"] == 0.8454
