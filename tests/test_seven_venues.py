"""Seven venues end to end: the simulator speaks every dialect, the ingestor connects to each,
survives dropped connections, and the engine finds opportunities between pairs other than
Binance–Coinbase."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arbsite.redis_server import EmbeddedRedis
from tests.procs import wait_until
from tests.test_pipeline import Listener, is_pair
from tests.venues import VenuesPipeline

VENUES = ["binance", "coinbase", "kraken", "okx", "bitstamp", "gemini", "bitfinex"]


@pytest.fixture
def seven(redis_server: EmbeddedRedis) -> Iterator[VenuesPipeline]:
    running = VenuesPipeline(redis_server.url, VENUES, seed=11)
    try:
        yield running
        assert running.stop() == {"ingestor": 0, "engine": 0, "sim": 0}, running.output()
    finally:
        running.kill()


def test_every_venue_is_live_ticking_and_back_after_a_dropped_connection(seven: VenuesPipeline):
    # Live, and ticks reaching the engine (pushes before it connects are refused and counted).
    wait_until(
        lambda: all(f["state"] == "live" and f["ticks_sent"] > 0 for f in seven.feeds().values()),
        30,
        "seven feeds live and ticking",
    )
    feeds = seven.feeds()
    assert sorted(feeds) == sorted(VENUES)
    for name, feed in feeds.items():
        assert feed["parse"]["dropped"] == {}, (name, feed["parse"])
        # The simulator's clock is ours: no book tick is counted as a second off the receive time.
        assert feed["books"]["clock_skewed"] == 0, (name, feed["books"])
    # The venues whose live client reads a depth channel send book ticks.
    wait_until(
        lambda: all(seven.feeds()[name]["books"]["ticks"] > 0 for name in ("binance", "coinbase")),
        10,
        "binance and coinbase book ticks",
    )
    connects = {name: feed["connects"] for name, feed in feeds.items()}
    seven.control("drop", venue="all")
    wait_until(
        lambda: all(f["connects"] > connects[n] and f["state"] == "live" for n, f in seven.feeds().items()),
        20,
        "all seven reconnected",
    )


def test_signals_flow_between_venue_pairs_other_than_binance_and_coinbase(
    seven: VenuesPipeline, redis_server: EmbeddedRedis
):
    wait_until(lambda: all(f["state"] == "live" for f in seven.feeds().values()), 30, "seven feeds live")
    listener = Listener(redis_server.url)
    seven.control("dislocate", asset="BTC", cheap="kraken", rich="okx", net_pct=1.2, seconds=3)
    opened = listener.wait_for(is_pair("BTC", "kraken", "okx", "open"), 15, "kraken→okx open")
    assert opened["buy_symbol"] == "BTC/USD"
    assert opened["sell_symbol"] == "BTC/USDT"
    seven.control("dislocate", asset="ETH", cheap="gemini", rich="bitfinex", net_pct=1.2, seconds=3)
    listener.wait_for(is_pair("ETH", "gemini", "bitfinex", "open"), 15, "gemini→bitfinex open")
    seven.control("dislocate", asset="SOL", cheap="bitstamp", rich="coinbase", net_pct=1.5, seconds=3)
    listener.wait_for(is_pair("SOL", "bitstamp", "coinbase", "open"), 15, "bitstamp→coinbase open")
    listener.close()
