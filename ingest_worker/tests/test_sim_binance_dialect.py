"""The Binance dialect over real sockets: endpoints, requests and answers, frames our parser takes whole."""

from __future__ import annotations

import time

import orjson
from websockets.asyncio.client import connect
from websockets.protocol import State

from ingest_worker.tests.sim_helpers import (
    PingCountingConnection,
    frames_for,
    http,
    http_url,
    recv_until,
    run,
    simulator,
)
from ingest_worker.venues import binance as binance_venue
from ingest_worker.venues.binance import BinanceParser
from signals_app.contracts.symbols import SymbolTable


def test_exchange_info_lists_the_usdt_markets_and_our_market_list_reader_takes_it() -> None:
    async def body() -> None:
        async with simulator() as sim:
            base = http_url(sim.urls["binance"])
            status, info = await http(base + binance_venue.EXCHANGE_INFO_PATH)
            assert status == 200
            assert list(info)[:2] == ["timezone", "serverTime"]
            assert info["timezone"] == "UTC"
            assert binance_venue.markets_from_exchange_info(info) == [
                ("BTCUSDT", "BTC", "USDT"),
                ("ETHUSDT", "ETH", "USDT"),
                ("SOLUSDT", "SOL", "USDT"),
                ("XRPUSDT", "XRP", "USDT"),
                ("ADAUSDT", "ADA", "USDT"),
                ("USDCUSDT", "USDC", "USDT"),  # the stablecoin reference market
            ]
            btc = info["symbols"][0]
            assert btc["status"] == "TRADING"
            assert {
                f["filterType"]: f["tickSize" if f["filterType"] == "PRICE_FILTER" else "stepSize"]
                for f in btc["filters"]
            } == {
                "PRICE_FILTER": "0.01000000",
                "LOT_SIZE": "0.00001000",
            }
            status, one = await http(base + "/api/v3/exchangeInfo?symbol=ETHUSDT")
            assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
            status, error = await http(base + "/api/v3/exchangeInfo?symbol=DOGEUSDT")
            assert (status, error) == (400, {"code": -1121, "msg": "Invalid symbol."})
            status, _ = await http(base + "/api/v3/nothing")
            assert status == 404

    run(body)


def test_combined_stream_url_sends_wrapped_frames_that_parse_into_ticks_with_zero_drops() -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            _, info = await http(http_url(sim.urls["binance"]) + binance_venue.EXCHANGE_INFO_PATH)
            markets = binance_venue.markets_from_exchange_info(info)
            streams = "/".join(binance_venue.stream_names(native for native, _, _ in markets))
            parser = BinanceParser(SymbolTable(markets))  # strict: only listed markets are known
            async with connect(f"{sim.urls['binance']}/stream?streams={streams}") as ws:
                frames = await frames_for(ws, 1.0)
            assert len(frames) > 100
            kinds = set()
            for frame, recv_ns in frames:
                wrapper = orjson.loads(frame)
                assert list(wrapper) == ["stream", "data"]
                market, kind = wrapper["stream"].split("@", 1)
                kinds.add(kind)
                if kind == "depth20@100ms":  # partial depth names no market: its stream does
                    assert list(wrapper["data"]) == ["lastUpdateId", "bids", "asks"]
                else:
                    assert market == wrapper["data"]["s"].lower()
                parser.parse(frame, recv_ns)
            assert kinds == {"bookTicker", "trade", "depth20@100ms"}
            assert parser.stats.as_dict()["dropped"] == {}
            # One tick a frame, but for a book the same as the one before (only the sizes past the top 20 moved).
            assert parser.stats.ticks == len(frames) - parser.stats.ignored.get(binance_venue.BOOK_UNCHANGED, 0)
            assert {tick.symbol for frame, recv_ns in frames for tick in parser.parse(frame, recv_ns)} == {
                "BTC/USDT",
                "ETH/USDT",
                "SOL/USDT",
                "XRP/USDT",
                "ADA/USDT",
                "USDC/USDT",
            }

    run(body)


def test_raw_stream_url_sends_bare_payloads_of_that_stream_only() -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            async with connect(f"{sim.urls['binance']}/ws/ethusdt@bookTicker") as ws:
                frames = await frames_for(ws, 0.5)
            assert frames
            for frame, _ in frames:
                payload = orjson.loads(frame)
                assert list(payload) == ["u", "s", "b", "B", "a", "A"]
                assert payload["s"] == "ETHUSDT"
            update_ids = [orjson.loads(frame)["u"] for frame, _ in frames]
            assert update_ids == sorted(update_ids)
            assert len(set(update_ids)) == len(update_ids)

    run(body)


