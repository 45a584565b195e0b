"""The live client follows what each venue declares about its connections: a channel cap
splits the markets over several connections, a text keepalive keeps OKX open, a dropped book is
resubscribed. The feed runs against the simulator over real sockets and pushes over real ZeroMQ."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable

import pytest
import zmq

from arbsite.redis_server import free_port
from ingest_worker import feed as feed_module
from ingest_worker.feed import LIVE, ConnectionRules, Feed, split_markets
from ingest_worker.push import TickPusher
from ingest_worker.sim.server import ExchangeSimulator
from ingest_worker.tests.recorded import assert_book_lost_once
from ingest_worker.tests.sim_helpers import http_url, run, simulator
from ingest_worker.venues import VENUES, kraken, okx
from ingest_worker.venues.base import TextKeepalive
from ingest_worker.venues.declaration import Venue
from signals_app.contracts.tick import BOOK, FEED_DOWN, FEED_UP, QUOTE, FeedState, Tick, decode_message, is_book_lost

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


# --- the declarations, read -----------------------------------------------------------
@pytest.mark.parametrize(
    ("count", "per_connection", "sizes"),
    [
        (5, None, [5]),
        (5, 12, [5]),
        (12, 12, [12]),
        (13, 12, [7, 6]),
        (15, 12, [8, 7]),
        (25, 12, [9, 8, 8]),
        (0, 12, [0]),
    ],
)
def test_markets_are_spread_evenly_over_as_few_connections_as_the_cap_allows(count, per_connection, sizes):
    natives = [f"m{index}" for index in range(count)]
    groups = split_markets(natives, per_connection)
    assert [len(group) for group in groups] == sizes
    assert [native for group in groups for native in group] == natives  # every market once, in order


def test_each_venue_declares_what_its_connections_need():
    rules = {name: ConnectionRules.of(module) for name, module in VENUES.items()}
    assert rules["bitfinex"].markets_per_connection == 8  # 25 channels, ticker + trades + book per market
    assert rules["okx"].keepalive == TextKeepalive("ping", 25.0)
    assert rules["gemini"].resubscribe is not None
    # Binance: bookTicker, trade and depth20@100ms per market, 1024 streams a connection.
    assert rules["binance"].markets_per_connection == 341
    assert rules["binance"].resubscribe is not None
    assert rules["coinbase"].resubscribe is not None
    assert rules["bitfinex"].resubscribe is not None  # the parser's own messages go first (by chanId)
    assert rules["kraken"] == ConnectionRules(None, None, kraken.resubscribe_messages)
    assert rules["okx"].resubscribe is okx.resubscribe_messages
    for name in ("bitstamp",):
        assert rules[name] == ConnectionRules(None, None, None), name


def test_a_cap_smaller_than_one_market_is_refused_at_start():
    with pytest.raises(ValueError, match="a connection holds only 1"):
        dataclasses.replace(VENUES["bitfinex"], name="tiny", max_channels_per_connection=1, channels_per_market=2)


# --- the feed against the simulator -----------------------------------------------------
class Engine:
    """The engine's end of the ZeroMQ hop: every message the feed pushed, decoded."""

    def __init__(self, endpoint: str) -> None:
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PULL)
        self.socket.connect(endpoint)
        self.messages: list[Tick | FeedState] = []

    def drain(self) -> list[Tick | FeedState]:
        while True:
            try:
                items, refused = decode_message(self.socket.recv(zmq.NOBLOCK))
            except zmq.Again:
                return self.messages
            assert not refused, refused
            self.messages.extend(items)

    def quotes(self, start: int = 0) -> list[Tick]:
        # A book tick is also the market's quote (DESIGN.md "Depth"); a book-lost tick is none.
        return [
            m for m in self.drain()[start:] if isinstance(m, Tick) and m.type in (QUOTE, BOOK) and not is_book_lost(m)
        ]

    def books(self, start: int = 0) -> list[Tick]:
        """The book ticks pushed (from message `start` on), book-lost ticks left out."""
        return [m for m in self.quotes(start) if m.type == BOOK]

    def assert_book_lost_once(self, exchange: str, symbol: str) -> None:
        """One book-lost tick was pushed, of `symbol`, between a book of it and the next (recorded.py)."""
        assert_book_lost_once(self.drain(), exchange, symbol)

    def states(self) -> list[tuple[int, str]]:
        return [(index, m.state) for index, m in enumerate(self.drain()) if isinstance(m, FeedState)]

    def close(self) -> None:
        self.socket.close(linger=0)


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


