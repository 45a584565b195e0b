"""A window of recent latencies, for the percentiles the workers report on /health and /metrics."""

from __future__ import annotations

from collections import deque


class LatencyWindow:
    """The last N latencies in µs, for percentiles on /health and /metrics."""

    def __init__(self, size: int = 20_000) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, micros: float) -> None:
        self.values.append(micros)
        self.count += 1

    def percentiles(self) -> dict[str, float | None]:
        ordered = sorted(self.values)
        if not ordered:
            return {"p50_us": None, "p90_us": None, "p99_us": None, "max_us": None}

        def at(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

        return {"p50_us": at(0.50), "p90_us": at(0.90), "p99_us": at(0.99), "max_us": round(ordered[-1], 1)}
