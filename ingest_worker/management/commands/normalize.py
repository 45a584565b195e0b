"""`manage.py normalize --exchange NAME FILE`: recorded frames in, one normalized tick JSON per line out.

Ticks go to stdout, the counts to stderr. The work is `ingest_worker.normalize`.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest_worker.normalize import companion_recv_ns, normalize_lines
from ingest_worker.venues import PARSERS, make_parser
from signals_app.contracts.capture import open_capture


class Command(BaseCommand):
    help = (
        "Normalize the frames in FILE (raw frames of one exchange, one per line, or a capture file) "
        "and print one tick JSON per line to stdout; counts go to stderr."
    )
    requires_system_checks = ()  # reads a file, touches no model or database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, metavar="FILE")
        parser.add_argument("--exchange", required=True, metavar="NAME", help=f"one of: {', '.join(sorted(PARSERS))}")
        parser.add_argument(
            "--max-age-s",
            type=float,
            default=None,
            metavar="S",
            help="drop ticks whose exchange time is more than S seconds from the receive time (default: no check)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        exchange: str = options["exchange"].lower()
        path: Path = options["file"]
        max_age_s: float | None = options["max_age_s"]
        if exchange not in PARSERS:
            raise CommandError(f"unknown exchange {exchange!r}; known venues: {', '.join(sorted(PARSERS))}")
        if max_age_s is not None and not (math.isfinite(max_age_s) and max_age_s >= 0):
            raise CommandError(f"--max-age-s must be a number of seconds >= 0, not {max_age_s}")
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        max_age_ms = None if max_age_s is None else round(max_age_s * 1000)
        parser = make_parser(exchange, max_age_ms=max_age_ms, depth_levels=settings.DEPTH_LEVELS)
        try:
            recv_times = companion_recv_ns(path)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        out = sys.stdout.buffer
        try:
            with open_capture(path) as lines:
                counts = normalize_lines(lines, parser, out, recv_times=recv_times)
            out.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as command-line tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        source = path.with_suffix(".recv_ns").name if recv_times is not None else "the clock"
        clock_check = "off" if max_age_ms is None else f"{max_age_s:g} s"
        self.stderr.write(
            f"normalize {exchange} {path} (raw-frame receive times from {source}; clock check {clock_check})\n"
            + counts.report(),
            style_func=_plain,  # counts, not an error: no red
        )


def _plain(text: str) -> str:
    return text
