"""The Gemini dialect over real sockets: what our live Gemini client sends is answered as Gemini does,
the l2 stream rebuilds the server's book, and every message parses whole with the Gemini parser."""

from __future__ import annotations

import orjson
from websockets.asyncio.client import connect

from ingest_worker.tests.recorded import lost
from ingest_worker.tests.sim_helpers import frames_for, http, http_url, run, simulator
from ingest_worker.venues import gemini as gemini_venue
from ingest_worker.venues.gemini import GeminiParser
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import BOOK, Tick, is_book_lost


def _rebuild(messages: list[dict[str, object]]) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Each symbol's book from the l2_updates, applied independently of the parser."""
    books: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for message in messages:
        if message["type"] != "l2_updates":
            continue
        symbol = str(message["symbol"])
        if "trades" in message:
            books[symbol] = ({}, {})
        bids, asks = books[symbol]
        for side, price, quantity in message["changes"]:  # type: ignore[attr-defined]
            levels = bids if side == "buy" else asks
            if float(quantity) == 0:
                levels.pop(price, None)
            else:
                levels[price] = quantity
    return books


def test_symbols_are_listed_in_lower_case_and_our_market_list_reader_takes_them() -> None:
    async def body() -> None:
        async with simulator(venues=("gemini",)) as sim:
            status, symbols = await http(http_url(sim.urls["gemini"]) + gemini_venue.MARKETS_PATH)
            assert (status, symbols) == (200, ["btcusd", "ethusd", "solusd", "xrpusd", "adausd"])
            assert gemini_venue.markets_from_rest(symbols) == [
                ("BTCUSD", "BTC", "USD"),
                ("ETHUSD", "ETH", "USD"),
                ("SOLUSD", "SOL", "USD"),
                ("XRPUSD", "XRP", "USD"),
                ("ADAUSD", "ADA", "USD"),
            ]

    run(body)


def test_the_l2_stream_starts_with_a_book_per_symbol_and_parses_with_zero_drops() -> None:
    async def body() -> None:
        async with simulator(venues=("gemini",), rate=500, heartbeat_s=0.05) as sim:
            _, listed = await http(http_url(sim.urls["gemini"]) + gemini_venue.MARKETS_PATH)
            markets = gemini_venue.markets_from_rest(listed)
            parser = GeminiParser(SymbolTable(markets))  # strict: only listed markets are known
            async with connect(gemini_venue.connect_url(sim.urls["gemini"])) as ws:
                for request in gemini_venue.subscribe_messages(native for native, _, _ in markets):
                    await ws.send(orjson.dumps(request).decode())
                frames = await frames_for(ws, 1.0)
            messages = [orjson.loads(frame) for frame, _ in frames]
            first: dict[str, dict[str, object]] = {}
            for message in messages:
                if message["type"] == "l2_updates":
                    first.setdefault(message["symbol"], message)
            assert set(first) == {"BTCUSD", "ETHUSD", "SOLUSD", "XRPUSD", "ADAUSD"}
            assert all("trades" in m and m["auction_events"] == [] for m in first.values())
            assert {m["type"] for m in messages} == {"l2_updates", "trade", "heartbeat"}
            last_quote: dict[str, Tick] = {}
            for frame, recv_ns in frames:
                for tick in parser.parse(frame, recv_ns):
                    if tick.type == BOOK:
                        last_quote[tick.symbol] = tick
            assert parser.stats.as_dict()["dropped"] == {}
            # The parser's last book tick of each symbol is the top depth_levels levels of the book
            # rebuilt here from the same frames (the server holds more than that).
            n = parser.depth_levels
            for native, (bids, asks) in _rebuild(messages).items():
                tick = last_quote[f"{native[:-3]}/USD"]
                assert len(bids) > n
                assert len(asks) > n
                assert tick.bids == [[float(p), float(bids[p])] for p in sorted(bids, key=float, reverse=True)[:n]]
                assert tick.asks == [[float(p), float(asks[p])] for p in sorted(asks, key=float)[:n]]
                assert tick.bids[0][0] < tick.asks[0][0]

    run(body)


def test_a_client_that_missed_updates_in_a_silence_gets_a_new_book() -> None:
    async def body() -> None:
        async with simulator(venues=("gemini",), rate=500) as sim:
            parser = GeminiParser()
            async with connect(gemini_venue.connect_url(sim.urls["gemini"])) as ws:
                await ws.send(orjson.dumps(gemini_venue.subscribe_messages(["BTCUSD"])[0]).decode())
                await frames_for(ws, 0.3)
                await http(http_url(sim.urls["gemini"]) + "/sim/silence?seconds=0.3")
                frames = await frames_for(ws, 0.8)
            books = [f for f, _ in frames if f.startswith('{"type":"l2_updates"') and '"trades"' in f]
            assert len(books) == 1
            for frame, recv_ns in frames:
                parser.parse(frame, recv_ns)
            assert parser.stats.as_dict()["dropped"] == {}

    run(body)


