"""The consumer: a member of its process's signals group while connected, and a pure forwarder of its events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from channels.layers import get_channel_layer

from arbsite.redis_server import EmbeddedRedis
from signals_app.contracts.groups import PROCESS_SIGNALS_GROUP, SIGNAL_EVENT
from signals_app.tests.channels_helpers import GROUP_KEY, connected_browser, private_redis, run, signal_json


@pytest.fixture
def redis_server(settings: Any) -> Iterator[EmbeddedRedis]:
    with private_redis(settings) as server:
        yield server


def test_a_connected_browser_is_in_the_group_until_it_disconnects(redis_server: EmbeddedRedis) -> None:
    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        first = await connected_browser()
        second = await connected_browser()
        assert await client.zcard(GROUP_KEY) == 2
        await first.disconnect()
        assert await client.zcard(GROUP_KEY) == 1
        await second.disconnect()
        assert await client.zcard(GROUP_KEY) == 0
        await client.aclose()

    run(body)


def test_group_events_reach_the_browser_as_their_exact_text(redis_server: EmbeddedRedis) -> None:
    # Text that a re-encoding would change: non-ASCII, escapes, HTML, float spellings, odd spacing.
    payloads = [
        signal_json(1705670123456).decode(),
        signal_json(1705670123457, asset="<img src=x onerror=alert(1)>", note='é€ \u2028 "q" \\').decode(),
        '{"type": "ARBITRAGE_OPPORTUNITY",  "id": "x", "buy_price": 1.10e3, "size": null}',
    ]

    async def body() -> None:
        browser = await connected_browser()
        layer = get_channel_layer()
        assert layer is not None
        for payload in payloads:
            await layer.group_send(PROCESS_SIGNALS_GROUP, {"type": SIGNAL_EVENT, "data": payload})
        for payload in payloads:
            assert await browser.receive_from(timeout=5) == payload
        assert await browser.receive_nothing(timeout=0.3)
        await browser.disconnect()

    run(body)


def test_what_a_browser_sends_is_ignored(redis_server: EmbeddedRedis) -> None:
    async def body() -> None:
        browser = await connected_browser()
        await browser.send_to(text_data='{"subscribe": "everything"}')
        assert await browser.receive_nothing(timeout=0.3)
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_send(PROCESS_SIGNALS_GROUP, {"type": SIGNAL_EVENT, "data": "{}"})
        assert await browser.receive_from(timeout=5) == "{}"
        await browser.disconnect()

    run(body)
