"""Fixtures shared by the ingestor tests: where the recorded exchange frames are."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest_worker.tests.recorded import MARKET_DATA, MARKET_DATA_ABSENT


@pytest.fixture(scope="session")
def market_data() -> Path:
    if not MARKET_DATA.is_dir():
        pytest.skip(MARKET_DATA_ABSENT)
    return MARKET_DATA
