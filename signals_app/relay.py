"""The relay: Redis pub/sub `arbitrage:signals` → this web process's Channels group, once per process.

One Redis subscription per process, not one per browser. Daphne sends no ASGI
lifespan events, so nothing runs at start-up: the first WebSocket connection
starts the relay (`ensure_relay`) as a task in the process's event loop, and it
then runs for the life of the process, browsers or not.

Each published signal becomes one `group_send`, awaited in turn so that the
browsers get the signals in the order they were published (an `open` before its
`update`s and its `close`). With channels_redis's RedisChannelLayer a
`group_send` costs four Redis round trips whatever the number of browsers in the
group (their messages for one process share one Redis key); `bench/web_latency.py`
measures about 1 ms (p50) from PUBLISH to the browser at 200 signals/s, and one
web process keeps up with about 1000 signals/s (at 2000 it falls behind, losing
nothing). What is published is forwarded byte for byte; what is not a signal is
counted and dropped.

The group is this process's own (`PROCESS_SIGNALS_GROUP`): with several web
processes on one Redis, each relays every signal to its own browsers only, so a
browser gets each signal once however many processes serve the site.

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
from signals_app.contracts.groups import PROCESS_SIGNALS_GROUP, SIGNAL_EVENT
from signals_app.contracts.keys import SIGNALS_CHANNEL, SIGNALS_HISTORY, SIGNALS_HISTORY_KEEP

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


class SignalRelay:
    """Relays every signal published on SIGNALS_CHANNEL to PROCESS_SIGNALS_GROUP, unchanged, in order."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.backoff_first_s = BACKOFF_FIRST_S
        self.backoff_max_s = BACKOFF_MAX_S
        self.subscribed = asyncio.Event()  # set while Redis sends us every PUBLISH and nothing is left to catch up
        self.relayed = 0  # signals handed to the group, caught-up ones included
        self.caught_up = 0  # of which read back from signals:history after a reconnection
        self.dropped = 0  # messages on the channel that are not a signal
        self.subscriptions = 0  # successful (re)subscriptions
        self.failures = 0  # connections lost or refused
        self._members: set[str] = set()  # this process's consumers' channel names
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
    def add_member(self, channel_name: str) -> None:
        self._members.add(channel_name)

    def discard_member(self, channel_name: str) -> None:
        self._members.discard(channel_name)

    def stats(self) -> dict[str, Any]:
        return {
            "subscribed": self.subscribed.is_set(),
            "relayed": self.relayed,
            "caught_up": self.caught_up,
            "dropped": self.dropped,
            "subscriptions": self.subscriptions,
            "failures": self.failures,
            "browsers": len(self._members),
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
        """Hand one published payload to the group unchanged; False when it is not a signal or a repeat."""
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
        layer = get_channel_layer()
        assert layer is not None, "CHANNEL_LAYERS is not configured"
        await layer.group_send(PROCESS_SIGNALS_GROUP, {"type": SIGNAL_EVENT, "data": text})
        self.relayed += 1
        self._remember(text)
        timestamp = signal.get("timestamp")
        if isinstance(timestamp, int) and (self._last_timestamp is None or timestamp > self._last_timestamp):
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
        for channel_name in list(self._members):
            await layer.group_add(PROCESS_SIGNALS_GROUP, channel_name)
        if self._members:
            log.info("re-added %d browser(s) of this process to group %s", len(self._members), PROCESS_SIGNALS_GROUP)

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
