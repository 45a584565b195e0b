"""GET /api/signals and close_reason: each close says why it closed, and the history filters on it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from signals_app.contracts.signal import CLOSE_REASONS
from signals_app.models import Signal
from signals_app.tests.api_fixtures import make_signal, store_signal

pytestmark = pytest.mark.django_db

URL = "/api/signals"
T0 = 1_705_670_000_000


def close(timestamp: int, reason: str | None, asset: str = "BTC") -> dict[str, Any]:
    signal = make_signal(timestamp, asset, status="close", opened_at=T0)
    if reason is not None:
        signal["close_reason"] = reason
    return signal


@pytest.fixture
def closes() -> list[Signal]:
    """An open, one close per reason, and a close from before the reasons; newest first."""
    rows = [store_signal(make_signal(T0, status="open"))]
    rows += [store_signal(close(T0 + 1000 * (i + 1), reason)) for i, reason in enumerate(CLOSE_REASONS)]
    rows.append(store_signal(close(T0 + 9000, None, asset="ETH")))
    return rows[::-1]


def results(client: Any, **params: str) -> list[dict[str, Any]]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return list(orjson.loads(response.content)["results"])


def test_every_close_carries_its_reason_and_a_close_from_before_has_none(client, closes):
    by_time = {s["timestamp"]: s for s in results(client)}
    for row in closes:
        assert by_time[row.timestamp_ms].get("close_reason") == row.close_reason
    assert [row.close_reason for row in closes] == [None, *reversed(CLOSE_REASONS), None]


@pytest.mark.parametrize("reason", [*CLOSE_REASONS, "STALE"])
def test_close_reason_filter(client, closes, reason):
    found = results(client, close_reason=reason)
    assert [(s["status"], s["close_reason"]) for s in found] == [("close", reason.lower())]


def test_close_reason_filter_combines_with_the_others(client, closes):
    assert results(client, close_reason="stale", asset="ETH") == []
    assert [s["asset"] for s in results(client, close_reason="threshold", asset="btc", status="close")] == ["BTC"]
    assert results(client, close_reason="threshold", status="open") == []


@pytest.mark.parametrize("bad", ["timeout", "<b>", "stale,threshold", "x" * 100])
def test_an_unknown_close_reason_is_a_400_naming_the_parameter(client, closes, bad):
    response = client.get(URL, {"close_reason": bad})
    assert response.status_code == 400
    message = orjson.loads(response.content)["error"]
    assert message.startswith("close_reason: ")
    assert all(reason in message for reason in CLOSE_REASONS)
