"""Top of book per (exchange, market), indexed by asset and quote group.

The engine looks up everything a tick can change through its asset, so the
cost of a tick grows with the number of exchanges quoting that asset and
never with the number of assets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from signals_app.contracts.spread import cost_per_unit, proceeds_per_unit
from signals_app.contracts.symbols import base_of, quote_of
from signals_app.contracts.tick import Levels, Tick

# A forgotten pick's `until`: before every clock, so that it never holds.
FORGOTTEN = float("-inf")


class Quote:
    """The latest best bid/ask of one market; updated in place on each quote or book tick.

    `bids` and `asks` are the levels (best first) of the market's latest book tick, received at
    `book_recv_ms`, or None when it never had one. `book_is_top` says whether that book tick is
    also the newest tick: when a quote tick came after it, the top beside the levels is newer
    than they are, and `ask_levels`/`bid_levels` give the newer top followed by only the book's
    levels behind it (a level better than the newer top is never walked).
    """

    __slots__ = (
        "ask",
        "ask_size",
        "asks",
        "bid",
        "bid_size",
        "bids",
        "book_is_top",
        "book_recv_ms",
        "exchange",
        "quote_currency",
        "recv_ms",
        "recv_ns",
        "symbol",
    )

    def __init__(self, exchange: str, symbol: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.quote_currency = quote_of(symbol)
        self.bid = 0.0
        self.ask = 0.0
        self.bid_size: float | None = None
        self.ask_size: float | None = None
        self.recv_ms = 0
        self.recv_ns = 0
        self.bids: Levels | None = None
        self.asks: Levels | None = None
        self.book_recv_ms = 0
        self.book_is_top = False

    def update(self, tick: Tick) -> None:
        self.bid = tick.bid  # type: ignore[assignment]  # a quote tick always has both sides
        self.ask = tick.ask  # type: ignore[assignment]
        self.bid_size = tick.bid_size
        self.ask_size = tick.ask_size
        self.recv_ns = tick.recv_ns
        self.recv_ms = tick.recv_ns // 1_000_000
        bids = tick.bids
        if bids is not None:
            self.bids = bids
            self.asks = tick.asks
            self.book_recv_ms = self.recv_ms
            self.book_is_top = True
        else:
            self.book_is_top = False

    def forget_levels(self) -> None:
        """The market's book is gone (its feed went down, its venue dropped it): the top only."""
        self.bids = self.asks = None
        self.book_is_top = False

    def ask_levels(self, oldest_ms: int) -> Iterable[Sequence[float]] | None:
        """The asks a walk may take, best first: None without a book received at `oldest_ms` or later."""
        if self.asks is None or self.book_recv_ms < oldest_ms:
            return None
        return self.asks if self.book_is_top else _behind(self.asks, self.ask, self.ask_size, 1.0)

    def bid_levels(self, oldest_ms: int) -> Iterable[Sequence[float]] | None:
        """The bids a walk may take, best first: None without a book received at `oldest_ms` or later."""
        if self.bids is None or self.book_recv_ms < oldest_ms:
            return None
        return self.bids if self.book_is_top else _behind(self.bids, self.bid, self.bid_size, -1.0)


def _behind(levels: Levels, top: float, size: float | None, worse: float) -> Behind | None:
    """A newer top (`top`, `size`) followed by the levels of an older book that lie behind it;
    `worse` is 1.0 for asks (behind: a higher price), -1.0 for bids. None when the top has no size."""
    if size is None:
        return None
    start = 0
    for price, _ in levels:  # skip the levels at or better than the newer top: usually none or one
        if (price - top) * worse > 0.0:
            break
        start += 1
    return Behind((top, size), levels, start)


class Behind:
    """A newer top followed by a book's levels from `start` on: iterable as often as needed, no copy."""

    __slots__ = ("levels", "start", "top")

    def __init__(self, top: tuple[float, float], levels: Levels, start: int) -> None:
        self.top = top
        self.levels = levels
        self.start = start

    def __iter__(self) -> Iterator[Sequence[float]]:
        yield self.top
        yield from islice(self.levels, self.start, None)


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

    def reprice(self) -> None:
        """The same markets at their new prices (the same rates)."""
        self.cost = cost_per_unit(self.ask.ask, self.ask_rate, self.fee)
        self.proceeds = proceeds_per_unit(self.bid.bid, self.bid_rate, self.fee)


class Pick:
    """An exchange's `Best` in one quote group as the engine last chose it, and when that choice
    still holds without choosing again: at every clock from `since` to `until` (inclusive), as long
    as none of the exchange's markets in the group changes (each change forgets the pick, see
    `GroupBook.forget`) and, when `rates` is not None, the live rates are those of `rates`.

    `best` is None when no market took part (none fresh, or none with a fresh rate).
    """

    __slots__ = ("best", "rates", "since", "until")

    def __init__(
        self, best: Best | None, since: int, until: float, rates: dict[str, float | None] | None = None
    ) -> None:
        self.best = best
        self.since = since
        self.until = until
        # Every live rate when it was chosen, where a fresh market's quote currency has one; never mutated.
        self.rates = rates


class GroupBook:
    """One asset's markets within one quote group: exchange -> its markets (usually one), and the
    engine's current pick of each exchange's best markets among them."""

    __slots__ = ("key", "picks", "venues")

    def __init__(self, key: str) -> None:
        self.key = key
        self.venues: dict[str, list[Quote]] = {}
        self.picks: dict[str, Pick] = {}

    def forget(self, exchange: str) -> None:
        """One of the exchange's markets here changed: its pick is chosen again when next needed
        (the pick stays, so that a lone market's choice can keep its objects)."""
        pick = self.picks.get(exchange)
        if pick is not None:
            pick.until = FORGOTTEN


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
        pick = entry[2].picks.get(tick.exchange)  # GroupBook.forget, inline: this is every tick's path
        if pick is not None:
            pick.until = FORGOTTEN
        return entry

    def get(self, exchange: str, symbol: str) -> tuple[Quote, AssetBook, GroupBook] | None:
        """The market's slot, asset book and group book; None when it never had a quote."""
        return self._quotes.get((exchange, symbol))

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
            group.picks.pop(exchange, None)  # its markets are gone with it
            markets = group.venues[exchange]
            markets.remove(slot)
            if not markets:
                del group.venues[exchange]
                if not any(exchange in other.venues for other in asset_book.groups.values()):
                    asset_book.exchanges.pop(exchange, None)
