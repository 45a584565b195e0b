"""Helpers shared by the `test_channels_*` files: a private Redis behind the channel layer, signals, clients.

No tests here. Each test body runs in its own event loop (`run`), as daphne runs
the consumers and the relay in one; the relay started by that loop is stopped
at its end. Redis is always one of our own on a free port, never the machine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import orjson
import redis.asyncio as aioredis
from channels.testing import WebsocketCommunicator

from arbsite.asgi import application
from arbsite.redis_server import EmbeddedRedis
from signals_app import relay as relay_module
from signals_app.contracts.groups import PROCESS_SIGNALS_GROUP
from signals_app.contracts.keys import SIGNALS_CHANNEL, SIGNALS_HISTORY
from signals_app.contracts.signal import SIGNAL_TYPE, action, signal_id

TEST_TIMEOUT_S = 20.0
ALLOWED_ORIGIN = b"http://127.0.0.1:3000"
GROUP_KEY = f"asgi:group:{PROCESS_SIGNALS_GROUP}".encode()  # where channels_redis keeps the group's members


@contextlib.contextmanager
def private_redis(settings: Any) -> Iterator[EmbeddedRedis]:
    """An EmbeddedRedis, with REDIS_URL and the channel layer pointed at it for this test.

    The channel layer keeps the project's configuration (settings.CHANNEL_LAYERS) but for the
    address, so that the tests see what production does.
    """
    server = EmbeddedRedis().start()
    settings.REDIS_URL = server.url
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    config = layers["default"].setdefault("CONFIG", {})
    config["hosts"] = [
        {**host, "address": server.url} if isinstance(host, dict) else server.url
        for host in config.get("hosts") or [server.url]
    ]
    settings.CHANNEL_LAYERS = layers
    try:
        yield server
    finally:
        server.cleanup()


def run(body: Callable[[], Coroutine[Any, Any, None]], timeout: float = TEST_TIMEOUT_S) -> None:
    """Run an async test body in a fresh event loop, failing it (not hanging) after `timeout` seconds."""

    async def bounded() -> None:
        try:
            async with asyncio.timeout(timeout):
                await body()
        finally:
            await relay_module.stop_relay()

    asyncio.run(bounded())


def browser(origin: bytes | None = ALLOWED_ORIGIN) -> WebsocketCommunicator:
    """A WebSocket client of `/ws/signals/` through the whole ASGI application, as daphne would call it."""
    headers = [(b"host", b"127.0.0.1:3000")]
    if origin is not None:
        headers.append((b"origin", origin))
    return WebsocketCommunicator(application, "/ws/signals/", headers=headers)


async def connected_browser() -> WebsocketCommunicator:
    communicator = browser()
    connected, _ = await communicator.connect(timeout=5)
    assert connected, "an allowed Origin must connect"
    return communicator


def signal_json(timestamp: int, status: str = "open", **fields: Any) -> bytes:
    """A signal as the engine publishes it (orjson, the contract's key order)."""
    opened_at = fields.pop("opened_at", timestamp)
    signal: dict[str, Any] = {
        "type": SIGNAL_TYPE,
        "id": signal_id("BTC", "binance", "coinbase", opened_at),
        "status": status,
        "action": action("binance", "coinbase"),
        "symbol": "BTC/USDT",
        "asset": "BTC",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "BTC/USDT",
        "sell_symbol": "BTC/USD",
        "buy_price": 45000.0,
        "sell_price": 45300.0,
        "spread_pct": 0.6667,
        "net_spread_pct": 0.4655,
        "size": 0.5,
        "profit_per_unit": 209.7,
        "profit_estimate": 104.85,
        "fees_pct": {"binance": 0.1, "coinbase": 0.1},
        "opened_at": opened_at,
        "duration_ms": timestamp - opened_at,
        "peak_net_spread_pct": 0.4655,
        "tick_recv_ns": timestamp * 1_000_000 - 1000,
        "timestamp": timestamp,
    }
    signal.update(fields)
    return orjson.dumps(signal)


async def publish(client: aioredis.Redis, payload: bytes, history: bool = False) -> None:
    """PUBLISH on arbitrage:signals as the engine does (and ZADD to history when `history`)."""
    if history:
        await client.zadd(SIGNALS_HISTORY, {payload: orjson.loads(payload)["timestamp"]})
    await client.publish(SIGNALS_CHANNEL, payload)


async def subscribers(client: aioredis.Redis) -> int:
    """How many Redis subscriptions arbitrage:signals has."""
    counts = await client.pubsub_numsub(SIGNALS_CHANNEL)
    return int(counts[0][1])


async def eventually(condition: Callable[[], Coroutine[Any, Any, bool]], what: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)
