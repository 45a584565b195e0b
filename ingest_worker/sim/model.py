"""The simulator's market model: pure, seeded, and told the time.

Every asset follows one random walk (its "true" mid). Every venue quotes each
asset around that mid with its own slowly wandering offset, its own spread and
its own sizes, so that normally the cross-venue net spread after taker fees is
far below the signal threshold. From time to time a *dislocation* moves one
asset on an ordered pair of venues apart: the cheap venue's ask drops and the
rich venue's bid rises until, net of both taker fees,

    bid_rich × (1 − fee_rich) / (ask_cheap × (1 + fee_cheap)) − 1 = net_pct / 100

for as long as it lasts, while the mid keeps walking (prices keep moving, so a
signal opens, updates and closes). Prices are integers in the market's tick
and sizes integers in its lot: the venue dialects format them exactly.

No I/O and no clock: `advance(now_ns)` moves the model to `now_ns` and returns
what happened in between. The same seed and the same sequence of times give
the same quotes, so the model is tested step by step.

Stablecoins. Each venue also quotes its reference markets (`REFERENCE_MARKETS`:
USDT/USD, USDC/USD, USDC/USDT where the real venue lists them), whose mids are
the currencies' values in USD (`usd_values`, 1.0 unless told otherwise). An
asset market quoted in a stablecoin prices the asset's USD mid at that coin's
*pricing* value, which follows the USD value (a repriced depeg: BTC/USDT rises
when USDT falls, as arbitrageurs make it) or, when told not to, stays where it
was (the depeg has not reached the asset markets yet: a real opportunity in USD
terms, visible only to an engine that converts with live rates). A dislocation's
net spread is set in USD value at the pricing rates. A currency's reference
markets can be halted (`set_currency(..., reference=False)`), leaving the
engine without a fresh rate for it.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ingest_worker.venues import DEFAULT_FEES_PCT, NAMES
from ingest_worker.venues import VENUES as REGISTRY
from ingest_worker.venues.declaration import SimProfile
from signals_app.contracts import spread

BINANCE = "binance"
COINBASE = "coinbase"
KRAKEN = "kraken"
OKX = "okx"
BITSTAMP = "bitstamp"
GEMINI = "gemini"
BITFINEX = "bitfinex"
# The venues simulated unless told otherwise (SIM_VENUES): every registered venue.
VENUES: tuple[str, ...] = NAMES
DEFAULT_ASSETS: tuple[str, ...] = ("BTC", "ETH", "SOL", "XRP", "ADA")

NS_PER_S = 1_000_000_000

# The stablecoin reference markets each venue lists (base/quote), quoted beside its asset markets.
REFERENCE_MARKETS: Mapping[str, tuple[str, ...]] = {
    name: venue.sim.reference_markets for name, venue in REGISTRY.items()
}
STABLECOINS: tuple[str, ...] = ("USDT", "USDC")  # the currencies whose USD value the control API can move
REFERENCE_HALF_SPREAD_BP = (0.2, 1.0)  # a stablecoin book is tight
REFERENCE_OFFSET_SD_BP = 0.3  # and barely wanders from its value
REFERENCE_SIZE_DECIMALS = 2


@dataclass(frozen=True)
class AssetProfile:
    """How an asset trades: where it starts, its tick and lot on each venue, its usual top-of-book size."""

    start_price: float  # in USD / USDT
    binance_price_decimals: int  # PRICE_FILTER tickSize 10^-n
    binance_size_decimals: int  # LOT_SIZE stepSize 10^-n
    coinbase_price_decimals: int  # quote_increment 10^-n
    typical_size: float  # top-of-book size, units of the asset


ASSET_PROFILES: Mapping[str, AssetProfile] = {
    "BTC": AssetProfile(45_000.0, 2, 5, 2, 0.6),
    "ETH": AssetProfile(2_500.0, 2, 4, 2, 8.0),
    "SOL": AssetProfile(100.0, 2, 3, 2, 150.0),
    "XRP": AssetProfile(0.6, 4, 0, 4, 25_000.0),
    "ADA": AssetProfile(0.5, 4, 1, 4, 30_000.0),
}
# Any other asset asked for on the command line trades like a mid-priced altcoin.
GENERIC_PROFILE = AssetProfile(10.0, 4, 2, 4, 500.0)
# A stablecoin reference market trades around 1.0 (its book: REFERENCE_* below).
REFERENCE_PROFILE = AssetProfile(1.0, 4, 2, 5, 50_000.0)


# How each venue quotes (its declaration's `sim`): quote currency, spread, deviation, depth, trades.
VENUE_PROFILES: Mapping[str, SimProfile] = {name: venue.sim for name, venue in REGISTRY.items()}

MID_VOLATILITY = 1.5e-4  # the true mid's standard deviation per √second (1.5 bp)
OFFSET_REVERSION_S = 5.0  # a venue's offset from the mid forgets itself in about this long
# Share of quote updates that come with a trade, per venue.
TRADE_PROBABILITY = {name: profile.trade_probability for name, profile in VENUE_PROFILES.items()}
MAX_BACKLOG_S = 1.0  # a stalled caller gets at most one second of updates at once

# Natural dislocations: how often, how long, how large (net of fees, percent).
DISLOCATION_GAP_S = (8.0, 20.0)
FIRST_DISLOCATION_S = (4.0, 8.0)
DISLOCATION_SECONDS = (5.0, 20.0)
DISLOCATION_NET_PCT = (0.8, 1.5)


@dataclass(frozen=True)
class Market:
    """One market of one venue: its names and the units its prices and sizes are counted in."""

    index: int
    venue: str
    asset: str  # the base asset
    quote: str
    native: str  # the venue's own name: BTCUSDT, BTC-USD
    price_decimals: int
    size_decimals: int

    reference: bool = False  # a stablecoin reference market (USDT/USD), not an asset market

    @property
    def symbol(self) -> str:
        return f"{self.asset}/{self.quote}"

    @property
    def price_scale(self) -> int:
        return int(10**self.price_decimals)

    @property
    def size_scale(self) -> int:
        return int(10**self.size_decimals)


class Trade(NamedTuple):
    price: int  # in ticks of the market
    size: int  # in lots of the market
    taker_side: str  # "buy" lifted the ask, "sell" hit the bid


class Quote(NamedTuple):
    """A new top of book of one market, and the trade that came with it, if any."""

    market: Market
    bid: int  # ticks
    ask: int  # ticks
    bid_size: int  # lots
    ask_size: int  # lots
    time_ns: int  # the model time of the update (Unix ns)
    trade: Trade | None
    # A thin dislocation (sim/depth.py): only this many levels of the bids (rich venue) or asks (cheap
    # venue) are at the dislocated price, those behind lie thin_gap ticks further out; 0: all of them.
    thin_bids: int = 0
    thin_asks: int = 0
    thin_gap: int = 0


@dataclass(frozen=True)
class Dislocation:
    """`asset` is cheap on `cheap` and rich on `rich` by `net_pct` after fees, from start to end."""

    asset: str
    cheap: str  # buy here
    rich: str  # sell here
    start_net_pct: float
    end_net_pct: float  # the net spread drifts linearly from start to end
    start_ns: int
    end_ns: int
    forced: bool = False  # asked for through the control endpoint

    def net_pct_at(self, now_ns: int) -> float:
        span = self.end_ns - self.start_ns
        share = 0.0 if span <= 0 else min(1.0, max(0.0, (now_ns - self.start_ns) / span))
        return self.start_net_pct + (self.end_net_pct - self.start_net_pct) * share

    def as_dict(self) -> dict[str, object]:
        return {
            "asset": self.asset,
            "cheap": self.cheap,
            "rich": self.rich,
            "net_pct": round(self.start_net_pct, 4),
            "end_net_pct": round(self.end_net_pct, 4),
            "seconds": round((self.end_ns - self.start_ns) / NS_PER_S, 3),
            "start_ms": self.start_ns // 1_000_000,
            "end_ms": self.end_ns // 1_000_000,
            "forced": self.forced,
        }


class Step(NamedTuple):
    """What `advance` produced: quotes in time order, dislocations that began and that ended."""

    quotes: list[Quote]
    started: list[Dislocation]
    ended: list[Dislocation]


# How many book levels of a dislocation are at its price, by route (0: the whole book, a deep one).
ROUTE_DEPTHS = (1, 3, 8, 0)


def route_depth(asset: str, cheap: str, rich: str) -> int:
    """The levels a dislocation of `asset` from `cheap` to `rich` keeps at its price: fixed per route,
    so that some routes are deep and others thin, the same in every run."""
    return ROUTE_DEPTHS[zlib.crc32(f"{asset}:{cheap}:{rich}".encode()) % len(ROUTE_DEPTHS)]


def profile_of(market: Market) -> AssetProfile:
    """How a market's base trades: a stablecoin reference market around 1.0, an asset by its profile."""
    return REFERENCE_PROFILE if market.reference else ASSET_PROFILES.get(market.asset, GENERIC_PROFILE)


