"""QUOTE_RATES=live end to end: the simulator's stablecoin moves, the engine's net spreads follow.

The simulator quotes the stablecoin reference markets (USDT/USD on Coinbase and Kraken, USDC/USD
on Kraken, USDC/USDT on Binance) beside the asset markets, and its control API moves USDT's value
(`/sim/depeg`). Binance quotes BTC in USDT, Coinbase and Kraken in USD, so a Binance–Coinbase
signal is only right if the engine converts at the rate the reference markets show:

- a depeg that has not reached the asset markets (`reprice=0`) is a real opportunity in USD
  terms: the net spread grows by the depeg, and the signal records the rate it used;
- a depeg the asset markets follow (`reprice=1`, as arbitrageurs make it) is no opportunity:
  BTC/USDT is dearer in USDT by exactly what USDT lost, and no signal opens;
- with USDT's reference markets halted, its rate goes stale: the Binance–Coinbase pair closes
  and stays out, while the USD-only pair Kraken–Coinbase still signals.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from arbsite.redis_server import EmbeddedRedis
from tests.procs import wait_until
from tests.test_pipeline import Listener, Signal, is_pair
from tests.venues import VenuesPipeline

VENUES = ["binance", "coinbase", "kraken"]
RATE_STALE_MS = 1500


@pytest.fixture
def live(redis_server: EmbeddedRedis) -> Iterator[VenuesPipeline]:
    running = VenuesPipeline(
        redis_server.url, VENUES, seed=5, env={"QUOTE_RATES": "live", "RATE_STALE_MS": str(RATE_STALE_MS)}
    )
    try:
        # Every currency of the group has a fresh rate from the feeds before a test begins.
        wait_until(
            lambda: all(isinstance(rates(running).get(coin), float) for coin in ("USDT", "USDC")),
            30,
            "live USDT and USDC rates in the engine",
        )
        yield running
        assert running.stop() == {"ingestor": 0, "engine": 0, "sim": 0}, running.output()
    finally:
        running.kill()


def rates(pipeline: VenuesPipeline) -> dict[str, Any]:
    """The engine's rates now, by currency (None: no fresh one)."""
    return dict(pipeline.engine_health().get("quote_rates") or {})


def rate_of(signal: Signal, currency: str) -> float:
    rates = signal["quote_rates"]
    assert isinstance(rates, dict), signal
    return float(rates[currency])


def test_a_depeg_the_asset_markets_have_not_followed_shifts_the_net_spread_by_the_depeg(live: VenuesPipeline):
    listener = Listener(live.redis_url)
    live.control("dislocate", asset="BTC", cheap="binance", rich="coinbase", net_pct="1.0", seconds="120")
    opened = listener.wait_for(is_pair("BTC", "binance", "coinbase", "open"), 10, "open signal at the peg")
    assert opened["quote_rates"] == {"USDT": pytest.approx(1.0, abs=2e-4), "USD": 1.0}
    assert opened["net_spread_pct"] == pytest.approx(1.0, abs=0.03)

    # USDT falls to 0.99 USD; BTC/USDT on Binance has not moved: buying there costs 1 % less in USD.
    answer = live.control("depeg", currency="USDT", usd="0.99", reprice="0")
    assert answer == {"ok": True, "currency": "USDT", "usd": 0.99, "pricing": 1.0, "reference": True}
    shifted = listener.wait_for(
        lambda s: s["id"] == opened["id"] and s["status"] == "update" and rate_of(s, "USDT") < 0.995,
        10,
        "an update at the depegged rate",
    )
    assert rate_of(shifted, "USDT") == pytest.approx(0.99, abs=2e-4)
    # (1 + net) / 0.99 − 1: the net spread grows by the depeg.
    expected = ((1 + float(opened["net_spread_pct"]) / 100) / rate_of(shifted, "USDT") - 1) * 100  # type: ignore[arg-type]
    assert shifted["net_spread_pct"] == pytest.approx(expected, abs=0.03)
    assert float(shifted["net_spread_pct"]) - float(opened["net_spread_pct"]) == pytest.approx(1.01, abs=0.04)  # type: ignore[arg-type]

    # The asset markets catch up (BTC/USDT rises by what USDT lost): back to the dislocation's own 1 %.
    live.control("depeg", currency="USDT", usd="0.99", reprice="1")
    caught_up = listener.wait_for(
        lambda s: s["id"] == opened["id"] and s["status"] == "update" and float(s["net_spread_pct"]) < 1.5,  # type: ignore[arg-type]
        10,
        "an update after the asset markets repriced",
    )
    assert caught_up["net_spread_pct"] == pytest.approx(1.0, abs=0.03)
    listener.close()


