"""Stale timers in a heap: closing N frozen opportunities costs O(N log N), with exactly the
semantics of the scan it replaced (DESIGN.md lifecycle rule 3): each closes at the instant its
quote went stale (`stale_after + 1`), earliest first, ties by id; a re-evaluated one may stay open
on another fresh market; a feed going down closes what it was part of, in the order they opened.

`ScanLifecycle` below is the previous algorithm (a min() over every open opportunity on each
call, and a feed-down scan of them all), kept as the reference the heap must agree with.
"""

from __future__ import annotations

import dataclasses
import random

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from engine_worker.lifecycle import Lifecycle, Opportunity
from signals_app.contracts import tick
from signals_app.contracts.signal import FEED_DOWN, Signal

T = 1_705_670_123_000
MS = 1_000_000
STALE_MS = 2000
SETTINGS = EngineConfig(
    threshold_pct=0.5,
    fees_pct={"binance": 0.1, "coinbase": 0.1, "kraken": 0.1},
    stale_ms=STALE_MS,
    update_ms=1000,
)


class ScanLifecycle(Lifecycle):
    """The lifecycle before the heap: the earliest stale opportunity found by a scan of them all."""

    def earliest_stale(self, clock: int) -> Opportunity | None:
        earliest = min(self.open.values(), key=lambda o: (o.stale_after, o.id), default=None)
        if earliest is None or earliest.stale_after >= clock:
            return None
        return earliest


class ScanEngine(Engine):
    """The engine before the heap and the index: scans for the earliest stale and for a feed's opportunities."""

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.lifecycle = ScanLifecycle(config.threshold_pct, config.update_ms, config.stale_ms, config.fee_pct)

    def mark_down(self, exchange: str, now_ms: int) -> list[Signal]:
        self.book.drop_exchange(exchange)
        out: list[Signal] = []
        for key, opportunity in list(self.lifecycle.open.items()):
            if exchange in (opportunity.buy_exchange, opportunity.sell_exchange):
                newest = max(opportunity.last_above.buy.recv_ns, opportunity.last_above.sell.recv_ns)
                signal = self.lifecycle.observe(key, None, now_ms, newest, FEED_DOWN)
                if signal is not None:
                    out.append(signal)
        return out


def quote(exchange: str, symbol: str, bid: float, ask: float, at_ms: int) -> tick.Tick:
    return tick.quote(exchange, symbol, bid, ask, 1.0, 1.0, at_ms, at_ms * MS)


