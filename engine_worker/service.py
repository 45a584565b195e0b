"""The engine process: ZeroMQ PULL -> Engine.on_tick -> Redis, with timers, /health and /metrics.

`run_engine` builds an `EngineService` from settings and awaits `run()`. At start-up,
before pulling ticks, it reads the open opportunities a previous engine left in
`engine:open` and hands them to the engine. The receive loop drains what is waiting,
up to DRAIN_MAX messages or BATCH_BUDGET_S of work a wake-up (a message holds the ticks
of one frame: `signals_app.contracts.tick.decode_message` decodes it once and checks
each tick), steps the pure engine for each tick, and hands a message's signals to the
publisher as soon as it caused them, which writes them to Redis at once (engine_worker/
publish.py); the quote cache goes at the batch's end when due. Nothing on the loop runs
long: the heartbeat's spread matrix is computed an asset at a time, and `arbsite.stalls`
shows on /health what still held the loop up (GC pauses, late wake-ups, slow steps).
SIGINT/SIGTERM: stop receiving, flush what is held to Redis, close the sockets, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import zmq
import zmq.asyncio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from arbsite.health import start_http
from arbsite.latency import LatencyWindow
from arbsite.stalls import StallProbe, stall_metrics
from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from engine_worker.publish import RedisPublisher
from signals_app.contracts.heartbeat import EngineHealth, EngineHeartbeat, OpenRestore, encode_heartbeat
from signals_app.contracts.markets import EngineMarkets
from signals_app.contracts.markets import encode as encode_markets
from signals_app.contracts.signal import CLOSE, THRESHOLD, Signal, pct
from signals_app.contracts.tick import (
    FEED_DOWN,
    TRADE,
    FeedState,
    Tick,
    TickDecodeError,
    decode_message,
)

log = logging.getLogger("engine_worker.service")

TIMER_INTERVAL_S = 0.05  # how often stale quotes are looked for between ticks
# A wake-up handles what is queued, up to DRAIN_MAX messages or BATCH_BUDGET_S of work, then lets the
# loop run: Redis's replies (a signal counts as published when they are read), the timers, the
# heartbeat and /health wait for the batch's end, so a batch of 2000 messages (30 ms at 20k/s)
# held every signal of it that long.
DRAIN_MAX = 2000
BATCH_BUDGET_S = 0.001
RESTORE_WAIT_S = 3.0  # how long start-up waits for Redis to read engine:open before starting without
# The spread matrix for engine:markets is computed on the engine's loop (about 0.4 ms per asset
# on seven venues): every second while it costs under 1 % of the loop's time, less often beyond,
# but at least every 3 s so that the key (EX 5) never lapses while the engine runs.
MATRIX_LOOP_SHARE = 0.01
MATRIX_MAX_INTERVAL_S = 3.0
MATRIX_SLICE_S = 0.0005  # the loop runs between slices of the matrix at least this often
SpreadMatrix = dict[str, dict[str, dict[str, float | None]]]  # asset -> buy -> sell -> net % (Engine.spread_matrix)


@dataclass
class EngineServiceConfig:
    engine: EngineConfig
    zmq_endpoint: str = "tcp://127.0.0.1:5555"
    redis_url: str = "redis://127.0.0.1:6379/0"
    health_host: str = "127.0.0.1"
    health_port: int = 8081

    @classmethod
    def from_settings(cls, settings: Any, default_fees_pct: Mapping[str, float]) -> EngineServiceConfig:
        """`default_fees_pct`: the venues' own fees (the registry's), which `FEES` overrides."""
        return cls(
            engine=EngineConfig.from_settings(settings, default_fees_pct),
            zmq_endpoint=settings.ZMQ_ENDPOINT,
            redis_url=settings.REDIS_URL,
            health_host=settings.HEALTH_HOST,
            health_port=settings.ENGINE_HEALTH_PORT,
        )


class EngineService:
    def __init__(self, config: EngineServiceConfig) -> None:
        self.config = config
        self.engine = Engine(config.engine)
        self.publisher = RedisPublisher(config.redis_url, on_published=self._published)
        self.stop = asyncio.Event()
        self.messages = 0
        self.bad_messages = 0  # messages that were no message of ticks (each dropped whole)
        self.bad_ticks = 0  # ticks of well-formed messages that broke a rule (each dropped alone)
        self.feed_states: dict[str, str] = {}
        self.decision_latency = LatencyWindow()  # frame received (ingestor) -> engine decided
        self.engine_latency = LatencyWindow()  # message received by the engine -> engine decided
        self.signal_latency = LatencyWindow()  # frame received (ingestor) -> signal published on Redis
        self._last_bad_log = 0.0
        self.matrix_seconds = 0.0  # what the last spread matrix for engine:markets took
        self.open_restore: OpenRestore | None = None  # what start-up found in engine:open
        self.stalls = StallProbe()
        self.batch_deadline = 0.0  # perf_counter: when the receive loop's wake-up stops draining (_drained)
        self.registry = CollectorRegistry()
        self.registry.register(_EngineCollector(self))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._request_stop, signum)
        context = zmq.asyncio.Context()
        pull = context.socket(zmq.PULL)
        pull.setsockopt(zmq.RCVHWM, 10_000)
        pull.setsockopt(zmq.LINGER, 0)
        pull.connect(self.config.zmq_endpoint)
        health = await start_http(
            self.config.health_host, self.config.health_port, {"/health": self.health, "/metrics": self.metrics}
        )
        await self.restore_open()
        self.stalls.start()
        log.info(
            "engine: pulling from %s, publishing to %s, health on %s:%d, threshold %.4g %% net of fees",
            self.config.zmq_endpoint,
            self.config.redis_url,
            self.config.health_host,
            self.config.health_port,
            self.config.engine.threshold_pct,
        )
        publisher = asyncio.create_task(self.publisher.run(self.stop), name="publisher")
        timers = asyncio.create_task(self._timers(), name="timers")
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
        try:
            await self._receive(pull)
        finally:
            log.info("engine: stopping: flushing %d held signals", self.publisher.pending())
            self.stop.set()
            for task in (timers, heartbeat):
                task.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(publisher, 3)
            await asyncio.gather(timers, heartbeat, return_exceptions=True)
            await self.publisher.close()
            await self.stalls.stop()
            health.close()
            pull.close()
            context.term()
            log.info("engine: stopped after %d ticks, %s", self.engine.ticks, self.engine.lifecycle.counts)

    async def restore_open(self, wait_s: float = RESTORE_WAIT_S) -> OpenRestore:
        """Start-up: the open opportunities of `keys.ENGINE_OPEN`, handed to the engine (DESIGN.md lifecycle rule 8).

        Redis unreachable for `wait_s`: the engine starts without them (logged, and shown on /health).
        """
        stored = await self.publisher.read_open(wait_s)
        if stored is None:
            log.warning("engine: redis unreachable for %.0f s at start-up: starting without engine:open", wait_s)
            restore: OpenRestore = {"found": 0, "restored": 0, "invalid": 0, "redis_unreachable": True}
        else:
            restored = self.engine.restore_open(list(stored.values()), time.time_ns() // 1_000_000) if stored else 0
            found, invalid = self.publisher.open_found, self.publisher.open_invalid
            restore = {
                "found": found,
                "restored": restored,
                "invalid": invalid + self.engine.restore_skipped,
                "redis_unreachable": False,
            }
            if found:
                log.info("engine: engine:open held %d: %d restored, %d no open signal", found, restored, invalid)
        self.open_restore = restore
        return restore

    def _request_stop(self, signum: int) -> None:
        log.info("engine: %s received", signal.Signals(signum).name)
        self.stop.set()

    async def _receive(self, pull: zmq.asyncio.Socket) -> None:
        # The same socket, seen synchronously, to drain what is already queued without awaiting.
        drain: zmq.Socket[bytes] = zmq.Socket.shadow(pull.underlying)
        stopper = asyncio.create_task(self.stop.wait())
        steps = self.stalls.steps
        try:
            while not self.stop.is_set():
                receiver = asyncio.ensure_future(pull.recv())
                await asyncio.wait({receiver, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not receiver.done():
                    receiver.cancel()
                    break
                started, cpu_started = time.perf_counter(), time.thread_time()
                self.batch_deadline = started + BATCH_BUDGET_S
                self.handle_batch(self._drained(receiver.result(), drain))
                steps.add("batch", time.perf_counter() - started, time.thread_time() - cpu_started)
        finally:
            stopper.cancel()

    def handle_batch(self, batch: Iterable[bytes]) -> None:
        """One step: decode and apply each message, one at a time, its signals written as soon as
        it caused them; then what else is due (the quote cache) is handed to the publisher."""
        received_ns = time.time_ns()  # engine receive -> decision counts from the batch's start, as before
        for data in batch:
            self.messages += 1
            try:
                items, refused = decode_message(data)
            except TickDecodeError as exc:
                self._bad_message(exc)
                continue
            if refused:
                self._bad_ticks(refused)
            signals = self._apply(items, received_ns)
            if signals:
                # now, not at the batch's end; and the wake-up ends here (`_drained`), so that the
                # loop reads Redis's replies as they come instead of after the rest of the budget
                self.publisher.publish(signals)
                self.batch_deadline = 0.0
        self.publisher.publish([])  # the quote cache, when due

    def _drained(self, first: bytes, drain: zmq.Socket[bytes]) -> Iterator[bytes]:
        """`first`, then what is queued on `drain` without waiting, up to DRAIN_MAX messages, until
        `batch_deadline` (perf_counter) passed or a message caused signals (`handle_batch` sets it
        to 0 then); what is left stays queued for the next wake-up."""
        yield first
        for _ in range(DRAIN_MAX - 1):
            if time.perf_counter() >= self.batch_deadline:
                return
            try:
                data = drain.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            yield data

    def _apply(self, items: Sequence[Tick | FeedState], received_ns: int) -> list[Signal]:
        """The ticks and feed states of one message, stepped through the engine: the signals they caused."""
        engine = self.engine
        publisher = self.publisher
        signals: list[Signal] = []
        for message in items:
            now_ns = time.time_ns()
            if isinstance(message, FeedState):
                self._feed_state(message, now_ns // 1_000_000, signals)
                continue
            caused = engine.on_tick(message, now_ns // 1_000_000)
            if caused:
                signals.extend(caused)
                self._depth_views(caused, now_ns // 1_000_000)
            decided_ns = time.time_ns()
            self.decision_latency.add((decided_ns - message.recv_ns) / 1000)
            self.engine_latency.add((decided_ns - received_ns) / 1000)
            if message.type == TRADE:
                continue
            levels = message.bids
            if levels is None or levels:  # a quote, or a book tick (the publisher caches its top)
                publisher.add_quote(message)
            elif not engine.has_quote(message.exchange, message.symbol):  # a book-lost tick (is_book_lost)
                publisher.add_quote(message)  # the quote went with the book: its cached price goes too
        return signals

    def _depth_views(self, signals: list[Signal], now_ms: int) -> None:
        """The depth panel's picture of each signal with depth, of the books as this tick left them."""
        for each in signals:
            if each["status"] != CLOSE and each["depth_size"] is not None:
                view = self.engine.depth_view(each, now_ms)
                if view is not None:
                    self.publisher.add_depth_view(view)

    def _feed_state(self, message: FeedState, now_ms: int, signals: list[Signal]) -> None:
        previous = self.feed_states.get(message.exchange)
        self.feed_states[message.exchange] = message.state
        if message.state == FEED_DOWN:
            closed = self.engine.mark_down(message.exchange, now_ms)
            signals.extend(closed)
            if previous != FEED_DOWN:
                log.warning("engine: %s feed down: %d opportunities closed", message.exchange, len(closed))
        elif previous != message.state:
            log.info("engine: %s feed %s", message.exchange, message.state)

    def _bad_message(self, exc: Exception) -> None:
        self.bad_messages += 1
        self._warn_bad(f"dropped a bad message ({exc})")

    def _bad_ticks(self, reasons: Sequence[str]) -> None:
        self.bad_ticks += len(reasons)
        self._warn_bad(f"dropped {len(reasons)} bad tick(s) of a message (not a tick: {reasons[0]})")

    def _warn_bad(self, what: str) -> None:
        """At most one warning every 10 s for what the engine refused, with the totals so far."""
        if time.monotonic() - self._last_bad_log > 10:
            log.warning("engine: %s; %d bad messages and %d bad ticks so far", what, self.bad_messages, self.bad_ticks)
            self._last_bad_log = time.monotonic()

    def _published(self, signals: list[Signal], published_ns: int) -> None:
        for published in signals:
            # Frame -> signal is the latency of what a frame caused: an open, an update, a close by
            # the threshold. A close by a timer, a feed going down or a restart carries the receive
            # time of the last quote it used, seconds old by design: it would only say STALE_MS.
            if published["tick_recv_ns"] and published.get("close_reason", THRESHOLD) == THRESHOLD:
                self.signal_latency.add((published_ns - published["tick_recv_ns"]) / 1000)
            log.info(
                "signal %s %s %s net %.4f%% size %s",
                published["status"],
                published["id"],
                published["action"],
                published["net_spread_pct"],
                published["size"],
            )

    async def _timers(self) -> None:
        """Close opportunities whose quotes went stale while no tick came."""
        while True:
            await asyncio.sleep(TIMER_INTERVAL_S)
            started = time.perf_counter()
            closed = self.engine.expire(time.time_ns() // 1_000_000)
            if closed:
                self.publisher.publish(closed)
            self.stalls.steps.add("timer", time.perf_counter() - started)

    async def _heartbeat(self) -> None:
        next_matrix = 0.0
        while True:
            matrix_due = time.monotonic() >= next_matrix
            await self.beat(with_matrix=matrix_due)
            if matrix_due:
                interval = min(max(1.0, self.matrix_seconds / MATRIX_LOOP_SHARE), MATRIX_MAX_INTERVAL_S)
                next_matrix = time.monotonic() + interval - 0.1  # due at the beat `interval` seconds on
            await asyncio.sleep(1)

    async def beat(self, with_matrix: bool = True) -> None:
        """One heartbeat step: the counters to keys.ENGINE_HEARTBEAT, the spread matrix to keys.ENGINE_MARKETS."""
        started = time.perf_counter()
        heartbeat = encode_heartbeat(self.snapshot())
        self.stalls.steps.add("heartbeat", time.perf_counter() - started)
        markets: bytes | None = None
        if with_matrix:
            now_ms = time.time_ns() // 1_000_000
            spreads, self.matrix_seconds = await self._spread_matrix(now_ms)
            markets = encode_markets(engine_markets(self.engine, now_ms, spreads))
        await self.publisher.set_engine_state(heartbeat, markets)

    async def _spread_matrix(self, now_ms: int) -> tuple[SpreadMatrix, float]:
        """`Engine.spread_matrix(now_ms)` an asset at a time, letting the loop run (ticks, Redis's
        replies) every MATRIX_SLICE_S: on seven venues it costs ~0.4 ms an asset, tens of ms in all,
        which held every tick and signal behind it. Returns it and the loop time it took."""
        engine = self.engine
        steps = self.stalls.steps
        spreads: SpreadMatrix = {}
        spent = 0.0
        assets = engine.matrix_assets()
        started = time.perf_counter()
        for index, asset in enumerate(assets, 1):
            spreads[asset] = engine.asset_spreads(asset, now_ms)
            elapsed = time.perf_counter() - started
            if elapsed >= MATRIX_SLICE_S or index == len(assets):
                steps.add("matrix", elapsed)
                spent += elapsed
                if index < len(assets):
                    await asyncio.sleep(0)
                    started = time.perf_counter()
        return spreads, spent

    # --- /health and /metrics ---------------------------------------------------------
    def snapshot(self) -> EngineHeartbeat:
        now_ms = time.time_ns() // 1_000_000
        rates = self.engine.rates
        return {
            "timestamp": now_ms,
            "ticks": self.engine.ticks,
            "messages": self.messages,
            "bad_messages": self.bad_messages,
            "bad_ticks": self.bad_ticks,
            "signals": dict(self.engine.lifecycle.counts),
            "open_opportunities": len(self.engine.lifecycle.open),
            "feeds": dict(self.feed_states),
            "redis_connected": self.publisher.connected,
            "signals_pending": self.publisher.pending(),
            "signals_published": self.publisher.published,
            "signals_dropped": self.publisher.signals_dropped,
            "signals_holding": self.publisher.held(),
            "signals_held": self.publisher.signals_held_total,
            "redis_outages": self.publisher.outages,
            "signals_republished": self.publisher.signals_republished,
            "signals_refused": self.publisher.signals_refused,
            "redis_errors": dict(self.publisher.redis_errors),
            "open_restore": self.open_restore,
            "stalls": self.stalls.snapshot(),
            "latency_frame_to_decision": self.decision_latency.percentiles(),
            "latency_engine_receive_to_decision": self.engine_latency.percentiles(),
            "latency_frame_to_signal_published": self.signal_latency.percentiles(),
            "latency_signal_write_to_reply": self.publisher.write_to_reply.percentiles(),
            # QUOTE_RATES=live: each currency's rate now (null: none fresh, its markets are out).
            "quote_rates": None if rates is None else rates.snapshot(now_ms),
            "suspect_markets": [
                {
                    "exchange": suspect.exchange,
                    "symbol": suspect.symbol,
                    "mid": suspect.mid,
                    "median_mid": suspect.median_mid,
                    "deviation_pct": pct(suspect.deviation_pct),
                    "venues_compared": suspect.venues_compared,
                    "seen_ms": suspect.seen_ms,
                }
                for suspect in self.engine.suspect_markets(now_ms)
            ],
        }

    def health(self) -> tuple[int, str, bytes]:
        started = time.perf_counter()
        failing = [] if self.publisher.connected else ["redis"]
        body: EngineHealth = {**self.snapshot(), "status": "ok" if not failing else "degraded", "failing": failing}
        self.stalls.steps.add("health", time.perf_counter() - started)
        return (200 if not failing else 503), "application/json", orjson.dumps(body)

    def metrics(self) -> tuple[int, str, bytes]:
        return 200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(self.registry)


def engine_markets(engine: Engine, now_ms: int, spreads: SpreadMatrix | None = None) -> EngineMarkets:
    """The engine's spread matrix at `now_ms` (net %, 4 dp) and the settings it was computed with;
    `spreads`: the matrix when already computed (`Engine.spread_matrix(now_ms)`)."""
    if spreads is None:
        spreads = engine.spread_matrix(now_ms)
    matrix = {
        asset: {
            buy: {sell: None if net is None else pct(net) for sell, net in row.items()} for buy, row in rows.items()
        }
        for asset, rows in spreads.items()
    }
    exchanges = sorted({exchange for rows in matrix.values() for exchange in rows})
    config = engine.config
    return {
        "timestamp": now_ms,
        "stale_ms": config.stale_ms,
        "threshold_pct": config.threshold_pct,
        "fees_pct": {exchange: config.fee_pct(exchange) for exchange in sorted({*config.fees_pct, *exchanges})},
        "quote_rates": config.quote_rates,
        "quote_groups": [list(group) for group in config.quote_groups],
        "exchanges": exchanges,
        "assets": sorted(matrix),
        "matrix": matrix,
    }


class _EngineCollector(Collector):
    def __init__(self, service: EngineService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        service = self.service
        ticks = CounterMetricFamily("arb_engine_ticks", "Ticks applied")
        ticks.add_metric([], service.engine.ticks)
        bad = CounterMetricFamily("arb_engine_bad_messages", "Messages that were no message of ticks, dropped whole")
        bad.add_metric([], service.bad_messages)
        bad_ticks = CounterMetricFamily("arb_engine_bad_ticks", "Ticks of a message that broke a rule, dropped alone")
        bad_ticks.add_metric([], service.bad_ticks)
        messages = CounterMetricFamily(
            "arb_engine_messages", "ZeroMQ messages received (ticks of a frame, or a feed state)"
        )
        messages.add_metric([], service.messages)
        yield from (messages, bad_ticks)
        signals = CounterMetricFamily("arb_engine_signals", "Signals raised", labels=["status"])
        for status, count in service.engine.lifecycle.counts.items():
            signals.add_metric([status], count)
        published = CounterMetricFamily("arb_engine_signals_published", "Signals published to Redis")
        published.add_metric([], service.publisher.published)
        pending = GaugeMetricFamily("arb_engine_signals_pending", "Signals held for Redis")
        pending.add_metric([], service.publisher.pending())
        dropped = CounterMetricFamily(
            "arb_engine_signals_dropped", "Signals lost: held beyond the publisher's bound while Redis was away"
        )
        dropped.add_metric([], service.publisher.signals_dropped)
        publisher = service.publisher
        held = GaugeMetricFamily("arb_engine_signals_holding", "Signals waiting now to be written to Redis")
        held.add_metric([], publisher.held())
        held_total = CounterMetricFamily("arb_engine_signals_held", "Signals that had to wait for Redis")
        held_total.add_metric([], publisher.signals_held_total)
        outages = CounterMetricFamily(
            "arb_engine_redis_outages", "Times Redis went away: connection lost, unreachable, or replies over 1 s late"
        )
        outages.add_metric([], publisher.outages)
        republished = CounterMetricFamily(
            "arb_engine_signals_republished", "Signals written again after their connection ended before Redis answered"
        )
        republished.add_metric([], publisher.signals_republished)
        refused = CounterMetricFamily("arb_engine_signals_refused", "Signals with a command Redis refused")
        refused.add_metric([], publisher.signals_refused)
        errors = CounterMetricFamily(
            "arb_engine_redis_errors", "Commands Redis refused, by command", labels=["command"]
        )
        for command, count in sorted(publisher.redis_errors.items()):
            errors.add_metric([command], count)
        redis_up = GaugeMetricFamily("arb_engine_redis_up", "1 when Redis answers the engine's writes")
        redis_up.add_metric([], 1.0 if publisher.connected else 0.0)
        open_now = GaugeMetricFamily("arb_engine_open_opportunities", "Opportunities open now")
        open_now.add_metric([], len(service.engine.lifecycle.open))
        matrix = GaugeMetricFamily("arb_engine_matrix_seconds", "Time the last spread matrix for engine:markets took")
        matrix.add_metric([], service.matrix_seconds)
        latency = GaugeMetricFamily(
            "arb_engine_latency_microseconds", "Latency percentiles over the last 20k events", labels=["path", "q"]
        )
        for path, window in (
            ("frame_to_decision", service.decision_latency),
            ("engine_receive_to_decision", service.engine_latency),
            ("frame_to_signal_published", service.signal_latency),
            ("signal_write_to_reply", service.publisher.write_to_reply),
        ):
            for name, value in window.percentiles().items():
                latency.add_metric([path, name.removesuffix("_us")], float("nan") if value is None else value)
        suspects = GaugeMetricFamily(
            "arb_engine_suspect_markets",
            "Markets left out in the last 10 s: mid beyond MAX_MARKET_DEVIATION_PCT of the other venues' median",
        )
        suspects.add_metric([], len(service.engine.suspect_markets(time.time_ns() // 1_000_000)))
        yield from (ticks, bad, signals, published, pending, dropped, held, held_total, outages, republished, refused)
        yield from (errors, redis_up, open_now, matrix, latency, suspects)
        yield from stall_metrics("arb_engine", service.stalls)
