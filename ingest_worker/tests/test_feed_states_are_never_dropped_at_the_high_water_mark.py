"""A venue's down/up message reaches the engine even when the ZeroMQ queue is full, and in order.

Real sockets: the pusher binds inproc, an engine-side PULL with a small receive
mark connects and reads only when the test says so.
"""

from __future__ import annotations

import asyncio
import threading
import time

import zmq

from ingest_worker.push import TickPusher
from signals_app.contracts.tick import FEED_DOWN, FEED_UP, QUOTE, FeedState, Tick, decode_message


def _tick(n: int) -> Tick:
    return Tick("kraken", "BTC/USD", QUOTE, 100.5, 0.0, 100.0, 101.0, 1.0, 1.0, n, time.time_ns())


class _Peer:
    def __init__(self, endpoint: str) -> None:
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, 10)
        self.socket.connect(endpoint)

    def read_all(self) -> list[Tick | FeedState]:
        out: list[Tick | FeedState] = []
        while self.socket.poll(50):
            out.extend(decode_message(self.socket.recv()).items)
        return out


def _full(endpoint: str) -> tuple[TickPusher, _Peer, int]:
    pusher = TickPusher(endpoint)
    peer = _Peer(endpoint)
    n = 0
    while pusher.send_ticks([_tick(n)]):
        n += 1
    assert pusher.dropped == 1  # the tick that found the queue full
    return pusher, peer, n


def test_a_state_that_meets_the_mark_is_held_and_goes_out_before_any_later_tick() -> None:
    pusher, peer, queued = _full("inproc://held-state")
    try:
        assert not pusher.send_feed_state("kraken", FEED_DOWN, 1)
        assert (pusher.states_held, pusher.holding) == (1, 1)
        # A tick behind the held state would overtake it: it is dropped and counted instead.
        assert not pusher.send_ticks([_tick(10_000)])
        assert pusher.dropped == 2
        # The engine reads; the next tick first lets the state out, then goes itself.
        received = peer.read_all()
        assert len(received) == queued
        assert all(isinstance(m, Tick) for m in received)
        assert pusher.send_ticks([_tick(20_000)])
        assert pusher.holding == 0
        after = peer.read_all()
        assert after[0] == FeedState("kraken", FEED_DOWN, 1)
        assert [m.timestamp for m in after[1:]] == [20_000]
        assert (pusher.sent, pusher.states_sent) == (queued + 1, 1)  # ticks and states apart
    finally:
        pusher.close()
        peer.socket.close(linger=0)


def test_a_held_state_goes_out_on_its_own_when_no_tick_comes() -> None:
    async def body() -> None:
        pusher, peer, queued = _full("inproc://held-alone")
        try:
            pusher.send_feed_state("kraken", FEED_DOWN, 1)
            pusher.send_feed_state("kraken", FEED_UP, 2)  # queued behind the first, never ahead of it
            assert (pusher.states_held, pusher.holding) == (2, 2)
            received: list[Tick | FeedState] = []
            deadline = time.monotonic() + 5
            while len(received) < queued + 2 and time.monotonic() < deadline:
                while peer.socket.poll(0):
                    received.extend(decode_message(peer.socket.recv()).items)
                await asyncio.sleep(0.001)  # the pusher retries on this loop
            assert received[queued:] == [FeedState("kraken", FEED_DOWN, 1), FeedState("kraken", FEED_UP, 2)]
            assert pusher.holding == 0
            assert pusher.dropped == 1
        finally:
            pusher.close()
            peer.socket.close(linger=0)

    asyncio.run(body())


def test_close_delivers_a_held_state_to_an_engine_that_reads() -> None:
    pusher, peer, queued = _full("inproc://held-close")
    pusher.send_feed_state("kraken", FEED_DOWN, 7)
    received: list[Tick | FeedState] = []

    # The engine drains while the pusher closes (close blocks, bounded, for the held state).
    def drain() -> None:
        while peer.socket.poll(1000):
            received.extend(decode_message(peer.socket.recv()).items)

    reader = threading.Thread(target=drain)
    reader.start()
    pusher.close()
    reader.join(5)
    peer.socket.close(linger=0)
    assert received[-1] == FeedState("kraken", FEED_DOWN, 7)
    assert len(received) == queued + 1
