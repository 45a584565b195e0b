"""Fixtures shared by the ingestor tests: where the recorded exchange frames are."""

from __future__ import annotations

from pathlib import Path

import pytest

# The recorded frames ship beside the repository (../shared/market-data), never inside it.
MARKET_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "market-data"


@pytest.fixture(scope="session")
def market_data() -> Path:
    if not MARKET_DATA.is_dir():
        pytest.skip("../shared/market-data is absent: the recorded frames ship beside the repository, not in it")
    return MARKET_DATA
