"""What each venue's live client needs on a real connection, end to end: the simulator and the
ingestor as real processes, the test reading the ingestor's ZeroMQ socket as the engine would.

- OKX cuts a connection that has sent nothing for 30 s: the ingestor's text `ping` keeps it.
- Bitfinex takes 25 channels per connection: more markets go over several connections.
- A Gemini book that goes wrong is dropped, resubscribed and rebuilt, with no bad quote meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import zmq

from arbsite.redis_server import free_port
from ingest_worker.tests.recorded import assert_book_lost_once
from signals_app.contracts.tick import BOOK, QUOTE, TRADE, FeedState, Tick, decode_message, is_book_lost
from tests.procs import REPO, Proc, get_json, wait_until

ASSETS_15 = "BTC,ETH,SOL,XRP,ADA,DOT,LTC,LINK,AVAX,ATOM,UNI,XLM,FIL,AAVE,EOS"


class LiveClient:
    """The simulator serving one venue, the ingestor connected to it, and the engine's end of ZeroMQ."""

    def __init__(self, venue: str, sim_args: list[str], env: dict[str, str]) -> None:
        self.venue = venue
        self.sim = Proc(
            "sim",
            ["run_exchange_sim", "--venues", venue, "--port", f"{venue}=0", "--no-auto-dislocations", *sim_args],
            {},
        )
        ready = self.sim.wait_for_line(lambda line: line.startswith("SIM_READY "))
        url: str = orjson.loads(ready.removeprefix("SIM_READY "))[venue]
        self.control_url = url.replace("ws://", "http://") + "/sim"
        self.health_port = free_port()
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        # Every frame is recorded, so that a test can read the session back offline.
        self.capture = Path(tempfile.mkdtemp(prefix="live-client-")) / "capture.jsonl"
        self.ingestor = Proc(
            "ingestor",
            ["run_ingestor", "--record", str(self.capture)],
            {
                "EXCHANGES": venue,
                f"SIM_{venue.upper()}_PORT": url.rsplit(":", 1)[1],
                "MARKET_SOURCE": "sim",
                "ZMQ_ENDPOINT": endpoint,
                "HEALTH_PORT": str(self.health_port),
                "FEED_SILENCE_TIMEOUT_S": "3",
                "LOG_LEVEL": "info",
                **env,
            },
        )
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PULL)
        self.socket.connect(endpoint)
        self.messages: list[Tick | FeedState] = []

    def feed(self) -> dict[str, Any]:
        _, body = get_json(f"http://127.0.0.1:{self.health_port}/health")
        assert isinstance(body, dict)
        return dict(body["feeds"][self.venue])

    def sim_status(self) -> dict[str, Any]:
        status, body = get_json(f"{self.control_url}/status")
        assert status == 200
        assert isinstance(body, dict)
        return dict(body["venues"][self.venue])

    def control(self, action: str, query: str) -> dict[str, Any]:
        status, body = get_json(f"{self.control_url}/{action}?{query}")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def received(self) -> list[Tick | FeedState]:
        """Every message the ingestor pushed so far, decoded (a malformed one fails the test)."""
        while self.socket.poll(0):
            items, refused = decode_message(self.socket.recv())
            assert not refused, refused
            self.messages.extend(items)
        return self.messages

    def quotes(self, start: int = 0) -> list[Tick]:
        # A book tick is also the market's quote (DESIGN.md "Depth"); a book-lost tick is none.
        return [
            m
            for m in self.received()[start:]
            if isinstance(m, Tick) and m.type in (QUOTE, BOOK) and not is_book_lost(m)
        ]

    def output(self) -> str:
        return "\n\n".join(f"--- {p.name}\n{p.output()}" for p in (self.sim, self.ingestor))

    def stop(self) -> None:
        """SIGTERM to both (again: a no-op); both must exit 0."""
        codes = {proc.name: proc.terminate(8.0) for proc in (self.ingestor, self.sim)}
        assert codes == {"ingestor": 0, "sim": 0}, self.output()

    def kill(self) -> None:
        self.socket.close(linger=0)
        for proc in (self.ingestor, self.sim):
            proc.kill()


@pytest.fixture
def live_client(request: pytest.FixtureRequest) -> Iterator[LiveClient]:
    venue, sim_args, env = request.param
    running = LiveClient(venue, sim_args, env)
    try:
        yield running
        running.stop()
    finally:
        running.kill()


def _quotes_are_sane(quotes: list[Tick]) -> bool:
    return all(q.bid is not None and q.ask is not None and 0 < q.bid < q.ask for q in quotes)


