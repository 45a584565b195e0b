"""An error reply is an error: Redis refusing one of a signal's commands is counted, shown, and never hidden.

`signals:history` made a string on a real Redis: every ZADD (and the history trim) gets
WRONGTYPE. Each signal then counts as refused (`signals_refused`, `redis_errors` by command,
on /health and /metrics), its other writes stand (pub/sub, the stream, engine:open), it is
not sent again (that would repeat them), and it is not confirmed (no signal latency from it).
Once the key is right again, signals are published as before.
"""

from __future__ import annotations

import asyncio

import redis
import uvloop

from arbsite.redis_server import EmbeddedRedis
from engine_worker.tests.publishing import Driver, open_hash, still_open, stream


def test_a_refused_zadd_counts_the_signal_refused_and_keeps_its_other_writes() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.set("signals:history", "not a sorted set")
        subscriber = client.pubsub()
        subscriber.subscribe("arbitrage:signals")
        assert subscriber.get_message(timeout=1) is not None  # the subscription's confirmation

        async def scenario() -> tuple[Driver, int]:
            driver = Driver(server.url)
            await driver.service.restore_open(1.0)
            driver.start()
            driver.round(["BTC", "ETH", "SOL"], crossing=True)
            await driver.settle()
            refused = len(driver.raised)
            await asyncio.sleep(0.3)  # the publishing task's turns: nothing is sent again
            await asyncio.to_thread(client.delete, "signals:history")
            driver.round(["BTC", "ETH", "SOL"], crossing=False)
            await driver.settle()
            await driver.finish()
            return driver, refused

        driver, refused = uvloop.run(scenario())  # the engine's own loop (arbsite.runtime)
        assert refused == 3
        publisher = driver.service.publisher
        assert publisher.signals_refused == 3
        assert publisher.redis_errors == {"ZADD": 3, "ZREMRANGEBYRANK": 1}
        assert publisher.last_error is not None
        assert "WRONGTYPE" in publisher.last_error
        assert publisher.published == 3  # the three closes, once the key was right
        assert [s["status"] for s in driver.confirmed] == ["close"] * 3
        assert driver.service.signal_latency.count == 3
        assert [(s["id"], s["status"]) for s in stream(client)] == [(s["id"], s["status"]) for s in driver.raised]
        assert open_hash(client) == still_open(driver.raised) == {}
        delivered = []
        while (message := subscriber.get_message(timeout=0.5)) is not None:
            delivered.append(message["data"])
        assert len(delivered) == 6  # each signal once on pub/sub, refused or not
        assert len(client.zrange("signals:history", 0, -1)) == 3  # type: ignore[arg-type]
        snapshot = driver.service.snapshot()
        assert (snapshot["signals_refused"], snapshot["redis_errors"]) == (3, {"ZADD": 3, "ZREMRANGEBYRANK": 1})
        metrics = driver.service.metrics()[2].decode().splitlines()
        assert "arb_engine_signals_refused_total 3.0" in metrics
        assert 'arb_engine_redis_errors_total{command="ZADD"} 3.0' in metrics
        subscriber.close()
        client.close()
