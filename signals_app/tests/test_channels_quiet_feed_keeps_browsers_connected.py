"""A quiet market is not a failure: a browser that gets no signal for a while stays connected."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from arbsite.redis_server import EmbeddedRedis
from signals_app.tests.channels_helpers import connected_browser, private_redis, publish, run, signal_json

QUIET_S = 7.0  # longer than the channel layer's blocking read (5 s) and redis-py 8's default socket timeout (5 s)


@pytest.fixture
def redis_server(settings: Any) -> Iterator[EmbeddedRedis]:
    with private_redis(settings) as server:
        yield server


def test_a_browser_stays_connected_through_a_quiet_spell(redis_server: EmbeddedRedis) -> None:
    payload = signal_json(1705670123456)

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        browser = await connected_browser()
        assert await browser.receive_nothing(timeout=QUIET_S)  # not even a close frame
        await publish(client, payload)
        assert (await browser.receive_from(timeout=5)).encode() == payload
        await browser.disconnect()
        await client.aclose()

    run(body)
