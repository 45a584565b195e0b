"""Pipeline benchmark: the real simulator, ingestor and engine processes over loopback, at fixed rates.

For each rate the simulator sends that many quote updates per second (both venues
together) while dislocations are forced every second so that signals flow; after a
warm-up the script reads both workers' /health for the latency percentiles
(frame received -> tick sent, engine receive -> decision, frame received -> signal
published on Redis), then silences the simulator, waits until the counts stop
moving (the queues drained) and compares ticks sent with ticks the engine applied
(a tick lost is one sent and never applied, or refused at the ZeroMQ high-water
mark). Peak RSS is each process's VmHWM. Prints markdown tables.

    .venv/bin/python bench/pipeline.py [--runs N] [RATE ...]

`--runs N` runs each rate N times (fresh processes each run) and prints a row per run; the
sustained rate is then the highest with no tick lost in every run.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")

import contextlib  # noqa: E402

import orjson  # noqa: E402

from arbsite.redis_server import EmbeddedRedis, free_port  # noqa: E402
from tests.procs import Proc, get_json, wait_until  # noqa: E402

RATES = [1000, 5000, 20000]
WARMUP_S = 3.0
MEASURE_S = 10.0
SETTLE_S = 1.0  # after the silence, the counts must stay this long unchanged ...
SETTLE_MAX_S = 30.0  # ... within this long
ASSETS = ["BTC", "ETH", "SOL", "XRP", "ADA"]


def health(url: str) -> dict[str, Any]:
    _, body = get_json(url, timeout_s=10.0)  # a worker that falls behind still answers, later
    assert isinstance(body, dict), body
    return body


def settled(ingest_health: str, engine_health: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both workers' /health once nothing moves: the ticks the ingestor sent and those the engine
    applied both unchanged for SETTLE_S. An overloaded run has seconds of frames queued in the
    simulator's and the ingestor's buffers after the silence; a fixed wait would count ticks the
    engine applied after the ingestor's count was read (a negative loss) or not yet applied."""
    deadline = time.monotonic() + SETTLE_MAX_S
    last: tuple[int, int] | None = None
    while True:
        ingest_body, engine_body = health(ingest_health), health(engine_health)
        counts = (ingest_body["ticks_sent"], engine_body["ticks"])
        if counts == last or time.monotonic() > deadline:
            return ingest_body, engine_body
        last = counts
        time.sleep(SETTLE_S)


