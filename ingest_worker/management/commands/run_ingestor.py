"""`manage.py run_ingestor [--record PATH]`: exchange WebSockets -> parse -> ZeroMQ push."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from arbsite.runtime import run_async
from arbsite.stalls import freeze_start_up_heap
from ingest_worker.service import IngestorConfig, IngestorService


class Command(BaseCommand):
    help = "Connect to every enabled exchange, parse and validate its frames, push ticks to the engine over ZeroMQ."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--record", type=Path, metavar="PATH", help="append every frame to this capture file")

    def handle(self, *args: Any, **options: Any) -> None:
        config = IngestorConfig.from_settings(settings, record=options["record"])
        freeze_start_up_heap()  # arbsite.stalls: full collections walk only what it makes from now on
        run_async(IngestorService(config).run())