@pytest.mark.parametrize(
    "live_client",
    [("okx", ["--okx-idle-timeout", "2", "--rate", "100"], {"WS_PING_INTERVAL_S": "1"})],
    indirect=True,
)
def test_okx_stays_connected_across_idle_timeouts_on_its_text_ping(live_client: LiveClient):
    wait_until(lambda: live_client.feed()["state"] == "live", 20, "okx live", interval_s=0.1)
    assert live_client.sim_status()["idle_timeout_s"] == 2.0
    time.sleep(8.5)  # four of the simulator's idle timeouts
    feed = live_client.feed()
    assert (feed["state"], feed["connects"], feed["disconnects"]) == ("live", 1, 0), live_client.output()
    assert feed["connections"][0]["keepalives_sent"] >= 7  # every second: min(25 s declared, WS_PING_INTERVAL_S)
    assert feed["parse"]["control"]["pong"] >= 7
    assert live_client.sim_status()["idle_closes"] == 0
    assert _quotes_are_sane(live_client.quotes())


@pytest.mark.parametrize(
    "live_client",
    # rate 150: each book update is up to 100 level frames on Bitfinex's wire
    [("bitfinex", ["--assets", ASSETS_15, "--rate", "150"], {"ASSETS": ASSETS_15})],
    indirect=True,
)
def test_bitfinex_markets_past_the_channel_cap_all_tick_over_two_connections(live_client: LiveClient):
    # The 15 assets and the stablecoin reference market, USDT/USD: 16 markets, 48 channels.
    wanted = {f"{asset}/USD" for asset in ASSETS_15.split(",")} | {"USDT/USD"}
    wait_until(
        lambda: {q.symbol for q in live_client.quotes()} == wanted and live_client.feed()["state"] == "live",
        20,
        "every Bitfinex market quoted",
        interval_s=0.1,
    )
    feed = live_client.feed()
    assert feed["markets"] == 16
    assert [(c["markets"], c["state"], c["connects"]) for c in feed["connections"]] == [(8, "live", 1), (8, "live", 1)]
    assert "error" not in feed["parse"]["control"]  # no 10305, nor any other refusal
    assert feed["parse"]["dropped"] == {}
    sim = live_client.sim_status()
    assert sim["channels_per_connection"] == [24, 24]
    assert sim["limit_refusals"] == 0
    trades = {m.symbol for m in live_client.received() if isinstance(m, Tick) and m.type == TRADE}
    assert trades  # trades come through the same connections
    assert _quotes_are_sane(live_client.quotes())
    # The recording names each line's connection, and `normalize` reads it back market for market:
    # one parser per connection, so no channel id is taken for another connection's market.
    live_client.stop()
    lines = [orjson.loads(line) for line in live_client.capture.read_bytes().splitlines()]
    assert {line.get("connection") for line in lines} == {1, 2}
    done = subprocess.run(
        [sys.executable, "manage.py", "normalize", "--exchange", "bitfinex", str(live_client.capture)],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    ticks = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert {tick["symbol"] for tick in ticks} == wanted
    assert b"unknown_channel" not in done.stderr, done.stderr.decode()
    # Every quote the engine's end received live is one the recording gives back, same market.
    normalized = {(t["symbol"], t["bid"], t["ask"]) for t in ticks if t["type"] in (QUOTE, BOOK)}
    assert {(q.symbol, q.bid, q.ask) for q in live_client.quotes()} <= normalized


@pytest.mark.parametrize("live_client", [("gemini", ["--rate", "300"], {})], indirect=True)
def test_a_gemini_book_gone_wrong_is_resubscribed_and_quotes_again_without_a_bad_quote(live_client: LiveClient):
    wait_until(
        lambda: "BTC/USD" in {q.symbol for q in live_client.quotes()} and live_client.feed()["state"] == "live",
        20,
        "gemini live, BTC/USD quoted",
        interval_s=0.1,
    )
    before = live_client.feed()
    assert before["resyncs"] == 0
    fault = live_client.control("fault", "venue=gemini&market=BTCUSD&kind=crossed")
    assert fault["clients"] == 1
    phantom = float(fault["frame"].split('"buy","')[1].split('"')[0])
    wait_until(lambda: live_client.feed()["resyncs"] == 1, 5, "BTCUSD resubscribed", interval_s=0.1)
    after_resync = len(live_client.received())
    wait_until(
        lambda: "BTC/USD" in {q.symbol for q in live_client.quotes(after_resync)},
        5,
        "BTC/USD quoted again",
        interval_s=0.1,
    )
    feed = live_client.feed()
    assert feed["parse"]["dropped"]["book_gap"] >= 1  # the crossed book, and updates in flight before the snapshot
    assert set(feed["parse"]["dropped"]) == {"book_gap"}
    assert (feed["connects"], feed["state"]) == (1, "live")  # resubscribed, not reconnected
    quotes = live_client.quotes()
    assert _quotes_are_sane(quotes)
    assert max(q.bid for q in quotes if q.symbol == "BTC/USD" and q.bid is not None) < phantom
    # The engine was told, once, that the book it had been sent was gone, before the new one came.
    assert_book_lost_once(live_client.received(), "gemini", "BTC/USD")
    assert feed["books"]["lost"] == 1
    assert "resubscribing for a fresh snapshot" in live_client.ingestor.output()
