"""At a benchmark rate (20,000 quote updates per second) the simulator keeps streaming to two clients per
venue, the same frames in the same order to each. Counted in frames, not timed: speed is bench/pipeline.py's."""

from __future__ import annotations

import asyncio

import orjson
from websockets.asyncio.client import ClientConnection, connect

from ingest_worker.tests.sim_helpers import run, simulator
from ingest_worker.venues import binance as binance_venue
from ingest_worker.venues import coinbase as coinbase_venue

RATE = 20_000
NATIVES = ("BTC", "ETH", "SOL", "XRP", "ADA")


UPDATES = 2000  # top-of-book frames compared per client: a tenth of a second of this rate
SKIPPED = 200  # the first ones, read and left out


def is_update(frame: str) -> bool:
    return '@bookTicker"' in frame or frame.startswith('{"type":"ticker"')


async def first_updates(ws: ClientConnection, count: int, within_s: float = 30.0) -> list[str]:
    """The first `count` top-of-book frames the client receives (how fast they come is the benchmarks' matter)."""
    updates: list[str] = []
    async with asyncio.timeout(within_s):
        while len(updates) < count:
            message = await ws.recv()
            frame = message if isinstance(message, str) else message.decode()
            if is_update(frame):
                updates.append(frame)
    return updates


async def read_until_seen(pair: list[ClientConnection], received: list[list[str]], within_s: float = 30.0) -> None:
    """Extend the updates of the client that joined first until they hold the other's last one."""
    first, second = received
    if second[-1] in set(first):
        earlier, later, ws = second, first, pair[1]
    else:
        earlier, later, ws = first, second, pair[0]
    if later[-1] in set(earlier):
        return
    async with asyncio.timeout(within_s):
        while not earlier or earlier[-1] != later[-1]:
            message = await ws.recv()
            frame = message if isinstance(message, str) else message.decode()
            if is_update(frame):
                earlier.append(frame)


def test_twenty_thousand_updates_a_second_reach_every_client() -> None:
    async def body() -> None:
        async with simulator(rate=RATE) as sim:
            # Every market of each venue, the stablecoin reference market included.
            streams = "/".join(binance_venue.stream_names([f"{asset}USDT" for asset in NATIVES] + ["USDCUSDT"]))
            products = [f"{asset}-USD" for asset in NATIVES] + ["USDT-USD"]
            subscribe = orjson.dumps(coinbase_venue.subscribe_message(products)).decode()
            clients = [await connect(f"{sim.urls['binance']}/stream?streams={streams}", max_queue=None) for _ in "ab"]
            for _ in "ab":
                ws = await connect(sim.urls["coinbase"] + "/", max_queue=None)
                await ws.send(subscribe)
                clients.append(ws)
            # At this rate the simulator keeps streaming to all four connections (how many updates per
            # second reach them depends on the machine: bench/pipeline.py measures it).
            # The first updates of a subscription include its own snapshots (a Coinbase subscriber gets
            # each product's current ticker, a frame the other client had earlier): left out.
            streams_read = await asyncio.gather(*(first_updates(ws, SKIPPED + UPDATES) for ws in clients))
            received = [updates[SKIPPED:] for updates in streams_read]
            # The clients of a venue join one after the other (over a second apart on a loaded
            # machine): the one that joined first reads on until it has seen what the other read.
            for index in (0, 2):
                await read_until_seen(clients[index : index + 2], received[index : index + 2])
            # The same frames, in the same order, to every client of a venue.
            for first, second in (received[0:2], received[2:4]):
                common = set(first) & set(second)
                assert len(common) > UPDATES // 2  # both joined within a moment of each other
                assert [frame for frame in first if frame in common] == [frame for frame in second if frame in common]
            for ws in clients:
                await ws.close()

    # A guard against a hang, not a time limit: four clients reading 20k updates/s on a 2-core
    # machine under load took 15-20 s end to end (connects, the later joiner's catch-up, closes).
    run(body, timeout=60.0)
