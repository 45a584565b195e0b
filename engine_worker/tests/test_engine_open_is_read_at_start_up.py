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
from signals_app.contracts.signal import FIELDS, Signal
from signals_app.tests.api_fixtures import make_signal


def whole(signal: Signal) -> Signal:
    """A stored signal with every field of the contract (the depth figures null: no books)."""
    return {name: signal.get(name) for name in FIELDS}


def test_the_hash_is_read_at_start_up_restored_and_entries_that_are_no_open_signal_are_deleted() -> None:
    now = time.time_ns() // 1_000_000
    opened = whole(make_signal(now - 500, asset="BTC"))
    updated = whole(make_signal(now - 100, asset="ETH", status="update", opened_at=now - 900))
    closed = whole(make_signal(now - 200, asset="SOL", status="close", opened_at=now - 1000))
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.hset(
            keys.ENGINE_OPEN,
            mapping={
                opened["id"]: orjson.dumps(opened),
                updated["id"]: orjson.dumps(updated),
                closed["id"]: orjson.dumps(closed),  # a close is no open opportunity
                "XRP:binance:coinbase:1": b"{not json",
                "ADA:binance:coinbase:1": orjson.dumps(whole(make_signal(5, asset="DOT"))),  # another id's signal
                "DOT:binance:coinbase:1": orjson.dumps(make_signal(5, asset="DOT")),  # no depth fields: not whole
            },
        )

        async def scenario() -> Driver:
            driver = Driver(server.url)
            restore = await driver.service.restore_open(1.0)
            assert restore == {"found": 6, "restored": 2, "invalid": 4, "redis_unreachable": False}
            held = {o.id for o in driver.service.engine.lifecycle.by_exchange.get("binance", {}).values()}
            assert held == {opened["id"], updated["id"]}  # resuming, as a previous engine left them
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
    previous = whole(make_signal(time.time_ns() // 1_000_000 - 60_000, asset="BTC"))

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


def test_a_restored_opportunity_that_does_not_resume_is_closed_and_leaves_engine_open() -> None:
    now = time.time_ns() // 1_000_000
    stored = whole(make_signal(now - 5000, asset="BTC"))
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.hset(keys.ENGINE_OPEN, stored["id"], orjson.dumps(stored))

        async def scenario() -> Driver:
            driver = Driver(server.url, stale_ms=300)
            assert (await driver.service.restore_open(1.0))["restored"] == 1
            driver.start()
            timers = asyncio.create_task(driver.service._timers())  # as run_engine runs them
            deadline = time.monotonic() + 3
            while not driver.confirmed:
                assert time.monotonic() < deadline, "no restart close"
                await asyncio.sleep(0.02)
            timers.cancel()
            await asyncio.gather(timers, return_exceptions=True)
            await driver.settle()
            await driver.finish()
            return driver

        driver = uvloop.run(scenario())
        (close,) = driver.confirmed
        assert (close["id"], close["status"], close["close_reason"]) == (stored["id"], "close", "engine_restart")
        assert (close["opened_at"], close["buy_price"]) == (stored["opened_at"], stored["buy_price"])
        assert open_hash(client) == {}  # its open ended in a close every consumer sees
        assert [(s["id"], s["status"]) for s in stream(client)] == [(stored["id"], "close")]
        client.close()
