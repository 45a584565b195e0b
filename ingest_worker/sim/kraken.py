"""The Kraken spot WebSocket v2 dialect (`ticker`, `trade`, `book`) and `GET /0/public/AssetPairs`.

As `wss://ws.kraken.com/v2` does:

- on connect, a `status` message: `{"channel":"status","type":"update","data":[{"api_version":"v2",
  "connection_id":..,"system":"online","version":"2.0.0"}]}`;
- `{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/USD",..],..},"req_id":1}` is
  answered once per symbol with `{"method":"subscribe","result":{"channel":..,..,"symbol":"BTC/USD"},
  "success":true,"time_in":"..","time_out":"..","req_id":1}`; `unsubscribe` likewise. A symbol or
  channel the venue does not have gets `{"error":"..","method":"subscribe","req_id":..,"success":false,
  "symbol":..,"time_in":..,"time_out":..}`; the connection stays open.
- `ticker`: a `snapshot` of each symbol on subscribing (with `"snapshot": true`, the default),
  then an `update` on every change of the best bid/offer: `{"channel":"ticker","type":"update",
  "data":[{"symbol","bid","bid_qty","ask","ask_qty","last","volume","vwap","low","high","change",
  "change_pct"}]}`, numbers as JSON numbers;
- `trade`: `{"channel":"trade","type":"update","data":[{"symbol","side","price","qty","ord_type",
  "trade_id","timestamp"}]}`, the time in RFC 3339 with microseconds;
- `book` (depth 25, the one depth served; another gets an error): a `snapshot` of the pair's
  book on subscribing, then an `update` with the levels that changed on every quote:
  `{"channel":"book","type":"update","data":[{"symbol","bids":[{"price","qty"}],"asks":[..],
  "checksum","timestamp"}]}`, numbers as JSON numbers at the pair's precision (`0.00100000`,
  trailing zeros kept, as Kraken's checksum guide has it), qty 0 removing a level, and the
  CRC32 checksum of the top ten asks then bids (sim/depth.py gives the levels; level 0 is the
  ticker's top, so book and ticker always agree). A client that misses updates (a
  `/sim/silence`) gets a fresh snapshot when data flows again; leaving the book
  (`unsubscribe`) and subscribing again brings a new snapshot at once;
- `{"channel":"heartbeat"}` every second to a subscribed connection; `{"method":"ping","req_id":N}`
  is answered with `{"method":"pong","req_id":N,"time_in":..,"time_out":..}`.

`fault(symbol, kind)` (`/sim/fault?venue=kraken&market=BTC/USD&kind=...`) sends the symbol's
book subscribers one `update` their book cannot take, the server's own book unchanged (a
resubscription gets it right): `gap`, a level the server's book does not hold with the
checksum of the server's book (what a client sees after a missed update: Kraken's book has
no sequence numbers, the checksum tells); `bad_checksum`, the best bid restated with a wrong
checksum; `crossed`, a bid half a percent above the best ask (with the checksum of the book
it makes: the crossing, not the checksum, gives it away).

Symbols on the v2 wire are canonical (`BTC/USD`); the REST pair list keeps Kraken's legacy
names (`XXBTZUSD`, wsname `XBT/USD`), as the live one does.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ingest_worker.sim.coinbase import fixed, trimmed
from ingest_worker.sim.depth import next_book
from ingest_worker.sim.model import KRAKEN, Market, Quote, profile_of
from ingest_worker.sim.replay import ReplayRules
from ingest_worker.sim.venue import BookSubscribers, IsoTime, VenueServer, json_text, log, peer_name
from ingest_worker.venues import kraken as kraken_venue
from signals_app.contracts.symbols import canonical

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = KRAKEN
TICKER = kraken_venue.CHANNELS["quote"]  # "ticker"
TRADE = kraken_venue.CHANNELS["trade"]  # "trade"
BOOK = kraken_venue.CHANNELS["book"]  # "book"
SERVED_CHANNELS = (TICKER, TRADE, BOOK)
BOOK_DEPTH = kraken_venue.BOOK_DEPTH  # 25: the depth the live client subscribes to, the one served
CHECKSUM_LEVELS = 10
HEARTBEAT = b'{"channel":"heartbeat"}'
# Kraken's own names of the assets it listed before 2018: X-prefixed (XXBT), fiat Z-prefixed (ZUSD).
LEGACY_ASSETS = {"BTC": "XBT", "ETH": "ETH", "XRP": "XRP", "LTC": "LTC", "XLM": "XLM", "ETC": "ETC", "DOGE": "XDG"}
LEGACY_FIAT = ("USD", "EUR", "GBP", "CAD", "JPY")


@dataclass
class PairState:
    """What a pair's ticker reports: top of book, last trade, 24 h statistics (ticks, lots)."""

    market: Market
    trade_id: int
    open_24h: int
    low_24h: int
    high_24h: int
    volume: float  # base asset, 24 h
    vwap: float
    bid: int = 0
    ask: int = 0
    bid_size: int = 0
    ask_size: int = 0
    last: int = 0
    quoted: bool = False
    bids: dict[int, int] = field(default_factory=dict)  # the book: price ticks -> size lots, best first
    asks: dict[int, int] = field(default_factory=dict)


