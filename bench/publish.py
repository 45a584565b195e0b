"""Publish-path benchmark: one batch of N signals to a real Redis, redis-py against the engine's RESP writer.

Each batch is what the engine writes for N signals (PUBLISH, ZADD, XADD, HSET/HDEL of
engine:open each, then the history trim), to a private EmbeddedRedis on loopback, in the same
process and the same event loop (uvloop), the variants taking turns batch by batch:

- `redis-py pipeline`: `pipe.execute()` of redis.asyncio, as the publisher did before;
- `redis-py lowest layer`: redis.asyncio's `Connection`: the packed commands sent in one write,
  then one `read_response()` per reply;
- `RESP writer`: `engine_worker.publish.RedisPublisher.publish()` (encode and write, no await),
  the batch done when the replies of its last signal are read (its `on_published`).

Per batch: the time from the start of the write to the last reply (median, p99), and for the
writer, the time its `publish()` call held the loop. Run: .venv/bin/python bench/publish.py [N ...]
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
import uvloop  # noqa: E402
from redis.asyncio.connection import Connection  # noqa: E402

from arbsite.redis_server import EmbeddedRedis  # noqa: E402
from engine_worker.publish import RedisPublisher  # noqa: E402
from signals_app.contracts import keys  # noqa: E402
from signals_app.contracts.signal import FIELDS, Signal  # noqa: E402

SIZES = [1, 10, 100]
BATCHES = 400  # per variant and size
WARMUP = 30


def signals(count: int, batch: int) -> list[Signal]:
    """`count` signals shaped as the engine's (every contract field, depth included), alternately open and close."""
    now = 1_705_670_000_000 + batch
    made = []
    for n in range(count):
        values: dict[str, Any] = dict.fromkeys(FIELDS)
        values.update(
            type="ARBITRAGE_OPPORTUNITY",
            id=f"A{n}:binance:coinbase:{now}",
            status="open" if batch % 2 == 0 else "close",
            action="BUY_BINANCE_SELL_COINBASE",
            symbol=f"A{n}/USDT",
            asset=f"A{n}",
            buy_exchange="binance",
            sell_exchange="coinbase",
            buy_symbol=f"A{n}/USDT",
            sell_symbol=f"A{n}/USD",
            buy_price=45000.12,
            sell_price=45310.5,
            spread_pct=0.6897,
            net_spread_pct=0.4889,
            size=0.52,
            profit_per_unit=220.3,
            profit_estimate=114.556,
            depth_size=1.7,
            depth_buy_vwap=45001.2,
            depth_sell_vwap=45300.1,
            depth_profit=301.2,
            depth_net_spread_pct=0.3921,
            depth_levels=[3, 2],
            net_spread_at_target_pct=0.4012,
            fees_pct={"binance": 0.1, "coinbase": 0.1},
            opened_at=now,
            duration_ms=0,
            peak_net_spread_pct=0.4889,
            tick_recv_ns=now * 1_000_000,
            timestamp=now,
        )
        made.append(values)
    return made


async def redis_py_pipeline(client: aioredis.Redis, batch: list[Signal]) -> float:
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for signal in batch:
        data = orjson.dumps(signal)
        pipe.publish(keys.SIGNALS_CHANNEL, data)
        pipe.zadd(keys.SIGNALS_HISTORY, {data: signal["timestamp"]})
        pipe.xadd(
            keys.SIGNALS_STREAM, {keys.SIGNALS_STREAM_FIELD: data}, maxlen=keys.SIGNALS_STREAM_MAXLEN, approximate=True
        )
        if signal["status"] == "close":
            pipe.hdel(keys.ENGINE_OPEN, signal["id"])
        else:
            pipe.hset(keys.ENGINE_OPEN, signal["id"], data)
    pipe.zremrangebyrank(keys.SIGNALS_HISTORY, 0, -keys.SIGNALS_HISTORY_KEEP - 1)
    await pipe.execute()
    return time.perf_counter() - started


