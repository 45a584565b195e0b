"""The simulated Kraken `book` agrees with its ticker, and each `/sim/fault` makes our parser drop the book
and ask for a resync, which the resubscription serves."""

from __future__ import annotations

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from ingest_worker.tests.sim_helpers import frames_for, http, http_url, run, simulator
from ingest_worker.venues import kraken as kraken_venue
from ingest_worker.venues.base import BOOK_GAP
from ingest_worker.venues.kraken import KrakenParser
from signals_app.contracts.symbols import SymbolTable


async def subscribed(ws: ClientConnection, natives: list[str]) -> None:
    for request in kraken_venue.subscribe_messages(natives):
        await ws.send(orjson.dumps(request).decode())


def test_the_books_top_is_the_tickers_and_every_checksum_holds() -> None:
    async def body() -> None:
        async with simulator(venues=("kraken",), rate=500) as sim:
            _, answer = await http(http_url(sim.urls["kraken"]) + kraken_venue.MARKETS_PATH)
            markets = kraken_venue.markets_from_rest(answer)
            parser = KrakenParser(SymbolTable(markets))
            async with connect(kraken_venue.connect_url(sim.urls["kraken"])) as ws:
                await subscribed(ws, ["BTC/USD", "ETH/USD"])
                frames = await frames_for(ws, 1.0)
            compared = 0
            for frame, recv_ns in frames:
                parser.parse(frame, recv_ns)
                message = orjson.loads(frame)
                if message.get("channel") != "ticker":
                    continue
                item = message["data"][0]
                book = parser.book(item["symbol"])
                if book is not None:
                    bid, bid_size, ask, ask_size = book.top()
                    assert (bid, bid_size, ask, ask_size) == (
                        item["bid"],
                        item["bid_qty"],
                        item["ask"],
                        item["ask_qty"],
                    )
                    assert len(book.bid_levels()) == len(book.ask_levels()) == kraken_venue.BOOK_DEPTH
                    compared += 1
            assert compared > 10
            assert parser.stats.as_dict()["dropped"] == {}

    run(body)


@pytest.mark.parametrize("kind", ["gap", "bad_checksum", "crossed"])
def test_a_fault_drops_the_clients_book_once_and_a_resubscription_brings_a_good_one(kind: str) -> None:
    async def body() -> None:
        async with simulator(venues=("kraken",), rate=300) as sim:
            base = http_url(sim.urls["kraken"])
            _, answer = await http(base + kraken_venue.MARKETS_PATH)
            parser = KrakenParser(SymbolTable(kraken_venue.markets_from_rest(answer)))
            async with connect(kraken_venue.connect_url(sim.urls["kraken"])) as ws:
                await subscribed(ws, ["BTC/USD", "ETH/USD"])
                for frame, recv_ns in await frames_for(ws, 0.4):
                    parser.parse(frame, recv_ns)
                assert parser.book("BTC/USD") is not None
                assert parser.book("ETH/USD") is not None
                status, sent = await http(base + f"/sim/fault?venue=kraken&market=BTC/USD&kind={kind}", "POST")
                assert (status, sent["ok"], sent["clients"]) == (200, True, 1)
                for frame, recv_ns in await frames_for(ws, 0.3):
                    parser.parse(frame, recv_ns)
                # Dropped once under book_gap, the later updates refused without asking again.
                assert parser.stats.dropped[BOOK_GAP] >= 1
                assert parser.resync_needed == parser.awaiting_snapshot() == {"BTC/USD"}
                assert parser.book("BTC/USD") is None
                assert parser.book("ETH/USD") is not None  # the other pair's book carries on
                lost = dict(parser.stats.dropped)
                for request in kraken_venue.resubscribe_messages(sorted(parser.resync_needed)):
                    await ws.send(orjson.dumps(request).decode())
                parser.resync_needed.clear()
                again = await frames_for(ws, 0.5)
                ticks = [tick for frame, recv_ns in again for tick in parser.parse(frame, recv_ns)]
                snapshots = [f for f, _ in again if f.startswith('{"channel":"book","type":"snapshot"')]
                assert len(snapshots) == 1
                assert '"symbol":"BTC/USD"' in snapshots[0]
                assert parser.awaiting_snapshot() == parser.resync_needed == set()
                assert [tick for tick in ticks if tick.type == "book" and tick.symbol == "BTC/USD"]
                # Between the fault and the snapshot only refused updates were dropped; after it, none.
                assert {reason for reason, count in parser.stats.dropped.items() if count} == {BOOK_GAP}
                assert parser.stats.dropped == lost | {BOOK_GAP: parser.stats.dropped[BOOK_GAP]}

    run(body)


def test_a_fault_of_an_unknown_kind_or_pair_is_refused() -> None:
    async def body() -> None:
        async with simulator(venues=("kraken",), rate=100) as sim:
            base = http_url(sim.urls["kraken"])
            for kind, market in (("sideways", "BTC/USD"), ("gap", "DOGE/USD")):
                status, refused = await http(base + f"/sim/fault?venue=kraken&market={market}&kind={kind}")
                assert status == 400
                assert "error" in refused

    run(body)
