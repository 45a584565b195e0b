"""One module per exchange: a declaration (name, URLs, channels, subscribe message,
symbol mapping) followed by its parser.

`VENUES` are the modules the ingestor connects with (each has a simulator dialect in
ingest_worker/sim/); `PARSERS` are their parsers, which `normalize` and `replay` use.
"""

from __future__ import annotations

from types import ModuleType

from ingest_worker.venues import binance, bitfinex, bitstamp, coinbase, gemini, kraken, okx
from ingest_worker.venues.base import MAX_TICK_AGE_MS, VenueParser

VENUES: dict[str, ModuleType] = {
    module.NAME: module for module in (binance, coinbase, kraken, okx, bitstamp, gemini, bitfinex)
}

PARSERS: dict[str, type[VenueParser]] = {
    binance.NAME: binance.BinanceParser,
    coinbase.NAME: coinbase.CoinbaseParser,
    bitstamp.NAME: bitstamp.BitstampParser,
    bitfinex.NAME: bitfinex.BitfinexParser,
    gemini.NAME: gemini.GeminiParser,
    kraken.NAME: kraken.KrakenParser,
    okx.NAME: okx.OkxParser,
}


def make_parser(exchange: str, *, max_age_ms: int | None = MAX_TICK_AGE_MS) -> VenueParser:
    """A parser for `exchange` with the offline symbol fallback; KeyError for an unknown venue."""
    return PARSERS[exchange](max_age_ms=max_age_ms)
