"""The simulator is a registry of dialects: the model quotes every configured venue, dislocations pair
any two of them, and `run_exchange_sim --venues/--port` chooses which run where."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ingest_worker.sim.model import VENUE_PROFILES, MarketModel, build_markets, net_spread_pct
from ingest_worker.sim.server import DEFAULT_PORTS, ExchangeSimulator, SimConfig
from ingest_worker.venues import DEFAULT_FEES_PCT

REPO = Path(__file__).resolve().parents[2]
SEVEN = ("binance", "coinbase", "kraken", "okx", "bitstamp", "gemini", "bitfinex")
S = 1_000_000_000


def test_every_venue_has_a_profile_a_fee_and_a_port() -> None:
    assert set(VENUE_PROFILES) == set(SEVEN) == set(DEFAULT_FEES_PCT) == set(DEFAULT_PORTS)
    assert DEFAULT_FEES_PCT == {
        "binance": 0.1,
        "coinbase": 0.6,
        "kraken": 0.4,
        "okx": 0.1,
        "bitstamp": 0.4,
        "gemini": 0.4,
        "bitfinex": 0.2,
    }


def test_markets_are_named_and_quoted_as_each_venue_does() -> None:
    names = {(m.venue, m.native, m.symbol) for m in build_markets(["BTC"], SEVEN)}
    assert names == {
        ("binance", "BTCUSDT", "BTC/USDT"),
        ("coinbase", "BTC-USD", "BTC/USD"),
        ("kraken", "BTC/USD", "BTC/USD"),
        ("okx", "BTC-USDT", "BTC/USDT"),
        ("bitstamp", "btcusd", "BTC/USD"),
        ("gemini", "BTCUSD", "BTC/USD"),
        ("bitfinex", "tBTCUSD", "BTC/USD"),
        # The stablecoin reference markets, where the real venue lists them.
        ("binance", "USDCUSDT", "USDC/USDT"),
        ("coinbase", "USDT-USD", "USDT/USD"),
        ("kraken", "USDT/USD", "USDT/USD"),
        ("kraken", "USDC/USD", "USDC/USD"),
        ("okx", "USDC-USDT", "USDC/USDT"),
        ("bitstamp", "usdtusd", "USDT/USD"),
        ("bitstamp", "usdcusd", "USDC/USD"),
        ("bitfinex", "tUSTUSD", "USDT/USD"),
    }


def test_natural_dislocations_pair_any_two_configured_venues_and_hit_their_net_spread() -> None:
    model = MarketModel(["BTC", "ETH"], 0, seed=3, rate=50.0, venues=SEVEN)
    quoted: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    book: dict[tuple[str, str], tuple[float, float]] = {}
    for second in range(1, 600):
        step = model.advance(second * S)
        for quote in step.quotes:
            quoted.add(quote.market.venue)
            scale = quote.market.price_scale
            book[(quote.market.venue, quote.market.asset)] = (quote.bid / scale, quote.ask / scale)
        for event in step.started:
            pairs.add((event.cheap, event.rich))
            ask_cheap = book[(event.cheap, event.asset)][1]
            bid_rich = book[(event.rich, event.asset)][0]
            net = net_spread_pct(bid_rich, ask_cheap, DEFAULT_FEES_PCT[event.cheap], DEFAULT_FEES_PCT[event.rich])
            assert net == pytest.approx(event.start_net_pct, abs=0.02)
    assert quoted == set(SEVEN)
    assert len(pairs) >= 10
    assert not pairs <= {("binance", "coinbase"), ("coinbase", "binance")}


def test_a_venue_without_a_dialect_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="no simulator dialect for mtgox"):
        ExchangeSimulator(SimConfig(venues=("binance", "mtgox")))


def test_the_command_serves_the_venues_asked_for_on_the_ports_asked_for() -> None:
    options = ["--venues", "okx,binance", "--port", "okx=0", "--port", "binance=0", "--rate", "10"]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_exchange_sim", *options],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("SIM_READY "), process.stderr.read().decode() if process.stderr else line
        urls = orjson.loads(line.removeprefix("SIM_READY "))
        assert list(urls) == ["okx", "binance"]
        assert all(url.startswith("ws://127.0.0.1:") and not url.endswith(":0") for url in urls.values())
    finally:
        process.terminate()
        process.communicate(timeout=5)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--venues", "binance,mtgox"], "no simulator dialect for 'mtgox'"),
        (["--venues", "binance,binance"], "listed twice"),
        (["--venues", "binance", "--port", "coinbase=0"], "VENUE=PORT"),
        (["--venues", "binance", "--port", "binance=x"], "not a port number"),
        (["--venues", "binance,coinbase", "--port", "binance=9999", "--port", "coinbase=9999"], "share port 9999"),
    ],
)
def test_bad_venue_options_fail_with_a_message_that_says_what_to_fix(options: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "run_exchange_sim", *options], cwd=REPO, capture_output=True, timeout=30
    )
    assert done.returncode != 0
    assert message in done.stderr.decode()
