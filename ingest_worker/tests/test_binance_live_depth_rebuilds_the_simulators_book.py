"""Binance depth over real sockets: what our live client subscribes to parses with zero drops into
book ticks holding the simulator's own book, the top always the bookTicker's; and a client
following Binance's "How to manage a local order book correctly" (diff stream + REST snapshot)
holds exactly the server's book after every event, whatever the snapshot's limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from ingest_worker.sim.binance import DIFF_LEVELS, BinanceServer, decimal8
from ingest_worker.sim.depth import Levels
from ingest_worker.tests.sim_helpers import frames_for, http, http_url, live_client_frames, run, simulator
from ingest_worker.venues.binance import BinanceParser
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import BOOK, QUOTE

Side = list[list[str]]
ServerBooks = dict[tuple[str, int, int], tuple[Side, Side]]  # (native, update id, levels) -> bids, asks


def record_server_books(server: BinanceServer) -> ServerBooks:
    """Every book the server builds a frame or an answer from, as Binance prints it, by update id."""
    books: ServerBooks = {}
    build: Callable[[str, int], tuple[Levels, Levels]] = server.frames.book

    def recording(native: str, levels: int) -> tuple[Levels, Levels]:
        bids, asks = build(native, levels)
        market = server.frames.latest[native].market
        d, s = market.price_decimals, market.size_decimals
        printed = tuple([[decimal8(p, d), decimal8(q, s)] for p, q in side] for side in (bids, asks))
        books[native, server.frames.update_id[native], levels] = printed  # type: ignore[assignment]
        return bids, asks

    server.frames.book = recording  # type: ignore[method-assign]
    return books


def as_floats(side: Side) -> list[list[float]]:
    return [[float(price), float(size)] for price, size in side]


def test_the_live_subscriptions_give_book_ticks_of_the_servers_book_whose_top_is_the_bookTickers() -> None:
    async def body() -> None:
        async with simulator(rate=500) as sim:
            server = sim.venues["binance"]
            assert isinstance(server, BinanceServer)
            books = record_server_books(server)
            markets, frames = await live_client_frames(sim, "binance", 1.2)
            parser = BinanceParser(SymbolTable(markets))
            last_ticker: dict[str, dict[str, Any]] = {}  # native -> its latest bookTicker
            depth_frames: dict[str, int] = {}
            for frame, recv_ns in frames:
                message = orjson.loads(frame)
                ticks = parser.parse(frame, recv_ns)
                if "stream" not in message:
                    continue  # the SUBSCRIBE answers
                native, kind = message["stream"].split("@", 1)
                native = native.upper()
                data = message["data"]
                if kind == "bookTicker":
                    last_ticker[native] = data
                elif kind == "depth20@100ms":
                    depth_frames[native] = depth_frames.get(native, 0) + 1
                    bids, asks = books[native, data["lastUpdateId"], 20]
                    assert (data["bids"], data["asks"]) == (bids, asks)  # the server's book, its top 20
                    # The same top as the latest bookTicker, which carried the same update id.
                    ticker = last_ticker[native]
                    assert ticker["u"] == data["lastUpdateId"]
                    assert [ticker["b"], ticker["B"], ticker["a"], ticker["A"]] == [*bids[0], *asks[0]]
                    if ticks:
                        (book_tick,) = ticks
                        assert book_tick.type == BOOK
                        assert (book_tick.bids, book_tick.asks) == (as_floats(bids), as_floats(asks))
                        assert (book_tick.bid, book_tick.ask) == (float(bids[0][0]), float(asks[0][0]))
            assert parser.stats.as_dict()["dropped"] == {}
            assert set(depth_frames) == {native for native, _, _ in markets}
            # Pushed at most every 100 ms per market (1.2 s of frames: at most 13 each).
            assert max(depth_frames.values()) <= 13
            assert parser.stats.ticks > 0
            assert parser.resync_needed == set()

    run(body)


def test_the_raw_stream_form_names_its_market_by_the_url() -> None:
    async def body() -> None:
        async with simulator(rate=300) as sim:
            stream = "ethusdt@depth10@100ms"
            parser = BinanceParser(stream=stream)
            async with connect(f"{sim.urls['binance']}/ws/{stream}") as ws:
                frames = await frames_for(ws, 0.6)
            assert frames
            ticks = [tick for frame, recv_ns in frames for tick in parser.parse(frame, recv_ns)]
            assert parser.stats.as_dict()["dropped"] == {}
            assert ticks
            assert {(tick.symbol, tick.type) for tick in ticks} == {("ETH/USDT", BOOK)}
            assert all(len(tick.bids) == len(tick.asks) == 10 for tick in ticks)  # type: ignore[arg-type]

    run(body)


def apply(book: dict[str, dict[str, str]], event: dict[str, Any]) -> None:
    for side, changes in (("bids", event["b"]), ("asks", event["a"])):
        for price, size in changes:
            if float(size) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = size


def printed(book: dict[str, dict[str, str]]) -> tuple[Side, Side]:
    bids = sorted(book["bids"].items(), key=lambda level: -float(level[0]))
    asks = sorted(book["asks"].items(), key=lambda level: float(level[0]))
    return [list(level) for level in bids], [list(level) for level in asks]


@pytest.mark.parametrize("limit", [1000, 5])
def test_rest_snapshot_and_diff_events_rebuild_the_servers_book_after_every_event(limit: int) -> None:
    """Binance's procedure, applied here without our parser, and by our parser (seed + parse)."""

    async def body() -> None:
        async with simulator(rate=500) as sim:
            server = sim.venues["binance"]
            assert isinstance(server, BinanceServer)
            books = record_server_books(server)
            base = sim.urls["binance"]
            parser = BinanceParser()
            async with connect(f"{base}/stream?streams=btcusdt@depth@100ms") as ws:
                held = await frames_for(ws, 0.35)  # 1. buffer the events
                assert held
                url = f"{http_url(base)}/api/v3/depth?symbol=BTCUSDT&limit={limit}"
                status, snapshot = await http(url)  # 2. the snapshot
                assert status == 200
                frames = held + await frames_for(ws, 0.8)
            assert len(snapshot["bids"]) == len(snapshot["asks"]) == min(limit, DIFF_LEVELS)
            book = {"bids": dict(snapshot["bids"]), "asks": dict(snapshot["asks"])}
            applied = 0
            previous_final: int | None = None
            parser_ticks = parser.seed(url, orjson.dumps(snapshot), frames[0][1])
            for frame, recv_ns in frames:
                event = orjson.loads(frame)["data"]
                assert event["e"] == "depthUpdate"
                assert event["s"] == "BTCUSDT"
                if previous_final is not None:
                    assert event["U"] == previous_final + 1  # every event follows the one before
                previous_final = event["u"]
                parser_ticks += parser.parse(frame, recv_ns)
                if event["u"] <= snapshot["lastUpdateId"]:
                    continue  # 3. older than the snapshot
                if applied == 0:
                    assert event["U"] <= snapshot["lastUpdateId"] + 1 <= event["u"]  # 4. the first one bridges it
                apply(book, event)
                applied += 1
                bids, asks = books["BTCUSDT", event["u"], DIFF_LEVELS]
                assert printed(book) == (bids, asks)  # the whole server book, even from a 5-level snapshot
            assert applied >= 3
            assert parser.stats.as_dict()["dropped"] == {}
            assert parser.resync_needed == parser.awaiting_snapshot() == set()
            top = printed(book)
            last = [tick for tick in parser_ticks if tick.type == BOOK][-1]
            assert (last.bids, last.asks) == (as_floats(top[0][:20]), as_floats(top[1][:20]))
            assert not [tick for tick in parser_ticks if tick.type == QUOTE]

    run(body)


def test_a_bad_depth_request_gets_binances_error() -> None:
    async def body() -> None:
        async with simulator(rate=0) as sim:
            base = http_url(sim.urls["binance"])
            assert (await http(base + "/api/v3/depth"))[1]["code"] == -1102
            assert (await http(base + "/api/v3/depth?symbol=DOGEUSDT"))[1]["code"] == -1121
            assert (await http(base + "/api/v3/depth?symbol=BTCUSDT&limit=lots"))[1]["code"] == -1100

    run(body)
