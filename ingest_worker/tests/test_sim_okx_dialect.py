"""The OKX v5 dialect over real sockets: what our live OKX client sends is answered as OKX does,
and every push parses whole with the OKX parser."""

from __future__ import annotations

import asyncio
import time

import orjson
from websockets.asyncio.client import connect

from ingest_worker.tests.sim_helpers import (
    frames_for,
    http,
    http_url,
    recv_until,
    run,
    simulator,
    until_closed,
)
from ingest_worker.venues import okx as okx_venue
from ingest_worker.venues.okx import OkxParser
from signals_app.contracts.symbols import SymbolTable

TICKER_FIELDS = [
    *("instType", "instId", "last", "lastSz", "askPx", "askSz", "bidPx", "bidSz", "open24h", "high24h"),
    *("low24h", "sodUtc0", "sodUtc8", "volCcy24h", "vol24h", "ts"),
]
BOOK_FIELDS = ["asks", "bids", "ts", "checksum", "prevSeqId", "seqId"]  # as OKX's newer `books` pushes


def test_instruments_list_the_spot_markets_and_our_market_list_reader_takes_them() -> None:
    async def body() -> None:
        async with simulator(venues=("okx",)) as sim:
            base = http_url(sim.urls["okx"])
            status, answer = await http(base + okx_venue.MARKETS_PATH)
            assert status == 200
            assert (answer["code"], answer["msg"]) == ("0", "")
            assert okx_venue.markets_from_rest(answer) == [
                ("BTC-USDT", "BTC", "USDT"),
                ("ETH-USDT", "ETH", "USDT"),
                ("SOL-USDT", "SOL", "USDT"),
                ("XRP-USDT", "XRP", "USDT"),
                ("ADA-USDT", "ADA", "USDT"),
                ("USDC-USDT", "USDC", "USDT"),
            ]
            btc = answer["data"][0]
            assert (btc["instType"], btc["state"], btc["tickSz"], btc["lotSz"]) == ("SPOT", "live", "0.01", "0.00001")
            status, swaps = await http(base + "/api/v5/public/instruments?instType=SWAP")
            assert (status, swaps["data"]) == (200, [])
            status, error = await http(base + "/api/v5/public/instruments")
            assert (status, error["code"]) == (400, "50014")

    run(body)


def test_the_live_clients_subscription_is_answered_per_argument_and_every_push_parses_with_zero_drops() -> None:
    async def body() -> None:
        async with simulator(venues=("okx",), rate=500) as sim:
            _, answer = await http(http_url(sim.urls["okx"]) + okx_venue.MARKETS_PATH)
            markets = okx_venue.markets_from_rest(answer)
            parser = OkxParser(SymbolTable(markets))  # strict: only listed markets are known
            requests = okx_venue.subscribe_messages(native for native, _, _ in markets)
            async with connect(okx_venue.connect_url(sim.urls["okx"])) as ws:
                for request in requests:
                    await ws.send(orjson.dumps(request).decode())
                frames = await frames_for(ws, 1.0)
                await ws.send("ping")
                assert await recv_until(ws, lambda text: text == "pong") == "pong"
            events = [orjson.loads(frame) for frame, _ in frames if frame.startswith('{"event"')]
            args = [arg for request in requests for arg in request["args"]]
            assert [event["arg"] for event in events] == args
            assert {event["event"] for event in events} == {"subscribe"}
            assert all(list(event) == ["event", "arg", "connId"] for event in events)
            channels = set()
            booked: set[str] = set()
            for frame, recv_ns in frames:
                ticks = parser.parse(frame, recv_ns)
                if frame.startswith('{"arg"'):
                    push = orjson.loads(frame)
                    channel, inst = push["arg"]["channel"], push["arg"]["instId"]
                    channels.add(channel)
                    if channel == "tickers":
                        assert list(push["data"][0]) == TICKER_FIELDS
                        # The book sets the top: a ticker quotes only a market still without a book.
                        assert bool(ticks) == (inst not in booked)
                    elif channel == "books":
                        booked.add(inst)
                        assert list(push["data"][0]) == BOOK_FIELDS
                        if push["action"] == "snapshot":
                            assert [tick.type for tick in ticks] == ["book"]
                    else:
                        assert ticks
            assert channels == {"books", "tickers", "trades"}
            assert booked == {native for native, _, _ in markets}
            stats = parser.stats.as_dict()
            assert stats["dropped"] == {}
            assert stats["control"] == {"subscribe": len(args)}
            assert {tick.symbol for frame, recv_ns in frames for tick in parser.parse(frame, recv_ns)} == {
                "BTC/USDT",
                "ETH/USDT",
                "SOL/USDT",
                "XRP/USDT",
                "ADA/USDT",
                "USDC/USDT",
            }

    run(body)


