"""Each simulated book failure of Binance and Coinbase (`/sim/fault`) makes our parser drop that
market's book (counted under its reason), tell the engine once that it is gone (a book-lost tick)
and ask for a resync exactly once, and the live feed's resubscription brings the book back on the
same connection with no tick carrying the bad level."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from ingest_worker.tests.recorded import lost
from ingest_worker.tests.sim_helpers import frames_for, http, http_url, run, simulator
from ingest_worker.tests.test_feed_follows_each_venues_connection_rules import Running, until
from ingest_worker.venues import VENUES
from ingest_worker.venues.base import BAD_PRICE, BOOK_GAP, CROSSED_BOOK, VenueParser
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts.tick import BOOK, Tick, is_book_lost


def parse_counting_requests(parser: VenueParser, frames: list[tuple[str, int]], requests: list[str]) -> list[Tick]:
    """Parse `frames`; each market the parser asks to resync is taken (as the feed does) and noted."""
    ticks: list[Tick] = []
    for frame, recv_ns in frames:
        ticks += parser.parse(frame, recv_ns)
        requests += sorted(parser.resync_needed)
        parser.resync_needed.clear()
    return ticks


def fault_at(sent: dict[str, Any], frames: list[tuple[str, int]]) -> int:
    """The index in `frames` of the frame `/sim/fault` answered `sent` for (Binance names its payload,
    which a combined stream wraps; Coinbase its frame)."""
    faulty: list[str] = sent["frames"] if "frames" in sent else [sent["frame"]]
    assert len(faulty) == 1
    return next(index for index, (frame, _) in enumerate(frames) if faulty[0] in frame)


async def live_subscription(url: str, venue: str, natives: list[str]) -> ClientConnection:
    ws = await connect(VENUES[venue].connect_url(url))
    for request in VENUES[venue].subscribe_messages(natives):
        await ws.send(orjson.dumps(request).decode())
    return ws


@pytest.mark.parametrize(
    ("venue", "native", "kind", "reason"),
    [
        ("binance", "BTCUSDT", "crossed", CROSSED_BOOK),
        ("coinbase", "BTC-USD", "crossed", BOOK_GAP),
        ("coinbase", "BTC-USD", "bad_level", BAD_PRICE),
    ],
)
def test_a_fault_on_the_live_subscription_drops_the_book_and_asks_once(
    venue: str, native: str, kind: str, reason: str
) -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            parser = VENUES[venue].parser()
            requests: list[str] = []
            ws = await live_subscription(sim.urls[venue], venue, [native])
            async with ws:
                parse_counting_requests(parser, await frames_for(ws, 0.4), requests)
                assert parser.stats.as_dict()["dropped"] == {}
                status, sent = await http(
                    f"{http_url(sim.urls[venue])}/sim/fault?venue={venue}&market={native}&kind={kind}"
                )
                assert (status, sent["clients"]) == (200, 1)
                after = await frames_for(ws, 0.5)
            ticks = parse_counting_requests(parser, after, requests)
            assert requests == [native]  # once, though the market's frames kept coming
            # The frame with the fault gave the engine the market's book-lost tick, and no other did.
            at = fault_at(sent, after)
            symbol = parser.symbols.resolve(native)
            assert symbol is not None
            assert [tick for tick in ticks if is_book_lost(tick)] == [lost(venue, symbol, after[at][1])]
            assert parser.stats.books_lost == 1
            if venue == "binance":  # the next partial-depth frame is a whole book again
                assert parser.stats.as_dict()["dropped"] == {reason: 1}
                assert parser.awaiting_snapshot() == set()
                assert [tick for tick in ticks if tick.type == BOOK and not is_book_lost(tick)]
            else:  # later l2updates have no book to go to until a snapshot comes: each dropped as a gap
                later = sum(frame.startswith('{"type":"l2update"') for frame, _ in after[at + 1 :])
                assert parser.stats.dropped[reason] >= 1
                assert sum(parser.stats.dropped.values()) == 1 + later
                assert parser.awaiting_snapshot() == {native}
                assert isinstance(parser, CoinbaseParser)
                assert parser.book(native) is None

    run(body)


@pytest.mark.parametrize(("kind", "reason"), [("gap", BOOK_GAP), ("crossed", CROSSED_BOOK)])
def test_a_diff_depth_fault_drops_the_seeded_book_and_asks_once_for_a_snapshot(kind: str, reason: str) -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            base = sim.urls["binance"]
            parser = BinanceParser()
            requests: list[str] = []
            async with connect(f"{base}/stream?streams=btcusdt@depth@100ms") as ws:
                held = await frames_for(ws, 0.3)
                url = f"{http_url(base)}/api/v3/depth?symbol=BTCUSDT&limit=1000"
                _, snapshot = await http(url)
                assert parser.seed(url, orjson.dumps(snapshot), held[0][1])
                parse_counting_requests(parser, held + await frames_for(ws, 0.3), requests)
                assert parser.stats.as_dict()["dropped"] == {}
                _, sent = await http(f"{http_url(base)}/sim/fault?venue=binance&market=BTCUSDT&kind={kind}")
                assert sent["clients"] == 1
                after = await frames_for(ws, 0.4)
                ticks = parse_counting_requests(parser, after, requests)
                assert parser.stats.dropped[reason] == 1
                assert requests == ["BTCUSDT"]
                # The seeded book had been sent: the engine is told once that it is gone.
                at = fault_at(sent, after)
                assert [tick for tick in ticks if is_book_lost(tick)] == [lost("binance", "BTC/USDT", after[at][1])]
                assert parser.awaiting_snapshot() == {"BTCUSDT"}
                # A fresh snapshot seeds the book again, and the events after it apply.
                _, snapshot = await http(url)
                parser.seed(url, orjson.dumps(snapshot), held[0][1])
                parse_counting_requests(parser, await frames_for(ws, 0.4), requests)
            assert parser.awaiting_snapshot() == set()
            assert parser.stats.dropped[reason] == 1
            assert requests == ["BTCUSDT"]
            assert parser.stats.books_lost == 1

    run(body)


@pytest.mark.parametrize(
    ("venue", "native", "kind"), [("binance", "BTCUSDT", "crossed"), ("coinbase", "BTC-USD", "crossed")]
)
def test_the_live_feed_resubscribes_a_broken_book_and_no_tick_carries_the_bad_level(
    venue: str, native: str, kind: str
) -> None:
    async def body() -> None:
        async with simulator(rate=400) as sim:
            running = Running(sim, VENUES[venue], ("BTC", "ETH"))
            feed, engine = running.feed, running.engine
            try:
                await until(lambda: len({tick.symbol for tick in engine.books()}) == 2, 10, "both books")
                connection = feed.connections[0]
                sent = sim.venues[venue].fault(native, kind)
                assert sent["clients"] == 1
                start = len(engine.drain())
                await until(lambda: connection.resyncs == 1, 3, "a resubscription")
                symbol = connection.parser.symbols.resolve(native)
                assert symbol is not None
                await until(
                    lambda: (
                        symbol in {tick.symbol for tick in engine.books(start)}
                        and not connection.parser.awaiting_snapshot()
                    ),
                    3,
                    "the book back",
                )
                await asyncio.sleep(0.3)
                assert connection.resyncs == 1
                assert connection.connects == 1
                # The engine was told once that the book was gone, and never walks the bad level.
                engine.assert_book_lost_once(venue, symbol)
                for tick in engine.books():
                    assert tick.bids
                    assert tick.asks
                    assert tick.bids[0][0] < tick.asks[0][0]
            finally:
                await running.close()

    run(body, timeout=30)
