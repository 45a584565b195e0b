"""The engine's Redis side: signals and quotes written in pipelined batches, one round trip each.

Signals go to the pub/sub channel, the capped history and the durable stream;
the latest quote of each market refreshes its `price:` key. When Redis goes
away the publisher keeps what it holds (the newest 10,000 signals, the latest
quote per market), retries with backoff, and sends it all when Redis returns;
the engine keeps computing meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from signals_app.contracts import keys
from signals_app.contracts.depth_view import DEPTH_VIEW_TTL_S, DepthView, depth_view_key, encode_depth_view
from signals_app.contracts.signal import Signal
from signals_app.contracts.tick import Tick, encode, is_book_lost

log = logging.getLogger("engine_worker.publish")

MAX_PENDING_SIGNALS = 10_000
MAX_PENDING_VIEWS = 1000
QUOTE_FLUSH_S = 0.1  # the price: cache is refreshed at most this often


class RedisPublisher:
    def __init__(
        self,
        url: str,
        on_published: Callable[[list[Signal], int], None] | None = None,
        max_pending: int = MAX_PENDING_SIGNALS,
    ) -> None:
        self.url = url
        self.max_pending = max_pending  # signals held while Redis is away; the oldest go beyond it
        self.client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        self._signals: deque[Signal] = deque()
        self._quotes: dict[tuple[str, str], Tick] = {}
        # signal id -> its newest depth view (signals_app/contracts/depth_view.py), sent with the
        # next flush; while Redis is away only the newest MAX_PENDING_VIEWS are kept (a view is a
        # picture of the books, and a newer one replaces it: none is owed to anyone).
        self._views: dict[str, bytes] = {}
        self._wake = asyncio.Event()
        self._on_published = on_published  # (signals, published_ns): for latency metrics
        self.published = 0
        self.batches = 0
        self.failures = 0
        self.signals_dropped = 0  # pending beyond max_pending while Redis was away: lost
        self.connected = True
        self._last_failure_log = 0.0

    # --- called by the engine loop (no awaiting) -----------------------------------
    def add_signals(self, signals: list[Signal]) -> None:
        self._signals.extend(signals)
        overflow = len(self._signals) - self.max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._signals.popleft()
            self.signals_dropped += overflow
        self._wake.set()

    def add_quote(self, tick: Tick) -> None:
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

    def pending(self) -> int:
        return len(self._signals)

    # --- the publishing task ----------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop`, then one last flush.

        Signals leave as soon as they are raised; the quote cache is refreshed at most
        every QUOTE_FLUSH_S, in its own round trip when no signal is pending: a dashboard
        needs no more, and one Redis round trip per tick batch would cost the signals
        their latency at 20k ticks/s.
        """
        backoff = 0.1
        next_quote_flush = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if not self._signals and not (self._quotes and now >= next_quote_flush):
                # Nothing due: sleep until a signal comes, or the quotes are due.
                timeout = max(next_quote_flush - now, 0.0) if self._quotes else QUOTE_FLUSH_S
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            quotes_due = now >= next_quote_flush
            if await self.flush(include_quotes=quotes_due):
                backoff = 0.1
                if quotes_due:
                    next_quote_flush = time.monotonic() + QUOTE_FLUSH_S
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
        await self.flush()

    async def flush(self, include_quotes: bool = True) -> bool:
        """Send what is pending in one pipeline; False (and everything kept) when Redis fails.

        Signals never wait for the quote cache: a flush for them leaves quotes that are not
        yet due for the next one.
        """
        signals = list(self._signals)
        self._signals.clear()
        quotes: list[Tick] = []
        if include_quotes:
            quotes = list(self._quotes.values())
            self._quotes.clear()
        views = self._views
        self._views = {}
        if not signals and not quotes and not views:
            return True
        pipe = self.client.pipeline(transaction=False)
        for signal_id, view in views.items():  # before the signals: a reader told of one finds its view
            pipe.set(depth_view_key(signal_id), view, ex=DEPTH_VIEW_TTL_S)
        for signal in signals:
            data = orjson.dumps(signal)
            pipe.publish(keys.SIGNALS_CHANNEL, data)
            pipe.zadd(keys.SIGNALS_HISTORY, {data: signal["timestamp"]})
            pipe.xadd(
                keys.SIGNALS_STREAM,
                {keys.SIGNALS_STREAM_FIELD: data},
                maxlen=keys.SIGNALS_STREAM_MAXLEN,
                approximate=True,
            )
        if signals:
            pipe.zremrangebyrank(keys.SIGNALS_HISTORY, 0, -keys.SIGNALS_HISTORY_KEEP - 1)
        for tick in quotes:
            if is_book_lost(tick):  # the market's quote went with its book
                pipe.delete(keys.price_key(tick.exchange, tick.symbol))
            else:
                pipe.set(keys.price_key(tick.exchange, tick.symbol), encode(tick), ex=keys.PRICE_KEY_TTL_S)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self._keep(signals, quotes)
            self._views = {**views, **self._views}  # a newer view of the same signal wins
            self._bound_views()
            self.failures += 1
            if self.connected or time.monotonic() - self._last_failure_log > 10:
                log.warning("redis unavailable (%s): holding %d signals, retrying", exc, len(self._signals))
                self._last_failure_log = time.monotonic()
            self.connected = False
            return False
        published_ns = time.time_ns()
        if not self.connected:
            log.info("redis back: published %d held signals", len(signals))
            self.connected = True
        self.published += len(signals)
        self.batches += 1
        if signals and self._on_published is not None:
            self._on_published(signals, published_ns)
        return True

    def _keep(self, signals: list[Signal], quotes: list[Tick]) -> None:
        """Put a failed batch back in front of anything that arrived meanwhile."""
        self._signals.extendleft(reversed(signals))
        for tick in quotes:
            self._quotes.setdefault((tick.exchange, tick.symbol), tick)
        overflow = len(self._signals) - self.max_pending
        for _ in range(max(overflow, 0)):
            self._signals.popleft()
        self.signals_dropped += max(overflow, 0)

    async def set_engine_state(self, heartbeat: bytes, markets: bytes | None = None) -> None:
        """The heartbeat and (when given) the spread matrix, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(keys.ENGINE_HEARTBEAT, heartbeat, ex=keys.ENGINE_HEARTBEAT_TTL_S)
        if markets is not None:
            pipe.set(keys.ENGINE_MARKETS, markets, ex=keys.ENGINE_MARKETS_TTL_S)
        # Failures are the publishing loop's to report.
        with contextlib.suppress(RedisError, OSError):
            await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()
