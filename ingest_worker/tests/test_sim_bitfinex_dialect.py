"""The Bitfinex dialect over real sockets: what our live Bitfinex client sends is answered as Bitfinex does,
and every frame parses whole with the Bitfinex parser, its sequence numbers without a gap."""

from __future__ import annotations

import orjson
from websockets.asyncio.client import connect

from ingest_worker.tests.recorded import lost
from ingest_worker.tests.sim_helpers import frames_for, http, http_url, recv_until, run, simulator, subscribed_parser
from ingest_worker.venues import bitfinex as bitfinex_venue
from ingest_worker.venues.bitfinex import BitfinexParser
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import Tick, is_book_lost


def test_the_pair_list_is_bitfinexs_and_our_market_list_reader_takes_it() -> None:
    async def body() -> None:
        async with simulator(venues=("bitfinex",)) as sim:
            status, answer = await http(http_url(sim.urls["bitfinex"]) + bitfinex_venue.MARKETS_PATH)
            assert (status, answer) == (200, [["BTCUSD", "ETHUSD", "SOLUSD", "XRPUSD", "ADAUSD", "USTUSD"]])
            assert bitfinex_venue.markets_from_rest(answer) == [
                ("tBTCUSD", "BTC", "USD"),
                ("tETHUSD", "ETH", "USD"),
                ("tSOLUSD", "SOL", "USD"),
                ("tXRPUSD", "XRP", "USD"),
                ("tADAUSD", "ADA", "USD"),
                ("tUSTUSD", "USDT", "USD"),
            ]

    run(body)


def test_the_live_clients_subscriptions_are_answered_and_every_frame_parses_with_zero_drops() -> None:
    async def body() -> None:
        # rate 200: each book update is up to 100 level frames
        async with simulator(venues=("bitfinex",), rate=200, heartbeat_s=0.02) as sim:
            _, answer = await http(http_url(sim.urls["bitfinex"]) + bitfinex_venue.MARKETS_PATH)
            markets = bitfinex_venue.markets_from_rest(answer)
            requests = bitfinex_venue.subscribe_messages(native for native, _, _ in markets)
            parser = BitfinexParser(SymbolTable(markets))  # strict: only listed markets are known
            async with connect(bitfinex_venue.connect_url(sim.urls["bitfinex"])) as ws:
                for request in requests:
                    await ws.send(orjson.dumps(request).decode())
                frames = await frames_for(ws, 1.0)
                await ws.send('{"event":"ping","cid":7}')
                pong = orjson.loads(await recv_until(ws, lambda text: '"pong"' in text))
                assert pong["cid"] == 7
            messages = [orjson.loads(frame) for frame, _ in frames]
            assert messages[0]["event"] == "info"
            flags = bitfinex_venue.SEQ_ALL | bitfinex_venue.OB_CHECKSUM
            assert messages[1] == {"event": "conf", "status": "OK", "flags": flags}
            subscribed = [m for m in messages if isinstance(m, dict) and m["event"] == "subscribed"]
            assert [(m["channel"], m["symbol"]) for m in subscribed] == [
                (r["channel"], r["symbol"]) for r in requests if r["event"] == "subscribe"
            ]
            assert len({m["chanId"] for m in subscribed}) == len(subscribed)
            ticker_ids = {m["chanId"]: m["symbol"] for m in subscribed if m["channel"] == "ticker"}
            sequences = [m[-1] for m in messages if isinstance(m, list)]
            assert sequences == list(range(1, len(sequences) + 1))
            kinds = {m[1] if isinstance(m[1], str) else "data" for m in messages if isinstance(m, list)}
            assert kinds == {"data", "te", "tu", "hb", "cs"}
            ticks = [tick for frame, recv_ns in frames for tick in parser.parse(frame, recv_ns)]
            assert parser.stats.as_dict()["dropped"] == {}
            assert parser.sequence_gaps == 0
            assert {tick.symbol for tick in ticks} == {
                "BTC/USD",
                "ETH/USD",
                "SOL/USD",
                "XRP/USD",
                "ADA/USD",
                "USDT/USD",
            }
            # The books give the top (the ticker stands in until each book's snapshot), and every checksum verifies.
            assert {tick.type for tick in ticks} == {"quote", "book", "trade"}
            booked: set[str] = set()
            for tick in ticks:
                if tick.type == "book":
                    booked.add(tick.symbol)
                assert tick.type != "quote" or tick.symbol not in booked
            assert parser.stats.control["cs"] > 6
            assert parser.stats.ignored["ticker_behind_book"] > 0
            assert parser.resync_needed == set()
            # After each update's changes (the checksum follows them) the book's top is that update's
            # ticker's (sent first); each book tick holds depth_levels levels a side.
            checker = BitfinexParser(SymbolTable(markets))
            book_ids = {m["chanId"]: m["symbol"] for m in subscribed if m["channel"] == "book"}
            last_ticker: dict[str, tuple[float, float]] = {}
            last_book: dict[str, Tick] = {}
            compared = 0
            for (frame, recv_ns), message in zip(frames, messages, strict=True):
                for tick in checker.parse(frame, recv_ns):
                    if tick.type == "book":
                        last_book[tick.symbol] = tick
                if not isinstance(message, list):
                    continue
                if message[0] in ticker_ids and isinstance(message[1], list):
                    last_ticker[ticker_ids[message[0]]] = (message[1][0], message[1][2])
                elif message[0] in book_ids and message[1] == "cs":
                    native = book_ids[message[0]]
                    book = last_book[checker.symbols.resolve(native)]  # type: ignore[index]
                    assert (book.bid, book.ask) == last_ticker[native]
                    assert len(book.bids or ()) == len(book.asks or ()) == parser.depth_levels
                    compared += 1
            assert compared > 6

    run(body)


