"""The signal lifecycle (DESIGN.md "The lifecycle, exactly"): open, throttled update, close.

One lifecycle per (asset, buy exchange, sell exchange). `observe` is called with
each evaluation of an opportunity (its figures, or None when it cannot be
evaluated: a quote missing, stale or from a feed that went down) and returns
the signal to publish, if any. Pure: the clock is an argument.

Every close carries its `close_reason` (lifecycle rule 8; the names and what each covers are
`signals_app/contracts/signal.py`'s): `threshold` when an evaluation falls to or below the
threshold, `stale` when nothing fresh is left to evaluate (a quote gone stale, by the timer or on
the next tick, or taken by a lost book), `feed_down` when the engine's `mark_down` closes what a
feed was part of, and `engine_restart` for a restored opportunity that did not come back in time.

Stale timers: each open opportunity has an entry in a heap ordered by (stale_after, id), the
order the engine closes them in. An entry is never updated in place (lazy invalidation): an
opportunity whose stale_after moves later keeps its earlier entry, which is pushed again at the
new instant when it comes up; one whose stale_after moves earlier gets a second, earlier entry;
entries of closed opportunities, and all but an opportunity's latest, are skipped when they come
up. So handing out N due opportunities costs O(N log N), and a tick that only moves an open
opportunity's stale_after forward costs a comparison.

Restart (lifecycle rule 8): `restore` takes the open and update signals a previous engine left
open. Each is held "resuming" with its id, `opened_at`, peak and last message: a fresh evaluation
above the threshold before `now_ms + STALE_MS` resumes it (no second `open`; updates by the
usual rules, measured from the stored signal's timestamp), one at or below the threshold closes
it (`threshold`), an evaluation that finds no fresh pair yet leaves it waiting, and the timer closes
it at `now_ms + STALE_MS` (`engine_restart`). Until it resumes, a close carries the stored
signal's figures.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from engine_worker.book import Quote
from engine_worker.depth import Depth, signal_fields
from engine_worker.spread import Figures
from signals_app.contracts import signal as contract
from signals_app.contracts.signal import Signal
from signals_app.contracts.symbols import quote_of

Key = tuple[str, str, str]  # (asset, buy exchange, sell exchange)
NEVER = float("inf")


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
    # Its entry in the timer heap: the sequence number (0: none) and the instant it is filed at,
    # never later than stale_after.
    timer: int = 0
    timer_at: float = NEVER
    # While resuming after a restart: the signal the previous engine last published of it.
    restored: Signal | None = None
    closed: bool = False

    @property
    def key(self) -> Key:
        return self.asset, self.buy_exchange, self.sell_exchange


# (stale_after, id, sequence number, opportunity): the sequence number is unique, so a comparison
# never reaches the opportunity.
Timer = tuple[int, str, int, Opportunity]


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
        # exchange -> id -> every opportunity it is part of, in the order they opened (a restored
        # one whose key another holds is here, not in `open`): what a feed going down closes.
        self.by_exchange: dict[str, dict[str, Opportunity]] = {}
        self._timers: list[Timer] = []
        self._timer_count = 0
        # A lower bound of every timer's instant: the engine's timer only looks at the heap when
        # the clock has passed it.
        self.next_stale_after = NEVER
        self.counts = {contract.OPEN: 0, contract.UPDATE: 0, contract.CLOSE: 0}
        self.close_reasons = dict.fromkeys(contract.CLOSE_REASONS, 0)
        self.restored = 0  # held resuming after a restart
        self.resumed = 0  # of those, the ones a fresh evaluation took up again
        self.restore_skipped = 0  # stored values that were not a whole open or update signal
        self.restore_problem: str | None = None  # what was wrong with the last one skipped

    def observe(
        self, key: Key, found: Figures | None, clock: int, tick_recv_ns: int, reason: str | None = None
    ) -> Signal | None:
        """Apply one evaluation at `clock`; returns the signal it causes, if any.

        A close says `reason` when given, otherwise `threshold` for figures at or below the
        threshold and `stale` for no figures.
        """
        opportunity = self.open.get(key)
        if found is not None and found.net_spread_pct > self.threshold_pct:
            stale_after = min(found.buy.recv_ms, found.sell.recv_ms) + self.stale_ms
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
                self._hold(opportunity)
                return self._signal(opportunity, contract.OPEN, found, clock, tick_recv_ns)
            if opportunity.restored is not None:
                opportunity.restored = None  # it came back fresh: it goes on as if never interrupted
                self.resumed += 1
            opportunity.last_above = found
            opportunity.stale_after = stale_after
            # Earlier than its entry: file another. Later (the usual case): its entry is moved when it comes up.
            if stale_after < opportunity.timer_at:
                self._schedule(opportunity)
            if found.net_spread_pct > opportunity.peak_net_spread_pct:
                opportunity.peak_net_spread_pct = found.net_spread_pct
            if clock - opportunity.last_message_at >= self.update_ms and not found.same_as(opportunity.last_sent):
                opportunity.last_sent = found
                opportunity.last_message_at = clock
                return self._signal(opportunity, contract.UPDATE, found, clock, tick_recv_ns)
            return None
        if opportunity is None:
            return None
        if found is None and reason is None and opportunity.restored is not None:
            return None  # resuming: no fresh pair to judge it by yet, the restart timer decides
        if reason is None:
            reason = contract.STALE if found is None else contract.THRESHOLD
        return self.close(opportunity, clock, tick_recv_ns, reason)

    def close(self, opportunity: Opportunity, clock: int, tick_recv_ns: int, reason: str) -> Signal:
        """Close an open (or restored) opportunity at `clock` for `reason`; its `close` signal."""
        opportunity.closed = True
        key = opportunity.key
        if self.open.get(key) is opportunity:
            del self.open[key]
        for exchange in (opportunity.buy_exchange, opportunity.sell_exchange):
            held = self.by_exchange[exchange]
            if held.get(opportunity.id) is opportunity:
                del held[opportunity.id]
        self.close_reasons[reason] += 1
        restored = opportunity.restored
        if restored is None:
            signal = self._signal(opportunity, contract.CLOSE, opportunity.last_above, clock, tick_recv_ns)
        else:  # never resumed: the stored signal's figures, as rule 6 has a close repeat the last ones
            self.counts[contract.CLOSE] += 1
            signal = {name: restored[name] for name in contract.FIELDS}
            signal["status"] = contract.CLOSE
            signal["duration_ms"] = clock - opportunity.opened_at
            signal["tick_recv_ns"] = tick_recv_ns
            signal["timestamp"] = clock
            if "quote_rates" in restored:
                signal["quote_rates"] = restored["quote_rates"]
        signal[contract.CLOSE_REASON] = reason
        return signal

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

    # --- timers ----------------------------------------------------------------------
    def _hold(self, opportunity: Opportunity, resumable: bool = True) -> None:
        """Hold a new opportunity: under its key (when `resumable`), by exchange, and on the timer heap."""
        if resumable:
            self.open[opportunity.key] = opportunity
        for exchange in (opportunity.buy_exchange, opportunity.sell_exchange):
            self.by_exchange.setdefault(exchange, {})[opportunity.id] = opportunity
        self._schedule(opportunity)

    def _schedule(self, opportunity: Opportunity) -> None:
        """File the opportunity's timer at its stale_after (its older entries become skipped ones)."""
        self._timer_count += 1
        stale_after = opportunity.stale_after
        opportunity.timer = self._timer_count
        opportunity.timer_at = stale_after
        heapq.heappush(self._timers, (stale_after, opportunity.id, self._timer_count, opportunity))
        if stale_after < self.next_stale_after:
            self.next_stale_after = stale_after

    @property
    def pending_timers(self) -> int:
        """Entries on the timer heap, skipped ones included (each open opportunity has one or two)."""
        return len(self._timers)

    def earliest_stale(self, clock: int) -> Opportunity | None:
        """The open opportunity that went stale first, if one of its quotes is stale at `clock`
        (ties by id); None when none is. Each is handed out once: its timer is taken off, and the
        caller re-evaluates it at `stale_after + 1`, which closes it or files its next timer."""
        if clock <= self.next_stale_after:
            return None
        timers = self._timers
        due: Opportunity | None = None
        while timers and timers[0][0] < clock:
            stale_after, _, number, opportunity = heapq.heappop(timers)
            if opportunity.closed or number != opportunity.timer:
                continue  # an entry it no longer goes by
            if stale_after < opportunity.stale_after:  # moved later since: file it again there
                self._schedule(opportunity)
                continue
            opportunity.timer = 0
            opportunity.timer_at = NEVER
            due = opportunity
            break
        self.next_stale_after = timers[0][0] if timers else NEVER
        return due

    # --- restart ---------------------------------------------------------------------
    def restore(self, signals: Iterable[object], now_ms: int) -> int:
        """Hold the open opportunities a previous engine left (their last open or update signals),
        each resuming until `now_ms + stale_ms`; returns how many. A value that is not a whole
        open or update signal (`contract.open_problem`), or one whose id is already held, is
        skipped and counted in `restore_skipped`. Where two share a key, the one opened last is
        resumable and the others wait for the restart timer alone."""
        held: list[Signal] = []
        for stored in signals:
            problem = contract.open_problem(stored)
            if problem is not None:
                self.restore_skipped += 1
                self.restore_problem = problem
                continue
            held.append(cast(Signal, stored))
        held.sort(key=_newest_first)
        until = now_ms + self.stale_ms - 1  # closed at now_ms + stale_ms, the usual stale_after + 1
        restored = 0
        for stored in held:
            if stored["id"] in self.by_exchange.get(stored["buy_exchange"], ()):
                self.restore_skipped += 1  # given twice, or already held
                self.restore_problem = "its id is already held"
                continue
            last = _figures_of(stored)
            opportunity = Opportunity(
                id=stored["id"],
                asset=stored["asset"],
                buy_exchange=stored["buy_exchange"],
                sell_exchange=stored["sell_exchange"],
                opened_at=stored["opened_at"],
                last_message_at=stored["timestamp"],
                last_sent=last,
                last_above=last,
                peak_net_spread_pct=stored["peak_net_spread_pct"],
                stale_after=until,
                restored=stored,
            )
            self._hold(opportunity, resumable=opportunity.key not in self.open)
            restored += 1
        self.restored += restored
        return restored


