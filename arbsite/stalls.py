"""What holds up a worker's event loop: the cyclic GC's pauses and the loop's own lag.

A worker that stalls for 10 ms at 20k ticks/s queues 200 ticks behind the stall, and every
signal among them waits for it: the latency percentiles show that a stall happened, not what
it was. `StallProbe` counts the two things that can be told apart in process, without a
profiler and whatever else loads the machine:

- the cyclic garbage collector: each collection's pause by generation (`gc.callbacks`),
  counted, summed and its longest kept;
- the loop's lag: a task that sleeps `interval_s` and measures how late it woke; a wake-up
  later than `STALL_MS` is a stall (whatever ran meanwhile: a long batch, the matrix, a GC).

Its `snapshot()` is what /health and the heartbeat show (`signals_app.contracts.heartbeat.Stalls`).
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from prometheus_client.core import CounterMetricFamily

STALL_MS = (1.0, 5.0, 20.0)  # a late wake-up beyond each of these is counted in its bucket
PROBE_INTERVAL_S = 0.01
_frozen = 0  # objects freeze_start_up_heap() froze


class GcPauses:
    """The cyclic GC's pauses by generation, timed by `gc.callbacks` while installed."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.max_seconds = [0.0, 0.0, 0.0]
        self._started = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._callback)
            self._installed = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        paused = time.perf_counter() - self._started
        generation = info["generation"]
        self.collections[generation] += 1
        self.seconds[generation] += paused
        if paused > self.max_seconds[generation]:
            self.max_seconds[generation] = paused

    def snapshot(self) -> dict[str, dict[str, float | int]]:
        return {
            f"gen{generation}": {
                "collections": self.collections[generation],
                "ms": round(self.seconds[generation] * 1000, 3),
                "max_ms": round(self.max_seconds[generation] * 1000, 3),
            }
            for generation in range(3)
        }


class LoopLag:
    """How late the loop wakes a task that sleeps `interval_s`: each lateness over a bucket counted."""

    def __init__(self, interval_s: float = PROBE_INTERVAL_S, buckets_ms: tuple[float, ...] = STALL_MS) -> None:
        self.interval_s = interval_s
        self.buckets_ms = buckets_ms
        self.over = [0] * len(buckets_ms)
        self.wakeups = 0
        self.max_ms = 0.0
        self.lag_seconds = 0.0

    def record(self, late_s: float) -> None:
        """One wake-up `late_s` after it was due (a step tests can call with a made-up lateness)."""
        self.wakeups += 1
        late_ms = late_s * 1000
        self.lag_seconds += max(0.0, late_s)
        if late_ms > self.max_ms:
            self.max_ms = late_ms
        for index, bucket in enumerate(self.buckets_ms):
            if late_ms > bucket:
                self.over[index] += 1

    async def run(self) -> None:
        interval = self.interval_s
        while True:
            due = time.perf_counter() + interval
            await asyncio.sleep(interval)
            self.record(time.perf_counter() - due)

    def snapshot(self) -> dict[str, float | int]:
        body: dict[str, float | int] = {"wakeups": self.wakeups, "max_ms": round(self.max_ms, 3)}
        for index, bucket in enumerate(self.buckets_ms):
            body[f"over_{bucket:g}ms"] = self.over[index]
        return body


class SlowSteps:
    """The loop's own steps by name (a batch, the heartbeat, the timer): each one's longest, and how
    many took over `slow_ms`, so that a stall the lag probe saw can be laid at a step's door. A step
    given its CPU time too tells a slow step that worked (its CPU time near its wall time) from one
    the kernel preempted (`preempted`: under half of it on the CPU, the shared cores busy elsewhere)."""

    def __init__(self, slow_ms: float = 5.0) -> None:
        self.slow_s = slow_ms / 1000
        self.slow_ms = slow_ms
        self.steps: dict[str, list[float]] = {}  # name -> [count, over slow_ms, total s, max s, preempted]

    def add(self, name: str, seconds: float, cpu_seconds: float | None = None) -> None:
        step = self.steps.get(name)
        if step is None:
            step = self.steps[name] = [0, 0, 0.0, 0.0, 0]
        step[0] += 1
        step[2] += seconds
        if seconds > self.slow_s:
            step[1] += 1
            if cpu_seconds is not None and cpu_seconds < seconds / 2:
                step[4] += 1
        if seconds > step[3]:
            step[3] = seconds

    def snapshot(self) -> dict[str, dict[str, float | int]]:
        return {
            name: {
                "count": int(count),
                f"over_{self.slow_ms:g}ms": int(over),
                "preempted": int(preempted),
                "ms": round(total * 1000, 3),
                "max_ms": round(longest * 1000, 3),
            }
            for name, (count, over, total, longest, preempted) in sorted(self.steps.items())
        }


class StallProbe:
    """The GC's pauses and the loop's lag of one worker; `start()` on its loop, `stop()` when it ends."""

    def __init__(self) -> None:
        self.gc = GcPauses()
        self.loop = LoopLag()
        self.steps = SlowSteps()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.gc.install()
        self._task = asyncio.get_running_loop().create_task(self.loop.run(), name="loop-lag")

    async def stop(self) -> None:
        self.gc.uninstall()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "gc": self.gc.snapshot(),
            "gc_frozen": _frozen,
            "loop_lag": self.loop.snapshot(),
            "steps": self.steps.snapshot(),
        }


def freeze_start_up_heap() -> int:
    """Collect once, then move every object alive now (modules, classes, settings, the venue
    registry: most of a worker's heap after start-up) out of the cyclic GC's reach for good, so
    that its full collections walk only what the worker made since. Returns how many it froze."""
    global _frozen
    gc.collect()
    gc.freeze()
    # counted once, here: gc.get_freeze_count() walks the whole frozen list (9 ms for 72k objects)
    _frozen = gc.get_freeze_count()
    return _frozen


def stall_metrics(prefix: str, probe: StallProbe) -> list[CounterMetricFamily]:
    """The probe's counters for /metrics, named `{prefix}_...` (arb_engine, arb_ingestor)."""
    pauses = CounterMetricFamily(
        f"{prefix}_gc_pause_seconds", "Time the cyclic GC held the loop, by generation", labels=["generation"]
    )
    collections = CounterMetricFamily(f"{prefix}_gc_collections", "Cyclic GC collections", labels=["generation"])
    for generation in range(3):
        pauses.add_metric([str(generation)], probe.gc.seconds[generation])
        collections.add_metric([str(generation)], probe.gc.collections[generation])
    late = CounterMetricFamily(
        f"{prefix}_loop_late_wakeups",
        "Times the loop woke a sleeping task later than `over_ms`: something held the loop (or the CPU) that long",
        labels=["over_ms"],
    )
    lag = probe.loop
    for index, bucket in enumerate(lag.buckets_ms):
        late.add_metric([f"{bucket:g}"], lag.over[index])
    return [pauses, collections, late]
