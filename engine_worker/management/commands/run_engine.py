"""`manage.py run_engine`: ZeroMQ pull -> book -> spread engine -> Redis.

A composition root: the only engine module that reads the venue registry (for the venues'
default fees); the engine itself knows venues only by the names on their ticks.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from arbsite.runtime import run_async
from arbsite.stalls import freeze_start_up_heap
from engine_worker.service import EngineService, EngineServiceConfig
from ingest_worker.venues import DEFAULT_FEES_PCT


class Command(BaseCommand):
    help = "Pull ticks from the ingestor, detect fee-aware arbitrage, publish signals to Redis."

    def handle(self, *args: Any, **options: Any) -> None:
        freeze_start_up_heap()  # arbsite.stalls: full collections walk only what it makes from now on
        run_async(EngineService(EngineServiceConfig.from_settings(settings, DEFAULT_FEES_PCT)).run())
