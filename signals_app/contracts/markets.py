"""The engine's spread matrix and the settings it was computed with, as the engine publishes it.

`engine_worker.service` writes it every second, beside its heartbeat, to `keys.ENGINE_MARKETS`
(EX 5); `/api/markets` serves it. The web never evaluates spreads itself: the matrix a browser
sees is the one the engine that raises the signals computed, with its fees, `STALE_MS` and rates.
"""

from __future__ import annotations

from typing import Any, TypedDict

import orjson

# asset -> buy exchange -> sell exchange -> net spread % (4 dp, taker fees included); None where
# the two exchanges have no fresh markets in a common quote group.
Matrix = dict[str, dict[str, dict[str, float | None]]]


class EngineMarkets(TypedDict):
    timestamp: int  # Unix ms, the engine's clock the matrix was computed at
    stale_ms: int  # STALE_MS: a quote received longer ago took no part
    threshold_pct: float  # SPREAD_THRESHOLD_PCT: a signal needs a net spread above this
    fees_pct: dict[str, float]  # the taker fee (percent) the engine charges each exchange
    quote_rates: str  # QUOTE_RATES: fixed or live
    quote_groups: list[list[str]]  # QUOTE_GROUPS: markets are compared only within one
    exchanges: list[str]  # the exchanges in the matrix, sorted
    assets: list[str]  # the assets in the matrix, sorted
    matrix: Matrix


class MarketsDecodeError(ValueError):
    """Bytes that are not the engine's markets value; the message says what is wrong."""


def encode(markets: EngineMarkets) -> bytes:
    return orjson.dumps(markets)


def decode(data: bytes | str) -> EngineMarkets:
    """Strict: a value of another shape is refused rather than half shown."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MarketsDecodeError(str(exc)) from None
    if not isinstance(raw, dict):
        raise MarketsDecodeError("not a JSON object")
    timestamp = _field(raw, "timestamp", int)
    stale_ms = _field(raw, "stale_ms", int)
    threshold = _field(raw, "threshold_pct", int | float)
    fees = _field(raw, "fees_pct", dict)
    if not all(_is_number(fee) for fee in fees.values()):
        raise MarketsDecodeError("fees_pct: a fee is not a number")
    quote_rates = _field(raw, "quote_rates", str)
    groups = _field(raw, "quote_groups", list)
    exchanges = _strings(raw, "exchanges")
    assets = _strings(raw, "assets")
    matrix = _field(raw, "matrix", dict)
    for asset, rows in matrix.items():
        if not isinstance(rows, dict) or not all(
            isinstance(row, dict) and all(net is None or _is_number(net) for net in row.values())
            for row in rows.values()
        ):
            raise MarketsDecodeError(f"matrix: {asset}: not buy -> sell -> net spread % or null")
    return {
        "timestamp": timestamp,
        "stale_ms": stale_ms,
        "threshold_pct": float(threshold),
        "fees_pct": {str(name): float(fee) for name, fee in fees.items()},
        "quote_rates": quote_rates,
        "quote_groups": [[str(member) for member in group] for group in groups if isinstance(group, list)],
        "exchanges": exchanges,
        "assets": assets,
        "matrix": matrix,
    }


def _field(raw: dict[str, Any], name: str, kind: Any) -> Any:
    if name not in raw:
        raise MarketsDecodeError(f"no {name!r}")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise MarketsDecodeError(f"{name}: {value!r:.40} is not of the expected type")
    return value


def _strings(raw: dict[str, Any], name: str) -> list[str]:
    values = _field(raw, name, list)
    if not all(isinstance(value, str) for value in values):
        raise MarketsDecodeError(f"{name}: not a list of names")
    return list(values)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
