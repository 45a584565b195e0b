"""The Bitstamp dialect over real sockets: what our live Bitstamp client sends is answered as Bitstamp does,
and every message parses whole with the Bitstamp parser."""

from __future__ import annotations

import asyncio
import time

import orjson
from websockets.asyncio.client import connect

from ingest_worker.tests.recorded import lost
from ingest_worker.tests.sim_helpers import frames_for, frames_until, http, http_url, run, simulator, subscribed_parser
from ingest_worker.venues import bitstamp as bitstamp_venue
from ingest_worker.venues.bitstamp import BitstampParser
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import is_book_lost

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
                    for tick in ticks:  # a book tick: the message's own top depth_levels levels
                        assert tick.type == "book"
                        n = parser.depth_levels
                        assert tick.bids == [[float(p), float(a)] for p, a in message["data"]["bids"][:n]]
                        assert tick.asks == [[float(p), float(a)] for p, a in message["data"]["asks"][:n]]
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


def test_a_crossed_order_book_is_dropped_without_a_resync_and_the_next_message_is_a_good_book() -> None:
    async def body() -> None:
        async with simulator(venues=("bitstamp",), rate=200) as sim:
            base = http_url(sim.urls["bitstamp"])
            async with connect(bitstamp_venue.connect_url(sim.urls["bitstamp"])) as ws:
                parser = await subscribed_parser(sim, bitstamp_venue.VENUE, ["btcusd", "ethusd"], ws)
                for frame, recv_ns in await frames_for(ws, 0.3):
                    parser.parse(frame, recv_ns)
                status, sent = await http(base + "/sim/fault?venue=bitstamp&market=btcusd&kind=crossed", "POST")
                assert (status, sent["ok"], sent["clients"]) == (200, True, 1)
                after = await frames_for(ws, 0.4)
            at = [frame for frame, _ in after].index(sent["frame"])
            for frame, recv_ns in after[:at]:
                parser.parse(frame, recv_ns)
            # The book sent is gone: the engine is told so.
            assert parser.parse(sent["frame"], after[at][1]) == [lost("bitstamp", "BTC/USD", after[at][1])]
            assert parser.stats.as_dict()["dropped"] == {"crossed_book": 1}
            assert parser.resync_needed == parser.awaiting_snapshot() == set()  # the next message is a whole book
            ticks = [tick for frame, recv_ns in after[at + 1 :] for tick in parser.parse(frame, recv_ns)]
            assert not [tick for tick in ticks if is_book_lost(tick)]  # told once
            assert [tick for tick in ticks if tick.type == "book" and tick.symbol == "BTC/USD"]
            assert all(tick.bid < tick.ask for tick in ticks if tick.type == "book")  # type: ignore[operator]
            assert parser.stats.as_dict()["dropped"] == {"crossed_book": 1}
            status, refused = await http(base + "/sim/fault?venue=bitstamp&market=btcusd&kind=bad_level")
            assert status == 400
            assert "error" in refused

    run(body)


def test_the_rest_order_book_seeds_a_diff_book_with_the_same_levels() -> None:
    async def body() -> None:
        async with simulator(venues=("bitstamp",), rate=200) as sim:
            await asyncio.sleep(0.2)  # the pair has quotes
            url = http_url(sim.urls["bitstamp"]) + bitstamp_venue.ORDER_BOOK_PATH.format(pair="btcusd")
            status, body_ = await http(url)
            assert status == 200
            parser = BitstampParser(max_age_ms=None)
            [tick] = parser.seed(url, orjson.dumps(body_), time.time_ns())
            n = parser.depth_levels
            assert tick.bids == [[float(p), float(a)] for p, a in body_["bids"][:n]]
            assert tick.asks == [[float(p), float(a)] for p, a in body_["asks"][:n]]

    run(body)
