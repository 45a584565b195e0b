"""The control endpoints act on the running feeds: dislocate, drop, silence, resume, status."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from ingest_worker.sim.model import net_spread_pct
from ingest_worker.tests.sim_helpers import (
    PingCountingConnection,
    frames_for,
    http,
    http_url,
    recv_until,
    run,
    simulator,
    until_closed,
)
from ingest_worker.venues import binance as binance_venue
from ingest_worker.venues import coinbase as coinbase_venue
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser

ASSETS = ("BTC", "ETH", "SOL", "XRP", "ADA")
FEE_PCT = {"binance": 0.1, "coinbase": 0.6}


# The test clients do not read all the time; an unbounded queue keeps websockets from pausing
# the socket, which would leave the server's close frame unread behind the data.
async def binance_client(url: str, **kwargs: object) -> ClientConnection:
    streams = "/".join(binance_venue.stream_names(f"{asset}USDT" for asset in ASSETS))
    return await connect(f"{url}/stream?streams={streams}", max_queue=None, **kwargs)  # type: ignore[arg-type]


async def coinbase_client(url: str, **kwargs: object) -> ClientConnection:
    ws = await connect(url + "/", max_queue=None, **kwargs)  # type: ignore[arg-type]
    # The quote channels only: the readers here start mid-stream, where a level2 book has no snapshot.
    request = coinbase_venue.subscribe_message(f"{asset}-USD" for asset in ASSETS)
    request["channels"] = [coinbase_venue.CHANNELS["quote"], coinbase_venue.CHANNELS["heartbeat"]]
    await ws.send(orjson.dumps(request).decode())
    await recv_until(ws, lambda text: '"subscriptions"' in text)
    return ws


def test_status_reports_venues_model_and_dislocations() -> None:
    async def body() -> None:
        async with simulator(seed=4) as sim:
            base = http_url(sim.urls["coinbase"])
            status, answer = await http(base + "/sim/status")
            assert status == 200
            assert answer["mode"] == "model"
            assert answer["venues"]["binance"]["url"] == sim.urls["binance"]
            assert answer["model"]["seed"] == 4
            assert answer["model"]["assets"] == list(ASSETS)
            assert answer["model"]["dislocations"] == []
            status, _ = await http(base + "/sim/dislocate?asset=ETH&cheap=coinbase&rich=binance&net_pct=0.9&seconds=5")
            assert status == 200
            _, answer = await http(http_url(sim.urls["binance"]) + "/sim/status")  # either port controls all
            (event,) = answer["model"]["dislocations"]
            assert (event["asset"], event["cheap"], event["rich"], event["net_pct"]) == (
                "ETH",
                "coinbase",
                "binance",
                0.9,
            )

    run(body)


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/sim/dislocate?asset=BTC&cheap=binance", "GET", 400),
        ("/sim/dislocate?asset=DOGE&cheap=binance&rich=coinbase", "GET", 400),
        ("/sim/dislocate?asset=BTC&cheap=binance&rich=coinbase&net_pct=lots", "GET", 400),
        ("/sim/silence?seconds=-1", "GET", 400),
        ("/sim/drop?venue=kraken", "GET", 400),
        ("/sim/drop?mode=gently", "GET", 400),
        ("/sim/fault?venue=binance&market=BTCUSDT&kind=bad_level", "GET", 400),  # Binance's are gap and crossed
        ("/sim/fault?venue=binance&market=DOGEUSDT&kind=gap", "GET", 400),
        ("/sim/fault?venue=coinbase", "POST", 400),
        ("/sim/explode", "GET", 404),
        ("/sim/status", "PUT", 405),
        ("/sim/status", "POST", 200),
        ("/elsewhere", "GET", 404),
    ],
)
def test_control_requests_are_checked_and_answered_in_json(path: str, method: str, status: int) -> None:
    async def body() -> None:
        async with simulator() as sim:
            got, answer = await http(http_url(sim.urls["binance"]) + path, method)
            assert got == status
            assert isinstance(answer, dict)
            if status != 200:
                assert "error" in answer
            assert sim.model is not None
            assert sim.model.dislocations == {}

    run(body)


def test_a_forced_dislocation_shows_in_the_quotes_net_of_fees_both_ways() -> None:
    async def body() -> None:
        async with simulator(rate=300, seed=1) as sim:
            binance = await binance_client(sim.urls["binance"])
            coinbase = await coinbase_client(sim.urls["coinbase"])
            base = http_url(sim.urls["binance"])
            for query in (
                "asset=BTC&cheap=binance&rich=coinbase&net_pct=1.0&seconds=1.2",
                "asset=SOL&cheap=coinbase&rich=binance&net_pct=1.3&seconds=1.2",
            ):
                status, answer = await http(f"{base}/sim/dislocate?{query}")
                assert status == 200
                assert answer["ok"] is True
            book = await latest_quotes(binance, coinbase, 0.5)
            assert net_of(book, "BTC", "binance", "coinbase") == pytest.approx(1.0, abs=0.05)
            assert net_of(book, "SOL", "coinbase", "binance") == pytest.approx(1.3, abs=0.05)
            # The others stay far from a signal; and once over, so do these.
            assert net_of(book, "ETH", "binance", "coinbase") < -0.5
            await asyncio.sleep(0.8)
            book = await latest_quotes(binance, coinbase, 0.2)
            assert net_of(book, "BTC", "binance", "coinbase") < -0.5
            await binance.close()
            await coinbase.close()

    run(body)


Book = dict[tuple[str, str], tuple[float, float]]  # (exchange, asset) -> (bid, ask)


def net_of(book: Book, asset: str, buy_on: str, sell_on: str) -> float:
    """Net spread (percent, both taker fees paid) of buying at one venue's ask and selling at the other's bid."""
    return net_spread_pct(book[sell_on, asset][0], book[buy_on, asset][1], FEE_PCT[buy_on], FEE_PCT[sell_on])


async def latest_quotes(binance: ClientConnection, coinbase: ClientConnection, seconds: float) -> Book:
    """The last bid and ask per (exchange, asset) received in `seconds` on both connections, via our parsers."""
    book: Book = {}
    parsers = {"binance": BinanceParser(), "coinbase": CoinbaseParser()}
    received = await asyncio.gather(frames_for(binance, seconds), frames_for(coinbase, seconds))
    for name, frames in zip(("binance", "coinbase"), received, strict=True):
        for frame, recv_ns in frames:
            for tick in parsers[name].parse(frame, recv_ns):
                if tick.bid is not None and tick.ask is not None:
                    book[name, tick.symbol.partition("/")[0]] = (tick.bid, tick.ask)
    for parser in parsers.values():
        assert parser.stats.as_dict()["dropped"] == {}
    return book


@pytest.mark.parametrize(("mode", "code"), [("close", 1001), ("abort", 1006)])
def test_drop_closes_every_connection_now(mode: str, code: int) -> None:
    async def body() -> None:
        async with simulator(rate=100) as sim:
            clients = [
                await binance_client(sim.urls["binance"]),
                await binance_client(sim.urls["binance"]),
                await coinbase_client(sim.urls["coinbase"]),
            ]
            status, answer = await http(f"{http_url(sim.urls['coinbase'])}/sim/drop?mode={mode}")
            assert (status, answer["dropped"]) == (200, {"binance": 2, "coinbase": 1})
            for ws in clients:
                await until_closed(ws)
                assert ws.close_code == code
            # and the venue takes new connections at once
            again = await binance_client(sim.urls["binance"])
            assert await frames_for(again, 0.3)
            await again.close()

    run(body)


def test_drop_of_one_venue_leaves_the_other_connected() -> None:
    async def body() -> None:
        async with simulator(rate=100) as sim:
            binance = await binance_client(sim.urls["binance"])
            coinbase = await coinbase_client(sim.urls["coinbase"])
            _, answer = await http(f"{http_url(sim.urls['binance'])}/sim/drop?venue=coinbase")
            assert answer["dropped"] == {"coinbase": 1}
            await frames_for(coinbase, 0.3)
            assert coinbase.state is State.CLOSED
            assert await frames_for(binance, 0.3)
            await binance.close()

    run(body)


def test_silence_stops_every_data_frame_but_not_the_connection_or_its_pings() -> None:
    async def body() -> None:
        async with simulator(rate=300, ping_interval=0.1) as sim:
            base = http_url(sim.urls["binance"])
            binance = await binance_client(sim.urls["binance"], create_connection=PingCountingConnection)
            coinbase = await coinbase_client(sim.urls["coinbase"], create_connection=PingCountingConnection)
            status, answer = await http(f"{base}/sim/silence")  # every venue, until resumed
            assert (status, answer["silenced"], answer["seconds"]) == (200, ["binance", "coinbase"], None)
            await asyncio.gather(frames_for(binance, 0.1), frames_for(coinbase, 0.1))  # in flight before it
            pings_before = [binance.pings, coinbase.pings]  # type: ignore[attr-defined]
            binance_frames, coinbase_frames = await asyncio.gather(frames_for(binance, 1.1), frames_for(coinbase, 1.1))
            assert binance_frames == []  # no quotes, no trades
            assert coinbase_frames == []  # no tickers, no heartbeats
            assert binance.state is State.OPEN
            assert coinbase.state is State.OPEN
            assert binance.pings >= pings_before[0] + 5  # type: ignore[attr-defined]
            assert coinbase.pings >= pings_before[1] + 5  # type: ignore[attr-defined]
            _, answer = await http(f"{base}/sim/status")
            assert answer["venues"]["coinbase"]["silent_for_s"] == "until resumed"
            status, answer = await http(f"{base}/sim/resume")
            assert answer["resumed"] == ["binance", "coinbase"]
            assert await frames_for(binance, 0.2)
            assert await frames_for(coinbase, 0.2)
            await binance.close()
            await coinbase.close()

    run(body)


def test_a_timed_silence_of_one_venue_ends_by_itself() -> None:
    async def body() -> None:
        async with simulator(rate=300) as sim:
            binance = await binance_client(sim.urls["binance"])
            coinbase = await coinbase_client(sim.urls["coinbase"])
            _, answer = await http(f"{http_url(sim.urls['coinbase'])}/sim/silence?venue=binance&seconds=0.6")
            assert (answer["silenced"], answer["seconds"]) == (["binance"], 0.6)
            await frames_for(binance, 0.05)
            quiet, talking = await asyncio.gather(frames_for(binance, 0.4), frames_for(coinbase, 0.4))
            assert quiet == []
            assert talking
            await asyncio.sleep(0.3)
            assert await frames_for(binance, 0.3)
            await binance.close()
            await coinbase.close()

    run(body)
