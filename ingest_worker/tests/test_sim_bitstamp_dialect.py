"""The Bitstamp dialect over real sockets: what our live Bitstamp client sends is answered as Bitstamp does,
and every message parses whole with the Bitstamp parser."""

from __future__ import annotations

import orjson
from websockets.asyncio.client import connect

from ingest_worker.tests.sim_helpers import frames_for, frames_until, http, http_url, run, simulator
from ingest_worker.venues import bitstamp as bitstamp_venue
from ingest_worker.venues.bitstamp import BitstampParser
from signals_app.contracts.symbols import SymbolTable

TRADE_FIELDS = [
    *("id", "timestamp", "amount", "amount_str", "price", "price_str", "type", "microtimestamp"),
    *("buy_order_id", "sell_order_id"),
]


def test_trading_pairs_info_lists_the_usd_pairs_and_our_market_list_reader_takes_them() -> None:
    async def body() -> None:
        async with simulator(venues=("bitstamp",)) as sim:
            base = http_url(sim.urls["bitstamp"])
            status, pairs = await http(base + bitstamp_venue.MARKETS_PATH)
            assert status == 200
            assert bitstamp_venue.markets_from_rest(pairs) == [
                ("btcusd", "BTC", "USD"),
                ("ethusd", "ETH", "USD"),
                ("solusd", "SOL", "USD"),
                ("xrpusd", "XRP", "USD"),
                ("adausd", "ADA", "USD"),
                ("usdtusd", "USDT", "USD"),
                ("usdcusd", "USDC", "USD"),
            ]
            status, book = await http(base + "/api/v2/order_book/btcusd")
            assert status == 200
            assert list(book) == ["timestamp", "microtimestamp", "bids", "asks"]
            assert len(book["bids"]) == len(book["asks"]) == 100
            status, _ = await http(base + "/api/v2/order_book/btceur")
            assert status == 404

    run(body)


def test_the_live_clients_subscriptions_are_answered_and_every_message_parses_with_zero_drops() -> None:
    async def body() -> None:
        async with simulator(venues=("bitstamp",), rate=500) as sim:
            _, pairs = await http(http_url(sim.urls["bitstamp"]) + bitstamp_venue.MARKETS_PATH)
            markets = bitstamp_venue.markets_from_rest(pairs)
            requests = bitstamp_venue.subscribe_messages(native for native, _, _ in markets)
            parser = BitstampParser(SymbolTable(markets))  # strict: only listed markets are known
            async with connect(bitstamp_venue.connect_url(sim.urls["bitstamp"])) as ws:
                for request in requests:
                    await ws.send(orjson.dumps(request).decode())
                frames = await frames_for(ws, 1.0)
                await ws.send('{"event":"bts:heartbeat"}')
                # The answer comes behind whatever the feed queued before it: read up to it, however long.
                frames += await frames_until(ws, lambda frame: frame.startswith('{"event":"bts:heartbeat"'))
            messages = [orjson.loads(frame) for frame, _ in frames]
            succeeded = [m["channel"] for m in messages if m["event"] == "bts:subscription_succeeded"]
            assert succeeded == [request["data"]["channel"] for request in requests]
            events = set()
            for message, (frame, recv_ns) in zip(messages, frames, strict=True):
                ticks = parser.parse(frame, recv_ns)
                events.add(message["event"])
                if message["event"] == "trade":
                    assert list(message["data"]) == TRADE_FIELDS
                    assert ticks
                if message["event"] == "data":
                    assert len(message["data"]["bids"]) == len(message["data"]["asks"]) == 100
                    bids = [float(price) for price, _ in message["data"]["bids"]]
                    assert bids == sorted(bids, reverse=True)
            assert events == {"bts:subscription_succeeded", "data", "trade", "bts:heartbeat"}
            assert parser.stats.as_dict()["dropped"] == {}
            fresh = BitstampParser(SymbolTable(markets))  # the parser above has already seen every top
            symbols = {tick.symbol for frame, recv_ns in frames for tick in fresh.parse(frame, recv_ns)}
            assert symbols == {"BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ADA/USD", "USDT/USD", "USDC/USD"}

    run(body)


def test_bad_subscriptions_get_a_bts_error_and_the_connection_stays_open() -> None:
    async def body() -> None:
        async with simulator(venues=("bitstamp",), rate=0) as sim:
            parser = BitstampParser()
            async with connect(bitstamp_venue.connect_url(sim.urls["bitstamp"])) as ws:
                for request in ("nonsense", '{"event":"bts:subscribe","data":{"channel":"order_book_btceur"}}'):
                    await ws.send(request)
                    answer = orjson.loads(await ws.recv())
                    assert answer["event"] == "bts:error"
                    assert parser.parse(orjson.dumps(answer), 0) == []
                await ws.send('{"event":"bts:subscribe","data":{"channel":"live_trades_btcusd"}}')
                assert orjson.loads(await ws.recv())["event"] == "bts:subscription_succeeded"
                await ws.send('{"event":"bts:unsubscribe","data":{"channel":"live_trades_btcusd"}}')
                assert orjson.loads(await ws.recv())["event"] == "bts:unsubscription_succeeded"
            assert parser.stats.control == {"error": 2}

    run(body)
