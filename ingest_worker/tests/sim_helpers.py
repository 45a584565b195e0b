"""Helpers shared by the `test_sim_*` files: a simulator on free ports, HTTP and WebSocket clients.

No tests here. Everything runs on real loopback sockets; the simulator runs in
the test's own event loop (uvloop, as in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from ingest_worker.sim.server import DEFAULT_PORTS, ExchangeSimulator, SimConfig
from ingest_worker.venues import VENUES
from ingest_worker.venues.base import VenueParser
from ingest_worker.venues.declaration import Venue
from signals_app.contracts.symbols import SymbolTable

TEST_TIMEOUT_S = 15.0


def run(coroutine_function: Callable[[], Coroutine[Any, Any, None]], timeout: float = TEST_TIMEOUT_S) -> None:
    """Run an async test body on uvloop, failing it (not hanging) after `timeout` seconds."""

    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await coroutine_function()

    uvloop.run(bounded())


def config(**overrides: Any) -> SimConfig:
    """A simulator on free loopback ports, with random dislocations off so that tests decide."""
    values: dict[str, Any] = {
        "ports": dict.fromkeys(DEFAULT_PORTS, 0),
        "venues": ("binance", "coinbase"),  # the tests that need others name them
        "auto_dislocations": False,
        "rate": 200.0,
    }
    values.update(overrides)
    return SimConfig(**values)


@contextlib.asynccontextmanager
async def simulator(**overrides: Any) -> AsyncIterator[ExchangeSimulator]:
    sim = ExchangeSimulator(config(**overrides))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


class PingCountingConnection(ClientConnection):
    """A client connection that counts the server's pings (websockets answers them by itself).

    Use with `connect(url, create_connection=PingCountingConnection)`.
    """

    pings = 0

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings += 1
        super().process_event(event)


def http_url(ws_url: str) -> str:
    return "http://" + ws_url.removeprefix("ws://")


async def http(url: str, method: str = "GET") -> tuple[int, Any]:
    """(status, JSON body) of a plain HTTP/1.1 request; asyncio streams, so the server may share the loop."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    content_type = next(
        (line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"content-type:")),
        b"",
    )
    return status, orjson.loads(body) if content_type == b"application/json" else body.decode()


async def frames_for(ws: ClientConnection, seconds: float) -> list[tuple[str, int]]:
    """Every frame received during `seconds` (or until the connection closes), with its receive time in ns."""
    frames: list[tuple[str, int]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(ws.recv(), left)
        except (TimeoutError, ConnectionClosed):
            break
        frames.append((message if isinstance(message, str) else message.decode(), time.time_ns()))
    return frames


async def frames_until(
    ws: ClientConnection, predicate: Callable[[str], bool], within_s: float = 10.0
) -> list[tuple[str, int]]:
    """Every frame received up to and including the first for which `predicate` holds, with receive times."""
    frames: list[tuple[str, int]] = []
    async with asyncio.timeout(within_s):
        while True:
            message = await ws.recv()
            text = message if isinstance(message, str) else message.decode()
            frames.append((text, time.time_ns()))
            if predicate(text):
                return frames


async def recv_until(ws: ClientConnection, predicate: Callable[[str], bool], within_s: float = 5.0) -> str:
    """The first frame for which `predicate` holds (others are skipped)."""
    async with asyncio.timeout(within_s):
        while True:
            message = await ws.recv()
            text = message if isinstance(message, str) else message.decode()
            if predicate(text):
                return text


async def until_closed(ws: ClientConnection, within_s: float = 2.0) -> None:
    """Read (and drop) frames until the server closes the connection; TimeoutError if it does not."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(within_s):
            while True:
                await ws.recv()


async def live_client_frames(
    sim: ExchangeSimulator,
    name: str,
    seconds: float,
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, int]]]:
    """The venue's market list from the simulator, then `seconds` of frames on a connection opened
    and subscribed as its live client does (its declaration's URL and messages; `edit` may change
    each message first)."""
    venue = VENUES[name]
    _, listed = await http(http_url(sim.urls[name]) + venue.markets_path)
    markets = venue.read_markets(listed)
    async with connect(venue.connect_url(sim.urls[name])) as ws:
        for request in venue.subscribe_messages(native for native, _, _ in markets):
            await ws.send(orjson.dumps(edit(request) if edit is not None else request).decode())
        frames = await frames_for(ws, seconds)
    return markets, frames


async def subscribed_parser(
    sim: ExchangeSimulator, venue: Venue, natives: list[str], ws: ClientConnection
) -> VenueParser:
    """The venue's parser knowing only the markets the simulator lists, after `ws` sent the live
    client's subscriptions of `natives` (VENUE.subscribe_messages)."""
    _, answer = await http(http_url(sim.urls[venue.name]) + venue.markets_path)
    parser = venue.parser(SymbolTable(venue.read_markets(answer)))  # strict: only listed markets are known
    for request in venue.subscribe_messages(natives):
        await ws.send(orjson.dumps(request).decode())
    return parser
