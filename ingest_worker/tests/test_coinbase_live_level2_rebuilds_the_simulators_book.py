"""Coinbase level2 over real sockets: what our live client subscribes to (ticker, heartbeat,
level2_batch) parses with zero drops; the snapshot and l2updates, applied here without our
parser, hold the simulator's own book after every frame, its top the latest ticker's, and our
parser's book ticks carry that book's top 20 levels."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from ingest_worker.sim.coinbase import BOOK_CHANNELS, CoinbaseServer, fixed
from ingest_worker.sim.depth import Levels
from ingest_worker.tests.sim_helpers import frames_for, http, http_url, live_client_frames, run, simulator
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import BOOK

Side = list[list[str]]


def record_server_books(server: CoinbaseServer) -> dict[str, tuple[Side, Side]]:
    """frame text -> the server's book it was built from (sorted best first, as Coinbase prints it)."""
    frames = server.frames
    books: dict[str, tuple[Side, Side]] = {}
    latest: dict[str, tuple[Levels, Levels]] = {}
    build_book, build_snapshot, build_update = frames.book, frames.snapshot, frames.l2update

    def printed(product: str, bids: Levels, asks: Levels) -> tuple[Side, Side]:
        market = frames.products[product].market
        d, s = market.price_decimals, market.size_decimals
        return ([[fixed(p, d), fixed(q, s)] for p, q in bids], [[fixed(p, d), fixed(q, s)] for p, q in asks])

    def book(product: str) -> tuple[Levels, Levels]:
        latest[product] = build_book(product)
        return latest[product]

    def snapshot(product: str, bids: Levels, asks: Levels, now_ns: int) -> str:
        text = build_snapshot(product, bids, asks, now_ns)
        books[text] = printed(product, bids, asks)
        return text

    def l2update(product: str, changes: Any, now_ns: int) -> str:
        text = build_update(product, changes, now_ns)
        books[text] = printed(product, *latest[product])
        return text

    frames.book, frames.snapshot, frames.l2update = book, snapshot, l2update  # type: ignore[method-assign]
    return books


def printed_book(book: tuple[dict[str, str], dict[str, str]]) -> tuple[Side, Side]:
    bids = sorted(book[0].items(), key=lambda level: -float(level[0]))
    asks = sorted(book[1].items(), key=lambda level: float(level[0]))
    return [list(level) for level in bids], [list(level) for level in asks]


def as_floats(side: Side) -> list[list[float]]:
    return [[float(price), float(size)] for price, size in side]


@pytest.mark.parametrize("channel", list(BOOK_CHANNELS))
def test_the_live_subscription_rebuilds_the_servers_book_after_every_frame(channel: str) -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            server = sim.venues["coinbase"]
            assert isinstance(server, CoinbaseServer)
            server_books = record_server_books(server)

            def on_channel(request: dict[str, Any]) -> dict[str, Any]:  # the live client's, or with level2
                request["channels"] = [channel if name == "level2_batch" else name for name in request["channels"]]
                return request

            markets, frames = await live_client_frames(sim, "coinbase", 1.2, on_channel)
            parser = CoinbaseParser(SymbolTable(markets))
            natives = [native for native, _, _ in markets]
            books: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
            tops: dict[str, list[str]] = {}  # product -> the latest ticker's best bid, size, ask, size
            updates = 0
            for frame, recv_ns in frames:
                message = orjson.loads(frame)
                ticks = parser.parse(frame, recv_ns)
                kind = message["type"]
                if kind == "ticker":
                    tops[message["product_id"]] = [
                        message[key] for key in ("best_bid", "best_bid_size", "best_ask", "best_ask_size")
                    ]
                    continue
                if kind not in ("snapshot", "l2update"):
                    continue
                product = message["product_id"]
                if kind == "snapshot":
                    assert product not in books
                    books[product] = (dict(message["bids"]), dict(message["asks"]))
                else:
                    updates += 1
                    for side, price, size in message["changes"]:
                        levels = books[product][0 if side == "buy" else 1]
                        if float(size) == 0:
                            levels.pop(price)  # only levels the book holds are removed
                        else:
                            levels[price] = size
                bids, asks = printed_book(books[product])
                assert (bids, asks) == server_books[frame]  # the server's whole book
                assert [*bids[0], *asks[0]] == tops[product]  # its top is the latest ticker's
                if ticks:
                    (book_tick,) = ticks
                    assert book_tick.type == BOOK
                    assert (book_tick.bids, book_tick.asks) == (as_floats(bids[:20]), as_floats(asks[:20]))
            assert set(books) == set(natives)
            assert updates > 2 * len(natives)
            assert parser.stats.as_dict()["dropped"] == {}
            assert parser.resync_needed == parser.awaiting_snapshot() == set()

    run(body)


def test_level2_batch_sends_at_most_one_update_per_product_every_50_ms() -> None:
    async def body() -> None:
        async with simulator(rate=2000) as sim, connect(sim.urls["coinbase"] + "/") as ws:
            await ws.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2_batch"]}')
            frames = await frames_for(ws, 1.0)
        updates = [frame for frame, _ in frames if frame.startswith('{"type":"l2update"')]
        assert 5 <= len(updates) <= 21  # 1 s: about 20 batches (the product changes every few ms)

    run(body)


def test_a_client_that_missed_updates_in_a_silence_gets_a_new_snapshot() -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            parser = CoinbaseParser()
            async with connect(sim.urls["coinbase"] + "/") as ws:
                await ws.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2_batch"]}')
                before = await frames_for(ws, 0.2)
                await http(http_url(sim.urls["coinbase"]) + "/sim/silence?seconds=0.3")
                after = await frames_for(ws, 0.8)
            # The stream has no sequence number: the updates missed would go unnoticed without it.
            assert len([f for f, _ in after if f.startswith('{"type":"snapshot"')]) == 1
            for frame, recv_ns in before + after:
                parser.parse(frame, recv_ns)
            assert parser.stats.as_dict()["dropped"] == {}

    run(body)
