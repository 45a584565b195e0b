"""Soak benchmark: the whole system under `make run`'s supervisor for a long while, sampled every minute.

Starts the real supervisor (`python -m arbsite.supervisor`) with every process on free ports,
a private Redis and a SQLite database in a temporary directory: the simulator at a steady
`--rate` with its random dislocations, plus one of ours every `--dislocate-every` seconds
(rotating over assets and venue pairs) so that signals keep flowing. Every `--interval`
seconds it records each process's RSS (the sum over its process group: the Celery worker's
pool and beat included; Redis's own), the engine's latency percentiles (engine /health, a
window of the last 20,000 samples), and every count of something dropped or lost: the
ingestor's frames dropped by its parsers and ticks refused at the ZeroMQ high-water mark, the
engine's bad messages and signals dropped, the persistence lag and status of /api/health, and
the supervisor's restarts. It prints one row per sample as it goes, then the drift: each
process's RSS growth after the first sample in %, and the p99 drift of the last sample against
the first in %; at the end, whether every signal of `signals:stream` is in the table exactly once.

Run: .venv/bin/python bench/soak.py [--minutes 30] [--rate 1000] [--venues binance,coinbase,...]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")

import orjson  # noqa: E402

from arbsite.redis_server import EmbeddedRedis  # noqa: E402
from arbsite.supervisor import group_members  # noqa: E402
from signals_app.contracts import keys  # noqa: E402
from tests.faults.system import RunningSystem  # noqa: E402

PROCESSES = ["sim", "ingestor", "engine", "web", "worker"]
ALL_VENUES = "binance,coinbase,kraken,okx,bitstamp,gemini,bitfinex"
ASSETS = ["BTC", "ETH", "SOL", "XRP", "ADA"]


def group_rss_mb(pgid: int) -> float:
    """RSS of every process in the group `pgid`, in MB (the leader and what it forked)."""
    return sum(pid_rss_mb(pid) for pid in group_members(pgid) or [])


def pid_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0  # gone meanwhile


@dataclass
class Sample:
    minute: float
    rss_mb: dict[str, float]
    p50_us: float | None
    p99_us: float | None
    decision_p99_us: float | None
    ticks: int | None
    signals: int | None
    window_p50_ms: float | None  # signals of this interval only, from the stream (below)
    window_p99_ms: float | None
    counts: dict[str, int | float | None] = field(default_factory=dict)  # dropped, lost, lag, restarts


def drops_by_reason(ingestor: dict[str, Any]) -> dict[str, int]:
    """Frames the ingestor's parsers dropped, by venue and reason (only those above 0)."""
    found = {}
    for venue, feed in ingestor.get("feeds", {}).items():
        for reason, count in ((feed.get("parse") or {}).get("dropped") or {}).items():
            if count:
                found[f"{venue}:{reason}"] = int(count)
    return found


def frames_dropped(ingestor: dict[str, Any]) -> int:
    return sum(drops_by_reason(ingestor).values())


class StreamLatency:
    """Frame received → signal on Redis for the signals of one interval, read from `signals:stream`.

    The engine's own percentiles are over its last 20,000 signals, which at a few signals a
    second is the whole run: they cannot show a drift. Each stream entry's id is the Redis time
    of its XADD (ms) and the signal carries its frame's receive time (`tick_recv_ns`), so the
    entries added since the last sample give that interval's latencies, to the millisecond.
    """

    def __init__(self, system: RunningSystem) -> None:
        self.system = system
        self.after = "-"

    def interval(self) -> tuple[float | None, float | None]:
        latencies = []
        for entry_id, fields in self.system.stream_entries(self.after):
            self.after = "(" + entry_id.decode()
            with contextlib.suppress(KeyError, TypeError, ValueError):
                recv_ns = orjson.loads(fields[keys.SIGNALS_STREAM_FIELD.encode()])["tick_recv_ns"]
                latencies.append(int(entry_id.split(b"-")[0]) - recv_ns / 1e6)
        if not latencies:
            return None, None
        ordered = sorted(latencies)
        return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def take_sample(system: RunningSystem, redis_server: EmbeddedRedis, started: float, stream: StreamLatency) -> Sample:
    rss = {name: group_rss_mb(system.pids(name)[-1]) for name in PROCESSES}
    assert redis_server.process is not None
    rss["redis"] = pid_rss_mb(redis_server.process.pid)
    _, engine = system.engine_health()
    _, ingestor = system.ingestor_health()
    web_status, web = system.health()
    published = engine.get("latency_frame_to_signal_published") or {}
    decision = engine.get("latency_frame_to_decision") or {}
    persistence = web.get("persistence") or {}
    window_p50, window_p99 = stream.interval()
    return Sample(
        minute=(time.monotonic() - started) / 60,
        rss_mb=rss,
        p50_us=published.get("p50_us"),
        p99_us=published.get("p99_us"),
        decision_p99_us=decision.get("p99_us"),
        ticks=engine.get("ticks"),
        signals=engine.get("signals_published"),
        window_p50_ms=window_p50,
        window_p99_ms=window_p99,
        counts={
            "frames_dropped": frames_dropped(ingestor),
            "ticks_refused": ingestor.get("ticks_dropped_backpressure"),
            "bad_messages": engine.get("bad_messages"),
            "signals_dropped": engine.get("signals_dropped"),
            "lag_s": persistence.get("lag_s"),
            "api_health": web_status,
            "restarts": len(system.restarts_since(0)),
        },
    )


