"""The Coinbase Exchange dialect: the `ws-feed` protocol and `GET /products`.

As `wss://ws-feed.exchange.coinbase.com` does, on path `/`:

- the client must subscribe within 5 seconds or is disconnected;
  `{"type":"subscribe","product_ids":[..],"channels":["ticker","heartbeat"]}` (channels
  may also be objects `{"name":"ticker","product_ids":[..]}`) is answered with a
  `subscriptions` message listing every channel of the connection and its
  products; later subscribes add to it; `unsubscribe` has the same shape (a
  channel named without products is left entirely) and is answered the same way;
- a bad request gets `{"type":"error","message":"..","reason":".."}` and the
  connection stays open; the whole request fails when one product or channel is unknown;
- `ticker`: one frame per top-of-book change, in Coinbase's field order (type,
  sequence, product_id, price, open_24h, volume_24h, low_24h, high_24h,
  volume_30d, best_bid, best_bid_size, best_ask, best_ask_size, side, time,
  trade_id, last_size), reporting the last trade; on subscribing, the current
  ticker of each product is sent at once, as Coinbase does (with its own, older, time);
- `heartbeat`: every second per subscribed product,
  `{"type":"heartbeat","last_trade_id":..,"product_id":..,"sequence":..,"time":..}`.

Numbers are formatted as Coinbase prints them: prices with the product's quote
increment (`"2467.80"`), sizes and volumes with 8 decimals, the 24 h statistics
and `last_size` without trailing zeros, times as `2024-01-19T12:00:01.234567Z`.
Sequence numbers jump, as on the real feed: they count every message of the
product, on every channel, not only the ticker frames a client sees.
- `level2_batch` and `level2`: on subscribing, a product's whole book,
  `{"type":"snapshot","product_id":..,"bids":[["price","size"],..],"asks":[..],"time":..}`
  (BOOK_LEVELS levels a side, from ingest_worker/sim/depth.py: its top is the ticker's), then
  `{"type":"l2update","product_id":..,"changes":[["buy"|"sell","price","size"],..],"time":..}`
  with the levels that changed ("0" removes one): `level2_batch` at most every 50 ms, as
  Coinbase batches it, `level2` every model step (5 ms) in which the book changed. The ticker of
  an update goes out before the book update of the same step, so a client reading both never
  holds a book whose top is older than the ticker before it. A client that missed updates (a
  `/sim/silence`; the stream has no sequence number to tell it) gets a new snapshot when data
  flows again.

`fault(product, kind)` (`/sim/fault?venue=coinbase&market=BTC-USD&kind=...`) sends the
product's level2 subscribers one `l2update` the server's book does not hold: `crossed`, a bid
half a percent above the best ask (what a book that missed an update looks like), or
`bad_level`, a level whose price is not a number. The server's book is unchanged: a fresh
subscription gets it right.
Other channels (matches, full, ...) are refused with an error: the simulator does not produce them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ingest_worker.sim.depth import IncrementalSide, Levels, book_levels
from ingest_worker.sim.model import COINBASE, Market, Quote, profile_of
from ingest_worker.sim.replay import ReplayRules, as_recorded
from ingest_worker.sim.venue import IsoTime, VenueServer, json_text, log, peer_name
from ingest_worker.venues import coinbase as coinbase_venue
from ingest_worker.venues.coinbase import split_product

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = COINBASE
TICKER = coinbase_venue.CHANNELS["quote"]  # "ticker"
HEARTBEAT = coinbase_venue.CHANNELS["heartbeat"]  # "heartbeat"
LEVEL2_BATCH = "level2_batch"
LEVEL2 = "level2"
# book channel -> at most one l2update per product this often (0: every model step with a change)
BOOK_CHANNELS = {LEVEL2_BATCH: 50_000_000, LEVEL2: 0}
SERVED_CHANNELS = (TICKER, HEARTBEAT, *BOOK_CHANNELS)
SUBSCRIBE_TIMEOUT_S = 5.0
BOOK_LEVELS = 50  # levels a side of a product's book
FAULT_SHIFT = 200  # a crossed fault's bid lies best ask / FAULT_SHIFT above the best ask (half a percent)


def fixed(units: int, decimals: int) -> str:
    """An integer count of 10^-decimals with exactly `decimals` decimals: 246780, 2 -> `2467.80`."""
    whole, fraction = divmod(units, 10**decimals)
    return f"{whole}.{fraction:0{decimals}d}" if decimals else str(whole)


def trimmed(units: int, decimals: int) -> str:
    """As `fixed`, without trailing zeros: `2467.8`, `40600`."""
    text = fixed(units, decimals)
    return text.rstrip("0").rstrip(".") if "." in text else text


def error_message(message: str, reason: str) -> str:
    return json_text({"type": "error", "message": message, "reason": reason})


@dataclass
class ProductState:
    """What a product's ticker and heartbeat report: its top of book, last trade and 24 h statistics."""

    market: Market
    sequence: int
    trade_id: int
    open_24h: int  # ticks
    low_24h: int
    high_24h: int
    volume_24h: float
    volume_30d: float
    bid: int = 0
    ask: int = 0
    bid_size: int = 0
    ask_size: int = 0
    price: int = 0  # last trade, ticks
    last_size: int = 0  # lots
    side: str = "buy"
    time_ns: int = 0  # of the last update
    quoted: bool = False


