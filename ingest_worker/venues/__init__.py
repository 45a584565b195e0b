"""One module per exchange: a declaration (name, URLs, channels, subscribe message,
symbol mapping) followed by its parser. `PARSERS` names them for the commands."""

from __future__ import annotations

from types import ModuleType

from ingest_worker.venues import binance, coinbase
from ingest_worker.venues.base import VenueParser

# Each venue's module: its declaration (URLs, subscribe messages, market list) and parser.
VENUES: dict[str, ModuleType] = {binance.NAME: binance, coinbase.NAME: coinbase}

PARSERS: dict[str, type[VenueParser]] = {
    binance.NAME: binance.BinanceParser,
    coinbase.NAME: coinbase.CoinbaseParser,
}


def make_parser(exchange: str, *, max_age_ms: int | None = 60_000) -> VenueParser:
    """A parser for `exchange` with the offline symbol fallback; KeyError for an unknown venue."""
    return PARSERS[exchange](max_age_ms=max_age_ms)