def cpu_use(pid: int) -> tuple[float, int]:
    """(CPU seconds the process used so far, user and system; involuntary context switches: the
    times the kernel took the CPU from it to run another process on these shared cores)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    switches = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("nonvoluntary_ctxt_switches:"):
            switches = int(line.split()[1])
    return seconds, switches


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_rate(rate: int) -> dict[str, Any]:
    redis_server = EmbeddedRedis().start()
    sim = Proc(
        "sim",
        ["run_exchange_sim", "--port", "binance=0", "--port", "coinbase=0", "--rate", str(rate), "--seed", "3"],
        {"SIM_VENUES": "binance,coinbase"},  # the table's figures are for the two original venues
    )
    procs = [sim]
    try:
        ready = sim.wait_for_line(lambda line: line.startswith("SIM_READY "))
        urls = orjson.loads(ready.removeprefix("SIM_READY "))
        control = urls["binance"].replace("ws://", "http://") + "/sim"
        ingest_port, engine_port = free_port(), free_port()
        env = {
            "REDIS_URL": redis_server.url,
            "ZMQ_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
            "HEALTH_PORT": str(ingest_port),
            "ENGINE_HEALTH_PORT": str(engine_port),
            "SIM_BINANCE_PORT": urls["binance"].rsplit(":", 1)[1],
            "SIM_COINBASE_PORT": urls["coinbase"].rsplit(":", 1)[1],
            "LOG_LEVEL": "warning",
            "EXCHANGES": "binance,coinbase",
        }
        engine = Proc("engine", ["run_engine"], env)
        ingestor = Proc("ingestor", ["run_ingestor"], env)
        procs += [engine, ingestor]
        ingest_health = f"http://127.0.0.1:{ingest_port}/health"
        engine_health = f"http://127.0.0.1:{engine_port}/health"
        wait_until(lambda: get_json(ingest_health)[0] == 200, 30, "ingestor live", 0.1)
        wait_until(lambda: get_json(engine_health)[0] == 200, 30, "engine up", 0.1)

        assert redis_server.process is not None
        redis_pid = redis_server.process.pid
        rng = random.Random(rate)
        started = time.monotonic()
        next_dislocation = 0.0
        snapshot_at = started + WARMUP_S
        start_counts: tuple[int, int, int] | None = None
        missed_controls = 0  # dislocation requests an overloaded simulator did not answer within 2 s
        while time.monotonic() < started + WARMUP_S + MEASURE_S:
            now = time.monotonic()
            if now >= next_dislocation:
                cheap, rich = rng.sample(["binance", "coinbase"], 2)
                try:
                    get_json(
                        f"{control}/dislocate?asset={rng.choice(ASSETS)}&cheap={cheap}&rich={rich}"
                        "&net_pct=1.0&seconds=0.6"
                    )
                except TimeoutError:
                    missed_controls += 1
                next_dislocation = now + 1.0
            if start_counts is None and now >= snapshot_at:
                ingest_body = health(ingest_health)
                engine_body = health(engine_health)
                start_counts = (
                    sum(feed["frames"] for feed in ingest_body["feeds"].values()),
                    engine_body["ticks"],
                    ingest_body["ticks_dropped_backpressure"],
                )
                start_stalls = (engine_body.get("stalls"), ingest_body.get("stalls"))
                start_cpu = {proc.name: cpu_use(proc.popen.pid) for proc in procs}
                start_cpu["redis"] = cpu_use(redis_pid)
            time.sleep(0.05)
        ingest_body = health(ingest_health)
        engine_body = health(engine_health)
        end_cpu = {proc.name: cpu_use(proc.popen.pid) for proc in procs}
        end_cpu["redis"] = cpu_use(redis_pid)
        assert start_counts is not None
        frames = sum(feed["frames"] for feed in ingest_body["feeds"].values())
        frames_per_s = (frames - start_counts[0]) / MEASURE_S
        ticks_per_s = (engine_body["ticks"] - start_counts[1]) / MEASURE_S

        get_json(f"{control}/silence?venue=all", timeout_s=10.0)
        ingest_final, engine_final = settled(ingest_health, engine_health)
        sent = ingest_final["ticks_sent"]
        # One ZeroMQ message per frame since the tick transport; a checkout before it has no count.
        messages_sent = ingest_final.get("messages_sent")
        # Refusals before the engine had connected are start-up, not loss: count from the window on.
        refused = ingest_final["ticks_dropped_backpressure"] - start_counts[2]
        applied = engine_final["ticks"]
        push = {name: feed["latency_frame_to_tick_sent"] for name, feed in ingest_body["feeds"].items()}
        result = {
            "rate": rate,
            "frames_per_s": frames_per_s,
            "ticks_per_s": ticks_per_s,
            "sent": sent,
            "applied": applied,
            "refused": refused,
            "lost": sent - applied + refused,
            # received, but refused by the engine's checks (whole messages, and single ticks of one)
            "bad": engine_final["bad_messages"] + engine_final.get("bad_ticks", 0),
            "ticks_per_message": None if not messages_sent else sent / messages_sent,
            "push": push,
            "decision": engine_body["latency_engine_receive_to_decision"],
            "frame_to_decision": engine_body["latency_frame_to_decision"],
            "signal": engine_body["latency_frame_to_signal_published"],
            "signals": engine_final["signals"],
            "rss": {proc.name: peak_rss_mb(proc.popen.pid) for proc in procs},
            "missed_controls": missed_controls,
            # each process's share of one core over the window, and the times it was preempted
            "cpu": {
                name: ((end_cpu[name][0] - start_cpu[name][0]) / MEASURE_S, end_cpu[name][1] - start_cpu[name][1])
                for name in end_cpu
            },
            # what held up each worker's loop over the measured window (None at a checkout without it)
            "stalls": {
                "engine": stalls_delta(start_stalls[0], engine_body.get("stalls")),
                "ingestor": stalls_delta(start_stalls[1], ingest_body.get("stalls")),
            },
        }
        return result
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(AssertionError):
                proc.terminate(8)
        redis_server.cleanup()


def stalls_delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any] | None:
    """The counters of `arbsite.stalls` over a window: counts and totals subtracted, maxima as at its end."""
    if before is None or after is None:
        return None

    def minus(new: Any, old: Any, key: str) -> Any:
        if isinstance(new, dict):
            return {
                name: minus(value, old.get(name, 0) if isinstance(old, dict) else 0, name)
                for name, value in new.items()
            }
        return new if key.startswith("max") or not isinstance(new, (int, float)) else new - old

    return {name: minus(after[name], before.get(name), name) for name in ("gc", "loop_lag", "steps")}


def fmt_stalls(stalls: dict[str, Any] | None) -> str:
    """`gc` ms in gen 0/1/2 (gen-2 collections), loop wake-ups late > 5 / > 20 ms, longest lateness."""
    if stalls is None:
        return "–"
    gc_ms = "/".join(f"{stalls['gc'][f'gen{generation}']['ms']:.0f}" for generation in range(3))
    lag = stalls["loop_lag"]
    return (
        f"gc {gc_ms} ms ({stalls['gc']['gen2']['collections']} gen2, longest {stalls['gc']['gen2']['max_ms']:.0f}); "
        f"late >5 ms {lag['over_5ms']}, >20 ms {lag['over_20ms']}, longest {lag['max_ms']:.0f}"
    )


def fmt_steps(stalls: dict[str, Any] | None) -> str:
    if stalls is None or not stalls["steps"]:
        return "–"
    return ", ".join(
        f"{name} {step['over_5ms']}/{step['count']} > 5 ms"
        + (f", {step['preempted']} of them preempted" if step.get("preempted") else "")
        + f" (longest {step['max_ms']:.1f})"
        for name, step in stalls["steps"].items()
    )


def fmt(percentiles: dict[str, float | None]) -> str:
    p50, p99 = percentiles.get("p50_us"), percentiles.get("p99_us")
    if p50 is None or p99 is None:
        return "–"
    return f"{p50:.0f} / {p99:.0f}"


def main() -> None:
    args = sys.argv[1:]
    runs = 1
    if args[:1] == ["--runs"]:
        runs, args = int(args[1]), args[2:]
    rates = [int(arg) for arg in args] or RATES
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    print("# Arbitrage Sniper pipeline benchmark\n")
    print(
        f"Python {platform.python_version()} · {cpu} ({os.cpu_count()} CPUs) · "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
    results = []
    for rate in rates:
        for run in range(runs):
            print(f"running {rate} updates/s ({run + 1} of {runs}) ...", file=sys.stderr, flush=True)
            results.append(run_rate(rate))
    print(
        "| target updates/s | frames/s received | ticks/s applied "
        "| frame → tick sent p50 / p99 µs (binance, coinbase) | engine receive → decision p50 / p99 µs "
        "| frame → decision p50 / p99 µs | frame → signal on Redis p50 / p99 µs "
        "| signals | ticks lost | ticks per message | peak RSS MB (sim, ingestor, engine) |"
    )
    print("|---:|---:|---:|---|---|---|---|---|---:|---:|---|")
    for r in results:
        push = r["push"]
        rss = r["rss"]
        signals = r["signals"]
        bad = f" ({r['bad']} refused as bad)" if r["bad"] else ""
        # lost at the ingestor's ZeroMQ high-water mark (the engine, or the ingestor's own I/O thread, behind)
        refused = f" ({r['refused']} at the ingestor's high-water mark)" if r["refused"] else ""
        missed = f" ({r['missed_controls']} dislocations unanswered)" if r["missed_controls"] else ""
        print(
            f"| {r['rate']} | {r['frames_per_s']:.0f} | {r['ticks_per_s']:.0f} "
            f"| {fmt(push['binance'])}, {fmt(push['coinbase'])} | {fmt(r['decision'])} | {fmt(r['frame_to_decision'])} "
            f"| {fmt(r['signal'])} | {sum(signals.values())}{missed} | {r['lost']} of {r['sent']}{bad}{refused} "
            f"| {'1' if r['ticks_per_message'] is None else format(r['ticks_per_message'], '.2f')} "
            f"| {rss['sim']:.0f}, {rss['ingestor']:.0f}, {rss['engine']:.0f} |"
        )
    print(
        "\n| target updates/s | engine: GC ms gen 0/1/2 and loop lag over the window | engine steps "
        "| ingestor: GC and loop lag | CPU % of a core (preempted) |"
    )
    print("|---:|---|---|---|---|")
    for r in results:
        stalls = r["stalls"]
        cpu = ", ".join(f"{name} {share * 100:.0f} ({switches})" for name, (share, switches) in r["cpu"].items())
        print(
            f"| {r['rate']} | {fmt_stalls(stalls['engine'])} | {fmt_steps(stalls['engine'])} "
            f"| {fmt_stalls(stalls['ingestor'])} | {cpu} |"
        )
    sustained = [
        rate
        for rate in rates
        if all(r["lost"] == 0 and r["frames_per_s"] >= 0.9 * rate for r in results if r["rate"] == rate)
    ]
    print(
        f"\nHighest rate sustained with no tick lost (and ≥ 90 % of the target delivered) in {runs} run(s) of "
        f"{runs}: {max(sustained, default='none')}"
    )
    print(
        "Percentiles are over each worker's last 20,000 events; the signal figure needs signals, forced every second."
    )


if __name__ == "__main__":
    main()
