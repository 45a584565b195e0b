"""The ingestor's end of the ZeroMQ hop: a PUSH socket bound at ZMQ_ENDPOINT.

Sends never block the event loop: past the high-water mark (1000 messages
queued for a slow or absent engine) a tick is dropped and counted, because a
tick that waits is a stale tick.
"""

from __future__ import annotations

import logging

import zmq

from signals_app.contracts.tick import Tick, encode, encode_feed_state

log = logging.getLogger("ingest_worker.push")

SNDHWM = 1000


class TickPusher:
    def __init__(self, endpoint: str, context: zmq.Context[zmq.Socket[bytes]] | None = None) -> None:
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket[bytes] = self._context.socket(zmq.PUSH)
        self._socket.setsockopt(zmq.SNDHWM, SNDHWM)
        self._socket.setsockopt(zmq.LINGER, 500)  # on close, give queued ticks half a second to leave
        self._socket.bind(endpoint)
        self.sent = 0
        self.dropped = 0  # refused at the high-water mark

    def send_tick(self, tick: Tick) -> bool:
        return self._send(encode(tick))

    def send_feed_state(self, exchange: str, state: str, timestamp_ms: int) -> bool:
        return self._send(encode_feed_state(exchange, state, timestamp_ms))

    def _send(self, data: bytes) -> bool:
        try:
            self._socket.send(data, zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "%d ticks dropped at the high-water mark: no engine connected, or it is not keeping up",
                    self.dropped,
                )
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self._socket.close()
