"""Benchmark the tick transport: the ZeroMQ hop's encode + send and recv + decode, per tick.

    .venv/bin/python bench/transport.py [--baseline WORKTREE]

Old and new in the same process, over the same real ZeroMQ PUSH/PULL pair on loopback TCP:

- old: one message per tick, the tick's JSON object (`encode`), each decoded and checked on
  its own (`decode`: the wire form before issue 12). With `--baseline`, the `encode` and
  `decode` of that checkout's `signals_app/contracts/tick.py` (a worktree of the commit before
  the transport: its code exactly), loaded beside this one; without, this checkout's own JSON
  `encode`/`decode` (the same wire form, checked by today's rules);
- new: one message per frame, msgpack of positional fields (`encode_ticks`), decoded once and
  each tick checked (`decode_message`).

Frames are what the feeds send: a Binance bookTicker (one quote), a Coinbase ticker (a quote
and its trade), a depth frame (one book tick of 20 levels a side), a frame of 50 book ticks and
a book-lost tick (a Binance REST seed, or the books a reconnection lost), and ten bookTicker
frames in one message (what a flush per loop turn would carry). Each sample is the per-tick mean
over a batch of BATCH frames between two clock reads: the sender's encode + send of every
message of the batch, then, once everything has arrived, the receiver's recv + decode of them.
Old and new alternate which goes first in each round so that machine noise hits both. Prints
a markdown table (medians and p99s over the samples, µs per tick, and new/old ratios) and
asserts only that every tick arrived and decoded to what was sent. The garbage collector stays
on, as in the live processes.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")

import zmq  # noqa: E402

# bench/core.py's table helpers: a script's own folder is first on sys.path
from core import machine_line, percentile, table  # noqa: E402

from arbsite.redis_server import free_port  # noqa: E402
from signals_app.contracts.tick import (  # noqa: E402
    Tick,
    book,
    book_lost,
    decode,
    decode_message,
    encode,
    encode_ticks,
    quote,
    trade,
)

BATCH = 20  # frames between two clock reads
BATCHES_PER_ROUND = 10
ROUNDS = 15
LEVELS = 20  # a side, as DEPTH_LEVELS
NOW_NS = 1_705_670_123_456_789_012

Frame = list[Tick]


def _book(rng: random.Random, exchange: str, symbol: str) -> Tick:
    mid = rng.uniform(100.0, 50_000.0)
    step = mid * 1e-4
    bids = [[mid - step * (k + 0.5), rng.uniform(0.01, 5.0)] for k in range(LEVELS)]
    asks = [[mid + step * (k + 0.5), rng.uniform(0.01, 5.0)] for k in range(LEVELS)]
    return book(exchange, symbol, bids, asks, NOW_NS // 1_000_000, NOW_NS)


def _quote(rng: random.Random, exchange: str, symbol: str) -> Tick:
    bid = rng.uniform(100.0, 50_000.0)
    return quote(
        exchange, symbol, bid, bid * 1.0001, rng.uniform(0.01, 5.0), rng.uniform(0.01, 5.0), NOW_NS // 1_000_000, NOW_NS
    )


def scenarios(rng: random.Random) -> list[tuple[str, Callable[[], Frame]]]:
    def book_ticker() -> Frame:
        return [_quote(rng, "binance", "BTC/USDT")]

    def ticker() -> Frame:
        quoted = _quote(rng, "coinbase", "BTC/USD")
        return [quoted, trade("coinbase", "BTC/USD", quoted.ask, 0.01, NOW_NS // 1_000_000, NOW_NS)]  # type: ignore[arg-type]

    def depth() -> Frame:
        return [_book(rng, "binance", "BTC/USDT")]

    def many_books() -> Frame:
        books = [_book(rng, "binance", f"A{n}/USDT") for n in range(50)]
        return [*books, book_lost("binance", "LOST/USDT", NOW_NS // 1_000_000, NOW_NS)]

    def loop_turn() -> Frame:
        return [_quote(rng, "binance", f"A{n}/USDT") for n in range(10)]

    return [
        ("bookTicker (1 quote)", book_ticker),
        ("ticker (quote + trade)", ticker),
        (f"depth ({LEVELS}-level book)", depth),
        ("50 books + 1 book-lost", many_books),
        ("10 bookTicker frames in one message", loop_turn),
    ]


class Hop:
    """A PUSH/PULL pair on loopback TCP, unbounded on both sides so that nothing is dropped."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.push: zmq.Socket[bytes] = context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.SNDHWM, 0)
        self.push.bind(endpoint)
        self.pull: zmq.Socket[bytes] = context.socket(zmq.PULL)
        self.pull.setsockopt(zmq.RCVHWM, 0)
        self.pull.connect(endpoint)
        self.push.send(b"hello")  # the connection is up before anything is timed
        assert self.pull.recv() == b"hello"
        self.settle_s = 0.005  # how long the sender's batch is given to arrive
        self.late_batches = 0

    def close(self) -> None:
        self.push.close(linger=0)
        self.pull.close(linger=0)


old_encode: Callable[[Tick], bytes] = encode
old_decode: Callable[[bytes], Tick] = decode


