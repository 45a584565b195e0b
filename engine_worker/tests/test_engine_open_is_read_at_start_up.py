"""Start-up reads `engine:open` before any tick (DESIGN.md lifecycle rule 8), and never loses what it holds.

A real EngineService on a real Redis: what a previous engine left in the hash is read and
handed to the engine (`Engine.restore_open`, when the engine has it), entries that are no
open signal of their own id are deleted and counted; with Redis unreachable the engine starts
after the wait without them (counted on /health), and the first connection later takes the
hash as it is, so a reconnection's rewrite keeps the previous engine's entries.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import redis
import uvloop

from arbsite.redis_server import EmbeddedRedis, free_port
from engine_worker.tests.publishing import Driver, open_hash, still_open, stream
from signals_app.contracts import keys
from signals_app.tests.api_fixtures import make_signal


def test_the_hash_is_read_at_start_up_and_entries_that_are_no_open_signal_are_deleted() -> None:
    opened = make_signal(1_705_670_000_000, asset="BTC")
    updated = make_signal(1_705_670_001_000, asset="ETH", status="update", opened_at=1_705_670_000_500)
    closed = make_signal(1_705_670_002_000, asset="SOL", status="close", opened_at=1_705_670_000_000)
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.hset(
            keys.ENGINE_OPEN,
            mapping={
                opened["id"]: orjson.dumps(opened),
                updated["id"]: orjson.dumps(updated),
                closed["id"]: orjson.dumps(closed),  # a close is no open opportunity
                "XRP:binance:coinbase:1": b"{not json",
                "ADA:binance:coinbase:1": orjson.dumps(make_signal(5, asset="DOT")),  # another id's signal
            },
        )

        async def scenario() -> Driver:
            driver = Driver(server.url)
            restore = await driver.service.restore_open(1.0)
            engine = driver.service.engine
            if hasattr(engine, "restore_open"):
                assert isinstance(restore["restored"], int)
            else:
                assert restore["restored"] is None
            assert restore == {**restore, "found": 5, "invalid": 3, "redis_unreachable": False}
            assert driver.service.snapshot()["open_restore"] == restore
            driver.start()
            await driver.settle()
            conn = driver.service.publisher._conn
            assert conn is not None
            conn.abort()  # a reconnection: engine:open is rewritten from what Redis confirmed
            await asyncio.sleep(0.05)
            await driver.settle()
            await driver.finish()
            return driver

        driver = uvloop.run(scenario())  # the engine's own loop (arbsite.runtime)
        assert driver.service.publisher.outages == 1
        assert open_hash(client) == {opened["id"]: opened, updated["id"]: updated}
        client.close()


def test_an_unreachable_redis_at_start_up_is_waited_for_counted_and_the_hash_kept() -> None:
    port = free_port()
    server = EmbeddedRedis(port=port)
    previous = make_signal(1_705_670_000_000, asset="BTC")

    async def scenario() -> tuple[Driver, float]:
        driver = Driver(server.url)
        started = time.monotonic()
        restore = await driver.service.restore_open(0.5)
        waited = time.monotonic() - started
        assert restore == {"found": 0, "restored": 0, "invalid": 0, "redis_unreachable": True}
        assert driver.service.snapshot()["open_restore"] == restore
        driver.round(["ETH", "SOL"], crossing=True)  # the engine runs without Redis: held
        assert driver.service.publisher.held() == 2
        await asyncio.to_thread(server.start)
        client = redis.Redis.from_url(server.url)
        client.hset(keys.ENGINE_OPEN, previous["id"], orjson.dumps(previous))  # left by the engine before
        client.close()
        driver.start()
        await driver.settle()
        driver.round(["SOL"], crossing=False)  # SOL closes
        await driver.settle()
        conn = driver.service.publisher._conn
        assert conn is not None
        conn.abort()
        await asyncio.sleep(0.05)
        await driver.settle()
        await driver.finish()
        return driver, waited

    try:
        driver, waited = uvloop.run(scenario())  # the engine's own loop (arbsite.runtime)
        assert 0.4 < waited < 2.0
        client = redis.Redis.from_url(server.url)
        eth = next(s for s in driver.raised if s["asset"] == "ETH")
        assert open_hash(client) == {previous["id"]: previous, eth["id"]: eth}
        client.close()
    finally:
        server.cleanup()


def test_signals_dropped_while_redis_is_away_still_leave_engine_open_exact() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)

        async def scenario() -> Driver:
            driver = Driver(server.url)
            driver.service.publisher.max_pending = 3
            driver.round(["BTC", "ETH", "SOL", "XRP", "ADA"], crossing=True)  # not connected yet: held
            driver.round(["BTC", "ETH"], crossing=False)
            assert driver.service.publisher.signals_dropped == 4
            restore = await driver.service.restore_open(1.0)  # read before anything is written
            assert restore["found"] == 0
            await driver.settle()
            await driver.finish()
            return driver

        driver = uvloop.run(scenario())
        assert len(driver.raised) == 7
        assert [(s["id"], s["status"]) for s in stream(client)] == [(s["id"], s["status"]) for s in driver.raised[4:]]
        # The dropped opens of SOL and XRP and the dropped close of BTC are in engine:open all the same.
        assert open_hash(client) == still_open(driver.raised)
        assert {s["asset"] for s in open_hash(client).values()} == {"SOL", "XRP", "ADA"}
        client.close()
