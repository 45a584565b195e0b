"""What every simulated venue shares: their connections, batched sends, silence and drop.

Sending is the hot path at 20k frames/s. A frame is built once per market
update, not once per connection; frames are queued per connection in an
`Outbox` during one step of the event loop and written with one
`transport.writelines` per connection per step, so that a batch of frames
costs one system call per connection instead of one per frame (uvloop gathers
them into a single `writev`). There is no backpressure, as on a real exchange:
a client that cannot keep up is cut off once its unsent data passes
`SLOW_CLIENT_BYTES`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

if TYPE_CHECKING:
    from ingest_worker.sim.model import Quote

log = logging.getLogger("ingest_worker.sim")

SLOW_CLIENT_BYTES = 32 * 1024 * 1024  # unsent data beyond which a client is dropped as too slow
FOREVER = float("inf")


class Outbox:
    """Frames queued per connection during one step, written at `flush`."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[ServerConnection, list[bytes]] = {}

    def add(self, connections: Iterable[ServerConnection], frame: bytes) -> None:
        pending = self._pending
        for connection in connections:
            queued = pending.get(connection)
            if queued is None:
                pending[connection] = [frame]
            else:
                queued.append(frame)

    def add_one(self, connection: ServerConnection, frame: bytes) -> None:
        queued = self._pending.get(connection)
        if queued is None:
            self._pending[connection] = [frame]
        else:
            queued.append(frame)

    def __bool__(self) -> bool:
        return bool(self._pending)

    def flush(self, venue: str) -> int:
        """Write every queued frame; the number of frames written."""
        pending, self._pending = self._pending, {}
        written = 0
        for connection, frames in pending.items():
            written += write_text_frames(connection, frames, venue)
        return written


def write_text_frames(connection: ServerConnection, frames: list[bytes], venue: str) -> int:
    """Queue `frames` (UTF-8 JSON) as text frames on `connection` and write them in one call."""
    protocol = connection.protocol
    if protocol.state is not State.OPEN:
        return 0  # closing or closed: what a real server would do too, drop the data
    try:
        for frame in frames:
            protocol.send_text(frame)
        chunks = protocol.data_to_send()
        if all(chunks):
            connection.transport.writelines(chunks)
        else:  # an end-of-stream marker (never after send_text, but handled as websockets' send_data does)
            for chunk in chunks:
                if chunk:
                    connection.transport.write(chunk)
                elif connection.transport.can_write_eof():
                    connection.transport.write_eof()
                else:
                    connection.transport.close()
    except Exception as exc:  # noqa: BLE001 - one broken client must not stop the feed for the others
        log.debug("%s: write to %s failed: %s", venue, peer_name(connection), exc)
        return 0
    if connection.transport.get_write_buffer_size() > SLOW_CLIENT_BYTES:
        log.warning(
            "%s: client %s is too slow (over %d bytes unsent): dropped", venue, peer_name(connection), SLOW_CLIENT_BYTES
        )
        connection.transport.abort()
    return len(frames)


def peer_name(connection: ServerConnection) -> str:
    try:
        host, port = connection.remote_address[:2]
    except (TypeError, ValueError, OSError):
        return "?"
    return f"{host}:{port}"


def json_text(value: object) -> str:
    return orjson.dumps(value).decode()


