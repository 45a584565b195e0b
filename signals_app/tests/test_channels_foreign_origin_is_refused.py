"""Only pages served from one of ALLOWED_HOSTS may open the live feed: a foreign Origin is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from arbsite.redis_server import EmbeddedRedis
from signals_app.tests.channels_helpers import GROUP_KEY, browser, private_redis, run


@pytest.fixture
def redis_server(settings: Any) -> Iterator[EmbeddedRedis]:
    with private_redis(settings) as server:
        yield server


@pytest.mark.parametrize(
    "origin",
    [
        b"http://evil.example",
        b"http://127.0.0.1.evil.example:3000",
        b"https://localhost.attacker.net",
        b"null",  # a page opened from a file, or a sandboxed frame
        None,  # no Origin at all: not a browser page of ours
    ],
)
def test_a_foreign_or_missing_origin_is_refused(redis_server: EmbeddedRedis, origin: bytes | None) -> None:
    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        communicator = browser(origin)
        connected, _code = await communicator.connect(timeout=5)
        assert not connected
        assert await client.zcard(GROUP_KEY) == 0  # it never joined the group
        await client.aclose()

    run(body)


@pytest.mark.parametrize("origin", [b"http://127.0.0.1:3000", b"http://localhost:3000", b"http://127.0.0.1:8000"])
def test_an_origin_of_an_allowed_host_connects(redis_server: EmbeddedRedis, origin: bytes) -> None:
    async def body() -> None:
        communicator = browser(origin)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.disconnect()

    run(body)
