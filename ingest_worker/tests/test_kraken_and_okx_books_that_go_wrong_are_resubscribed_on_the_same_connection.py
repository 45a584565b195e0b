"""The live feed of Kraken and OKX: each market's top comes as book ticks, and a book the simulator
breaks (`/sim/fault`) is resubscribed on the same connection, without a tick from the broken book;
the engine is told once that the book is gone (a book-lost tick) before the new one comes."""

from __future__ import annotations

import json

import pytest

from ingest_worker.tests.sim_helpers import run, simulator
from ingest_worker.tests.test_feed_follows_each_venues_connection_rules import Running, until
from ingest_worker.venues import VENUES

MARKETS = {"kraken": ("BTC/USD", "BTC/USD"), "okx": ("BTC-USDT", "BTC/USDT")}  # native, symbol


@pytest.mark.parametrize("venue", ["kraken", "okx"])
@pytest.mark.parametrize("kind", ["gap", "bad_checksum", "crossed"])
def test_a_broken_book_is_resubscribed_and_its_market_ticks_again(venue: str, kind: str) -> None:
    native, symbol = MARKETS[venue]

    async def body() -> None:
        async with simulator(venues=(venue,), rate=400) as sim:
            running = Running(sim, VENUES[venue], ("BTC", "ETH"))
            feed, engine = running.feed, running.engine
            try:
                await until(lambda: len({t.symbol for t in engine.books()}) == 2, 10, "both markets' books")
                connection = feed.connections[0]
                sent = sim.venues[venue].fault(native, kind)
                assert sent["clients"] == 1
                start = len(engine.drain())
                await until(lambda: connection.resyncs == 1, 3, "a resubscription")
                await until(
                    lambda: (
                        symbol in {t.symbol for t in engine.books(start)} and not connection.parser.awaiting_snapshot()
                    ),
                    3,
                    f"{symbol} booked again",
                )
                assert connection.connects == 1  # no reconnect: the one market was resubscribed
                assert feed.parse_stats().dropped["book_gap"] >= 1
                # The engine was told, once, that the book it had been sent was gone; of no other market.
                engine.assert_book_lost_once(venue, symbol)
                ticks = engine.quotes()  # every other book tick and quote: a real top
                assert all(t.bid is not None and t.ask is not None and t.bid < t.ask for t in ticks)
                if kind == "crossed":  # no tick carried the bad bid: the book that held it was dropped
                    (level,) = json.loads(sent["frame"])["data"][0]["bids"]
                    phantom = float(level["price"] if isinstance(level, dict) else level[0])
                    assert max(t.bid or 0.0 for t in ticks if t.symbol == symbol) < phantom
            finally:
                await running.close()

    run(body, timeout=30)
