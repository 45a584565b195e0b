"""A capture with REST snapshot lines (`"rest": url`, DESIGN.md "Capture file"): `manage.py
normalize` and `replay` seed the book of the market the URL names with it, at its place in
receive order, and print the book ticks like any tick; a venue whose parser cannot seed counts
the line instead of taking the body for a frame."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import orjson

from engine_worker.config import EngineConfig
from engine_worker.replay import replay_files
from ingest_worker.normalize import REST_NOT_SEEDABLE, normalize_lines
from ingest_worker.tests.recorded import frames
from ingest_worker.venues import make_parser
from ingest_worker.venues.binance import BinanceParser
from signals_app.contracts import capture
from signals_app.contracts.tick import encode

REPO = Path(__file__).resolve().parents[2]


def write_session(market_data: Path, out: Path, suffix: str = ".20211012") -> Path:
    """The session's REST snapshots and depthUpdate frames as one capture, in receive order."""
    folder = market_data / "binance"
    rest = folder / f"depth_snapshot_rest{suffix}.jsonl"
    urls = rest.with_suffix(".url").read_text().split()
    merged: list[tuple[int, int, int, tuple[str | None, str]]] = [
        (ns, 0, i, (urls[i], body)) for i, (body, ns) in enumerate(frames(rest))
    ]
    merged += [(ns, 1, i, (None, frame)) for i, (frame, ns) in enumerate(frames(folder / f"depthUpdate{suffix}.jsonl"))]
    merged.sort(key=lambda item: item[:3])
    with out.open("wb") as handle:
        for recv_ns, _, _, (url, text) in merged:
            handle.write(capture.encode("binance", recv_ns, text, rest=url))
    return out


def test_a_rest_line_is_written_and_read_with_its_url() -> None:
    url = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    written = capture.encode("binance", 1_705_670_123_456_789_000, '{"lastUpdateId":1}', rest=url)
    assert list(orjson.loads(written)) == ["recv_ms", "exchange", "rest", "raw"]
    line = capture.decode(written)
    assert (line.rest, line.raw, line.connection) == (url, '{"lastUpdateId":1}', None)
    assert capture.decode(capture.encode("binance", 1_705_670_123_456_789_000, "{}")).rest is None


def test_normalize_prints_the_book_ticks_of_a_capture_with_rest_lines(market_data, tmp_path) -> None:
    path = write_session(market_data, tmp_path / "books.jsonl")
    done = subprocess.run(
        [sys.executable, "manage.py", "normalize", "--exchange", "binance", str(path)],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    parser = BinanceParser(max_age_ms=None)
    expected = []
    for line in capture.read(path, counts := _Counts()):
        ticks = parser.seed(line.rest, line.raw, line.recv_ns) if line.rest else parser.parse(line.raw, line.recv_ns)
        expected += [encode(tick) for tick in ticks]
    assert counts.bad_lines == 0
    assert len(expected) > 100
    assert done.stdout.splitlines() == expected
    assert all(orjson.loads(line)["type"] == "book" for line in done.stdout.splitlines())
    report = done.stderr.decode()
    assert "dropped: 0" in report, report
    assert "skipped: 0" in report, report


class _Counts:
    lines = 0
    bad_lines = 0


def test_a_rest_line_for_a_parser_that_cannot_seed_is_counted_not_parsed() -> None:
    line = orjson.dumps({"recv_ms": 1705670123456.0, "exchange": "okx", "rest": "https://x/y", "raw": "{}"})
    counts = normalize_lines([line], make_parser("okx", max_age_ms=None), io.BytesIO())
    assert counts.skipped == {REST_NOT_SEEDABLE: 1}
    assert counts.stats.frames == 0


def test_replay_seeds_the_books_and_counts_rest_lines_it_cannot_seed(market_data, tmp_path) -> None:
    path = write_session(market_data, tmp_path / "books.jsonl")
    with path.open("ab") as handle:
        handle.write(capture.encode("okx", 1_633_998_600_000_000_000, "{}", rest="https://www.okx.com/x"))
    stats = replay_files([path], EngineConfig(), io.BytesIO(), make_parser=make_parser)
    binance = stats.parsers["binance"].stats
    assert binance.ticks > 100
    assert binance.as_dict()["dropped"] == {}
    assert stats.unseeded_rest == 1
    assert "unseeded rest lines 1" in stats.summary()
    json.dumps(binance.as_dict())  # the summary's counts stay JSON