class KrakenFrames:
    """The wire state of the simulated Kraken pairs and their messages."""

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        rng = random.Random(f"kraken-frames-{seed}")
        self.iso = IsoTime()
        self.pairs: dict[str, PairState] = {}
        for market in markets:
            profile = profile_of(market)
            start = profile.start_price * market.price_scale
            self.pairs[market.native] = PairState(
                market=market,
                trade_id=rng.randrange(1_000_000, 90_000_000),
                open_24h=max(1, round(start * rng.uniform(0.98, 1.02))),
                low_24h=max(1, round(start * rng.uniform(0.95, 0.98))),
                high_24h=round(start * rng.uniform(1.02, 1.05)),
                volume=profile.typical_size * rng.uniform(2_000, 6_000),
                vwap=profile.start_price * rng.uniform(0.99, 1.01),
                last=max(1, round(start)),
            )

    def update(self, quote: Quote) -> tuple[PairState, str | None]:
        """Apply a quote: the pair's state and its book `update` (None: the book did not change)."""
        state = self.pairs[quote.market.native]
        state.bid, state.ask = quote.bid, quote.ask
        state.bid_size, state.ask_size = quote.bid_size, quote.ask_size
        state.quoted = True
        state.bids, state.asks, bid_changes, ask_changes = next_book(quote, BOOK_DEPTH, state.bids, state.asks)
        book = None
        if bid_changes or ask_changes:
            book = self.book(state, "update", bid_changes, ask_changes, self.checksum(state), quote.time_ns)
        trade = quote.trade
        if trade is not None:
            state.trade_id += 1
            state.last = trade.price
            state.volume += trade.size / quote.market.size_scale
            state.low_24h = min(state.low_24h, trade.price)
            state.high_24h = max(state.high_24h, trade.price)
        return state, book

    def book(
        self,
        state: PairState,
        kind: str,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        checksum: int,
        time_ns: int | None,
    ) -> str:
        """A `book` message of these levels (a snapshot's time is left out, as Kraken's older ones)."""
        market = state.market
        d, s = market.price_decimals, market.size_decimals

        def listed(levels: Iterable[tuple[int, int]]) -> str:
            return ",".join(f'{{"price":{fixed(p, d)},"qty":{fixed(q, s)}}}' for p, q in levels)

        stamp = "" if time_ns is None else f',"timestamp":"{self.iso(time_ns)}"'
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{market.native}","bids":[{listed(bids)}],'
            f'"asks":[{listed(asks)}],"checksum":{checksum}{stamp}}}]}}'
        )

    def snapshot(self, state: PairState) -> str:
        bids, asks = sorted(state.bids.items(), reverse=True), sorted(state.asks.items())
        return self.book(state, "snapshot", bids, asks, self.checksum(state), None)

    def checksum(self, state: PairState, bids: dict[int, int] | None = None, asks: dict[int, int] | None = None) -> int:
        """Kraken's CRC32 of the top ten asks then bids, of the pair's book or of these sides."""
        market = state.market
        d, s = market.price_decimals, market.size_decimals
        bids = state.bids if bids is None else bids
        asks = state.asks if asks is None else asks
        top_asks = sorted(asks.items())[:CHECKSUM_LEVELS]
        top_bids = sorted(bids.items(), reverse=True)[:CHECKSUM_LEVELS]
        text = "".join(_digits(fixed(p, d)) + _digits(fixed(q, s)) for p, q in top_asks + top_bids)
        return zlib.crc32(text.encode())

    def ticker(self, state: PairState, kind: str = "update") -> str:
        market = state.market
        d, s = market.price_decimals, market.size_decimals
        change = state.last - state.open_24h
        change_pct = round(change / state.open_24h * 100.0, 2)
        return (
            f'{{"channel":"ticker","type":"{kind}","data":[{{"symbol":"{market.native}",'
            f'"bid":{trimmed(state.bid, d)},"bid_qty":{trimmed(state.bid_size, s)},'
            f'"ask":{trimmed(state.ask, d)},"ask_qty":{trimmed(state.ask_size, s)},'
            f'"last":{trimmed(state.last, d)},"volume":{state.volume:.8f},"vwap":{state.vwap:.{d}f},'
            f'"low":{trimmed(state.low_24h, d)},"high":{trimmed(state.high_24h, d)},'
            f'"change":{_signed(change, d)},"change_pct":{change_pct}}}]}}'
        )

    def trade(self, quote: Quote) -> str:
        market = quote.market
        trade = quote.trade
        assert trade is not None
        state = self.pairs[market.native]
        return (
            f'{{"channel":"trade","type":"update","data":[{{"symbol":"{market.native}","side":"{trade.taker_side}",'
            f'"price":{trimmed(trade.price, market.price_decimals)},"qty":{trimmed(trade.size, market.size_decimals)},'
            f'"ord_type":"market","trade_id":{state.trade_id},"timestamp":"{self.iso(quote.time_ns)}"}}]}}'
        )


