"""A book-lost tick (signals_app/contracts/tick.py): the venue dropped the market's book. The engine
walks nothing of it from that tick on; the market's quote goes with it when the book was its newest
top, and stays (without depth) when a newer quote tick had moved the top; open opportunities are
re-evaluated on the spot, so one that lived on the lost book closes at that tick."""

from __future__ import annotations

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from signals_app.contracts import tick
from signals_app.contracts.signal import DEPTH_FIELDS

T0 = 1_705_670_123_000
BINANCE_BIDS = [[99.9, 1.0]]
BINANCE_ASKS = [[100.0, 1.0], [100.2, 2.0], [101.0, 5.0]]
OKX_BIDS = [[101.5, 0.5], [101.3, 1.5], [100.0, 10.0]]
OKX_ASKS = [[101.6, 1.0]]


def engine() -> Engine:
    return Engine(
        EngineConfig(threshold_pct=0.5, fees_pct={"binance": 0.1, "okx": 0.1}, update_ms=0, target_notional=500.0)
    )


def book(exchange: str, bids: tick.Levels, asks: tick.Levels, at_ms: int) -> tick.Tick:
    return tick.book(exchange, "BTC/USDT", bids, asks, at_ms, at_ms * 1_000_000)


def lost(exchange: str, at_ms: int) -> tick.Tick:
    return tick.book_lost(exchange, "BTC/USDT", at_ms, at_ms * 1_000_000)


def opened(e: Engine) -> dict[str, object]:
    assert e.on_tick(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0), T0) == []
    (signal,) = e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 1), T0 + 1)
    assert signal["status"] == "open"
    assert signal["depth_size"] == 2.0
    return dict(signal)


def test_a_lost_book_that_was_the_top_takes_the_quote_with_it_and_closes_what_it_was_part_of() -> None:
    e = engine()
    first = opened(e)
    (closed,) = e.on_tick(lost("okx", T0 + 2), T0 + 2)
    assert (closed["status"], closed["id"]) == ("close", first["id"])
    assert closed["close_reason"] == "stale"  # its quote is no longer usable: gone with the book
    assert not e.has_quote("okx", "BTC/USDT")
    assert e.has_quote("binance", "BTC/USDT")
    assert e.spread_matrix(T0 + 3)["BTC"]["binance"]["okx"] is None
    # Binance's ticks alone bring nothing back; OKX's next book does, walked afresh.
    assert e.on_tick(book("binance", BINANCE_BIDS, BINANCE_ASKS, T0 + 4), T0 + 4) == []
    (again,) = e.on_tick(book("okx", OKX_BIDS, OKX_ASKS, T0 + 5), T0 + 5)
    assert (again["status"], again["depth_size"]) == ("open", 2.0)
    assert e.has_quote("okx", "BTC/USDT")


def test_a_newer_quote_stays_after_its_markets_book_is_lost_and_depth_goes_null() -> None:
    e = engine()
    first = opened(e)
    # OKX's ticker moves the top after the book: the walk takes it, then the book's levels behind it.
    quote = tick.quote("okx", "BTC/USDT", 101.4, 101.6, 1.0, 1.0, T0 + 2, (T0 + 2) * 1_000_000)
    (updated,) = e.on_tick(quote, T0 + 2)
    assert updated["status"] == "update"
    assert updated["depth_size"] is not None
    (after,) = e.on_tick(lost("okx", T0 + 3), T0 + 3)
    # Still open on the ticker's top, but nothing of the lost book is walked: every depth field null.
    assert (after["status"], after["id"], after["net_spread_pct"]) == ("update", first["id"], updated["net_spread_pct"])
    assert {field: after[field] for field in DEPTH_FIELDS} == dict.fromkeys(DEPTH_FIELDS)
    assert e.has_quote("okx", "BTC/USDT")
    # A later ticker quote is not walked in front of the old levels either.
    quote = tick.quote("okx", "BTC/USDT", 101.45, 101.6, 1.0, 1.0, T0 + 4, (T0 + 4) * 1_000_000)
    (later,) = e.on_tick(quote, T0 + 4)
    assert later["depth_size"] is None


def test_a_lost_book_of_a_market_never_quoted_changes_nothing() -> None:
    e = engine()
    first = opened(e)
    assert e.on_tick(tick.book_lost("okx", "ETH/USDT", T0 + 2, (T0 + 2) * 1_000_000), T0 + 2) == []
    assert e.lifecycle.open[("BTC", "binance", "okx")].id == first["id"]
    assert not e.has_quote("okx", "ETH/USDT")
