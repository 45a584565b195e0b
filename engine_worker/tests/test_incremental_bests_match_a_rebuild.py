"""The engine's kept picks of each exchange's best markets (`Engine._best_in`, `book.Pick`) give the
same figures and signals as rebuilding every exchange's bests on every tick, as the engine did
before them.

`RebuildingEngine` keeps that algorithm as the reference: its `_bests` builds each quote group's
bests from the markets, rates and clock alone, and its `on_tick` is the pair loop over them. Both
engines get the same random streams: several exchanges with several markets of an asset in one
quote group (ties in price included), quotes that go stale between ticks and arrive already old,
book ticks and book-lost ticks, trades, feeds going down, stale timers, clocks that go back, and
with live rates reference markets (direct, inverse and cross) whose rates move and go stale. After
every step the signals, the open opportunities, the suspects and, at random clocks, every pair's
figures (depth included) and the spread matrix must be identical.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from engine_worker.book import AssetBook, Best, Quote
from engine_worker.config import EngineConfig
from engine_worker.engine import Bests, Engine
from engine_worker.spread import Figures
from signals_app.contracts.signal import Signal
from signals_app.contracts.tick import TRADE, Tick, book, book_lost, quote, trade

STALE_MS = 300
RATE_STALE_MS = 500
T0 = 1_705_670_000_000
EXCHANGES = ("alpha", "bravo", "charlie", "delta")
ASSET_MARKETS = (
    "BTC/USD",
    "BTC/USDT",
    "BTC/USDC",
    "BTC/EUR",
    "BTC/EURC",
    "ETH/USD",
    "ETH/USDT",
    "ETH/BTC",
)
REFERENCE_MARKETS = ("USDT/USD", "USDC/USD", "USD/USDT", "USDC/USDT", "EURC/EUR")
MIDS = {"BTC": 100.0, "ETH": 10.0}  # in every quote currency alike: the references trade near 1.0


class RebuildingEngine(Engine):
    """The engine as it was before it kept picks: every exchange's bests rebuilt on every tick."""

    def on_tick(self, tick: Tick, now_ms: int) -> list[Signal]:
        self.ticks += 1
        out: list[Signal] = []
        if now_ms > self.lifecycle.next_stale_after:
            out.extend(self.expire(now_ms))
        if tick.type == TRADE:
            self.trades += 1
            return out
        if tick.bids is not None and not tick.bids:
            lost_in = self.lose_book(tick)
            if lost_in is None:
                return out
            asset_book = lost_in
        else:
            asset_book = self.apply_quote(tick)
        exchange = tick.exchange
        if len(asset_book.exchanges) < 2:
            return out
        bests = self._bests(asset_book, now_ms)
        observe = self.lifecycle.observe
        open_now = self.lifecycle.open
        above = self._above
        asset = asset_book.asset
        recv_ns = tick.recv_ns
        for other in asset_book.exchanges:
            if other == exchange:
                continue
            buy_here = buy_there = False
            for per_exchange in bests:
                mine = per_exchange.get(exchange)
                theirs = per_exchange.get(other)
                if mine is None or theirs is None:
                    continue
                if theirs.proceeds > mine.cost * above:
                    buy_here = True
                if mine.proceeds > theirs.cost * above:
                    buy_there = True
            if buy_here or (open_now and (asset, exchange, other) in open_now):
                signal = observe(
                    (asset, exchange, other), self._best_pair(bests, exchange, other, now_ms), now_ms, recv_ns
                )
                if signal is not None:
                    out.append(signal)
            if buy_there or (open_now and (asset, other, exchange) in open_now):
                signal = observe(
                    (asset, other, exchange), self._best_pair(bests, other, exchange, now_ms), now_ms, recv_ns
                )
                if signal is not None:
                    out.append(signal)
        return out

    def _bests(self, asset_book: AssetBook, clock: int) -> Bests:
        oldest = clock - self._stale_ms
        rates = self.rates
        bests: Bests = []
        for group in asset_book.groups.values():
            per_exchange: dict[str, Best] = {}
            for exchange, markets in group.venues.items():
                priced = [
                    (market, 1.0 if rates is None else rates.rate(market.symbol.partition("/")[2], clock))
                    for market in markets
                    if market.recv_ms >= oldest
                ]
                usable: list[tuple[Quote, float]] = [(market, rate) for market, rate in priced if rate is not None]
                if usable:
                    best_ask, ask_rate = min(usable, key=lambda priced: priced[0].ask * priced[1])
                    best_bid, bid_rate = max(usable, key=lambda priced: priced[0].bid * priced[1])
                    per_exchange[exchange] = Best(best_ask, ask_rate, best_bid, bid_rate, self._fee_of(exchange))
            bests.append(per_exchange)
        return bests