def _digits(text: str) -> str:
    """A number's slice of Kraken's checksum string: '.' removed, then leading zeros."""
    return text.replace(".", "").lstrip("0")


def _signed(units: int, decimals: int) -> str:
    return ("-" if units < 0 else "") + trimmed(abs(units), decimals)


class KrakenClient:
    """One connection's subscriptions, `(channel, symbol)` in subscription order."""

    __slots__ = ("connection", "subscriptions")

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.subscriptions: dict[tuple[str, str], None] = {}


class KrakenServer(VenueServer):
    """The simulated Kraken WebSocket v2 public endpoint."""

    name = NAME
    FAULT_KINDS = ("gap", "bad_checksum", "crossed")

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = KrakenFrames(self.markets, seed)
        self.clients: dict[ServerConnection, KrakenClient] = {}
        self._connection_ids = random.Random(f"kraken-connections-{seed}")
        # channel -> symbol -> connections (ticker, trade), and the book's subscribers; the publish
        # path reads only these.
        self._index: dict[str, dict[str, set[ServerConnection]]] = {TICKER: {}, TRADE: {}}
        self._books = BookSubscribers()

    # --- HTTP ---------------------------------------------------------------------------
    def accepts_path(self, path: str) -> bool:
        return path in (kraken_venue.WS_V2_PATH, kraken_venue.WS_V2_PATH + "/")

    def rest(self, path: str, query: dict[str, list[str]], now_ns: int) -> tuple[int, object] | None:
        if path == kraken_venue.ASSET_PAIRS_PATH:
            return 200, {"error": [], "result": dict(_asset_pair(m) for m in self.markets)}
        if path == "/0/public/Time":
            second = now_ns // 1_000_000_000
            return 200, {"error": [], "result": {"unixtime": second, "rfc1123": ""}}
        return None

    # --- WebSocket ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        client = KrakenClient(connection)
        self.clients[connection] = client
        self.connected(connection)
        try:
            status = {
                "channel": "status",
                "type": "update",
                "data": [
                    {
                        "api_version": "v2",
                        "connection_id": self._connection_ids.getrandbits(63),
                        "system": "online",
                        "version": "2.0.0",
                    }
                ],
            }
            await connection.send(json_text(status))
            async for message in connection:
                for answer in self.on_message(client, message, time.time_ns()):
                    await connection.send(answer)
        except ConnectionClosed:
            pass
        finally:
            self._leave(client, list(client.subscriptions), quiet=True)
            del self.clients[connection]
            self.disconnected(connection)

    def on_message(self, client: KrakenClient, message: str | bytes, now_ns: int) -> list[str]:
        """The frames answering one request: per-symbol results (then snapshots), a pong, or an error."""
        stamp = self.frames.iso(now_ns)
        times = {"time_in": stamp, "time_out": stamp}
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            return [json_text({"error": "Malformed request", "success": False, **times})]
        if not isinstance(request, dict):
            return [json_text({"error": "Malformed request", "success": False, **times})]
        method = request.get("method")
        req_id = {"req_id": request["req_id"]} if "req_id" in request else {}
        if method == "ping":
            return [json_text({"method": "pong", **req_id, **times})]
        if method not in ("subscribe", "unsubscribe"):
            return [json_text({"error": f"Method not found: {method}", "success": False, **req_id, **times})]
        params = request.get("params")
        channel = params.get("channel") if isinstance(params, dict) else None
        symbols = params.get("symbol") if isinstance(params, dict) else None
        if channel not in SERVED_CHANNELS:
            error = f"Channel {channel} not found" if isinstance(channel, str) else "Missing channel"
            return [json_text({"error": error, "method": method, "success": False, **req_id, **times})]
        if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
            error = "Missing or invalid symbol"
            return [json_text({"error": error, "method": method, "success": False, **req_id, **times})]
        assert isinstance(params, dict)
        if channel == BOOK and params.get("depth", 10) != BOOK_DEPTH:
            error = f"Unsupported depth {params.get('depth', 10)!r}: the simulator serves depth {BOOK_DEPTH}"
            return [json_text({"error": error, "method": method, "success": False, **req_id, **times})]
        snapshot = params.get("snapshot", True) is not False
        known = {m.native for m in self.markets}
        answers: list[str] = []
        snapshots: list[str] = []
        for symbol in symbols:
            if symbol not in known:
                answers.append(
                    json_text(
                        {
                            "error": f"Currency pair not supported {symbol}",
                            "method": method,
                            **req_id,
                            "success": False,
                            "symbol": symbol,
                            **times,
                        }
                    )
                )
                continue
            result: dict[str, object] = {"channel": channel}
            if channel == BOOK:
                result["depth"] = BOOK_DEPTH
            if method == "subscribe":
                if channel == TICKER:
                    result["event_trigger"] = params.get("event_trigger", "trades")
                result["snapshot"] = snapshot
            result["symbol"] = symbol
            answers.append(json_text({"method": method, "result": result, "success": True, **times, **req_id}))
            if method == "unsubscribe":
                self._leave(client, [(channel, symbol)])
            elif self._join(client, channel, symbol):
                state = self.frames.pairs[symbol]
                ready = state.quoted and not self.silent_until_ns
                if channel == TICKER and snapshot and ready:
                    snapshots.append(self.frames.ticker(state, "snapshot"))
                elif channel == BOOK:
                    # The book's updates follow its snapshot: without one (no quote yet) it waits.
                    if ready:
                        snapshots.append(self.frames.snapshot(state))
                    self._books.join(symbol, client.connection, ready)
        return answers + snapshots

    def _join(self, client: KrakenClient, channel: str, symbol: str) -> bool:
        """Subscribe; whether it is new."""
        new = (channel, symbol) not in client.subscriptions
        client.subscriptions[(channel, symbol)] = None
        if channel != BOOK:
            self._index[channel].setdefault(symbol, set()).add(client.connection)
        self.set_subscribed(client.connection, True)
        if new:
            log.info("%s: client %s subscribed to %s:%s", self.name, peer_name(client.connection), channel, symbol)
        return new

    def _leave(self, client: KrakenClient, wanted: Iterable[tuple[str, str]], quiet: bool = False) -> None:
        for channel, symbol in wanted:
            if client.subscriptions.pop((channel, symbol), 0) is None and not quiet:
                log.info(
                    "%s: client %s unsubscribed from %s:%s", self.name, peer_name(client.connection), channel, symbol
                )
            if channel == BOOK:
                self._books.leave(symbol, client.connection)
                continue
            listeners = self._index[channel].get(symbol)
            if listeners is not None:
                listeners.discard(client.connection)
                if not listeners:
                    del self._index[channel][symbol]
        self.set_subscribed(client.connection, bool(client.subscriptions))

    # --- market data ----------------------------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Queue a book update and a ticker update per top-of-book change and a trade message per
        trade, each built once; a book subscriber still waiting for its snapshot gets it."""
        tickers = self._index[TICKER]
        trades = self._index[TRADE]
        frames = self.frames
        outbox = self.outbox
        for quote in quotes:
            state, book = frames.update(quote)
            native = quote.market.native
            self._books.publish(outbox, native, silent, book, partial(frames.snapshot, state))
            if silent:
                continue
            listeners = tickers.get(native)
            if listeners:
                outbox.add(listeners, frames.ticker(state).encode())
            if quote.trade is not None:
                listeners = trades.get(native)
                if listeners:
                    outbox.add(listeners, frames.trade(quote).encode())

    def heartbeat(self, now_ns: int, silent: bool) -> None:
        """Kraken sends a heartbeat every second to a subscribed connection, even when market data stalls."""
        if self.subscribed:
            self.outbox.add(self.subscribed, HEARTBEAT)

    def fault(self, market: str, kind: str) -> dict[str, Any]:
        state = self.frames.pairs.get(market)
        if state is None:
            raise ValueError(f"kraken lists no {market!r}; markets: {', '.join(self.frames.pairs)}")
        if kind not in self.FAULT_KINDS:
            raise ValueError(f"kind must be one of: {', '.join(self.FAULT_KINDS)}")
        if not state.asks or not state.bids:
            raise ValueError(f"{state.market.native} has no book yet")
        best_bid, best_ask = max(state.bids), min(state.asks)
        if kind == "crossed":
            price = best_ask + max(1, best_ask // 200)  # half a percent above it: unmistakable in a test
            bids = {**state.bids, price: 1}
            frame = self.frames.book(state, "update", [(price, 1)], [], self.frames.checksum(state, bids=bids), None)
        elif kind == "gap":
            # A level between the two best bids (or a new size of the second), with the checksum of
            # the server's book: the client's book, once it applies the level, is not the server's.
            second = sorted(state.bids, reverse=True)[1] if len(state.bids) > 1 else best_bid - 2
            price = second + 1 if second + 1 < best_bid else second
            size = state.bids.get(price, 0) + 1
            frame = self.frames.book(state, "update", [(price, size)], [], self.frames.checksum(state), None)
        else:
            wrong = self.frames.checksum(state) ^ 1
            frame = self.frames.book(state, "update", [(best_bid, state.bids[best_bid])], [], wrong, None)
        listeners = self._books.live.get(state.market.native, set())
        return self.send_fault(state.market.native, kind, listeners, frame)

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["channels"] = {name: sorted(symbols) for name, symbols in self._index.items() if symbols}
        books = sorted(self._books.live.keys() | self._books.awaiting.keys())
        if books:
            status["channels"][BOOK] = books
        return status


def _asset_pair(market: Market) -> tuple[str, dict[str, object]]:
    """Kraken's key and description of a pair: legacy names for the assets listed before 2018."""
    base, quote = market.asset, market.quote
    legacy_base = LEGACY_ASSETS.get(base)
    ws_base = legacy_base or base
    if legacy_base is not None and quote in LEGACY_FIAT:
        key, base_code, quote_code = f"X{legacy_base}Z{quote}", f"X{legacy_base}", f"Z{quote}"
    else:
        key, base_code = f"{ws_base}{quote}", f"X{legacy_base}" if legacy_base else base
        quote_code = f"Z{quote}" if quote in LEGACY_FIAT else quote
    return key, {
        "altname": f"{ws_base}{quote}",
        "wsname": f"{ws_base}/{quote}",
        "aclass_base": "currency",
        "base": base_code,
        "aclass_quote": "currency",
        "quote": quote_code,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": market.price_decimals,
        "lot_decimals": market.size_decimals,
        "lot_multiplier": 1,
        "fees": [[0, 0.4], [10000, 0.35], [50000, 0.24]],
        "fees_maker": [[0, 0.25], [10000, 0.2], [50000, 0.14]],
        "fee_volume_currency": "ZUSD",
        "ordermin": trimmed(1, market.size_decimals),
        "costmin": "0.5",
        "tick_size": trimmed(1, market.price_decimals),
        "status": "online",
    }


