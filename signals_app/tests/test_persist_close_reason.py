"""The persistence task fills `close_reason` from a close; an old close has none; a bad one is refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from signals_app.contracts.signal import CLOSE_REASONS
from signals_app.persist import MalformedSignal, signal_row
from signals_app.tests.api_fixtures import make_signal

T0 = 1_705_670_000_000


def row_of(signal: dict[str, Any]) -> Any:
    return signal_row("1-0", orjson.dumps(signal))


@pytest.mark.parametrize("reason", CLOSE_REASONS)
def test_a_close_keeps_its_reason(reason: str) -> None:
    signal = {**make_signal(T0 + 500, status="close", opened_at=T0), "close_reason": reason}
    row = row_of(signal)
    assert row.close_reason == reason
    assert orjson.loads(row.payload)["close_reason"] == reason


def test_a_close_published_before_the_reasons_has_none() -> None:
    assert row_of(make_signal(T0 + 500, status="close", opened_at=T0)).close_reason is None


@pytest.mark.parametrize("status", ["open", "update"])
def test_open_and_update_have_none(status: str) -> None:
    assert row_of(make_signal(T0, status=status)).close_reason is None
    assert row_of({**make_signal(T0, status=status), "close_reason": None}).close_reason is None


@pytest.mark.parametrize("reason", ["timeout", "", "STALE", 3, True, ["stale"], {"why": "stale"}])
def test_a_close_with_an_unknown_reason_is_malformed(reason: object) -> None:
    signal = {**make_signal(T0 + 500, status="close", opened_at=T0), "close_reason": reason}
    with pytest.raises(MalformedSignal, match="close_reason"):
        row_of(signal)


@pytest.mark.parametrize("status", ["open", "update"])
def test_a_reason_on_an_open_or_update_is_malformed(status: str) -> None:
    with pytest.raises(MalformedSignal, match="only a close"):
        row_of({**make_signal(T0, status=status), "close_reason": "stale"})
