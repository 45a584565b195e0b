"""What a venue is to the rest of the system: one frozen `Venue` per module of this package.

Each `ingest_worker/venues/<name>.py` ends with `VENUE = Venue(...)`; the registry
(`ingest_worker.venues.VENUES`) collects them, so the ingestor, the simulator, settings'
defaults, `normalize` and `replay` all read the venue list from one place. mypy checks
every declaration against this type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ingest_worker.venues.base import TextKeepalive, VenueParser

# native market names -> the messages that subscribe to (or resubscribe) them
Messages = Callable[[Iterable[str]], list[dict[str, Any]]]
# the venue's market-list answer -> (native, base, quote) of every trading market
MarketsReader = Callable[[Any], list[tuple[str, str, str]]]


@dataclass(frozen=True)
class SimProfile:
    """How the exchange simulator's market model quotes the venue (ingest_worker/sim/model.py)."""

    quote: str  # the quote currency of the venue's markets for the demo assets
    half_spread_bp: tuple[float, float]  # half of the bid/ask spread, drawn per update, basis points
    offset_sd_bp: float  # stationary deviation of the venue's mid from the true mid, basis points
    size_factor: float  # the venue's depth relative to the asset's typical size
    trade_probability: float = 0.1  # share of quote updates that come with a trade
    size_decimals: int | None = None  # every size printed with this many decimals; None: the asset's lot
    reference_markets: tuple[str, ...] = ()  # the stablecoin markets it lists (USDT/USD, ...)
    reference_price_decimals: int = 5  # the price decimals of those markets
    price_ticks: str = "binance"  # whose tick table its asset markets use: binance or coinbase (sim.model)


@dataclass(frozen=True, kw_only=True)
class Venue:
    """One exchange: where it is, how to subscribe, how to read it, what it costs, where it is simulated."""

    name: str  # lower case, the `exchange` of every tick it gives
    live_ws_url: str  # the WebSocket base of the real venue
    live_rest_url: str  # the REST base of the real venue (the market list)
    markets_path: str  # the market-list endpoint under the REST base
    read_markets: MarketsReader  # its answer -> (native, base, quote) of every trading market
    connect_url: Callable[[str], str]  # WebSocket base -> the URL a connection opens
    subscribe_messages: Messages  # sent after connecting, for the connection's markets
    parser: type[VenueParser]  # one per connection; frames in, ticks out
    to_native: Callable[[str], str]  # `BTC/USD` -> the venue's own market name
    default_fee_pct: float  # taker fee, percent, unless FEES says otherwise
    sim_port: int  # the simulator's port for the venue (SIM_<NAME>_PORT overrides it)
    sim: SimProfile  # how the simulator's market model quotes it
    # How to get fresh order-book snapshots of some markets after the parser dropped their
    # book; None: the connection is reopened instead.
    resubscribe_messages: Messages | None = None
    keepalive: TextKeepalive | None = None  # a text the venue wants from the client this often
    max_channels_per_connection: int | None = None  # None: every market on one connection
    channels_per_market: int = 1  # subscriptions one market takes (towards the cap)

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower():
            raise ValueError(f"venue name {self.name!r}: lower case, not empty")
        if not 0.0 <= self.default_fee_pct < 100.0:
            raise ValueError(f"{self.name}: default fee {self.default_fee_pct} is not a percentage")
        if self.max_channels_per_connection is not None and self.max_channels_per_connection < self.channels_per_market:
            raise ValueError(
                f"{self.name}: a market takes {self.channels_per_market} channels and a connection holds only "
                f"{self.max_channels_per_connection}"
            )

    @property
    def markets_per_connection(self) -> int | None:
        """How many markets one connection holds; None: every market on one connection."""
        if self.max_channels_per_connection is None:
            return None
        return self.max_channels_per_connection // self.channels_per_market