def fmt(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def header() -> str:
    columns = ["min", *(f"{name} MB" for name in [*PROCESSES, "redis"])]
    columns += ["sig p50 µs", "sig p99 µs", "min sig p50 ms", "min sig p99 ms", "dec p99 µs", "ticks", "signals"]
    columns += ["frames dropped", "ticks refused", "bad msgs", "signals dropped", "lag s", "/api/health", "restarts"]
    return "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)


def row(sample: Sample) -> str:
    cells = [fmt(sample.minute, 1), *(fmt(sample.rss_mb[name], 1) for name in [*PROCESSES, "redis"])]
    cells += [fmt(sample.p50_us), fmt(sample.p99_us), fmt(sample.window_p50_ms, 1), fmt(sample.window_p99_ms, 1)]
    cells += [fmt(sample.decision_p99_us), fmt(sample.ticks)]
    cells += [fmt(sample.signals)]
    cells += [fmt(sample.counts[key], 2 if key == "lag_s" else 0) for key in sample.counts]
    return "| " + " | ".join(cells) + " |"


def pct(new: float | None, old: float | None) -> str:
    if new is None or old is None or old == 0:
        return "-"
    return f"{(new - old) / old * 100:+.1f} %"


def drift(samples: list[Sample]) -> str:
    """RSS growth after the first sample, per process, and the p99 drift (last sample against the first)."""
    first, last = samples[0], samples[-1]
    lines = ["| process | RSS first MB | RSS last MB | RSS max MB | growth |", "|---|---|---|---|---|"]
    for name in [*PROCESSES, "redis"]:
        peak = max(sample.rss_mb[name] for sample in samples)
        growth = pct(last.rss_mb[name], first.rss_mb[name])
        lines.append(f"| {name} | {first.rss_mb[name]:.1f} | {last.rss_mb[name]:.1f} | {peak:.1f} | {growth} |")
    lines += ["", "| latency | first | last | median of samples | drift (last vs first) |", "|---|---|---|---|---|"]
    for label, values, digits in (
        ("signal p99 of the interval, ms (stream)", [sample.window_p99_ms for sample in samples], 1),
        ("signal p50 of the interval, ms (stream)", [sample.window_p50_ms for sample in samples], 1),
        ("signal p99, µs (engine, last 20k signals)", [sample.p99_us for sample in samples], 0),
        ("decision p99, µs (engine, last 20k ticks)", [sample.decision_p99_us for sample in samples], 0),
    ):
        known = [value for value in values if value is not None]
        median = statistics.median(known) if known else None
        lines.append(
            f"| {label} | {fmt(values[0], digits)} | {fmt(values[-1], digits)} | {fmt(median, digits)} | "
            f"{pct(values[-1], values[0])} |"
        )
    return "\n".join(lines)


def exactly_once(system: RunningSystem) -> str:
    wanted = set(system.stream_ids())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not wanted <= set(system.table_ids()):
        time.sleep(0.5)
    rows = system.table_ids()
    missing = len(wanted - set(rows))
    duplicates = len(rows) - len(set(rows))
    return f"stream entries {len(wanted)}, rows {len(rows)}, missing {missing}, stored twice {duplicates}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (30)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples (60)")
    parser.add_argument("--rate", type=float, default=1000.0, help="simulator quote updates per second (1000)")
    parser.add_argument("--venues", default=ALL_VENUES, help=f"simulated and connected venues ({ALL_VENUES})")
    parser.add_argument("--dislocate-every", type=float, default=2.0, help="seconds between our dislocations (2)")
    args = parser.parse_args()

    venues = args.venues.split(",")
    routes = itertools.cycle(
        [(asset, cheap, rich) for asset in ASSETS for cheap in venues for rich in venues if cheap != rich]
    )
    redis_server = EmbeddedRedis().start()
    workdir = Path(tempfile.mkdtemp(prefix="arb-soak-"))
    system = RunningSystem(redis_server.url, workdir, venues=args.venues, SIM_RATE=repr(args.rate))
    print(
        f"soak: {args.minutes:g} min, sample every {args.interval:g} s, {args.rate:g} updates/s on {args.venues}, "
        f"a dislocation every {args.dislocate_every:g} s; log {system.log_path}",
        flush=True,
    )
    samples: list[Sample] = []
    try:
        system.wait_healthy(120)
        started = time.monotonic()
        end = started + args.minutes * 60
        next_sample = started + args.interval
        stream = StreamLatency(system)
        stream.interval()  # from now on
        print(header(), flush=True)
        while time.monotonic() < end:
            asset, cheap, rich = next(routes)
            query = f"asset={asset}&cheap={cheap}&rich={rich}&net_pct=1.0&seconds={args.dislocate_every / 2:g}"
            with contextlib.suppress(OSError):
                system.dislocate_query(query)
            time.sleep(max(0.0, min(args.dislocate_every, next_sample - time.monotonic())))
            if time.monotonic() >= next_sample:
                samples.append(take_sample(system, redis_server, started, stream))
                print(row(samples[-1]), flush=True)
                next_sample += args.interval
        if samples:
            print()
            print(drift(samples))
            print(f"\nframes dropped by venue and reason: {drops_by_reason(system.ingestor_health()[1]) or 'none'}")
        print()
        print(exactly_once(system))
    finally:
        code = system.stop()
        redis_server.cleanup()
        print(f"supervisor exit code {code}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
