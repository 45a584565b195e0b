"""Each venue's default taker fee: DESIGN.md's table, in one place for the engine and the simulator.

The lowest-tier public spot taker fee of each venue, in percent, as checked in 2024 (DESIGN.md,
"Configuration"); `FEES` overrides it per venue. A venue missing from the table pays
`UNKNOWN_VENUE_FEE_PCT` until configured: unknown costs must not look free.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

DEFAULT_FEES_PCT: Mapping[str, float] = MappingProxyType(
    {
        "binance": 0.1,
        "coinbase": 0.6,
        "kraken": 0.4,
        "okx": 0.1,
        "bitstamp": 0.4,
        "gemini": 0.4,
        "bitfinex": 0.2,
    }
)
UNKNOWN_VENUE_FEE_PCT = 0.6
