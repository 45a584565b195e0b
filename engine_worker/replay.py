"""Replay captures through the same parsers, book, spread engine and lifecycle as the live path.

Frames are processed in `recv_ms` order, ties kept in file order (files in the
order given); the capture's receive time is the clock for validation, staleness
and the timers. No feed is ever down in a replay. Deterministic: the same
captures and settings always give byte-identical output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from ingest_worker.venues import PARSERS
from ingest_worker.venues.base import VenueParser

_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE
MAX_TICK_AGE_MS = 60_000  # the live validation window (DESIGN.md), measured against capture time


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


def read_capture(path: Path, file_index: int, stats: ReplayStats) -> list[tuple[float, int, int, str, str]]:
    """Valid lines of one capture as (recv_ms, file index, line index, exchange, raw)."""
    entries = []
    with path.open("rb") as handle:
        for line_index, line in enumerate(handle):
            stats.lines += 1
            try:
                obj = orjson.loads(line)
                recv_ms = obj["recv_ms"]
                exchange = obj["exchange"]
                raw = obj["raw"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                stats.bad_lines += 1
                continue
            if (
                recv_ms.__class__ not in (int, float)
                or not 0 < recv_ms < 1e14
                or exchange.__class__ is not str
                or raw.__class__ is not str
            ):
                stats.bad_lines += 1
                continue
            entries.append((float(recv_ms), file_index, line_index, exchange, raw))
    return entries


def replay_files(paths: Iterable[Path | str], config: EngineConfig, out: BinaryIO) -> ReplayStats:
    """Replay the captures, writing each signal's JSON on its own line to `out`."""
    stats = ReplayStats()
    entries: list[tuple[float, int, int, str, str]] = []
    for file_index, path in enumerate(paths):
        entries.extend(read_capture(Path(path), file_index, stats))
    entries.sort(key=_recv_ms)  # stable: ties keep file order, then line order

    engine = Engine(config)
    parsers = stats.parsers
    on_tick = engine.on_tick
    expire = engine.expire
    lifecycle = engine.lifecycle
    write = out.write
    for recv_ms, _, _, exchange, raw in entries:
        parser = parsers.get(exchange)
        if parser is None:
            parser_class = PARSERS.get(exchange)
            if parser_class is None:
                stats.unknown_exchange += 1
                continue
            parser = parsers[exchange] = parser_class(max_age_ms=MAX_TICK_AGE_MS)
        stats.frames += 1
        recv_ns = round(recv_ms * 1000.0) * 1000  # µs precision survives the float; ns does not
        clock = recv_ns // 1_000_000
        if clock > lifecycle.next_stale_after:  # the timers, on capture time
            for signal in expire(clock):
                write(_dumps(signal, option=_NEWLINE))
        for tick in parser.parse(raw, recv_ns):
            stats.ticks += 1
            for signal in on_tick(tick, clock):
                write(_dumps(signal, option=_NEWLINE))
    stats.signals = dict(lifecycle.counts)
    return stats


def _recv_ms(entry: tuple[float, int, int, str, str]) -> float:
    return entry[0]
