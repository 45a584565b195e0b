"""`manage.py replay CAPTURE...`: signals of the captures on stdout, counts on stderr.

The composition root of a replay: the engine's replay with the ingestor's parsers.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine_worker.config import EngineConfig
from engine_worker.replay import replay_files
from ingest_worker.venues import DEFAULT_FEES_PCT, make_parser


class Command(BaseCommand):
    help = (
        "Replay capture files through the parsers, book, spread engine and signal lifecycle, "
        "in receive-time order, printing every signal JSON to stdout and the counts to stderr. "
        "Settings come from the same environment variables as run_engine."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("captures", nargs="+", type=Path, metavar="CAPTURE")

    def handle(self, *args: Any, **options: Any) -> None:
        paths: list[Path] = options["captures"]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise CommandError(f"no such capture file: {', '.join(missing)}")
        out = sys.stdout.buffer
        config = EngineConfig.from_settings(settings, DEFAULT_FEES_PCT)
        parsers = functools.partial(make_parser, depth_levels=settings.DEPTH_LEVELS)
        stats = replay_files(paths, config, out, make_parser=parsers)
        out.flush()
        sys.stderr.write(stats.summary() + "\n")
