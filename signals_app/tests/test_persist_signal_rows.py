"""A stream entry becomes one Signal row with the contract's fields, or is refused with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from signals_app.contracts.signal import FIELDS, SIGNAL_TYPE, action, signal_id
from signals_app.persist import MalformedSignal, signal_row


def make_signal(**overrides: Any) -> dict[str, Any]:
    opened_at = 1705670123456
    signal: dict[str, Any] = {
        "type": SIGNAL_TYPE,
        "id": signal_id("BTC", "binance", "coinbase", opened_at),
        "status": "update",
        "action": action("binance", "coinbase"),
        "symbol": "BTC/USDT",
        "asset": "BTC",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "BTC/USDT",
        "sell_symbol": "BTC/USD",
        "buy_price": 45000.0,
        "sell_price": 45300.0,
        "spread_pct": 0.6667,
        "net_spread_pct": 0.4655,
        "size": 0.5,
        "profit_per_unit": 209.7,
        "profit_estimate": 104.85,
        "depth_size": 1.25,
        "depth_buy_vwap": 45001.2,
        "depth_sell_vwap": 45298.9,
        "depth_profit": 262.4,
        "depth_net_spread_pct": 0.4652,
        "depth_levels": [3, 2],
        "net_spread_at_target_pct": 0.4611,
        "fees_pct": {"binance": 0.1, "coinbase": 0.1},
        "opened_at": opened_at,
        "duration_ms": 1500,
        "peak_net_spread_pct": 0.5,
        "tick_recv_ns": 1705670124955000000,
        "timestamp": opened_at + 1500,
    }
    signal.update(overrides)
    return signal


def test_every_field_is_mapped_and_the_payload_kept_byte_for_byte() -> None:
    data = orjson.dumps(make_signal())
    assert tuple(orjson.loads(data)) == FIELDS  # the builder above follows the contract
    row = signal_row("1705670124956-0", data)
    assert row.stream_id == "1705670124956-0"
    assert row.signal_id == "BTC:binance:coinbase:1705670123456"
    assert (row.status, row.asset, row.action) == ("update", "BTC", "BUY_BINANCE_SELL_COINBASE")
    assert (row.buy_exchange, row.sell_exchange, row.buy_symbol, row.sell_symbol) == (
        "binance",
        "coinbase",
        "BTC/USDT",
        "BTC/USD",
    )
    assert (row.buy_price, row.sell_price, row.size) == (45000.0, 45300.0, 0.5)
    assert (row.spread_pct, row.net_spread_pct, row.peak_net_spread_pct) == (0.6667, 0.4655, 0.5)
    assert (row.profit_per_unit, row.profit_estimate) == (209.7, 104.85)
    assert (row.opened_at_ms, row.duration_ms, row.timestamp_ms) == (1705670123456, 1500, 1705670124956)
    assert (row.depth_size, row.depth_buy_vwap, row.depth_sell_vwap) == (1.25, 45001.2, 45298.9)
    assert (row.depth_profit, row.depth_net_spread_pct, row.net_spread_at_target_pct) == (262.4, 0.4652, 0.4611)
    assert row.created == datetime(2024, 1, 19, 13, 15, 24, 956000, tzinfo=UTC)
    assert row.created.tzinfo is UTC
    assert row.payload == data.decode()


def test_no_book_keeps_the_depth_fields_null_and_a_signal_from_before_depth_is_taken() -> None:
    no_book = dict.fromkeys(("depth_size", "depth_profit", "depth_net_spread_pct", "net_spread_at_target_pct"))
    row = signal_row("1-0", orjson.dumps(make_signal(**no_book)))
    assert (row.depth_size, row.depth_profit, row.net_spread_at_target_pct) == (None, None, None)
    older = {key: value for key, value in make_signal().items() if not key.startswith(("depth_", "net_spread_at"))}
    row = signal_row("2-0", orjson.dumps(older))
    assert (row.depth_size, row.depth_profit, row.depth_net_spread_pct) == (None, None, None)


def test_a_depth_figure_that_is_not_a_number_refuses_the_entry() -> None:
    for bad in ("12", True, [1.0]):
        with pytest.raises(MalformedSignal, match="depth_profit"):
            signal_row("1-0", orjson.dumps(make_signal(depth_profit=bad)))


def test_unknown_size_keeps_size_and_profit_estimate_null() -> None:
    row = signal_row("1-0", orjson.dumps(make_signal(size=None, profit_estimate=None)))
    assert (row.size, row.profit_estimate) == (None, None)


def test_integer_prices_are_taken_as_floats() -> None:
    row = signal_row("1-0", orjson.dumps(make_signal(buy_price=45000, sell_price=45300)))
    assert (row.buy_price, row.sell_price) == (45000.0, 45300.0)
    assert isinstance(row.buy_price, float)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "no 'signal' field"),
        (b"", "not a signal JSON"),
        (b"{not json", "not a signal JSON"),
        (b"\xff\xfe", "not a signal JSON"),
        (b"[1, 2]", "not a signal JSON"),
        (orjson.dumps(make_signal(type="SOMETHING_ELSE")), "not a signal JSON"),
        (orjson.dumps(make_signal(status="opened")), "status"),
        (orjson.dumps({k: v for k, v in make_signal().items() if k != "asset"}), "asset"),
        (orjson.dumps(make_signal(asset="")), "asset"),
        (orjson.dumps(make_signal(asset=7)), "asset"),
        (orjson.dumps(make_signal(asset="X" * 33)), "asset: longer than 32"),
        (orjson.dumps(make_signal(id="X" * 121)), "id: longer than 120"),
        (orjson.dumps(make_signal(buy_exchange="bin\x00ance")), "buy_exchange"),
        (orjson.dumps(make_signal(buy_price="45000")), "buy_price"),
        (orjson.dumps(make_signal(buy_price=None)), "buy_price"),
        (orjson.dumps(make_signal(buy_price=True)), "buy_price"),
        (orjson.dumps({k: v for k, v in make_signal().items() if k != "size"}), "size"),
        (orjson.dumps(make_signal(timestamp=1.5)), "timestamp"),
        (orjson.dumps(make_signal(timestamp=-1)), "timestamp"),
        (orjson.dumps(make_signal(timestamp=10**17)), "timestamp"),
        (orjson.dumps(make_signal(opened_at="yesterday")), "opened_at"),
        (orjson.dumps(make_signal(duration_ms=2**63)), "duration_ms"),
    ],
)
def test_an_entry_the_database_cannot_hold_is_refused_with_its_reason(data: bytes | None, reason: str) -> None:
    with pytest.raises(MalformedSignal, match=reason.replace("(", r"\(")):
        signal_row("1-0", data)
