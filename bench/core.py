"""Benchmark the pure core: parse+normalize per frame, engine per tick, a whole replay.

    .venv/bin/python bench/core.py        (or: make bench)

Prints markdown tables and one line naming the machine; it asserts nothing.
Sub-microsecond calls are timed in batches (100 calls between two
`perf_counter_ns` reads) and each batch's per-call mean is one sample; the
tables give the median and p99 of those samples. Baselines run in the same
rounds as the code they frame, alternating order, so that machine noise hits
both. The garbage collector stays on, as in the live processes.

1. Parsers on the real frames of ../shared/market-data (skipped when absent),
   against plain `json.loads` and `orjson.loads` of the same frames.
2. The engine with 2, 6 and 12 exchanges quoting 500 assets, and with 6
   exchanges quoting 50, 500 and 5000 assets (the cost of a tick must not grow
   with the number of assets), plus a 5000-asset book whose ticks touch only 50
   assets, which separates the algorithm from the CPU caches.
   Then the evaluation where it costs most: 2, 7 and 13 exchanges each listing
   every asset in USD, USDT and USDC (three markets an exchange in one quote
   group), with fixed and live rates (the reference markets USDT/USD and
   USDC/USD requoted on every exchange), and 7 exchanges with one market each
   at live rates.
3. A replay of demo/demo_capture.jsonl against `orjson.loads` of its lines,
   with the replay's stages (read and sort, parse) timed on their own.

    .venv/bin/python bench/core.py engine     (only the named sections: parse, engine, replay)
    .venv/bin/python bench/core.py engine --ticks 50000     (a shorter engine stream)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import json
import logging
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Nothing timed here reads Django settings (no django.setup()); the default is for any import that might.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")

import orjson  # noqa: E402

from engine_worker.config import EngineConfig  # noqa: E402
from engine_worker.engine import Engine  # noqa: E402
from ingest_worker.venues import make_parser  # noqa: E402
from ingest_worker.venues.base import VenueParser  # noqa: E402
from signals_app.contracts.capture import CaptureLine, read_in_order, recv_ns_of  # noqa: E402
from signals_app.contracts.tick import Tick, book, quote  # noqa: E402

MARKET_DATA = ROOT.parent / "shared" / "market-data"
DEMO_CAPTURE = ROOT / "demo" / "demo_capture.jsonl"
BATCH = 100  # calls per timed batch

# (exchange, file under MARKET_DATA); each has a `.recv_ns` companion, one receive time a line.
PARSE_FILES = (
    ("binance", "binance/bookTicker.jsonl"),
    ("binance", "binance/bookTicker.ETHUSDT.jsonl"),
    ("binance", "binance/trade.jsonl"),
    ("binance", "binance/bookTicker.20210417.jsonl"),
    ("binance", "binance/bookTicker.20210814.jsonl"),
    ("binance", "binance/bookTicker.20211012.jsonl"),
    ("coinbase", "coinbase/ticker.jsonl"),
    ("coinbase", "coinbase/level2.jsonl"),
    ("kraken", "kraken/ticker.jsonl"),
    ("kraken", "kraken/book.jsonl"),
    ("okx", "okx/tickers.jsonl"),
    ("okx", "okx/trades.jsonl"),
    ("bitstamp", "bitstamp/live_trades.jsonl"),
    ("gemini", "gemini/l2.jsonl"),
    ("gemini", "gemini/trade.jsonl"),
    ("bitfinex", "bitfinex/ticker.jsonl"),
)
PARSE_SECONDS_PER_FILE = 1.5  # time budget of one file, all three contenders together
PARSE_MIN_SAMPLES = 3000  # batches per contender, when the budget allows

ENGINE_TICKS = 200_000
CROSS_PROBABILITY = 0.0005  # share of ticks whose quote jumps 1.5 %: enough to open signals
REQUOTE_MS = 300  # each (exchange, asset) is requoted about this often, whatever the counts
TIMER_MS = 100  # the engine's stale timer, as the live loop would run it
MULTI_QUOTES = ("USD", "USDT", "USDC")  # one quote group, three markets of each asset on every exchange
REFERENCE_EVERY = 50  # with reference markets, one tick in this many requotes one (rates move often)

REPLAY_ROUNDS = 15


# --- helpers -------------------------------------------------------------------------
def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    align = ":---|" + "---:|" * (len(headers) - 1)  # the first column names the row
    lines = ["| " + " | ".join(headers) + " |", "|" + align]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Python {platform.python_version()} · {cpu} ({os.cpu_count()} CPUs) · {today}"


# --- 1. parse + normalize ------------------------------------------------------------
def load_frames(path: Path) -> list[tuple[str, int]]:
    frames = path.read_text().splitlines()
    recv = [int(line) for line in path.with_suffix(".recv_ns").read_text().split()]
    if len(recv) != len(frames):
        raise SystemExit(f"{path}: {len(frames)} frames but {len(recv)} receive times")
    return list(zip(frames, recv, strict=True))


def time_batches(call: Callable[[str, int], object], batches: list[list[tuple[str, int]]], out: list[float]) -> None:
    """Append each batch's per-call mean (µs) to `out`."""
    clock = time.perf_counter_ns
    for batch in batches:
        start = clock()
        for frame, recv_ns in batch:
            call(frame, recv_ns)
        out.append((clock() - start) / len(batch) / 1000)


