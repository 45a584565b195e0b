"""The engine's settings as one immutable value.

`arbsite.settings` reads the environment (its parsers are in `arbsite.env`); `EngineConfig.from_settings`
builds the value that `run_engine` and `replay` both use, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A venue the fee table does not name pays this until configured: unknown costs must not look free.
UNKNOWN_VENUE_FEE_PCT = 0.6


@dataclass(frozen=True)
class EngineConfig:
    """Everything that decides which signals the engine raises."""

    threshold_pct: float = 0.5  # SPREAD_THRESHOLD_PCT: a signal needs a net spread above this
    fees_pct: Mapping[str, float] = field(default_factory=dict)  # percent per venue: the defaults with FEES applied
    stale_ms: int = 2000  # STALE_MS: a quote older than this never takes part
    update_ms: int = 1000  # SIGNAL_UPDATE_MS: at most one update per opportunity this often
    quote_groups: tuple[tuple[str, ...], ...] = (("USD", "USDT", "USDC"), ("EUR", "EURC"))  # QUOTE_GROUPS
    quote_rates: str = "fixed"  # QUOTE_RATES: fixed (1.0 within a group) or live (reference markets)
    rate_stale_ms: int = 10_000  # RATE_STALE_MS: with live rates, an older reference quote is no rate
    target_notional: float = 10_000.0  # TARGET_NOTIONAL: net_spread_at_target_pct is at this notional
    max_notional: float | None = None  # MAX_NOTIONAL: the depth walk's cost cap; None: no cap
    # MAX_MARKET_DEVIATION_PCT: a market whose mid is further than this from the median mid of the
    # asset's other venues takes no part (0: no check).
    max_market_deviation_pct: float = 20.0

    def fee_pct(self, exchange: str) -> float:
        return self.fees_pct.get(exchange, UNKNOWN_VENUE_FEE_PCT)

    @classmethod
    def from_settings(cls, settings: Any, default_fees_pct: Mapping[str, float]) -> EngineConfig:
        """The settings' engine part; `FEES` (settings.FEES_PCT) overrides the venues' default fees."""
        return cls(
            threshold_pct=settings.SPREAD_THRESHOLD_PCT,
            fees_pct={**default_fees_pct, **settings.FEES_PCT},
            stale_ms=settings.STALE_MS,
            update_ms=settings.SIGNAL_UPDATE_MS,
            quote_groups=settings.QUOTE_GROUPS,
            quote_rates=settings.QUOTE_RATES,
            rate_stale_ms=settings.RATE_STALE_MS,
            target_notional=settings.TARGET_NOTIONAL,
            max_notional=settings.MAX_NOTIONAL,
            max_market_deviation_pct=settings.MAX_MARKET_DEVIATION_PCT,
        )
