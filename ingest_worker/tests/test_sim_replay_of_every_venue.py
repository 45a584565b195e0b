"""`--replay` knows every simulated venue: which recorded frames are answers to the recorder's own
subscriptions (left out), which markets the frames name (listed in each dialect's REST format),
and Bitfinex's channel ids, which the replayed data depends on.

Expected answers and markets are written out by hand from ../shared/market-data/SOURCES.md.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from ingest_worker.sim.replay import is_subscription_answer, load_capture, markets_in, replay_rules
from ingest_worker.sim.server import DIALECTS
from ingest_worker.tests.recorded import frames, write_capture
from ingest_worker.tests.sim_helpers import http, http_url, recv_until, run, simulator
from ingest_worker.venues import VENUES, make_parser
from ingest_worker.venues import bitfinex as bitfinex_venue
from signals_app.contracts.capture import CaptureLine
from signals_app.contracts.symbols import SymbolTable


def test_every_simulated_venue_can_be_replayed() -> None:
    assert set(replay_rules()) == set(DIALECTS) == set(VENUES)


# --- subscription answers -------------------------------------------------------------
ANSWERS = [
    ("kraken", '{"channelID":1668,"channelName":"ticker","event":"subscriptionStatus","pair":"WAVES/EUR",'
     '"status":"subscribed","subscription":{"name":"ticker"}}'),
    ("kraken", '{"errorMessage":"Currency pair not supported","event":"subscriptionStatus","pair":"NOPE/USD",'
     '"status":"error","subscription":{"name":"ticker"}}'),
    ("kraken", '{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"BTC/USD"},'
     '"success":true,"time_in":"2024-01-19T12:00:00.000000Z","time_out":"2024-01-19T12:00:00.000100Z","req_id":1}'),
    ("kraken", '{"method":"unsubscribe","result":{"channel":"trade","symbol":"BTC/USD"},"success":true,"req_id":3}'),
    ("okx", '{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}'),
    ("okx", '{"event":"unsubscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"a4d3ae55"}'),
    ("bitstamp", '{"event":"bts:subscription_succeeded","channel":"diff_order_book_btcusd","data":{}}'),
    ("bitstamp", '{"event":"bts:unsubscription_succeeded","channel":"live_trades_btcusd","data":{}}'),
]  # fmt: skip
NOT_ANSWERS = [
    ("kraken", '{"event":"heartbeat"}'),
    ("kraken", '{"connectionID":17843232920108168701,"event":"systemStatus","status":"online","version":"1.8.3"}'),
    ("kraken", '{"channel":"heartbeat"}'),
    ("kraken", '{"method":"pong","req_id":4,"time_in":"2024-01-19T12:00:00.000000Z"}'),
    ("kraken", '[1668,{"a":["2.3","1","1.0"],"b":["2.2","1","1.0"]},"ticker","WAVES/EUR"]'),
    ("okx", '{"event":"error","code":"60018","msg":"Wrong URL or channel:tickers,instId:NOPE doesn\'t exist"}'),
    ("okx", '{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT"}]}'),
    ("okx", "pong"),
    ("bitstamp", '{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}'),
    ("bitstamp", '{"event":"bts:request_reconnect","channel":"","data":""}'),
    ("bitstamp", '{"data":{"bids":[],"asks":[]},"channel":"diff_order_book_btcusd","event":"data"}'),
    ("gemini", '{"type":"heartbeat","timestamp":1618677942928}'),
    ("gemini", '{"type":"l2_updates","symbol":"ETHUSD","changes":[["buy","2368.64","0.275036"]]}'),
    # Bitfinex: the data frames name their channel by the chanId of these events: they are replayed.
    ("bitfinex", '{"event":"subscribed","channel":"ticker","chanId":232949,"symbol":"tBFTUSD","pair":"BFTUSD"}'),
    ("bitfinex", '{"event":"info","version":2,"serverId":"083bd8d4","platform":{"status":1}}'),
    ("bitfinex", '{"event":"conf","status":"OK","flags":65536}'),
    ("bitfinex", '[232949,"hb",2]'),
    # An answer of one venue is not one of another.
    ("gemini", '{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}'),
    ("bitfinex", '{"event":"bts:subscription_succeeded","channel":"live_trades_btcusd","data":{}}'),
]  # fmt: skip


@pytest.mark.parametrize(("venue", "raw"), ANSWERS)
def test_a_recorded_subscription_answer_is_recognised(venue: str, raw: str) -> None:
    assert is_subscription_answer(venue, raw)


@pytest.mark.parametrize(("venue", "raw"), NOT_ANSWERS)
def test_data_heartbeats_and_other_events_are_not_subscription_answers(venue: str, raw: str) -> None:
    assert not is_subscription_answer(venue, raw)


# Recorded answers per file, as SOURCES.md counts them.
RECORDED_ANSWERS = [
    ("kraken", "book", 10),
    ("kraken", "ticker", 10),
    ("kraken", "trade", 10),
    ("kraken", "control", 0),
    ("okx", "tickers", 9),
    ("okx", "trades", 6),
    ("okx", "books", 3),
    ("okx", "trades.20220227", 30),
    ("bitstamp", "diff_order_book", 10),
    ("bitstamp", "live_trades.20210417", 10),
    ("gemini", "l2", 0),
    ("gemini", "heartbeat", 0),
    ("bitfinex", "ticker", 0),  # 7 subscribed events: data
    ("bitfinex", "control", 0),
]


@pytest.mark.parametrize(("venue", "name", "answers"), RECORDED_ANSWERS)
def test_a_capture_of_a_recorded_file_leaves_out_its_answers_and_counts_them(
    market_data: Path, tmp_path: Path, venue: str, name: str, answers: int
) -> None:
    path = market_data / venue / f"{name}.jsonl"
    capture = load_capture(write_capture(tmp_path / "capture.jsonl", venue, [path]))
    assert capture.subscription_answers == ({venue: answers} if answers else {})
    assert len(capture.frames) == len(frames(path)) - answers
    assert capture.venues == [venue]


# --- why Kraken's answers may go and Bitfinex's must stay ---------------------------------
def test_kraken_v1_data_reads_the_same_without_the_subscription_answers(market_data: Path) -> None:
    recorded = [f for name in ("ticker", "trade", "book") for f in frames(market_data / "kraken" / f"{name}.jsonl")]
    without = [(raw, recv_ns) for raw, recv_ns in recorded if not is_subscription_answer("kraken", raw)]
    assert len(without) == len(recorded) - 30
    everything, parser = make_parser("kraken", max_age_ms=None), make_parser("kraken", max_age_ms=None)
    ticks = [tick for raw, recv_ns in recorded for tick in everything.parse(raw, recv_ns)]
    assert ticks
    assert [tick for raw, recv_ns in without for tick in parser.parse(raw, recv_ns)] == ticks


def test_bitfinex_data_is_unreadable_without_the_subscribed_events(market_data: Path) -> None:
    recorded = frames(market_data / "bitfinex" / "ticker.jsonl")
    without = [(raw, recv_ns) for raw, recv_ns in recorded if '"event":"subscribed"' not in raw]
    assert len(without) == len(recorded) - 7
    everything, parser = make_parser("bitfinex", max_age_ms=None), make_parser("bitfinex", max_age_ms=None)
    assert len([tick for raw, recv_ns in recorded for tick in everything.parse(raw, recv_ns)]) == 21
    assert [tick for raw, recv_ns in without for tick in parser.parse(raw, recv_ns)] == []


# --- markets ------------------------------------------------------------------------------
# venue -> recorded files of one session -> every spot market they name: the dialect's name, canonical symbol.
RECORDED_MARKETS: list[tuple[str, list[str], dict[str, str]]] = [
    (
        "kraken",
        ["control", "ticker", "trade", "book"],
        {  # v1 names (XBT/CHF) are listed under their v2 names
            "WAVES/EUR": "WAVES/EUR", "XMR/USD": "XMR/USD", "KSM/BTC": "KSM/BTC", "GRT/ETH": "GRT/ETH",
            "SC/EUR": "SC/EUR", "ETH/CHF": "ETH/CHF", "OCEAN/BTC": "OCEAN/BTC", "OMG/USD": "OMG/USD",
            "BTC/CHF": "BTC/CHF", "ADA/BTC": "ADA/BTC",
        },
    ),
    ("okx", ["tickers", "trades", "books"], {"BTC-USDT": "BTC/USDT"}),  # not BTC-USD-220527, UNI-USD-SWAP
    (
        "okx",
        ["tickers.20210722", "trades.20210722", "books-l2-tbt.20210722"],
        {
            "OKT-BTC": "OKT/BTC", "PAY-BTC": "PAY/BTC", "FUN-BTC": "FUN/BTC", "ONT-USDT": "ONT/USDT",
            "AUCTION-USDT": "AUCTION/USDT", "DHT-USDT": "DHT/USDT",
        },
    ),
    (
        "bitstamp",
        ["diff_order_book", "live_trades"],
        {  # sgbeur sent nothing but its subscription answers
            "adaeur": "ADA/EUR", "batbtc": "BAT/BTC", "bateur": "BAT/EUR", "ethusd": "ETH/USD",
            "galaeur": "GALA/EUR", "sgbeur": "SGB/EUR", "usdteur": "USDT/EUR", "usdtusd": "USDT/USD",
            "xlmgbp": "XLM/GBP", "xrpeur": "XRP/EUR",
        },
    ),
    (
        "gemini",
        ["heartbeat.20210624", "l2.20210624", "trade.20210624"],
        {
            "FILUSD": "FIL/USD", "BTCGBP": "BTC/GBP", "ANKRUSD": "ANKR/USD", "GRTUSD": "GRT/USD",
            "ETHEUR": "ETH/EUR", "BATBTC": "BAT/BTC", "ALCXUSD": "ALCX/USD", "LINKETH": "LINK/ETH",
            "ZECLTC": "ZEC/LTC", "LTCETH": "LTC/ETH",
        },
    ),
    (
        "bitfinex",
        ["control", "ticker", "trades", "book"],
        {
            "tBFTUSD": "BFT/USD", "tIOTETH": "IOTA/ETH", "tDOGUSD": "MDOGE/USD", "tMNABTC": "MANA/BTC",
            "tODEUSD": "ODEM/USD", "tSNGUSD": "SNGLS/USD", "tTESTBTC:TESTUSD": "TESTBTC/TESTUSD",
        },
    ),
]  # fmt: skip


def _session(market_data: Path, venue: str, names: list[str]) -> list[CaptureLine]:
    return [
        CaptureLine(recv_ns / 1e6, venue, raw)
        for name in names
        for raw, recv_ns in frames(market_data / venue / f"{name}.jsonl")
    ]


@pytest.mark.parametrize(("venue", "names", "expected"), RECORDED_MARKETS)
def test_the_markets_of_a_recorded_session_are_found(
    market_data: Path, venue: str, names: list[str], expected: dict[str, str]
) -> None:
    markets = markets_in(_session(market_data, venue, names))
    assert {market.native: market.symbol for market in markets} == expected
    assert {market.venue for market in markets} == {venue}
    assert len(markets) == len(expected)  # each once


def test_markets_are_listed_per_venue_in_order_of_first_appearance() -> None:
    frames_ = [
        CaptureLine(1.0, "gemini", '{"type":"trade","symbol":"ZECLTC","price":"1","quantity":"1"}'),
        CaptureLine(2.0, "kraken", '[1,{"a":[]},"ticker","XBT/USD"]'),
        CaptureLine(3.0, "gemini", '{"type":"l2_updates","symbol":"BTCUSD","changes":[]}'),
        CaptureLine(4.0, "kraken", '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD"}]}'),  # v2 name
        CaptureLine(5.0, "okx", '{"arg":{"channel":"trades","instId":"BTC-USD-SWAP"},"data":[]}'),
        CaptureLine(6.0, "bitfinex", '{"event":"subscribed","channel":"ticker","chanId":1,"symbol":"fUSD"}'),
        CaptureLine(7.0, "bitstamp", '{"event":"bts:heartbeat","channel":"","data":{}}'),
        CaptureLine(8.0, "kraken", "[1,{},"),  # cut
        CaptureLine(9.0, "bitfinex", '{"event":"subscribed","channel":"trades","chanId":2,"symbol":"tBTCUST"}'),
    ]
    assert [(m.index, m.venue, m.native, m.symbol) for m in markets_in(frames_)] == [
        (0, "kraken", "BTC/USD", "BTC/USD"),
        (1, "gemini", "ZECLTC", "ZEC/LTC"),
        (2, "gemini", "BTCUSD", "BTC/USD"),
        (3, "bitfinex", "tBTCUST", "BTC/USDT"),
    ]


def test_each_dialect_lists_the_recorded_markets_in_its_own_rest_format(market_data: Path, tmp_path: Path) -> None:
    """One capture of five venues; a client reading each venue's REST market list gets the recorded markets."""
    sessions: dict[str, tuple[list[str], dict[str, str]]] = {}
    for venue, names, expected in RECORDED_MARKETS:
        sessions.setdefault(venue, (names, expected))  # one session per venue
    capture = tmp_path / "capture.jsonl"
    with capture.open("wb") as out:
        for venue, (names, _) in sessions.items():
            paths = [market_data / venue / f"{name}.jsonl" for name in names]
            out.write(write_capture(tmp_path / f"{venue}.jsonl", venue, paths).read_bytes())
    wanted = {venue: expected for venue, (_, expected) in sessions.items()}

    async def body() -> None:
        async with simulator(venues=tuple(wanted), replay=capture, speed=0) as sim:
            for venue, expected in wanted.items():
                declaration = VENUES[venue]
                _, payload = await http(http_url(sim.urls[venue]) + declaration.markets_path)
                markets = declaration.read_markets(payload)
                table = SymbolTable(markets)
                assert {native: table.resolve(native) for native, _, _ in markets} == expected, venue

    run(body)


