"""The engine's Redis side: signals written in the loop turn that raised them, one write per batch.

Each signal goes to the pub/sub channel, the capped history, the durable stream and the
`engine:open` hash (HSET of its JSON while it is open, HDEL on its close: what a restarted
engine finds, DESIGN.md lifecycle rule 8); the latest quote of each market refreshes its
`price:` key at most every QUOTE_FLUSH_S; each signal's depth view is written before it.

How (`engine_worker/resp.py`): one dedicated connection speaking RESP. `publish()`, called
at the end of the engine's batch, encodes what is due and writes it at once, without
awaiting; Redis's replies are read by the event loop as they come and matched to their
write in order. A signal is published when all its replies are in (that instant is the end
of `signal_latency`) and none is an error. An error reply means Redis refused that command
(a key of the wrong type, OOM, a read-only replica): the signal counts as `signals_refused`
with the refused command under `redis_errors`, its other writes stand, and it is not sent
again (a second send would repeat those to every subscriber and to the stream).

When Redis goes away (the connection ends, or its replies are more than STALL_S late, as
with a frozen process) signals are held: the newest `max_pending`, older ones dropped and
counted as `signals_dropped` (their `engine:open` change is still written). Held signals go
out in order once Redis answers again, with backoff between connection attempts. Writes
whose replies never came because the connection ended are written again on the next one
(`signals_republished`: Redis may have applied them, so those few may be seen twice). A
connection whose replies are REPLY_TIMEOUT_S late is given up the same way; a frozen Redis
that wakes up within it answers everything once, in order. After a reconnection the
`engine:open` hash is rewritten from what Redis confirmed, so a Redis that came back empty
holds the open opportunities again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from arbsite.latency import LatencyWindow
from engine_worker.resp import (
    ErrorReply,
    PendingWrite,
    Reply,
    RespCommandError,
    RespConnection,
    bulk,
    open_connection,
    pack,
)
from signals_app.contracts import keys
from signals_app.contracts.depth_view import DEPTH_VIEW_TTL_S, DepthView, depth_view_key, encode_depth_view
from signals_app.contracts.signal import CLOSE, Signal, open_problem
from signals_app.contracts.tick import Tick, encode, is_book_lost, top_of

log = logging.getLogger("engine_worker.publish")

MAX_PENDING_SIGNALS = 10_000
MAX_PENDING_VIEWS = 1000
QUOTE_FLUSH_S = 0.1  # the price: cache is refreshed at most this often
WRITE_MAX_SIGNALS = 1000  # a held backlog goes out in writes of this many, one per loop turn
CONNECT_TIMEOUT_S = 1.0
STALL_S = 1.0  # replies this late: Redis counts as away (signals held, /health 503)
REPLY_TIMEOUT_S = 30.0  # replies this late: the connection is given up and its writes sent again
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0
TICK_S = 0.05  # the publishing task's look at the connection and the quote cache

# The fixed heads of the hot commands (RESP arrays of bulk strings).
_PUBLISH = b"*3\r\n$7\r\nPUBLISH\r\n" + bulk(keys.SIGNALS_CHANNEL.encode())
_ZADD = b"*4\r\n$4\r\nZADD\r\n" + bulk(keys.SIGNALS_HISTORY.encode())
_XADD = (
    b"*8\r\n$4\r\nXADD\r\n"
    + bulk(keys.SIGNALS_STREAM.encode())
    + bulk(b"MAXLEN")
    + bulk(b"~")
    + bulk(str(keys.SIGNALS_STREAM_MAXLEN).encode())
    + bulk(b"*")
    + bulk(keys.SIGNALS_STREAM_FIELD.encode())
)
_HSET_OPEN = b"*4\r\n$4\r\nHSET\r\n" + bulk(keys.ENGINE_OPEN.encode())
_HDEL_OPEN = b"*3\r\n$4\r\nHDEL\r\n" + bulk(keys.ENGINE_OPEN.encode())
_CRLF = b"\r\n"
_TRIM_HISTORY = pack("ZREMRANGEBYRANK", keys.SIGNALS_HISTORY, 0, -keys.SIGNALS_HISTORY_KEEP - 1)
_SIGNAL_COMMANDS = ("PUBLISH", "ZADD", "XADD", "HSET/HDEL")  # the replies of one signal, in order


def _open_change(signal_id: str, data: bytes | None) -> bytes:
    """HSET engine:open <id> <signal JSON> (open/update), or HDEL engine:open <id> (close: data None)."""
    field = bulk(signal_id.encode())
    return _HDEL_OPEN + field if data is None else _HSET_OPEN + field + bulk(data)


class _Write:
    """What one write carried, in the order of its commands, to settle when its replies come."""

    __slots__ = ("fixes", "quotes", "rewrite", "sent_ns", "signals", "views")

    def __init__(self) -> None:
        self.rewrite: dict[str, bytes] | None = None  # DEL engine:open + HSET of these
        self.fixes: dict[str, bytes | None] = {}  # engine:open changes of dropped signals
        self.views: dict[str, bytes] = {}
        self.signals: list[tuple[Signal, bytes]] = []
        self.quotes: list[Tick] = []
        self.sent_ns = 0

    def commands(self) -> tuple[bytes, int]:
        parts: list[bytes] = []
        if self.rewrite is not None:
            parts.append(pack("DEL", keys.ENGINE_OPEN))
            if self.rewrite:
                fields: list[bytes | str] = ["HSET", keys.ENGINE_OPEN]
                for signal_id, data in self.rewrite.items():
                    fields += [signal_id, data]
                parts.append(pack(*fields))
        for signal_id, change in self.fixes.items():
            parts.append(_open_change(signal_id, change))
        for signal_id, view in self.views.items():  # before the signals: a reader told of one finds its view
            parts.append(pack("SET", depth_view_key(signal_id), view, "EX", DEPTH_VIEW_TTL_S))
        for signal, data in self.signals:  # the JSON joined once, never copied per command
            head = b"$%d\r\n" % len(data)
            field = bulk(signal["id"].encode())
            parts += (_PUBLISH, head, data, _CRLF, _ZADD, bulk(b"%d" % signal["timestamp"]), head, data, _CRLF)
            parts += (_XADD, head, data, _CRLF)
            if signal["status"] == CLOSE:
                parts += (_HDEL_OPEN, field)
            else:
                parts += (_HSET_OPEN, field, head, data, _CRLF)
        if self.signals:
            parts.append(_TRIM_HISTORY)
        for tick in self.quotes:
            key = keys.price_key(tick.exchange, tick.symbol)
            if is_book_lost(tick):  # the market's quote went with its book
                parts.append(pack("DEL", key))
            else:
                parts.append(pack("SET", key, encode(top_of(tick)), "EX", keys.PRICE_KEY_TTL_S))
        count = len(self.fixes) + len(self.views) + 4 * len(self.signals) + len(self.quotes)
        if self.signals:
            count += 1  # the history trim
        if self.rewrite is not None:
            count += 2 if self.rewrite else 1
        return b"".join(parts), count


class RedisPublisher:
    """Signals, depth views, the price cache and the engine's state to Redis; see the module docstring."""

    def __init__(
        self,
        url: str,
        on_published: Callable[[list[Signal], int], None] | None = None,
        max_pending: int = MAX_PENDING_SIGNALS,
    ) -> None:
        self.url = url
        self.max_pending = max_pending  # signals held while Redis is away; the oldest go beyond it
        self._on_published = on_published  # (signals, published_ns): for latency metrics and logs
        self._conn: RespConnection | None = None
        self._connecting: asyncio.Future[bool] | None = None
        self._stalled = False  # connected, but its replies are more than STALL_S late
        self._signals: deque[Signal] = deque()  # raised, not yet written
        self._quotes: dict[tuple[str, str], Tick] = {}
        # signal id -> its newest depth view (signals_app/contracts/depth_view.py), sent with the
        # next write; while Redis is away only the newest MAX_PENDING_VIEWS are kept (a view is a
        # picture of the books, and a newer one replaces it: none is owed to anyone).
        self._views: dict[str, bytes] = {}
        # engine:open as Redis confirmed it (id -> the JSON of its last open/update), the base of
        # the rewrite after a reconnection; the changes of dropped signals still to be written.
        self._open_confirmed: dict[str, bytes] = {}
        self._open_fixes: dict[str, bytes | None] = {}
        self._open_known = False  # engine:open read (at start-up, or at the first connection after)
        self._reading_open = False
        self._connections = 0
        self.open_found = 0  # entries of engine:open at start-up
        self.open_invalid = 0  # of which not an open/update signal of their id: deleted
        self._rewrite_open = False
        self._in_flight = 0  # signals written, replies not all in
        self._next_quote_flush = 0.0
        self._drain_scheduled = False
        self.published = 0
        self.batches = 0  # writes Redis answered
        self.failures = 0  # connection attempts that failed, connections lost
        self.outages = 0  # times Redis went away (lost, unreachable or late)
        self.signals_dropped = 0  # pending beyond max_pending while Redis was away: lost
        self.signals_held_total = 0  # signals that had to wait for Redis (once per wait)
        self.signals_refused = 0  # published with at least one command refused by Redis
        self.signals_republished = 0  # written again after their connection ended before the replies
        self.redis_errors: dict[str, int] = {}  # refused commands by name
        self.last_error: str | None = None
        self.write_to_reply = LatencyWindow()  # µs from a write with signals to its last reply read
        self._down_since: float | None = time.monotonic()  # not connected yet
        self._last_failure_log = 0.0
        self._last_refusal_log = 0.0

    # --- state ---------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Redis answers: connected, and no reply more than STALL_S late."""
        return self._conn is not None and not self._stalled

    def pending(self) -> int:
        """Signals raised and not yet confirmed by Redis: held, and written but unanswered."""
        return len(self._signals) + self._in_flight

    def held(self) -> int:
        """Signals waiting now to be written, because Redis is away (or a backlog leaving)."""
        return len(self._signals)

    # --- called by the engine loop (no awaiting) -----------------------------------
    def publish(self, signals: list[Signal]) -> None:
        """The end of an engine batch: its signals (maybe none) and what else is due, written now."""
        if signals:
            self.add_signals(signals)
        elif self._conn is not None and not self._stalled and time.monotonic() >= self._next_quote_flush:
            self._write(include_quotes=True)

    def add_signals(self, signals: list[Signal]) -> None:
        self._signals.extend(signals)
        if self._conn is None or self._stalled:
            self.signals_held_total += len(signals)
            self._bound_signals()
            return
        self._write(include_quotes=time.monotonic() >= self._next_quote_flush)

    def add_quote(self, tick: Tick) -> None:
        """The market's newest quote or book tick for the price cache (a book tick's top is taken
        when the cache is written, at most every QUOTE_FLUSH_S, not for every tick)."""
        self._quotes[(tick.exchange, tick.symbol)] = tick

    def add_depth_view(self, view: DepthView) -> None:
        views = self._views
        views.pop(view["id"], None)
        views[view["id"]] = encode_depth_view(view)
        self._bound_views()

    def _bound_views(self) -> None:
        """The newest MAX_PENDING_VIEWS views only (the dict keeps them oldest first)."""
        views = self._views
        while len(views) > MAX_PENDING_VIEWS:
            del views[next(iter(views))]

    def _bound_signals(self) -> None:
        """The newest max_pending held signals; a dropped one's engine:open change is kept."""
        held = self._signals
        fixes = self._open_fixes
        while len(held) > self.max_pending:
            dropped = held.popleft()
            self.signals_dropped += 1
            fixes[dropped["id"]] = None if dropped["status"] == CLOSE else orjson.dumps(dropped)

    # --- writing -------------------------------------------------------------------
    def _write(self, include_quotes: bool) -> _Write | None:
        """One write of what is held (at most WRITE_MAX_SIGNALS signals), now; None when nothing is due."""
        conn = self._conn
        if conn is None or self._stalled:
            return None
        write = _Write()
        if self._rewrite_open:
            self._rewrite_open = False
            write.rewrite = dict(self._open_confirmed)
        if self._open_fixes:
            write.fixes, self._open_fixes = self._open_fixes, {}
        if self._views:
            write.views, self._views = self._views, {}
        held = self._signals
        if held:
            count = min(len(held), WRITE_MAX_SIGNALS)
            dumps = orjson.dumps
            write.signals = [(signal, dumps(signal)) for signal in (held.popleft() for _ in range(count))]
            self._in_flight += count
            if held and not self._drain_scheduled:  # the rest of a backlog on the next loop turns
                self._drain_scheduled = True
                asyncio.get_running_loop().call_soon(self._drain)
        if include_quotes and self._quotes:
            write.quotes = list(self._quotes.values())
            self._quotes.clear()
            self._next_quote_flush = time.monotonic() + QUOTE_FLUSH_S
        payload, count = write.commands()
        if not count:
            return None
        write.sent_ns = time.perf_counter_ns()
        conn.send(payload, PendingWrite(count, lambda replies: self._settle(write, replies), lambda: self._lost(write)))
        return write

    def _drain(self) -> None:
        self._drain_scheduled = False
        if self._signals:
            self._write(include_quotes=False)

    def _settle(self, write: _Write, replies: list[Reply]) -> None:
        """A write's replies are all in: confirm its signals, count what Redis refused."""
        published_ns = time.time_ns()
        if write.signals:  # the publish path's own share of signal_latency: Redis and the wire
            self.write_to_reply.add((time.perf_counter_ns() - write.sent_ns) / 1000)
        at = 0
        if write.rewrite is not None:
            at += 1 if not write.rewrite else 2
            self._check(replies[:at], "engine:open rewrite", None)
        confirmed_open = self._open_confirmed
        for signal_id, change in write.fixes.items():
            if self._check([replies[at]], "HSET/HDEL", signal_id):
                _apply_open(confirmed_open, signal_id, change)
            at += 1
        for signal_id in write.views:
            self._check([replies[at]], "SET depth view", signal_id)
            at += 1
        published: list[Signal] = []
        for signal, data in write.signals:
            ours = replies[at : at + 4]
            at += 4
            refused = [(name, r) for name, r in zip(_SIGNAL_COMMANDS, ours, strict=True) if isinstance(r, ErrorReply)]
            if not isinstance(ours[3], ErrorReply):
                _apply_open(confirmed_open, signal["id"], None if signal["status"] == CLOSE else data)
            if refused:
                self.signals_refused += 1
                for name, reply in refused:
                    self._refused(name, reply, signal["id"])
            else:
                published.append(signal)
        if write.signals:
            self._check([replies[at]], "ZREMRANGEBYRANK", None)
            at += 1
            self._in_flight -= len(write.signals)
        for tick in write.quotes:
            self._check([replies[at]], "SET/DEL price", f"{tick.exchange}:{tick.symbol}")
            at += 1
        self.batches += 1
        self.published += len(published)
        if published and self._on_published is not None:
            self._on_published(published, published_ns)
        if self._stalled and self._conn is not None:
            oldest = self._conn.oldest_sent_at()
            if oldest is None or time.monotonic() - oldest < STALL_S:
                self._up("redis answering again")
                self._write(include_quotes=True)

    def _check(self, replies: list[Reply], command: str, subject: str | None) -> bool:
        ok = True
        for reply in replies:
            if isinstance(reply, ErrorReply):
                self._refused(command, reply, subject)
                ok = False
        return ok

    def _refused(self, command: str, reply: ErrorReply, subject: str | None) -> None:
        self.redis_errors[command] = self.redis_errors.get(command, 0) + 1
        self.last_error = f"{command}: {reply.message}"
        if time.monotonic() - self._last_refusal_log > 10:
            log.warning(
                "redis refused %s%s: %s (%d refused so far)",
                command,
                f" for {subject}" if subject else "",
                reply.message,
                sum(self.redis_errors.values()),
            )
            self._last_refusal_log = time.monotonic()

    def _lost(self, write: _Write) -> None:
        """A write whose replies will never come: all of it goes back in front of what is held.

        Called newest write first (resp.RespConnection.connection_lost), so the order holds.
        """
        if write.signals:
            self._in_flight -= len(write.signals)
            self._signals.extendleft(signal for signal, _ in reversed(write.signals))
            self.signals_republished += len(write.signals)
            self.signals_held_total += len(write.signals)
        self._open_fixes = {**write.fixes, **self._open_fixes}  # a newer change of the same id wins
        self._views = {**write.views, **self._views}
        self._bound_views()
        for tick in write.quotes:
            self._quotes.setdefault((tick.exchange, tick.symbol), tick)
        if write.rewrite is not None:
            self._rewrite_open = True

    # --- the connection ----------------------------------------------------------------
    async def _connect(self) -> bool:
        """Connect (one attempt, or join the one under way) and send what is held; whether it worked."""
        if self._conn is not None:
            return True
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        self._connecting = asyncio.get_running_loop().create_future()
        ok = False
        try:
            conn = await open_connection(self.url, CONNECT_TIMEOUT_S, on_lost=self._connection_lost)
            if self._reading_open:
                pass  # read_open reads engine:open itself
            elif not self._open_known:  # start-up could not read it: take what it holds as the base
                try:
                    self._open_confirmed = _valid_open(await _read_open(conn))[0]
                except (OSError, TimeoutError, RespCommandError):
                    conn.abort()
                    raise
                self._open_known = True
            elif self._connections:
                self._rewrite_open = True  # Redis may have come back empty: make engine:open whole again
            self._conn = conn
            self._connections += 1
            ok = True
        except (OSError, TimeoutError, RespCommandError) as exc:
            self._unavailable(exc)
        finally:
            self._connecting.set_result(ok)
            self._connecting = None
        if ok:
            self._up("redis back" if self.outages else "redis connected")
            if not self._reading_open:  # (read_open writes once it has read engine:open)
                self._write(include_quotes=True)  # a backlog goes on over the next loop turns, oldest first
        return ok

    def _connection_lost(self, exc: Exception | None) -> None:
        self._conn = None
        self._unavailable(exc or ConnectionError("connection closed"))

    def _unavailable(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.outages += 1
        if time.monotonic() - self._last_failure_log > 10:
            log.warning("redis unavailable (%s): holding %d signals, retrying", self.last_error, self.pending())
            self._last_failure_log = time.monotonic()

    def _up(self, what: str) -> None:
        if self._down_since is not None or self._stalled:
            log.info("%s: %d held signals to publish", what, len(self._signals))
        self._down_since = None
        self._stalled = False
        self._last_failure_log = 0.0

    def _check_replies(self) -> None:
        """Late replies: past STALL_S Redis counts as away, past REPLY_TIMEOUT_S the connection is given up."""
        conn = self._conn
        if conn is None:
            return
        oldest = conn.oldest_sent_at()
        late = 0.0 if oldest is None else time.monotonic() - oldest
        if late > REPLY_TIMEOUT_S:
            log.warning("redis: no reply for %.0f s: reconnecting (its unanswered writes go again)", late)
            conn.abort()  # connection_lost hands every unanswered write back
        elif late > STALL_S and not self._stalled:
            self._stalled = True
            self.outages += 1
            self._down_since = time.monotonic()
            self.last_error = f"no reply for {late:.1f} s"
            log.warning("redis not answering for %.1f s: holding signals", late)

    # --- the publishing task -------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Keep the connection (backoff), the quote cache and late replies in hand until `stop`; then flush."""
        backoff = BACKOFF_START_S
        while not stop.is_set():
            if self._conn is None:
                if not await self._connect():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = BACKOFF_START_S
            self._check_replies()
            if self.connected and (self._signals or self._open_fixes or time.monotonic() >= self._next_quote_flush):
                self._write(include_quotes=time.monotonic() >= self._next_quote_flush)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)
        await self.flush()

    async def flush(self, timeout_s: float = 2.0) -> bool:
        """Send everything held and wait for Redis to answer all of it; False when it did not."""
        if not (self._signals or self._quotes or self._views or self._open_fixes or self._in_flight):
            return True
        if not await self._connect():
            return False
        while self.connected and (self._signals or self._quotes or self._views or self._open_fixes):
            if self._write(include_quotes=True) is None:
                break
        conn = self._conn
        if conn is None or self._stalled:
            return False
        try:  # answered after everything written before it: replies come in order
            await conn.call(pack("PING"), 1, timeout_s)
        except (OSError, TimeoutError):
            return False
        return not self._signals and not self._in_flight

    async def read_open(self, wait_s: float) -> dict[str, Signal] | None:
        """engine:open at start-up (id -> its last open/update signal), retried for `wait_s`; None if unreachable.

        Entries that are not an open or update signal of their own id are deleted and counted
        (`open_invalid`). When Redis cannot be reached, the first connection later takes what
        engine:open holds as its base: the open signals there stay (this engine does not restore
        them, a later restart finds them), the rest goes with the next reconnection's rewrite.
        """
        deadline = time.monotonic() + wait_s
        backoff = BACKOFF_START_S
        self._reading_open = True
        try:
            while True:
                if await self._connect() and self._conn is not None:
                    try:
                        stored = await _read_open(self._conn)
                    except (OSError, TimeoutError, RespCommandError) as exc:
                        self._unavailable(exc)
                    else:
                        valid, signals, invalid = _valid_open(stored)
                        self._open_confirmed = valid
                        self._open_known = True
                        self.open_found = len(stored)
                        self.open_invalid = len(invalid)
                        if invalid and self._conn is not None:
                            log.warning(
                                "%s: %d entries that are no open signal: deleted", keys.ENGINE_OPEN, len(invalid)
                            )
                            hdel = pack("HDEL", keys.ENGINE_OPEN, *invalid)
                            self._conn.send(hdel, PendingWrite(1, _ignore, _nothing))
                        self._write(include_quotes=True)  # what was raised before, if anything
                        return signals
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                await asyncio.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, 1.0)
        finally:
            self._reading_open = False

    async def set_engine_state(self, heartbeat: bytes, markets: bytes | None = None) -> None:
        """The heartbeat and (when given) the spread matrix, in one write; skipped while Redis is away."""
        if self._conn is None and self._connections and self._down_since is not None:
            return  # away: the publishing task reconnects (with backoff) and reports it
        if not await self._connect() or self._conn is None or self._stalled:
            return
        commands = [pack("SET", keys.ENGINE_HEARTBEAT, heartbeat, "EX", keys.ENGINE_HEARTBEAT_TTL_S)]
        if markets is not None:
            commands.append(pack("SET", keys.ENGINE_MARKETS, markets, "EX", keys.ENGINE_MARKETS_TTL_S))
        try:
            replies = await self._conn.call(b"".join(commands), len(commands), 2.0)
        except (OSError, TimeoutError):
            return
        self._check(replies, "SET engine state", None)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.on_lost = None
            conn.close()


