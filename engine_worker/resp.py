"""Redis's wire protocol (RESP2) on one asyncio connection: commands written as bytes, replies matched in order.

The engine's publisher needs one thing from Redis: write a batch of commands in one
`transport.write` from the engine loop, without awaiting, and learn later, command by
command, what Redis answered. redis-py's pipeline costs 4-8x the wire for that (see
`bench/publish.py`), so this module is the lowest layer instead:

- `pack` and `bulk`: commands as RESP bytes (sans I/O);
- `RespParser`: bytes in, replies out (sans I/O), an error reply an `ErrorReply` value;
- `RespConnection`: an `asyncio.Protocol` that writes what it is given and hands each
  write's replies, once all have come, to that write's `done` callback, in write order
  (Redis answers a connection's commands in order). Replies are parsed in `data_received`,
  a plain callback of the event loop: reading them never holds up the engine's receive loop.
  When the connection ends, every write still waiting for its replies is handed back,
  newest first, through its `lost` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("engine_worker.resp")


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error reply (`-WRONGTYPE Operation against a key ...`): Redis refused that command."""

    message: str

    @property
    def code(self) -> str:
        """Its first word: WRONGTYPE, OOM, READONLY, ERR ..."""
        return self.message.split(" ", 1)[0]


Reply = bytes | int | None | ErrorReply | list["Reply"]


class RespProtocolError(ValueError):
    """Bytes from the server that are not RESP2: the connection cannot be trusted any more."""


class RespCommandError(Exception):
    """An error reply where the caller cannot go on (a refused AUTH or SELECT)."""


def bulk(value: bytes) -> bytes:
    """One bulk string argument: `$<length>\\r\\n<bytes>\\r\\n`."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


def pack(*args: bytes | str | int | float) -> bytes:
    """One command as RESP: an array of bulk strings (numbers in their decimal form)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            parts.append(bulk(arg))
        elif isinstance(arg, str):
            parts.append(bulk(arg.encode()))
        else:
            parts.append(bulk(repr(arg).encode()))
    return b"".join(parts)


class RespParser:
    """Incremental RESP2 reply parser: `feed` the bytes as they come, get the complete replies."""

    __slots__ = ("_buffer", "_pos")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> list[Reply]:
        buffer = self._buffer
        buffer += data
        replies: list[Reply] = []
        pos = self._pos
        end = len(buffer)
        while pos < end:
            parsed = _parse(buffer, pos)
            if parsed is None:
                break
            replies.append(parsed[0])
            pos = parsed[1]
        if pos == end:
            buffer.clear()
            pos = 0
        elif pos > 65536:  # keep a long partial reply from growing the buffer's dead head
            del buffer[:pos]
            pos = 0
        self._pos = pos
        return replies


def _parse(buffer: bytearray, pos: int) -> tuple[Reply, int] | None:
    """The reply at `pos` and the position after it; None when it is not all there yet."""
    line_end = buffer.find(b"\r\n", pos)
    if line_end < 0:
        return None
    kind = buffer[pos]
    try:
        if kind == 58:  # ':' integer
            return int(buffer[pos + 1 : line_end]), line_end + 2
        if kind == 43:  # '+' simple string
            return bytes(buffer[pos + 1 : line_end]), line_end + 2
        if kind == 36:  # '$' bulk string
            length = int(buffer[pos + 1 : line_end])
            if length < 0:
                return None, line_end + 2  # the null bulk string
            start = line_end + 2
            if len(buffer) < start + length + 2:
                return None
            return bytes(buffer[start : start + length]), start + length + 2
        if kind == 45:  # '-' error
            return ErrorReply(buffer[pos + 1 : line_end].decode(errors="replace")), line_end + 2
        if kind == 42:  # '*' array
            count = int(buffer[pos + 1 : line_end])
            if count < 0:
                return None, line_end + 2  # the null array
            items: list[Reply] = []
            at = line_end + 2
            for _ in range(count):
                parsed = _parse(buffer, at) if at < len(buffer) else None
                if parsed is None:
                    return None
                items.append(parsed[0])
                at = parsed[1]
            return items, at
    except ValueError:
        raise RespProtocolError(f"not a RESP length: {bytes(buffer[pos:line_end])[:40]!r}") from None
    raise RespProtocolError(f"not a RESP reply type: {bytes(buffer[pos : pos + 1])!r}")


