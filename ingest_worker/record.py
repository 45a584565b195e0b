"""`run_ingestor --record PATH`: every frame as received, with its receive time (DESIGN.md capture file).

A venue whose markets are spread over several connections (Bitfinex past its channel cap) gets
one more key on each line, `"connection": N` (1, 2, ...): its channel ids and sequence numbers
are per connection, so a reader keeps one parser per connection. Lines of a venue on one
connection are exactly DESIGN.md's.
"""

from __future__ import annotations

from pathlib import Path

import orjson

_NEWLINE = orjson.OPT_APPEND_NEWLINE


class CaptureWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("ab", buffering=1 << 16)
        self.lines = 0

    def write(self, exchange: str, recv_ns: int, frame: str | bytes, connection: int | None = None) -> None:
        raw = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
        line: dict[str, object] = {"recv_ms": recv_ns / 1_000_000, "exchange": exchange, "raw": raw}
        if connection is not None:
            line["connection"] = connection
        self._file.write(orjson.dumps(line, option=_NEWLINE))
        self.lines += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
