"""The Coinbase dialect over real sockets: subscribe and its answer, ticker and heartbeat frames, errors."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ingest_worker.tests.sim_helpers import frames_for, http, http_url, recv_until, run, simulator
from ingest_worker.venues import coinbase as coinbase_venue
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts.symbols import SymbolTable


def test_products_lists_the_usd_markets_and_our_market_list_reader_takes_it() -> None:
    async def body() -> None:
        async with simulator() as sim:
            base = http_url(sim.urls["coinbase"])
            status, products = await http(base + coinbase_venue.PRODUCTS_PATH)
            assert status == 200
            assert coinbase_venue.markets_from_products(products) == [
                ("BTC-USD", "BTC", "USD"),
                ("ETH-USD", "ETH", "USD"),
                ("SOL-USD", "SOL", "USD"),
                ("XRP-USD", "XRP", "USD"),
                ("ADA-USD", "ADA", "USD"),
                ("USDT-USD", "USDT", "USD"),
            ]
            assert all(product["status"] == "online" for product in products)
            assert products[3]["quote_increment"] == "0.0001"
            status, one = await http(base + "/products/ETH-USD")
            assert (status, one["id"]) == (200, "ETH-USD")
            status, _ = await http(base + "/products/ETH-EUR")
            assert status == 404

    run(body)


def test_subscribe_is_answered_with_subscriptions_then_tickers_and_heartbeats_parse_with_zero_drops() -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            _, products = await http(http_url(sim.urls["coinbase"]) + coinbase_venue.PRODUCTS_PATH)
            markets = coinbase_venue.markets_from_products(products)
            parser = CoinbaseParser(SymbolTable(markets))
            natives = [native for native, _, _ in markets]
            async with connect(sim.urls["coinbase"] + "/") as ws:
                await ws.send(orjson.dumps(coinbase_venue.subscribe_message(natives)).decode())
                answer = await ws.recv()
                assert (
                    answer
                    == orjson.dumps(
                        {
                            "type": "subscriptions",
                            "channels": [
                                {"name": "ticker", "product_ids": natives},
                                {"name": "heartbeat", "product_ids": natives},
                                {"name": "level2_batch", "product_ids": natives},
                            ],
                        }
                    ).decode()
                )
                frames = await frames_for(ws, 1.2)
            types = [orjson.loads(frame)["type"] for frame, _ in frames]
            # Right after subscribing: the current ticker of every product, as Coinbase sends it.
            assert {orjson.loads(frame)["product_id"] for frame, _ in frames[: len(natives)]} == set(natives)
            assert types.count("ticker") > 100
            assert types.count("heartbeat") == len(natives)  # one per product per second
            sequences: dict[str, int] = {}
            snapshots: set[str] = set()
            for frame, recv_ns in frames:
                message = orjson.loads(frame)
                if message["type"] == "ticker":
                    ticks = parser.parse(frame, recv_ns)
                    assert [tick.type for tick in ticks] == ["quote", "trade"]
                    assert ticks[0].bid_size is not None
                    # each product's sequence only grows
                    assert message["sequence"] > sequences.get(message["product_id"], 0)
                    sequences[message["product_id"]] = message["sequence"]
                elif message["type"] in ("snapshot", "l2update"):
                    # Books: a snapshot per product first, then updates (test_coinbase_level2_* has the rest).
                    if message["type"] == "snapshot":
                        assert message["product_id"] not in snapshots  # one per subscription
                        snapshots.add(message["product_id"])
                    else:
                        assert message["product_id"] in snapshots
                    parser.parse(frame, recv_ns)
                else:
                    assert parser.parse(frame, recv_ns) == []
                    assert message["sequence"] == sequences[message["product_id"]]
            assert snapshots == set(natives)
            assert parser.stats.as_dict()["dropped"] == {}
            assert parser.stats.control == {"heartbeat": len(natives)}

    run(body)


def test_channel_objects_later_subscribes_and_unsubscribe_update_the_subscriptions() -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim, connect(sim.urls["coinbase"] + "/") as ws:
            await ws.send('{"type":"subscribe","channels":[{"name":"ticker","product_ids":["ETH-USD"]}]}')
            assert await ws.recv() == (
                '{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["ETH-USD"]}]}'
            )
            await ws.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["heartbeat","ticker"]}')
            assert await recv_until(ws, lambda text: '"subscriptions"' in text) == (
                '{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["ETH-USD","BTC-USD"]},'
                '{"name":"heartbeat","product_ids":["BTC-USD"]}]}'
            )
            await ws.send('{"type":"unsubscribe","product_ids":["ETH-USD"],"channels":["ticker"]}')
            assert await recv_until(ws, lambda text: '"subscriptions"' in text) == (
                '{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["BTC-USD"]},'
                '{"name":"heartbeat","product_ids":["BTC-USD"]}]}'
            )
            frames = await frames_for(ws, 0.4)
            assert {orjson.loads(frame)["product_id"] for frame, _ in frames} == {"BTC-USD"}
            await ws.send('{"type":"unsubscribe","channels":["ticker","heartbeat"]}')
            assert await recv_until(ws, lambda text: '"subscriptions"' in text) == (
                '{"type":"subscriptions","channels":[]}'
            )
            assert await frames_for(ws, 0.3) == []

    run(body)


@pytest.mark.parametrize(
    ("request_text", "message", "reason"),
    [
        ("{nope", "Malformed JSON", None),
        (
            '{"type":"subscribe","product_ids":["BTC-EUR"],"channels":["ticker"]}',
            "Failed to subscribe",
            "BTC-EUR is not a valid product",
        ),
        (
            '{"type":"subscribe","product_ids":["BTC-USD"],"channels":["full"]}',
            "Failed to subscribe",
            "full is not a valid channel",
        ),
        ('{"type":"subscribe","product_ids":["BTC-USD"]}', "Failed to subscribe", None),
        ('{"type":"subscribe","channels":["ticker"]}', "Failed to subscribe", None),
        ('{"type":"hello"}', "Failed to subscribe", None),
    ],
)
def test_bad_requests_get_an_error_message_and_change_nothing(
    request_text: str, message: str, reason: str | None
) -> None:
    async def body() -> None:
        async with simulator(rate=0) as sim:
            parser = CoinbaseParser()
            async with connect(sim.urls["coinbase"] + "/") as ws:
                await ws.send(request_text)
                answer = orjson.loads(await ws.recv())
                assert list(answer) == ["type", "message", "reason"]
                assert answer["type"] == "error"
                assert answer["message"] == message
                if reason is not None:
                    assert answer["reason"] == reason
                assert parser.parse(orjson.dumps(answer), 0) == []
                assert parser.stats.control == {"error": 1}
                # the connection is still usable
                await ws.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["heartbeat"]}')
                assert orjson.loads(await ws.recv())["type"] == "subscriptions"

    run(body)


def test_a_client_that_does_not_subscribe_in_time_is_disconnected() -> None:
    async def body() -> None:
        async with simulator(rate=100, subscribe_timeout_s=0.3) as sim:
            async with connect(sim.urls["coinbase"] + "/") as ws:
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1008
            for _ in range(100):  # the server's handler finishes right after the client sees the close
                if not sim.venues["coinbase"].connections:
                    break
                await asyncio.sleep(0.01)
            assert sim.venues["coinbase"].connections == set()

    run(body)