def test_bad_requests_get_okx_error_events_and_the_connection_stays_open() -> None:
    async def body() -> None:
        async with simulator(venues=("okx",), rate=0) as sim:
            parser = OkxParser()
            async with connect(okx_venue.connect_url(sim.urls["okx"])) as ws:
                for request, code in (
                    ("not json", "60012"),
                    ('{"op":"hello","args":[]}', "60012"),
                    ('{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-EUR"}]}', "60018"),
                    ('{"op":"subscribe","args":[{"channel":"books5","instId":"BTC-USDT"}]}', "60018"),
                ):
                    await ws.send(request)
                    answer = orjson.loads(await ws.recv())
                    assert list(answer) == ["event", "code", "msg", "connId"]
                    assert (answer["event"], answer["code"]) == ("error", code)
                    assert parser.parse(orjson.dumps(answer), 0) == []
                await ws.send('{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}')
                assert orjson.loads(await ws.recv())["event"] == "subscribe"
                await ws.send('{"op":"unsubscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}')
                answer = orjson.loads(await recv_until(ws, lambda text: '"event"' in text))
                assert answer["event"] == "unsubscribe"
            assert parser.stats.control == {"error": 4}

    run(body)


def test_dislocations_may_pair_okx_with_any_configured_venue() -> None:
    async def body() -> None:
        async with simulator(venues=("binance", "coinbase", "okx")) as sim:
            status, answer = await http(
                http_url(sim.urls["okx"]) + "/sim/dislocate?asset=ETH&cheap=okx&rich=coinbase&net_pct=1.2&seconds=5"
            )
            assert status == 200
            assert (answer["dislocation"]["cheap"], answer["dislocation"]["rich"]) == ("okx", "coinbase")
            status, answer = await http(http_url(sim.urls["binance"]) + "/sim/silence?venue=okx&seconds=1")
            assert (status, answer["silenced"]) == (200, ["okx"])
            status, answer = await http(http_url(sim.urls["binance"]) + "/sim/status")
            assert list(answer["venues"]) == ["binance", "coinbase", "okx"]
            assert answer["model"]["fees_pct"]["okx"] == 0.1

    run(body)


def test_a_client_that_sends_nothing_is_closed_as_okx_does_and_one_that_pings_stays() -> None:
    async def body() -> None:
        async with simulator(venues=("okx",), okx_idle_timeout_s=0.6) as sim:
            url = okx_venue.connect_url(sim.urls["okx"])
            subscribe = orjson.dumps(okx_venue.subscribe_messages(["BTC-USDT"])[0]).decode()
            # WebSocket ping frames (every 0.1 s here) are not data: OKX wants its text `ping`.
            async with connect(url, ping_interval=0.1) as quiet, connect(url) as pinging:
                await quiet.send(subscribe)
                await pinging.send(subscribe)
                started = time.monotonic()
                pongs = 0
                while time.monotonic() - started < 2.0:  # three idle timeouts
                    await asyncio.sleep(0.2)
                    await pinging.send(okx_venue.KEEPALIVE.message)
                    await recv_until(pinging, lambda text: text == "pong")
                    pongs += 1
                await until_closed(quiet, within_s=0.1)
                assert quiet.close_code == 4004
                assert quiet.close_reason == "No data received in 0.6s."
                assert pinging.close_code is None
                assert pongs >= 8
            okx = sim.venues["okx"].status(time.time_ns())
            assert okx["idle_closes"] == 1

    run(body)