def described(found: Figures | None) -> tuple[Any, ...] | None:
    """Everything a signal would print of `found`, with its markets named instead of by identity."""
    if found is None:
        return None
    return (
        (found.buy.exchange, found.buy.symbol, found.buy.recv_ms),
        (found.sell.exchange, found.sell.symbol, found.sell.recv_ms),
        *found[2:],
    )


class Scenario:
    """One random stream, applied to the engine under test and to the reference side by side."""

    def __init__(self, seed: int, quote_rates: str) -> None:
        self.rng = random.Random(seed)
        config = EngineConfig(
            fees_pct={"alpha": 0.1, "bravo": 0.2, "charlie": 0.1, "delta": 0.4},
            stale_ms=STALE_MS,
            update_ms=30,
            quote_rates=quote_rates,
            rate_stale_ms=RATE_STALE_MS,
            target_notional=300.0,
            quote_groups=(("USD", "USDT", "USDC"), ("EUR", "EURC")),
        )
        self.kept = Engine(config)
        self.rebuilt = RebuildingEngine(config)
        rng = self.rng
        # Each exchange lists a few of the markets: several of one asset in one quote group on most.
        self.markets = {exchange: rng.sample(ASSET_MARKETS, rng.randint(2, 5)) for exchange in EXCHANGES}
        self.references = {exchange: rng.sample(REFERENCE_MARKETS, rng.randint(1, 3)) for exchange in EXCHANGES}
        self.now = T0
        self.seen = Counter[str]()

    def step(self) -> None:
        rng = self.rng
        self.now += rng.choice((0, 0, 1, 2, 3, 5, 10, 20, 40, 150))
        if rng.random() < 0.02:
            self.now -= rng.randint(1, 60)  # a clock that goes back (a wall clock stepped by NTP)
        roll = rng.random()
        if roll < 0.03:
            exchange = rng.choice(EXCHANGES)
            self.both("mark_down", exchange, self.now)
            return
        if roll < 0.08:
            self.both("expire", self.now)
            return
        self.both("on_tick", self.random_tick(), self.now)
        if rng.random() < 0.25:
            self.probe(self.now + rng.randint(-2 * STALE_MS, 2 * STALE_MS))

    def random_tick(self) -> Tick:
        rng = self.rng
        exchange = rng.choice(EXCHANGES)
        listed = self.references[exchange] if rng.random() < 0.25 else self.markets[exchange]
        symbol = rng.choice(listed)
        # Received now, or a while ago (a queue), sometimes already stale on arrival.
        recv_ms = self.now - rng.choice((0, 0, 0, 2, 20, STALE_MS - 1, STALE_MS, STALE_MS + 1, 2 * STALE_MS))
        recv_ns = recv_ms * 1_000_000 + rng.randrange(1_000_000)
        kind = rng.random()
        if kind < 0.05:
            self.seen["trade"] += 1
            return trade(exchange, symbol, 1.0, 0.1, recv_ms, recv_ns)
        if kind < 0.12:
            self.seen["book_lost"] += 1
            return book_lost(exchange, symbol, recv_ms, recv_ns)
        base, _, quote_ccy = symbol.partition("/")
        if base in MIDS:
            # A coarse grid, so that markets tie on price; now and then a dislocation worth a signal,
            # and rarely a market far from the others (a suspect).
            mid = MIDS[base] * (1 + rng.randint(-6, 6) * 0.001)
            if rng.random() < 0.2:
                mid *= rng.choice((0.98, 1.02))
            if rng.random() < 0.01:
                mid *= 1.5
            if quote_ccy == "BTC":
                mid = 0.1 * (1 + rng.randint(-6, 6) * 0.001)
        else:  # a reference market: a rate near 1.0, sometimes a depeg
            mid = rng.choice((0.99, 0.995, 1.0, 1.0, 1.0, 1.005, 1.01, 1.03))
        half = mid * rng.choice((0.0005, 0.001))
        if kind < 0.45:
            self.seen["book"] += 1
            step = mid * 0.002
            depth = rng.randint(1, 4)
            bids = [[mid - half - i * step, rng.choice((0.5, 1.0, 2.0))] for i in range(depth)]
            asks = [[mid + half + i * step, rng.choice((0.5, 1.0, 2.0))] for i in range(depth)]
            return book(exchange, symbol, bids, asks, recv_ms, recv_ns)
        self.seen["quote"] += 1
        size = rng.choice((None, 0.5, 1.0, 3.0))
        return quote(exchange, symbol, mid - half, mid + half, size, rng.choice((0.5, 1.0)), recv_ms, recv_ns)

    def both(self, step: str, *args: Any) -> None:
        kept = getattr(self.kept, step)(*args)
        rebuilt = getattr(self.rebuilt, step)(*args)
        assert kept == rebuilt, f"{step}{args}"
        for signal in kept:
            self.seen[signal["status"]] += 1
            self.seen[f"close_{signal.get('close_reason', '')}"] += signal["status"] == "close"
            self.seen["with depth"] += signal.get("depth_size") is not None
        assert self.kept.lifecycle.open.keys() == self.rebuilt.lifecycle.open.keys()
        assert self.kept.lifecycle.next_stale_after == self.rebuilt.lifecycle.next_stale_after
        assert self.kept.suspects == self.rebuilt.suspects

    def probe(self, clock: int) -> None:
        """Every pair's figures at `clock` (which may lie before the last tick's), and the matrix."""
        self.seen["probes"] += 1
        for asset, asset_book in self.kept.book.assets.items():
            reference_book = self.rebuilt.book.assets[asset]
            kept_bests = self.kept._bests(asset_book, clock)
            rebuilt_bests = self.rebuilt._bests(reference_book, clock)
            for buy in asset_book.exchanges:
                for sell in asset_book.exchanges:
                    if buy == sell:
                        continue
                    found = self.kept._best_pair(kept_bests, buy, sell, clock)
                    assert described(found) == described(self.rebuilt._best_pair(rebuilt_bests, buy, sell, clock))
                    self.seen["pairs found"] += found is not None
        assert self.kept.spread_matrix(clock) == self.rebuilt.spread_matrix(clock)
        assert self.kept.suspects == self.rebuilt.suspects
        self.seen["suspects"] += bool(self.kept.suspects)
        rates = self.kept.rates
        if rates is not None:
            self.seen["a rate missing"] += rates.rate("USDT", clock) is None or rates.rate("USDC", clock) is None
            self.seen["rates all fresh"] += (
                rates.rate("USDT", clock) is not None and rates.rate("USDC", clock) is not None
            )