def dialect(markets: Sequence[Market], config: SimConfig) -> VenueServer:
    """The simulator's registry entry (ingest_worker/sim/server.py finds it beside the venue's name)."""
    return KrakenServer(markets, config.seed)


# --- how `--replay` reads a capture of this venue (ingest_worker/sim/replay.py) ----------
def _kraken_answer(msg: object) -> bool:
    # v1 {"event":"subscriptionStatus",..}; v2 {"method":"subscribe","result":{..},"success":true,..}
    # (and their failures: an answer to the recorder's request all the same).
    return isinstance(msg, dict) and (
        msg.get("event") == "subscriptionStatus" or msg.get("method") in ("subscribe", "unsubscribe")
    )


def _kraken_names(msg: object) -> Iterator[str]:
    if isinstance(msg, list):
        # v1 data: [channelID, data..., channelName, pair]
        if len(msg) >= 4 and isinstance(msg[-2], str) and isinstance(msg[-1], str):
            yield msg[-1]
        return
    if not isinstance(msg, dict):
        return
    pair = msg.get("pair")  # v1 subscriptionStatus
    if msg.get("event") == "subscriptionStatus" and isinstance(pair, str):
        yield pair
    result = msg.get("result")  # v2 subscription answer
    if isinstance(result, dict) and isinstance(result.get("symbol"), str):
        yield result["symbol"]
    data = msg.get("data")  # v2 ticker, trade, book: data[].symbol
    if isinstance(msg.get("channel"), str) and isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("symbol"), str):
                yield item["symbol"]


def _kraken_market(native: str) -> tuple[str, str, str] | None:
    """A v1 name (`XBT/CHF`) becomes the v2 name the dialect lists and takes (`BTC/CHF`)."""
    parts = kraken_venue.split_pair(native)
    if parts is None:
        return None
    symbol = canonical(*parts)
    base, _, quote = symbol.partition("/")
    return kraken_venue.to_native(symbol), base, quote


REPLAY = ReplayRules(_kraken_answer, _kraken_names, _kraken_market)
