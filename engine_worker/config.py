"""The engine's settings as one immutable value, and the parsers of their environment forms.

`arbsite.settings` reads the environment with these parsers; `EngineConfig.from_settings`
builds the value that `run_engine` and `replay` both use, so the two can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from signals_app.contracts.fees import DEFAULT_FEES_PCT, UNKNOWN_VENUE_FEE_PCT


def parse_fees(text: str) -> dict[str, float]:
    """`binance:0.075,coinbase=0.4` -> the default table with those venues overridden (percent)."""
    fees = dict(DEFAULT_FEES_PCT)
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.replace("=", ":").partition(":")
        try:
            fee = float(value)
        except ValueError:
            fee = math.nan
        if not sep or not name.strip() or not math.isfinite(fee) or not 0.0 <= fee < 100.0:
            raise ImproperlyConfigured(f"FEES: {item!r} is not EXCHANGE:PERCENT (for example binance:0.1)")
        fees[name.strip().lower()] = fee
    return fees


def parse_quote_groups(text: str) -> tuple[tuple[str, ...], ...]:
    """`USD,USDT,USDC;EUR,EURC` -> (("USD","USDT","USDC"), ("EUR","EURC")). A quote may be in one group only."""
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for chunk in text.split(";"):
        members = tuple(member.strip().upper() for member in chunk.split(",") if member.strip())
        if not members:
            continue
        for member in members:
            if member in seen or not member.isalnum():
                raise ImproperlyConfigured(f"QUOTE_GROUPS: {member!r} is repeated or not a currency code")
            seen.add(member)
        groups.append(members)
    return tuple(groups)


@dataclass(frozen=True)
class EngineConfig:
    """Everything that decides which signals the engine raises."""

    threshold_pct: float = 0.5  # SPREAD_THRESHOLD_PCT: a signal needs a net spread above this
    fees_pct: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FEES_PCT))  # FEES
    stale_ms: int = 2000  # STALE_MS: a quote older than this never takes part
    update_ms: int = 1000  # SIGNAL_UPDATE_MS: at most one update per opportunity this often
    quote_groups: tuple[tuple[str, ...], ...] = (("USD", "USDT", "USDC"), ("EUR", "EURC"))  # QUOTE_GROUPS
    quote_rates: str = "fixed"  # QUOTE_RATES: fixed (1.0 within a group) or live (reference markets)
    rate_stale_ms: int = 10_000  # RATE_STALE_MS: with live rates, an older reference quote is no rate

    def fee_pct(self, exchange: str) -> float:
        return self.fees_pct.get(exchange, UNKNOWN_VENUE_FEE_PCT)

    @classmethod
    def from_settings(cls, settings: Any) -> EngineConfig:
        return cls(
            threshold_pct=settings.SPREAD_THRESHOLD_PCT,
            fees_pct=dict(settings.FEES_PCT),
            stale_ms=settings.STALE_MS,
            update_ms=settings.SIGNAL_UPDATE_MS,
            quote_groups=settings.QUOTE_GROUPS,
            quote_rates=settings.QUOTE_RATES,
            rate_stale_ms=settings.RATE_STALE_MS,
        )
