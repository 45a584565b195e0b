"""`run_ingestor --record PATH`: every frame as received, with its receive time.

The line is the capture contract's (`signals_app/contracts/capture.py`, DESIGN.md "Capture file"),
`"connection": N` included for a venue on several connections.
"""

from __future__ import annotations

from pathlib import Path

from signals_app.contracts import capture


class CaptureWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("ab", buffering=1 << 16)
        self.lines = 0

    def write(self, exchange: str, recv_ns: int, frame: str | bytes, connection: int | None = None) -> None:
        self._file.write(capture.encode(exchange, recv_ns, frame, connection))
        self.lines += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