def _ignore(_replies: list[Reply]) -> None:
    pass


def _nothing() -> None:
    pass


def _apply_open(open_now: dict[str, bytes], signal_id: str, data: bytes | None) -> None:
    if data is None:
        open_now.pop(signal_id, None)
    else:
        open_now[signal_id] = data


async def _read_open(conn: RespConnection) -> dict[str, bytes]:
    (reply,) = await conn.call(pack("HGETALL", keys.ENGINE_OPEN), 1, 2.0)
    if isinstance(reply, ErrorReply):
        raise RespCommandError(f"HGETALL {keys.ENGINE_OPEN}: {reply.message}")
    if not isinstance(reply, list):
        return {}
    fields = [item if isinstance(item, bytes) else b"" for item in reply]
    return {fields[i].decode(errors="replace"): fields[i + 1] for i in range(0, len(fields) - 1, 2)}


def _valid_open(stored: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, Signal], list[str]]:
    """(entries that are a whole open/update signal of their own id, those decoded, the ids of the rest).

    Whole as `Engine.restore_open` takes them (`signal.open_problem`): what it would skip is deleted.
    """
    valid: dict[str, bytes] = {}
    signals: dict[str, Signal] = {}
    invalid: list[str] = []
    for signal_id, data in stored.items():
        try:
            decoded: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            decoded = None
        if open_problem(decoded) is None and decoded["id"] == signal_id:
            valid[signal_id] = data
            signals[signal_id] = decoded
        else:
            invalid.append(signal_id)
    return valid, signals, invalid