def test_bad_requests_get_bitfinex_errors_and_unsubscribe_works() -> None:
    async def body() -> None:
        async with simulator(venues=("bitfinex",), rate=0) as sim:
            parser = BitfinexParser()
            async with connect(bitfinex_venue.connect_url(sim.urls["bitfinex"])) as ws:
                await ws.recv()  # info
                for request, code in (
                    ('{"event":"subscribe","channel":"ticker","symbol":"tBTCEUR"}', 10300),
                    ('{"event":"subscribe","channel":"candles","symbol":"tBTCUSD"}', 10300),
                ):
                    await ws.send(request)
                    answer = orjson.loads(await ws.recv())
                    assert (answer["event"], answer["code"]) == ("error", code)
                    assert parser.parse(orjson.dumps(answer), 0) == []
                await ws.send('{"event":"subscribe","channel":"trades","symbol":"tBTCUSD"}')
                subscribed = orjson.loads(await ws.recv())
                assert subscribed["event"] == "subscribed"
                await ws.send('{"event":"subscribe","channel":"trades","symbol":"tBTCUSD"}')
                dup = orjson.loads(await recv_until(ws, lambda text: '"error"' in text))
                assert dup["code"] == 10301
                await ws.send(orjson.dumps({"event": "unsubscribe", "chanId": subscribed["chanId"]}).decode())
                answer = orjson.loads(await recv_until(ws, lambda text: '"unsubscribed"' in text))
                assert answer == {"event": "unsubscribed", "status": "OK", "chanId": subscribed["chanId"]}
                assert await frames_for(ws, 0.1) == []

    run(body)


ASSETS_15 = (
    "BTC",
    "ETH",
    "SOL",
    "XRP",
    "ADA",
    "DOT",
    "LTC",
    "LINK",
    "AVAX",
    "ATOM",
    "UNI",
    "XLM",
    "FIL",
    "AAVE",
    "EOS",
)