def test_subscribe_unsubscribe_and_list_are_answered_exactly_as_binance_does() -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            parser = BinanceParser()
            async with connect(f"{sim.urls['binance']}/ws") as ws:
                assert await frames_for(ws, 0.2) == []  # nothing before a subscription
                # The quote and trade streams: on a raw /ws connection a partial-depth frame names no market.
                streams = ["btcusdt@bookTicker", "btcusdt@trade", "solusdt@bookTicker", "solusdt@trade"]
                await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}).decode())
                assert await ws.recv() == '{"result":null,"id":1}'
                frames = await frames_for(ws, 0.5)
                assert {orjson.loads(f)["s"] for f, _ in frames} == {"BTCUSDT", "SOLUSDT"}
                for frame, recv_ns in frames:
                    assert parser.parse(frame, recv_ns)
                await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":3}')
                answer = await recv_until(ws, lambda text: '"id"' in text)
                assert (
                    answer
                    == '{"result":["btcusdt@bookTicker","btcusdt@trade","solusdt@bookTicker","solusdt@trade"],"id":3}'
                )
                await ws.send('{"method":"UNSUBSCRIBE","params":["solusdt@bookTicker","solusdt@trade"],"id":312}')
                assert await recv_until(ws, lambda text: '"id"' in text) == '{"result":null,"id":312}'
                frames = await frames_for(ws, 0.3)
                assert {orjson.loads(f)["s"] for f, _ in frames} == {"BTCUSDT"}  # nothing in flight after the answer
                await ws.send('{"method":"SET_PROPERTY","params":["combined",true],"id":5}')
                assert await recv_until(ws, lambda text: '"id"' in text) == '{"result":null,"id":5}'
                await ws.send('{"method":"GET_PROPERTY","params":["combined"],"id":"abc"}')
                assert await recv_until(ws, lambda text: '"id"' in text) == '{"result":true,"id":"abc"}'
                wrapped = await recv_until(ws, lambda text: text.startswith('{"stream":'))
                assert parser.parse(wrapped, time.time_ns())
            assert parser.stats.as_dict()["dropped"] == {}

    run(body)


def test_bad_requests_get_binance_error_objects_and_the_connection_stays_open() -> None:
    cases = [
        ("not json", '{"error":{"code":3,'),
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"]}', '{"error":{"code":2,"msg":"Invalid request: request ID'),
        ('{"params":[],"id":9}', '{"error":{"code":2,"msg":"Invalid request: missing field `method`"},"id":9}'),
        ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":10}', '{"error":{"code":2,'),
        ('{"method":"SUBSCRIBE","params":[],"id":11,"x":1}', '{"error":{"code":2,"msg":"Invalid request: too many'),
        (
            '{"method":"SET_PROPERTY","params":["colour",true],"id":12}',
            '{"error":{"code":0,"msg":"Unknown property"},"id":12}',
        ),
        ('{"method":"SET_PROPERTY","params":["combined",1],"id":13}', '{"error":{"code":1,'),
        (
            '{"method":"subscribe","params":[],"id":14}',
            '{"error":{"code":2,"msg":"Invalid request: unknown variant `subscribe`',
        ),
    ]

    async def body() -> None:
        async with simulator(rate=0) as sim:
            parser = BinanceParser()
            async with connect(f"{sim.urls['binance']}/ws") as ws:
                for request, expected in cases:
                    await ws.send(request)
                    answer = await ws.recv()
                    assert isinstance(answer, str)
                    assert answer.startswith(expected), (request, answer)
                    assert parser.parse(answer, 0) == []
                # Unknown stream names are accepted and listed, and never send anything, as on Binance.
                await ws.send('{"method":"SUBSCRIBE","params":["dogeusdt@bookTicker"],"id":20}')
                assert await ws.recv() == '{"result":null,"id":20}'
                assert await frames_for(ws, 0.3) == []
            assert parser.stats.control.get("error") == len(cases)

    run(body)


def test_the_server_pings_and_the_connection_survives_them() -> None:
    async def body() -> None:
        async with simulator(rate=50, ping_interval=0.1, ping_timeout=0.5) as sim:
            url = f"{sim.urls['binance']}/ws/btcusdt@bookTicker"
            async with connect(url, ping_interval=None, create_connection=PingCountingConnection) as ws:
                await frames_for(ws, 0.55)
                assert isinstance(ws, PingCountingConnection)
                assert 3 <= ws.pings <= 6
                assert ws.state is State.OPEN

    run(body)
