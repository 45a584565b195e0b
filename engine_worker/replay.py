"""Replay captures through the same parsers, book, spread engine and lifecycle as the live path.

Frames are processed in `recv_ms` order, ties kept in file order (files in the
order given); the capture's receive time is the clock for validation, staleness
and the timers. No feed is ever down in a replay. Deterministic: the same
captures and settings always give byte-identical output.

The capture line, its receive time and the parser per connection are the capture contract's
(`signals_app/contracts/capture.py`). The parsers come from the factory the caller passes
(`manage.py replay` passes `ingest_worker.venues.make_parser`): the engine side imports no
ingestor code.

A capture's REST lines (`"rest"`: a snapshot that seeds a book) go to the parser's `seed`, at
their place in receive order; one for a venue whose parser cannot seed is counted
(`unseeded_rest`) and skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from signals_app.contracts.capture import (
    ConnectionParsers,
    FrameParser,
    ParserFactory,
    VenueParsers,
    read_in_order,
    recv_ns_of,
    seed,
)

_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE


@dataclass
class ReplayStats:
    lines: int = 0
    bad_lines: int = 0  # not a capture line (signals_app/contracts/capture.py)
    unknown_exchange: int = 0
    unseeded_rest: int = 0  # REST lines of a venue whose parser seeds no book
    frames: int = 0
    ticks: int = 0
    signals: dict[str, int] = field(default_factory=dict)
    parsers: dict[str, VenueParsers[FrameParser]] = field(default_factory=dict)  # per venue, every connection

    def summary(self) -> str:
        lines = [
            f"lines {self.lines}, frames {self.frames}, ticks {self.ticks}, "
            f"bad lines {self.bad_lines}, unknown exchange {self.unknown_exchange}"
            + (f", unseeded rest lines {self.unseeded_rest}" if self.unseeded_rest else ""),
            "signals " + ", ".join(f"{status} {count}" for status, count in self.signals.items()),
        ]
        for name, parser in sorted(self.parsers.items()):
            lines.append(f"{name}: {orjson.dumps(parser.stats.as_dict()).decode()}")
        return "\n".join(lines)


def replay_files(
    paths: Iterable[Path | str], config: EngineConfig, out: BinaryIO, *, make_parser: ParserFactory
) -> ReplayStats:
    """Replay the captures, writing each signal's JSON on its own line to `out`.

    `make_parser(exchange)` gives a new parser for a venue, KeyError for an unknown one
    (whose lines are counted and skipped).
    """
    stats = ReplayStats()
    lines = read_in_order(paths, stats)
    engine = Engine(config)
    parsers: ConnectionParsers[FrameParser] = ConnectionParsers(make_parser)
    stats.parsers = parsers
    on_tick = engine.on_tick
    expire = engine.expire
    lifecycle = engine.lifecycle
    write = out.write
    unknown = 0
    for line in lines:
        recv_ms, exchange, raw, connection, rest = line
        recv_ns = recv_ns_of(recv_ms)
        clock = recv_ns // 1_000_000
        if clock > lifecycle.next_stale_after:  # the timers, on capture time (any valid line moves it)
            for signal in expire(clock):
                write(_dumps(signal, option=_NEWLINE))
        try:
            venue = parsers[exchange]
        except KeyError:
            unknown += 1
            continue
        parser = venue.first if connection is None else venue.on(connection)
        if rest is None:
            ticks = parser.parse(raw, recv_ns)
        else:
            seeded = seed(parser, line)
            if seeded is None:
                stats.unseeded_rest += 1
                continue
            ticks = seeded
        for tick in ticks:
            signals = on_tick(tick, clock)
            if signals:  # seldom: most ticks change no opportunity
                for signal in signals:
                    write(_dumps(signal, option=_NEWLINE))
    stats.unknown_exchange = unknown
    # Every frame given to a parser, and every tick it made, is in its counters.
    for venue in parsers.values():
        for parser in venue.parsers:
            stats.frames += parser.stats.frames
            stats.ticks += parser.stats.ticks
    stats.signals = dict(lifecycle.counts)
    return stats
