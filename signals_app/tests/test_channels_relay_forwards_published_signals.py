"""The relay: what the engine PUBLISHes on arbitrage:signals reaches every browser, unchanged and in order,
through one Redis subscription per process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from arbsite.redis_server import EmbeddedRedis
from signals_app import relay as relay_module
from signals_app.tests.channels_helpers import (
    connected_browser,
    private_redis,
    publish,
    run,
    signal_json,
    subscribers,
)


@pytest.fixture
def redis_server(settings: Any) -> Iterator[EmbeddedRedis]:
    with private_redis(settings) as server:
        yield server


def test_a_published_signal_reaches_a_browser_byte_for_byte(redis_server: EmbeddedRedis) -> None:
    payload = signal_json(1705670123456, asset="ÉTH", note="<b>bold</b>")

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        browser = await connected_browser()
        await publish(client, payload)
        assert (await browser.receive_from(timeout=5)).encode() == payload
        relay = relay_module.current_relay()
        assert relay is not None
        assert relay.relayed == 1
        await browser.disconnect()
        await client.aclose()

    run(body)


def test_a_burst_arrives_complete_and_in_publish_order(redis_server: EmbeddedRedis) -> None:
    payloads = [signal_json(1705670123456 + i, status="update", opened_at=1705670123456) for i in range(300)]

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        browser = await connected_browser()
        pipe = client.pipeline(transaction=False)
        for payload in payloads:
            pipe.publish("arbitrage:signals", payload)
        await pipe.execute()
        received = [(await browser.receive_from(timeout=5)).encode() for _ in payloads]
        assert received == payloads
        await browser.disconnect()
        await client.aclose()

    run(body)


def test_many_browsers_share_one_redis_subscription(redis_server: EmbeddedRedis) -> None:
    payload = signal_json(1705670123456)

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        assert await subscribers(client) == 0  # nothing subscribes before the first browser
        browsers = [await connected_browser() for _ in range(5)]
        assert await subscribers(client) == 1
        await publish(client, payload)
        for browser in browsers:
            assert (await browser.receive_from(timeout=5)).encode() == payload
            await browser.disconnect()
        assert await subscribers(client) == 1  # the relay outlives its browsers
        await client.aclose()

    run(body)


def test_what_is_not_a_signal_is_dropped_and_counted(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    junk = [b"not json", b'{"type": "SOMETHING_ELSE"}', b"[1, 2]", b"\xff\xfe", b""]
    payload = signal_json(1705670123456)

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        browser = await connected_browser()
        for message in junk:
            await client.publish("arbitrage:signals", message)
        await publish(client, payload)
        # The first frame is the signal: nothing before it got through.
        assert (await browser.receive_from(timeout=5)).encode() == payload
        relay = relay_module.current_relay()
        assert relay is not None
        assert (relay.dropped, relay.relayed) == (len(junk), 1)
        await browser.disconnect()
        await client.aclose()

    with caplog.at_level(logging.WARNING, logger="signals_app.relay"):
        run(body)
    # One warning, not one per message: the rest are only counted.
    assert sum("not a signal" in record.getMessage() for record in caplog.records) == 1