class Running:
    """A feed of one venue of `sim`, pushing to a ZeroMQ socket the test reads."""

    def __init__(self, sim: ExchangeSimulator, venue: Venue, assets: tuple[str, ...], **options: float):
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.pusher = TickPusher(endpoint, zmq.Context.instance())
        self.engine = Engine(endpoint)
        url = sim.urls[venue.name]
        self.feed = Feed(
            venue,
            ws_base=url,
            rest_base=http_url(url),
            pusher=self.pusher,
            assets=assets,
            quotes=("USD", "USDT"),
            rng=random.Random(0),
            **options,  # type: ignore[arg-type]
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.feed.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 5)
        self.engine.close()
        self.pusher.close()


def test_bitfinex_markets_past_the_channel_cap_go_over_two_connections_each_with_its_parser() -> None:
    async def body() -> None:
        async with simulator(venues=("bitfinex",), assets=ASSETS_15, rate=600) as sim:
            running = Running(sim, VENUES["bitfinex"], ASSETS_15)
            feed, engine = running.feed, running.engine
            try:
                symbols = {f"{asset}/USD" for asset in ASSETS_15}
                await until(
                    lambda: feed.state == LIVE and {q.symbol for q in engine.quotes()} == symbols,
                    10,
                    "every market quoted",
                )
                assert [len(connection.natives) for connection in feed.connections] == [8, 7]
                assert feed.connections[0].parser is not feed.connections[1].parser
                bitfinex = sim.venues["bitfinex"].status(time.time_ns())
                assert bitfinex["channels_per_connection"] == [21, 24]  # 3 a market, both under Bitfinex's 25
                assert bitfinex["limit_refusals"] == 0
                assert "error" not in feed.parse_stats().control
                assert feed.parse_stats().dropped == dict.fromkeys(feed.parse_stats().dropped, 0)
                snapshot = feed.snapshot()
                assert (snapshot["markets"], len(snapshot["connections"])) == (15, 2)
                assert snapshot["ticks_sent"] == sum(c["ticks_sent"] for c in snapshot["connections"])
                assert [(m.exchange, m.state) for m in engine.drain() if isinstance(m, FeedState)] == [
                    ("bitfinex", FEED_UP)
                ]

                # The server drops the connection of the first eight markets.
                first, second = feed.connections
                first_markets = {f"{asset}/USD" for asset in ASSETS_15[:8]}
                doomed = next(
                    client.connection
                    for client in sim.venues["bitfinex"].clients.values()  # type: ignore[attr-defined]
                    if "tBTCUSD" in {pair for _, pair in client.channels.values()}
                )
                doomed.transport.abort()
                await until(lambda: len(engine.states()) == 3 and feed.state == LIVE, 8, "down, then live again")
                assert [state for _, state in engine.states()] == [FEED_UP, FEED_DOWN, FEED_UP]
                assert (first.connects, second.connects) == (2, 1)  # the other connection was never touched
                # The engine heard the venue was down the moment one connection was, and the other
                # connection's markets kept ticking until the dropped one was back.
                down_at = engine.states()[1][0]
                after_down = engine.drain()[down_at + 1 :]
                back = next(i for i, m in enumerate(after_down) if isinstance(m, Tick) and m.symbol in first_markets)
                meanwhile = {m.symbol for m in after_down[:back] if isinstance(m, Tick)}
                assert meanwhile
                assert not meanwhile & first_markets
                assert feed.dead_declared == 0
            finally:
                await running.close()

    run(body, timeout=30)


def test_okx_stays_connected_on_its_text_keepalive_and_is_cut_off_without_it() -> None:
    async def body() -> None:
        async with simulator(venues=("okx",), okx_idle_timeout_s=0.8, rate=100) as sim:
            with_keepalive = Running(sim, okx.VENUE, ("BTC", "ETH"), ping_interval_s=0.3)
            # The same venue without its KEEPALIVE declaration: what the feed did before.
            bare = dataclasses.replace(okx.VENUE, keepalive=None)
            without = Running(sim, bare, ("SOL",), ping_interval_s=0.3)
            try:
                await asyncio.sleep(3.5)  # four idle timeouts
                kept = with_keepalive.feed.connections[0]
                assert (kept.connects, with_keepalive.feed.state) == (1, LIVE)
                assert kept.keepalives_sent >= 8
                assert with_keepalive.feed.parse_stats().control.get("pong", 0) >= 8
                assert without.feed.connects >= 2  # cut off at 0.8 s and reconnected
                assert sim.venues["okx"].status(0)["idle_closes"] >= 1
            finally:
                await with_keepalive.close()
                await without.close()

    run(body, timeout=30)


