"""Offline normalization: recorded frames in, normalized tick JSON out (`manage.py normalize`).

A line is either a raw frame of one exchange, exactly as received, or a capture
line `{"recv_ms": ..., "exchange": ..., "raw": "<frame>"}` (DESIGN.md, "Capture
file"); both may be mixed in one file. A line is taken for a capture line when it is a JSON
object with "recv_ms" and "raw"; the capture contract (`signals_app/contracts/capture.py`) then
says whether it is a valid one, its receive time, and that each connection of a venue recorded
over several gets a parser of its own (the counts are their sum). A capture line with "rest" is a
REST snapshot: the parser's `seed` takes it (its book ticks are printed like any tick), or, for a
parser that seeds no book, it is skipped as `rest_not_seedable`. A raw line's receive time
comes from the `.recv_ns` companion of the recorded files in ../shared/market-data when there
is one, else from the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import orjson

from ingest_worker.venues.base import ParseStats, VenueParser
from signals_app.contracts import capture
from signals_app.contracts.tick import encode

# Capture lines that are not fed to the parser, by reason.
OTHER_EXCHANGE = "other_exchange"  # recorded from another exchange than --exchange
BAD_CAPTURE = "bad_capture_line"  # has "raw" and "recv_ms", but is no valid capture line (contracts/capture.py)
REST_NOT_SEEDABLE = "rest_not_seedable"  # a REST snapshot line for a parser that seeds no book

_CAPTURE_MARK = b'"recv_ms"'  # raw exchange frames never hold this key; only such lines are decoded twice
_WRITE_EVERY = 1024  # ticks per write to `out`


class NormalizeCounts:
    """What one run saw: lines read, capture lines skipped, and the parser's own counters."""

    __slots__ = ("capture_lines", "lines", "skipped", "stats")

    def __init__(self, stats: ParseStats) -> None:
        self.lines = 0
        self.capture_lines = 0
        self.skipped: dict[str, int] = {}
        self.stats = stats

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "capture_lines": self.capture_lines,
            "skipped": dict(sorted(self.skipped.items())),
            **self.stats.as_dict(),
        }

    def report(self) -> str:
        """The counts for a person: one line per group, zero groups spelled out."""
        stats = self.stats
        dropped = {reason: count for reason, count in stats.dropped.items() if count}

        def group(counts: dict[str, int]) -> str:
            if not counts:
                return "none"
            return ", ".join(f"{kind}={count}" for kind, count in sorted(counts.items()))

        return "\n".join(
            (
                f"lines:   {self.lines} ({self.capture_lines} capture lines)",
                f"frames:  {stats.frames}",
                f"ticks:   {stats.ticks}",
                f"control: {sum(stats.control.values())} ({group(stats.control)})",
                f"ignored: {sum(stats.ignored.values())} ({group(stats.ignored)})",
                f"dropped: {sum(dropped.values())} ({group(dropped)})",
                f"skipped: {sum(self.skipped.values())} ({group(self.skipped)})",
            )
        )


def companion_recv_ns(path: Path) -> list[int] | None:
    """Receive times from `X.recv_ns` beside `X.jsonl`, when it exists and has a line per frame.

    None when there is no usable companion (not a .jsonl, no file, another
    number of lines). A companion with the right number of lines that does not
    hold integers is corrupt: ValueError, rather than silently using the clock.
    """
    if path.suffix != ".jsonl":
        return None
    companion = path.with_suffix(".recv_ns")
    if not companion.is_file():
        return None
    times = companion.read_bytes().splitlines()
    with path.open("rb") as frames:
        frame_count = sum(1 for _ in frames)
    if len(times) != frame_count:
        return None
    try:
        recv_times = [int(value) for value in times]
    except ValueError:
        recv_times = []
    if len(recv_times) != frame_count or not all(0 <= recv_ns < 2**63 for recv_ns in recv_times):
        raise ValueError(f"{companion}: not one integer receive time in ns (Unix epoch) per line")
    return recv_times


def normalize_lines(
    lines: Iterable[bytes],
    parser: VenueParser,
    out: BinaryIO,
    *,
    recv_times: Sequence[int] | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> NormalizeCounts:
    """Parse every line, write one tick JSON per line to `out`, and count what happened.

    `lines` are bytes with or without their line end (a file opened in binary
    mode will do). `recv_times[i]`, when given, is the receive time of raw line
    i; otherwise `clock()` is read as each raw line is read. `parser`'s counters
    are part of the result, so give it a fresh parser.
    """
    counts = NormalizeCounts(parser.stats)
    exchange = parser.name
    parse = parser.parse
    connections = capture.VenueParsers(
        parser,
        lambda: parser.__class__(parser.symbols, max_age_ms=parser.max_age_ms, depth_levels=parser.depth_levels),
    )
    pending: list[bytes] = []  # encoded ticks not yet written
    for index, line in enumerate(lines):
        counts.lines += 1
        if line.endswith(b"\n"):
            line = line[:-1]
        frame: str | bytes
        recv_ns: int
        obj = _capture_object(line) if _CAPTURE_MARK in line else None
        if obj is not None:
            counts.capture_lines += 1
            try:
                captured = capture.from_object(obj)
            except capture.BadCaptureLine:
                counts.skipped[BAD_CAPTURE] = counts.skipped.get(BAD_CAPTURE, 0) + 1
                continue
            if captured.exchange != exchange:
                counts.skipped[OTHER_EXCHANGE] = counts.skipped.get(OTHER_EXCHANGE, 0) + 1
                continue
            venue_parser = connections.on(captured.connection)
            if captured.rest is None:
                ticks = venue_parser.parse(captured.raw, captured.recv_ns)
            else:
                seeded = capture.seed(venue_parser, captured)
                if seeded is None:
                    counts.skipped[REST_NOT_SEEDABLE] = counts.skipped.get(REST_NOT_SEEDABLE, 0) + 1
                    continue
                ticks = seeded
            for tick in ticks:
                pending.append(encode(tick))
        else:
            try:
                frame = line.decode()
            except UnicodeDecodeError:
                frame = line  # the parser counts it: bytes that are not UTF-8 are not JSON
            recv_ns = recv_times[index] if recv_times is not None else clock()
            for tick in parse(frame, recv_ns):
                pending.append(encode(tick))
        if len(pending) >= _WRITE_EVERY:
            out.write(b"\n".join(pending) + b"\n")
            pending.clear()
    if pending:
        out.write(b"\n".join(pending) + b"\n")
    if connections.more:
        counts.stats = ParseStats.combined(connection.stats for connection in connections.parsers)
    return counts


def _capture_object(line: bytes) -> dict[str, object] | None:
    """The decoded line when it is meant as a capture line (an object with "raw" and "recv_ms")."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if obj.__class__ is not dict or "raw" not in obj or "recv_ms" not in obj:
        return None
    return obj  # type: ignore[no-any-return]
