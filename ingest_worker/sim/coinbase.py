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
Other channels (level2, matches, ...) are refused with an error: the simulator
does not produce them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

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
SERVED_CHANNELS = (TICKER, HEARTBEAT)
SUBSCRIBE_TIMEOUT_S = 5.0


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


class CoinbaseFrames:
    """The wire state of the simulated Coinbase products and their frames."""

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        rng = random.Random(f"coinbase-frames-{seed}")
        self._rng = rng
        self.products: dict[str, ProductState] = {}
        self.iso = IsoTime()
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
                new_tickers = self._join(client, wanted)
                answers = [client.subscriptions()]
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

    def _join(self, client: CoinbaseClient, wanted: dict[str, list[str] | None]) -> list[str]:
        """Add the subscriptions; the products newly on the ticker channel."""
        new_tickers: list[str] = []
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
                index.setdefault(product, set()).add(client.connection)
        self.set_subscribed(client.connection, any(client.channels.values()))
        if added:
            log.info("%s: client %s subscribed to %s", self.name, peer_name(client.connection), ", ".join(added))
        return new_tickers

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