# --- Bitfinex channel ids -------------------------------------------------------------------
def test_a_replaying_bitfinex_answers_with_the_recorded_ids_and_gives_no_other_channel_one(tmp_path: Path) -> None:
    async def first_id(sim_overrides: dict[str, object], channel: str) -> int:
        async with (
            simulator(venues=("bitfinex",), **sim_overrides) as sim,
            connect(bitfinex_venue.connect_url(sim.urls["bitfinex"])) as ws,
        ):
            await ws.send(orjson.dumps({"event": "subscribe", "channel": channel, "symbol": "tBTCUSD"}).decode())
            answer = orjson.loads(await recv_until(ws, lambda text: '"subscribed"' in text))
            return int(answer["chanId"])

    async def body() -> None:
        fresh = await first_id({}, "trades")  # what the dialect hands out first with this seed
        capture = tmp_path / "bitfinex.jsonl"
        capture.write_text(
            "".join(
                orjson.dumps({"recv_ms": recv_ms, "exchange": "bitfinex", "raw": raw}).decode() + "\n"
                for recv_ms, raw in [
                    (1.0, '{"event":"subscribed","channel":"ticker","chanId":7001,"symbol":"tBTCUSD","pair":"BTCUSD"}'),
                    (2.0, f'[{fresh},"hb",1]'),  # a recorded channel that happens to have the id
                ]
            )
        )
        trades = await first_id({"replay": capture, "replay_wait": False}, "trades")
        assert trades not in (fresh, 7001)
        assert await first_id({"replay": capture, "replay_wait": False}, "ticker") == 7001

    run(body)
