"""What a trader sees on clicking an opportunity: both books as the engine walked them and the
profit curve of the walk, written by the engine beside each signal that carries depth, read by
the web (`GET /api/signals/<id>/depth`) and drawn by the dashboard.

Redis key `signal:depth:{id}` (string, EX DEPTH_VIEW_TTL_S), rewritten on every open and update
of the opportunity whose depth figures are not null; a close leaves the last one. The body:

| field | value |
| --- | --- |
| `id`, `status`, `timestamp` | the signal's |
| `buy_exchange`, `buy_symbol`, `sell_exchange`, `sell_symbol` | the two markets |
| `asks` | the buy market's asks the walk could take, best first, `[[price, size], ...]` (own quote) |
| `bids` | the sell market's bids, best first |
| `curve` | `[[size, cost, profit], ...]` cumulative after each step of the walk *without* |
|         | the threshold stop (until either side of `asks`/`bids` runs out: at most their |
|         | levels added up), from `[0, 0, 0]`; cost and profit in the common quote, fees and |
|         | rates included |
| `depth_size`, `depth_profit` | the signal's: where the walk with the threshold stopped |
| `threshold_pct` | the engine's `SPREAD_THRESHOLD_PCT` |
"""

from __future__ import annotations

from typing import TypedDict

import orjson

DEPTH_VIEW_TTL_S = 3600


def depth_view_key(signal_id: str) -> str:
    return f"signal:depth:{signal_id}"


class DepthView(TypedDict):
    id: str
    status: str
    timestamp: int
    buy_exchange: str
    buy_symbol: str
    sell_exchange: str
    sell_symbol: str
    asks: list[list[float]]
    bids: list[list[float]]
    curve: list[list[float]]
    depth_size: float | None
    depth_profit: float | None
    threshold_pct: float


class DepthViewDecodeError(ValueError):
    """Bytes that are not a depth view."""


def encode_depth_view(view: DepthView) -> bytes:
    return orjson.dumps(view)


def decode_depth_view(data: bytes) -> DepthView:
    """The view in `data`; DepthViewDecodeError when it is not one (the web answers 502 then)."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DepthViewDecodeError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DepthViewDecodeError("not an object")
    for field, kind in (("asks", list), ("bids", list), ("curve", list), ("id", str)):
        if not isinstance(raw.get(field), kind):
            raise DepthViewDecodeError(f"no {field}")
    return raw  # type: ignore[return-value]
