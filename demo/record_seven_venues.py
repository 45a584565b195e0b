"""Record the seven-venue demo capture from our own simulator through our own ingestor.

    .venv/bin/python demo/record_seven_venues.py [OUT] [--seed N] [--rate R] [--raw PATH]
    make demo-record                                    (OUT: demo/seven_venues.jsonl.gz)

Real processes on real sockets, every port a free one picked at start:

- `manage.py run_exchange_sim` serves all seven venues (binance, coinbase, kraken,
  okx, bitstamp, gemini, bitfinex), each in its own wire protocol, for BTC and ETH
  plus each venue's stablecoin reference markets, at a low update rate (`--rate 1`
  on top of the model's one quote per market per second), seeded (`--seed 7`), with
  no random dislocations: only the ones this script asks for.
- `manage.py run_ingestor --record TMP` connects to the seven venues as it would to
  the real ones (MARKET_SOURCE=sim) and records every frame it receives, with its
  receive time, in the capture format of DESIGN.md. It subscribes to BTC and ETH
  against USD and USDT and to USDT/USD (SYMBOLS), wherever a venue lists them: 18
  markets. No engine runs: the ingestor's ZeroMQ PUSH socket refuses the ticks (no
  peer, or past its high-water mark) and counts them; the recording happens before
  the push and does not depend on it.

Once every feed is live and 3 s have passed, the script drives the market through
the simulator's control API on a fixed timetable (`SCRIPT` below, about 70 s):

- nine forced dislocations, 5-10 s each, between seven venue pairs, two of them in
  both directions, alternating BTC and ETH: kraken/okx, okx/kraken, gemini/bitfinex,
  bitfinex/gemini, bitstamp/coinbase, coinbase/binance, binance/gemini, bitstamp/okx,
  bitfinex/kraken (cheap/rich), net 1.0-1.5 % after the two venues' taker fees; a
  moved venue's quotes also beat others, so more pairs than these signal;
- a stale quote: Bitstamp silenced for 4 s in the middle of its BTC dislocation, so
  its last quote ages past STALE_MS (2000 ms), the opportunity closes and then
  opens again when Bitstamp speaks again, still dislocated;
- a USDT depeg the asset markets do not follow (`/sim/depeg?currency=USDT&usd=...&
  reprice=0`): USDT/USD goes to 0.985 in three 0.5 % steps, stays there 5 s and comes
  back the same way. With QUOTE_RATES=fixed nothing happens; with QUOTE_RATES=live
  the USDT markets (binance, okx) are 1.5 % cheap in USD and signal against every
  USD venue. A simulator without `/sim/depeg` (404) gets a printed note and no
  depeg; any other failed control request stops the recording.

Every venue's depth channel is recorded with the rest (the books the replay walks). One
change is made to what was received: Bitstamp's `order_book` message carries the top 100
levels per side (about 4.6 KB, as on the real venue), so those frames keep their top
BITSTAMP_BOOK_LEVELS (20, DEPTH_LEVELS) levels per side: the parser's book ticks carry no
more, and the script checks with `manage.py normalize --exchange bitstamp` that the
trimmed frames give exactly the ticks of the received ones. Every other frame is byte for
byte as received.

An OUT ending in `.gz` is written gzip-compressed (replay, normalize and the simulator's
--replay read it as it is). It is written only when it is complete and under 1 MB as
stored (a hard limit for a file in the repository); otherwise the script exits 1 and
writes nothing. A
summary (lines and bytes per venue, the ingestor's counters) goes to stderr.

Not byte-identical between runs: the seed fixes the simulator's random walk and
choices, but the simulator is paced by the wall clock, so the receive times, how
many updates fall between two control requests, and hence the exact prices differ
from run to run. The timetable, the venues, the markets and what the replay finds
(which pairs signal, and roughly when) stay the same.

Only the standard library and orjson; the processes run in the repository.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: the project's packages come from the repository

from arbsite.redis_server import free_port  # noqa: E402
from tests.procs import Proc, get_json  # noqa: E402

DEFAULT_OUT = REPO / "demo" / "seven_venues.jsonl.gz"
MAX_BYTES = 1_000_000  # hard limit: the script refuses to write a capture this large

VENUES = ("binance", "coinbase", "kraken", "okx", "bitstamp", "gemini", "bitfinex")
ASSETS = "BTC,ETH"
# The markets the ingestor subscribes to where a venue lists them: the two assets against USD and
# USDT, and USDT/USD, the reference market QUOTE_RATES=live converts USDT with (USDC is left out).
SYMBOLS = "BTC/USD,BTC/USDT,ETH/USD,ETH/USDT,USDT/USD"
SEED = 7
RATE = 1.0  # random quote updates per second over all markets, on top of one per market per second
WARMUP_S = 3.0  # after every feed is live, before the first event
TAIL_S = 2.5  # once the last event has run its course, so that the last opportunities close in the capture
LIVE_TIMEOUT_S = 40.0
NOT_LISTED = re.compile(r"(\w+): not listed, skipped: (.+)$")  # the ingestor's log line for a SYMBOLS miss
# Bitstamp's order_book message is the top 100 levels per side (about 4.6 KB), as on the real
# venue. The recorder keeps the top DEPTH_LEVELS of each side of those frames, all a book tick
# carries, and checks that the trimmed frames give exactly the ticks of the received ones.
# Every other frame is kept as received.
BITSTAMP_BOOK_LEVELS = 20


@dataclass(frozen=True)
class Event:
    at_s: float  # seconds after the warm-up
    action: str  # a /sim/ control endpoint
    params: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    optional: bool = False  # a 404 (endpoint not in this simulator) skips it instead of failing
    lasts_s: float = 0.0  # how long what it starts goes on


def _dislocate(at_s: float, asset: str, cheap: str, rich: str, net_pct: float, seconds: float) -> Event:
    params = {"asset": asset, "cheap": cheap, "rich": rich, "net_pct": f"{net_pct:g}", "seconds": f"{seconds:g}"}
    note = f"{asset} cheap on {cheap}, rich on {rich}, net {net_pct:g} % for {seconds:g} s"
    return Event(at_s, "dislocate", params, note, lasts_s=seconds)


def _depeg(at_s: float, steps: tuple[float, ...], note: str) -> tuple[Event, ...]:
    """USDT's USD value moved in steps half a second apart, the asset markets never repriced (their
    pricing stays at 1 USD). Steps of 0.5 % stay under every venue pair's fees, so that the USDT/USD
    reference markets themselves never show an opportunity while one venue has the new value and
    another not yet (one 1.5 % jump would open a few milliseconds-long USDT/USD signals)."""
    return tuple(
        Event(
            at_s + 0.5 * number,
            "depeg",
            {"currency": "USDT", "usd": f"{usd:g}", "reprice": "0"},
            f"USDT worth {usd:g} USD, {note}",
            optional=True,
        )
        for number, usd in enumerate(steps)
    )


# The market's timetable. Net spreads are after the two venues' default taker fees; each
# dislocation ends before the next one on the same asset starts.
SCRIPT: tuple[Event, ...] = (
    _dislocate(0.0, "BTC", "kraken", "okx", 1.2, 5),
    _dislocate(6.0, "ETH", "okx", "kraken", 1.0, 5),
    _dislocate(12.0, "BTC", "gemini", "bitfinex", 1.2, 5),
    _dislocate(18.0, "ETH", "bitfinex", "gemini", 1.1, 5),
    _dislocate(24.0, "BTC", "bitstamp", "coinbase", 1.5, 10),
    Event(
        26.0,
        "silence",
        {"venue": "bitstamp", "seconds": "4"},
        "bitstamp silent for 4 s: its BTC quote goes stale",
        lasts_s=4,
    ),
    _dislocate(36.0, "ETH", "coinbase", "binance", 1.2, 5),
    _dislocate(42.0, "BTC", "binance", "gemini", 1.2, 5),
    _dislocate(48.0, "ETH", "bitstamp", "okx", 1.0, 5),
    *_depeg(54.0, (0.995, 0.99, 0.985), "USDT markets not repriced: an opportunity for live rates only"),
    *_depeg(60.0, (0.99, 0.995, 1.0), "back"),
    _dislocate(62.0, "BTC", "bitfinex", "kraken", 1.2, 5),
)


class Child(Proc):
    """A `manage.py` command as a child process (tests/procs.py), whose failures are this script's."""

    def wait_for_line(self, predicate: Callable[[str], bool], timeout_s: float = 20.0) -> str:
        try:
            return super().wait_for_line(predicate, timeout_s)
        except AssertionError as exc:
            raise Failure(str(exc)) from None

    def alive(self) -> None:
        if self.popen.poll() is not None:
            raise Failure(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM and wait; killed (and Failure) if it does not exit in time."""
        try:
            return self.terminate(timeout_s)
        except AssertionError as exc:
            raise Failure(str(exc)) from None


class Failure(Exception):
    """The recording cannot be trusted: stop, write nothing, exit 1."""


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def start_simulator(seed: int, rate: float) -> tuple[Child, dict[str, str]]:
    ports = [arg for venue in VENUES for arg in ("--port", f"{venue}=0")]
    args = ["run_exchange_sim", "--venues", ",".join(VENUES), *ports, "--seed", str(seed), "--rate", f"{rate:g}"]
    sim = Child("simulator", [*args, "--assets", ASSETS, "--no-auto-dislocations"], {})
    ready = sim.wait_for_line(lambda line: line.startswith("SIM_READY "), 30.0)
    urls: dict[str, str] = orjson.loads(ready.removeprefix("SIM_READY "))
    if sorted(urls) != sorted(VENUES):
        raise Failure(f"simulator serves {sorted(urls)}, not the seven venues")
    return sim, urls


def start_ingestor(urls: Mapping[str, str], record: Path, health_port: int) -> Child:
    env = {
        "EXCHANGES": ",".join(VENUES),
        "MARKET_SOURCE": "sim",
        "SIM_HOST": "127.0.0.1",
        **{f"SIM_{venue.upper()}_PORT": url.rsplit(":", 1)[1] for venue, url in urls.items()},
        "ZMQ_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",  # nobody pulls: refused ticks are counted
        "HEALTH_PORT": str(health_port),
        "ASSETS": ASSETS,
        "SYMBOLS": SYMBOLS,
        "QUOTE_GROUPS": "USD,USDT,USDC",  # one group: SYMBOLS above names the markets, USDT/USD among them
        "FEED_SILENCE_TIMEOUT_S": "10",  # longer than the scripted 4 s silence: no reconnect
        "BINANCE_ENABLED": "true",
        "COINBASE_ENABLED": "true",
    }
    return Child("ingestor", ["run_ingestor", "--record", str(record)], env)


def health(health_url: str) -> dict[str, object]:
    """The ingestor's /health body (200 when every feed is live, 503 otherwise)."""
    status, body = get_json(health_url)
    if status not in (200, 503) or not isinstance(body, dict) or not isinstance(body.get("feeds"), dict):
        raise Failure(f"ingestor /health answered {status}: {body!r}")
    return body


def feeds(health_url: str) -> dict[str, dict[str, object]]:
    found = health(health_url)["feeds"]
    assert isinstance(found, dict)
    return dict(found)


def wait_live(ingestor: Child, health_url: str) -> None:
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    last: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        ingestor.alive()
        try:
            last = feeds(health_url)
        except (Failure, OSError):
            time.sleep(0.2)
            continue
        ready = [name for name, feed in last.items() if feed.get("state") == "live" and _ticks(feed) > 0]
        if sorted(last) == sorted(VENUES) and len(ready) == len(VENUES):
            return
        time.sleep(0.2)
    states = {name: feed.get("state") for name, feed in last.items()}
    raise Failure(f"not every feed live within {LIVE_TIMEOUT_S} s: {states}\n{ingestor.output()}")


def _int(mapping: Mapping[str, object], key: str) -> int:
    value = mapping.get(key, 0)
    return value if isinstance(value, int) else 0


def _ticks(feed: Mapping[str, object]) -> int:
    """Ticks the feed's parser produced (pushed or not: with no engine, ZeroMQ refuses them)."""
    parse = feed.get("parse")
    return _int(parse, "ticks") if isinstance(parse, dict) else 0


def run_script(control_url: str, processes: list[Child]) -> list[str]:
    """Play SCRIPT on the wall clock, then let it run its course; what was done, one line each."""
    done: list[str] = []
    skipped_actions: set[str] = set()
    start = time.monotonic()
    for event in SCRIPT:
        while (wait := start + event.at_s - time.monotonic()) > 0:
            for proc in processes:
                proc.alive()
            time.sleep(min(wait, 0.25))
        if event.action in skipped_actions:
            continue
        query = urllib.parse.urlencode(event.params)
        status, body = get_json(f"{control_url}/{event.action}?{query}")
        at = f"t+{time.monotonic() - start:5.1f} s"
        if status == 404 and event.optional:
            skipped_actions.add(event.action)
            say(f"  {at}  NOTE: /sim/{event.action} answered 404 (not in this simulator): skipped, {event.note}")
            continue
        if status != 200:
            raise Failure(f"/sim/{event.action}?{query} answered {status}: {body!r}")
        line = f"{at}  {event.action:9s} {event.note}"
        say("  " + line)
        done.append(line)
    end = start + max(event.at_s + event.lasts_s for event in SCRIPT) + TAIL_S
    while (wait := end - time.monotonic()) > 0:
        for proc in processes:
            proc.alive()
        time.sleep(min(wait, 0.25))
    return done


def trim_bitstamp_books(source: Path, target: Path) -> int:
    """Copy the capture, keeping the top BITSTAMP_BOOK_LEVELS levels per side of Bitstamp order_book
    frames; the number of frames trimmed. Failure if a frame would change in any other way."""
    trimmed = 0
    with source.open("rb") as lines, target.open("wb") as out:
        for line in lines:
            entry = orjson.loads(line)
            raw = entry["raw"]
            if entry["exchange"] == "bitstamp" and '"channel":"order_book_' in raw and '"event":"data"' in raw:
                frame = orjson.loads(raw)
                if orjson.dumps(frame).decode() != raw:
                    raise Failure(f"a Bitstamp frame does not survive a JSON round trip unchanged: {raw[:200]}")
                data = frame.get("data")
                if not (
                    isinstance(data, dict) and isinstance(data.get("bids"), list) and isinstance(data.get("asks"), list)
                ):
                    raise Failure(f"a Bitstamp order_book data frame without bids and asks: {raw[:200]}")
                for side in ("bids", "asks"):
                    data[side] = data[side][:BITSTAMP_BOOK_LEVELS]
                entry["raw"] = orjson.dumps(frame).decode()
                trimmed += 1
            out.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
    return trimmed


def normalize(exchange: str, capture: Path) -> tuple[bytes, str]:
    """`manage.py normalize --exchange NAME CAPTURE`: its ticks (stdout) and counts (stderr)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "arbsite.settings"}
    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "normalize", "--exchange", exchange, str(capture)],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise Failure(f"normalize --exchange {exchange} exited with {done.returncode}: {done.stderr.decode()}")
    return done.stdout, done.stderr.decode()


def summarize(path: Path) -> tuple[Counter[str], Counter[str], int, float]:
    """Lines and bytes per venue, total lines, and the span of receive times in seconds; Failure on a bad line."""
    lines: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    first = last = None
    total = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                entry = orjson.loads(line)
                recv_ms = float(entry["recv_ms"])
                exchange = str(entry["exchange"])
                if not isinstance(entry["raw"], str):
                    raise TypeError("raw is not text")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise Failure(f"{path}:{number}: not a capture line ({exc})") from None
            lines[exchange] += 1
            sizes[exchange] += len(line)
            total += 1
            first = recv_ms if first is None else min(first, recv_ms)
            last = recv_ms if last is None else max(last, recv_ms)
    span_s = 0.0 if first is None or last is None else (last - first) / 1000.0
    return lines, sizes, total, span_s


def record(out: Path, seed: int, rate: float, raw_copy: Path | None) -> int:
    handle, name = tempfile.mkstemp(prefix="seven_venues.", suffix=".received.part", dir=out.parent)
    os.close(handle)
    received = Path(name)
    received.unlink()  # the ingestor creates it (it appends: it must not exist)
    trimmed_path = received.with_suffix(".trimmed.part")
    processes: list[Child] = []
    try:
        sim, urls = start_simulator(seed, rate)
        processes.append(sim)
        say(f"simulator ready: {', '.join(f'{venue} {url}' for venue, url in urls.items())}")
        health_port = free_port()
        health_url = f"http://127.0.0.1:{health_port}/health"
        ingestor = start_ingestor(urls, received, health_port)
        processes.append(ingestor)
        wait_live(ingestor, health_url)
        say(f"all seven feeds live, recording; warm-up {WARMUP_S:g} s, then the script:")
        time.sleep(WARMUP_S)
        control_url = urls["binance"].replace("ws://", "http://") + "/sim"
        run_script(control_url, processes)
        final_health = health(health_url)
        final = feeds(health_url)
        code = ingestor.stop()
        if code != 0:
            raise Failure(f"ingestor exited with {code}:\n{ingestor.output()}")
        code = sim.stop()
        if code != 0:
            raise Failure(f"simulator exited with {code}:\n{sim.output()}")
        skipped = [found.groups() for line in ingestor.lines if (found := NOT_LISTED.search(line))]
        if raw_copy is not None:
            raw_copy.write_bytes(received.read_bytes())

        received_size = received.stat().st_size
        trimmed = trim_bitstamp_books(received, trimmed_path)
        before, _ = normalize("bitstamp", received)
        after, _ = normalize("bitstamp", trimmed_path)
        if before != after:
            raise Failure("the trimmed Bitstamp frames do not give the ticks of the received ones")
        lines, sizes, total, span_s = summarize(trimmed_path)
        if out.suffix == ".gz":
            packed_path = trimmed_path.with_suffix(".gz.part")
            # mtime 0: the same capture gives the same bytes
            with trimmed_path.open("rb") as plain, gzip.GzipFile(packed_path, "wb", 9, mtime=0) as packed:
                shutil.copyfileobj(plain, packed)
            packed_path.replace(trimmed_path)
        size = trimmed_path.stat().st_size
        say(f"\ncapture: {total} lines, {size} bytes as stored, {span_s:.1f} s of receive time")
        say(
            f"  (as received: {received_size} bytes; {trimmed} Bitstamp order_book frames cut to their top "
            f"{BITSTAMP_BOOK_LEVELS} levels per side, same ticks: {len(after.splitlines())})"
        )
        for venue in VENUES:
            feed = final.get(venue, {})
            parse = feed.get("parse")
            dropped = parse.get("dropped") if isinstance(parse, dict) else None
            say(
                f"  {venue:9s} {lines[venue]:5d} lines {sizes[venue]:7d} bytes  "
                f"connects {_int(feed, 'connects')}  ticks {_ticks(feed)}  dropped {dropped or {}}"
            )
        for venue, symbols in sorted(skipped):
            say(f"  {venue} does not list {symbols} (SYMBOLS): not subscribed there")
        say(
            f"  no engine ran: ticks pushed {_int(final_health, 'ticks_sent')}, refused at the ZeroMQ high-water "
            f"mark and counted {_int(final_health, 'ticks_dropped_backpressure')} (the recording does not depend on it)"
        )
        missing = [venue for venue in VENUES if not lines[venue]]
        if missing:
            raise Failure(f"no frame recorded from {', '.join(missing)}")
        reconnected = [venue for venue in VENUES if _int(final.get(venue, {}), "connects") > 1]
        if reconnected:
            say(f"  WARNING: reconnected during the recording: {', '.join(reconnected)}")
        if size >= MAX_BYTES:
            raise Failure(
                f"capture is {size} bytes, over the {MAX_BYTES}-byte limit: lower RATE or shorten SCRIPT "
                f"(nothing written to {out})"
            )
        trimmed_path.replace(out)
        say(f"wrote {out} ({size} bytes, under the {MAX_BYTES}-byte limit)")
        return 0
    finally:
        for proc in reversed(processes):
            proc.kill()
        received.unlink(missing_ok=True)
        trimmed_path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"capture to write ({DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"simulator seed ({SEED})")
    parser.add_argument("--rate", type=float, default=RATE, help=f"simulator --rate, updates per second ({RATE:g})")
    parser.add_argument("--raw", type=Path, default=None, metavar="PATH", help="also keep the untrimmed recording here")
    options = parser.parse_args(argv)
    out: Path = options.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        return record(out, options.seed, options.rate, options.raw)
    except Failure as failure:
        say(f"record_seven_venues: FAILED: {failure}")
        return 1
    except KeyboardInterrupt:
        say("record_seven_venues: interrupted, nothing written")
        return 130


if __name__ == "__main__":
    sys.exit(main())