class PendingWrite:
    """One write waiting for its replies: `done(replies)` once all `count` came, `lost()` if they never will."""

    __slots__ = ("count", "done", "lost", "replies", "sent_at")

    def __init__(self, count: int, done: Callable[[list[Reply]], None], lost: Callable[[], None]) -> None:
        self.count = count
        self.done = done
        self.lost = lost
        self.replies: list[Reply] = []
        self.sent_at = time.monotonic()


class RespConnection(asyncio.Protocol):
    """One connection to Redis; writes never wait, replies settle their writes in order."""

    def __init__(self, on_lost: Callable[[Exception | None], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.on_lost = on_lost
        self.is_lost = False
        self._parser = RespParser()
        self._pending: deque[PendingWrite] = deque()
        self._made = asyncio.get_running_loop().create_future()

    # --- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport subclasses, but they are transports.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # a dead peer is found by keepalive, a frozen one is not
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._made.done():
            self._made.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except RespProtocolError as exc:
            log.error("redis: %s: closing the connection", exc)
            self.abort()
            return
        pending = self._pending
        for reply in replies:
            if not pending:
                log.error("redis: a reply nothing was waiting for: closing the connection")
                self.abort()
                return
            head = pending[0]
            head.replies.append(reply)
            if len(head.replies) == head.count:
                pending.popleft()
                head.done(head.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_lost = True
        unsettled = list(self._pending)
        self._pending.clear()
        if not self._made.done():
            self._made.set_exception(exc or ConnectionError("closed before it was made"))
        for write in reversed(unsettled):  # newest first: each puts its own back in front of the rest
            write.lost()
        if self.on_lost is not None:
            self.on_lost(exc)

    # --- writing -------------------------------------------------------------------------
    def send(self, payload: bytes, pending: PendingWrite) -> None:
        """Write `payload` (`pending.count` commands) now; its replies go to `pending.done`."""
        if self.transport is None or self.is_lost:
            raise ConnectionError("not connected")
        self._pending.append(pending)
        self.transport.write(payload)

    async def call(self, payload: bytes, count: int, timeout_s: float) -> list[Reply]:
        """Write `payload` and await its `count` replies (TimeoutError, ConnectionError)."""
        future: asyncio.Future[list[Reply]] = asyncio.get_running_loop().create_future()

        def done(replies: list[Reply]) -> None:
            if not future.done():
                future.set_result(replies)

        def lost() -> None:
            if not future.done():
                future.set_exception(ConnectionError("connection lost before the reply"))

        self.send(payload, PendingWrite(count, done, lost))
        return await asyncio.wait_for(asyncio.shield(future), timeout_s)

    def oldest_sent_at(self) -> float | None:
        """When the oldest write still waiting for replies was sent (monotonic s); None when none waits."""
        return self._pending[0].sent_at if self._pending else None

    def waiting(self) -> int:
        return len(self._pending)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_connection(
    url: str, timeout_s: float, on_lost: Callable[[Exception | None], None] | None = None
) -> RespConnection:
    """A connection to the Redis at `url` (redis://, rediss://, unix://), authenticated and on its database.

    OSError/TimeoutError when it cannot be reached, RespCommandError when it refuses AUTH or SELECT.
    """
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    connection = RespConnection(on_lost)
    query = parse_qs(parts.query)
    db_text = query.get("db", [""])[0] or parts.path.lstrip("/")
    if parts.scheme in ("redis", "rediss"):
        context = ssl.create_default_context() if parts.scheme == "rediss" else None
        connecting = loop.create_connection(
            lambda: connection, parts.hostname or "127.0.0.1", parts.port or 6379, ssl=context
        )
    elif parts.scheme == "unix":
        connecting = loop.create_unix_connection(lambda: connection, parts.path)
        db_text = query.get("db", [""])[0]
    else:
        raise RespCommandError(f"REDIS_URL scheme {parts.scheme!r}: the engine speaks redis://, rediss://, unix://")
    transport, _ = await asyncio.wait_for(connecting, timeout_s)
    try:
        handshake: list[bytes] = []
        if parts.password is not None:
            password = unquote(parts.password)
            user = unquote(parts.username) if parts.username else None
            handshake.append(pack("AUTH", user, password) if user else pack("AUTH", password))
        if db_text and db_text != "0":
            handshake.append(pack("SELECT", int(db_text)))
        if handshake:
            replies = await connection.call(b"".join(handshake), len(handshake), timeout_s)
            refused = [reply for reply in replies if isinstance(reply, ErrorReply)]
            if refused:
                raise RespCommandError(f"redis refused the connection's set-up: {refused[0].message}")
    except BaseException:
        transport.abort()
        raise
    return connection
