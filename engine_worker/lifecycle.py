"""The signal lifecycle (DESIGN.md "The lifecycle, exactly"): open, throttled update, close.

One lifecycle per (asset, buy exchange, sell exchange). `observe` is called with
each evaluation of an opportunity (its figures, or None when it cannot be
evaluated: a quote missing, stale or from a feed that went down) and returns
the signal to publish, if any. Pure: the clock is an argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine_worker.depth import signal_fields
from engine_worker.spread import Figures
from signals_app.contracts import signal as contract
from signals_app.contracts.signal import Signal
from signals_app.contracts.symbols import quote_of

Key = tuple[str, str, str]  # (asset, buy exchange, sell exchange)


@dataclass(slots=True)
class Opportunity:
    """An open opportunity: what it opened at, what was last said of it, and its peak."""

    id: str
    asset: str
    buy_exchange: str
    sell_exchange: str
    opened_at: int
    last_message_at: int
    last_sent: Figures  # the figures of the last message about it
    last_above: Figures  # the latest figures above the threshold (a close repeats them)
    peak_net_spread_pct: float
    stale_after: int  # the engine clock after which one of its quotes is stale


class Lifecycle:
    """Every open opportunity, and the rules that turn evaluations into signals."""

    def __init__(
        self,
        threshold_pct: float,
        update_ms: int,
        stale_ms: int,
        fee_pct: Callable[[str], float],
        record_rates: bool = False,
    ) -> None:
        self.threshold_pct = threshold_pct
        self.update_ms = update_ms
        self.stale_ms = stale_ms
        self.fee_pct = fee_pct  # exchange -> taker fee in percent, for the signal's fees_pct field
        # QUOTE_RATES=live: each signal says which rates it used (`quote_rates`, by currency).
        self.record_rates = record_rates
        self.open: dict[Key, Opportunity] = {}
        # A lower bound of every open opportunity's stale_after: the engine's timer
        # only looks at the open set when the clock has passed it.
        self.next_stale_after = float("inf")
        self.counts = {contract.OPEN: 0, contract.UPDATE: 0, contract.CLOSE: 0}

    def observe(self, key: Key, found: Figures | None, clock: int, tick_recv_ns: int) -> Signal | None:
        """Apply one evaluation at `clock`; returns the signal it causes, if any."""
        opportunity = self.open.get(key)
        if found is not None and found.net_spread_pct > self.threshold_pct:
            stale_after = min(found.buy.recv_ms, found.sell.recv_ms) + self.stale_ms
            if stale_after < self.next_stale_after:
                self.next_stale_after = stale_after
            if opportunity is None:
                asset, buy_exchange, sell_exchange = key
                opportunity = Opportunity(
                    id=contract.signal_id(asset, buy_exchange, sell_exchange, clock),
                    asset=asset,
                    buy_exchange=buy_exchange,
                    sell_exchange=sell_exchange,
                    opened_at=clock,
                    last_message_at=clock,
                    last_sent=found,
                    last_above=found,
                    peak_net_spread_pct=found.net_spread_pct,
                    stale_after=stale_after,
                )
                self.open[key] = opportunity
                return self._signal(opportunity, contract.OPEN, found, clock, tick_recv_ns)
            opportunity.last_above = found
            opportunity.stale_after = stale_after
            if found.net_spread_pct > opportunity.peak_net_spread_pct:
                opportunity.peak_net_spread_pct = found.net_spread_pct
            if clock - opportunity.last_message_at >= self.update_ms and not found.same_as(opportunity.last_sent):
                opportunity.last_sent = found
                opportunity.last_message_at = clock
                return self._signal(opportunity, contract.UPDATE, found, clock, tick_recv_ns)
            return None
        if opportunity is None:
            return None
        del self.open[key]
        return self._signal(opportunity, contract.CLOSE, opportunity.last_above, clock, tick_recv_ns)

    def _signal(self, opportunity: Opportunity, status: str, found: Figures, clock: int, tick_recv_ns: int) -> Signal:
        self.counts[status] += 1
        buy = found.buy
        sell = found.sell
        fee_pct = self.fee_pct
        signal: Signal = {
            "type": contract.SIGNAL_TYPE,
            "id": opportunity.id,
            "status": status,
            "action": contract.action(opportunity.buy_exchange, opportunity.sell_exchange),
            "symbol": buy.symbol,
            "asset": opportunity.asset,
            "buy_exchange": opportunity.buy_exchange,
            "sell_exchange": opportunity.sell_exchange,
            "buy_symbol": buy.symbol,
            "sell_symbol": sell.symbol,
            "buy_price": found.buy_price,
            "sell_price": found.sell_price,
            "spread_pct": contract.pct(found.spread_pct),
            "net_spread_pct": contract.pct(found.net_spread_pct),
            "size": found.size,
            "profit_per_unit": found.profit_per_unit,
            "profit_estimate": found.profit_estimate,
            **signal_fields(found.depth),
            "fees_pct": {
                opportunity.buy_exchange: contract.pct(fee_pct(opportunity.buy_exchange)),
                opportunity.sell_exchange: contract.pct(fee_pct(opportunity.sell_exchange)),
            },
            "opened_at": opportunity.opened_at,
            "duration_ms": clock - opportunity.opened_at,
            "peak_net_spread_pct": contract.pct(opportunity.peak_net_spread_pct),
            "tick_recv_ns": tick_recv_ns,
            "timestamp": clock,
        }
        if self.record_rates:
            signal["quote_rates"] = {quote_of(buy.symbol): found.buy_rate, quote_of(sell.symbol): found.sell_rate}
        return signal

    def earliest_stale(self, clock: int) -> Opportunity | None:
        """The open opportunity that went stale first, if one of its quotes is stale at `clock`."""
        if clock <= self.next_stale_after:
            return None
        earliest = min(self.open.values(), key=_stale_order, default=None)
        self.next_stale_after = float("inf") if earliest is None else earliest.stale_after
        if earliest is None or earliest.stale_after >= clock:
            return None
        return earliest


def _stale_order(opportunity: Opportunity) -> tuple[int, str]:
    return opportunity.stale_after, opportunity.id
