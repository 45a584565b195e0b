"""The publish path on a real Redis: every signal once, in order, through a kill and restart and a freeze.

A real EngineService steps crossing and flat quotes (opens and closes on many assets) while its
publishing task runs as in `run_engine`; Redis is an EmbeddedRedis that the tests kill and
restart, freeze with SIGSTOP, or kill while frozen (its unanswered writes must go again). What
must hold: the stream holds the signals in the order they were raised, none twice, none
missing; the hold is counted; the engine keeps applying ticks while Redis is frozen;
`engine:open` is exactly the opportunities opened and not closed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from typing import Any

import orjson
import redis
import uvloop

from arbsite.redis_server import EmbeddedRedis
from engine_worker.publish import STALL_S
from engine_worker.tests.publishing import Driver, open_hash, still_open, stream

ASSETS = [f"A{n}" for n in range(8)]  # opened and closed every other round
LASTING = ["BTC", "ETH"]  # opened at the start, open until the end


def ids(signals: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(s["id"], s["status"]) for s in signals]


async def rounds(driver: Driver, count: int, pause_s: float = 0.005) -> None:
    """`count` rounds, each opening ASSETS or closing them (alternately), LASTING kept fresh and open."""
    for _ in range(count):
        driver.turns += 1
        if driver.turns % 2:
            driver.round(LASTING + ASSETS, crossing=True)
        else:
            driver.round(ASSETS, crossing=False)
        driver.round(LASTING, crossing=True)  # fresh quotes: they never go stale
        await asyncio.sleep(pause_s)


def test_signals_are_published_in_the_order_raised_once_each() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)

        async def scenario() -> Driver:
            driver = Driver(server.url)
            assert await driver.service.restore_open(1.0) is not None
            driver.start()
            await rounds(driver, 40)
            await driver.settle()
            await driver.finish()
            return driver

        driver = uvloop.run(scenario())  # the engine's own loop (arbsite.runtime)
        assert len(driver.raised) == 2 + 20 * 8 * 2
        assert ids(stream(client)) == ids(driver.raised)
        assert ids(driver.confirmed) == ids(driver.raised)
        members: Any = client.zrange("signals:history", 0, -1)
        history = [orjson.loads(member) for member in members]
        assert Counter(ids(history)) == Counter(ids(driver.raised))
        assert open_hash(client) == still_open(driver.raised)
        assert set(open_hash(client)) == {s["id"] for s in driver.raised if s["asset"] in LASTING}
        publisher = driver.service.publisher
        assert (publisher.signals_held_total, publisher.outages, publisher.signals_republished) == (0, 0, 0)
        assert driver.service.signal_latency.count == len(driver.raised)
        assert 0 < publisher.write_to_reply.count <= len(driver.raised)  # one per write with signals
        write_to_reply = driver.service.snapshot()["latency_signal_write_to_reply"]
        assert write_to_reply is not None
        assert write_to_reply["p50_us"] is not None
        client.close()


def test_a_redis_killed_and_restarted_gets_every_signal_raised_since_in_order_once() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)

        async def scenario() -> tuple[Driver, int, int]:
            driver = Driver(server.url)
            await driver.service.restore_open(1.0)
            driver.start()
            await rounds(driver, 10)
            stopping = asyncio.create_task(asyncio.to_thread(server.stop))
            while not stopping.done():  # signals keep coming while it dies
                await rounds(driver, 1)
            await stopping
            raised_at_kill = len(driver.raised)  # all later ones can only reach the new Redis
            ticks_down = driver.service.engine.ticks
            await rounds(driver, 10)  # raised while Redis is away: held
            assert driver.service.engine.ticks > ticks_down
            assert driver.service.publisher.held() > 0
            assert not driver.service.publisher.connected
            health = orjson.loads(driver.service.health()[2])
            assert health["failing"] == ["redis"]
            assert health["signals_holding"] > 0
            await asyncio.to_thread(server.start)
            await rounds(driver, 10)
            await driver.settle()
            await driver.finish()
            return driver, raised_at_kill, ticks_down

        driver, raised_at_kill, _ = uvloop.run(scenario())  # the engine's own loop (arbsite.runtime)
        after = stream(client)  # the new Redis: nothing of the old one survived (no persistence)
        skipped = len(driver.raised) - len(after)
        assert 0 < skipped <= raised_at_kill
        assert ids(after) == ids(driver.raised[skipped:])  # a suffix: in order, none twice, none missing
        assert Counter(ids(driver.confirmed)) == Counter(ids(driver.raised))  # each confirmed once
        assert ids(driver.confirmed) == ids(driver.raised)
        # The restarted Redis holds every open opportunity, those opened before the kill too.
        assert open_hash(client) == still_open(driver.raised)
        assert {s["asset"] for s in open_hash(client).values()} >= set(LASTING)
        publisher = driver.service.publisher
        assert publisher.outages == 1
        assert publisher.signals_held_total > 0
        assert publisher.signals_dropped == 0
        snapshot = driver.service.snapshot()
        assert (snapshot["redis_outages"], snapshot["signals_holding"]) == (1, 0)
        client.close()


def test_a_frozen_redis_holds_signals_without_blocking_the_engine_and_gets_each_once() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        assert server.process is not None
        pid = server.process.pid

        async def scenario() -> tuple[Driver, list[float]]:
            driver = Driver(server.url)
            await driver.service.restore_open(1.0)
            driver.start()
            heartbeat = asyncio.create_task(driver.service._heartbeat())
            await rounds(driver, 6)
            os.kill(pid, signal.SIGSTOP)
            gaps: list[float] = []
            try:
                frozen_until = time.monotonic() + STALL_S + 2.0
                ticks = driver.service.engine.ticks
                last = time.monotonic()
                while time.monotonic() < frozen_until:
                    await rounds(driver, 1, pause_s=0.01)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now
                    assert driver.service.engine.ticks > ticks  # applied while Redis is frozen
                    ticks = driver.service.engine.ticks
                assert not driver.service.publisher.connected  # its replies are late: held, 503
                assert driver.service.health()[0] == 503
                assert driver.service.publisher.held() > 0
            finally:
                os.kill(pid, signal.SIGCONT)
            await rounds(driver, 6)
            await driver.settle()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await driver.finish()
            return driver, gaps

        driver, gaps = uvloop.run(scenario())  # the engine's own loop (arbsite.runtime)
        assert max(gaps) < 0.5, max(gaps)  # the loop never waited on Redis
        assert ids(stream(client)) == ids(driver.raised)  # the same connection: once each, in order
        assert ids(driver.confirmed) == ids(driver.raised)
        assert open_hash(client) == still_open(driver.raised)
        publisher = driver.service.publisher
        assert (publisher.outages, publisher.signals_republished, publisher.signals_dropped) == (1, 0, 0)
        assert publisher.signals_held_total > 0
        client.close()


def test_writes_unanswered_when_redis_dies_go_again_in_order_on_the_next_connection() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        assert server.process is not None
        process = server.process

        async def scenario() -> tuple[Driver, int]:
            driver = Driver(server.url)
            await driver.service.restore_open(1.0)
            driver.start()
            await rounds(driver, 4)
            await driver.settle()
            confirmed = len(driver.confirmed)
            os.kill(process.pid, signal.SIGSTOP)  # it reads nothing more: what is written now stays unanswered
            await rounds(driver, 2, pause_s=0.001)
            in_flight = driver.service.publisher.pending()
            assert in_flight > 0
            assert driver.service.publisher.held() == 0  # written, not held: under STALL_S
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait)
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            await rounds(driver, 2)
            await driver.settle()
            await driver.finish()
            assert driver.service.publisher.signals_republished == in_flight
            return driver, confirmed

        driver, confirmed = uvloop.run(scenario())
        assert ids(stream(client)) == ids(driver.raised[confirmed:])  # the unanswered first, once each, in order
        assert ids(driver.confirmed) == ids(driver.raised)
        assert open_hash(client) == still_open(driver.raised)
        client.close()