def test_past_25_channels_a_connection_gets_bitfinexs_limit_error_and_stays_open() -> None:
    async def body() -> None:
        async with simulator(venues=("bitfinex",), assets=ASSETS_15) as sim:
            _, answer = await http(http_url(sim.urls["bitfinex"]) + bitfinex_venue.MARKETS_PATH)
            # The 15 assets' markets (the stablecoin reference market, tUSTUSD, left out).
            natives = [native for native, base, _ in bitfinex_venue.markets_from_rest(answer) if base in ASSETS_15]
            assert len(natives) == 15  # 45 channels: more than one connection holds
            requests = bitfinex_venue.subscribe_messages(natives)
            parser = BitfinexParser(SymbolTable(bitfinex_venue.markets_from_rest(answer)))
            async with connect(bitfinex_venue.connect_url(sim.urls["bitfinex"])) as ws:
                for request in requests:
                    await ws.send(orjson.dumps(request).decode())
                frames = await frames_for(ws, 0.5)
                await ws.send('{"event":"ping","cid":7}')
                assert orjson.loads(await recv_until(ws, lambda text: '"pong"' in text))["cid"] == 7
            events = [orjson.loads(frame) for frame, _ in frames if frame.startswith("{")]
            subscribed = [event for event in events if event["event"] == "subscribed"]
            refused = [event for event in events if event["event"] == "error"]
            assert len(subscribed) == 25
            # The twenty requests past the cap, each answered with the request's fields and code 10305.
            assert [(event["channel"], event["symbol"]) for event in refused] == [
                (request["channel"], request["symbol"]) for request in requests[1:][25:]
            ]
            assert {(event["msg"], event["code"]) for event in refused} == {
                ("subscribe: limit", bitfinex_venue.LIMIT_ERROR_CODE)
            }
            assert list(refused[0]) == ["channel", "symbol", "event", "msg", "code", "pair"]
            for frame, recv_ns in frames:
                parser.parse(frame, recv_ns)
            assert parser.stats.control["error"] == 20  # an operator sees them
            assert sim.venues["bitfinex"].status(0)["limit_refusals"] == 20

    run(body)


def test_each_book_fault_drops_the_clients_book_once_and_a_resubscription_brings_a_good_one() -> None:
    async def body() -> None:
        async with simulator(venues=("bitfinex",), rate=100) as sim:
            base = http_url(sim.urls["bitfinex"])
            async with connect(bitfinex_venue.connect_url(sim.urls["bitfinex"])) as ws:
                parser = await subscribed_parser(sim, bitfinex_venue.VENUE, ["tBTCUSD", "tETHUSD"], ws)
                assert isinstance(parser, BitfinexParser)
                for frame, recv_ns in await frames_for(ws, 0.4):
                    parser.parse(frame, recv_ns)
                for kind, reason in (("bad_checksum", "book_gap"), ("crossed", "crossed_book")):
                    assert parser.awaiting_snapshot() == set()
                    status, sent = await http(base + f"/sim/fault?venue=bitfinex&market=tBTCUSD&kind={kind}", "POST")
                    assert (status, sent["ok"], sent["clients"]) == (200, True, 1)
                    after = await frames_for(ws, 0.3)
                    # The ticks of the frames after the one that dropped the book (frames the server
                    # had queued before the fault still carry BTC/USD book ticks, rightly).
                    ticks = []
                    dropped_at: int | None = None  # the receive time of the frame that dropped the book
                    for frame, recv_ns in after:
                        parsed = parser.parse(frame, recv_ns)
                        if parser.stats.dropped[reason]:
                            dropped_at = recv_ns if dropped_at is None else dropped_at
                            ticks += parsed
                    assert parser.stats.dropped[reason] == 1, kind
                    assert parser.resync_needed == parser.awaiting_snapshot() == {"tBTCUSD"}
                    # The frame that dropped the book told the engine so, once.
                    assert dropped_at is not None
                    assert [tick for tick in ticks if is_book_lost(tick)] == [lost("bitfinex", "BTC/USD", dropped_at)]
                    # No book tick of the dropped book; the other market's book goes on.
                    books = [tick for tick in ticks if tick.type == "book" and not is_book_lost(tick)]
                    assert books
                    assert "BTC/USD" not in {tick.symbol for tick in books}
                    requests = parser.resubscribe_messages(sorted(parser.resync_needed))
                    assert [r["event"] for r in requests] == ["unsubscribe", "subscribe"]
                    parser.resync_needed.clear()  # taken, as the live client does
                    for request in requests:
                        await ws.send(orjson.dumps(request).decode())
                    again = await frames_for(ws, 0.4)
                    ticks = [tick for frame, recv_ns in again for tick in parser.parse(frame, recv_ns)]
                    assert parser.awaiting_snapshot() == set()
                    assert not [tick for tick in ticks if is_book_lost(tick)]
                    assert [tick for tick in ticks if tick.type == "book" and tick.symbol == "BTC/USD"]
                    assert parser.resync_needed == set()
                assert sum(parser.stats.dropped.values()) == 2  # one drop per fault, nothing else
                assert parser.stats.books_lost == 2  # and one book-lost tick per fault
            status, refused = await http(base + "/sim/fault?venue=bitfinex&market=tBTCUSD&kind=sideways")
            assert status == 400
            assert "error" in refused

    run(body)
