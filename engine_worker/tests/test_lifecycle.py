"""The signal lifecycle, driven one tick at a time with a fixed clock (DESIGN.md "The lifecycle, exactly").

Every test feeds `Engine.on_tick(tick, now_ms)` quotes received at `now_ms`
(unless it says otherwise) and checks the signals it returns. Settings are the
defaults: threshold 0.5 %, STALE_MS 2000, SIGNAL_UPDATE_MS 1000, fees Binance
0.1 %, Coinbase 0.6 %, Kraken 0.4 %.

The numbers used throughout (Binance BTC/USDT ask 45000, fee 0.1 % -> cost 45045):

    Coinbase bid   proceeds (·0.994)   profit   net %                 in a signal
    45700          45425.8             380.8    380.8/45045·100       0.8454
    45750          45475.5             430.5    430.5/45045·100       0.9557
    45800          45525.2             480.2    480.2/45045·100       1.0660
    45500          45227.0             182.0    182.0/45045·100       0.4040  (below 0.5)
    45400          45127.6              82.6     82.6/45045·100       0.1834  (below 0.5)
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

import pytest

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from signals_app.contracts import signal as contract
from signals_app.contracts import tick
from signals_app.contracts.signal import Signal

T = 1_705_670_123_456  # the fixed engine clock at which most tests start, Unix ms
MS = 1_000_000  # ns per ms
STALE_MS = 2000
UPDATE_MS = 1000
BTC_ID = f"BTC:binance:coinbase:{T}"


# The defaults of the contract, written out so that a changed default does not change these tests.
SETTINGS = EngineConfig(
    threshold_pct=0.5,
    fees_pct={"binance": 0.1, "coinbase": 0.6, "kraken": 0.4},
    stale_ms=STALE_MS,
    update_ms=UPDATE_MS,
)


def make_engine(**overrides: Any) -> Engine:
    return Engine(dataclasses.replace(SETTINGS, **overrides))


def binance(at_ms, ask=45000.0, symbol="BTC/USDT", bid=None, bid_size=2.0, ask_size=0.5):
    """A Binance quote received at `at_ms` (its bid just under the ask unless given)."""
    return tick.quote("binance", symbol, ask - 10.0 if bid is None else bid, ask, bid_size, ask_size, at_ms, at_ms * MS)


def coinbase(at_ms, bid=45700.0, symbol="BTC/USD", bid_size=0.3, ask_size=1.0):
    return tick.quote("coinbase", symbol, bid, bid + 10.0, bid_size, ask_size, at_ms, at_ms * MS)


def feed(engine: Engine, *ticks: tick.Tick) -> list[Signal]:
    """Process ticks, each at its own receive time, and collect the signals."""
    out: list[Signal] = []
    for one in ticks:
        out.extend(engine.on_tick(one, one.recv_ns // MS))
    return out


def opened_at_t(engine: Engine) -> Signal:
    """Binance BTC/USDT at T−10, Coinbase BTC/USD at T: the opportunity opens at T."""
    assert feed(engine, binance(T - 10)) == []
    out = feed(engine, coinbase(T))
    assert [s["status"] for s in out] == ["open"]
    return out[0]


def money(value: str):
    return pytest.approx(float(Fraction(value)), rel=1e-12)


def test_open_signal_carries_every_contract_field():
    engine = make_engine()
    assert engine.on_tick(binance(T - 10), T - 10) == []
    # The opening tick arrives 0.654321 ms into T: the clock is T, tick_recv_ns keeps every digit.
    recv_ns = T * MS + 654_321
    opening = tick.quote("coinbase", "BTC/USD", 45700.0, 45710.0, 0.3, 1.0, T - 3, recv_ns)
    out = engine.on_tick(opening, T)
    assert out == [
        {
            "type": "ARBITRAGE_OPPORTUNITY",
            "id": "BTC:binance:coinbase:1705670123456",
            "status": "open",
            "action": "BUY_BINANCE_SELL_COINBASE",
            "symbol": "BTC/USDT",  # the buy market's symbol
            "asset": "BTC",
            "buy_exchange": "binance",
            "sell_exchange": "coinbase",
            "buy_symbol": "BTC/USDT",
            "sell_symbol": "BTC/USD",
            "buy_price": 45000.0,
            "sell_price": 45700.0,
            "spread_pct": 1.5556,  # 700 / 45000 · 100
            "net_spread_pct": 0.8454,  # 380.8 / 45045 · 100
            "size": 0.3,  # min(Binance ask size 0.5, Coinbase bid size 0.3)
            "profit_per_unit": money("380.8"),
            "profit_estimate": money("114.24"),  # 380.8 · 0.3
            # Quote ticks only: no book on either market, so every depth field is null.
            **dict.fromkeys(contract.DEPTH_FIELDS),
            "fees_pct": {"binance": 0.1, "coinbase": 0.6},
            "opened_at": T,
            "duration_ms": 0,
            "peak_net_spread_pct": 0.8454,
            "tick_recv_ns": recv_ns,
            "timestamp": T,
        }
    ]
    assert list(out[0]) == list(contract.FIELDS)  # the contract's key order, so the JSON is byte-identical


def test_changes_within_update_interval_are_held_then_current_figures_sent():
    engine = make_engine()
    opened_at_t(engine)
    assert feed(engine, coinbase(T + 300, bid=45800.0)) == []  # changed, but only 300 ms after the open
    assert feed(engine, coinbase(T + 999, bid=45750.0)) == []  # changed again, 999 ms: still held
    # 1000 ms after the open: a Binance tick that changes nothing itself re-evaluates the pair,
    # and the update carries the figures of now (bid 45750), not those of the held ticks.
    refresh = binance(T + 1000)
    out = feed(engine, refresh)
    assert len(out) == 1
    update = out[0]
    assert update["status"] == "update"
    assert update["id"] == BTC_ID
    assert update["opened_at"] == T
    assert update["timestamp"] == T + 1000
    assert update["duration_ms"] == 1000
    assert update["tick_recv_ns"] == refresh.recv_ns
    assert (update["buy_price"], update["sell_price"], update["size"]) == (45000.0, 45750.0, 0.3)
    assert update["spread_pct"] == 1.6667  # 750 / 45000 · 100
    assert update["net_spread_pct"] == 0.9557
    assert update["profit_per_unit"] == money("430.5")
    assert update["profit_estimate"] == money("129.15")  # 430.5 · 0.3
    assert update["peak_net_spread_pct"] == 1.0660  # the held bid of 45800 counts for the peak
    assert list(update) == list(contract.FIELDS)  # no close_reason: closes only


def test_next_update_waits_for_the_interval_after_the_last_message():
    engine = make_engine()
    opened_at_t(engine)
    assert [s["status"] for s in feed(engine, binance(T + 1000), coinbase(T + 1000, bid=45750.0))] == ["update"]
    assert feed(engine, coinbase(T + 1999, bid=45800.0)) == []  # 999 ms after the update
    assert [s["sell_price"] for s in feed(engine, coinbase(T + 2000, bid=45790.0))] == [45790.0]


def test_unchanged_figures_send_no_heartbeat():
    engine = make_engine()
    opened_at_t(engine)
    # Both quotes refreshed with the same prices, long after the interval: nothing to say.
    for at in range(T + 1000, T + 10_000, 700):
        assert feed(engine, binance(at), coinbase(at + 1)) == []
    # The engine is not merely silent: a real change is still sent.
    assert [s["sell_price"] for s in feed(engine, coinbase(T + 10_100, bid=45800.0))] == [45800.0]


def test_a_change_undone_within_the_interval_sends_nothing():
    engine = make_engine()
    opened_at_t(engine)
    assert feed(engine, coinbase(T + 200, bid=45800.0)) == []
    # Back to the figures of the open: updates compare with the last message sent, not the last tick.
    assert feed(engine, coinbase(T + 400, bid=45700.0)) == []
    assert feed(engine, binance(T + 1500), coinbase(T + 1600), binance(T + 3000)) == []


def test_market_crossed_for_a_minute_sends_a_handful_of_messages():
    # 60 s, one tick every 50 ms, alternating Binance (even k) and Coinbase (odd k); the
    # Coinbase bid rises by a cent on every one of its ticks, so the figures change on every
    # tick. Open at k = 1 (t = 50 ms); an update on the first tick ≥ 1000 ms after the last
    # message: t = 1050, 2050, …, 59050 (59 updates, the last tick is at 59950); the close
    # at t = 60000 when the Coinbase bid falls. 1 + 59 + 1 = 61 messages for 1201 ticks.
    engine = make_engine()

    def bid_at(k):
        return 45700.0 + k * 0.01

    out: list[Signal] = []
    last_coinbase_k = 0
    for k in range(1200):
        at = T + 50 * k
        if k % 2 == 0:
            out.extend(engine.on_tick(binance(at), at))
        else:
            out.extend(engine.on_tick(coinbase(at, bid=bid_at(k)), at))
            last_coinbase_k = k
    out.extend(engine.on_tick(coinbase(T + 60_000, bid=45400.0), T + 60_000))

    assert len(out) == 61
    assert [s["status"] for s in out] == ["open"] + ["update"] * 59 + ["close"]
    assert [s["timestamp"] - T for s in out] == [50] + [1050 + 1000 * i for i in range(59)] + [60_000]
    assert {s["id"] for s in out} == {f"BTC:binance:coinbase:{T + 50}"}
    # Each update carries the figures of its own tick: the Coinbase tick k = 21, 41, …
    assert [s["sell_price"] for s in out[1:-1]] == [bid_at(20 * i + 21) for i in range(59)]
    close = out[-1]
    assert close["duration_ms"] == 59_950
    assert close["sell_price"] == bid_at(last_coinbase_k)  # the last figures above the threshold
    assert close["peak_net_spread_pct"] == close["net_spread_pct"]  # the bid only ever rose


def test_close_when_net_falls_to_threshold_carries_last_figures_above_it():
    engine = make_engine()
    opened_at_t(engine)
    assert feed(engine, coinbase(T + 200, bid=45800.0)) == []  # peak, held by the interval
    assert feed(engine, coinbase(T + 400, bid=45750.0)) == []  # the last figures above 0.5 %
    closing = coinbase(T + 500, bid=45500.0)  # net 0.4040 %: below the threshold
    out = feed(engine, closing)
    assert len(out) == 1
    close = out[0]
    assert close["status"] == "close"
    assert close["id"] == BTC_ID
    assert close["timestamp"] == T + 500
    assert close["duration_ms"] == 500
    assert close["tick_recv_ns"] == closing.recv_ns
    assert (close["sell_price"], close["net_spread_pct"], close["spread_pct"]) == (45750.0, 0.9557, 1.6667)
    assert close["profit_per_unit"] == money("430.5")
    assert close["peak_net_spread_pct"] == 1.0660
    assert close["close_reason"] == "threshold"
    assert list(close) == list(contract.CLOSE_FIELDS)  # the contract's order, the reason last
    assert engine.lifecycle.open == {}
    # Closed means closed: the next tick below the threshold says nothing more.
    assert feed(engine, coinbase(T + 2000, bid=45400.0)) == []


def test_net_exactly_at_threshold_is_not_an_opportunity():
    # No fees: ask 100, bid 100.5 -> net = 0.5 / 100 · 100 = 0.5 %, equal to the threshold.
    engine = make_engine(fees_pct={"binance": 0.0, "coinbase": 0.0})
    at_threshold = tick.quote("coinbase", "BTC/USD", 100.5, 100.6, 1.0, 1.0, T, T * MS)
    assert feed(engine, binance(T, ask=100.0, bid=99.9), at_threshold) == []
    above = tick.quote("coinbase", "BTC/USD", 100.6, 100.7, 1.0, 1.0, T + 10, (T + 10) * MS)
    assert [s["status"] for s in feed(engine, above)] == ["open"]
    at_threshold_again = tick.quote("coinbase", "BTC/USD", 100.5, 100.6, 1.0, 1.0, T + 20, (T + 20) * MS)
    assert [(s["status"], s["close_reason"]) for s in feed(engine, at_threshold_again)] == [("close", "threshold")]


# --- staleness --------------------------------------------------------------------
def open_with_binance_older() -> Engine:
    """Binance quote at T, Coinbase at T+100: open at T+100; the Binance quote is stale after T+2000."""
    engine = make_engine()
    assert feed(engine, binance(T)) == []
    assert [s["status"] for s in feed(engine, coinbase(T + 100))] == ["open"]
    return engine


def test_stale_quote_closes_the_opportunity_at_the_stale_instant_by_the_timer():
    engine = open_with_binance_older()
    assert engine.expire(T + 2000) == []  # 2000 ms old is not older than STALE_MS
    out = engine.expire(T + 2001)
    assert len(out) == 1
    close = out[0]
    assert (close["status"], close["id"], close["timestamp"]) == ("close", f"BTC:binance:coinbase:{T + 100}", T + 2001)
    assert close["duration_ms"] == 1901
    assert (close["buy_price"], close["sell_price"], close["net_spread_pct"]) == (45000.0, 45700.0, 0.8454)
    assert close["close_reason"] == "stale"
    assert engine.expire(T + 5000) == []  # closed once


@pytest.mark.parametrize(
    "late_step",
    [
        pytest.param(lambda engine: engine.expire(T + 9000), id="timer-run-late"),
        pytest.param(
            lambda engine: engine.on_tick(binance(T + 9000, symbol="ETH/USDT", ask=2500.0), T + 9000),
            id="next-tick-of-another-asset",
        ),
        pytest.param(lambda engine: engine.on_tick(coinbase(T + 9000), T + 9000), id="next-tick-of-the-asset"),
    ],
)
def test_stale_close_is_stamped_with_the_stale_instant_however_late_it_is_noticed(late_step):
    engine = open_with_binance_older()
    out = late_step(engine)
    assert [(s["status"], s["timestamp"], s["duration_ms"], s["close_reason"]) for s in out] == [
        ("close", T + 2001, 1901, "stale")
    ]
    assert engine.lifecycle.open == {}


@pytest.mark.parametrize(("coinbase_after_ms", "opens"), [(2000, True), (2001, False)])
def test_stale_quote_never_opens_an_opportunity(coinbase_after_ms, opens):
    engine = make_engine()
    assert feed(engine, binance(T)) == []
    out = feed(engine, coinbase(T + coinbase_after_ms))
    assert [s["status"] for s in out] == (["open"] if opens else [])


def test_a_late_processed_old_tick_does_not_open_an_opportunity():
    engine = make_engine()
    assert feed(engine, coinbase(T + 2500)) == []
    # A Binance quote received at T but processed at T+2500 is already stale.
    assert engine.on_tick(binance(T), T + 2500) == []


@pytest.mark.parametrize(
    "late_step",
    [
        pytest.param(lambda engine: engine.expire(T + 5000), id="timer"),
        pytest.param(
            lambda engine: engine.on_tick(coinbase(T + 5000, bid=45600.0), T + 5000), id="next-tick-of-the-asset"
        ),
        pytest.param(
            lambda engine: engine.on_tick(binance(T + 5000, symbol="ETH/USDT", ask=2500.0), T + 5000),
            id="next-tick-of-another-asset",
        ),
    ],
)
def test_stale_close_comes_at_the_stale_instant_when_the_fallback_market_went_stale_too(late_step):
    # Binance quotes BTC/USDT (ask 44900, received at T) and BTC/USDC (ask 44950, at T+500);
    # Coinbase bid 45600 at T+600. Both are above the threshold:
    #   USDT: (45600·0.994 − 44900·1.001) / 44944.9  · 100 = 381.5 / 44944.9  · 100 = 0.8488 %
    #   USDC: (45600·0.994 − 44950·1.001) / 44994.95 · 100 = 331.45 / 44994.95 · 100 = 0.7366 %
    # The best (USDT) is stale after T+2000: at T+2001 the opportunity switches to USDC (an
    # update, 1401 ms after the open); USDC is stale after T+2500: at T+2501 nothing is left
    # and the opportunity closes. Noticed only at T+5000, both must still be said, at their instants,
    # and nothing stale may stay open.
    engine = make_engine()
    assert feed(engine, binance(T, symbol="BTC/USDT", ask=44900.0)) == []
    assert feed(engine, binance(T + 500, symbol="BTC/USDC", ask=44950.0)) == []
    assert [s["buy_symbol"] for s in feed(engine, coinbase(T + 600, bid=45600.0))] == ["BTC/USDT"]
    out = late_step(engine)
    assert [(s["status"], s["timestamp"], s["buy_symbol"]) for s in out] == [
        ("update", T + 2001, "BTC/USDC"),
        ("close", T + 2501, "BTC/USDC"),
    ]
    assert out[1]["close_reason"] == "stale"
    assert engine.lifecycle.open == {}


# --- feeds going down -------------------------------------------------------------
def test_mark_down_closes_what_the_exchange_was_part_of_and_forgets_its_quotes():
    engine = make_engine()
    opened_at_t(engine)  # BTC: buy Binance, sell Coinbase
    # ETH: buy Binance ask 2500, sell Kraken bid 2530 (fee 0.4 %):
    #   (2530·0.996 − 2500·1.001) / 2502.5 · 100 = 17.38 / 2502.5 · 100 = 0.6945 %
    eth = feed(
        engine,
        binance(T, symbol="ETH/USDT", ask=2500.0),
        tick.quote("kraken", "ETH/USD", 2530.0, 2531.0, 1.0, 1.0, T, T * MS),
    )
    assert [(s["status"], s["net_spread_pct"]) for s in eth] == [("open", 0.6945)]

    out = engine.mark_down("coinbase", T + 500)
    assert [(s["status"], s["id"], s["timestamp"], s["duration_ms"]) for s in out] == [("close", BTC_ID, T + 500, 500)]
    assert (out[0]["sell_price"], out[0]["net_spread_pct"]) == (45700.0, 0.8454)  # the last figures
    assert out[0]["close_reason"] == "feed_down"
    assert list(engine.lifecycle.open) == [("ETH", "binance", "kraken")]  # Kraken's is untouched

    # Coinbase's quote from T would still be fresh by time, but its feed went down: it no longer counts.
    assert feed(engine, binance(T + 600)) == []
    # A fresh Coinbase quote brings it back: a new opportunity with a new id.
    out = feed(engine, coinbase(T + 700))
    assert [(s["status"], s["id"]) for s in out] == [("open", f"BTC:binance:coinbase:{T + 700}")]


# --- several markets of one exchange in one quote group ----------------------------
def test_switch_between_markets_of_one_exchange_is_an_update_of_the_same_opportunity():
    engine = make_engine()
    opened_at_t(engine)  # buy Binance BTC/USDT at 45000
    # Binance BTC/USDC asks 44900: cheaper than BTC/USDT, same quote group. Held within the interval...
    assert feed(engine, binance(T + 500, symbol="BTC/USDC", ask=44900.0)) == []
    # ... and sent with the next evaluation after it. Net: 480.9 / 44944.9 · 100 = 1.06998 -> 1.07
    out = feed(engine, coinbase(T + 1000))
    assert len(out) == 1
    update = out[0]
    assert (update["status"], update["id"]) == ("update", BTC_ID)
    assert (update["symbol"], update["buy_symbol"], update["sell_symbol"]) == ("BTC/USDC", "BTC/USDC", "BTC/USD")
    assert (update["buy_price"], update["sell_price"], update["net_spread_pct"]) == (44900.0, 45700.0, 1.07)
    assert update["profit_per_unit"] == money("480.9")
    # BTC/USDC becomes dearer than BTC/USDT (refreshed, unchanged) again: the switch back is an update too.
    assert feed(engine, binance(T + 1500, symbol="BTC/USDT")) == []
    out = feed(engine, binance(T + 2000, symbol="BTC/USDC", ask=45100.0))
    assert [(s["status"], s["id"], s["buy_symbol"], s["buy_price"]) for s in out] == [
        ("update", BTC_ID, "BTC/USDT", 45000.0)
    ]
