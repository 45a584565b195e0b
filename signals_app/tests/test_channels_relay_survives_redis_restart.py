"""Redis going away never ends the live feed: the relay reconnects, browsers are told to come back, and
nothing that history still holds is missed by a browser that stayed connected."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from channels.testing import WebsocketCommunicator

from arbsite.redis_server import EmbeddedRedis
from signals_app import relay as relay_module
from signals_app.consumers import TRY_AGAIN_LATER
from signals_app.tests.channels_helpers import (
    GROUP_KEY,
    browser,
    connected_browser,
    eventually,
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


def test_the_relay_forwards_again_after_redis_stops_and_restarts(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    before = signal_json(1705670123456)

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        page = await connected_browser()
        await publish(client, before, history=True)
        assert (await page.receive_from(timeout=5)).encode() == before
        relay = relay_module.current_relay()
        assert relay is not None

        await asyncio.to_thread(redis_server.stop)
        # The browser's socket is closed with "try again later": it reconnects and refills from history.
        closed = await page.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": TRY_AGAIN_LATER}
        await eventually(lambda: _false_when(relay.subscribed.is_set()), "the relay sees Redis gone")
        await asyncio.sleep(0.5)  # a few failed reconnection attempts
        assert relay_module.current_relay() is relay  # the same relay, still running
        assert relay.running_in(asyncio.get_running_loop())

        await asyncio.to_thread(redis_server.start)  # same port, empty
        await asyncio.wait_for(relay.subscribed.wait(), 10)
        client = aioredis.Redis.from_url(redis_server.url)
        page, published = await reconnect_until_live(client)
        # From then on it gets every signal, live.
        for i in range(5):
            payload = signal_json(1705670140000 + i, status="update", opened_at=1705670123456)
            await publish(client, payload, history=True)
            assert (await page.receive_from(timeout=5)).encode() == payload
        assert relay.relayed >= 1 + len(published) + 5
        await page.disconnect()
        await client.aclose()

    with caplog.at_level(logging.INFO, logger="signals_app.relay"):
        run(body)
    messages = [record.getMessage() for record in caplog.records if record.name == "signals_app.relay"]
    assert any(message.startswith("lost Redis") for message in messages), messages
    assert any("Redis back after" in message for message in messages), messages


async def reconnect_until_live(client: aioredis.Redis) -> tuple[WebsocketCommunicator, list[bytes]]:
    """What the dashboard does after its socket closed: reconnect (with backoff) until signals come through.

    With redis-py 8.1's RESP3 default, pooled channel-layer connections that Redis closed are
    not replaced before use (redis-py PR #4260), so the first uses after a restart can fail and
    close a socket or two more; a browser that reconnects gets past them.
    """
    published: list[bytes] = []
    for attempt in range(10):
        communicator = browser()
        connected, _ = await communicator.connect(timeout=5)
        if connected:
            payload = signal_json(1705670130000 + attempt)
            await publish(client, payload, history=True)
            published.append(payload)
            frame = await communicator.receive_output(timeout=5)
            if frame["type"] == "websocket.send":
                assert frame["text"].encode() in published
                return communicator, published
            assert frame == {"type": "websocket.close", "code": TRY_AGAIN_LATER}
        await asyncio.sleep(0.1 * 2**attempt)
    raise AssertionError("no signal reached a reconnecting browser after Redis restarted")


def test_a_connected_browser_misses_nothing_history_holds_when_the_relay_reconnects(
    redis_server: EmbeddedRedis,
) -> None:
    # The relay's connection drops while the browser's stays up, and Redis forgets the group (as a
    # restart without persistence does): the engine's signals published meanwhile still arrive,
    # once each, in order, and so does what comes after.
    first = signal_json(1705670123456)
    missed = [signal_json(1705670124000 + i, status="update", opened_at=1705670123456) for i in range(3)]
    live = signal_json(1705670125000, status="close", opened_at=1705670123456)

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        page = await connected_browser()
        relay = relay_module.current_relay()
        assert relay is not None
        relay.backoff_first_s = 1.0  # time enough to publish while it is away
        await publish(client, first, history=True)
        assert (await page.receive_from(timeout=5)).encode() == first

        await client.delete(GROUP_KEY)
        await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await eventually(lambda: _false_when(relay.subscribed.is_set()), "the relay sees its connection gone")
        assert await subscribers(client) == 0
        for payload in missed:
            await publish(client, payload, history=True)  # nobody subscribed: pub/sub alone loses these

        await asyncio.wait_for(relay.subscribed.wait(), 10)
        await publish(client, live, history=True)
        received = [(await page.receive_from(timeout=5)).encode() for _ in range(4)]
        assert received == [*missed, live]
        assert await page.receive_nothing(timeout=0.3)  # no repeats of `first` or of the missed ones
        assert relay.caught_up == 3
        await page.disconnect()
        await client.aclose()

    run(body)


async def _false_when(value: bool) -> bool:
    return not value