def test_bad_requests_get_a_gemini_error_and_the_connection_stays_open() -> None:
    async def body() -> None:
        async with simulator(venues=("gemini",), rate=0) as sim:
            parser = GeminiParser()
            async with connect(gemini_venue.connect_url(sim.urls["gemini"])) as ws:
                for request in (
                    "nonsense",
                    '{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCEUR"]}]}',
                ):
                    await ws.send(request)
                    answer = orjson.loads(await ws.recv())
                    assert answer["result"] == "error"
                    assert parser.parse(orjson.dumps(answer), 0) == []
            assert parser.stats.control == {"error": 2}

    run(body)


def test_a_fault_breaks_the_clients_book_and_a_resubscription_brings_a_good_one() -> None:
    async def body() -> None:
        async with simulator(venues=("gemini",), rate=300) as sim:
            base = http_url(sim.urls["gemini"])
            _, answer = await http(base + gemini_venue.MARKETS_PATH)
            markets = gemini_venue.markets_from_rest(answer)
            parser = GeminiParser(SymbolTable(markets))
            async with connect(gemini_venue.connect_url(sim.urls["gemini"])) as ws:
                for request in gemini_venue.subscribe_messages(["BTCUSD", "ETHUSD"]):
                    await ws.send(orjson.dumps(request).decode())
                before = await frames_for(ws, 0.4)
                for frame, recv_ns in before:
                    parser.parse(frame, recv_ns)
                assert parser.has_book("BTCUSD")
                assert parser.has_book("ETHUSD")
                status, sent = await http(base + "/sim/fault?venue=gemini&market=BTCUSD&kind=crossed", "POST")
                assert (status, sent["ok"], sent["clients"]) == (200, True, 1)
                after = await frames_for(ws, 0.3)
                at = [frame for frame, _ in after].index(sent["frame"])  # frames sent before it come first
                for frame, recv_ns in after[:at]:
                    parser.parse(frame, recv_ns)
                # The crossed book gave no quote but its book-lost tick: the book sent is gone.
                assert parser.parse(after[at][0], after[at][1]) == [lost("gemini", "BTC/USD", after[at][1])]
                ticks = [tick for frame, recv_ns in after[at + 1 :] for tick in parser.parse(frame, recv_ns)]
                # The symbol waits for a snapshot (told once), the other goes on.
                assert parser.stats.dropped["book_gap"] >= 1
                assert parser.resync_needed == parser.awaiting_snapshot() == {"BTCUSD"}
                assert not [tick for tick in ticks if is_book_lost(tick)]
                quotes = [tick for tick in ticks if tick.type == BOOK]
                assert quotes
                assert all(tick.bid is not None and tick.ask is not None and tick.bid < tick.ask for tick in quotes)
                assert {tick.symbol for tick in quotes} == {"ETH/USD"}
                for request in gemini_venue.resubscribe_messages(sorted(parser.resync_needed)):
                    await ws.send(orjson.dumps(request).decode())
                again = await frames_for(ws, 0.5)
                snapshots = [
                    orjson.loads(f) for f, _ in again if f.startswith('{"type":"l2_updates"') and '"trades"' in f
                ]
                assert [snapshot["symbol"] for snapshot in snapshots] == ["BTCUSD"]
                ticks = [tick for frame, recv_ns in again for tick in parser.parse(frame, recv_ns)]
                assert parser.awaiting_snapshot() == set()
                assert not [tick for tick in ticks if is_book_lost(tick)]
                assert [tick for tick in ticks if tick.type == BOOK and tick.symbol == "BTC/USD"]
                # A bad level is the other fault: the book is dropped under the bad number's reason.
                parser.resync_needed.clear()
                status, _ = await http(base + "/sim/fault?venue=gemini&market=ETHUSD&kind=bad_level")
                assert status == 200
                ticks = [tick for frame, recv_ns in await frames_for(ws, 0.3) for tick in parser.parse(frame, recv_ns)]
                assert parser.stats.dropped["bad_price"] == 1
                assert parser.resync_needed == {"ETHUSD"}
                assert [tick.symbol for tick in ticks if is_book_lost(tick)] == ["ETH/USD"]
                assert parser.stats.books_lost == 2  # one per fault
            for kind, market in (("sideways", "BTCUSD"), ("crossed", "DOGEUSD")):
                status, refused = await http(base + f"/sim/fault?venue=gemini&market={market}&kind={kind}")
                assert status == 400
                assert "error" in refused

    run(body)