@dataclass
class BookFeed:
    """One product's book on one level2 channel while someone listens: what its clients hold."""

    sides: tuple[IncrementalSide, IncrementalSide]
    pushed_sequence: int  # the product's sequence at the last update sent
    pushed_ns: int = 0


class CoinbaseFrames:
    """The wire state of the simulated Coinbase products and their frames."""

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        rng = random.Random(f"coinbase-frames-{seed}")
        self._rng = rng
        self.products: dict[str, ProductState] = {}
        self.iso = IsoTime()
        self.latest: dict[str, Quote] = {}  # product -> its latest quote: the book is the one behind it
        for market in markets:
            profile = profile_of(market)
            scale = market.price_scale
            start = profile.start_price
            open_24h = max(1, round(start * rng.uniform(0.98, 1.02) * scale))
            volume_24h = profile.typical_size * rng.uniform(8_000, 20_000)
            self.products[market.native] = ProductState(
                market=market,
                sequence=rng.randrange(1_000_000_000, 80_000_000_000),
                trade_id=rng.randrange(10_000_000, 600_000_000),
                open_24h=open_24h,
                low_24h=max(1, round(min(open_24h, start * scale) * rng.uniform(0.96, 0.99))),
                high_24h=round(max(open_24h, start * scale) * rng.uniform(1.01, 1.04)),
                volume_24h=volume_24h,
                volume_30d=volume_24h * rng.uniform(25.0, 35.0),
            )

    def update(self, quote: Quote) -> ProductState:
        """Apply a market update to its product's state."""
        state = self.products[quote.market.native]
        state.sequence += 1 + int(self._rng.random() * 40)  # the product's other messages count too
        state.bid = quote.bid
        state.ask = quote.ask
        state.bid_size = quote.bid_size
        state.ask_size = quote.ask_size
        state.time_ns = quote.time_ns
        state.quoted = True
        self.latest[quote.market.native] = quote
        trade = quote.trade
        if trade is not None:
            state.trade_id += 1
            state.price = trade.price
            state.last_size = trade.size
            state.side = trade.taker_side
            size = trade.size / quote.market.size_scale
            state.volume_24h += size
            state.volume_30d += size
            if trade.price < state.low_24h:
                state.low_24h = trade.price
            if trade.price > state.high_24h:
                state.high_24h = trade.price
        return state

    def ticker(self, state: ProductState) -> str:
        market = state.market
        d = market.price_decimals
        s = market.size_decimals
        return (
            f'{{"type":"ticker","sequence":{state.sequence},"product_id":"{market.native}",'
            f'"price":"{fixed(state.price, d)}","open_24h":"{trimmed(state.open_24h, d)}",'
            f'"volume_24h":"{state.volume_24h:.8f}","low_24h":"{trimmed(state.low_24h, d)}",'
            f'"high_24h":"{trimmed(state.high_24h, d)}","volume_30d":"{state.volume_30d:.8f}",'
            f'"best_bid":"{fixed(state.bid, d)}","best_bid_size":"{fixed(state.bid_size, s)}",'
            f'"best_ask":"{fixed(state.ask, d)}","best_ask_size":"{fixed(state.ask_size, s)}",'
            f'"side":"{state.side}","time":"{self.iso(state.time_ns)}","trade_id":{state.trade_id},'
            f'"last_size":"{trimmed(state.last_size, s)}"}}'
        )

    def book(self, product: str) -> tuple[Levels, Levels]:
        """The product's book now (empty before its first quote)."""
        quote = self.latest.get(product)
        return book_levels(quote, BOOK_LEVELS) if quote is not None else ([], [])

    def snapshot(self, product: str, bids: Levels, asks: Levels, now_ns: int) -> str:
        market = self.products[product].market
        d, s = market.price_decimals, market.size_decimals
        listed_bids = ",".join(f'["{fixed(p, d)}","{fixed(q, s)}"]' for p, q in bids)
        listed_asks = ",".join(f'["{fixed(p, d)}","{fixed(q, s)}"]' for p, q in asks)
        return (
            f'{{"type":"snapshot","product_id":"{product}","bids":[{listed_bids}],"asks":[{listed_asks}],'
            f'"time":"{self.iso(now_ns)}"}}'
        )

    def l2update(self, product: str, changes: Iterable[tuple[str, int, int]], now_ns: int) -> str:
        market = self.products[product].market
        d, s = market.price_decimals, market.size_decimals
        listed = ",".join(f'["{side}","{fixed(p, d)}","{fixed(q, s)}"]' for side, p, q in changes)
        return f'{{"type":"l2update","product_id":"{product}","changes":[{listed}],"time":"{self.iso(now_ns)}"}}'

    def heartbeat(self, state: ProductState, now_ns: int) -> str:
        return (
            f'{{"type":"heartbeat","last_trade_id":{state.trade_id},"product_id":"{state.market.native}",'
            f'"sequence":{state.sequence},"time":"{self.iso(now_ns)}"}}'
        )


