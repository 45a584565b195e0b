"""The ingestor process: one Feed per enabled exchange, the ZeroMQ pusher, /health and /metrics.

`run_ingestor` builds an `IngestorService` from settings and awaits `run()`;
SIGINT/SIGTERM set the stop event, every feed closes its connection, the
capture is flushed, the sockets are closed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from arbsite.env import enabled_exchanges
from arbsite.health import start_http
from arbsite.stalls import StallProbe, stall_metrics
from ingest_worker.feed import STATES, Feed
from ingest_worker.push import TickPusher
from ingest_worker.record import CaptureWriter
from ingest_worker.venues import SIM_PORTS, VENUES, resolve_venues
from ingest_worker.venues.base import DEPTH_LEVELS, DROP_REASONS
from signals_app.contracts.heartbeat import encode_ingestor_health, ingestor_health

log = logging.getLogger("ingest_worker.service")


@dataclass
class IngestorConfig:
    exchanges: list[str]
    zmq_endpoint: str = "tcp://127.0.0.1:5555"
    market_source: str = "sim"
    sim_host: str = "127.0.0.1"
    sim_ports: Mapping[str, int] = field(default_factory=lambda: dict(SIM_PORTS))  # default: the declarations'
    symbols: list[str] = field(default_factory=list)
    assets: list[str] = field(default_factory=lambda: ["BTC", "ETH", "SOL", "XRP", "ADA"])
    quote_groups: list[list[str]] = field(default_factory=lambda: [["USD", "USDT", "USDC"]])
    health_host: str = "127.0.0.1"
    health_port: int = 8080
    silence_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    depth_levels: int = DEPTH_LEVELS  # DEPTH_LEVELS: the levels a side a book tick carries
    record: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any, record: Path | None = None) -> IngestorConfig:
        from django.core.exceptions import ImproperlyConfigured

        try:
            listed = resolve_venues(settings.EXCHANGES, "EXCHANGES")
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None
        exchanges = enabled_exchanges(list(listed), settings.BINANCE_ENABLED, settings.COINBASE_ENABLED)
        if not exchanges:
            raise ImproperlyConfigured("EXCHANGES: every listed venue is disabled (BINANCE_ENABLED, COINBASE_ENABLED)")
        return cls(
            exchanges=exchanges,
            zmq_endpoint=settings.ZMQ_ENDPOINT,
            market_source=settings.MARKET_SOURCE,
            sim_host=getattr(settings, "SIM_HOST", "127.0.0.1"),
            sim_ports={**SIM_PORTS, **settings.SIM_PORTS},
            symbols=list(settings.SYMBOLS),
            assets=list(settings.ASSETS),
            quote_groups=[list(group) for group in settings.QUOTE_GROUPS],
            health_host=settings.HEALTH_HOST,
            health_port=settings.HEALTH_PORT,
            silence_timeout_s=settings.FEED_SILENCE_TIMEOUT_S,
            ping_interval_s=settings.WS_PING_INTERVAL_S,
            depth_levels=settings.DEPTH_LEVELS,
            record=record,
        )

    def endpoints(self, exchange: str) -> tuple[str, str]:
        """(WebSocket base, REST base) of an exchange, real or simulated."""
        venue = VENUES[exchange]
        if self.market_source == "live":
            return venue.live_ws_url, venue.live_rest_url
        port = self.sim_ports[exchange]
        return f"ws://{self.sim_host}:{port}", f"http://{self.sim_host}:{port}"


class IngestorService:
    def __init__(self, config: IngestorConfig) -> None:
        self.config = config
        self.pusher = TickPusher(config.zmq_endpoint)
        self.recorder = CaptureWriter(config.record) if config.record else None
        self.feeds: list[Feed] = []
        for exchange in config.exchanges:
            ws_base, rest_base = config.endpoints(exchange)
            self.feeds.append(
                Feed(
                    VENUES[exchange],
                    ws_base=ws_base,
                    rest_base=rest_base,
                    pusher=self.pusher,
                    symbols=config.symbols,
                    assets=config.assets,
                    quotes=[member for group in config.quote_groups for member in group],
                    quote_groups=config.quote_groups,
                    recorder=self.recorder,
                    silence_timeout_s=config.silence_timeout_s,
                    ping_interval_s=config.ping_interval_s,
                    depth_levels=config.depth_levels,
                )
            )
        self.stop = asyncio.Event()
        self.stalls = StallProbe()
        self.registry = CollectorRegistry()
        self.registry.register(_IngestorCollector(self))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._request_stop, signum)
        health = await start_http(
            self.config.health_host,
            self.config.health_port,
            {"/health": self.health, "/metrics": self.metrics},
        )
        log.info(
            "ingestor: %s, pushing to %s, health on %s:%d",
            ", ".join(self.config.exchanges),
            self.config.zmq_endpoint,
            self.config.health_host,
            self.config.health_port,
        )
        self.stalls.start()
        tasks = [asyncio.create_task(feed.run(self.stop), name=f"feed-{feed.name}") for feed in self.feeds]
        stopped = asyncio.create_task(self.stop.wait())
        misconfigured: BaseException | None = None
        try:
            # A feed ends before `stop` only on a configuration error (NothingToSubscribe).
            done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task in done and not task.cancelled() and task.exception() is not None:
                    misconfigured = task.exception()
                    log.error("ingestor: %s; stopping", misconfigured)
                    break
            self.stop.set()
            log.info("ingestor: stopping: closing %d feeds", len(tasks))
            _done, pending = await asyncio.wait(tasks, timeout=4)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            await self.stalls.stop()
            health.close()
            if self.recorder is not None:
                self.recorder.close()
                log.info("ingestor: capture flushed: %d frames in %s", self.recorder.lines, self.recorder.path)
            self.pusher.close()
            stopped.cancel()
            log.info("ingestor: stopped")
        if misconfigured is not None:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(str(misconfigured)) from misconfigured

    def _request_stop(self, signum: int) -> None:
        log.info("ingestor: %s received", signal.Signals(signum).name)
        self.stop.set()

    # --- /health and /metrics --------------------------------------------------------
    def health(self) -> tuple[int, str, bytes]:
        feeds = {feed.name: feed.snapshot() for feed in self.feeds}
        pusher = self.pusher
        status, body = encode_ingestor_health(
            ingestor_health(
                feeds,
                pusher.sent,
                pusher.dropped,
                pusher.states_held,
                pusher.holding,
                messages_sent=pusher.messages_sent,
                states_sent=pusher.states_sent,
                stalls=self.stalls.snapshot(),
            )
        )
        return status, "application/json", body

    def metrics(self) -> tuple[int, str, bytes]:
        return 200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(self.registry)


class _IngestorCollector(Collector):
    """Reads the feeds' plain counters at scrape time: nothing is paid per tick for metrics."""

    def __init__(self, service: IngestorService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        feeds = self.service.feeds
        state = GaugeMetricFamily("arb_feed_state", "1 for the feed's current state", labels=["exchange", "state"])
        age = GaugeMetricFamily(
            "arb_feed_last_message_age_seconds", "Seconds since the last frame", labels=["exchange"]
        )
        frames = CounterMetricFamily("arb_feed_frames", "Frames received", labels=["exchange"])
        ticks = CounterMetricFamily("arb_feed_ticks_sent", "Ticks pushed to the engine", labels=["exchange"])
        connects = CounterMetricFamily("arb_feed_connects", "Connections opened", labels=["exchange"])
        dead = CounterMetricFamily("arb_feed_declared_dead", "Times the feed went silent too long", labels=["exchange"])
        resyncs = CounterMetricFamily(
            "arb_feed_book_resyncs", "Markets resubscribed for a fresh order-book snapshot", labels=["exchange"]
        )
        connections = GaugeMetricFamily(
            "arb_feed_connections", "WebSocket connections of the feed, by state", labels=["exchange", "state"]
        )
        drops = CounterMetricFamily("arb_feed_dropped_frames", "Frames dropped", labels=["exchange", "reason"])
        control = CounterMetricFamily("arb_feed_control_frames", "Control frames", labels=["exchange", "kind"])
        book_ticks = CounterMetricFamily("arb_feed_book_ticks", "Book ticks made", labels=["exchange"])
        skewed = CounterMetricFamily(
            "arb_feed_book_clock_skewed",
            "Book ticks whose venue time was more than 1 s off the receive time",
            labels=["exchange"],
        )
        lost = CounterMetricFamily(
            "arb_feed_books_lost", "Book-lost ticks sent: a book the engine had was dropped", labels=["exchange"]
        )
        for feed in feeds:
            for name in STATES:
                state.add_metric([feed.name, name], 1.0 if feed.state == name else 0.0)
            message_age = feed.last_message_age_s()
            age.add_metric([feed.name], float("nan") if message_age is None else message_age)
            frames.add_metric([feed.name], feed.frames)
            ticks.add_metric([feed.name], feed.ticks_sent)
            connects.add_metric([feed.name], feed.connects)
            dead.add_metric([feed.name], feed.dead_declared)
            resyncs.add_metric([feed.name], feed.resyncs)
            for each in STATES:
                count_in = sum(1 for connection in feed.connections if connection.state == each)
                connections.add_metric([feed.name, each], float(count_in))
            stats = feed.parse_stats()
            for reason in DROP_REASONS:
                drops.add_metric([feed.name, reason], stats.dropped.get(reason, 0))
            for kind, count in stats.control.items():
                control.add_metric([feed.name, kind], count)
            book_ticks.add_metric([feed.name], stats.book_ticks)
            skewed.add_metric([feed.name], stats.clock_skewed)
            lost.add_metric([feed.name], stats.books_lost)
        messages = CounterMetricFamily(
            "arb_zmq_messages_sent", "ZeroMQ messages of ticks sent to the engine: one per frame"
        )
        messages.add_metric([], self.service.pusher.messages_sent)
        backpressure = CounterMetricFamily(
            "arb_ticks_dropped_backpressure",
            "Ticks refused at the ZeroMQ high-water mark (each tick of a refused message), or behind a held feed state",
        )
        backpressure.add_metric([], self.service.pusher.dropped)
        held = CounterMetricFamily(
            "arb_feed_states_held", "Venue down/up messages that met the ZeroMQ high-water mark and waited"
        )
        held.add_metric([], self.service.pusher.states_held)
        holding = GaugeMetricFamily("arb_feed_states_holding", "Venue down/up messages waiting for room now")
        holding.add_metric([], self.service.pusher.holding)
        yield from (state, age, frames, ticks, connects, dead, resyncs, connections, drops, control)
        yield from (book_ticks, skewed, lost, messages, backpressure, held, holding)
        yield from stall_metrics("arb_ingestor", self.service.stalls)
