"""Live-feed latency: Redis PUBLISH on arbitrage:signals → a text frame in a browser-like WebSocket client.

Starts a private Redis and a real daphne (`arbsite.asgi:application`) on free
loopback ports, connects `websockets` clients to /ws/signals/ with the Origin a
dashboard page would send, then PUBLISHes signal JSON at fixed rates, each
carrying its publish time (CLOCK_MONOTONIC, shared by every process of the
machine) in an extra field. For each rate it prints p50/p99/max of publish →
received for a plain Redis subscriber in the same client process (the floor:
Redis and the client's own event loop; `--floor per-browser` measures one
subscriber per browser instead, so that the time ten browsers' frames wait for
each other in this one client process is in the floor too) and for the
WebSocket clients (the path
added by the web process: relay, each browser's queue, consumer, daphne), how many
frames arrived, in order, the CPU the web process used, and what the web process's
relay reports on /api/health at the end (signals missed by full browser queues).

With `--baseline DIR` (another checkout, e.g. a worktree of the commit to compare
with), each round runs every scenario against a web process started from DIR and
then against one from this checkout, `--rounds` times alternately (so both see the
same machine load), and a last table gives, per scenario, the median over rounds of
each side's added p50 and p99. `--baseline minimal` compares with the least a
Python WebSocket hop costs here: a child process with one redis-py subscription
that `websockets.broadcast`s each message to every client (no Django, Channels,
daphne, queue or check).

Run: .venv/bin/python bench/web_latency.py [--scenarios 20x1,200x1,200x10] [--seconds 5]
     [--baseline DIR] [--rounds 3]
(a scenario is RATE x CLIENTS). DJANGO_SETTINGS_MODULE picks the web process's settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from arbsite.redis_server import EmbeddedRedis, free_port  # noqa: E402
from signals_app.contracts.keys import SIGNALS_CHANNEL  # noqa: E402
from signals_app.contracts.signal import SIGNAL_TYPE, action, signal_id  # noqa: E402

SETTLE_S = 3.0  # after the last publish, how long stragglers may take


def signal(seq: int, sent_ns: int) -> bytes:
    """A realistic signal (the contract's fields, ~640 bytes) plus the bench's sequence and publish time."""
    now_ms = time.time_ns() // 1_000_000
    opened_at = now_ms - 1500
    return orjson.dumps(
        {
            "type": SIGNAL_TYPE,
            "id": signal_id("BTC", "binance", "coinbase", opened_at),
            "status": "update",
            "action": action("binance", "coinbase"),
            "symbol": "BTC/USDT",
            "asset": "BTC",
            "buy_exchange": "binance",
            "sell_exchange": "coinbase",
            "buy_symbol": "BTC/USDT",
            "sell_symbol": "BTC/USD",
            "buy_price": 45000.12,
            "sell_price": 45300.57,
            "spread_pct": 0.6677,
            "net_spread_pct": 0.4665,
            "size": 0.51234,
            "profit_per_unit": 209.91,
            "profit_estimate": 107.55,
            "fees_pct": {"binance": 0.1, "coinbase": 0.1},
            "opened_at": opened_at,
            "duration_ms": now_ms - opened_at,
            "peak_net_spread_pct": 0.4871,
            "tick_recv_ns": time.time_ns() - 400_000,
            "timestamp": now_ms,
            "bench_seq": seq,
            "bench_sent_ns": sent_ns,
        }
    )


@dataclass
class Receiver:
    """Latencies (µs) and sequence numbers seen by one client, in arrival order."""

    name: str
    latencies_us: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)

    def take(self, payload: bytes | str, received_ns: int) -> None:
        message = orjson.loads(payload)
        if "bench_seq" not in message:
            return  # a warm-up signal
        self.latencies_us.append((received_ns - message["bench_sent_ns"]) / 1000)
        self.seqs.append(message["bench_seq"])


async def read_websocket(ws: ClientConnection, receiver: Receiver) -> None:
    with contextlib.suppress(Exception):
        async for frame in ws:
            receiver.take(frame, time.monotonic_ns())


async def read_pubsub(pubsub: Any, receiver: Receiver) -> None:
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is not None and message["type"] == "message":
            receiver.take(message["data"], time.monotonic_ns())


def publish_at_rate(redis_url: str, rate: float, seconds: float, sent: list[int]) -> None:
    """PUBLISH rate × seconds signals on a fixed schedule (a thread: the client loop stays free to receive)."""
    client = redis.Redis.from_url(redis_url)
    total = int(rate * seconds)
    start = time.monotonic() + 0.05
    for seq in range(total):
        due = start + seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.publish(SIGNALS_CHANNEL, signal(seq, time.monotonic_ns()))
        sent.append(seq)
    client.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def scenario(
    ws_url: str, origin: str, redis_url: str, rate: float, clients: int, seconds: float, floor_subscribers: int
) -> dict[str, Any]:
    subscribers = [aioredis.Redis.from_url(redis_url) for _ in range(floor_subscribers)]
    pubsubs: list[Any] = [subscriber.pubsub() for subscriber in subscribers]
    for pubsub in pubsubs:
        await pubsub.subscribe(SIGNALS_CHANNEL)
    floors = [Receiver(f"redis{i}") for i in range(floor_subscribers)]
    websockets = [await connect(ws_url, origin=origin, proxy=None) for _ in range(clients)]  # type: ignore[arg-type]
    receivers = [Receiver(f"ws{i}") for i in range(clients)]
    tasks = [asyncio.create_task(read_pubsub(pubsub, floor)) for pubsub, floor in zip(pubsubs, floors, strict=True)]
    tasks += [asyncio.create_task(read_websocket(ws, r)) for ws, r in zip(websockets, receivers, strict=True)]

    # Warm up: every client has had a signal, so the relay is subscribed and every path is hot.
    warm = redis.Redis.from_url(redis_url)
    warm_payload = orjson.dumps({"type": SIGNAL_TYPE, "id": "warm-up", "timestamp": 0})
    for _ in range(20):
        warm.publish(SIGNALS_CHANNEL, warm_payload)
        await asyncio.sleep(0.05)
    warm.close()

    web_pid = int(os.environ["BENCH_WEB_PID"])
    cpu_before = cpu_seconds(web_pid)
    client_cpu_before = cpu_seconds(os.getpid())
    sent: list[int] = []
    started = time.monotonic()
    # In a thread: the publishing schedule must not wait for the clients' event loop.
    await asyncio.to_thread(publish_at_rate, redis_url, rate, seconds, sent)
    for _ in range(int(SETTLE_S / 0.02)):  # stragglers
        if all(len(r.seqs) >= len(sent) for r in receivers):
            break
        await asyncio.sleep(0.02)
    cpu_used = cpu_seconds(web_pid) - cpu_before
    client_cpu_used = cpu_seconds(os.getpid()) - client_cpu_before
    elapsed = time.monotonic() - started

    for task in tasks:
        task.cancel()
    for ws in websockets:
        await ws.close()
    for pubsub, subscriber in zip(pubsubs, subscribers, strict=True):
        await pubsub.aclose()
        await subscriber.aclose()

    browser_latencies = [value for r in receivers for value in r.latencies_us]
    return {
        "rate": rate,
        "clients": clients,
        "sent": len(sent),
        "received_min": min(len(r.seqs) for r in receivers),
        "in_order": all(r.seqs == sorted(r.seqs) for r in receivers),
        "floor": [value for floor in floors for value in floor.latencies_us],
        "floor_subscribers": floor_subscribers,
        "browser": browser_latencies,
        "web_cpu_pct": 100 * cpu_used / elapsed,
        "client_cpu_pct": 100 * client_cpu_used / elapsed,
    }


MINIMAL = "minimal"  # --baseline minimal: the least a Python WebSocket hop costs, for scale


async def serve_minimal(redis_url: str, port: int) -> None:
    """The minimal hop: one redis-py subscription, `websockets.broadcast` of each message to every client.

    No Django, Channels or daphne, no queue, no check: what any Python process relaying Redis
    pub/sub to WebSockets pays on this machine at least (run as a child: `--serve-minimal`).
    """
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    clients: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    subscriber = aioredis.Redis.from_url(redis_url)
    pubsub: Any = subscriber.pubsub()
    await pubsub.subscribe(SIGNALS_CHANNEL)
    async with serve(handler, "127.0.0.1", port):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
            if message is not None and message["type"] == "message":
                broadcast(clients, message["data"].decode())


def start_minimal(redis_url: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    web = subprocess.Popen(
        [sys.executable, __file__, "--serve-minimal", f"{port}:{redis_url}"], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise RuntimeError(f"the minimal hop exited with {web.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return web
        time.sleep(0.1)
    web.kill()
    raise RuntimeError(f"the minimal hop did not listen on {port} within 30 s:\n{log_path.read_text()}")


def start_web(redis_url: str, port: int, log_path: Path, checkout: Path = REPO) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "arbsite.settings"),
        "LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }
    log = log_path.open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "arbsite.asgi:application"],
        cwd=checkout,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    url = f"http://127.0.0.1:{port}/static/admin/css/base.css"  # also proves static files are served
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise RuntimeError(f"daphne exited with {web.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return web
        time.sleep(0.1)
    web.kill()
    raise RuntimeError(f"daphne did not answer on {url} within 30 s:\n{log_path.read_text()}")


def fmt(values: list[float]) -> str:
    return f"{percentile(values, 0.5):.0f} / {percentile(values, 0.99):.0f} / {max(values, default=float('nan')):.0f}"


def relay_report(port: int) -> str:
    """What the web process's relay says on /api/health (a 503 is expected: no engine runs here)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except OSError as exc:
        return f"/api/health unreachable: {exc}"
    try:
        relay = orjson.loads(body).get("relay")
    except (orjson.JSONDecodeError, AttributeError):
        return "no /api/health (the minimal hop)"
    if not isinstance(relay, dict):
        return "/api/health has no relay section (a web process from before it)"
    names = ("relayed", "missed", "overflows", "queued", "browsers")
    return "relay on /api/health: " + ", ".join(f"{name} {relay.get(name)}" for name in names)


@dataclass
class Run:
    label: str
    results: list[dict[str, Any]]
    exit_code: int | str
    relay: str
    load_average: float  # the machine's 1-minute load average when the run started


def run_web(label: str, checkout: Path, scenarios: list[tuple[float, ...]], seconds: float, floor: str) -> Run:
    """Every scenario against one fresh Redis and one daphne started from `checkout` (or the minimal hop)."""
    load_average = os.getloadavg()[0]
    server = EmbeddedRedis().start()
    port = free_port()
    log_path = REPO / "var" / "bench-web-latency-daphne.log"
    log_path.parent.mkdir(exist_ok=True)
    if str(checkout) == MINIMAL:
        web = start_minimal(server.url, port, log_path)
    else:
        web = start_web(server.url, port, log_path, checkout)
    os.environ["BENCH_WEB_PID"] = str(web.pid)
    results = []
    try:
        for rate, clients in scenarios:
            results.append(
                asyncio.run(
                    scenario(
                        f"ws://127.0.0.1:{port}/ws/signals/",
                        f"http://127.0.0.1:{port}",
                        server.url,
                        rate,
                        int(clients),
                        seconds,
                        int(clients) if floor == "per-browser" else 1,
                    )
                )
            )
        relay = relay_report(port)
    finally:
        web.terminate()
        try:
            exit_code: int | str = web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.kill()
            exit_code = "killed after 10 s"
        server.cleanup()
    return Run(label, results, exit_code, relay, load_average)


def added_us(result: dict[str, Any], q: float) -> float:
    return percentile(result["browser"], q) - percentile(result["floor"], q)


def print_run(run: Run) -> None:
    print(f"\n{run.label} (load average {run.load_average:.1f} at its start):\n")
    print(
        "| signals/s | browsers | published | received (each) | in order | Redis subscribers | "
        "Redis subscriber p50 / p99 / max µs | browser p50 / p99 / max µs | added by the web path p50 / p99 µs "
        "| web process CPU | clients' process CPU |"
    )
    print("|---:|---:|---:|---:|---|---:|---|---|---|---:|---:|")
    for r in run.results:
        added = f"{added_us(r, 0.5):.0f} / {added_us(r, 0.99):.0f}"
        in_order = "yes" if r["in_order"] else "NO"
        print(
            f"| {r['rate']:g} | {r['clients']} | {r['sent']} | {r['received_min']} | {in_order} "
            f"| {r['floor_subscribers']} | {fmt(r['floor'])} | {fmt(r['browser'])} | {added} "
            f"| {r['web_cpu_pct']:.0f} % | {r['client_cpu_pct']:.0f} % |"
        )
    print(
        f"\npublish → received, CLOCK_MONOTONIC; the Redis subscribers run in the clients' process. "
        f"daphne exit code on SIGTERM: {run.exit_code}. Median of all frames: "
        f"{statistics.median([v for r in run.results for v in r['browser']] or [float('nan')]):.0f} µs. "
        f"{run.relay}."
    )


def print_comparison(runs: list[Run], scenarios: list[tuple[float, ...]]) -> None:
    """Per scenario, the median over rounds of each side's added p50 / p99 and web CPU."""
    print("\nmedian over rounds (added by the web path, µs; web process CPU):\n")
    print("| signals/s | browsers | baseline p50 / p99 | this p50 / p99 | baseline CPU | this CPU |")
    print("|---:|---:|---|---|---:|---:|")
    for index, (rate, clients) in enumerate(scenarios):
        cells = []
        for label in ("baseline", "this"):
            rows = [run.results[index] for run in runs if run.label.startswith(label)]
            p50 = statistics.median(added_us(r, 0.5) for r in rows)
            p99 = statistics.median(added_us(r, 0.99) for r in rows)
            cpu = statistics.median(r["web_cpu_pct"] for r in rows)
            cells.append((f"{p50:.0f} / {p99:.0f}", f"{cpu:.0f} %"))
        print(f"| {rate:g} | {clients:g} | {cells[0][0]} | {cells[1][0]} | {cells[0][1]} | {cells[1][1]} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="20x1,200x1,200x10", help="RATExCLIENTS, comma separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="publishing time per scenario")
    parser.add_argument(
        "--baseline",
        type=Path,
        help=f"another checkout to compare with, run alternately; {MINIMAL!r}: the minimal Python WebSocket hop",
    )
    parser.add_argument("--serve-minimal", metavar="PORT:REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help="alternations with --baseline")
    parser.add_argument(
        "--floor",
        choices=("per-browser", "one"),
        default="one",
        help="Redis subscribers measured beside the browsers: a single one (default) or one per browser",
    )
    args = parser.parse_args()
    if args.serve_minimal:
        port, redis_url = args.serve_minimal.split(":", 1)
        asyncio.run(serve_minimal(redis_url, int(port)))
        return 0
    scenarios = [tuple(float(part) for part in item.split("x")) for item in args.scenarios.split(",")]

    runs: list[Run] = []
    if args.baseline is None:
        runs.append(run_web(f"this checkout ({REPO})", REPO, scenarios, args.seconds, args.floor))
    else:
        for round_number in range(1, args.rounds + 1):
            label = f"baseline ({args.baseline}), round {round_number}"
            runs.append(run_web(label, args.baseline, scenarios, args.seconds, args.floor))
            runs.append(
                run_web(f"this checkout ({REPO}), round {round_number}", REPO, scenarios, args.seconds, args.floor)
            )

    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    print(
        f"Python {platform.python_version()} · {platform.processor() or platform.machine()} "
        f"({os.cpu_count()} CPUs) · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · "
        f"settings {settings_module} · {args.seconds:g} s per row · floor: {args.floor} Redis subscriber(s)"
    )
    for run in runs:
        print_run(run)
    if args.baseline is not None:
        print_comparison(runs, scenarios)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
