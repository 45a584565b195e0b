"""The engine's step: one tick in, the signals it causes out. Pure: the clock is an argument.

`on_tick` stores a quote and re-evaluates every pair of exchanges the tick can
change: the tick's exchange against each other exchange quoting the asset, in
both directions. Opportunities whose quotes went stale are closed by `expire`,
which `on_tick` also runs first, so a caller that never runs a timer still
closes them at the instant they went stale, on the next tick. `restore_open` takes back, at
start-up, the opportunities a previous engine left open.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import NamedTuple

from engine_worker.book import AssetBook, Best, Book, GroupBook, Pick, Quote
from engine_worker.config import EngineConfig
from engine_worker.depth import curve, walk
from engine_worker.lifecycle import Key, Lifecycle, Opportunity
from engine_worker.rates import QuoteRates
from engine_worker.spread import Figures, figures
from signals_app.contracts.depth_view import DepthView
from signals_app.contracts.signal import ENGINE_RESTART, FEED_DOWN, STALE, Signal
from signals_app.contracts.spread import ratio_at
from signals_app.contracts.symbols import base_of, quote_of
from signals_app.contracts.tick import TRADE, Tick

INFINITY = float("inf")

# The receive time of a market whose quote went with its book: older than any clock's staleness bound.
NO_QUOTE_MS = -(2**62)

# Per quote group of one asset: exchange -> its best fresh markets.
Bests = list[dict[str, Best]]


class Engine:
    """Top of book, spread detection and signal lifecycle for every asset."""

    def __init__(self, config: EngineConfig) -> None:
        if config.quote_rates not in ("fixed", "live"):
            raise ValueError(f"QUOTE_RATES={config.quote_rates!r}: use fixed or live")
        self.config = config
        self.rates = QuoteRates(config.quote_groups, config.rate_stale_ms) if config.quote_rates == "live" else None
        self.book = Book(config.quote_groups)
        self.lifecycle = Lifecycle(
            config.threshold_pct, config.update_ms, config.stale_ms, config.fee_pct, record_rates=self.rates is not None
        )
        self._stale_ms = config.stale_ms
        # With live rates, the currencies whose rate is live: every group member but its group's
        # first (the anchor, 1.0); a tick of a market whose base is a group member may move them.
        anchor_of = {member: group[0] for group in config.quote_groups for member in group}
        self._group_members = frozenset(anchor_of) if self.rates is not None else frozenset()
        self._live_currencies = tuple(member for member, anchor in anchor_of.items() if member != anchor)
        self._live_set = frozenset(self._live_currencies) if self.rates is not None else frozenset()
        # Every live rate at `_rates_clock` (None: not read since the last reference tick). A new
        # dict only when a rate differs from the last one's, so that the same rates are the same object.
        self._rates_now: dict[str, float | None] = {}
        self._rates_clock: int | None = None
        self._above = ratio_at(config.threshold_pct - 1e-9)  # proceeds / cost above it
        self._fees: dict[str, float] = {}  # exchange -> taker fee as a fraction
        self._max_deviation = config.max_market_deviation_pct  # 0: no check
        # (exchange, symbol) -> the last time it was found too far from the other venues' median.
        self.suspects: dict[tuple[str, str], Suspect] = {}
        self.ticks = 0
        self.trades = 0

    # --- steps -----------------------------------------------------------------
    def on_tick(self, tick: Tick, now_ms: int) -> list[Signal]:
        """Apply one tick at engine clock `now_ms`; returns the signals it causes, in order."""
        self.ticks += 1
        out: list[Signal] = []
        if now_ms > self.lifecycle.next_stale_after:
            out.extend(self.expire(now_ms))
        if tick.type == TRADE:
            self.trades += 1  # trades feed the display and metrics, not the spread
            return out
        if tick.bids is not None and not tick.bids:  # a book-lost tick
            lost_in = self.lose_book(tick)
            if lost_in is None:
                return out
            asset_book = lost_in
        else:
            asset_book = self.apply_quote(tick)
        exchange = tick.exchange
        if len(asset_book.exchanges) < 2:
            return out
        best_in = self._best_in
        # The tick's exchange's best markets in each quote group where it has some that take part;
        # the other exchanges' are their picks, kept from tick to tick (`_best_in`).
        mine_in: list[tuple[dict[str, Pick], GroupBook, Best]] = []
        for group in asset_book.groups.values():
            mine = best_in(group, exchange, now_ms)
            if mine is not None:
                mine_in.append((group.picks, group, mine))
        bests: Bests | None = None  # every exchange's, built only when a pair is observed
        rates_now = self._rates_at(now_ms) if self.rates is not None else None
        observe = self.lifecycle.observe
        open_now = self.lifecycle.open
        # Pairs clearly below the threshold that are not open need no figures and no lifecycle
        # step. A pair is above it when its proceeds exceed its cost times `spread.ratio_at`
        # of the threshold: net_pct's definition turned round once, so the loop only multiplies
        # (the margin keeps float rounding from ever skipping a real crossing).
        above = self._above
        asset = asset_book.asset
        recv_ns = tick.recv_ns
        for other in asset_book.exchanges:
            if other == exchange:
                continue
            buy_here = buy_there = False  # above the threshold in some quote group, either way
            for picks, group, mine in mine_in:
                pick = picks.get(other)  # `_best_in`'s first case, inline: most picks hold
                if (
                    pick is not None
                    and pick.since <= now_ms <= pick.until
                    and (pick.rates is None or pick.rates is rates_now)
                ):
                    theirs = pick.best
                else:
                    theirs = best_in(group, other, now_ms)
                if theirs is None:
                    continue
                if theirs.proceeds > mine.cost * above:
                    buy_here = True
                if mine.proceeds > theirs.cost * above:
                    buy_there = True
            if buy_here or (open_now and (asset, exchange, other) in open_now):
                if bests is None:
                    bests = self._bests(asset_book, now_ms)
                signal = observe(
                    (asset, exchange, other), self._best_pair(bests, exchange, other, now_ms), now_ms, recv_ns
                )
                if signal is not None:
                    out.append(signal)
            if buy_there or (open_now and (asset, other, exchange) in open_now):
                if bests is None:
                    bests = self._bests(asset_book, now_ms)
                signal = observe(
                    (asset, other, exchange), self._best_pair(bests, other, exchange, now_ms), now_ms, recv_ns
                )
                if signal is not None:
                    out.append(signal)
        return out

    def apply_quote(self, tick: Tick) -> AssetBook:
        """Store a quote tick (and, with live rates, learn from it); no evaluation, no signal."""
        _, asset_book, _ = self.book.apply(tick)  # which forgets the exchange's pick in the market's group
        if self.rates is not None:
            self.rates.observe(tick)
            if base_of(tick.symbol) in self._group_members:  # a reference market: rates read again
                self._rates_clock = None
        return asset_book

    def lose_book(self, tick: Tick) -> AssetBook | None:
        """A book-lost tick: the market's levels go, and so does its quote when the book was its
        newest top (a newer quote tick, Binance's bookTicker say, stays without depth). The
        market's asset book, to re-evaluate; None for a market the engine never quoted."""
        entry = self.book.get(tick.exchange, tick.symbol)
        if entry is None:
            return None
        slot = entry[0]
        if slot.book_is_top:
            slot.recv_ms = NO_QUOTE_MS  # stale for every clock: it takes no part until its next tick
            entry[2].forget(tick.exchange)
        slot.forget_levels()
        return entry[1]

    def depth_view(self, signal: Signal, now_ms: int, max_levels: int = 50) -> DepthView | None:
        """What the trader's depth panel shows of `signal` (signals_app/contracts/depth_view.py):
        the two books its walk read at `now_ms` and the walk's profit curve; None when either
        market has no fresh book now."""
        buy = self.book.get(signal["buy_exchange"], signal["buy_symbol"])
        sell = self.book.get(signal["sell_exchange"], signal["sell_symbol"])
        if buy is None or sell is None:
            return None
        oldest = now_ms - self._stale_ms
        ask_levels = buy[0].ask_levels(oldest)
        bid_levels = sell[0].bid_levels(oldest)
        if ask_levels is None or bid_levels is None:
            return None
        asks = [[price, size] for price, size in islice(ask_levels, max_levels)]
        bids = [[price, size] for price, size in islice(bid_levels, max_levels)]
        rates = signal.get("quote_rates") or {}
        buy_rate = rates.get(quote_of(signal["buy_symbol"]), 1.0)
        sell_rate = rates.get(quote_of(signal["sell_symbol"]), 1.0)
        buy_fee = self._fee_of(signal["buy_exchange"])
        sell_fee = self._fee_of(signal["sell_exchange"])
        return {
            "id": signal["id"],
            "status": signal["status"],
            "timestamp": signal["timestamp"],
            "buy_exchange": signal["buy_exchange"],
            "buy_symbol": signal["buy_symbol"],
            "sell_exchange": signal["sell_exchange"],
            "sell_symbol": signal["sell_symbol"],
            "asks": asks,
            "bids": bids,
            "curve": curve(asks, bids, buy_fee, sell_fee, buy_rate, sell_rate),
            "depth_size": signal["depth_size"],
            "depth_profit": signal["depth_profit"],
            "threshold_pct": self.config.threshold_pct,
        }

    def has_quote(self, exchange: str, symbol: str) -> bool:
        """Whether the engine holds a quote of the market (fresh or not)."""
        entry = self.book.get(exchange, symbol)
        return entry is not None and entry[0].recv_ms != NO_QUOTE_MS

    def spread_matrix(self, now_ms: int) -> dict[str, dict[str, dict[str, float | None]]]:
        """asset -> buy exchange -> sell exchange -> net spread % (unrounded) at `now_ms`.

        The same evaluation as a tick's (fresh quotes, best markets, rates, fees); None where
        the two exchanges have no fresh markets in a common quote group.
        """
        return {asset: self.asset_spreads(asset, now_ms) for asset in self.matrix_assets()}

    def matrix_assets(self) -> list[str]:
        """The assets of `spread_matrix`, in its order."""
        return sorted(self.book.assets)

    def asset_spreads(self, asset: str, now_ms: int) -> dict[str, dict[str, float | None]]:
        """One asset's rows of `spread_matrix` (buy exchange -> sell exchange -> net %); {} when
        the asset is not held (a caller that computes the matrix an asset at a time)."""
        asset_book = self.book.assets.get(asset)
        if asset_book is None:
            return {}
        bests = self._bests(asset_book, now_ms)
        exchanges = sorted(asset_book.exchanges)
        rows: dict[str, dict[str, float | None]] = {}
        for buy in exchanges:
            row: dict[str, float | None] = {}
            for sell in exchanges:
                if sell != buy:
                    found = self._best_pair(bests, buy, sell, now_ms)
                    row[sell] = None if found is None else found.net_spread_pct
            rows[buy] = row
        return rows

    def expire(self, now_ms: int) -> list[Signal]:
        """The timer step: re-evaluate open opportunities with a quote gone stale by `now_ms`.

        Each is evaluated at the instant its quote went stale, so a replay (where
        timers run on capture time) closes it at the same instant as a live engine.
        A restored opportunity that did not resume closes at its restart deadline.
        """
        out: list[Signal] = []
        lifecycle = self.lifecycle
        # One at a time, earliest first (the lifecycle's timer heap): re-evaluating one may keep it
        # open on another fresh market of the same exchange, which can itself have gone stale
        # before `now_ms`.
        while (opportunity := lifecycle.earliest_stale(now_ms)) is not None:
            clock = opportunity.stale_after + 1
            if opportunity.restored is not None:  # not resumed within STALE_MS of the restart
                out.append(lifecycle.close(opportunity, clock, _newest_recv_ns(opportunity), ENGINE_RESTART))
                continue
            key: Key = (opportunity.asset, opportunity.buy_exchange, opportunity.sell_exchange)
            found = self._best_pair(self._bests(self.book.assets[opportunity.asset], clock), key[1], key[2], clock)
            signal = lifecycle.observe(key, found, clock, _newest_recv_ns(opportunity), STALE)
            if signal is not None:
                out.append(signal)
        return out

    def mark_down(self, exchange: str, now_ms: int) -> list[Signal]:
        """An exchange's feed went down: its quotes stop counting and what it was part of closes."""
        self.book.drop_exchange(exchange)
        lifecycle = self.lifecycle
        held = lifecycle.by_exchange.get(exchange)
        if not held:
            return []
        return [
            lifecycle.close(opportunity, now_ms, _newest_recv_ns(opportunity), FEED_DOWN)
            for opportunity in list(held.values())
        ]

    def restore_open(self, signals: Iterable[object], now_ms: int) -> int:
        """Start-up after a restart (DESIGN.md lifecycle rule 8): hold the open opportunities a
        previous engine left (the last open or update signal of each), resuming; returns how many.

        Each goes on with its id, `opened_at` and peak when a tick evaluates it fresh above the
        threshold before `now_ms + STALE_MS`, closes (`threshold`) when one evaluates it at or
        below, and otherwise closes by the timer at `now_ms + STALE_MS` (`engine_restart`) with
        the stored figures. What is not a whole open or update signal (anything a decoded stored
        value may be) is skipped, counted in `restore_skipped` (`lifecycle.restore_problem` says
        what was wrong with the last one).
        """
        return self.lifecycle.restore(signals, now_ms)

    @property
    def restore_skipped(self) -> int:
        """Stored values `restore_open` skipped (not a whole open or update signal, or an id given twice)."""
        return self.lifecycle.restore_skipped

    # --- evaluation ------------------------------------------------------------
    def _bests(self, asset_book: AssetBook, clock: int) -> Bests:
        """Each exchange's best fresh ask and bid market per quote group, at `clock`."""
        best_in = self._best_in
        bests: Bests = []
        for group in asset_book.groups.values():
            per_exchange: dict[str, Best] = {}
            for exchange in group.venues:
                best = best_in(group, exchange, clock)
                if best is not None:
                    per_exchange[exchange] = best
            bests.append(per_exchange)
        return bests

    def _best_in(self, group: GroupBook, exchange: str, clock: int) -> Best | None:
        """The exchange's best fresh ask and bid market in one quote group at `clock`; None when
        none takes part. Its pick from an earlier clock when that still holds (`book.Pick`)."""
        pick = group.picks.get(exchange)
        if (
            pick is not None
            and pick.since <= clock <= pick.until
            and (pick.rates is None or pick.rates == self._rates_at(clock))
        ):
            return pick.best
        return self._choose(group, exchange, clock)

    def _choose(self, group: GroupBook, exchange: str, clock: int) -> Best | None:
        """Choose the exchange's best markets in the group at `clock` and keep the pick.

        The pick holds while its clock stays within `since`..`until`: markets only go stale as
        the clock moves on (a fresher one needs a tick, which forgets the pick), and a choice
        among markets stays the same when others drop out, so it holds until one of the two
        chosen goes stale. With live rates, when a fresh market has one, it also needs the same
        rates. A lone market with no live rate keeps its pick's objects, repriced (the usual case).
        """
        picks = group.picks
        markets = group.venues.get(exchange)
        if not markets:
            picks[exchange] = Pick(None, clock, INFINITY)
            return None
        oldest = clock - self._stale_ms  # a quote received before this is stale
        live = self._live_set
        if len(markets) == 1 and markets[0].quote_currency not in live:
            market = markets[0]
            if market.recv_ms < oldest:
                picks[exchange] = Pick(None, clock, INFINITY)
                return None
            pick = picks.get(exchange)
            best = None if pick is None else pick.best
            if pick is None or best is None or best.ask is not market or best.bid is not market:
                best = Best(market, 1.0, market, 1.0, self._fee_of(exchange))
                picks[exchange] = Pick(best, clock, market.recv_ms + self._stale_ms)
                return best
            best.reprice()
            pick.since = clock
            pick.until = market.recv_ms + self._stale_ms
            pick.rates = None
            return best
        rates_now = self._rates_at(clock) if live else {}
        rated = False  # whether a fresh market's quote currency has a live rate
        usable: list[tuple[Quote, float]] = []
        for market in markets:
            if market.recv_ms < oldest:
                continue
            if market.quote_currency in live:
                rated = True
                rate = rates_now[market.quote_currency]
                if rate is None:  # no fresh rate: the market takes no part (never a silent 1.0)
                    continue
                usable.append((market, rate))
            else:
                usable.append((market, 1.0))
        rates = rates_now if rated else None
        if not usable:
            picks[exchange] = Pick(None, clock, INFINITY, rates)
            return None
        if len(usable) == 1:
            best_ask, ask_rate = best_bid, bid_rate = usable[0]
        else:
            best_ask, ask_rate = min(usable, key=_converted_ask)
            best_bid, bid_rate = max(usable, key=_converted_bid)
        best = Best(best_ask, ask_rate, best_bid, bid_rate, self._fee_of(exchange))
        picks[exchange] = Pick(best, clock, min(best_ask.recv_ms, best_bid.recv_ms) + self._stale_ms, rates)
        return best

    def _rates_at(self, clock: int) -> dict[str, float | None]:
        """Every live rate at `clock` (live rates only): read once per clock and reference tick."""
        if clock == self._rates_clock:
            return self._rates_now
        assert self.rates is not None
        rate = self.rates.rate
        now = {currency: rate(currency, clock) for currency in self._live_currencies}
        if now != self._rates_now:
            self._rates_now = now
        self._rates_clock = clock
        return self._rates_now

    def _best_pair(self, bests: Bests, buy_exchange: str, sell_exchange: str, clock: int) -> Figures | None:
        """The best figures of buying on one exchange and selling on the other, across quote groups,
        with the walk of the two markets' books (DESIGN.md "Depth") when both have a fresh one."""
        best: Figures | None = None
        best_buy = best_sell = None
        for per_exchange in bests:
            buy = per_exchange.get(buy_exchange)
            sell = per_exchange.get(sell_exchange)
            if buy is None or sell is None:
                continue
            if self._max_deviation > 0 and len(per_exchange) > 1:
                mids = {name: _mid(other) for name, other in per_exchange.items()}  # once for both sides
                buy_suspect = self._suspect(buy, buy_exchange, mids, clock)
                if self._suspect(sell, sell_exchange, mids, clock) or buy_suspect:
                    continue  # a market far from the asset's other venues takes no part (both are listed)
            found = figures(buy.ask, sell.bid, buy.fee, sell.fee, buy.ask_rate, sell.bid_rate)
            if best is None or found.net_spread_pct > best.net_spread_pct:
                best, best_buy, best_sell = found, buy, sell
        if best is None or best_buy is None or best_sell is None:
            return best
        oldest = clock - self._stale_ms
        asks = best.buy.ask_levels(oldest)
        if asks is None:
            return best
        bids = best.sell.bid_levels(oldest)
        if bids is None:
            return best
        config = self.config
        depth = walk(
            asks,
            bids,
            best_buy.fee,
            best_sell.fee,
            best.buy_rate,
            best.sell_rate,
            config.threshold_pct,
            config.target_notional,
            config.max_notional,
        )
        return best._replace(depth=depth)

    def _suspect(self, best: Best, exchange: str, mids: dict[str, float], clock: int) -> bool:
        """Whether `exchange`'s mid in this quote group (`mids`: each exchange's, two or more) lies more
        than MAX_MARKET_DEVIATION_PCT from the median mid of the group's other exchanges (a ticker
        collision, a halted market); a suspect is recorded in `suspects` with what it was compared with."""
        mid = mids[exchange]
        others = sorted(other for name, other in mids.items() if name != exchange)
        half = len(others) // 2
        median = others[half]
        if not len(others) % 2:  # of the two middle mids, the one nearer this market's own (the lenient
            # choice: with venues at 45,000 and 90,000 beside it, a market at 45,010 is not a suspect)
            lower = others[half - 1]
            if abs(mid - lower) < abs(mid - median):
                median = lower
        deviation = abs(mid - median) / median * 100.0
        if deviation <= self._max_deviation:
            return False
        for market in (best.ask, best.bid):
            self.suspects[(exchange, market.symbol)] = Suspect(
                exchange, market.symbol, mid, median, deviation, len(others), clock
            )
        return True

    def suspect_markets(self, now_ms: int, within_ms: int = 10_000) -> list[Suspect]:
        """The markets found suspect within `within_ms` before `now_ms`, most deviant first."""
        recent = [suspect for suspect in self.suspects.values() if suspect.seen_ms >= now_ms - within_ms]
        self.suspects = {(suspect.exchange, suspect.symbol): suspect for suspect in recent}
        return sorted(recent, key=lambda suspect: (-suspect.deviation_pct, suspect.exchange, suspect.symbol))

    def _fee_of(self, exchange: str) -> float:
        """The taker fee of an exchange as a fraction."""
        fee = self._fees.get(exchange)
        if fee is None:
            fee = self._fees[exchange] = self.config.fee_pct(exchange) / 100.0
        return fee


class Suspect(NamedTuple):
    """A market that took no part: its mid, the median mid of the other venues it was compared with."""

    exchange: str
    symbol: str
    mid: float  # in the group's common quote
    median_mid: float
    deviation_pct: float
    venues_compared: int
    seen_ms: int  # the engine clock when it was last found suspect


def _mid(best: Best) -> float:
    return (best.ask.ask * best.ask_rate + best.bid.bid * best.bid_rate) * 0.5


def _newest_recv_ns(opportunity: Opportunity) -> int:
    """For a close no tick caused: the newer receive time of the two quotes it last used."""
    return max(opportunity.last_above.buy.recv_ns, opportunity.last_above.sell.recv_ns)


def _converted_ask(priced: tuple[Quote, float]) -> float:
    return priced[0].ask * priced[1]


def _converted_bid(priced: tuple[Quote, float]) -> float:
    return priced[0].bid * priced[1]
