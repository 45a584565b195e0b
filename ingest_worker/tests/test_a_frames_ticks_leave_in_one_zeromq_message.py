"""Every frame's ticks leave the ingestor in one ZeroMQ message (ingest_worker/push.py), counted per tick.

Real sockets throughout: the pusher binds, a PULL socket reads as the engine would. What every
parser makes of every recorded frame crosses the hop unchanged; a live feed against the
simulator sends each frame's ticks (a Coinbase ticker's quote and trade) as one message; a
message refused at the high-water mark, behind a held feed state or by the encoder counts each
of its ticks as dropped, and the pusher goes on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path

import pytest
import zmq

from arbsite.redis_server import free_port
from ingest_worker.feed import LIVE, Feed
from ingest_worker.push import DROP_LOG_EVERY, TickPusher
from ingest_worker.tests.recorded import frames
from ingest_worker.tests.sim_helpers import http_url, run, simulator
from ingest_worker.venues import PARSERS, VENUES, make_parser
from signals_app.contracts.tick import FEED_DOWN, FeedState, Tick, book, book_lost, decode_message, quote, trade


def _ticks(n: int, exchange: str = "okx") -> list[Tick]:
    now_ns = time.time_ns()
    ms = now_ns // 1_000_000
    out = [book(exchange, f"A{i}/USDT", [[100.0, 1.0], [99.0, 2.0]], [[101.0, 1.0]], ms, now_ns) for i in range(n - 2)]
    return [
        *out,
        quote(exchange, "BTC/USDT", 1.0, 2.0, None, None, ms, now_ns),
        book_lost(exchange, "B/USDT", ms, now_ns),
    ]


class _Engine:
    def __init__(self, endpoint: str, rcvhwm: int = 1000) -> None:
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self.socket.connect(endpoint)

    def messages(self, wait_ms: int = 200, count: int | None = None) -> list[list[Tick | FeedState]]:
        """What arrives until `wait_ms` pass without a message, or until `count` arrived."""
        out: list[list[Tick | FeedState]] = []
        while len(out) != count and self.socket.poll(wait_ms):
            items, refused = decode_message(self.socket.recv())
            assert not refused, refused
            out.append(list(items))
        return out

    def close(self) -> None:
        self.socket.close(linger=0)


@pytest.mark.parametrize("venue", sorted(PARSERS))
def test_what_every_parser_makes_of_every_recorded_frame_crosses_unchanged(market_data: Path, venue: str) -> None:
    endpoint = f"inproc://recorded-{venue}"
    pusher = TickPusher(endpoint)
    engine = _Engine(endpoint, rcvhwm=0)
    try:
        sent: list[list[Tick]] = []
        for path in sorted((market_data / venue).glob("*.jsonl")):
            parser = make_parser(venue, max_age_ms=None)
            for frame, recv_ns in frames(path):
                ticks = parser.parse(frame, recv_ns)
                if ticks:
                    assert pusher.send_ticks(ticks) == len(ticks)
                    sent.append(ticks)
        assert sent, f"no ticks from {venue}'s recordings"
        received = engine.messages(wait_ms=2000, count=len(sent))
        assert received == sent  # one message a frame, every tick exactly as the parser made it
        assert (pusher.sent, pusher.messages_sent, pusher.dropped) == (sum(map(len, sent)), len(sent), 0)
    finally:
        pusher.close()
        engine.close()


def test_a_live_feed_sends_each_frames_ticks_in_one_message() -> None:
    async def body() -> None:
        async with simulator(venues=("coinbase",), rate=400) as sim:
            endpoint = f"tcp://127.0.0.1:{free_port()}"
            pusher = TickPusher(endpoint)
            engine = _Engine(endpoint)
            url = sim.urls["coinbase"]
            feed = Feed(
                VENUES["coinbase"],
                ws_base=url,
                rest_base=http_url(url),
                pusher=pusher,
                assets=("BTC", "ETH"),
                quotes=("USD",),
                rng=random.Random(0),
            )
            stop = asyncio.Event()
            task = asyncio.create_task(feed.run(stop))
            try:
                deadline = time.monotonic() + 10
                while feed.state != LIVE or pusher.messages_sent < 200:
                    assert time.monotonic() < deadline, "no 200 messages within 10 s"
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await asyncio.wait_for(task, 5)
            received = await asyncio.to_thread(engine.messages)
            pusher.close()
            engine.close()
            tick_messages = [m for m in received if not isinstance(m[0], FeedState)]
            # one frame, one receive time: a message holds one frame's ticks, and no frame is split
            assert all(len({t.recv_ns for t in m}) == 1 for m in tick_messages)  # type: ignore[union-attr]
            assert len({m[0].recv_ns for m in tick_messages}) == len(tick_messages)  # type: ignore[union-attr]
            assert any(len(m) == 2 for m in tick_messages), "a ticker's quote and trade travel together"
            assert len(tick_messages) == pusher.messages_sent
            assert sum(map(len, tick_messages)) == pusher.sent == feed.ticks_sent
            assert received[-1] == [FeedState("coinbase", FEED_DOWN, received[-1][0].timestamp)]

    run(body)


def test_a_message_refused_at_the_mark_counts_each_of_its_ticks_as_dropped() -> None:
    endpoint = "inproc://refused-at-the-mark"
    pusher = TickPusher(endpoint)
    engine = _Engine(endpoint, rcvhwm=1)  # reads nothing until told
    try:
        queued = 0
        while pusher.send_ticks(_ticks(3)) == 3:
            queued += 1
        assert (pusher.dropped, pusher.messages_sent, pusher.sent) == (3, queued, 3 * queued)
        assert pusher.send_ticks(_ticks(7)) == 0
        assert pusher.dropped == 10
        # A feed state meets the mark and is held: a frame behind it is dropped whole, counted per tick.
        assert not pusher.send_feed_state("okx", FEED_DOWN, 1)
        assert pusher.send_ticks(_ticks(5)) == 0
        assert pusher.dropped == 15
        received = engine.messages()
        assert [len(m) for m in received] == [3] * queued
        assert pusher.send_ticks(_ticks(4)) == 4  # room again: the held state first, then the frame
        assert [len(m) for m in engine.messages()] == [1, 4]
        assert (pusher.sent, pusher.messages_sent, pusher.states_sent) == (3 * queued + 4, queued + 1, 1)
    finally:
        pusher.close()
        engine.close()


def test_ticks_msgpack_cannot_carry_are_dropped_and_counted_and_the_pusher_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = "inproc://unencodable"
    pusher = TickPusher(endpoint)
    engine = _Engine(endpoint)
    try:
        beyond_64_bits = trade("okx", "BTC/USDT", 100.0, 1.0, 2**70, 1)
        with caplog.at_level(logging.WARNING, logger="ingest_worker.push"):
            assert pusher.send_ticks([_ticks(2)[0], beyond_64_bits]) == 0
        assert pusher.dropped == 2
        assert "not encodable" in caplog.text
        assert pusher.send_ticks(_ticks(2)) == 2
        assert [len(m) for m in engine.messages()] == [2]
    finally:
        pusher.close()
        engine.close()


def test_dropped_ticks_are_logged_once_and_then_once_per_thousand(caplog: pytest.LogCaptureFixture) -> None:
    pusher = TickPusher("inproc://nobody-reads")  # no engine connected: every message is refused
    try:
        with caplog.at_level(logging.WARNING, logger="ingest_worker.push"):
            dropped_frames = 0
            while pusher.dropped < 2 * DROP_LOG_EVERY + 500:
                if pusher.send_ticks(_ticks(3)) == 0:
                    dropped_frames += 1
        warnings = [r for r in caplog.records if "ticks dropped" in r.getMessage()]
        assert len(warnings) == 3  # the first, then at 1000 and at 2000
        assert pusher.dropped == 3 * dropped_frames
    finally:
        pusher.close()
