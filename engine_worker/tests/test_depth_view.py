"""The depth panel's data (signals_app/contracts/depth_view.py): the walk's curve without its
threshold stop, computed by hand on two small books, and the engine's view of an open signal:
the books its walk read and a curve whose peak is the signal's depth."""

from __future__ import annotations

import pytest

from engine_worker.config import EngineConfig
from engine_worker.depth import curve
from engine_worker.engine import Engine
from signals_app.contracts import tick

T0 = 1_705_670_123_000
FEE = 0.001
BINANCE_BIDS = [[99.9, 1.0]]
BINANCE_ASKS = [[100.0, 1.0], [100.2, 2.0], [101.0, 5.0]]
OKX_BIDS = [[101.5, 0.5], [101.3, 1.5], [100.0, 10.0]]
OKX_ASKS = [[101.6, 1.0]]


def c(ask: float) -> float:
    return ask * (1 + FEE)


def p(bid: float) -> float:
    return bid * (1 - FEE)


def test_the_curve_takes_every_step_until_a_side_runs_out() -> None:
    points = curve(BINANCE_ASKS, OKX_BIDS, FEE, FEE, 1.0, 1.0)
    steps = [(0.5, 100.0, 101.5), (0.5, 100.0, 101.3), (1.0, 100.2, 101.3), (1.0, 100.2, 100.0), (5.0, 101.0, 100.0)]
    size = cost = profit = 0.0
    expected = [[0.0, 0.0, 0.0]]
    for q, ask, bid in steps:
        size += q
        cost += q * c(ask)
        profit += q * (p(bid) - c(ask))
        expected.append([size, cost, profit])
    assert len(points) == len(expected)  # the asks run out after 8.0
    for got, want in zip(points, expected, strict=True):
        assert got == pytest.approx(want)
    profits = [point[2] for point in points]
    assert max(profits) == profits[3]  # rises while the marginal net is positive, then falls
    assert profits[-1] < 0


def test_the_curve_is_flat_without_a_book_and_follows_the_rates() -> None:
    assert curve([], OKX_BIDS, FEE, FEE, 1.0, 1.0) == [[0.0, 0.0, 0.0]]
    # The buy market's quote worth 0.99 of the common one: every cost is 0.99 of itself.
    plain = curve(BINANCE_ASKS, OKX_BIDS, FEE, FEE, 1.0, 1.0)
    rated = curve(BINANCE_ASKS, OKX_BIDS, FEE, FEE, 0.99, 1.0)
    for (size, cost, _), (rated_size, rated_cost, _) in zip(plain, rated, strict=True):
        assert (rated_size, rated_cost) == pytest.approx((size, cost * 0.99))


def test_the_view_of_an_open_signal_is_the_books_it_walked_and_peaks_at_its_depth() -> None:
    e = Engine(EngineConfig(threshold_pct=0.5, fees_pct={"binance": 0.1, "okx": 0.1}, target_notional=500.0))
    e.on_tick(tick.book("binance", "BTC/USDT", BINANCE_BIDS, BINANCE_ASKS, T0, T0 * 1_000_000), T0)
    (opened,) = e.on_tick(tick.book("okx", "BTC/USDT", OKX_BIDS, OKX_ASKS, T0 + 1, (T0 + 1) * 1_000_000), T0 + 1)
    view = e.depth_view(opened, T0 + 1)
    assert view is not None
    assert (view["id"], view["status"], view["buy_exchange"], view["sell_exchange"]) == (
        opened["id"],
        "open",
        "binance",
        "okx",
    )
    assert (view["asks"], view["bids"]) == (BINANCE_ASKS, OKX_BIDS)
    assert view["curve"] == curve(BINANCE_ASKS, OKX_BIDS, FEE, FEE, 1.0, 1.0)
    peak = max(view["curve"], key=lambda point: point[2])
    assert peak[0] == pytest.approx(opened["depth_size"])
    assert peak[2] == pytest.approx(opened["depth_profit"])
    assert (view["depth_size"], view["threshold_pct"]) == (opened["depth_size"], 0.5)
    # A book older than STALE_MS is no longer shown.
    assert e.depth_view(opened, T0 + 1 + e.config.stale_ms + 5) is None
