"""Benchmark the lifecycle's timers: closing N frozen opportunities at once, against a baseline commit.

    .venv/bin/python bench/lifecycle.py [--baseline PATH] [--rounds 5] [--counts 6000,10000]

`--baseline PATH` is another checkout of the repository (say `git worktree add --detach
../base-lifecycle main`): its engine runs the same scenarios, so the table shows both side by
side with their ratio. Each round runs every scenario once in a fresh process per checkout (one
Python cannot import two `engine_worker`s), the two checkouts alternating which goes first so
that machine noise hits both; the table gives the median, min and max of the rounds. The garbage
collector stays on, as in the live processes; what building the N opportunities left for it is
collected before each timed call (a live engine's opportunities are old by the time they freeze:
without that, a full collection of the build's objects lands in the timed call, 0.3 s at 10,000).
Prints markdown and one line naming the machine; it asserts only that each scenario closed what
it must.

The scenarios, for each N (only the engine API the baseline main has as well):

- **frozen, one timer step**: N assets each crossed between Binance (quotes received over two
  seconds) and Coinbase, then every feed freezes; one `expire` call, long after, must close all N,
  each at its own stale instant. The time of that call is what the engine's loop is blocked for.
- **feed down, N closes**: `mark_down` of Coinbase with the N open (it is part of every one).
- **feed down, 0 of N**: `mark_down` of a venue that is part of none of the N.
- **refresh tick, N open**: `on_tick` of a quote that re-evaluates one open opportunity without
  changing it (the steady state of a crossing: nothing to say), per call, in batches of 1000.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
T = 1_705_670_123_000
MS = 1_000_000
REFRESH_BATCH = 1000
REFRESH_BATCHES = 30


# --- the scenarios (run in a child process, on the checkout given by --code) --------------
def build(engine_class: Any, config: Any, quote: Any, count: int) -> Any:
    """An engine with `count` open opportunities, buy Binance, sell Coinbase, all opened at T+1999."""
    engine = engine_class(config)
    for i in range(count):
        engine.on_tick(quote("binance", f"A{i:05d}/USDT", 99.9, 100.0, 1.0, 1.0, T, (T + i * 1999 // count) * MS), T)
    for i in range(count):
        engine.on_tick(quote("coinbase", f"A{i:05d}/USD", 101.0, 101.1, 1.0, 1.0, T, (T + 1999) * MS), T + 1999)
    if len(engine.lifecycle.open) != count:
        raise SystemExit(f"built {len(engine.lifecycle.open)} open opportunities, not {count}")
    return engine


def timed_ms(step: Any, clock: int, must_close: int) -> float:
    """One call of `step(...)` (expire, mark_down) in ms; the garbage the build left is collected first."""
    gc.collect()
    started = time.perf_counter_ns()
    closed = step(clock)
    elapsed = (time.perf_counter_ns() - started) / 1e6
    if len(closed) != must_close:
        raise SystemExit(f"closed {len(closed)}, not {must_close}")
    return elapsed


def run_scenarios(counts: list[int]) -> dict[str, Any]:
    from engine_worker import engine as engine_module
    from engine_worker.config import EngineConfig
    from signals_app.contracts.tick import quote

    engine_class = engine_module.Engine
    config = EngineConfig(threshold_pct=0.5, fees_pct={"binance": 0.1, "coinbase": 0.1, "kraken": 0.1})
    results: dict[str, Any] = {"engine": engine_module.__file__}
    for count in counts:
        engine = build(engine_class, config, quote, count)
        results[f"frozen, one timer step|{count}"] = timed_ms(engine.expire, T + 10_000, count)
        engine = build(engine_class, config, quote, count)
        results[f"feed down, N closes|{count}"] = timed_ms(partial(engine.mark_down, "coinbase"), T + 1999, count)
        engine = build(engine_class, config, quote, count)
        engine.on_tick(quote("kraken", "B/USD", 10.0, 10.1, 1.0, 1.0, T, (T + 1999) * MS), T + 1999)
        results[f"feed down, 0 of N|{count}"] = timed_ms(partial(engine.mark_down, "kraken"), T + 1999, 0)
        # Both quotes of A00000 again, unchanged, at the clock of the opens: re-evaluated, nothing sent.
        ticks = [
            quote("binance", "A00000/USDT", 99.9, 100.0, 1.0, 1.0, T, (T + 1999) * MS),
            quote("coinbase", "A00000/USD", 101.0, 101.1, 1.0, 1.0, T, (T + 1999) * MS),
        ] * (REFRESH_BATCH // 2)
        per_call = []
        on_tick = engine.on_tick
        for _ in range(REFRESH_BATCHES):
            started = time.perf_counter_ns()
            for one in ticks:
                if on_tick(one, T + 1999):
                    raise SystemExit("a refresh tick sent a signal")
            per_call.append((time.perf_counter_ns() - started) / 1000 / len(ticks))
        results[f"refresh tick, N open (µs)|{count}"] = statistics.median(per_call)
    return results


def child(code: Path, counts: list[int]) -> None:
    sys.path.insert(0, str(code))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    gc.collect()
    print(json.dumps(run_scenarios(counts)))


# --- the parent: rounds, alternating checkouts, and the table -------------------------------
def one_round(code: Path, counts: list[int]) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(code),
        "--counts",
        ",".join(map(str, counts)),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{code}: the scenarios failed:\n{result.stderr}")
    found: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    if not found.pop("engine").startswith(str(code)):
        raise SystemExit(f"{code}: the child imported another checkout's engine")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout of the repository, run beside this one")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--counts", default="6000,10000", help="numbers of open opportunities, comma-separated")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    counts = [int(count) for count in options.counts.split(",")]
    if options.child is not None:
        child(options.child.resolve(), counts)
        return
    sys.path.insert(0, str(ROOT))
    from core import machine_line, table  # bench/core.py's helpers (this script's folder is on sys.path)

    checkouts = {"this": ROOT}
    if options.baseline is not None:
        checkouts["baseline"] = options.baseline.resolve()
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in checkouts}
    order = list(checkouts)
    started = time.perf_counter()
    for _ in range(options.rounds):
        for name in order:
            for scenario, value in one_round(checkouts[name], counts).items():
                samples[name].setdefault(scenario, []).append(value)
        order.reverse()
    print("# Lifecycle timers benchmark\n")
    print(machine_line() + "\n")
    for name, path in checkouts.items():
        commit = subprocess.run(
            ["git", "-C", str(path), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
        ).stdout.strip()
        print(f"- {name}: {path} at {commit[:90]}")
    print()
    headers = ["scenario", "N", "this median", "this min", "this max"]
    if "baseline" in checkouts:
        headers += ["baseline median", "baseline min", "baseline max", "baseline / this"]
    rows: list[list[object]] = []
    for scenario, values in samples["this"].items():
        name, _, count = scenario.partition("|")
        unit = "" if "µs" in name else " (ms)"
        row: list[object] = [name + unit, count, statistics.median(values), min(values), max(values)]
        if "baseline" in checkouts:
            base = samples["baseline"][scenario]
            row += [
                statistics.median(base),
                min(base),
                max(base),
                f"{statistics.median(base) / statistics.median(values):.1f}×",
            ]
        rows.append(row)
    print(table(headers, rows))
    print(f"\nMedians of {options.rounds} rounds, a fresh process per checkout and round, alternating order.")
    print(f"(whole run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