def load_baseline(worktree: Path) -> str:
    """Take the old `encode`/`decode` from `worktree`'s tick contract (it imports only orjson)."""
    global old_encode, old_decode
    path = worktree / "signals_app" / "contracts" / "tick.py"
    spec = importlib.util.spec_from_file_location("baseline_tick", path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_tick"] = module  # NamedTuple needs its module importable
    spec.loader.exec_module(module)
    old_encode, old_decode = module.encode, module.decode
    return f"{path}"


def old_send(push: zmq.Socket[bytes], frame: Frame) -> None:
    for each in frame:
        push.send(old_encode(each), zmq.NOBLOCK)


def old_receive(pull: zmq.Socket[bytes], frame_ticks: int) -> list[Tick]:
    return [old_decode(pull.recv(zmq.NOBLOCK)) for _ in range(frame_ticks)]


def new_send(push: zmq.Socket[bytes], frame: Frame) -> None:
    push.send(encode_ticks(frame), zmq.NOBLOCK)


def new_receive(pull: zmq.Socket[bytes], frame_ticks: int) -> list[Tick]:
    items, refused = decode_message(pull.recv(zmq.NOBLOCK))
    assert not refused
    return items  # type: ignore[return-value]


def measure(
    hop: Hop,
    frames: list[Frame],
    send: Callable[[zmq.Socket[bytes], Frame], None],
    receive: Callable[[zmq.Socket[bytes], int], list[Tick]],
    out_send: list[float],
    out_receive: list[float],
) -> None:
    """One round of BATCHES_PER_ROUND batches; appends per-tick samples (µs)."""
    clock = time.perf_counter_ns
    for first in range(0, len(frames), BATCH):
        batch = frames[first : first + BATCH]
        ticks = sum(len(frame) for frame in batch)
        start = clock()
        for frame in batch:
            send(hop.push, frame)
        out_send.append((clock() - start) / ticks / 1000)
        # Everything on the receiver's side before its pass is timed: a PULL socket that waits
        # for the I/O thread would time the wait, not the work. A batch that had not all arrived
        # is received untimed and its sample left out (counted); the next ones wait longer.
        time.sleep(hop.settle_s)
        received: list[Tick] = []
        start = clock()
        try:
            for frame in batch:
                received.extend(receive(hop.pull, len(frame)))
        except zmq.Again:
            hop.late_batches += 1
            hop.settle_s *= 2
            while hop.pull.poll(200):  # the rest of the batch, untimed, before the next is sent
                hop.pull.recv()
            continue
        out_receive.append((clock() - start) / ticks / 1000)
        assert received == [each for frame in batch for each in frame], "the hop changed a tick"


def bytes_per_tick(frame: Frame) -> tuple[float, float]:
    return sum(len(old_encode(each)) for each in frame) / len(frame), len(encode_ticks(frame)) / len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a checkout whose tick contract is the old path")
    options = parser.parse_args()
    old_is = "this checkout's JSON encode/decode"
    if options.baseline is not None:
        old_is = load_baseline(options.baseline)
    rng = random.Random(12)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    hop = Hop(context)
    rows = []
    try:
        for name, make in scenarios(rng):
            frames = [make() for _ in range(BATCH * BATCHES_PER_ROUND)]
            samples: dict[str, list[float]] = {key: [] for key in ("old_send", "old_recv", "new_send", "new_recv")}
            for round_number in range(ROUNDS):
                order = ("old", "new") if round_number % 2 == 0 else ("new", "old")
                for which in order:
                    if which == "old":
                        measure(hop, frames, old_send, old_receive, samples["old_send"], samples["old_recv"])
                    else:
                        measure(hop, frames, new_send, new_receive, samples["new_send"], samples["new_recv"])
            old_bytes, new_bytes = bytes_per_tick(frames[0])
            med = {key: statistics.median(values) for key, values in samples.items()}
            p99 = {key: percentile(values, 0.99) for key, values in samples.items()}
            rows.append(
                [
                    name,
                    len(frames[0]),
                    f"{med['old_send']:.2f} / {p99['old_send']:.2f}",
                    f"{med['new_send']:.2f} / {p99['new_send']:.2f}",
                    f"{med['new_send'] / med['old_send']:.2f}",
                    f"{med['old_recv']:.2f} / {p99['old_recv']:.2f}",
                    f"{med['new_recv']:.2f} / {p99['new_recv']:.2f}",
                    f"{med['new_recv'] / med['old_recv']:.2f}",
                    f"{old_bytes:.0f} / {new_bytes:.0f}",
                ]
            )
            print(f"{name}: done ({hop.late_batches} late batches left out so far)", file=sys.stderr, flush=True)
    finally:
        hop.close()
        context.term()
    print("# Tick transport: the ZeroMQ hop per tick, one JSON message per tick (old) against one msgpack")
    print("# message per frame (new)\n")
    print(machine_line() + "\n")
    print(f"old: {old_is}\n")
    print(
        table(
            [
                "frame",
                "ticks",
                "old encode + send µs/tick p50 / p99",
                "new",
                "new/old p50",
                "old recv + decode µs/tick p50 / p99",
                "new",
                "new/old p50",
                "bytes/tick old / new",
            ],
            rows,
        )
    )
    print(
        f"\nSamples: per-tick means over batches of {BATCH} frames, {BATCHES_PER_ROUND} batches a round, "
        f"{ROUNDS} rounds, old and new alternating; loopback TCP, both sockets in this process."
    )


if __name__ == "__main__":
    main()