class IsoTime:
    """`2024-01-19T12:00:01.234567Z` from Unix ns, as Coinbase writes `time`; the date part cached per second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, time_ns: int) -> str:
        micros = time_ns // 1000
        second, fraction = divmod(micros, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{fraction:06d}Z"


_State = TypeVar("_State")  # a dialect's per-market book state


class VenueServer:
    """One simulated venue: its WebSocket connections, its HTTP (REST) answers, silence and drop.

    Subclasses (the dialects) implement the WebSocket handler, the REST paths and
    what a market update becomes on their wire.
    """

    name: ClassVar[str]
    # Bad frames `fault` can send (a venue whose client keeps no book has none).
    FAULT_KINDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.connections: set[ServerConnection] = set()
        self.subscribed: set[ServerConnection] = set()  # connections subscribed to anything
        self.any_subscribed = asyncio.Event()  # set while at least one client is subscribed
        self.silent_until_ns: float = 0.0  # 0: talking; FOREVER: until resumed
        self.frames_sent = 0
        self.connections_total = 0
        self.outbox = Outbox()
        self._closing_tasks: set[asyncio.Task[None]] = set()

    # --- silence and drop ------------------------------------------------------------
    def silent(self, now_ns: int) -> bool:
        """Whether market data is held back now; a silence that has run out ends here (and is logged)."""
        until = self.silent_until_ns
        if not until:
            return False
        if now_ns < until:
            return True
        self.silent_until_ns = 0.0
        log.info("%s: silence over, market data flows again", self.name)
        return False

    def silence(self, seconds: float | None, now_ns: int) -> None:
        """Stop sending market data for `seconds` (None: until `resume`); connections and pings stay."""
        self.silent_until_ns = FOREVER if seconds is None else now_ns + seconds * 1e9
        span = "until resumed" if seconds is None else f"for {seconds:g} s"
        log.info("%s: silent %s (connections stay open, pings continue)", self.name, span)

    def resume(self) -> bool:
        """End a silence now; whether there was one."""
        was_silent = bool(self.silent_until_ns)
        self.silent_until_ns = 0.0
        if was_silent:
            log.info("%s: resumed, market data flows again", self.name)
        return was_silent

    def drop(self, abort: bool = False) -> int:
        """Close every connection now: a close frame 1001 (going away), or `abort` the TCP connection."""
        connections = list(self.connections)
        for connection in connections:
            if abort:
                connection.transport.abort()
            else:
                task = asyncio.get_running_loop().create_task(connection.close(1001, "going away"))
                self._closing_tasks.add(task)
                task.add_done_callback(self._closing_tasks.discard)
        how = "aborted" if abort else "closed (1001 going away)"
        log.info("%s: dropped %d connection(s), %s", self.name, len(connections), how)
        return len(connections)

    # --- bookkeeping -----------------------------------------------------------------
    def connected(self, connection: ServerConnection) -> None:
        self.connections.add(connection)
        self.connections_total += 1
        log.info("%s: client %s connected to %s", self.name, peer_name(connection), _path(connection))

    def set_subscribed(self, connection: ServerConnection, subscribed: bool) -> None:
        if subscribed:
            self.subscribed.add(connection)
        else:
            self.subscribed.discard(connection)
        if self.subscribed:
            self.any_subscribed.set()
        else:
            self.any_subscribed.clear()

    def disconnected(self, connection: ServerConnection) -> None:
        self.connections.discard(connection)
        self.set_subscribed(connection, False)
        code = connection.close_code
        log.info("%s: client %s disconnected (close code %s)", self.name, peer_name(connection), code)

    def flush(self) -> None:
        if self.outbox:
            self.frames_sent += self.outbox.flush(self.name)

    def max_unsent_bytes(self) -> int:
        sizes = [c.transport.get_write_buffer_size() for c in self.connections if not c.transport.is_closing()]
        return max(sizes, default=0)

    def send_raw(self, raw: str) -> None:
        """A recorded frame, unchanged, to every subscribed connection (replay)."""
        if self.subscribed:
            self.outbox.add(self.subscribed, raw.encode())

    def status(self, now_ns: int) -> dict[str, Any]:
        until = self.silent_until_ns
        if not until or (until != FOREVER and now_ns >= until):
            silence: object = None
        elif until == FOREVER:
            silence = "until resumed"
        else:
            silence = round((until - now_ns) / 1e9, 3)
        return {
            "connections": len(self.connections),
            "subscribed_connections": len(self.subscribed),
            "connections_total": self.connections_total,
            "frames_sent": self.frames_sent,
            "silent_for_s": silence,
        }

    def fault(self, market: str, kind: str) -> dict[str, Any]:
        """Send the clients of `market` one bad frame of `kind` (FAULT_KINDS); ValueError when there is none to send."""
        raise ValueError(f"the {self.name} simulator has no faults to inject (its clients keep no order book)")

    def fault_target(self, books: Mapping[str, _State], market: str, kind: str) -> _State:
        """The book state of `market` (in `books`, by native name) for a fault of `kind`; ValueError
        saying what is wrong when the market or the kind is unknown."""
        state = books.get(market)
        if state is None:
            raise ValueError(f"{self.name} lists no {market!r}; markets: {', '.join(books)}")
        if kind not in self.FAULT_KINDS:
            raise ValueError(f"kind must be one of: {', '.join(self.FAULT_KINDS)}")
        return state

    def send_fault(self, market: str, kind: str, listeners: set[ServerConnection], frame: str) -> dict[str, Any]:
        """Send a fault's `frame` to `listeners` now: what `fault` answers (the /sim/fault body)."""
        self.outbox.add(listeners, frame.encode())
        self.flush()
        log.info("%s: fault %s sent to %d client(s) of %s", self.name, kind, len(listeners), market)
        return {"venue": self.name, "market": market, "kind": kind, "clients": len(listeners), "frame": frame}

    # --- implemented by the dialects ---------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Queue the frames of these market updates for their subscribers (`flush` sends them)."""
        raise NotImplementedError

    def due(self, now_ns: int, silent: bool) -> None:
        """After each model step's `publish`: what the venue sends on its own clock (books pushed
        every 100 ms, batched updates), queued for `flush`."""

    def heartbeat(self, now_ns: int, silent: bool) -> None:
        """Once a second: the venue's own heartbeats, if it sends any."""

    def replaying(self, raws: Sequence[str]) -> None:
        """Before a replay starts, the recorded frames it will send here: a dialect whose own
        answers must agree with them (Bitfinex's channel ids) takes note."""

    def accepts_path(self, path: str) -> bool:
        raise NotImplementedError

    def rest(self, path: str, query: dict[str, list[str]], now_ns: int) -> tuple[int, object] | None:
        """(HTTP status, JSON body) for a REST path of the venue, or None when it is not one."""
        raise NotImplementedError

    async def handle(self, connection: ServerConnection) -> None:
        raise NotImplementedError


