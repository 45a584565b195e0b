"""The ingestor's end of the ZeroMQ hop: a PUSH socket bound at ZMQ_ENDPOINT.

Each frame's ticks leave in one message (`send_ticks`, the encoding is
`signals_app.contracts.tick.encode_ticks`), so the send, the encoding and the engine's decoding
are paid once per frame, not once per tick. Sends never block the event loop: past the
high-water mark (SNDHWM messages queued for a slow or absent engine) a message is dropped,
and each of its ticks counted as dropped, because a tick that waits is a stale tick. The mark
counts messages, not ticks: a frame's ticks go or stay together, and the queue holds at most
SNDHWM frames' worth (one or two ticks each from a quote feed, a book tick of DEPTH_LEVELS
levels each from a depth feed), so what can wait in it is about what it was when the mark
counted ticks.

A feed state (a venue down or up again) is never dropped: the engine acts on it
(DESIGN.md "Signal lifecycle"), and one it missed would leave it trusting quotes
of a venue that is gone. A state refused at the mark is held, counted, and sent
before anything else as soon as the queue has room: ticks that would overtake
it are dropped instead, so the engine always sees the venue's messages in order.
While a state is held the pusher retries it on the running event loop every
RETRY_S, also when no tick comes to push.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence

import zmq

from signals_app.contracts.tick import Tick, TickEncodeError, encode_feed_state, encode_ticks

log = logging.getLogger("ingest_worker.push")

SNDHWM = 1000  # messages: each frame's ticks are one
RETRY_S = 0.002
DROP_LOG_EVERY = 1000  # a warning for the first dropped tick, then once per this many


class TickPusher:
    def __init__(self, endpoint: str, context: zmq.Context[zmq.Socket[bytes]] | None = None) -> None:
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket[bytes] = self._context.socket(zmq.PUSH)
        self._socket.setsockopt(zmq.SNDHWM, SNDHWM)
        self._socket.setsockopt(zmq.LINGER, 500)  # on close, give queued ticks half a second to leave
        self._socket.bind(endpoint)
        self.sent = 0  # ticks sent (what the engine counts as `ticks`)
        self.messages_sent = 0  # messages of ticks sent (the engine's `messages`, with the states)
        self.states_sent = 0  # feed states sent
        self.dropped = 0  # ticks refused at the high-water mark, behind a held feed state, or unencodable
        self.states_held = 0  # feed states that met the mark and waited for room (none is dropped)
        self._held: collections.deque[bytes] = collections.deque()
        self._retry: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> int:
        """Feed states waiting for room in the queue now."""
        return len(self._held)

    def send_ticks(self, ticks: Sequence[Tick]) -> int:
        """`ticks` (one frame's, not empty) in one message: how many left, all of them or none."""
        count = len(ticks)
        if self._held and not self._flush():
            self._drop(count, "behind a held feed state")
            return 0
        try:
            data = encode_ticks(ticks)
        except TickEncodeError as exc:  # a parser let a value through that msgpack cannot carry
            self._drop(count, str(exc))
            return 0
        if self._try(data):
            self.sent += count
            self.messages_sent += 1
            return count
        self._drop(count, "at the high-water mark: no engine connected, or it is not keeping up")
        return 0

    def send_feed_state(self, exchange: str, state: str, timestamp_ms: int) -> bool:
        """Send now or hold for the next room; True when it left at once."""
        data = encode_feed_state(exchange, state, timestamp_ms)
        if not self._held and self._try(data):
            self.states_sent += 1
            return True
        self._held.append(data)
        self.states_held += 1
        log.warning("feed state of %s held at the high-water mark; it goes out before any later tick", exchange)
        self._schedule_retry()
        return False

    def _flush(self) -> bool:
        """Send the held states in order; True when none is left."""
        while self._held:
            if not self._try(self._held[0]):
                return False
            self._held.popleft()
            self.states_sent += 1
        return True

    def _schedule_retry(self) -> None:
        if self._retry is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next send (or close) flushes
        self._retry = loop.call_later(RETRY_S, self._retried)

    def _retried(self) -> None:
        self._retry = None
        if not self._flush():
            self._schedule_retry()

    def _try(self, data: bytes) -> bool:
        try:
            self._socket.send(data, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def _drop(self, count: int, why: str) -> None:
        before = self.dropped
        self.dropped += count
        if before == 0 or before // DROP_LOG_EVERY != self.dropped // DROP_LOG_EVERY:
            log.warning("%d ticks dropped so far; the last %d %s", self.dropped, count, why)

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._held:
            # Blocking now is right: the process is stopping, and LINGER bounds the wait for the engine.
            self._socket.setsockopt(zmq.SNDTIMEO, 500)
            try:
                while self._held:
                    self._socket.send(self._held[0])
                    self._held.popleft()
                    self.states_sent += 1
            except zmq.Again:
                log.warning("%d feed state(s) not delivered: no engine took them before shutdown", len(self._held))
        self._socket.close()