def time_whole(call: Callable[[str, int], object], frames: list[tuple[str, int]]) -> int:
    clock = time.perf_counter_ns
    start = clock()
    for frame, recv_ns in frames:
        call(frame, recv_ns)
    return clock() - start


def bench_parsers() -> None:
    print("## Parse + normalize, per frame (µs), real recorded frames\n")
    if not MARKET_DATA.is_dir():
        print(f"{MARKET_DATA} is absent: parser benchmark skipped.\n")
        return
    std_loads = json.loads
    fast_loads = orjson.loads
    rows: list[tuple[object, ...]] = []
    for exchange, name in PARSE_FILES:
        path = MARKET_DATA / name
        if not path.exists():
            rows.append((name, exchange, "absent", "", "", "", "", "", "", "", ""))
            continue
        frames = load_frames(path)
        parser = make_parser(exchange, max_age_ms=None)
        size = min(BATCH, len(frames))
        batches = [frames[i : i + size] for i in range(0, len(frames) - size + 1, size)]
        contenders: dict[str, Callable[[str, int], object]] = {
            "parser": parser.parse,
            "json": lambda frame, _recv_ns: std_loads(frame),
            "orjson": lambda frame, _recv_ns: fast_loads(frame),
        }
        for call in contenders.values():  # warm: symbol caches, day cache, branch predictors
            time_whole(call, frames)
        ticks_per_pass = parser.stats.ticks
        samples: dict[str, list[float]] = {key: [] for key in contenders}
        whole_ns = 0
        whole_frames = 0
        order = list(contenders)
        gc.collect()
        started = time.perf_counter()
        rounds = 0
        while rounds < 5 or (
            len(samples["parser"]) < PARSE_MIN_SAMPLES and time.perf_counter() - started < PARSE_SECONDS_PER_FILE
        ):
            for key in order:
                time_batches(contenders[key], batches, samples[key])
            whole_ns += time_whole(parser.parse, frames)
            whole_frames += len(frames)
            order.reverse()  # alternate which contender goes first
            rounds += 1
        median = {key: statistics.median(values) for key, values in samples.items()}
        rows.append(
            (
                name,
                exchange,
                f"{len(frames)} ({ticks_per_pass} ticks)",
                median["parser"],
                percentile(samples["parser"], 0.99),
                whole_ns / whole_frames / 1000,
                median["json"],
                median["orjson"],
                f"{median['parser'] / median['json']:.2f}",
                f"{median['parser'] / median['orjson']:.2f}",
                f"{rounds} × {len(batches)}",
            )
        )
        dropped = {reason: count for reason, count in parser.stats.dropped.items() if count}
        if dropped:
            print(f"note: {name}: dropped over all passes {dropped}")
    headers = (
        "file",
        "venue",
        "frames",
        "parser median",
        "parser p99",
        "parser whole-file mean",
        "json.loads median",
        "orjson.loads median",
        "parser/json",
        "parser/orjson",
        "rounds × batches",
    )
    print(table(headers, rows))
    print(f"\nmedian and p99 over batches of {BATCH} frames (fewer when the file is shorter); ratios of medians.\n")