def test_a_depeg_the_asset_markets_follow_raises_no_signal(live: VenuesPipeline):
    transition = Listener(live.redis_url)
    # USDT at 0.98: BTC/USDT quotes 2 % above BTC/USD in nominal terms, more than both fees; at
    # QUOTE_RATES=fixed that is a signal on every asset, at live rates it is nothing.
    live.control("depeg", currency="USDT", usd="0.98", reprice="1")
    wait_until(lambda: abs(rates(live)["USDT"] - 0.98) < 2e-4, 10, "the engine's USDT rate at 0.98")
    # The three feeds bring the jump in whatever order they deliver it: for a few milliseconds the
    # engine may hold a repriced BTC/USDT beside a USDT/USD that has not moved yet (or the
    # reverse), which is what the market would show a trader too. All of that closes at once.
    time.sleep(1.0)
    transition.wait_until(
        lambda signals: (
            {s["id"] for s in signals if s["status"] == "open"} <= {s["id"] for s in signals if s["status"] == "close"}
        ),
        3,
        "everything opened during the jump closed",
    )
    transition.close()
    listener = Listener(live.redis_url)
    with pytest.raises(AssertionError, match="no open signal"):
        listener.wait_for(lambda s: s["status"] == "open", 4, "open signal")
    # A real opportunity is still found at the depegged rate, and records it.
    live.control("dislocate", asset="ETH", cheap="coinbase", rich="binance", net_pct="1.0", seconds="60")
    opened = listener.wait_for(is_pair("ETH", "coinbase", "binance", "open"), 10, "open signal")
    assert rate_of(opened, "USDT") == pytest.approx(0.98, abs=2e-4)
    assert opened["net_spread_pct"] == pytest.approx(1.0, abs=0.03)
    listener.close()


def test_a_missing_rate_keeps_the_affected_pairs_out_and_only_them(live: VenuesPipeline):
    listener = Listener(live.redis_url)
    live.control("dislocate", asset="BTC", cheap="binance", rich="coinbase", net_pct="1.5", seconds="120")
    opened = listener.wait_for(is_pair("BTC", "binance", "coinbase", "open"), 10, "open signal")

    # No USDT reference market quotes any more: once the last rate is RATE_STALE_MS old, BTC/USDT
    # has no rate, and every opportunity through it closes (never a silent 1.0). (BTC is cheap on
    # Binance for Kraken too, so BTC Binance–Kraken may have opened beside Binance–Coinbase.)
    live.control("depeg", currency="USDT", reference="off")
    listener.wait_until(
        lambda signals: not open_ids(signals, "binance"), 10, "every signal through BTC/USDT closed on a stale rate"
    )
    assert rates(live).get("USDT") is None
    closed = [s for s in listener.signals if s["id"] == opened["id"] and s["status"] == "close"]
    assert closed
    assert closed[0]["timestamp"] - opened["timestamp"] < 10_000  # type: ignore[operator]
    after_close = len(listener.signals)

    # Nothing through BTC/USDT opens while the rate is missing; a USD-only pair still does.
    live.control("dislocate", asset="ETH", cheap="kraken", rich="coinbase", net_pct="1.5", seconds="60")
    kraken = listener.wait_for(is_pair("ETH", "kraken", "coinbase", "open"), 10, "kraken-coinbase open")
    assert "USDT" not in kraken["quote_rates"]  # type: ignore[operator]
    with pytest.raises(AssertionError, match="not within"):
        listener.wait_until(lambda signals: bool(open_ids(signals[after_close:], "binance")), 3, "a Binance signal")
    assert not any("USDT" in str(s["buy_symbol"]) + str(s["sell_symbol"]) for s in listener.signals[after_close:])

    # The reference markets quote again: the rate is back, and so is the opportunity.
    live.control("depeg", currency="USDT", reference="on")
    reopened = listener.wait_for(
        lambda s: is_pair("BTC", "binance", "coinbase", "open")(s) and s["id"] != opened["id"],
        10,
        "reopened with a fresh rate",
    )
    assert rate_of(reopened, "USDT") == pytest.approx(1.0, abs=2e-4)
    listener.close()


def open_ids(signals: list[Signal], exchange: str) -> set[object]:
    """The ids of the opportunities on `exchange` opened and not yet closed in `signals`."""
    ids = [s["id"] for s in signals if exchange in (s["buy_exchange"], s["sell_exchange"])]
    return {i for i in ids if any(s["id"] == i and s["status"] == "open" for s in signals)} - {
        s["id"] for s in signals if s["status"] == "close"
    }
