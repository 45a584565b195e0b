"""Replay captures through the same parsers, book, spread engine and lifecycle as the live path.

Frames are processed in `recv_ms` order, ties kept in file order (files in the
order given); the capture's receive time is the clock for validation, staleness
and the timers. No feed is ever down in a replay. Deterministic: the same
captures and settings always give byte-identical output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

import msgspec
import orjson

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from ingest_worker.venues import PARSERS
from ingest_worker.venues.base import MAX_TICK_AGE_MS, ParseStats, VenueParser

_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE


@dataclass
class ReplayStats:
    lines: int = 0
    bad_lines: int = 0  # not a capture line: not JSON, or without recv_ms / exchange / raw
    unknown_exchange: int = 0
    frames: int = 0
    ticks: int = 0
    signals: dict[str, int] = field(default_factory=dict)
    parsers: dict[str, VenueParser] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"lines {self.lines}, frames {self.frames}, ticks {self.ticks}, "
            f"bad lines {self.bad_lines}, unknown exchange {self.unknown_exchange}",
            "signals " + ", ".join(f"{status} {count}" for status, count in self.signals.items()),
        ]
        for name, parser in sorted(self.parsers.items()):
            lines.append(f"{name}: {orjson.dumps(parser.stats.as_dict()).decode()}")
        return "\n".join(lines)


class _CaptureLine(msgspec.Struct):
    recv_ms: float
    exchange: str
    raw: str
    connection: int | None = None  # one of a venue's several connections (ingest_worker/record.py)


_decode_line = msgspec.json.Decoder(_CaptureLine).decode
_LINE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
Entry = tuple[float, str, str, int | None]  # (recv_ms, exchange, raw, connection)


def read_capture(path: Path, stats: ReplayStats) -> list[Entry]:
    """Valid lines of one capture as (recv_ms, exchange, raw, connection), in file order."""
    entries: list[Entry] = []
    append = entries.append
    with path.open("rb") as handle:
        for line in handle:
            stats.lines += 1
            try:
                capture = _decode_line(line)
            except _LINE_ERRORS:
                stats.bad_lines += 1
                continue
            recv_ms = capture.recv_ms
            if not 0.0 < recv_ms < 1e14:  # also refuses NaN
                stats.bad_lines += 1
                continue
            append((recv_ms, capture.exchange, capture.raw, capture.connection))
    return entries


def replay_files(paths: Iterable[Path | str], config: EngineConfig, out: BinaryIO) -> ReplayStats:
    """Replay the captures, writing each signal's JSON on its own line to `out`."""
    stats = ReplayStats()
    entries: list[Entry] = []
    for path in paths:
        entries.extend(read_capture(Path(path), stats))
    entries.sort(key=itemgetter(0))  # stable: ties keep file order, then line order

    engine = Engine(config)
    parsers = stats.parsers
    on_tick = engine.on_tick
    expire = engine.expire
    lifecycle = engine.lifecycle
    write = out.write
    connection_parsers: dict[tuple[str, int], VenueParser] = {}  # a venue's second, third... connection
    for recv_ms, exchange, raw, connection in entries:
        recv_ns = round(recv_ms * 1000.0) * 1000  # µs precision survives the float; ns does not
        clock = recv_ns // 1_000_000
        if clock > lifecycle.next_stale_after:  # the timers, on capture time (any valid line moves it)
            for signal in expire(clock):
                write(_dumps(signal, option=_NEWLINE))
        parser = parsers.get(exchange)
        if parser is None:
            parser_class = PARSERS.get(exchange)
            if parser_class is None:
                stats.unknown_exchange += 1
                continue
            parser = parsers[exchange] = parser_class(max_age_ms=MAX_TICK_AGE_MS)
        if connection is not None and connection != 1:
            # Channel ids and sequences are per connection: each connection has a parser of its own.
            other = connection_parsers.get((exchange, connection))
            if other is None:
                other = connection_parsers[(exchange, connection)] = parser.__class__(max_age_ms=MAX_TICK_AGE_MS)
            parser = other
        stats.frames += 1
        for tick in parser.parse(raw, recv_ns):
            stats.ticks += 1
            for signal in on_tick(tick, clock):
                write(_dumps(signal, option=_NEWLINE))
    stats.signals = dict(lifecycle.counts)
    for (exchange, _), parser in connection_parsers.items():
        # Reported per venue: the first connection's parser counts for all of them.
        stats.parsers[exchange].stats = ParseStats.combined([stats.parsers[exchange].stats, parser.stats])
    return stats