class CoinbaseClient:
    """One connection's channels and their products, in subscription order."""

    __slots__ = ("channels", "connection")

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.channels: dict[str, dict[str, None]] = {}

    def subscriptions(self) -> str:
        channels = [{"name": name, "product_ids": list(products)} for name, products in self.channels.items()]
        return json_text({"type": "subscriptions", "channels": channels})


class RequestError(ValueError):
    """A subscribe or unsubscribe the venue refuses; becomes an `error` message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason


class CoinbaseServer(VenueServer):
    """The simulated Coinbase Exchange market-data feed."""

    name = NAME
    FAULT_KINDS = ("crossed", "bad_level")

    def __init__(
        self, markets: Sequence[Market], seed: int = 0, *, subscribe_timeout_s: float = SUBSCRIBE_TIMEOUT_S
    ) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = CoinbaseFrames(self.markets, seed)
        self.subscribe_timeout_s = subscribe_timeout_s
        self.clients: dict[ServerConnection, CoinbaseClient] = {}
        # channel -> product -> connections; the publish path reads only these.
        self._index: dict[str, dict[str, set[ServerConnection]]] = {name: {} for name in SERVED_CHANNELS}
        # book channel -> product -> its feed (while someone listens) / connections waiting for a snapshot
        self._books: dict[str, dict[str, BookFeed]] = {name: {} for name in BOOK_CHANNELS}
        self._awaiting: dict[str, dict[str, set[ServerConnection]]] = {name: {} for name in BOOK_CHANNELS}

    # --- HTTP ---------------------------------------------------------------------------
    def accepts_path(self, path: str) -> bool:
        return path == "/"

    def rest(self, path: str, query: dict[str, list[str]], now_ns: int) -> tuple[int, object] | None:
        if path == coinbase_venue.PRODUCTS_PATH:
            return 200, [_product_info(m) for m in self.markets]
        if path.startswith(coinbase_venue.PRODUCTS_PATH + "/"):
            product_id = path[len(coinbase_venue.PRODUCTS_PATH) + 1 :]
            for market in self.markets:
                if market.native == product_id:
                    return 200, _product_info(market)
            return 404, {"message": "NotFound"}
        if path == "/time":
            return 200, {"iso": self.frames.iso(now_ns), "epoch": now_ns / 1e9}
        return None

    # --- WebSocket ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        client = CoinbaseClient(connection)
        self.clients[connection] = client
        self.connected(connection)
        try:
            try:
                async with asyncio.timeout(self.subscribe_timeout_s):
                    first = await connection.recv()
            except TimeoutError:
                log.info(
                    "%s: client %s sent no subscribe within %g s: closed",
                    self.name,
                    peer_name(connection),
                    self.subscribe_timeout_s,
                )
                await connection.close(1008, "no subscribe message")
                return
            await self._answer(client, first)
            async for message in connection:
                await self._answer(client, message)
        except ConnectionClosed:
            pass
        finally:
            self._leave(client, dict.fromkeys(client.channels), quiet=True)
            del self.clients[connection]
            self.disconnected(connection)

    async def _answer(self, client: CoinbaseClient, message: str | bytes) -> None:
        answers = self.on_message(client, message)
        for answer in answers:
            await client.connection.send(answer)

    def on_message(self, client: CoinbaseClient, message: str | bytes) -> list[str]:
        """The frames answering one client message: `subscriptions` (then snapshot tickers) or an `error`."""
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return [error_message("Malformed JSON", str(exc))]
        if not isinstance(request, dict):
            return [error_message("Malformed JSON", "a message must be a JSON object")]
        kind = request.get("type")
        try:
            if kind == "subscribe":
                wanted = self._requested(request)
                new_tickers, new_books = self._join(client, wanted)
                answers = [client.subscriptions()]
                for channel, product in new_books:
                    # Coinbase opens a book subscription with the product's snapshot.
                    self._awaiting[channel].setdefault(product, set()).add(client.connection)
                self._snapshots(time.time_ns())  # queued: they follow these answers at the next flush
                # Coinbase sends each newly subscribed product's current ticker right away.
                if not self.silent_until_ns:
                    for product in new_tickers:
                        state = self.frames.products[product]
                        if state.quoted:
                            answers.append(self.frames.ticker(state))
                return answers
            if kind == "unsubscribe":
                self._leave(client, self._requested(request, unsubscribe=True))
                return [client.subscriptions()]
        except RequestError as exc:
            return [error_message(exc.message, exc.reason)]
        return [error_message("Failed to subscribe", "Type has to be either subscribe or unsubscribe")]

    def _requested(self, request: dict[str, Any], unsubscribe: bool = False) -> dict[str, list[str] | None]:
        """channel -> products named by a (un)subscribe request; None: the whole channel (unsubscribe only)."""
        failed = "Failed to unsubscribe" if unsubscribe else "Failed to subscribe"
        shared = request.get("product_ids")
        if shared is not None and not _strings(shared):
            raise RequestError(failed, "product_ids must be an array of product ids")
        channels = request.get("channels")
        if not isinstance(channels, list) or not channels:
            raise RequestError(failed, "channels must be a non-empty array")
        known = {m.native for m in self.markets}
        wanted: dict[str, list[str] | None] = {}
        for channel in channels:
            if isinstance(channel, str):
                name, products = channel, shared
            elif isinstance(channel, dict) and isinstance(channel.get("name"), str):
                name, products = channel["name"], channel.get("product_ids", shared)
                if products is not None and not _strings(products):
                    raise RequestError(failed, f"{name}: product_ids must be an array of product ids")
            else:
                raise RequestError(failed, "a channel is a name or an object with a name")
            if name not in SERVED_CHANNELS:
                raise RequestError(failed, f"{name} is not a valid channel")
            if not products:
                if not unsubscribe:
                    raise RequestError(failed, f"{name}: no product ids given")
                wanted[name] = None  # leave the whole channel
                continue
            for product in products:
                if product not in known:
                    raise RequestError(failed, f"{product} is not a valid product")
            if name in wanted and wanted[name] is None:
                continue
            merged = wanted.get(name) or []
            wanted[name] = merged + [p for p in products if p not in merged]
        return wanted

    def _join(
        self, client: CoinbaseClient, wanted: dict[str, list[str] | None]
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Add the subscriptions; the products newly on the ticker channel, and the (book channel, product) new."""
        new_tickers: list[str] = []
        new_books: list[tuple[str, str]] = []
        added: list[str] = []
        for name, products in wanted.items():
            current = client.channels.setdefault(name, {})
            index = self._index[name]
            for product in products or ():
                if product not in current:
                    current[product] = None
                    added.append(f"{name}:{product}")
                    if name == TICKER:
                        new_tickers.append(product)
                    elif name in BOOK_CHANNELS:
                        new_books.append((name, product))
                index.setdefault(product, set()).add(client.connection)
        self.set_subscribed(client.connection, any(client.channels.values()))
        if added:
            log.info("%s: client %s subscribed to %s", self.name, peer_name(client.connection), ", ".join(added))
        return new_tickers, new_books

    def _leave(self, client: CoinbaseClient, wanted: dict[str, list[str] | None], quiet: bool = False) -> None:
        removed: list[str] = []
        for name, products in wanted.items():
            current = client.channels.get(name)
            if current is None:
                continue
            index = self._index[name]
            for product in list(current) if products is None else products:
                if product in current:
                    del current[product]
                    removed.append(f"{name}:{product}")
                listeners = index.get(product)
                if listeners is not None:
                    listeners.discard(client.connection)
                    if not listeners:
                        del index[product]
                        if name in BOOK_CHANNELS:
                            self._books[name].pop(product, None)
                if name in BOOK_CHANNELS:
                    waiting = self._awaiting[name].get(product)
                    if waiting is not None:
                        waiting.discard(client.connection)
                        if not waiting:
                            del self._awaiting[name][product]
            if not current:
                del client.channels[name]
        self.set_subscribed(client.connection, any(client.channels.values()))
        if removed and not quiet:
            log.info("%s: client %s unsubscribed from %s", self.name, peer_name(client.connection), ", ".join(removed))

    # --- market data ----------------------------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Apply the updates; queue a ticker frame (built once) per update for its subscribers."""
        listeners_of = self._index[TICKER]
        frames = self.frames
        outbox = self.outbox
        for quote in quotes:
            state = frames.update(quote)
            if silent:
                continue
            listeners = listeners_of.get(quote.market.native)
            if listeners:
                outbox.add(listeners, frames.ticker(state).encode())

    def _snapshots(self, now_ns: int) -> None:
        """The snapshots due to the clients waiting for one (of quoted products; none while silent),
        each sent once per product and channel; the feed follows what they hold from now on."""
        if self.silent_until_ns:
            return
        frames = self.frames
        for channel, waiting in self._awaiting.items():
            feeds = self._books[channel]
            for product in [p for p in waiting if p in frames.latest]:
                bids, asks = frames.book(product)
                snapshot = frames.snapshot(product, bids, asks, now_ns)
                self.outbox.add(waiting.pop(product), snapshot.encode())
                feed = feeds.get(product)
                if feed is None:
                    sides = (IncrementalSide(dict(bids)), IncrementalSide(dict(asks)))
                    feeds[product] = BookFeed(sides, frames.products[product].sequence, now_ns)
                else:
                    feed.sides[0].served(dict(bids))
                    feed.sides[1].served(dict(asks))

    def due(self, now_ns: int, silent: bool) -> None:
        """Each level2 channel's updates of the products that changed (at most one per product and
        BOOK_CHANNELS interval), after the snapshots due; while silent, the clients miss them and
        wait for a new snapshot."""
        frames = self.frames
        outbox = self.outbox
        for channel, feeds in self._books.items():
            if silent:
                for product in list(feeds):
                    self._awaiting[channel].setdefault(product, set()).update(self._index[channel].get(product, ()))
                    del feeds[product]
                continue
            interval_ns = BOOK_CHANNELS[channel]
            listeners_of = self._index[channel]
            for product, feed in feeds.items():
                sequence = frames.products[product].sequence
                if sequence == feed.pushed_sequence or now_ns - feed.pushed_ns < interval_ns:
                    continue
                feed.pushed_sequence = sequence
                feed.pushed_ns = now_ns
                bids, asks = frames.book(product)
                changes = [("buy", p, q) for p, q in feed.sides[0].changes(dict(bids))]
                changes += [("sell", p, q) for p, q in feed.sides[1].changes(dict(asks))]
                listeners = listeners_of.get(product)
                if changes and listeners:
                    outbox.add(listeners, frames.l2update(product, changes, now_ns).encode())
        if not silent and any(self._awaiting.values()):
            self._snapshots(now_ns)

    def fault(self, market: str, kind: str) -> dict[str, Any]:
        if market not in self.frames.products:
            raise ValueError(f"coinbase lists no {market!r}; products: {', '.join(self.frames.products)}")
        if kind not in self.FAULT_KINDS:
            raise ValueError(f"kind must be one of: {', '.join(self.FAULT_KINDS)}")
        if market not in self.frames.latest:
            raise ValueError(f"{market} has no book yet")
        state = self.frames.products[market]
        now_ns = time.time_ns()
        if kind == "crossed":
            frame = self.frames.l2update(market, [("buy", state.ask + max(1, state.ask // FAULT_SHIFT), 1)], now_ns)
        else:
            frame = self.frames.l2update(market, [], now_ns).replace('"changes":[]', '"changes":[["sell","NaN","1"]]')
        listeners = {c for channel in BOOK_CHANNELS for c in self._index[channel].get(market, ())}
        listeners -= {c for channel in BOOK_CHANNELS for c in self._awaiting[channel].get(market, ())}
        self.outbox.add(listeners, frame.encode())
        self.flush()
        log.info("%s: fault %s sent to %d client(s) of %s", self.name, kind, len(listeners), market)
        return {"venue": self.name, "market": market, "kind": kind, "clients": len(listeners), "frame": frame}

    def heartbeat(self, now_ns: int, silent: bool) -> None:
        """Queue one heartbeat per subscribed product."""
        if silent:
            return
        frames = self.frames
        for product, listeners in self._index[HEARTBEAT].items():
            if listeners:
                self.outbox.add(listeners, frames.heartbeat(frames.products[product], now_ns).encode())

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["channels"] = {name: sorted(products) for name, products in self._index.items() if products}
        return status


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _product_info(market: Market) -> dict[str, object]:
    return {
        "id": market.native,
        "base_currency": market.asset,
        "quote_currency": market.quote,
        "quote_increment": fixed(1, market.price_decimals),
        "base_increment": fixed(1, market.size_decimals),
        "display_name": f"{market.asset}-{market.quote}",
        "min_market_funds": "1",
        "margin_enabled": False,
        "post_only": False,
        "limit_only": False,
        "cancel_only": False,
        "status": "online",
        "status_message": "",
        "trading_disabled": False,
        "fx_stablecoin": False,
        "max_slippage_percentage": "0.02000000",
        "auction_mode": False,
        "high_bid_limit_percentage": "",
    }


def dialect(markets: Sequence[Market], config: SimConfig) -> VenueServer:
    """The simulator's registry entry (ingest_worker/sim/server.py finds it beside the venue's name)."""
    return CoinbaseServer(markets, config.seed, subscribe_timeout_s=config.subscribe_timeout_s)


# --- how `--replay` reads a capture of this venue (ingest_worker/sim/replay.py) ----------
def _coinbase_answer(msg: object) -> bool:
    return isinstance(msg, dict) and msg.get("type") == "subscriptions"


def _coinbase_names(msg: object) -> Iterator[str]:
    native = msg.get("product_id") if isinstance(msg, dict) else None
    if isinstance(native, str):
        yield native


REPLAY = ReplayRules(_coinbase_answer, _coinbase_names, as_recorded(split_product))
