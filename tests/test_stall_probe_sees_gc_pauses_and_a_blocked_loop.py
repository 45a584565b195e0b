"""arbsite.stalls: the cyclic GC's pauses and the loop's late wake-ups are counted, on a real loop."""

from __future__ import annotations

import asyncio
import gc
import time

from arbsite.stalls import GcPauses, LoopLag, SlowSteps, StallProbe, stall_metrics


def test_a_full_collection_is_counted_with_its_pause_only_while_installed() -> None:
    pauses = GcPauses()
    pauses.install()
    try:
        gc.collect()
    finally:
        pauses.uninstall()
    assert pauses.collections[2] == 1
    assert 0.0 < pauses.seconds[2] == pauses.max_seconds[2]
    gc.collect()  # no longer counted
    assert pauses.collections[2] == 1
    assert pauses.snapshot()["gen2"]["collections"] == 1


def test_a_blocked_loop_is_a_late_wake_up_in_its_buckets() -> None:
    probe = StallProbe()

    async def blocked() -> None:
        probe.start()
        await asyncio.sleep(0.03)  # the probe is asleep: a wake-up is due within 10 ms
        time.sleep(0.05)  # noqa: ASYNC251 - what a long batch or a full collection does to the loop
        await asyncio.sleep(0.03)
        await probe.stop()

    asyncio.run(blocked())
    lag = probe.snapshot()["loop_lag"]
    assert lag["over_20ms"] >= 1
    assert lag["over_5ms"] >= lag["over_20ms"]
    assert lag["max_ms"] >= 35  # blocked 50 ms, at most 10 ms of it the probe's own sleep
    shown = {
        (sample.name, sample.labels.get("over_ms")): sample.value
        for family in stall_metrics("arb_test", probe)
        for sample in family.samples
    }
    assert shown[("arb_test_loop_late_wakeups_total", "20")] == lag["over_20ms"]
    before = probe.gc.collections[2]  # uninstalled on stop: a later collection is not counted
    gc.collect()
    assert probe.gc.collections[2] == before


def test_lateness_goes_into_every_bucket_it_exceeds() -> None:
    lag = LoopLag(buckets_ms=(1.0, 5.0, 20.0))
    for late_s in (0.0005, 0.002, 0.006, 0.025, -0.001):
        lag.record(late_s)
    assert lag.snapshot() == {"wakeups": 5, "max_ms": 25.0, "over_1ms": 3, "over_5ms": 2, "over_20ms": 1}


def test_slow_steps_are_counted_by_name() -> None:
    steps = SlowSteps(slow_ms=5.0)
    for seconds, cpu_seconds in ((0.001, 0.001), (0.007, 0.0065), (0.002, 0.0001), (0.02, 0.003)):
        steps.add("batch", seconds, cpu_seconds)
    steps.add("matrix", 0.0004)
    assert steps.snapshot() == {
        # slow twice: once working (6.5 of 7 ms on the CPU), once preempted (3 of 20 ms)
        "batch": {"count": 4, "over_5ms": 2, "preempted": 1, "ms": 30.0, "max_ms": 20.0},
        "matrix": {"count": 1, "over_5ms": 0, "preempted": 0, "ms": 0.4, "max_ms": 0.4},
    }
