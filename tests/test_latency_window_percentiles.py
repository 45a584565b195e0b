"""The latency window's percentiles: those of its last N values, within half a bucket (0.5 %)."""

from __future__ import annotations

import random

import pytest

from arbsite.latency import LatencyWindow


def sorted_percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    return {
        name: ordered[min(n - 1, int(q * n))]
        for name, q in (("p50_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99), ("max_us", 1.0))
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_those_of_the_last_values_within_half_a_percent(seed: int) -> None:
    rng = random.Random(seed)
    window = LatencyWindow(size=5000)
    values = [rng.lognormvariate(5, 1.5) for _ in range(12_000)]
    for value in values:
        window.add(value)
    expected = sorted_percentiles(values[-5000:])
    got = window.percentiles()
    for name, value in expected.items():
        figure = got[name]
        assert figure is not None
        assert abs(figure - value) <= 0.005 * value + 0.1, (name, figure, value)
    assert window.count == 12_000
    assert len(window) == 5000


def test_old_values_leave_the_window() -> None:
    window = LatencyWindow(size=100)
    for _ in range(100):
        window.add(50_000.0)  # a stall, long ago
    for _ in range(100):
        window.add(100.0)
    figures = window.percentiles()
    assert figures["max_us"] == pytest.approx(100.0, rel=0.005)
    assert figures["p50_us"] == pytest.approx(100.0, rel=0.005)


def test_empty_negative_and_huge_values() -> None:
    window = LatencyWindow(size=10)
    assert window.percentiles() == {"p50_us": None, "p90_us": None, "p99_us": None, "max_us": None}
    for _ in range(3):
        window.add(-3.0)  # two processes' clocks: counted as 0
    window.add(1e12)  # beyond the top bucket: counted in it
    figures = window.percentiles()
    assert figures["p50_us"] == 0.0
    assert figures["max_us"] is not None
    assert figures["max_us"] >= 0.99e9
