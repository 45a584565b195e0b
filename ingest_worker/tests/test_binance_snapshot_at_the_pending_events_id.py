"""The race behind a once-flaky live-depth test, made deterministic: a REST snapshot served at
the very update id the next diff event ends on.

Update ids move with every quote, diff events at most every 100 ms, so a snapshot is often served
while the stream owes an event up to its lastUpdateId. When no quote comes before that event is
built, the event ends exactly on the snapshot's id (`u == lastUpdateId`), and a client following
Binance's procedure drops it as older than its snapshot. It must still reach the whole server
book on the first event it applies, even from a 5-level snapshot: the simulator keeps naming the
snapshot's differences until an event beyond the snapshot's id is built.

The simulator runs on real sockets with a frozen clock and no quote rate; the test makes each
step itself (a quote, then the due depth events, flushed), so the order of things is exact.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from ingest_worker.sim.binance import DIFF_LEVELS, BinanceServer, decimal8
from ingest_worker.sim.depth import IncrementalSide, book_levels
from ingest_worker.sim.model import Quote
from ingest_worker.sim.server import ExchangeSimulator
from ingest_worker.tests.sim_helpers import config, http, http_url, recv_until, run
from ingest_worker.tests.test_binance_live_depth_rebuilds_the_simulators_book import apply, printed

NATIVE = "BTCUSDT"
STREAM = "btcusdt@depth@100ms"
MS = 1_000_000


class Clock:
    """A clock that moves only when the test moves it (the simulator's own steps then change nothing)."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns


def step(sim: ExchangeSimulator, clock: Clock, at_ms: int, quote: Quote | None) -> None:
    """One simulator step at `at_ms` past the start, as `step_model` makes it: the quote, the due depth, sent."""
    server = sim.venues["binance"]
    clock.now_ns = clock.start_ns + at_ms * MS
    server.publish([quote] if quote is not None else [], False)
    server.due(clock.now_ns, False)
    server.flush()


def moved(quote: Quote, ticks: int) -> Quote:
    """`quote` with its top `ticks` ticks higher (new levels at the top, others gone at the bottom)."""
    return quote._replace(bid=quote.bid + ticks, ask=quote.ask + ticks)


def printed_book(quote: Quote) -> tuple[list[list[str]], list[list[str]]]:
    d, s = quote.market.price_decimals, quote.market.size_decimals
    bids, asks = book_levels(quote, DIFF_LEVELS)
    return ([[decimal8(p, d), decimal8(q, s)] for p, q in bids], [[decimal8(p, d), decimal8(q, s)] for p, q in asks])


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    frame = await recv_until(ws, lambda text: '"depthUpdate"' in text, within_s=2.0)
    event: dict[str, Any] = orjson.loads(frame)["data"]
    return event


def test_an_event_ending_on_the_snapshots_id_is_dropped_and_the_next_one_still_rebuilds_the_whole_book() -> None:
    async def body() -> None:
        clock = Clock(time.time_ns())
        sim = ExchangeSimulator(config(venues=("binance",), rate=0), clock=clock)
        await sim.start()
        try:
            server = sim.venues["binance"]
            assert isinstance(server, BinanceServer)
            sim.step_model(clock.now_ns)  # the first step quotes every market (before the feed's own task runs)
            first = server.frames.latest[NATIVE]
            base = sim.urls["binance"]
            async with connect(f"{base}/stream?streams={STREAM}") as ws:
                await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
                assert orjson.loads(await recv_until(ws, lambda text: '"id":1' in text))["result"] == [STREAM]
                step(sim, clock, 200, moved(first, 3))  # an event: the stream's clients hold this book
                before = await next_event(ws)
                second = moved(first, 5)
                step(sim, clock, 210, second)  # a quote, no event yet (100 ms not over)
                status, snapshot = await http(f"{http_url(base)}/api/v3/depth?symbol={NATIVE}&limit=5")
                assert status == 200
                last_update_id = snapshot["lastUpdateId"]
                assert last_update_id == server.frames.update_id[NATIVE] > before["u"]
                step(sim, clock, 320, None)  # the event owed since the quote: it ends on the snapshot's id
                dropped = await next_event(ws)
                assert dropped["U"] == before["u"] + 1
                assert dropped["u"] == last_update_id  # 3. a client drops it (u <= lastUpdateId)
                third = moved(first, 8)
                step(sim, clock, 430, third)
                applied = await next_event(ws)
            assert applied["U"] == last_update_id + 1  # 4. the first event it applies bridges the snapshot
            book = {"bids": dict(snapshot["bids"]), "asks": dict(snapshot["asks"])}
            apply(book, applied)
            assert printed(book) == printed_book(third)  # all 100 levels a side, not the snapshot's 5 and a few
        finally:
            await sim.close()

    run(body)


# --- IncrementalSide alone (pure logic) ---------------------------------------------------
def apply_changes(book: dict[int, int], changes: list[tuple[int, int]]) -> dict[int, int]:
    held_book = dict(book)
    for price, size in changes:
        if size:
            held_book[price] = size
        else:
            held_book.pop(price, None)
    return held_book


def test_a_snapshot_outlives_the_updates_its_client_drops_and_no_longer() -> None:
    last = {100: 1, 99: 2, 98: 3}
    now = {101: 4, 100: 1, 99: 2, 98: 3, 97: 5}
    snapshot = {101: 4, 100: 1}  # the top two levels of `now`, at update id 7
    side = IncrementalSide(last)
    side.served(snapshot, 7)
    ending_on_it = side.changes(now, 7)
    assert apply_changes(last, ending_on_it) == now  # the last event's clients are level
    later = {102: 6, 101: 4, 100: 1, 99: 2, 98: 3}
    beyond = side.changes(later, 9)  # the snapshot's client applies this one, from its snapshot
    assert apply_changes(snapshot, beyond) == apply_changes(now, beyond) == later
    assert side.changes(later, 12) == []  # all of them hold `later` now: the snapshot is gone
    assert side.held == [(later, None)]


def test_a_snapshot_without_an_id_is_held_until_the_next_update_as_before() -> None:
    side = IncrementalSide({100: 1})
    side.served({100: 2})
    assert side.changes({100: 1}) == [(100, 1)]  # the snapshot's client needs it
    assert side.changes({100: 1}) == []
