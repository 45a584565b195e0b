"""Canonical market symbols (`BASE/QUOTE`) and the mapping from each venue's own names.

Downstream of the ingestor nothing sees a venue's market names: each venue
module resolves them here once, at the edge, and caches the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

# Binance market names have no separator (NKNUSDT, BLZETH, RUNEEUR). Offline, and
# before the market list has been fetched, they are split at the longest known
# quote asset that ends the name. The table covers every quote asset Binance spot
# has listed, which includes every market in ../shared/market-data/binance*.
_QUOTE_ASSETS = (
    "USDT BUSD USDC TUSD FDUSD USDP PAX DAI USDS AEUR EURI UST USD "
    "BTC ETH BNB XRP TRX DOGE DOT SOL VAI BIDR IDRT BVND "
    "EUR GBP TRY RUB AUD BRL UAH NGN ZAR JPY MXN PLN RON ARS COP CZK"
)
BINANCE_QUOTES: tuple[str, ...] = tuple(sorted(set(_QUOTE_ASSETS.split()), key=len, reverse=True))

# Venue spellings of the same asset, mapped to one canonical name.
ASSET_ALIASES: dict[str, str] = {"XBT": "BTC", "XDG": "DOGE"}

# native name -> (base, quote), or None when the name cannot be split
FallbackSplitter = Callable[[str], "tuple[str, str] | None"]


def canonical(base: str, quote: str) -> str:
    base = base.upper()
    quote = quote.upper()
    return f"{ASSET_ALIASES.get(base, base)}/{ASSET_ALIASES.get(quote, quote)}"


def base_of(symbol: str) -> str:
    return symbol.partition("/")[0]


def quote_of(symbol: str) -> str:
    return symbol.partition("/")[2]


def split_concatenated(native: str, quotes: Iterable[str] = BINANCE_QUOTES) -> tuple[str, str] | None:
    """Split `NKNUSDT` into (`NKN`, `USDT`) at the longest known quote; None when nothing fits."""
    upper = native.upper()
    for quote in quotes:  # longest first, so BUSD wins over USD and FDUSD over USD
        if len(upper) > len(quote) and upper.endswith(quote):
            base = upper[: -len(quote)]
            if base.isalnum():
                return base, quote
    return None


class SymbolTable:
    """Native market name ↔ canonical symbol for one venue.

    With a market list (from the venue or its simulator) the table is strict:
    a name not on the list is unknown. Without one, `fallback` derives the
    canonical symbol from the name (and the answer is cached), so that offline
    tools work on any recorded frame.
    """

    def __init__(
        self,
        markets: Iterable[tuple[str, str, str]] | None = None,
        fallback: FallbackSplitter | None = None,
    ) -> None:
        self._to_canonical: dict[str, str | None] = {}
        self._to_native: dict[str, str] = {}
        self.strict = markets is not None
        self._fallback = fallback
        for native, base, quote in markets or ():
            self.add(native, base, quote)

    def add(self, native: str, base: str, quote: str) -> None:
        symbol = canonical(base, quote)
        self._to_canonical[native] = symbol
        self._to_native[symbol] = native

    def resolved_get(self) -> Callable[[str], str | None]:
        """`dict.get` of the names resolved so far: a hot path tries it first, then `resolve`."""
        return self._to_canonical.get

    def resolve(self, native: str) -> str | None:
        """The canonical symbol of a native name, or None when it is not a known market."""
        try:
            return self._to_canonical[native]
        except KeyError:
            pass
        if self.strict or self._fallback is None or len(self._to_canonical) > 100_000:
            return None  # the cap keeps garbage names from growing the cache without bound
        parts = self._fallback(native)
        symbol = canonical(*parts) if parts else None
        self._to_canonical[native] = symbol
        if symbol is not None:
            self._to_native.setdefault(symbol, native)
        return symbol

    def native(self, symbol: str) -> str | None:
        return self._to_native.get(symbol)

    def known(self) -> list[str]:
        return sorted(self._to_native)
