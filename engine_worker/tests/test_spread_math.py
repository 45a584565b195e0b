"""The fee-aware spread figures are exactly the contract's formulas (DESIGN.md "Arbitrage opportunity and signal").

Every expected number is worked out by hand in the comments and written as a
literal or a `Fraction`, never with the code under test's own formula:

    cost      = ask_A · (1 + fee_A)          proceeds = bid_B · (1 − fee_B)
    spread    = (bid_B − ask_A) / ask_A · 100 (gross)
    net       = (proceeds − cost) / cost · 100
    size      = min(ask_size_A, bid_size_B), None when either is unknown
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from arbsite.env import parse_fees, parse_quote_groups
from engine_worker.book import Quote
from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from engine_worker.spread import figures, net_spread_pct
from ingest_worker.venues import DEFAULT_FEES_PCT
from signals_app.contracts import tick
from signals_app.contracts.signal import Signal

NOW = 1_705_670_123_456  # a fixed engine clock, Unix ms
MS = 1_000_000  # ns per ms


def market(exchange, symbol, bid, ask, bid_size=1.0, ask_size=1.0):
    """A book slot holding one quote received at NOW."""
    slot = Quote(exchange, symbol)
    slot.update(tick.quote(exchange, symbol, bid, ask, bid_size, ask_size, NOW, NOW * MS))
    return slot


def exact(value: Fraction):
    return pytest.approx(float(value), rel=1e-12)


# Buy BTC on Binance at the ask 45000, sell on Coinbase at the bid 45700, fees 0.1 % and 0.6 %:
#   cost     = 45000 · 1.001 = 45045
#   proceeds = 45700 · 0.994 = 45425.8
#   profit   = 45425.8 − 45045 = 380.8 per BTC
#   net      = 380.8 / 45045 · 100 = 0.845376845…  -> 0.8454 in a signal
#   gross    = 700 / 45000 · 100 = 1.555…          -> 1.5556 in a signal
COST = Fraction(45045)
PROCEEDS = Fraction("45425.8")
PROFIT = Fraction("380.8")
NET = PROFIT / COST * 100
GROSS = Fraction(700, 45000) * 100


def test_cost_and_proceeds_include_both_taker_fees():
    assert Fraction(45000) * Fraction("1.001") == COST
    assert Fraction(45700) * Fraction("0.994") == PROCEEDS
    found = figures(
        market("binance", "BTC/USDT", 44990.0, 45000.0, ask_size=0.5),
        market("coinbase", "BTC/USD", 45700.0, 45710.0, bid_size=0.3),
        0.001,
        0.006,
    )
    assert found.buy_price == 45000.0
    assert found.sell_price == 45700.0
    assert found.profit_per_unit == exact(PROFIT)
    assert found.net_spread_pct == exact(NET)
    assert found.spread_pct == exact(GROSS)
    assert round(found.spread_pct, 4) == 1.5556
    assert round(found.net_spread_pct, 4) == 0.8454
    # size = min(ask size on the buy market 0.5, bid size on the sell market 0.3) = 0.3
    assert found.size == 0.3
    # profit_estimate = 380.8 · 0.3 = 114.24
    assert found.profit_estimate == exact(Fraction("114.24"))


def test_net_spread_helper_agrees_with_the_hand_computed_net():
    assert net_spread_pct(45000.0, 45700.0, 0.001, 0.006) == exact(NET)


@pytest.mark.parametrize(
    ("ask_size", "bid_size", "size"),
    [(0.5, 0.3, 0.3), (0.2, 0.3, 0.2), (0.4, 0.4, 0.4)],
)
def test_size_is_the_smaller_of_buy_ask_size_and_sell_bid_size(ask_size, bid_size, size):
    found = figures(
        market("binance", "BTC/USDT", 44990.0, 45000.0, bid_size=99.0, ask_size=ask_size),
        market("coinbase", "BTC/USD", 45700.0, 45710.0, bid_size=bid_size, ask_size=99.0),
        0.001,
        0.006,
    )
    assert found.size == size
    assert found.profit_estimate == exact(PROFIT * Fraction(str(size)))


@pytest.mark.parametrize(("ask_size", "bid_size"), [(None, 0.3), (0.5, None), (None, None)])
def test_unknown_size_gives_no_size_and_no_profit_estimate(ask_size, bid_size):
    found = figures(
        market("binance", "BTC/USDT", 44990.0, 45000.0, ask_size=ask_size),
        market("coinbase", "BTC/USD", 45700.0, 45710.0, bid_size=bid_size),
        0.001,
        0.006,
    )
    assert found.size is None
    assert found.profit_estimate is None
    assert found.profit_per_unit == exact(PROFIT)  # the per-unit figures do not need a size


def test_zero_fees_make_net_equal_gross():
    found = figures(
        market("binance", "BTC/USDT", 44990.0, 45000.0), market("coinbase", "BTC/USD", 45700.0, 45710.0), 0.0, 0.0
    )
    assert found.net_spread_pct == found.spread_pct
    assert found.spread_pct == exact(GROSS)
    assert found.profit_per_unit == 700.0


def engine(**overrides: Any) -> Engine:
    settings = EngineConfig(threshold_pct=0.5, fees_pct={"binance": 0.1, "coinbase": 0.6})
    return Engine(dataclasses.replace(settings, **overrides))


def signals_of(engine_: Engine, *quotes: tick.Tick) -> list[Signal]:
    out: list[Signal] = []
    for one in quotes:
        out.extend(engine_.on_tick(one, NOW))
    return out


def quote(exchange, symbol, bid, ask, bid_size=1.0, ask_size=1.0):
    return tick.quote(exchange, symbol, bid, ask, bid_size, ask_size, NOW, NOW * MS)


@pytest.mark.parametrize(
    ("binance", "coinbase", "action", "buy", "sell", "net", "gross", "profit"),
    [
        # Binance cheap: buy Binance ask 45000, sell Coinbase bid 45700 (the numbers above).
        (
            (44990.0, 45000.0),
            (45700.0, 45710.0),
            "BUY_BINANCE_SELL_COINBASE",
            ("binance", "BTC/USDT", 45000.0),
            ("coinbase", "BTC/USD", 45700.0),
            NET,
            GROSS,
            PROFIT,
        ),
        # Coinbase cheap: buy Coinbase ask 45000 paying 0.6 %, sell Binance bid 45700 paying 0.1 %:
        #   cost = 45000 · 1.006 = 45270, proceeds = 45700 · 0.999 = 45654.3, profit = 384.3
        #   net = 384.3 / 45270 · 100 = 0.84890… -> 0.8489, gross 1.5556 as before
        (
            (45700.0, 45710.0),
            (44990.0, 45000.0),
            "BUY_COINBASE_SELL_BINANCE",
            ("coinbase", "BTC/USD", 45000.0),
            ("binance", "BTC/USDT", 45700.0),
            Fraction("384.3") / 45270 * 100,
            GROSS,
            Fraction("384.3"),
        ),
    ],
    ids=["binance-cheap", "coinbase-cheap"],
)
def test_both_directions_are_found_with_their_own_fees(binance, coinbase, action, buy, sell, net, gross, profit):
    out = signals_of(engine(), quote("binance", "BTC/USDT", *binance), quote("coinbase", "BTC/USD", *coinbase))
    assert len(out) == 1
    signal = out[0]
    assert signal["action"] == action
    assert (signal["buy_exchange"], signal["buy_symbol"], signal["buy_price"]) == buy
    assert (signal["sell_exchange"], signal["sell_symbol"], signal["sell_price"]) == sell
    assert signal["profit_per_unit"] == exact(profit)
    # Percent fields are rounded to 4 decimals; compare with the hand value rounded the same way.
    assert signal["net_spread_pct"] == round(float(net), 4)
    assert signal["spread_pct"] == round(float(gross), 4) == 1.5556
    assert signal["peak_net_spread_pct"] == signal["net_spread_pct"]


def test_coinbase_cheap_net_rounds_to_the_hand_value():
    out = signals_of(
        engine(), quote("binance", "BTC/USDT", 45700.0, 45710.0), quote("coinbase", "BTC/USD", 44990.0, 45000.0)
    )
    assert out[0]["net_spread_pct"] == 0.8489


def test_gross_spread_above_threshold_but_net_below_gives_no_signal():
    # ask 45000, bid 45300: gross = 300 / 45000 · 100 = 0.6667 % > 0.5 %,
    # but net = (45300 · 0.994 − 45045) / 45045 · 100 = (45028.2 − 45045) / 45045 · 100 < 0.
    binance = quote("binance", "BTC/USDT", 44990.0, 45000.0)
    coinbase = quote("coinbase", "BTC/USD", 45300.0, 45310.0)
    assert signals_of(engine(), binance, coinbase) == []
    # The fees are what stopped it: without them the same quotes are an opportunity.
    free = signals_of(engine(fees_pct={"binance": 0.0, "coinbase": 0.0}), binance, coinbase)
    assert [s["net_spread_pct"] for s in free] == [0.6667]


def test_fees_setting_overrides_the_default_fee_of_a_venue():
    fees = parse_fees("coinbase:0.2", DEFAULT_FEES_PCT)
    assert fees == {**DEFAULT_FEES_PCT, "coinbase": 0.2}
    # ask 45000, bid 45350 with 0.1 % / 0.2 %:
    #   cost 45045, proceeds 45350 · 0.998 = 45259.3, profit 214.3, net = 214.3 / 45045 · 100 = 0.47574… -> 0.4757
    # With the default 0.6 % on Coinbase: proceeds 45077.9, net 0.073 %: below a 0.3 % threshold.
    binance = quote("binance", "BTC/USDT", 44990.0, 45000.0)
    coinbase = quote("coinbase", "BTC/USD", 45350.0, 45360.0)
    assert signals_of(engine(threshold_pct=0.3, fees_pct=parse_fees("", DEFAULT_FEES_PCT)), binance, coinbase) == []
    out = signals_of(engine(threshold_pct=0.3, fees_pct=fees), binance, coinbase)
    assert len(out) == 1
    assert out[0]["net_spread_pct"] == 0.4757
    assert out[0]["profit_per_unit"] == exact(Fraction("214.3"))
    assert out[0]["fees_pct"] == {"binance": 0.1, "coinbase": 0.2}


def test_fees_setting_accepts_both_separators_case_and_blanks():
    assert parse_fees(" BINANCE:0.075, coinbase=0.4 ,", DEFAULT_FEES_PCT) == {
        **DEFAULT_FEES_PCT,
        "binance": 0.075,
        "coinbase": 0.4,
    }
    assert parse_fees("", DEFAULT_FEES_PCT) == dict(DEFAULT_FEES_PCT)
    assert parse_fees("newvenue:0.25", DEFAULT_FEES_PCT)["newvenue"] == 0.25


@pytest.mark.parametrize(
    "text",
    ["binance", "binance:", "binance:abc", ":0.1", "binance:-0.1", "binance:100", "binance:nan", "binance:inf"],
)
def test_bad_fees_setting_fails_loudly(text):
    with pytest.raises(ImproperlyConfigured, match="FEES"):
        parse_fees(text, DEFAULT_FEES_PCT)


# --- quote groups -------------------------------------------------------------------
CROSSED = (45700.0, 45710.0)  # a Coinbase book well above the Binance ask of 45000
CHEAP = (44990.0, 45000.0)


def test_usdt_and_usd_markets_are_compared_in_the_default_groups():
    out = signals_of(engine(), quote("binance", "BTC/USDT", *CHEAP), quote("coinbase", "BTC/USD", *CROSSED))
    assert [(s["buy_symbol"], s["sell_symbol"]) for s in out] == [("BTC/USDT", "BTC/USD")]


def test_eur_and_usd_markets_are_never_compared():
    out = signals_of(engine(), quote("binance", "BTC/EUR", *CHEAP), quote("coinbase", "BTC/USD", *CROSSED))
    assert out == []


def test_quote_groups_setting_parses_into_groups():
    assert parse_quote_groups("USD,USDT,USDC;EUR,EURC") == (("USD", "USDT", "USDC"), ("EUR", "EURC"))
    assert parse_quote_groups(" usd , usdc ;; gbp") == (("USD", "USDC"), ("GBP",))


@pytest.mark.parametrize("text", ["USD,USDT;USDT", "USD,US-D"])
def test_bad_quote_groups_setting_fails_loudly(text):
    with pytest.raises(ImproperlyConfigured, match="QUOTE_GROUPS"):
        parse_quote_groups(text)


def test_custom_quote_groups_decide_which_markets_are_compared():
    groups = parse_quote_groups("USD,USDC;USDT")
    # USDT is in a group of its own now: BTC/USDT is no longer compared with BTC/USD ...
    out = signals_of(
        engine(quote_groups=groups), quote("binance", "BTC/USDT", *CHEAP), quote("coinbase", "BTC/USD", *CROSSED)
    )
    assert out == []
    # ... while BTC/USDC, in USD's group, is.
    out = signals_of(
        engine(quote_groups=groups), quote("binance", "BTC/USDC", *CHEAP), quote("coinbase", "BTC/USD", *CROSSED)
    )
    assert [(s["buy_symbol"], s["sell_symbol"]) for s in out] == [("BTC/USDC", "BTC/USD")]


def test_a_quote_in_no_group_is_compared_with_the_same_quote_only():
    # ETH/BTC is in no configured group: it forms its own and still meets ETH/BTC elsewhere.
    out = signals_of(engine(), quote("binance", "ETH/BTC", 0.0499, 0.05), quote("coinbase", "ETH/BTC", 0.051, 0.0511))
    assert [(s["buy_symbol"], s["sell_symbol"]) for s in out] == [("ETH/BTC", "ETH/BTC")]
