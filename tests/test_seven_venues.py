"""Seven venues end to end: the simulator speaks every dialect, the ingestor connects to each,
survives dropped connections, and the engine finds opportunities between pairs other than
Binance–Coinbase."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from arbsite.redis_server import EmbeddedRedis, free_port
from tests.procs import Proc, get_json, wait_until
from tests.test_pipeline import Listener, is_pair

VENUES = ["binance", "coinbase", "kraken", "okx", "bitstamp", "gemini", "bitfinex"]


class SevenVenues:
    def __init__(self, redis_url: str) -> None:
        ports = [arg for venue in VENUES for arg in ("--port", f"{venue}=0")]
        self.sim = Proc(
            "sim",
            ["run_exchange_sim", *ports, "--seed", "11", "--rate", "300", "--no-auto-dislocations"],
            {"SIM_VENUES": ",".join(VENUES)},
        )
        ready = self.sim.wait_for_line(lambda line: line.startswith("SIM_READY "))
        urls: dict[str, str] = orjson.loads(ready.removeprefix("SIM_READY "))
        assert sorted(urls) == sorted(VENUES)
        self.control_url = urls["binance"].replace("ws://", "http://") + "/sim"
        self.ingestor_port = free_port()
        env = {
            "REDIS_URL": redis_url,
            "ZMQ_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
            "HEALTH_PORT": str(self.ingestor_port),
            "ENGINE_HEALTH_PORT": str(free_port()),
            "EXCHANGES": ",".join(VENUES),
            "FEED_SILENCE_TIMEOUT_S": "3",
            **{f"SIM_{venue.upper()}_PORT": url.rsplit(":", 1)[1] for venue, url in urls.items()},
        }
        self.engine = Proc("engine", ["run_engine"], env)
        self.ingestor = Proc("ingestor", ["run_ingestor"], env)

    def feeds(self) -> dict[str, Any]:
        _, body = get_json(f"http://127.0.0.1:{self.ingestor_port}/health")
        assert isinstance(body, dict)
        return dict(body["feeds"])

    def control(self, action: str, query: str) -> None:
        status, body = get_json(f"{self.control_url}/{action}?{query}")
        assert status == 200, body

    def output(self) -> str:
        return "\n\n".join(f"--- {p.name}\n{p.output()}" for p in (self.sim, self.ingestor, self.engine))


@pytest.fixture
def seven(redis_server: EmbeddedRedis) -> Iterator[SevenVenues]:
    running = SevenVenues(redis_server.url)
    try:
        yield running
        codes = {proc.name: proc.terminate(8.0) for proc in (running.ingestor, running.engine, running.sim)}
        assert codes == {"ingestor": 0, "engine": 0, "sim": 0}, running.output()
    finally:
        for proc in (running.ingestor, running.engine, running.sim):
            proc.kill()


def test_every_venue_is_live_ticking_and_back_after_a_dropped_connection(seven: SevenVenues):
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
    connects = {name: feed["connects"] for name, feed in feeds.items()}
    seven.control("drop", "venue=all")
    wait_until(
        lambda: all(f["connects"] > connects[n] and f["state"] == "live" for n, f in seven.feeds().items()),
        20,
        "all seven reconnected",
    )


def test_signals_flow_between_venue_pairs_other_than_binance_and_coinbase(
    seven: SevenVenues, redis_server: EmbeddedRedis
):
    wait_until(lambda: all(f["state"] == "live" for f in seven.feeds().values()), 30, "seven feeds live")
    listener = Listener(redis_server.url)
    seven.control("dislocate", "asset=BTC&cheap=kraken&rich=okx&net_pct=1.2&seconds=3")
    opened = listener.wait_for(is_pair("BTC", "kraken", "okx", "open"), 15, "kraken→okx open")
    assert opened["buy_symbol"] == "BTC/USD"
    assert opened["sell_symbol"] == "BTC/USDT"
    seven.control("dislocate", "asset=ETH&cheap=gemini&rich=bitfinex&net_pct=1.2&seconds=3")
    listener.wait_for(is_pair("ETH", "gemini", "bitfinex", "open"), 15, "gemini→bitfinex open")
    seven.control("dislocate", "asset=SOL&cheap=bitstamp&rich=coinbase&net_pct=1.5&seconds=3")
    listener.wait_for(is_pair("SOL", "bitstamp", "coinbase", "open"), 15, "bitstamp→coinbase open")
    listener.close()
