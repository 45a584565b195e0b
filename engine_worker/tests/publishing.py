"""A real EngineService on a real Redis, driven tick batch by tick batch, and what it raised and published.

Shared by the publish-path tests: `Driver.round()` opens or closes opportunities on `assets`
(crossing or flat quotes through `handle_batch`, the engine's own step), the publisher's task
runs as in `run_engine`, and `raised` records every signal handed to the publisher, in order.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import redis

from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from signals_app.contracts import keys
from signals_app.contracts.signal import CLOSE, Signal
from signals_app.contracts.tick import encode_ticks, quote


def quotes(assets: list[str], crossing: bool, now_ms: int) -> list[bytes]:
    """Each asset 1 % dearer on coinbase than on binance (crossing: an open per asset), or level (flat: a close).

    One ZeroMQ message of all the ticks, as the ingestor sends a frame's (contracts/tick.py encode_ticks).
    """
    rich = 101.0 if crossing else 100.0
    ticks = []
    for asset in assets:
        ticks.append(quote("binance", f"{asset}/USDT", 99.9, 100.0, 1.0, 1.0, now_ms, now_ms * 1_000_000))
        ticks.append(quote("coinbase", f"{asset}/USD", rich, rich + 0.1, 1.0, 1.0, now_ms, now_ms * 1_000_000))
    return [encode_ticks(ticks)]


class Driver:
    def __init__(self, redis_url: str, stale_ms: int = 2000) -> None:
        config = EngineConfig(fees_pct={"binance": 0.1, "coinbase": 0.1}, update_ms=10**9, stale_ms=stale_ms)
        self.service = EngineService(EngineServiceConfig(engine=config, redis_url=redis_url, health_port=0))
        self.raised: list[Signal] = []
        self.turns = 0  # rounds so far (the tests' own schedule)
        self.confirmed: list[Signal] = []
        publisher = self.service.publisher
        original_publish = publisher.publish
        original_published = self.service._published

        def publish(signals: list[Signal]) -> None:  # a recording pass-through: the publisher is unchanged
            self.raised.extend(signals)
            original_publish(signals)

        def published(signals: list[Signal], published_ns: int) -> None:
            self.confirmed.extend(signals)
            original_published(signals, published_ns)

        publisher.publish = publish  # type: ignore[method-assign]
        publisher._on_published = published
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.service.publisher.run(self.stop))

    def round(self, assets: list[str], crossing: bool) -> None:
        self.service.handle_batch(quotes(assets, crossing, time.time_ns() // 1_000_000))

    async def settle(self, timeout_s: float = 10.0) -> None:
        """Until the publisher holds nothing and Redis answered everything."""
        publisher = self.service.publisher
        deadline = time.monotonic() + timeout_s
        while publisher.pending() or not publisher.connected:
            assert time.monotonic() < deadline, (publisher.pending(), publisher.connected, publisher.last_error)
            await asyncio.sleep(0.01)

    async def finish(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)
        await self.service.publisher.close()


def stream(client: redis.Redis) -> list[Signal]:
    entries: Any = client.xrange(keys.SIGNALS_STREAM)
    return [orjson.loads(fields[keys.SIGNALS_STREAM_FIELD.encode()]) for _, fields in entries]


def open_hash(client: redis.Redis) -> dict[str, Signal]:
    stored: Any = client.hgetall(keys.ENGINE_OPEN)
    return {field.decode(): orjson.loads(value) for field, value in stored.items()}


def still_open(raised: list[Signal]) -> dict[str, Signal]:
    """The ids opened and not closed, each with its last open/update signal, from the signals in order."""
    now: dict[str, Signal] = {}
    for signal in raised:
        if signal["status"] == CLOSE:
            now.pop(signal["id"], None)
        else:
            now[signal["id"]] = signal
    return now