# --- 2. the engine ---------------------------------------------------------------------
def make_ticks(
    n_exchanges: int,
    n_assets: int,
    n_ticks: int,
    seed: int,
    active_assets: int | None = None,
    levels: int = 0,
    quotes: Sequence[str] = ("USD",),
    references: bool = False,
) -> tuple[list[Tick], list[Tick], int]:
    """(warm-up ticks: every exchange quotes every market once, the timed stream, crossing ticks).

    The stream quotes the first `active_assets` assets only (all of them by default). With
    `levels`, every tick is a book tick of that many levels a side (1 bp apart) instead of a quote.
    Every exchange lists each asset in each of `quotes`; with `references`, every exchange also
    quotes `<quote>/USD` for each other quote, and one tick in REFERENCE_EVERY requotes one of them.
    """
    rng = random.Random(seed)
    active = n_assets if active_assets is None else active_assets
    exchanges = [f"ex{i}" for i in range(n_exchanges)]
    width = max(3, len(str(n_assets - 1)))
    by_quote = [[f"A{i:0{width}d}/{quote_ccy}" for i in range(n_assets)] for quote_ccy in quotes]
    symbols = by_quote[0]
    reference_symbols = [f"{quote_ccy}/USD" for quote_ccy in quotes if quote_ccy != "USD"] if references else []
    mids = [rng.lognormvariate(3.0, 2.0) for _ in range(n_assets)]
    # each (exchange, market) requoted every REQUOTE_MS on average
    step_ns = REQUOTE_MS * 1_000_000 // (n_exchanges * active * len(quotes))
    clock_ns = 1_705_665_600_000_000_000
    gauss = rng.gauss
    uniform = rng.uniform
    crossings = 0

    def one(exchange: str, asset: int, shift: float, symbol: str | None = None, reference: bool = False) -> Tick:
        base_mid = 1.0 if reference else mids[asset]  # a reference market trades near 1.0
        mid = base_mid * (1.0 + gauss(0.0, 2e-4) + shift)  # the venue's own noise of a few bp
        half = mid * uniform(1e-4, 3e-4)
        symbol = symbols[asset] if symbol is None else symbol
        if levels:
            step = mid * 1e-4
            bids = [[mid - half - i * step, uniform(0.1, 10.0)] for i in range(levels)]
            asks = [[mid + half + i * step, uniform(0.1, 10.0)] for i in range(levels)]
            return book(exchange, symbol, bids, asks, clock_ns // 1_000_000, clock_ns)
        return quote(
            exchange,
            symbol,
            mid - half,
            mid + half,
            uniform(0.1, 10.0),
            uniform(0.1, 10.0),
            clock_ns // 1_000_000,
            clock_ns,
        )

    warm = []
    for exchange in exchanges:
        for reference in reference_symbols:
            warm.append(one(exchange, 0, 0.0, reference, reference=True))
    for asset in range(n_assets):
        for quoted in by_quote:
            for exchange in exchanges:
                clock_ns += step_ns
                warm.append(one(exchange, asset, 0.0, None if quoted is symbols else quoted[asset]))
    stream = []
    for n in range(n_ticks):
        clock_ns += step_ns
        if reference_symbols and n % REFERENCE_EVERY == 0:
            reference = reference_symbols[rng.randrange(len(reference_symbols))]
            stream.append(one(exchanges[rng.randrange(n_exchanges)], 0, 0.0, reference, reference=True))
            continue
        asset = rng.randrange(active)
        mids[asset] *= 1.0 + gauss(0.0, 1e-4)
        shift = 0.0
        if rng.random() < CROSS_PROBABILITY:
            shift = 0.015 if rng.random() < 0.5 else -0.015
            crossings += 1
        quoted = by_quote[rng.randrange(len(by_quote))] if len(by_quote) > 1 else symbols
        stream.append(
            one(exchanges[rng.randrange(n_exchanges)], asset, shift, None if quoted is symbols else quoted[asset])
        )
    return warm, stream, crossings


def run_engine(
    n_exchanges: int,
    n_assets: int,
    active_assets: int | None = None,
    levels: int = 0,
    quotes: Sequence[str] = ("USD",),
    quote_rates: str = "fixed",
) -> dict[str, float]:
    seed = n_exchanges * 100_003 + n_assets
    warm, stream, crossings = make_ticks(
        n_exchanges, n_assets, ENGINE_TICKS, seed, active_assets, levels, quotes, references=quote_rates == "live"
    )
    config = EngineConfig(fees_pct={f"ex{i}": 0.1 for i in range(n_exchanges)}, quote_rates=quote_rates)
    engine = Engine(config)
    on_tick = engine.on_tick
    expire = engine.expire
    for tick in warm:
        on_tick(tick, tick.recv_ns // 1_000_000)
    batches = [stream[i : i + BATCH] for i in range(0, len(stream), BATCH)]
    samples = []
    signals = 0
    next_timer = stream[0].recv_ns // 1_000_000 + TIMER_MS
    clock = time.perf_counter_ns
    gc.collect()
    started = clock()
    for batch in batches:
        start = clock()
        for tick in batch:
            now_ms = tick.recv_ns // 1_000_000
            if now_ms >= next_timer:
                signals += len(expire(now_ms))
                next_timer = now_ms + TIMER_MS
            signals += len(on_tick(tick, now_ms))
        samples.append((clock() - start) / len(batch) / 1000)
    total_ns = clock() - started
    counts = engine.lifecycle.counts
    return {
        "median": statistics.median(samples),
        "p99": percentile(samples, 0.99),
        "mean": total_ns / len(stream) / 1000,
        "signals": signals,
        "opens": counts["open"],
        "closes": counts["close"],
        "crossings": crossings,
    }


def timings(result: dict[str, float]) -> tuple[float, float, float]:
    return result["median"], result["p99"], result["mean"]


def signal_counts(result: dict[str, float]) -> str:
    return f"{result['signals']:.0f} ({result['opens']:.0f} open, {result['closes']:.0f} close)"


def bench_engine() -> None:
    print(f"## Engine, per tick (µs): {ENGINE_TICKS} random quote ticks after a warm book\n")
    results = {}
    rows: list[tuple[object, ...]] = []
    for n_exchanges, n_assets, active in (
        (2, 500, None),
        (6, 500, None),
        (12, 500, None),
        (6, 50, None),
        (6, 5000, None),
        (6, 5000, 50),
    ):
        result = results[(n_exchanges, n_assets, active)] = run_engine(n_exchanges, n_assets, active)
        rows.append(
            (
                n_exchanges,
                n_assets if active is None else f"{n_assets}, ticks on {active}",
                *timings(result),
                result["crossings"],
                signal_counts(result),
            )
        )
    headers = ("exchanges", "assets", "median", "p99", "mean", "crossing ticks", "signals")
    print(table(headers, rows))
    print(
        f"\nbatches of {BATCH} ticks; each (exchange, asset) is requoted every ~{REQUOTE_MS} ms of engine clock;"
        f" {CROSS_PROBABILITY:.2%} of ticks jump 1.5 %; fees 0.1 % everywhere; the stale timer runs every"
        f" {TIMER_MS} ms.\n"
    )
    book_rows: list[tuple[object, ...]] = []
    for levels in (1, 20, 100):
        quotes, books = results[(6, 500, None)], run_engine(6, 500, None, levels)
        book_rows.append((levels, quotes["median"], books["median"], books["p99"], books["median"] / quotes["median"]))
    print("Book ticks instead of quotes (6 exchanges, 500 assets): every evaluated pair walks both books\n")
    print(table(("levels a side", "quotes median", "books median", "books p99", "ratio"), book_rows))
    print(
        "\nOnly pairs that cross (or are open) are walked, and a walk reads only the levels it takes: a 1.5 % jump"
        " on levels 1 bp apart stays above the threshold for about 40 levels a side, so 100 levels cost what"
        " 40 do; the rest of a tick's cost is the book tick's own (its levels kept, not copied).\n"
    )
    print(
        "Several markets an exchange in one quote group, fixed and live rates (500 assets): each exchange"
        f" lists every asset in {', '.join(MULTI_QUOTES)}; at live rates every exchange also quotes"
        f" {', '.join(q + '/USD' for q in MULTI_QUOTES if q != 'USD')}, one tick in {REFERENCE_EVERY}"
        " requoting one of them\n"
    )
    group_rows: list[tuple[object, ...]] = []
    for n_exchanges, quoted_in, quote_rates in (
        (2, MULTI_QUOTES, "fixed"),
        (7, MULTI_QUOTES, "fixed"),
        (13, MULTI_QUOTES, "fixed"),
        (2, MULTI_QUOTES, "live"),
        (7, MULTI_QUOTES, "live"),
        (13, MULTI_QUOTES, "live"),
        (7, ("USD",), "live"),
    ):
        result = run_engine(n_exchanges, 500, quotes=quoted_in, quote_rates=quote_rates)
        group_rows.append(
            (
                n_exchanges,
                len(quoted_in),
                quote_rates,
                *timings(result),
                signal_counts(result),
            )
        )
    headers = ("exchanges", "markets an exchange", "rates", "median", "p99", "mean", "signals")
    print(table(headers, group_rows))
    print()
    scaling = [results[(6, n, None)]["median"] for n in (50, 500, 5000)]
    hot = results[(6, 5000, 50)]["median"]
    print(
        "Cost per tick against the number of assets (6 exchanges), median µs: "
        f"50 → {scaling[0]:.2f}, 500 → {scaling[1]:.2f}, 5000 → {scaling[2]:.2f};"
        f" 5000 in the book with ticks on 50 of them → {hot:.2f}."
        " The work per tick is the same (one asset's venues): with the same 5000-asset book, ticks on"
        " 50 assets cost what a 50-asset book costs, so the growth comes from memory locality (CPU"
        " caches), not from the algorithm.\n"
    )


# --- 3. a whole replay -------------------------------------------------------------------
def bench_replay() -> None:
    print("## Replay of the demo capture vs parsing its lines\n")
    try:
        from engine_worker.replay import replay_files
    except ImportError as exc:
        print(f"engine_worker.replay is not available ({exc}): replay benchmark skipped.\n")
        return
    if not DEMO_CAPTURE.exists():
        print(f"{DEMO_CAPTURE} is absent (make demo-capture): replay benchmark skipped.\n")
        return
    loads = orjson.loads
    config = EngineConfig()

    def lines_only() -> None:
        with DEMO_CAPTURE.open("rb") as handle:
            for line in handle:
                loads(line)

    def lines_and_frames() -> int:
        malformed = 0  # the capture's deliberately malformed frame
        with DEMO_CAPTURE.open("rb") as handle:
            for line in handle:
                try:
                    loads(loads(line)["raw"])
                except orjson.JSONDecodeError:
                    malformed += 1
        return malformed

    def replay() -> None:
        replay_files([DEMO_CAPTURE], config, io.BytesIO(), make_parser=make_parser)

    contenders: dict[str, Callable[[], object]] = {"replay_files": replay}
    try:  # the breakdown uses replay's building blocks; without them only the whole replay is timed
        from engine_worker.replay import ReplayStats
        from ingest_worker.venues.base import MAX_TICK_AGE_MS
    except ImportError:
        pass
    else:

        def read_sorted() -> list[CaptureLine]:
            return read_in_order([DEMO_CAPTURE], ReplayStats())

        def read_and_parse() -> None:
            parsers: dict[str, VenueParser] = {}
            for recv_ms, exchange, raw, _, _ in read_sorted():
                parser = parsers.get(exchange)
                if parser is None:
                    parser = parsers[exchange] = make_parser(exchange, max_age_ms=MAX_TICK_AGE_MS)
                parser.parse(raw, recv_ns_of(recv_ms))

        contenders["stage: read_in_order"] = read_sorted
        contenders["stage: read_in_order + parse (no engine)"] = read_and_parse
    contenders["orjson.loads(line)"] = lines_only
    contenders["orjson.loads(line) + orjson.loads(raw)"] = lines_and_frames
    samples: dict[str, list[float]] = {key: [] for key in contenders}
    order = list(contenders)
    # The capture's bad frames would log a (rate-limited) warning on every round.
    logging.disable(logging.WARNING)
    try:
        stats = replay_files(
            [DEMO_CAPTURE], config, io.BytesIO(), make_parser=make_parser
        )  # warm, and the counts for the table
        for _ in range(REPLAY_ROUNDS):
            for key in order:
                gc.collect()
                start = time.perf_counter_ns()
                contenders[key]()
                samples[key].append((time.perf_counter_ns() - start) / 1e6)
            order.reverse()
    finally:
        logging.disable(logging.NOTSET)
    median = {key: statistics.median(values) for key, values in samples.items()}
    lines = stats.lines
    rows = [
        (
            key,
            median[key],
            min(samples[key]),
            median[key] * 1000 / lines,
            f"{median[key] / median['orjson.loads(line)']:.2f}",
        )
        for key in contenders
    ]
    print(f"{DEMO_CAPTURE.name}: {lines} lines, {stats.ticks} ticks, signals {stats.signals}\n")
    print(table(("run", "median ms", "min ms", "µs per line", "× orjson.loads(line)"), rows))
    ratio = median["replay_files"] / median["orjson.loads(line)"]
    verdict = "meets" if ratio <= 5 else "misses"
    print(
        f"\nTarget: a whole replay ≤ 5× the cost of parsing its lines: {ratio:.2f}× ({verdict} it)."
        f" Medians of {REPLAY_ROUNDS} rounds, alternating order; each includes reading the file.\n"
    )


def main() -> None:
    started = time.perf_counter()
    print("# Arbitrage Sniper core benchmark\n")
    print(machine_line() + "\n")
    # Recorded files hold real bad frames and, replayed in a loop, sequence "gaps": their
    # (rate-limited) warnings would interleave with the tables. Counting is unaffected.
    logging.disable(logging.WARNING)
    global ENGINE_TICKS
    sections = {"parse": bench_parsers, "engine": bench_engine, "replay": bench_replay}
    parser = argparse.ArgumentParser(description="Benchmark the pure core; prints markdown tables.")
    parser.add_argument("sections", nargs="*", help=f"the sections to run, of {', '.join(sections)} (default: all)")
    parser.add_argument("--ticks", type=int, default=ENGINE_TICKS, help="quote ticks per engine run")
    options = parser.parse_args()
    ENGINE_TICKS = options.ticks
    chosen = options.sections or list(sections)
    unknown = [name for name in chosen if name not in sections]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(sections)}")
    for name in chosen:
        sections[name]()
    print(f"(whole run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