def test_ten_thousand_frozen_opportunities_each_close_at_their_own_instant_earliest_first_ties_by_id():
    # Asset i: Binance BTC-like market X/USDT ask 100 received at T + i·1999 // 10000 (five or so
    # share each millisecond), Coinbase X/USD bid 101 at T+1999 opens it (net 0.7984 %). Every
    # 10th asset also has Binance X/USDC ask 100.1 (still above: 0.6988 %) received at T+1999: when
    # its USDT quote goes stale it stays open on USDC (held: SIGNAL_UPDATE_MS is a minute here) and
    # closes at T+1999+2001, on USDC's figures. Then every feed freezes and one timer step at T+10 s
    # must close all 10,000. Names run backwards, so within one millisecond the id order is the
    # reverse of the order they opened in: the heap must order by id, not by arrival.
    count = 10_000
    engine = Engine(dataclasses.replace(SETTINGS, update_ms=60_000))
    names = [f"A{count - 1 - i:05d}" for i in range(count)]
    for i, name in enumerate(names):
        assert engine.on_tick(quote("binance", f"{name}/USDT", 99.9, 100.0, T + i * 1999 // count), T + 1998) == []
        if i % 10 == 0:
            assert engine.on_tick(quote("binance", f"{name}/USDC", 100.0, 100.1, T + 1999), T + 1999) == []
    for name in names:
        opened = engine.on_tick(quote("coinbase", f"{name}/USD", 101.0, 101.1, T + 1999), T + 1999)
        assert [(s["status"], s["buy_symbol"]) for s in opened] == [("open", f"{name}/USDT")]
    assert len(engine.lifecycle.open) == count
    assert engine.expire(T + 1999) == []

    closes = engine.expire(T + 10_000)

    expected = sorted(
        (
            (T + 4000, f"{name}:binance:coinbase:{T + 1999}", f"{name}/USDC")
            if i % 10 == 0
            else (T + i * 1999 // count + 2001, f"{name}:binance:coinbase:{T + 1999}", f"{name}/USDT")
        )
        for i, name in enumerate(names)
    )
    assert [(s["timestamp"], s["id"], s["buy_symbol"]) for s in closes] == expected
    assert {(s["status"], s["close_reason"]) for s in closes} == {("close", "stale")}
    assert all(s["duration_ms"] == s["timestamp"] - (T + 1999) for s in closes)
    assert engine.lifecycle.open == {}
    assert engine.lifecycle.by_exchange == {"binance": {}, "coinbase": {}}
    assert engine.expire(T + 20_000) == []
    assert engine.lifecycle.pending_timers == 0  # nothing left behind on the heap


def test_an_opportunity_refreshed_on_every_tick_keeps_one_timer():
    # Moving stale_after later leaves the earlier entry where it is (it moves when it comes up),
    # so a long crossing does not grow the heap by a tick's worth of entries.
    engine = Engine(SETTINGS)
    engine.on_tick(quote("binance", "BTC/USDT", 99.9, 100.0, T), T)
    assert [s["status"] for s in engine.on_tick(quote("coinbase", "BTC/USD", 101.0, 101.1, T), T)] == ["open"]
    for at in range(T + 10, T + 60_000, 10):
        exchange, symbol, bid, ask = (
            ("binance", "BTC/USDT", 99.9, 100.0) if at % 20 else ("coinbase", "BTC/USD", 101.0, 101.1)
        )
        assert engine.on_tick(quote(exchange, symbol, bid, ask, at), at) == []
        assert engine.lifecycle.pending_timers <= 2
    (close,) = engine.expire(T + 70_000)
    # Stale 2001 ms after the older of the last two refreshes: Coinbase's, at T+59,980.
    assert (close["timestamp"], close["close_reason"]) == (T + 59_980 + 2001, "stale")


def test_a_switch_to_an_older_market_brings_the_stale_instant_forward():
    # Open at T+1000 on Binance BTC/USDT (ask 100.0, received T+1000): stale after T+3000. At
    # T+1400 a late Binance BTC/USDC quote (ask 99.5, received at T) is the better market: the
    # opportunity switches to it (held within SIGNAL_UPDATE_MS) and its stale_after moves earlier,
    # to T+2000; USDT is refreshed at T+1500 with ask 100.2. The timer must fire at T+2001 (USDC
    # stale: back on USDT at 100.2, an update 1001 ms after the open), then close at T+3001 when
    # Coinbase's quote of T+1000 goes stale, not fire first at the T+3001 the open filed.
    engine = Engine(SETTINGS)
    engine.on_tick(quote("binance", "BTC/USDT", 99.9, 100.0, T + 1000), T + 1000)
    opened = engine.on_tick(quote("coinbase", "BTC/USD", 101.0, 101.1, T + 1000), T + 1000)
    assert [s["status"] for s in opened] == ["open"]
    assert engine.on_tick(quote("binance", "BTC/USDC", 99.4, 99.5, T), T + 1400) == []  # 1400 ms old already
    assert engine.lifecycle.open[("BTC", "binance", "coinbase")].last_above.buy.symbol == "BTC/USDC"
    assert engine.on_tick(quote("binance", "BTC/USDT", 100.1, 100.2, T + 1500), T + 1500) == []
    assert engine.expire(T + 2000) == []
    out = engine.expire(T + 5000)
    assert [(s["status"], s["timestamp"], s["buy_symbol"], s["buy_price"]) for s in out] == [
        ("update", T + 2001, "BTC/USDT", 100.2),
        ("close", T + 3001, "BTC/USDT", 100.2),
    ]
    assert out[1]["close_reason"] == "stale"


def random_session(seed: int, engine: Engine) -> list[Signal]:
    """Three venues, 40 assets, markets that cross, freeze, come back, and feeds that go down."""
    rng = random.Random(seed)
    markets = [
        (exchange, f"X{asset:02d}/{quote_currency}")
        for asset in range(40)
        for exchange, quote_currency in (
            ("binance", "USDT"),
            ("binance", "USDC"),
            ("coinbase", "USD"),
            ("kraken", "USD"),
        )
    ]
    frozen: set[tuple[str, str]] = set()
    out: list[Signal] = []
    clock = T
    for _ in range(6000):
        clock += rng.randrange(0, 25)
        roll = rng.random()
        if roll < 0.002:
            out.extend(engine.mark_down(rng.choice(("binance", "coinbase", "kraken")), clock))
            continue
        if roll < 0.01:
            frozen ^= {rng.choice(markets)}  # a market freezes, or a frozen one comes back
            continue
        if roll < 0.03:
            out.extend(engine.expire(clock))
            continue
        exchange, symbol = rng.choice(markets)
        if (exchange, symbol) in frozen:
            continue
        mid = 100.0 + rng.choice((0.0, 0.0, 0.0, 1.0, -1.0)) + rng.randrange(0, 5) * 0.01
        # Sometimes processed late: the quote is older than the clock (a late switch moves stale_after back).
        received = clock - (rng.randrange(0, 1500) if rng.random() < 0.1 else 0)
        out.extend(engine.on_tick(quote(exchange, symbol, mid - 0.05, mid + 0.05, received), clock))
    out.extend(engine.expire(clock + 10 * STALE_MS))
    return out


def test_random_sessions_give_exactly_the_signals_of_the_scan_they_replaced():
    for seed in range(3):
        heap = random_session(seed, Engine(SETTINGS))
        scan = random_session(seed, ScanEngine(SETTINGS))
        assert heap == scan, seed
        statuses = {s["status"] for s in heap}
        reasons = {s["close_reason"] for s in heap if s["status"] == "close"}
        assert statuses == {"open", "update", "close"}, seed  # the session exercises the whole lifecycle
        assert reasons == {"threshold", "stale", "feed_down"}, (seed, reasons)
        assert len(heap) > 300, seed