class BookSubscribers:
    """Who gets each market's incremental book: the connections that have its snapshot (`live`,
    they get the updates) and those waiting for one (no quote yet when they subscribed, or they
    missed updates in a silence), which get the snapshot with the next update."""

    __slots__ = ("awaiting", "live")

    def __init__(self) -> None:
        self.live: dict[str, set[ServerConnection]] = {}
        self.awaiting: dict[str, set[ServerConnection]] = {}

    def join(self, market: str, connection: ServerConnection, has_snapshot: bool) -> None:
        """A subscription: `has_snapshot` when its snapshot was just sent (otherwise it waits for one)."""
        (self.live if has_snapshot else self.awaiting).setdefault(market, set()).add(connection)

    def leave(self, market: str, connection: ServerConnection) -> None:
        for index in (self.live, self.awaiting):
            listeners = index.get(market)
            if listeners is not None:
                listeners.discard(connection)
                if not listeners:
                    del index[market]

    def publish(
        self, outbox: Outbox, market: str, silent: bool, update: str | None, snapshot: Callable[[], str]
    ) -> None:
        """Queue a market's book `update` for its live subscribers and the `snapshot` for the waiting
        ones, who then get the updates; in a silence the live ones miss it and wait for a snapshot."""
        if silent:
            missed = self.live.pop(market, None)
            if missed:
                self.awaiting.setdefault(market, set()).update(missed)
            return
        waiting = self.awaiting.pop(market, None)
        if waiting:
            outbox.add(waiting, snapshot().encode())
        listeners = self.live.get(market)
        if listeners and update is not None:
            outbox.add(listeners, update.encode())
        if waiting:
            self.live.setdefault(market, set()).update(waiting)


def _path(connection: ServerConnection) -> str:
    request = connection.request
    return request.path if request is not None else "?"