def _newest_first(stored: Signal) -> tuple[int, str]:
    return -stored["opened_at"], stored["id"]


def _figures_of(stored: Signal) -> Figures:
    """A stored signal's figures as an evaluation would give them, to tell whether the next
    evaluation says anything new (`Figures.same_as`): its percents are rounded as printed, which
    same_as compares them as."""
    buy = Quote(stored["buy_exchange"], stored["buy_symbol"])
    sell = Quote(stored["sell_exchange"], stored["sell_symbol"])
    buy.ask = stored["buy_price"]
    sell.bid = stored["sell_price"]
    for quote in (buy, sell):  # for the restart close's tick_recv_ns: the tick that caused the stored signal
        quote.recv_ns = stored["tick_recv_ns"]
        quote.recv_ms = quote.recv_ns // 1_000_000
    rates = stored.get("quote_rates") or {}
    depth = None
    if stored["depth_size"] is not None:
        depth = Depth(
            stored["depth_size"],
            stored["depth_buy_vwap"],
            stored["depth_sell_vwap"],
            stored["depth_profit"],
            stored["depth_net_spread_pct"],
            tuple(stored["depth_levels"]),  # type: ignore[arg-type]  # two integers (open_problem)
            stored["net_spread_at_target_pct"],
        )
    return Figures(
        buy,
        sell,
        stored["buy_price"],
        stored["sell_price"],
        stored["spread_pct"],
        stored["net_spread_pct"],
        stored["size"],
        stored["profit_per_unit"],
        stored["profit_estimate"],
        rates.get(quote_of(stored["buy_symbol"]), 1.0),
        rates.get(quote_of(stored["sell_symbol"]), 1.0),
        depth,
    )