def typical_size(market: Market) -> float:
    """A market's usual top-of-book size, units of its base: the asset's, scaled by the venue's."""
    return profile_of(market).typical_size * VENUE_PROFILES[market.venue].size_factor


def venue_market_name(venue: str, asset: str, quote: str) -> str:
    declaration = REGISTRY.get(venue)
    if declaration is None:
        raise ValueError(f"the simulator has no dialect for venue {venue!r}")
    return declaration.to_native(f"{asset}/{quote}")


def build_markets(assets: Sequence[str], venues: Sequence[str] = VENUES, reference: bool = True) -> list[Market]:
    """Every (venue, asset) market, venue by venue, in the order of `assets`; then, with `reference`,
    every venue's stablecoin reference markets (after the asset markets, so that their indexes stay put)."""
    markets: list[Market] = []
    for venue in venues:
        profile = VENUE_PROFILES[venue]
        for asset in assets:
            asset_profile = ASSET_PROFILES.get(asset, GENERIC_PROFILE)
            if profile.price_ticks == "coinbase":
                price_decimals = asset_profile.coinbase_price_decimals
            else:
                price_decimals = asset_profile.binance_price_decimals
            size_decimals = (
                asset_profile.binance_size_decimals if profile.size_decimals is None else profile.size_decimals
            )
            native = venue_market_name(venue, asset, profile.quote)
            markets.append(Market(len(markets), venue, asset, profile.quote, native, price_decimals, size_decimals))
    if reference:
        for venue in venues:
            for symbol in REFERENCE_MARKETS.get(venue, ()):
                base, quote = symbol.split("/")
                native = venue_market_name(venue, base, quote)
                price_decimals = VENUE_PROFILES[venue].reference_price_decimals
                markets.append(
                    Market(len(markets), venue, base, quote, native, price_decimals, REFERENCE_SIZE_DECIMALS, True)
                )
    return markets


