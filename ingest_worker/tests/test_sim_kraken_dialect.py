"""The Kraken v2 dialect over real sockets: what our live Kraken client sends is answered as Kraken does,
and every message parses whole with the Kraken parser."""

from __future__ import annotations

import orjson
from websockets.asyncio.client import connect

from ingest_worker.tests.sim_helpers import frames_for, http, http_url, recv_until, run, simulator
from ingest_worker.venues import kraken as kraken_venue
from ingest_worker.venues.kraken import KrakenParser
from signals_app.contracts.symbols import SymbolTable

TICKER_FIELDS = [
    *("symbol", "bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high", "change"),
    "change_pct",
]


def test_asset_pairs_keep_krakens_legacy_names_and_our_market_list_reader_takes_them() -> None:
    async def body() -> None:
        async with simulator(venues=("kraken",)) as sim:
            status, answer = await http(http_url(sim.urls["kraken"]) + kraken_venue.MARKETS_PATH)
            assert status == 200
            assert answer["error"] == []
            assert list(answer["result"]) == [
                "XXBTZUSD",
                "XETHZUSD",
                "SOLUSD",
                "XXRPZUSD",
                "ADAUSD",
                "USDTUSD",
                "USDCUSD",
            ]
            btc = answer["result"]["XXBTZUSD"]
            assert (btc["altname"], btc["wsname"], btc["base"], btc["quote"]) == ("XBTUSD", "XBT/USD", "XXBT", "ZUSD")
            assert kraken_venue.markets_from_rest(answer) == [
                ("BTC/USD", "XBT", "USD"),
                ("ETH/USD", "ETH", "USD"),
                ("SOL/USD", "SOL", "USD"),
                ("XRP/USD", "XRP", "USD"),
                ("ADA/USD", "ADA", "USD"),
                ("USDT/USD", "USDT", "USD"),
                ("USDC/USD", "USDC", "USD"),
            ]

    run(body)


def test_the_live_clients_subscriptions_are_answered_per_symbol_and_every_message_parses_with_zero_drops() -> None:
    async def body() -> None:
        async with simulator(venues=("kraken",), rate=500, heartbeat_s=0.2) as sim:
            _, answer = await http(http_url(sim.urls["kraken"]) + kraken_venue.MARKETS_PATH)
            markets = kraken_venue.markets_from_rest(answer)
            natives = [native for native, _, _ in markets]
            parser = KrakenParser(SymbolTable(markets))  # strict: only listed markets are known
            async with connect(kraken_venue.connect_url(sim.urls["kraken"])) as ws:
                for request in kraken_venue.subscribe_messages(natives):
                    await ws.send(orjson.dumps(request).decode())
                frames = await frames_for(ws, 1.0)
                await ws.send('{"method":"ping","req_id":101}')
                pong = orjson.loads(await recv_until(ws, lambda text: '"pong"' in text))
                assert (pong["method"], pong["req_id"]) == ("pong", 101)
            messages = [orjson.loads(frame) for frame, _ in frames]
            assert messages[0]["channel"] == "status"
            assert messages[0]["data"][0]["system"] == "online"
            acks = [m for m in messages if "method" in m]
            assert [(a["result"]["channel"], a["result"]["symbol"]) for a in acks] == [
                *(("book", native) for native in natives),
                *(("ticker", native) for native in natives),
                *(("trade", native) for native in natives),
            ]
            assert all(
                a["success"] is True and list(a)[:5] == ["method", "result", "success", "time_in", "time_out"]
                for a in acks
            )
            kinds = {(m.get("channel"), m.get("type")) for m in messages}
            assert {("ticker", "snapshot"), ("ticker", "update"), ("trade", "update"), ("heartbeat", None)} <= kinds
            assert {("book", "snapshot"), ("book", "update")} <= kinds
            booked: set[str] = set()
            for message, (frame, recv_ns) in zip(messages, frames, strict=True):
                ticks = parser.parse(frame, recv_ns)
                if message.get("channel") == "book":
                    booked.add(message["data"][0]["symbol"])
                    if message["type"] == "snapshot":
                        assert [tick.type for tick in ticks] == ["book"]
                if message.get("channel") == "trade":
                    assert ticks
                if message.get("channel") == "ticker":
                    assert list(message["data"][0]) == TICKER_FIELDS
                    assert isinstance(message["data"][0]["bid"], int | float)
                    # The book sets the top: a ticker quotes only a market still without a book.
                    assert bool(ticks) == (message["data"][0]["symbol"] not in booked)
            assert parser.stats.as_dict()["dropped"] == {}
            assert booked == set(natives)
            assert parser.stats.ignored["ticker_behind_book"] > 0
            control = parser.stats.control
            assert control["subscribe"] == 3 * len(natives)
            assert control["status"] == 1
            assert control["heartbeat"] >= 3
            symbols = {tick.symbol for frame, recv_ns in frames for tick in parser.parse(frame, recv_ns)}
            assert symbols == {"BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ADA/USD", "USDT/USD", "USDC/USD"}

    run(body)


def test_bad_requests_get_kraken_errors_and_the_connection_stays_open() -> None:
    async def body() -> None:
        async with simulator(venues=("kraken",), rate=0) as sim:
            parser = KrakenParser()
            async with connect(kraken_venue.connect_url(sim.urls["kraken"])) as ws:
                await ws.recv()  # status
                await ws.send('{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/XYZ"]},"req_id":7}')
                error = orjson.loads(await ws.recv())
                assert (error["success"], error["symbol"], error["req_id"]) == (False, "BTC/XYZ", 7)
                assert parser.parse(orjson.dumps(error), 0) == []
                await ws.send('{"method":"subscribe","params":{"channel":"level3","symbol":["BTC/USD"]}}')
                error = orjson.loads(await ws.recv())
                assert error["success"] is False
                assert parser.parse(orjson.dumps(error), 0) == []
                await ws.send('{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/USD"]}}')
                assert orjson.loads(await ws.recv())["success"] is True
                await ws.send('{"method":"unsubscribe","params":{"channel":"ticker","symbol":["BTC/USD"]}}')
                answer = orjson.loads(await recv_until(ws, lambda text: '"unsubscribe"' in text))
                assert answer["success"] is True
            assert parser.stats.control == {"error": 2}

    run(body)
