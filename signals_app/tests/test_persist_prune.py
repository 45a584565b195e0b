"""Retention: rows older than SIGNAL_RETENTION_DAYS are deleted, every other row is kept."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.conf import LazySettings

from signals_app import persist, tasks
from signals_app.models import Signal

pytestmark = pytest.mark.django_db

DAY_MS = 86_400_000
NOW_MS = 1_705_670_123_456


def add_row(timestamp_ms: int) -> None:
    Signal.objects.create(
        stream_id=f"{timestamp_ms}-0",
        signal_id=f"BTC:binance:coinbase:{timestamp_ms}",
        status="open",
        asset="BTC",
        action="BUY_BINANCE_SELL_COINBASE",
        buy_exchange="binance",
        sell_exchange="coinbase",
        buy_symbol="BTC/USDT",
        sell_symbol="BTC/USD",
        buy_price=1.0,
        sell_price=2.0,
        spread_pct=1.0,
        net_spread_pct=0.9,
        size=None,
        profit_per_unit=1.0,
        profit_estimate=None,
        peak_net_spread_pct=0.9,
        opened_at_ms=timestamp_ms,
        duration_ms=0,
        timestamp_ms=timestamp_ms,
        created=datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC),
        payload="{}",
    )


def kept() -> list[int]:
    return sorted(Signal.objects.values_list("timestamp_ms", flat=True))


def test_only_rows_older_than_the_retention_are_deleted() -> None:
    cutoff = NOW_MS - 30 * DAY_MS
    for timestamp_ms in (cutoff - 10 * DAY_MS, cutoff - 1, cutoff, cutoff + 1, NOW_MS, NOW_MS + 5000):
        add_row(timestamp_ms)
    assert persist.prune(30, NOW_MS) == 2
    assert kept() == [cutoff, cutoff + 1, NOW_MS, NOW_MS + 5000]
    assert persist.prune(30, NOW_MS) == 0


def test_a_large_prune_deletes_in_chunks_until_none_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persist, "PRUNE_CHUNK", 3)
    for n in range(10):
        add_row(NOW_MS - 40 * DAY_MS + n)
    add_row(NOW_MS)
    assert persist.prune(30, NOW_MS) == 10
    assert kept() == [NOW_MS]


def test_the_task_uses_signal_retention_days(settings: LazySettings) -> None:
    settings.SIGNAL_RETENTION_DAYS = 2
    now_ms = int(time.time() * 1000)
    add_row(now_ms - 3 * DAY_MS)
    add_row(now_ms - 1 * DAY_MS)
    assert tasks.prune_signals() == {"deleted": 1}
    assert kept() == [now_ms - 1 * DAY_MS]
