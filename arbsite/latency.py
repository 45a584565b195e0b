"""A window of recent latencies, for the percentiles the workers report on /health and /metrics.

The window keeps a histogram of its values in logarithmic buckets 1 % wide, not the values: a
percentile is then a walk over ~2,000 counts (tens of µs) instead of a sort of the 20,000 values
(2–3 ms each, and the engine's heartbeat reads four windows every second, on the loop that
receives the ticks: a 10–25 ms stall every second at 5k updates/s). Each figure is the middle of
its bucket, so within 0.5 % of the value it stands for.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from itertools import accumulate

BUCKET_GROWTH = 1.01  # each bucket 1 % wider than the one below
_LOG_GROWTH = math.log(BUCKET_GROWTH)
_PER_LOG = 1 / _LOG_GROWTH
_log1p = math.log1p
MAX_MICROS = 1e9  # 1000 s: a longer latency counts in the top bucket
TOP_BUCKET = int(math.log1p(MAX_MICROS) * _PER_LOG)


def bucket_of(micros: float) -> int:
    """The bucket of a latency; a negative one (clocks of two processes) counts as 0."""
    if micros <= 0:
        return 0
    return min(int(_log1p(micros) * _PER_LOG), TOP_BUCKET)


def bucket_value(index: int) -> float:
    """The middle of a bucket (geometrically), the value a percentile in it reads as."""
    return math.expm1((index + 0.5) * _LOG_GROWTH)


class LatencyWindow:
    """The last N latencies in µs, for percentiles on /health and /metrics."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        # the window's values as their buckets, oldest first (the deque drops the oldest itself)
        self._buckets: deque[int] = deque(maxlen=size)
        self._counts = [0] * (TOP_BUCKET + 1)
        self.count = 0  # every value ever added

    def add(self, micros: float) -> None:
        # bucket_of, inlined: this runs twice per tick in the engine
        index = int(_log1p(micros) * _PER_LOG) if micros > 0 else 0
        if index > TOP_BUCKET:
            index = TOP_BUCKET
        buckets = self._buckets
        if len(buckets) == self.size:
            self._counts[buckets[0]] -= 1  # the append below drops it
        buckets.append(index)
        self._counts[index] += 1
        self.count += 1

    def __len__(self) -> int:
        return len(self._buckets)

    def percentiles(self) -> dict[str, float | None]:
        held = len(self._buckets)
        if not held:
            return {"p50_us": None, "p90_us": None, "p99_us": None, "max_us": None}
        cumulative = list(accumulate(self._counts))

        def at(q: float) -> float:
            # as the sorted values' element min(n - 1, int(q * n)): the first bucket holding that rank
            rank = min(held - 1, int(q * held))
            return round(bucket_value(bisect_right(cumulative, rank)), 1)

        return {"p50_us": at(0.50), "p90_us": at(0.90), "p99_us": at(0.99), "max_us": at(1.0)}