async def redis_py_lowest(conn: Connection, batch: list[Signal]) -> float:
    started = time.perf_counter()
    commands: list[tuple[Any, ...]] = []
    for signal in batch:
        data = orjson.dumps(signal)
        commands += [
            ("PUBLISH", keys.SIGNALS_CHANNEL, data),
            ("ZADD", keys.SIGNALS_HISTORY, signal["timestamp"], data),
            (
                "XADD",
                keys.SIGNALS_STREAM,
                "MAXLEN",
                "~",
                keys.SIGNALS_STREAM_MAXLEN,
                "*",
                keys.SIGNALS_STREAM_FIELD,
                data,
            ),
            ("HDEL", keys.ENGINE_OPEN, signal["id"])
            if signal["status"] == "close"
            else ("HSET", keys.ENGINE_OPEN, signal["id"], data),
        ]
    commands.append(("ZREMRANGEBYRANK", keys.SIGNALS_HISTORY, 0, -keys.SIGNALS_HISTORY_KEEP - 1))
    await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
    for _ in commands:
        await conn.read_response()
    return time.perf_counter() - started


class Writer:
    def __init__(self, url: str) -> None:
        self.done: asyncio.Future[float] | None = None
        self.publisher = RedisPublisher(url, on_published=self._published)
        self.held_loop: list[float] = []

    def _published(self, published: list[Signal], _ns: int) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(time.perf_counter())

    async def batch(self, batch: list[Signal]) -> float:
        self.done = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        self.publisher.publish(batch)
        self.held_loop.append(time.perf_counter() - started)
        return await self.done - started


def summary(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1e6, ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e6


async def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or SIZES
    with EmbeddedRedis() as server:
        client = aioredis.Redis.from_url(server.url)
        conn = Connection(host=server.host, port=server.port)
        await conn.connect()  # type: ignore[no-untyped-call]
        writer = Writer(server.url)
        assert await writer.publisher.read_open(2.0) is not None
        variants: dict[str, Callable[[list[Signal]], Coroutine[Any, Any, float]]] = {
            "redis-py pipeline": lambda batch: redis_py_pipeline(client, batch),
            "redis-py lowest layer": lambda batch: redis_py_lowest(conn, batch),
            "RESP writer": writer.batch,
        }
        print("# Publish path: one batch of N signals to Redis, write to last reply\n")
        print(
            f"Python {platform.python_version()} · uvloop · {os.cpu_count()} CPUs · "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · load {os.getloadavg()[0]:.2f}\n"
        )
        print(
            "| N signals | variant | median µs | p99 µs | × RESP writer (median) "
            "| loop held by the write, median / p99 µs |"
        )
        print("|---:|---|---:|---:|---:|---|")
        for size in sizes:
            timings: dict[str, list[float]] = {name: [] for name in variants}
            writer.held_loop.clear()
            for number in range(WARMUP + BATCHES):
                batch = signals(size, number)
                for name, variant in variants.items():  # turns, batch by batch: the same machine state
                    seconds = await variant(batch)
                    if number >= WARMUP:
                        timings[name].append(seconds)
            ours = summary(timings["RESP writer"])[0]
            held = summary(writer.held_loop[WARMUP:])
            for name, batches in timings.items():
                median, p99 = summary(batches)
                loop = f"{held[0]:.0f} / {held[1]:.0f}" if name == "RESP writer" else "the whole wait (awaited)"
                print(f"| {size} | {name} | {median:.0f} | {p99:.0f} | {median / ours:.2f} | {loop} |")
        print(f"\n{BATCHES} batches per row after {WARMUP} warm-up, variants taking turns; EmbeddedRedis on loopback.")
        await writer.publisher.close()
        await conn.disconnect()
        await client.aclose()


if __name__ == "__main__":
    uvloop.run(main())
