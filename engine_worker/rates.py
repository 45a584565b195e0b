"""Live quote conversion (QUOTE_RATES=live): what one unit of each quote currency is worth in its
group's first member (USD in `USD,USDT,USDC`), taken from the feeds' own reference markets.

A reference market is one whose base and quote are both in one quote group: USDT/USD gives
USDT's rate directly, USD/USDT its inverse, and USDC/USDT gives USDC through USDT's rate. The
newest fresh observation wins. A currency with no fresh rate has none: the markets quoted in it
take no part in signals until one arrives (never a silent 1.0). Pure: the clock is an argument.
"""

from __future__ import annotations

from signals_app.contracts.symbols import base_of, quote_of
from signals_app.contracts.tick import Tick


class QuoteRates:
    def __init__(self, quote_groups: tuple[tuple[str, ...], ...], stale_ms: int) -> None:
        self._anchor: dict[str, str] = {member: group[0] for group in quote_groups for member in group}
        self.stale_ms = stale_ms
        self._direct: dict[str, tuple[float, int]] = {}  # currency -> (rate, receive ms)
        self._cross: dict[tuple[str, str], tuple[float, int]] = {}  # (base, quote) -> (mid, receive ms)

    def observe(self, tick: Tick) -> None:
        """Learn from a quote tick when its market is a reference market; ignore it otherwise."""
        base = base_of(tick.symbol)
        quote = quote_of(tick.symbol)
        anchor = self._anchor.get(base)
        if anchor is None or anchor != self._anchor.get(quote) or base == quote:
            return
        received = tick.recv_ns // 1_000_000
        mid = tick.price
        if quote == anchor:
            self._direct[base] = (mid, received)
        elif base == anchor:
            self._direct[quote] = (1.0 / mid, received)
        else:
            self._cross[(base, quote)] = (mid, received)

    def rate(self, currency: str, clock: int) -> float | None:
        """One unit of `currency` in its group's anchor at `clock`; None when no fresh rate is known."""
        anchor = self._anchor.get(currency)
        if anchor is None or currency == anchor:
            return 1.0  # a currency in no group, or the anchor itself, is only compared with itself
        direct = self._fresh(self._direct.get(currency), clock)
        if direct is not None:
            return direct
        for (base, quote), observation in self._cross.items():
            mid = self._fresh(observation, clock)
            if mid is None:
                continue
            if base == currency:
                other = self._fresh(self._direct.get(quote), clock)
                if other is not None:
                    return mid * other
            elif quote == currency:
                other = self._fresh(self._direct.get(base), clock)
                if other is not None:
                    return other / mid
        return None

    def _fresh(self, observation: tuple[float, int] | None, clock: int) -> float | None:
        if observation is None or clock - observation[1] > self.stale_ms:
            return None
        return observation[0]

    def snapshot(self, clock: int) -> dict[str, float | None]:
        """Every known currency's rate at `clock`, for health data."""
        currencies = sorted({*self._direct, *(c for pair in self._cross for c in pair)})
        return {currency: self.rate(currency, clock) for currency in currencies}
