"""A capture compressed with gzip (`.jsonl.gz`) replays and normalizes exactly as the plain file does:
the bundled seven-venue demo (stored compressed) against its own lines written out plain."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

from engine_worker.config import EngineConfig
from engine_worker.replay import replay_files
from ingest_worker.venues import DEFAULT_FEES_PCT, make_parser

REPO = Path(__file__).resolve().parents[2]
PACKED = REPO / "demo" / "seven_venues.jsonl.gz"


def test_a_gzipped_capture_replays_to_the_same_bytes(tmp_path: Path) -> None:
    plain = tmp_path / "seven_venues.jsonl"
    plain.write_bytes(gzip.decompress(PACKED.read_bytes()))
    config = EngineConfig(fees_pct=DEFAULT_FEES_PCT)
    outputs = []
    for path in (plain, PACKED):
        out = io.BytesIO()
        stats = replay_files([path], config, out, make_parser=make_parser)
        outputs.append((out.getvalue(), stats.summary()))
    assert outputs[0][0]  # signals were printed
    assert outputs[0] == outputs[1]


def test_normalize_reads_a_gzipped_capture(tmp_path: Path) -> None:
    demo = gzip.decompress(PACKED.read_bytes())
    lines = [line for line in demo.splitlines(keepends=True) if b'"exchange":"kraken"' in line][:200]
    plain = tmp_path / "kraken.jsonl"
    plain.write_bytes(b"".join(lines))
    packed = tmp_path / "kraken.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    results = [
        subprocess.run(
            [sys.executable, "manage.py", "normalize", "--exchange", "kraken", str(path)],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        for path in (plain, packed)
    ]
    assert results[0]
    assert results[0] == results[1]