def parse_assets(text: str | Iterable[str]) -> tuple[str, ...]:
    """`"btc, ETH"` -> ("BTC", "ETH"); ValueError for an empty list, a repeat or a name that is no asset."""
    items = text.split(",") if isinstance(text, str) else list(text)
    assets: list[str] = []
    for item in items:
        name = item.strip().upper()
        if not name:
            continue
        if not name.isalnum() or not name.isascii() or len(name) > 12:
            raise ValueError(f"{item!r} is not an asset name (letters and digits, like BTC)")
        if name in assets:
            raise ValueError(f"asset {name} is listed twice")
        assets.append(name)
    if not assets:
        raise ValueError("no assets given")
    return tuple(assets)


@dataclass
class _MarketState:
    offset: float  # the venue's relative deviation from the true mid
    last_ns: int = -1  # when it was last quoted; -1: never
    traded: bool = False  # whether a trade has been reported yet


class MarketModel:
    """The simulated market of `assets` on `venues`. Call `advance(now_ns)` with a clock that never goes back."""

    def __init__(
        self,
        assets: Sequence[str],
        start_ns: int,
        *,
        seed: int = 0,
        rate: float = 50.0,
        fees_pct: Mapping[str, float] = DEFAULT_FEES_PCT,
        venues: Sequence[str] = VENUES,
        auto_dislocations: bool = True,
        min_refresh_ms: int = 1000,
        reference: bool = True,
    ) -> None:
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"rate must be a finite number of updates per second >= 0, not {rate}")
        for venue in venues:
            if venue not in VENUE_PROFILES:
                raise ValueError(f"the simulator has no dialect for venue {venue!r}")
        self.assets = tuple(assets)
        self.venues = tuple(venues)
        self.seed = seed
        self.rate = rate  # quote updates per second across all markets
        self.fees_pct = {**DEFAULT_FEES_PCT, **fees_pct}  # percent; a venue not named pays its default
        self.auto_dislocations = auto_dislocations
        self.min_refresh_ms = min_refresh_ms  # a market not quoted for this long is quoted anyway
        self.markets: list[Market] = build_markets(self.assets, self.venues, reference)
        self._offset_sd = [
            (REFERENCE_OFFSET_SD_BP if m.reference else VENUE_PROFILES[m.venue].offset_sd_bp) * 1e-4
            for m in self.markets
        ]
        self._rng = random.Random(seed)
        self.now_ns = start_ns
        self.mids: dict[str, float] = {
            asset: ASSET_PROFILES.get(asset, GENERIC_PROFILE).start_price for asset in self.assets
        }
        self._states = [_MarketState(self._rng.gauss(0.0, sd)) for sd in self._offset_sd]
        # Each stablecoin's value in USD, the value its asset markets price at, and whether its
        # reference markets are quoted (module docstring).
        self.usd_values: dict[str, float] = {"USD": 1.0, **{coin: 1.0 for coin in STABLECOINS}}
        self.pricing: dict[str, float] = dict(self.usd_values)
        self.reference_halted: set[str] = set()
        self._quoted: list[Market] = list(self.markets)  # every market not halted
        self._by_asset_venue = {(m.asset, m.venue): m for m in self.markets}
        self.dislocations: dict[str, Dislocation] = {}  # asset -> the one active on it
        self._started: list[Dislocation] = []  # begun since the last advance
        self._due = 0.0  # updates owed to the rate, fractional
        self._next_dislocation_ns = start_ns + self._seconds(FIRST_DISLOCATION_S)
        self._last_cheap: str | None = None
        self._pending: list[Market] = list(self.markets)  # quoted on the next advance: everything, at first

    # --- inputs ------------------------------------------------------------------
    def market(self, venue: str, asset: str) -> Market:
        return self._by_asset_venue[(asset, venue)]

    def set_currency(
        self, currency: str, *, usd: float | None = None, reprice: bool = True, reference: bool | None = None
    ) -> dict[str, object]:
        """Move a stablecoin: its USD value (`usd`), whether its asset markets follow (`reprice`),
        and whether its reference markets are quoted (`reference`). Its state afterwards.

        Raises ValueError for a currency that is not a stablecoin or a value outside (0, 2).
        """
        currency = currency.upper()
        if currency not in STABLECOINS:
            raise ValueError(f"currency must be one of {', '.join(STABLECOINS)}, not {currency!r}")
        if usd is not None:
            if not (math.isfinite(usd) and 0.0 < usd < 2.0):
                raise ValueError(f"usd must be a value in (0, 2), not {usd}")
            self.usd_values[currency] = usd
            if reprice:
                self.pricing[currency] = usd
        if reference is not None:
            if reference:
                self.reference_halted.discard(currency)
            else:
                self.reference_halted.add(currency)
            self._quoted = [m for m in self.markets if not self._halted(m)]
        # Quote what the change touches now, so that it shows at once.
        for market in self.markets:
            touched = market.quote == currency or (market.reference and market.asset == currency)
            if touched and not self._halted(market) and market not in self._pending:
                self._pending.append(market)
        return self.currency_state(currency)

    def currency_state(self, currency: str) -> dict[str, object]:
        return {
            "currency": currency,
            "usd": self.usd_values[currency],
            "pricing": self.pricing[currency],
            "reference": currency not in self.reference_halted,
        }

    def _halted(self, market: Market) -> bool:
        return market.reference and (market.asset in self.reference_halted or market.quote in self.reference_halted)

    def fee(self, venue: str) -> float:
        """Taker fee as a fraction."""
        return self.fees_pct[venue] / 100.0

    def dislocate(
        self, asset: str, cheap: str, rich: str, net_pct: float, seconds: float, now_ns: int | None = None
    ) -> tuple[Dislocation, Dislocation | None]:
        """Force a dislocation now (the model's time); returns it and the one it replaced, if any.

        Raises ValueError for an unknown asset or venue, equal venues, or a net spread
        or duration outside sane bounds (a control request must not break the model).
        """
        asset = asset.upper()
        if asset not in self.mids:
            raise ValueError(f"unknown asset {asset!r}; simulated: {', '.join(self.assets)}")
        for venue in (cheap, rich):
            if venue not in self.venues:
                raise ValueError(f"unknown venue {venue!r}; simulated: {', '.join(self.venues)}")
        if cheap == rich:
            raise ValueError("cheap and rich must be two different venues")
        if not (math.isfinite(net_pct) and -50.0 < net_pct < 50.0):
            raise ValueError(f"net_pct must be between -50 and 50, not {net_pct}")
        if not (math.isfinite(seconds) and 0.0 < seconds <= 3600.0):
            raise ValueError(f"seconds must be in (0, 3600], not {seconds}")
        start = self.now_ns if now_ns is None else max(now_ns, self.now_ns)
        event = Dislocation(asset, cheap, rich, net_pct, net_pct, start, start + round(seconds * NS_PER_S), True)
        replaced = self.dislocations.get(asset)
        self._begin(event)
        return event, replaced

    # --- the step ----------------------------------------------------------------
    def advance(self, now_ns: int) -> Step:
        """Move the model to `now_ns`: the quotes due since the last call, and dislocation changes."""
        quotes: list[Quote] = []
        started: list[Dislocation] = []
        ended: list[Dislocation] = []
        elapsed_ns = now_ns - self.now_ns
        if elapsed_ns > 0:
            self._walk(elapsed_ns / NS_PER_S)
            self.now_ns = now_ns
            self._due = min(self._due + self.rate * elapsed_ns / NS_PER_S, self.rate * MAX_BACKLOG_S + 1.0)
        for asset, event in list(self.dislocations.items()):
            if event.end_ns <= now_ns:
                del self.dislocations[asset]
                ended.append(event)
                self._requote(asset, event)
        if self.auto_dislocations and now_ns >= self._next_dislocation_ns:
            natural = self._natural_dislocation(now_ns)
            self._next_dislocation_ns = now_ns + self._seconds(DISLOCATION_GAP_S)
            if natural is not None:
                self._begin(natural)
        started.extend(self._started)
        self._started.clear()
        # Markets that must be quoted now: new, dislocated, or about to go stale.
        pending, self._pending = self._pending, []
        refresh_before = now_ns - self.min_refresh_ms * 1_000_000
        seen = {m.index for m in pending}
        for market, state in zip(self.markets, self._states, strict=True):
            if 0 <= state.last_ns < refresh_before and market.index not in seen and not self._halted(market):
                pending.append(market)
        for market in pending:
            if not self._halted(market):
                quotes.append(self._quote(market, now_ns))
        owed = int(self._due)
        self._due -= owed
        rng = self._rng
        markets = self._quoted
        count = len(markets)
        for _ in range(owed if count else 0):
            quotes.append(self._quote(markets[int(rng.random() * count)], now_ns))
        return Step(quotes, started, ended)

    # --- internals ---------------------------------------------------------------
    def _seconds(self, bounds: tuple[float, float]) -> int:
        return round(self._rng.uniform(*bounds) * NS_PER_S)

    def _walk(self, dt_s: float) -> None:
        rng = self._rng
        scale = MID_VOLATILITY * math.sqrt(dt_s)
        for asset in self.assets:
            self.mids[asset] *= math.exp(rng.gauss(0.0, scale))
        decay = math.exp(-dt_s / OFFSET_REVERSION_S)
        keep = math.sqrt(max(0.0, 1.0 - decay * decay))
        for sd, state in zip(self._offset_sd, self._states, strict=True):
            state.offset = state.offset * decay + sd * keep * rng.gauss(0.0, 1.0)

    def _natural_dislocation(self, now_ns: int) -> Dislocation | None:
        free = [asset for asset in self.assets if asset not in self.dislocations]
        if not free or len(self.venues) < 2:
            return None
        rng = self._rng
        asset = rng.choice(free)
        cheap, rich = rng.sample(self.venues, 2)
        if cheap == self._last_cheap and len(self.venues) == 2:
            cheap, rich = rich, cheap  # alternate, so that a short demo shows both directions
        self._last_cheap = cheap
        start_net = rng.uniform(*DISLOCATION_NET_PCT)
        end_net = rng.uniform(*DISLOCATION_NET_PCT)
        return Dislocation(asset, cheap, rich, start_net, end_net, now_ns, now_ns + self._seconds(DISLOCATION_SECONDS))

    def _begin(self, event: Dislocation) -> None:
        replaced = self.dislocations.get(event.asset)
        self.dislocations[event.asset] = event
        self._started.append(event)
        if replaced is not None:
            self._requote(event.asset, replaced)
        self._requote(event.asset, event)

    def _requote(self, asset: str, event: Dislocation) -> None:
        """Quote both venues of a dislocation at once, so that it begins and ends crisply."""
        for venue in (event.cheap, event.rich):
            market = self._by_asset_venue[(asset, venue)]
            if market not in self._pending:
                self._pending.append(market)

    def _quote(self, market: Market, now_ns: int) -> Quote:
        rng = self._rng
        state = self._states[market.index]
        profile = VENUE_PROFILES[market.venue]
        scale = market.price_scale
        if market.reference:
            return self._reference_quote(market, state, now_ns)
        true_mid = self.mids[market.asset] / self.pricing.get(market.quote, 1.0)  # in the market's quote
        half = rng.uniform(*profile.half_spread_bp) * 1e-4
        event = self.dislocations.get(market.asset)
        if event is not None and market.venue in (event.cheap, event.rich):
            # ask_cheap = M / √K and bid_rich = M × √K put the net spread exactly on target;
            # the venue's own offset is left out while it lasts, its spread is not.
            root_k = self._root_k(event, now_ns)
            thin = route_depth(event.asset, event.cheap, event.rich)
            if market.venue == event.cheap:
                ask = max(2, round(true_mid / root_k * scale))
                bid = max(1, min(ask - 1, round(true_mid / root_k * (1.0 - 2.0 * half) * scale)))
                # Behind a thin dislocation's levels the asks are back above the whole move.
                gap = round(ask * (root_k * root_k - 1.0) * 1.5) + 1
                quote = self._finish(market, state, bid, ask, typical_size(market), now_ns)
                return quote._replace(thin_asks=thin, thin_gap=gap) if thin else quote
            bid = max(1, round(true_mid * root_k * scale))
            ask = max(bid + 1, round(true_mid * root_k * (1.0 + 2.0 * half) * scale))
            gap = round(bid * (1.0 - 1.0 / (root_k * root_k)) * 1.5) + 1
            quote = self._finish(market, state, bid, ask, typical_size(market), now_ns)
            return quote._replace(thin_bids=thin, thin_gap=gap) if thin else quote
        mid = true_mid * (1.0 + state.offset)
        bid = max(1, math.floor(mid * (1.0 - half) * scale))
        ask = max(bid + 1, math.ceil(mid * (1.0 + half) * scale))
        return self._finish(market, state, bid, ask, typical_size(market), now_ns)

    def _reference_quote(self, market: Market, state: _MarketState, now_ns: int) -> Quote:
        """A stablecoin market: its mid is the ratio of the two currencies' USD values."""
        scale = market.price_scale
        mid = self.usd_values.get(market.asset, 1.0) / self.usd_values.get(market.quote, 1.0) * (1.0 + state.offset)
        half = self._rng.uniform(*REFERENCE_HALF_SPREAD_BP) * 1e-4
        bid = max(1, math.floor(mid * (1.0 - half) * scale))
        ask = max(bid + 1, math.ceil(mid * (1.0 + half) * scale))
        return self._finish(market, state, bid, ask, REFERENCE_PROFILE.typical_size, now_ns)

    def _finish(self, market: Market, state: _MarketState, bid: int, ask: int, typical: float, now_ns: int) -> Quote:
        """Sizes and a trade, maybe, for a new top of book."""
        rng = self._rng
        bid_size = self._size(typical, market)
        ask_size = self._size(typical, market)
        trade: Trade | None = None
        if not state.traded or rng.random() < TRADE_PROBABILITY.get(market.venue, 0.1):
            state.traded = True
            side = "buy" if rng.random() < 0.5 else "sell"
            trade = Trade(ask if side == "buy" else bid, self._size(typical * 0.1, market), side)
        state.last_ns = now_ns
        return Quote(market, bid, ask, bid_size, ask_size, now_ns, trade)

    def _root_k(self, event: Dislocation, now_ns: int) -> float:
        """√K, K = (1 + net) (1 + fee_cheap) / (1 − fee_rich): the ratio bid_rich / ask_cheap must reach."""
        return math.sqrt(
            spread.bid_ask_ratio_for(event.net_pct_at(now_ns), self.fee(event.cheap), self.fee(event.rich))
        )

    def _size(self, typical: float, market: Market) -> int:
        """A log-normal size around `typical`, in whole lots, at least one lot."""
        size = self._rng.lognormvariate(math.log(typical), 0.8)
        return max(1, round(size * market.size_scale))


def net_spread_pct(bid_rich: float, ask_cheap: float, fee_cheap_pct: float, fee_rich_pct: float) -> float:
    """Net spread in percent of buying at `ask_cheap` and selling at `bid_rich`, both taker fees paid.

    The fees are in percent, as the simulator holds them; the formula is the contract's.
    """
    return spread.net_spread_pct(ask_cheap, bid_rich, fee_cheap_pct / 100.0, fee_rich_pct / 100.0)