def run(seed: int, quote_rates: str, steps: int) -> Counter[str]:
    scenario = Scenario(seed, quote_rates)
    for _ in range(steps):
        scenario.step()
    return scenario.seen


# A seed has nothing to shrink: a failure reports its seed and the step's arguments at once.
@settings(max_examples=60, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(seed=st.integers(0, 2**32 - 1), quote_rates=st.sampled_from(("fixed", "live")))
def test_kept_picks_give_the_figures_and_signals_of_a_rebuild(seed: int, quote_rates: str) -> None:
    run(seed, quote_rates, steps=250)


@pytest.mark.parametrize("quote_rates", ["fixed", "live"])
def test_the_random_streams_reach_every_case_they_are_meant_to(quote_rates: str) -> None:
    """The comparison above means something only if the streams open, update and close signals for
    every reason, walk books, find suspects and lose books; counted over fixed seeds."""
    seen = Counter[str]()
    for seed in range(8):
        seen += run(seed, quote_rates, steps=400)
    cases = ["open", "update", "close", "with depth", "book_lost", "trade", "probes", "pairs found", "suspects"]
    if quote_rates == "live":
        cases += ["a rate missing", "rates all fresh"]
    for case in cases:
        assert seen[case] > 0, (case, seen)
    # closes at the threshold, on a stale quote, on a feed going down (whatever names they carry)
    assert seen["close"] >= 20, seen


def test_a_feed_back_in_one_quote_group_brings_nothing_back_in_another() -> None:
    """A feed that went down and came back with a market in one quote group has, in the other
    groups, no markets until they tick: what was chosen there before it went down is gone with it."""
    engines = Engine(EngineConfig(stale_ms=STALE_MS)), RebuildingEngine(EngineConfig(stale_ms=STALE_MS))
    at = T0
    for engine in engines:
        assert engine.on_tick(quote("alpha", "BTC/EUR", 90.0, 90.1, 1.0, 1.0, at, at * 1_000_000), at) == []
        assert engine.on_tick(quote("bravo", "BTC/EUR", 90.0, 90.1, 1.0, 1.0, at, at * 1_000_000), at) == []
        assert engine.on_tick(quote("alpha", "BTC/USD", 99.9, 100.0, 1.0, 1.0, at, at * 1_000_000), at) == []
        [opened] = engine.on_tick(quote("bravo", "BTC/USD", 102.0, 102.1, 1.0, 1.0, at, at * 1_000_000), at)
        assert (opened["status"], opened["buy_exchange"]) == ("open", "alpha")
        [closed] = engine.mark_down("alpha", at + 1)
        assert closed["status"] == "close"
        assert (
            engine.on_tick(quote("alpha", "BTC/EUR", 90.0, 90.1, 1.0, 1.0, at + 2, (at + 2) * 1_000_000), at + 2) == []
        )
        # bravo's BTC/USD ticks again: alpha has no BTC/USD quote since it came back, so nothing opens.
        assert (
            engine.on_tick(quote("bravo", "BTC/USD", 102.0, 102.1, 1.0, 1.0, at + 3, (at + 3) * 1_000_000), at + 3)
            == []
        )
        assert engine.spread_matrix(at + 3)["BTC"]["alpha"]["bravo"] is not None  # the EUR group's