def test_a_gemini_book_that_goes_wrong_is_resubscribed_on_the_same_connection() -> None:
    async def body() -> None:
        async with simulator(venues=("gemini",), rate=400) as sim:
            running = Running(sim, VENUES["gemini"], ("BTC", "ETH"))
            feed, engine = running.feed, running.engine
            try:
                await until(lambda: {q.symbol for q in engine.quotes()} == {"BTC/USD", "ETH/USD"}, 10, "both quoted")
                connection = feed.connections[0]
                sent = sim.venues["gemini"].fault("BTCUSD", "crossed")
                assert sent["clients"] == 1
                start = len(engine.drain())
                await until(lambda: connection.resyncs == 1, 3, "a resubscription")
                await until(
                    lambda: (
                        "BTC/USD" in {q.symbol for q in engine.quotes(start)}
                        and not connection.parser.awaiting_snapshot()
                    ),
                    3,
                    "BTC/USD quoted again",
                )
                assert connection.connects == 1  # no reconnect: the one market was resubscribed
                assert feed.parse_stats().dropped["book_gap"] >= 1
                # No quote carried the bad level: the book that held it was dropped, not patched.
                phantom = float(sent["frame"].split('"buy","')[1].split('"')[0])
                quotes = [(q.symbol, q.bid, q.ask) for q in engine.quotes() if q.bid is not None and q.ask is not None]
                assert len(quotes) == len(engine.quotes())
                assert all(bid < ask for _, bid, ask in quotes)
                assert max(bid for symbol, bid, _ in quotes if symbol == "BTC/USD") < phantom
                # The engine was told, once, that the book it had been sent was gone.
                engine.assert_book_lost_once("gemini", "BTC/USD")
            finally:
                await running.close()

    run(body, timeout=30)


def test_a_resubscription_that_brings_no_snapshot_reopens_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "RESYNC_TIMEOUT_S", 1.0)

    async def body() -> None:
        async with simulator(venues=("gemini",), rate=400) as sim:
            running = Running(sim, VENUES["gemini"], ("BTC",), silence_timeout_s=30.0)
            feed, engine = running.feed, running.engine
            gemini = sim.venues["gemini"]
            try:
                await until(lambda: bool(engine.quotes()), 10, "quoted")
                gemini.fault("BTCUSD", "crossed")
                gemini.silence(None, time.time_ns())  # the resubscription will get no book
                await until(lambda: feed.resyncs == 1, 3, "a resubscription")
                await until(lambda: feed.connects == 2, 4, "the connection reopened")
                gemini.resume()
                start = len(engine.drain())
                await until(lambda: bool(engine.quotes(start)), 5, "quoted again")
                assert feed.state == LIVE
            finally:
                await running.close()

    run(body, timeout=30)


def test_a_bitfinex_book_that_fails_its_checksum_is_resubscribed_by_its_channel_id() -> None:
    async def body() -> None:
        async with simulator(venues=("bitfinex",), rate=100) as sim:
            running = Running(sim, VENUES["bitfinex"], ("BTC", "ETH"))
            feed, engine = running.feed, running.engine
            try:
                await until(lambda: {q.symbol for q in engine.quotes()} >= {"BTC/USD", "ETH/USD"}, 10, "quoted")
                connection = feed.connections[0]
                await until(lambda: connection.parser.awaiting_snapshot() == set(), 5, "books")
                sim.venues["bitfinex"].fault("tBTCUSD", "bad_checksum")
                await until(lambda: connection.resyncs == 1, 5, "tBTCUSD resubscribed")
                start = len(engine.drain())
                await until(
                    lambda: any(q.type == "book" and q.symbol == "BTC/USD" for q in engine.quotes(start)), 5, "booked"
                )
                assert connection.parser.awaiting_snapshot() == set()
                assert feed.parse_stats().dropped["book_gap"] == 1
                assert connection.connects == 1  # on the same connection: no reconnect
                status = sim.venues["bitfinex"].status(time.time_ns())
                assert "book:tBTCUSD" in status["channels"]
            finally:
                await running.close()

    run(body)
