"""The relay: Redis pub/sub `arbitrage:signals` → every browser of this web process, in process.

One Redis subscription per process, not one per browser. Daphne sends no ASGI
lifespan events, so nothing runs at start-up: the first WebSocket connection
starts the relay (`ensure_relay`) as a task in the process's event loop, and it
then runs for the life of the process, browsers or not.

Each published signal is appended, in the relay's task and without a single
await, to the queue of every browser of this process (`BrowserFeed`, one per
consumer); each consumer drains its own queue into its WebSocket, so every
browser gets the signals in the order they were published (an `open` before its
`update`s and its `close`) and a slow one holds up nobody else. No Redis round
trip per signal beyond the PUBLISH itself (a channels_redis `group_send` cost
four, plus one per browser for its `receive`). A queue holds BROWSER_QUEUE_MAX
signals (`contracts/live_feed.py`): a browser further behind than that loses
its backlog, never in silence: it is sent one MISSED message with the count
(and refills from the history API), its queue restarts from the newest signal,
and the count shows in `stats()` (`/api/health`, under `relay`) with a
rate-limited warning. What is published is forwarded byte for byte; what is not
a signal is counted and dropped.

The consumers still join their process's Channels group (`PROCESS_SIGNALS_GROUP`,
one Redis command at connect) and take `signal.message` events from it into the
same queue: the group stays the contract for anything that must reach this
process's browsers from elsewhere; the relay itself no longer sends through it.
With several web processes on one Redis, each relays every signal to its own
browsers only, so a browser gets each signal once however many processes serve
the site.

When Redis goes away the relay logs it, reconnects with backoff (at most
BACKOFF_MAX_S between attempts, so that it is back before the engine, whose
backoff reaches 5 s, republishes what it held), and never dies. Once back it
re-adds this process's consumers to the group (a Redis that restarted without
persistence has forgotten the group) and relays what `signals:history` holds
newer than the last signal it relayed (published while it was not subscribed),
so that an open WebSocket misses nothing that history still has (a payload
already relayed lately is not relayed twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from signals_app.contracts import signal as signal_contract
from signals_app.contracts.groups import PROCESS_SIGNALS_GROUP
from signals_app.contracts.keys import SIGNALS_CHANNEL, SIGNALS_HISTORY, SIGNALS_HISTORY_KEEP
from signals_app.contracts.live_feed import BROWSER_QUEUE_MAX, missed_message

log = logging.getLogger("signals_app.relay")

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0
IDLE_PING_S = 5.0  # a silent subscription is PINGed; no answer within as long again means it is dead
SUBSCRIBE_TIMEOUT_S = 5.0
RESTORE_TIMEOUT_S = 30.0  # re-adding this process's browsers and catching up from history
# Payloads relayed lately, so that a catch-up from history never sends one twice; history
# itself keeps SIGNALS_HISTORY_KEEP, so no catch-up can reach further back than this.
RECENT_KEEP = 2 * SIGNALS_HISTORY_KEEP
DROP_WARNING_EVERY_S = 10.0
OVERFLOW_WARNING_EVERY_S = 10.0


class BrowserFeed:
    """One browser's signals not yet written to its WebSocket: a bounded queue, drained in order.

    `put` never waits (the relay appends to every browser's queue in one step); the consumer
    awaits `next_frame` and writes what it gets. A full queue is emptied rather than grown: the
    signals it held are counted as missed, and the next frame out is the MISSED message
    (`contracts/live_feed.py`) that says how many, followed by the newer signals.
    """

    def __init__(self, capacity: int = BROWSER_QUEUE_MAX) -> None:
        self.capacity = capacity
        self._queue: deque[tuple[str, int | None]] = deque()  # (signal text, its timestamp)
        self._unreported = 0  # missed signals the browser has not been told of yet
        self._last_timestamp: int | None = None  # of the last signal handed out
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, text: str, timestamp: int | None) -> int:
        """Queue one signal; the number of older ones dropped to make room (0 but on overflow)."""
        dropped = 0
        if len(self._queue) >= self.capacity:
            dropped = len(self._queue)
            self._queue.clear()
            self._unreported += dropped
        self._queue.append((text, timestamp))
        self._ready.set()
        return dropped

    async def next_frame(self) -> str:
        """The next text frame for the browser: a MISSED message after a gap, else the oldest signal."""
        while True:
            if self._unreported:
                # Everything queued now came after the gap: the message goes out before it.
                text = missed_message(self._unreported, self._last_timestamp)
                self._unreported = 0
                return text
            if self._queue:
                text, timestamp = self._queue.popleft()
                if timestamp is not None:
                    self._last_timestamp = timestamp
                return text
            self._ready.clear()
            await self._ready.wait()


def timestamp_of(signal: dict[str, Any]) -> int | None:
    """A signal's `timestamp` when it is an integer (a MISSED message's `since` is one), else None."""
    timestamp = signal.get("timestamp")
    return timestamp if isinstance(timestamp, int) and not isinstance(timestamp, bool) else None


def event_timestamp(text: str) -> int | None:
    """The timestamp of the signal a group event carries (None when it carries no signal)."""
    try:
        return timestamp_of(signal_contract.decode(text.encode()))
    except ValueError:
        return None


class SignalRelay:
    """Relays every signal published on SIGNALS_CHANNEL to this process's browsers, unchanged, in order."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.backoff_first_s = BACKOFF_FIRST_S
        self.backoff_max_s = BACKOFF_MAX_S
        self.subscribed = asyncio.Event()  # set while Redis sends us every PUBLISH and nothing is left to catch up
        self.relayed = 0  # signals handed to this process's browsers, caught-up ones included
        self.caught_up = 0  # of which read back from signals:history after a reconnection
        self.dropped = 0  # messages on the channel that are not a signal
        self.subscriptions = 0  # successful (re)subscriptions
        self.failures = 0  # connections lost or refused
        self.missed = 0  # signals dropped from full browser queues, every browser (gone ones too)
        self.overflows = 0  # times a browser's queue was full
        self._feeds: dict[str, BrowserFeed] = {}  # this process's consumers, by channel name
        self._last_overflow_warning = 0.0
        self._overflows_unlogged = 0
        self._recent: deque[str] = deque()
        self._recent_set: set[str] = set()
        self._last_timestamp: int | None = None  # of the newest signal relayed
        self._last_drop_warning = 0.0
        self._up = False  # subscribed (catch-up may still be running)
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="signals-relay")

    def running_in(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self._task is not None and not self._task.done() and self._task.get_loop() is loop

    async def stop(self) -> None:
        if self._task is None:
            return
        # Cancel until it is done: on Python 3.11 a cancellation that lands while redis-py sends
        # through asyncio.wait_for (any connection with a socket_timeout) can be swallowed.
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=0.1)
        with contextlib.suppress(asyncio.CancelledError):
            self._task.result()

    # --- consumers of this process ----------------------------------------------
    def attach(self, channel_name: str) -> BrowserFeed:
        """A queue for a new consumer: every signal relayed from now on is put in it."""
        feed = self._feeds[channel_name] = BrowserFeed()
        return feed

    def detach(self, channel_name: str) -> None:
        self._feeds.pop(channel_name, None)

    def deliver(self, feed: BrowserFeed, text: str, timestamp: int | None) -> None:
        """Put one signal in one browser's queue, counting (and logging, rate-limited) an overflow."""
        dropped = feed.put(text, timestamp)
        if not dropped:
            return
        self.missed += dropped
        self.overflows += 1
        self._overflows_unlogged += 1
        now = time.monotonic()
        if now - self._last_overflow_warning > OVERFLOW_WARNING_EVERY_S:
            self._last_overflow_warning = now
            log.warning(
                "a browser fell %d signals behind: dropped its backlog and told it (MISSED); "
                "%d overflow(s) since the last warning, %d signal(s) missed in all",
                dropped,
                self._overflows_unlogged,
                self.missed,
            )
            self._overflows_unlogged = 0

    def stats(self) -> dict[str, Any]:
        feeds = list(self._feeds.values())  # /api/health reads this from a worker thread
        return {
            "subscribed": self.subscribed.is_set(),
            "relayed": self.relayed,
            "caught_up": self.caught_up,
            "dropped": self.dropped,
            "subscriptions": self.subscriptions,
            "failures": self.failures,
            "browsers": len(feeds),
            "queued": sum(len(feed) for feed in feeds),
            "queue_max": BROWSER_QUEUE_MAX,
            "missed": self.missed,
            "overflows": self.overflows,
        }

    # --- the loop ---------------------------------------------------------------
    async def run(self) -> None:
        """Subscribe and relay until cancelled; every failure leads to a reconnection, never to an exit."""
        backoff = self.backoff_first_s
        down_since: float | None = None  # when Redis went away; None while it is there
        attempts = 0  # connection attempts since then
        while True:
            attempts += 1
            try:
                await self._session(down_since, attempts)
            except (RedisError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug must not end the live feed of every browser
                log.exception("relay failed; restarting it")
                problem = f"{type(exc).__name__}: {exc}"
            self.failures += 1
            self.subscribed.clear()
            if self._up:
                self._up = False
                down_since, attempts, backoff = time.monotonic(), 0, self.backoff_first_s
                log.warning("lost Redis at %s (%s); reconnecting", self.redis_url, problem)
            elif down_since is None:
                down_since = time.monotonic()
                log.warning("cannot subscribe at %s (%s); retrying", self.redis_url, problem)
            else:
                log.debug("still no Redis at %s (%s), attempt %d", self.redis_url, problem, attempts)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self.backoff_max_s)

    async def _session(self, down_since: float | None, attempts: int) -> None:
        """One connection: subscribe, restore what a Redis restart lost, then relay until it fails."""
        # No retries inside redis-py: a failure comes straight back here, which logs it and
        # reconnects from scratch (a fresh connection, a fresh subscription). No socket_timeout:
        # with one, redis-py sends through asyncio.wait_for, which on Python 3.11 can swallow a
        # cancellation (CPython gh-86296); reads are bounded here instead, each with its own timeout.
        client = aioredis.Redis.from_url(
            self.redis_url, socket_connect_timeout=2, socket_timeout=None, retry=Retry(NoBackoff(), 0)
        )
        pubsub: Any = client.pubsub()  # redis-py leaves PubSub's methods untyped
        try:
            await pubsub.subscribe(SIGNALS_CHANNEL)
            await self._confirmed(pubsub)
            self.subscriptions += 1
            self._up = True
            if down_since is None:
                log.info("subscribed to %s at %s", SIGNALS_CHANNEL, self.redis_url)
            else:
                log.info(
                    "subscribed to %s at %s (Redis back after %.1f s, %d attempts)",
                    SIGNALS_CHANNEL,
                    self.redis_url,
                    time.monotonic() - down_since,
                    attempts,
                )
            if self.subscriptions > 1:
                async with asyncio.timeout(RESTORE_TIMEOUT_S):
                    await self._rejoin_members()
                    await self._catch_up(client)
            self.subscribed.set()
            await self._pump(pubsub)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _confirmed(self, pubsub: Any) -> None:
        """Wait for SUBSCRIBE's answer: from then on Redis sends us every PUBLISH."""
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=deadline - time.monotonic())
            if message is not None and message["type"] == "subscribe":
                return
        raise TimeoutError(f"no answer to SUBSCRIBE within {SUBSCRIBE_TIMEOUT_S} s")

    async def _pump(self, pubsub: Any) -> None:
        ping_sent = False
        while True:
            message = await pubsub.get_message(timeout=IDLE_PING_S)
            if message is None:
                # A connection can die without a FIN (a cable, a NAT): a PING unanswered after
                # another IDLE_PING_S means it is gone.
                if ping_sent:
                    raise TimeoutError(f"no answer to PING within {IDLE_PING_S} s")
                await pubsub.ping()
                ping_sent = True
                continue
            ping_sent = False
            if message["type"] == "message":
                await self.forward(message["data"])

    # --- one signal ---------------------------------------------------------------
    async def forward(self, payload: bytes) -> bool:
        """Hand one published payload to every browser unchanged; False when it is not a signal or a repeat."""
        try:
            text = payload.decode()
            signal = signal_contract.decode(payload)
        except ValueError as exc:  # not UTF-8, not JSON, not a signal: counted, never sent to browsers
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_warning > DROP_WARNING_EVERY_S:
                self._last_drop_warning = now
                log.warning("dropped a message on %s that is not a signal (%s): %.80r", SIGNALS_CHANNEL, exc, payload)
            return False
        if text in self._recent_set:
            return False
        timestamp = timestamp_of(signal)
        for feed in list(self._feeds.values()):
            self.deliver(feed, text, timestamp)
        self.relayed += 1
        self._remember(text)
        if timestamp is not None and (self._last_timestamp is None or timestamp > self._last_timestamp):
            self._last_timestamp = timestamp
        return True

    def _remember(self, text: str) -> None:
        self._recent.append(text)
        self._recent_set.add(text)
        if len(self._recent) > RECENT_KEEP:
            self._recent_set.discard(self._recent.popleft())

    # --- after a reconnection -----------------------------------------------------
    async def _rejoin_members(self) -> None:
        layer = get_channel_layer()
        assert layer is not None, "CHANNEL_LAYERS is not configured"
        members = list(self._feeds)
        for channel_name in members:
            await layer.group_add(PROCESS_SIGNALS_GROUP, channel_name)
        if members:
            log.info("re-added %d browser(s) of this process to group %s", len(members), PROCESS_SIGNALS_GROUP)

    async def _catch_up(self, client: aioredis.Redis) -> None:
        """Relay the signals history holds from the last relayed timestamp on that were not relayed.

        Already subscribed: whatever is published from now on comes live, and a live copy of
        something caught up here is recognised as a repeat and skipped.
        """
        if self._last_timestamp is None:
            return
        missed = 0
        for payload in await client.zrangebyscore(SIGNALS_HISTORY, self._last_timestamp, "+inf"):
            if isinstance(payload, bytes) and await self.forward(payload):
                missed += 1
        self.caught_up += missed
        if missed:
            log.info("relayed %d signal(s) published while unsubscribed, from %s", missed, SIGNALS_HISTORY)


_relay: SignalRelay | None = None


def ensure_relay() -> SignalRelay:
    """This process's relay, started in the running event loop on first use (and restarted if it ended)."""
    global _relay
    loop = asyncio.get_running_loop()
    if _relay is None or not _relay.running_in(loop):
        _relay = SignalRelay(settings.REDIS_URL)
        _relay.start()
    return _relay


def current_relay() -> SignalRelay | None:
    """The relay if one was started (for health reports): None before the first WebSocket."""
    return _relay


async def stop_relay() -> None:
    """Cancel the relay and forget it (tests; daphne has no shutdown hook to call this)."""
    global _relay
    relay, _relay = _relay, None
    if relay is not None:
        await relay.stop()
