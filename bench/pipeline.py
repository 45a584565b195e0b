"""Pipeline benchmark: the real simulator, ingestor and engine processes over loopback, at fixed rates.

For each rate the simulator sends that many quote updates per second (both venues
together) while dislocations are forced every second so that signals flow; after a
warm-up the script reads both workers' /health for the latency percentiles
(frame received -> tick sent, engine receive -> decision, frame received -> signal
published on Redis), then silences the simulator, lets the queues drain and
compares ticks sent with ticks the engine applied (a tick lost is one sent and
never applied, or refused at the ZeroMQ high-water mark). Peak RSS is each
process's VmHWM. Prints markdown tables. Run: .venv/bin/python bench/pipeline.py [RATE ...]
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
ASSETS = ["BTC", "ETH", "SOL", "XRP", "ADA"]


def health(url: str) -> dict[str, Any]:
    _, body = get_json(url)
    assert isinstance(body, dict), body
    return body


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

        rng = random.Random(rate)
        started = time.monotonic()
        next_dislocation = 0.0
        snapshot_at = started + WARMUP_S
        start_counts: tuple[int, int, int] | None = None
        while time.monotonic() < started + WARMUP_S + MEASURE_S:
            now = time.monotonic()
            if now >= next_dislocation:
                cheap, rich = rng.sample(["binance", "coinbase"], 2)
                get_json(
                    f"{control}/dislocate?asset={rng.choice(ASSETS)}&cheap={cheap}&rich={rich}&net_pct=1.0&seconds=0.6"
                )
                next_dislocation = now + 1.0
            if start_counts is None and now >= snapshot_at:
                ingest_body = health(ingest_health)
                engine_body = health(engine_health)
                start_counts = (
                    sum(feed["frames"] for feed in ingest_body["feeds"].values()),
                    engine_body["ticks"],
                    ingest_body["ticks_dropped_backpressure"],
                )
            time.sleep(0.05)
        ingest_body = health(ingest_health)
        engine_body = health(engine_health)
        assert start_counts is not None
        frames = sum(feed["frames"] for feed in ingest_body["feeds"].values())
        frames_per_s = (frames - start_counts[0]) / MEASURE_S
        ticks_per_s = (engine_body["ticks"] - start_counts[1]) / MEASURE_S

        get_json(f"{control}/silence?venue=all")
        time.sleep(1.5)  # let the ZeroMQ queue and the engine drain
        ingest_final = health(ingest_health)
        engine_final = health(engine_health)
        sent = ingest_final["ticks_sent"]
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
            "bad": engine_final["bad_messages"],  # received, but refused by the engine's checks
            "push": push,
            "decision": engine_body["latency_engine_receive_to_decision"],
            "frame_to_decision": engine_body["latency_frame_to_decision"],
            "signal": engine_body["latency_frame_to_signal_published"],
            "signals": engine_final["signals"],
            "rss": {proc.name: peak_rss_mb(proc.popen.pid) for proc in procs},
        }
        return result
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(AssertionError):
                proc.terminate(8)
        redis_server.cleanup()


def fmt(percentiles: dict[str, float | None]) -> str:
    p50, p99 = percentiles.get("p50_us"), percentiles.get("p99_us")
    if p50 is None or p99 is None:
        return "–"
    return f"{p50:.0f} / {p99:.0f}"


def main() -> None:
    rates = [int(arg) for arg in sys.argv[1:]] or RATES
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
        print(f"running {rate} updates/s ...", file=sys.stderr, flush=True)
        results.append(run_rate(rate))
    print(
        "| target updates/s | frames/s received | ticks/s applied "
        "| frame → tick sent p50 / p99 µs (binance, coinbase) | engine receive → decision p50 / p99 µs "
        "| frame → decision p50 / p99 µs | frame → signal on Redis p50 / p99 µs "
        "| signals | ticks lost | peak RSS MB (sim, ingestor, engine) |"
    )
    print("|---:|---:|---:|---|---|---|---|---|---:|---|")
    for r in results:
        push = r["push"]
        rss = r["rss"]
        signals = r["signals"]
        bad = f" ({r['bad']} refused as bad)" if r["bad"] else ""
        print(
            f"| {r['rate']} | {r['frames_per_s']:.0f} | {r['ticks_per_s']:.0f} "
            f"| {fmt(push['binance'])}, {fmt(push['coinbase'])} | {fmt(r['decision'])} | {fmt(r['frame_to_decision'])} "
            f"| {fmt(r['signal'])} | {sum(signals.values())} | {r['lost']} of {r['sent']}{bad} "
            f"| {rss['sim']:.0f}, {rss['ingestor']:.0f}, {rss['engine']:.0f} |"
        )
    sustained = [r["rate"] for r in results if r["lost"] == 0 and r["frames_per_s"] >= 0.9 * r["rate"]]
    print(
        "\nHighest rate sustained with no tick lost (and ≥ 90 % of the target delivered): "
        f"{max(sustained, default='none')}"
    )
    print(
        "Percentiles are over each worker's last 20,000 events; the signal figure needs signals, forced every second."
    )


if __name__ == "__main__":
    main()
