"""Top of book per (exchange, market), indexed by asset and quote group.

The engine looks up everything a tick can change through its asset, so the
cost of a tick grows with the number of exchanges quoting that asset and
never with the number of assets.
"""

from __future__ import annotations

from signals_app.contracts.spread import cost_per_unit, proceeds_per_unit
from signals_app.contracts.symbols import base_of, quote_of
from signals_app.contracts.tick import Levels, Tick


class Quote:
    """The latest best bid/ask of one market; updated in place on each quote or book tick.

    `bids` and `asks` are the levels of the newest tick when it was a book tick (best first),
    None after a quote tick: the levels always belong to the top beside them.
    """

    __slots__ = (
        "alone",
        "ask",
        "ask_size",
        "asks",
        "bid",
        "bid_size",
        "bids",
        "exchange",
        "recv_ms",
        "recv_ns",
        "symbol",
    )

    def __init__(self, exchange: str, symbol: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.bid = 0.0
        self.ask = 0.0
        self.bid_size: float | None = None
        self.ask_size: float | None = None
        self.recv_ms = 0
        self.recv_ns = 0
        self.bids: Levels | None = None
        self.asks: Levels | None = None
        # With fixed rates, while the market is its exchange's only one in its quote group: its
        # entry in the engine's bests, kept (and repriced on each tick) instead of built per tick.
        self.alone: Best | None = None

    def update(self, tick: Tick) -> None:
        self.bid = tick.bid  # type: ignore[assignment]  # a quote tick always has both sides
        self.ask = tick.ask  # type: ignore[assignment]
        self.bid_size = tick.bid_size
        self.ask_size = tick.ask_size
        self.recv_ns = tick.recv_ns
        self.recv_ms = tick.recv_ns // 1_000_000
        self.bids = tick.bids
        self.asks = tick.asks


class Best:
    """An exchange's best fresh ask and bid markets in one quote group, priced per unit.

    A rate converts its market's quote currency into the group's first member (USD in
    USD,USDT,USDC): 1.0 with QUOTE_RATES=fixed. `cost` and `proceeds` are what one unit
    costs on `ask` and fetches on `bid` there, taker fee paid (signals_app/contracts/spread.py).
    """

    __slots__ = ("ask", "ask_rate", "bid", "bid_rate", "cost", "fee", "proceeds")

    def __init__(self, ask: Quote, ask_rate: float, bid: Quote, bid_rate: float, fee: float) -> None:
        self.ask = ask
        self.ask_rate = ask_rate
        self.bid = bid
        self.bid_rate = bid_rate
        self.fee = fee  # the exchange's taker fee, a fraction
        self.cost = cost_per_unit(ask.ask, ask_rate, fee)
        self.proceeds = proceeds_per_unit(bid.bid, bid_rate, fee)


class GroupBook:
    """One asset's markets within one quote group: exchange -> its markets (usually one)."""

    __slots__ = ("key", "venues")

    def __init__(self, key: str) -> None:
        self.key = key
        self.venues: dict[str, list[Quote]] = {}


class AssetBook:
    """Every market of one base asset, by quote group; `exchanges` lists who quotes it, in order seen."""

    __slots__ = ("asset", "exchanges", "groups")

    def __init__(self, asset: str) -> None:
        self.asset = asset
        self.groups: dict[str, GroupBook] = {}
        self.exchanges: dict[str, None] = {}  # an ordered set


class Book:
    """All quotes the engine holds."""

    def __init__(self, quote_groups: tuple[tuple[str, ...], ...]) -> None:
        # quote currency -> its group's key (the group's first member); a currency in no
        # configured group forms a group of its own, so ETH/BTC is still compared with ETH/BTC.
        self._group_of: dict[str, str] = {member: group[0] for group in quote_groups for member in group}
        self.assets: dict[str, AssetBook] = {}
        self._quotes: dict[tuple[str, str], tuple[Quote, AssetBook, GroupBook]] = {}

    def apply(self, tick: Tick) -> tuple[Quote, AssetBook, GroupBook]:
        """Store a quote tick; returns its market's slot, asset book and group book."""
        key = (tick.exchange, tick.symbol)
        entry = self._quotes.get(key)
        if entry is None:
            entry = self._add_market(tick.exchange, tick.symbol)
        entry[0].update(tick)
        return entry

    def _add_market(self, exchange: str, symbol: str) -> tuple[Quote, AssetBook, GroupBook]:
        asset = base_of(symbol)
        quote_ccy = quote_of(symbol)
        group_key = self._group_of.get(quote_ccy, quote_ccy)
        asset_book = self.assets.get(asset)
        if asset_book is None:
            asset_book = self.assets[asset] = AssetBook(asset)
        group = asset_book.groups.get(group_key)
        if group is None:
            group = asset_book.groups[group_key] = GroupBook(group_key)
        slot = Quote(exchange, symbol)
        group.venues.setdefault(exchange, []).append(slot)
        asset_book.exchanges[exchange] = None
        entry = (slot, asset_book, group)
        self._quotes[(exchange, symbol)] = entry
        return entry

    def drop_exchange(self, exchange: str) -> None:
        """Forget every quote of an exchange (its feed went down); fresh ticks bring them back."""
        for key in [key for key in self._quotes if key[0] == exchange]:
            slot, asset_book, group = self._quotes.pop(key)
            markets = group.venues[exchange]
            markets.remove(slot)
            if not markets:
                del group.venues[exchange]
                if not any(exchange in other.venues for other in asset_book.groups.values()):
                    asset_book.exchanges.pop(exchange, None)
