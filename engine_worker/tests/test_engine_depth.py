"""The engine walks the two books of every pair it evaluates (DESIGN.md "Depth"): the figures in the
signal are the hand-computed walk, null without a book on both sides, never from a level better than
a newer top or from a book gone stale, and an update is due when only the depth changed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from engine_worker.book import Quote
from engine_worker.config import EngineConfig
from engine_worker.depth import walk
from engine_worker.engine import Engine
from signals_app.contracts import tick
from signals_app.contracts.signal import DEPTH_FIELDS

T0 = 1_705_670_123_000
FEE = 0.001  # 0.1 % on both venues

BINANCE_BIDS = [[99.9, 1.0]]
BINANCE_ASKS = [[100.0, 1.0], [100.2, 2.0], [101.0, 5.0]]
OKX_BIDS = [[101.5, 0.5], [101.3, 1.5], [100.0, 10.0]]
OKX_ASKS = [[101.6, 1.0]]


def engine(**overrides: object) -> Engine:
    settings: dict[str, object] = {"threshold_pct": 0.5, "fees_pct": {"binance": 0.1, "okx": 0.1}}
    settings.update(target_notional=500.0)
    settings.update(overrides)
    return Engine(EngineConfig(**settings))  # type: ignore[arg-type]


def book(exchange: str, bids: tick.Levels, asks: tick.Levels, at_ms: int) -> tick.Tick:
    return tick.book(exchange, "BTC/USDT", bids, asks, at_ms, at_ms * 1_000_000)


def cost(ask: float) -> float:
    return ask * (1 + FEE)


def proceeds(bid: float) -> float:
    return bid * (1 - FEE)


def test_an_open_carries_the_walk_of_both_books_as_computed_by_hand() -> None:
    e = engine()
    assert e.on_tick(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0), T0) == []
    (opened,) = e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 1), T0 + 1)
    assert (opened["status"], opened["buy_exchange"], opened["sell_exchange"]) == ("open", "binance", "okx")
    # Steps: 0.5 at 100.0/101.5, 0.5 at 100.0/101.3, 1.0 at 100.2/101.3; then 100.2 against 100.0 is a loss.
    spent = 1.0 * cost(100.0) + 1.0 * cost(100.2)
    got = 0.5 * proceeds(101.5) + 1.5 * proceeds(101.3)
    assert opened["depth_size"] == pytest.approx(2.0)
    assert opened["depth_buy_vwap"] == pytest.approx((1.0 * 100.0 + 1.0 * 100.2) / 2.0)
    assert opened["depth_sell_vwap"] == pytest.approx((0.5 * 101.5 + 1.5 * 101.3) / 2.0)
    assert opened["depth_profit"] == pytest.approx(got - spent)
    assert opened["depth_net_spread_pct"] == round((got - spent) / spent * 100, 4)
    assert opened["depth_levels"] == [2, 2]
    # TARGET_NOTIONAL 500: 100.1 + 200.6004 spent on the first two ask levels, the rest at 101.0.
    rest = 500.0 - cost(100.0) - 2.0 * cost(100.2)
    quantity = 3.0 + rest / cost(101.0)
    sold = 0.5 * proceeds(101.5) + 1.5 * proceeds(101.3) + (quantity - 2.0) * proceeds(100.0)
    assert opened["net_spread_at_target_pct"] == round((sold - 500.0) / 500.0 * 100, 4)
    # The first step's marginal net is the top-of-book net: depth says how much of it is there.
    assert opened["net_spread_pct"] == round((proceeds(101.5) - cost(100.0)) / cost(100.0) * 100, 4)


def test_a_target_the_books_cannot_fill_is_null_and_max_notional_caps_the_walk() -> None:
    e = engine(target_notional=1_000_000.0, max_notional=150.0)
    e.on_tick(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0), T0)
    (opened,) = e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 1), T0 + 1)
    assert opened["net_spread_at_target_pct"] is None
    # 150 of cost: 0.5 + 0.5 at 100.1 each, then 49.9 / 100.3002 of the second ask level.
    assert opened["depth_size"] == pytest.approx(1.0 + (150.0 - 1.0 * cost(100.0)) / cost(100.2))
    assert opened["depth_levels"] == [2, 2]


def test_quotes_without_books_leave_every_depth_field_null() -> None:
    e = engine()
    e.on_tick(tick.quote("binance", "BTC/USDT", 99.9, 100.0, 1.0, 1.0, T0, T0 * 1_000_000), T0)
    (opened,) = e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 1), T0 + 1)  # a book on one side only
    assert opened["status"] == "open"
    assert {field: opened[field] for field in DEPTH_FIELDS} == dict.fromkeys(DEPTH_FIELDS)


def test_a_newer_quote_moves_the_top_and_levels_better_than_it_are_never_walked() -> None:
    e = engine()
    e.on_tick(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0), T0)
    e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 1), T0 + 1)
    # Binance's best ask (100.0 for 1.0) was taken: its bookTicker says 100.2 for 0.4 now.
    e.on_tick(tick.quote("binance", "BTC/USDT", 99.9, 100.2, 1.0, 0.4, T0 + 2, (T0 + 2) * 1_000_000), T0 + 2)
    ((_, opportunity),) = e.lifecycle.open.items()
    figures = opportunity.last_above
    assert figures.depth is not None
    expected = walk([[100.2, 0.4], [101.0, 5.0]], OKX_BIDS, FEE, FEE, 1.0, 1.0, 0.5, 500.0)
    assert figures.depth == expected  # 100.0 is gone; 100.2's old size 2.0 gave way to the newer 0.4


def test_a_book_older_than_stale_ms_takes_no_part_while_its_quotes_are_fresh() -> None:
    e = engine(stale_ms=2000)
    e.on_tick(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0), T0)
    e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 1), T0 + 1)
    later = T0 + 2500  # Binance's book is 2.5 s old; its quotes keep coming
    e.on_tick(tick.quote("binance", "BTC/USDT", 99.9, 100.0, 1.0, 1.0, later, later * 1_000_000), later)
    e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, later), later)
    ((_, opportunity),) = e.lifecycle.open.items()
    assert opportunity.last_above.depth is None


def test_an_update_is_due_when_only_the_depth_changed() -> None:
    e = engine(update_ms=1000)
    e.on_tick(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0), T0)
    (opened,) = e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 1), T0 + 1)
    assert opened["depth_size"] == pytest.approx(2.0)
    # Same top, a deeper second bid level on OKX: after SIGNAL_UPDATE_MS, an update with the new depth.
    deeper = [[101.5, 0.5], [101.3, 4.0], [100.0, 10.0]]
    assert e.on_tick(book("okx", deeper, OKX_ASKS, T0 + 500), T0 + 500) == []  # throttled
    (updated,) = e.on_tick(book("okx", deeper, OKX_ASKS, T0 + 1001), T0 + 1001)
    assert updated["status"] == "update"
    assert (updated["buy_price"], updated["sell_price"], updated["size"]) == (
        opened["buy_price"],
        opened["sell_price"],
        opened["size"],
    )
    assert updated["depth_size"] == pytest.approx(3.0)  # 100.0 for 1.0, then 100.2 for 2.0 at 101.3
    assert e.on_tick(book("okx", deeper, OKX_ASKS, T0 + 1900), T0 + 1900) == []  # nothing changed: no update


def test_the_matrix_and_the_signals_walk_the_same_books() -> None:
    e = engine()
    e.on_tick(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0), T0)
    (opened,) = e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 1), T0 + 1)
    assert round(e.spread_matrix(T0 + 1)["BTC"]["binance"]["okx"] or 0.0, 4) == opened["net_spread_pct"]


class Counted(Sequence[list[float]]):
    """Levels that count how many of them a walk reads."""

    def __init__(self, levels: list[list[float]]) -> None:
        self.levels = levels
        self.read = 0

    def __len__(self) -> int:
        return len(self.levels)

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        self.read += 1
        return self.levels[index]

    def __iter__(self) -> Iterator[list[float]]:
        for level in self.levels:
            self.read += 1
            yield level


def test_an_evaluation_reads_the_levels_it_walks_not_the_whole_book() -> None:
    # 1,000 levels a side, a dislocation two levels deep: the walk and the target read a handful.
    asks = Counted([[100.0, 1.0], [100.2, 2.0], *([101.0 + i * 0.01, 5.0] for i in range(998))])
    bids = Counted([[101.5, 0.5], [101.3, 1.5], *([100.0 - i * 0.01, 10.0] for i in range(998))])
    e = engine()
    e.on_tick(book("binance", BINANCE_BIDS, asks, T0), T0)  # type: ignore[arg-type]
    (opened,) = e.on_tick(book("okx", bids, OKX_ASKS, T0 + 1), T0 + 1)  # type: ignore[arg-type]
    assert opened["depth_levels"] == [2, 2]
    assert asks.read + bids.read <= 16
    # A newer top in front of the same 1,000-level book: still only the levels walked are read.
    asks.read = bids.read = 0
    e.on_tick(tick.quote("binance", "BTC/USDT", 99.9, 100.0, 1.0, 0.8, T0 + 2, (T0 + 2) * 1_000_000), T0 + 2)
    assert asks.read + bids.read <= 16


def test_the_book_slot_keeps_its_levels_across_quote_ticks() -> None:
    slot = Quote("binance", "BTC/USDT")
    slot.update(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0))
    slot.update(tick.quote("binance", "BTC/USDT", 99.9, 100.0, 1.0, 1.0, T0 + 1, (T0 + 1) * 1_000_000))
    assert slot.book_recv_ms == T0
    assert not slot.book_is_top
    assert list(slot.ask_levels(T0) or []) == [(100.0, 1.0), [100.2, 2.0], [101.0, 5.0]]
    slot.forget_levels()
    assert slot.ask_levels(0) is None
