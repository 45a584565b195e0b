"""`run_exchange_sim --replay` serves the five newer venues' recordings to the real ingestor client.

For each venue a capture is built from one recorded session in ../shared/market-data
(every channel file of it, merged in receive order). The simulator runs as its own
process with `--replay` on it; the ingestor's `Feed` fetches the market list the
simulator serves, subscribes to every listed market of the recorded assets, parses
what arrives and pushes ticks over a real ZeroMQ PUSH socket to a PULL socket here.
Those ticks must be exactly what `manage.py normalize` makes of the same frames,
except for the receive time, which is live: `recv_ns`, and the `timestamp` of ticks
whose frame carries no event time (it is the receive time there).

The Feed runs without the 60 s clock check (as `normalize` does): the recordings are
years old, and the clock check is not what is tested here.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zmq

from arbsite.redis_server import free_port
from ingest_worker.feed import Feed
from ingest_worker.push import TickPusher
from ingest_worker.tests.recorded import MARKET_DATA, MARKET_DATA_ABSENT, write_capture
from ingest_worker.venues import VENUES
from signals_app.contracts.symbols import base_of, quote_of
from signals_app.contracts.tick import Tick, decode, decode_message
from tests.procs import REPO, Proc, get_json

# venue -> the files of recorded sessions (`<channel>[.<date>]` in market-data/<venue>/) that make its capture.
SESSIONS: dict[str, list[str]] = {
    "kraken": ["control", "ticker", "trade", "book"],  # WebSocket v1, 2021-04-17
    "okx": ["tickers", "trades", "books"],  # 2022-05-13: spot, futures and a swap on one connection
    "bitstamp": ["diff_order_book", "live_trades", "diff_order_book.20210417", "live_trades.20210417"],
    "gemini": ["heartbeat", "l2", "trade"],
    "bitfinex": ["control", "ticker", "trades", "book"],  # SEQ_ALL; data names channels by chanId only
}
QUIET_S = 0.5  # once the replay is over, the feed has everything when nothing arrived for this long


@pytest.fixture(scope="module")
def market_data() -> Path:
    if not MARKET_DATA.is_dir():
        pytest.skip(MARKET_DATA_ABSENT)
    return MARKET_DATA


def normalized(capture: Path, venue: str) -> list[Tick]:
    """What the offline path makes of the capture: `manage.py normalize --exchange VENUE CAPTURE`."""
    done = subprocess.run(
        [sys.executable, "manage.py", "normalize", "--exchange", venue, str(capture)],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    return [decode(line) for line in done.stdout.splitlines()]


class ReplayedFeed:
    """The ingestor's Feed on the simulator's venue, its ticks collected from a ZeroMQ PULL socket."""

    def __init__(self, venue: str, ws_url: str, expected: list[Tick]) -> None:
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.pusher = TickPusher(endpoint, self.context)
        self.pull = self.context.socket(zmq.PULL)
        self.pull.connect(endpoint)
        self.status_url = ws_url.replace("ws://", "http://") + "/sim/status"
        self.feed = Feed(
            VENUES[venue],
            ws_base=ws_url,
            rest_base=ws_url.replace("ws://", "http://"),
            pusher=self.pusher,
            assets={base_of(tick.symbol) for tick in expected},
            quotes={quote_of(tick.symbol) for tick in expected},
            silence_timeout_s=30.0,
            max_age_ms=None,
        )
        self.ticks: list[Tick] = []

    def drain(self) -> None:
        while True:
            try:
                items, refused = decode_message(self.pull.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            assert not refused, refused
            self.ticks.extend(message for message in items if isinstance(message, Tick))

    async def run(self, timeout_s: float = 30.0) -> None:
        """Markets, subscription, the whole replay; returns once the simulator has sent everything and it arrived."""
        stop = asyncio.Event()
        await self.feed.load_markets()
        assert len(self.feed.connections) == 1, "a recorded session is one connection's"
        session = asyncio.create_task(self.feed.session(self.feed.connections[0], stop))
        deadline = time.monotonic() + timeout_s
        frames, quiet_since = -1, time.monotonic()
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # the PULL socket is read here, between the feed's steps
                self.drain()
                if self.feed.frames != frames:
                    frames, quiet_since = self.feed.frames, time.monotonic()
                    continue
                if time.monotonic() - quiet_since < QUIET_S:
                    continue
                _, status = await asyncio.to_thread(get_json, self.status_url)
                assert isinstance(status, dict)
                if status["replay"]["state"] == "finished":
                    break
            else:
                raise AssertionError(f"the replay did not finish within {timeout_s} s")
        finally:
            stop.set()
            await session
        await asyncio.sleep(0.1)
        self.drain()

    def close(self) -> None:
        self.pull.close(linger=0)
        self.pusher.close()
        self.context.term()


@pytest.mark.parametrize("venue", list(SESSIONS))
def test_a_recorded_session_replays_to_the_live_client_as_normalize_reads_it(
    venue: str, market_data: Path, tmp_path: Path
) -> None:
    capture = write_capture(
        tmp_path / f"{venue}.jsonl", venue, [market_data / venue / f"{name}.jsonl" for name in SESSIONS[venue]]
    )
    expected = normalized(capture, venue)
    assert expected, f"{venue}: the recorded session gives no tick; the test would prove nothing"
    sim = Proc(
        "sim",
        ["run_exchange_sim", "--venues", venue, "--port", f"{venue}=0", "--replay", str(capture), "--speed", "0"],
        {},
    )
    try:
        ready = sim.wait_for_line(lambda line: line.startswith("SIM_READY "))
        url = orjson.loads(ready.removeprefix("SIM_READY "))[venue]
        client = ReplayedFeed(venue, url, expected)
        try:
            asyncio.run(client.run())
        finally:
            client.close()
        assert sim.terminate() == 0, sim.output()
    finally:
        sim.kill()

    feed, got = client.feed, client.ticks
    parser = feed.connections[0].parser
    # The market list served is the recorded one: the feed subscribed to every market that ticks.
    subscribed = {parser.symbols.resolve(native) for native in feed.natives}
    assert {tick.symbol for tick in expected} <= subscribed, sim.output()
    assert parser.stats.dropped == dict.fromkeys(parser.stats.dropped, 0), parser.stats.as_dict()
    assert client.pusher.dropped == 0
    assert len(got) == len(expected), (venue, len(got), len(expected), parser.stats.as_dict())
    for index, (live, recorded) in enumerate(zip(got, expected, strict=True)):
        where = f"{venue} tick {index}: {live} vs {recorded}"
        assert live._replace(timestamp=0, recv_ns=0) == recorded._replace(timestamp=0, recv_ns=0), where
        if live.timestamp == live.recv_ns // 1_000_000:
            # No event time in the frame: the receive time stands in, live here, recorded offline.
            assert recorded.timestamp == recorded.recv_ns // 1_000_000, where
        else:
            assert live.timestamp == recorded.timestamp, where
