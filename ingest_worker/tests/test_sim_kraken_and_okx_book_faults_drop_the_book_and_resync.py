"""The simulated Kraken `book` and OKX `books` agree with their tickers, and each `/sim/fault` makes our
parser drop the book and ask once for a resync, which the resubscription serves."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from ingest_worker.sim.okx import BOOK_LEVELS as OKX_BOOK_LEVELS
from ingest_worker.tests.sim_helpers import frames_for, http, http_url, run, simulator
from ingest_worker.venues import kraken, okx
from ingest_worker.venues.base import BOOK_GAP, VenueParser
from signals_app.contracts.symbols import SymbolTable


@dataclass(frozen=True)
class BookVenue:
    """What differs between the two venues' wire: names, the ticker's top, a snapshot's opening."""

    module: ModuleType
    markets: tuple[str, str]  # two native names
    unknown: str  # a market the simulator does not list
    levels: int  # the levels a side the simulator's book holds
    snapshot_prefix: str

    def ticker_top(self, message: dict[str, Any]) -> tuple[str, tuple[float, float, float, float]] | None:
        """(native, (bid, bid size, ask, ask size)) of a ticker message; None for any other message."""
        if self.module is kraken:
            if message.get("channel") != "ticker":
                return None
            item = message["data"][0]
            return item["symbol"], (item["bid"], item["bid_qty"], item["ask"], item["ask_qty"])
        if message.get("arg", {}).get("channel") != "tickers" or "data" not in message:  # not a subscribe event
            return None
        item = message["data"][0]
        return item["instId"], tuple(float(item[key]) for key in ("bidPx", "bidSz", "askPx", "askSz"))  # type: ignore[return-value]


KRAKEN = BookVenue(kraken, ("BTC/USD", "ETH/USD"), "DOGE/USD", kraken.BOOK_DEPTH, '{"channel":"book","type":"snapshot"')
OKX = BookVenue(okx, ("BTC-USDT", "ETH-USDT"), "DOGE-USDT", OKX_BOOK_LEVELS, '{"arg":{"channel":"books"')
VENUES = pytest.mark.parametrize("venue", [KRAKEN, OKX], ids=["kraken", "okx"])


async def subscribed(ws: ClientConnection, venue: BookVenue, natives: list[str]) -> None:
    for request in venue.module.subscribe_messages(natives):
        await ws.send(orjson.dumps(request).decode())


async def strict_parser(base: str, venue: BookVenue) -> VenueParser:
    _, answer = await http(base + venue.module.MARKETS_PATH)
    return venue.module.VENUE.parser(SymbolTable(venue.module.markets_from_rest(answer)))  # type: ignore[no-any-return]


@VENUES
def test_the_books_top_is_the_tickers_and_every_checksum_holds(venue: BookVenue) -> None:
    name = venue.module.NAME

    async def body() -> None:
        async with simulator(venues=(name,), rate=500) as sim:
            parser = await strict_parser(http_url(sim.urls[name]), venue)
            async with connect(venue.module.connect_url(sim.urls[name])) as ws:
                await subscribed(ws, venue, list(venue.markets))
                frames = await frames_for(ws, 1.0)
            compared = 0
            for frame, recv_ns in frames:
                parser.parse(frame, recv_ns)
                top = venue.ticker_top(orjson.loads(frame))
                book = None if top is None else parser.book(top[0])  # type: ignore[attr-defined]
                if book is not None:
                    assert top is not None
                    assert book.top() == top[1]
                    assert len(book.bid_levels()) == len(book.ask_levels()) == venue.levels
                    compared += 1
            assert compared > 10
            assert parser.stats.as_dict()["dropped"] == {}

    run(body)


@VENUES
@pytest.mark.parametrize("kind", ["gap", "bad_checksum", "crossed"])
def test_a_fault_drops_the_clients_book_once_and_a_resubscription_brings_a_good_one(
    venue: BookVenue, kind: str
) -> None:
    name = venue.module.NAME
    lost, kept = venue.markets

    async def body() -> None:
        async with simulator(venues=(name,), rate=300) as sim:
            base = http_url(sim.urls[name])
            parser = await strict_parser(base, venue)
            async with connect(venue.module.connect_url(sim.urls[name])) as ws:
                await subscribed(ws, venue, list(venue.markets))
                for frame, recv_ns in await frames_for(ws, 0.4):
                    parser.parse(frame, recv_ns)
                assert parser.book(lost) is not None  # type: ignore[attr-defined]
                assert parser.book(kept) is not None  # type: ignore[attr-defined]
                status, sent = await http(base + f"/sim/fault?venue={name}&market={lost}&kind={kind}", "POST")
                assert (status, sent["ok"], sent["clients"]) == (200, True, 1)
                for frame, recv_ns in await frames_for(ws, 0.3):
                    parser.parse(frame, recv_ns)
                # Dropped under book_gap, the later updates refused without asking again.
                assert parser.stats.dropped[BOOK_GAP] >= 1
                assert parser.resync_needed == parser.awaiting_snapshot() == {lost}
                assert parser.book(lost) is None  # type: ignore[attr-defined]
                assert parser.book(kept) is not None  # type: ignore[attr-defined]  # the other book carries on
                for request in venue.module.resubscribe_messages(sorted(parser.resync_needed)):
                    await ws.send(orjson.dumps(request).decode())
                parser.resync_needed.clear()
                again = await frames_for(ws, 0.5)
                ticks = [tick for frame, recv_ns in again for tick in parser.parse(frame, recv_ns)]
                snapshots = [f for f, _ in again if f.startswith(venue.snapshot_prefix) and '"snapshot"' in f]
                assert len(snapshots) == 1
                assert f'"{lost}"' in snapshots[0]
                assert parser.awaiting_snapshot() == parser.resync_needed == set()
                symbol = parser.symbols.resolve(lost)
                assert [tick for tick in ticks if tick.type == "book" and tick.symbol == symbol]
                # Only the fault and the updates refused after it were dropped.
                assert {reason for reason, count in parser.stats.dropped.items() if count} == {BOOK_GAP}

    run(body)


@VENUES
def test_a_fault_of_an_unknown_kind_or_market_is_refused(venue: BookVenue) -> None:
    name = venue.module.NAME

    async def body() -> None:
        async with simulator(venues=(name,), rate=100) as sim:
            base = http_url(sim.urls[name])
            for kind, market in (("sideways", venue.markets[0]), ("gap", venue.unknown)):
                status, refused = await http(base + f"/sim/fault?venue={name}&market={market}&kind={kind}")
                assert status == 400
                assert "error" in refused

    run(body)
