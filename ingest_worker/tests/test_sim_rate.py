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


async def read_updates(ws: ClientConnection, into: list[str]) -> None:
    """Append every top-of-book frame the client receives to `into`, until cancelled.

    Every client reads without pause until the comparison is complete: the simulator has no backpressure
    (as a real exchange), so a client that stopped reading while another caught up would pile up the
    stream in the simulator's send buffer and be cut off as too slow."""
    while True:
        message = await ws.recv()
        frame = message if isinstance(message, str) else message.decode()
        if is_update(frame):
            into.append(frame)


def window_complete(first: list[str], second: list[str]) -> bool:
    """Both clients of a venue have read their window, and the one that joined first has also read the
    other's last window frame (the clients join one after the other, over a second apart on a loaded machine)."""
    if len(first) < SKIPPED + UPDATES or len(second) < SKIPPED + UPDATES:
        return False
    last_second, last_first = second[SKIPPED + UPDATES - 1], first[SKIPPED + UPDATES - 1]
    return last_second in set(first) or last_first in set(second)


async def until_windows_complete(received: list[list[str]], readers: list[asyncio.Task[None]], within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while not all(window_complete(*received[index : index + 2]) for index in (0, 2)):
            for reader in readers:
                if reader.done():
                    reader.result()  # a reader that ended (the connection closed) fails the test with its cause
            await asyncio.sleep(0.05)


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
            received: list[list[str]] = [[] for _ in clients]
            readers = [asyncio.create_task(read_updates(ws, into)) for ws, into in zip(clients, received, strict=True)]
            try:
                await until_windows_complete(received, readers, within_s=45.0)
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
            # The first updates of a subscription include its own snapshots (a Coinbase subscriber gets
            # each product's current ticker, a frame the other client had earlier): left out.
            received = [updates[SKIPPED:] for updates in received]
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
