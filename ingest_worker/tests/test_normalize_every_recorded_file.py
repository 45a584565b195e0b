"""`normalize` works on every recorded file of every venue: each line read, no parser bug hit.

Recorded files mix channels we use with ones we do not (depth, klines, books, REST bodies);
every line must end as ticks, a control frame, an ignored frame or a counted drop, and the
parser's safety net (`unexpected`) must never fire. A few recordings hold real stale frames
(an exchange's last trade resent on subscribe), so the clock check is off, as `normalize`'s is.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ingest_worker.normalize import companion_recv_ns, normalize_lines
from ingest_worker.venues import PARSERS, make_parser
from ingest_worker.venues.base import UNEXPECTED

VENUE_FOLDERS = {name: name for name in PARSERS}


@pytest.mark.parametrize("venue", sorted(VENUE_FOLDERS))
def test_every_recorded_file_of_the_venue_normalizes(market_data: Path, venue: str) -> None:
    paths = sorted((market_data / VENUE_FOLDERS[venue]).glob("*.jsonl"))
    assert paths, f"no recordings for {venue}"
    for path in paths:
        parser = make_parser(venue, max_age_ms=None)
        lines = path.read_bytes().splitlines()
        out = io.BytesIO()
        counts = normalize_lines(lines, parser, out, recv_times=companion_recv_ns(path))
        stats = counts.stats
        assert counts.lines == len(lines), path
        assert stats.frames == len(lines), path
        assert stats.dropped[UNEXPECTED] == 0, path
        assert len(out.getvalue().splitlines()) == stats.ticks, path
        # Data channels that feed signals yield ticks; nothing is dropped wholesale.
        assert sum(stats.dropped.values()) < max(1, len(lines) // 10), (path, stats.as_dict())
