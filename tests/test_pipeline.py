"""The live pipeline end to end: real simulator, ingestor and engine processes, a real Redis.

Each test starts the three processes on free ports (tests/conftest.py), drives the
simulator through its control endpoint and watches what a trader would see:
signals on `arbitrage:signals`, the history, the processes' /health.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import orjson
import pytest
import redis

from arbsite.redis_server import EmbeddedRedis
from tests.conftest import Pipeline
from tests.procs import REPO, wait_until

Signal = dict[str, object]


class Listener:
    """A subscriber to `arbitrage:signals`, as a consumer of the signals would be."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe("arbitrage:signals")
        self.signals: list[Signal] = []

    def wait_for(self, predicate: Callable[[Signal], bool], timeout_s: float, what: str) -> Signal:
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "message":
                self.signals.append(orjson.loads(bytes(message["data"])))
            for signal in self.signals[seen:]:
                if predicate(signal):
                    return signal
            seen = len(self.signals)
        raise AssertionError(f"no {what} within {timeout_s} s; got {[(s['status'], s['id']) for s in self.signals]}")

    def wait_until(self, condition: Callable[[list[Signal]], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition(self.signals):
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout_s} s: {what}; got {[s['id'] for s in self.signals]}")
            message = self.pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "message":
                self.signals.append(orjson.loads(message["data"]))

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def pipeline(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(redis_server.url, tmp_path)
    try:
        yield running
        codes = running.stop()
        assert codes == {"ingestor": 0, "engine": 0, "sim": 0}, running.output()
    finally:
        running.kill()


def is_pair(asset: str, buy: str, sell: str, status: str) -> Callable[[Signal], bool]:
    return lambda s: (
        s["asset"] == asset and s["buy_exchange"] == buy and s["sell_exchange"] == sell and s["status"] == status
    )


def test_a_forced_dislocation_opens_and_closes_a_signal_on_redis(pipeline: Pipeline, redis_server: EmbeddedRedis):
    listener = Listener(redis_server.url)
    pipeline.control("dislocate", asset="BTC", cheap="binance", rich="coinbase", net_pct="1.0", seconds="3")
    opened = listener.wait_for(is_pair("BTC", "binance", "coinbase", "open"), 10, "open signal")
    assert opened["net_spread_pct"] > 0.5  # type: ignore[operator]
    assert opened["buy_symbol"] == "BTC/USDT"
    assert opened["sell_symbol"] == "BTC/USD"
    # engine:open holds it while it is open (written with the signal), and not once it closed.
    wait_until(lambda: listener.client.hget("engine:open", str(opened["id"])) is not None, 2, "open in engine:open")
    closed = listener.wait_for(lambda s: s["id"] == opened["id"] and s["status"] == "close", 15, "close signal")
    assert closed["duration_ms"] > 0  # type: ignore[operator]
    wait_until(lambda: listener.client.hget("engine:open", str(opened["id"])) is None, 2, "gone from engine:open")
    history = [orjson.loads(member) for member in cast(list[bytes], listener.client.zrange("signals:history", 0, -1))]
    assert opened in history
    assert closed in history
    assert listener.client.xlen("signals:stream") >= 2
    assert listener.client.get("price:binance:BTC/USDT") is not None
    listener.close()


def test_the_ingestor_reconnects_after_the_exchange_drops_every_connection(pipeline: Pipeline):
    _, before = pipeline.ingestor_status()
    connects_before = {name: feed["connects"] for name, feed in before["feeds"].items()}
    pipeline.control("drop", venue="all")
    # Backoff starts at 1 s (+ up to 25 % jitter): back within a few seconds, and ticking again.
    wait_until(
        lambda: all(
            feed["connects"] > connects_before[name] and feed["state"] == "live"
            for name, feed in pipeline.ingestor_status()[1]["feeds"].items()
        ),
        8,
        "both feeds reconnected and live",
    )
    _, after = pipeline.ingestor_status()
    frames = {name: feed["frames"] for name, feed in after["feeds"].items()}
    wait_until(
        lambda: all(feed["frames"] > frames[name] for name, feed in pipeline.ingestor_status()[1]["feeds"].items()),
        5,
        "frames flowing again",
    )


def test_a_silent_feed_is_declared_dead_and_its_quotes_stop_producing_signals(
    pipeline: Pipeline, redis_server: EmbeddedRedis
):
    listener = Listener(redis_server.url)
    pipeline.control("silence", venue="coinbase")
    # FEED_SILENCE_TIMEOUT_S=2 in the tests: declared dead, reported to /health as not live.
    wait_until(lambda: pipeline.ingestor_status()[1]["feeds"]["coinbase"]["dead_declared"] >= 1, 8, "declared dead")
    status, body = pipeline.ingestor_status()
    assert status == 503 or body["feeds"]["coinbase"]["state"] != "live"
    wait_until(lambda: pipeline.engine_status()[1]["feeds"].get("coinbase") == "down", 5, "engine told")
    # A dislocation now would be a real opportunity, but coinbase's quotes no longer count.
    pipeline.control("dislocate", asset="ETH", cheap="binance", rich="coinbase", net_pct="1.5", seconds="3")
    with pytest.raises(AssertionError, match="no open signal"):
        listener.wait_for(is_pair("ETH", "binance", "coinbase", "open"), 2.5, "open signal")
    pipeline.control("resume", venue="coinbase")
    wait_until(lambda: pipeline.ingestor_status()[0] == 200, 40, "coinbase live again")
    listener.close()


def test_the_engine_survives_redis_going_away_and_publishes_when_it_returns(
    pipeline: Pipeline, redis_server: EmbeddedRedis
):
    redis_server.stop()
    wait_until(lambda: pipeline.engine_status()[0] == 503, 10, "engine reports redis down")
    _, body = pipeline.engine_status()
    assert body["failing"] == ["redis"]
    ticks_before = body["ticks"]
    pipeline.control("dislocate", asset="SOL", cheap="coinbase", rich="binance", net_pct="1.2", seconds="30")
    wait_until(lambda: pipeline.engine_status()[1]["signals"]["open"] >= 1, 10, "signal raised while redis is down")
    assert pipeline.engine_status()[1]["ticks"] > ticks_before
    redis_server.start()
    wait_until(lambda: pipeline.engine_status()[0] == 200, 15, "engine reconnected")
    _, body = pipeline.engine_status()
    assert body["redis_outages"] >= 1
    assert body["signals_held"] >= 1  # the SOL open waited for Redis
    client = redis.Redis.from_url(redis_server.url)
    held = [orjson.loads(member) for member in cast(list[bytes], client.zrange("signals:history", 0, -1))]
    assert any(s["asset"] == "SOL" and s["status"] == "open" for s in held), held
    listener = Listener(redis_server.url)
    pipeline.control("dislocate", asset="BTC", cheap="binance", rich="coinbase", net_pct="1.2", seconds="3")
    listener.wait_for(is_pair("BTC", "binance", "coinbase", "open"), 10, "open signal after redis returned")
    listener.close()
    client.close()
    assert pipeline.engine.popen.poll() is None


def test_health_endpoints_answer_200_when_everything_is_live(pipeline: Pipeline):
    status, body = pipeline.ingestor_status()
    assert status == 200
    assert set(body["feeds"]) == {"binance", "coinbase"}
    assert all(feed["state"] == "live" for feed in body["feeds"].values())
    wait_until(lambda: pipeline.engine_status()[1]["ticks"] > 0, 5, "engine applying ticks")
    status, body = pipeline.engine_status()
    assert status == 200


def test_each_frames_ticks_cross_in_one_message_and_the_engine_applies_every_tick(pipeline: Pipeline):
    wait_until(lambda: pipeline.engine_status()[1]["ticks"] > 1000, 15, "a thousand ticks applied")
    # Ticks refused before the engine had connected are start-up: none may be refused from here on.
    refused_at_start = pipeline.ingestor_status()[1]["ticks_dropped_backpressure"]
    pipeline.control("silence", venue="all")  # the counts stop moving (but for the feeds' down/up states)

    def settled() -> bool:
        sent, engine = pipeline.ingestor_status()[1], pipeline.engine_status()[1]
        return bool(
            engine["ticks"] == sent["ticks_sent"]
            and engine["messages"] == sent["messages_sent"] + sent["feed_states_sent"]
        )

    wait_until(settled, 5, "every message and tick the ingestor sent applied by the engine")
    sent, engine = pipeline.ingestor_status()[1], pipeline.engine_status()[1]
    assert (sent["ticks_dropped_backpressure"], engine["bad_messages"], engine["bad_ticks"]) == (refused_at_start, 0, 0)
    # Coinbase's ticker frames carry a quote and its trade: fewer messages than ticks, one per frame.
    assert sent["messages_sent"] < sent["ticks_sent"]
    frames = sum(feed["frames"] for feed in sent["feeds"].values())
    assert sent["messages_sent"] <= frames
    pipeline.control("resume", venue="all")


def essence(signals: list[Signal]) -> list[tuple[object, ...]]:
    """What a replay must reproduce: which opportunities open and close, in which order."""
    return [
        (s["status"], s["asset"], s["buy_exchange"], s["sell_exchange"])
        for s in signals
        if s["status"] in ("open", "close")
    ]


def test_a_recorded_session_replays_to_the_same_signals(redis_server: EmbeddedRedis, tmp_path: Path):
    capture = tmp_path / "session.jsonl"
    recorder = Pipeline(redis_server.url, tmp_path, record=capture)
    try:
        listener = Listener(redis_server.url)
        recorder.control("dislocate", asset="ETH", cheap="coinbase", rich="binance", net_pct="1.0", seconds="2")
        opened = listener.wait_for(is_pair("ETH", "coinbase", "binance", "open"), 10, "open")
        listener.wait_for(lambda s: s["id"] == opened["id"] and s["status"] == "close", 15, "close")
        time.sleep(0.5)
        listener.close()
        assert recorder.stop() == {"ingestor": 0, "engine": 0, "sim": 0}, recorder.output()
    finally:
        recorder.kill()
    offline = subprocess.run(
        [sys.executable, "manage.py", "replay", str(capture)], cwd=REPO, capture_output=True, check=True
    ).stdout.splitlines()
    offline_signals = [orjson.loads(line) for line in offline]
    assert any(s["status"] == "open" for s in offline_signals)

    # The same capture served by the simulator to a fresh ingestor and engine.
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    listener = Listener(redis_server.url)  # before the replay starts: it begins when the feeds subscribe
    replayer = Pipeline(redis_server.url, tmp_path, sim_args=["--replay", str(capture), "--speed", "1"])
    try:
        wanted = len(essence(offline_signals))
        listener.wait_until(lambda got: len(essence(got)) >= wanted, 40, f"{wanted} replayed opens and closes")
        live = [s for s in listener.signals if s["status"] in ("open", "close")]
        listener.close()
        assert replayer.stop() == {"ingestor": 0, "engine": 0, "sim": 0}, replayer.output()
    finally:
        replayer.kill()
        client.close()

    # Live, the two venues' frames travel on two connections, so the engine may see them
    # interleaved a frame apart from the capture's order: the same opportunities must open
    # and close in the same order, at prices within a tick of the offline replay's.
    assert essence(live) == essence(offline_signals)
    for replayed, recorded in zip(
        [s for s in live if s["status"] == "open"], [s for s in offline_signals if s["status"] == "open"], strict=True
    ):
        assert replayed["buy_price"] == pytest.approx(recorded["buy_price"], rel=1e-3)
        assert replayed["sell_price"] == pytest.approx(recorded["sell_price"], rel=1e-3)
