"""The Kraken spot WebSocket v2 dialect (`ticker`, `trade`) and `GET /0/public/AssetPairs`.

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
- `{"channel":"heartbeat"}` every second to a subscribed connection; `{"method":"ping","req_id":N}`
  is answered with `{"method":"pong","req_id":N,"time_in":..,"time_out":..}`.

Symbols on the v2 wire are canonical (`BTC/USD`); the REST pair list keeps Kraken's legacy
names (`XXBTZUSD`, wsname `XBT/USD`), as the live one does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ingest_worker.sim.coinbase import trimmed
from ingest_worker.sim.model import KRAKEN, Market, Quote, profile_of
from ingest_worker.sim.replay import ReplayRules
from ingest_worker.sim.venue import IsoTime, VenueServer, json_text, log, peer_name
from ingest_worker.venues import kraken as kraken_venue
from signals_app.contracts.symbols import canonical

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = KRAKEN
TICKER = kraken_venue.CHANNELS["quote"]  # "ticker"
TRADE = kraken_venue.CHANNELS["trade"]  # "trade"
SERVED_CHANNELS = (TICKER, TRADE)
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

    def update(self, quote: Quote) -> PairState:
        state = self.pairs[quote.market.native]
        state.bid, state.ask = quote.bid, quote.ask
        state.bid_size, state.ask_size = quote.bid_size, quote.ask_size
        state.quoted = True
        trade = quote.trade
        if trade is not None:
            state.trade_id += 1
            state.last = trade.price
            state.volume += trade.size / quote.market.size_scale
            state.low_24h = min(state.low_24h, trade.price)
            state.high_24h = max(state.high_24h, trade.price)
        return state

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

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = KrakenFrames(self.markets, seed)
        self.clients: dict[ServerConnection, KrakenClient] = {}
        self._connection_ids = random.Random(f"kraken-connections-{seed}")
        # channel -> symbol -> connections; the publish path reads only these.
        self._index: dict[str, dict[str, set[ServerConnection]]] = {name: {} for name in SERVED_CHANNELS}

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
            if method == "subscribe":
                if channel == TICKER:
                    result["event_trigger"] = params.get("event_trigger", "trades")
                result["snapshot"] = snapshot
            result["symbol"] = symbol
            answers.append(json_text({"method": method, "result": result, "success": True, **times, **req_id}))
            if method == "unsubscribe":
                self._leave(client, [(channel, symbol)])
            elif self._join(client, channel, symbol) and channel == TICKER and snapshot:
                state = self.frames.pairs[symbol]
                if state.quoted and not self.silent_until_ns:
                    snapshots.append(self.frames.ticker(state, "snapshot"))
        return answers + snapshots

    def _join(self, client: KrakenClient, channel: str, symbol: str) -> bool:
        """Subscribe; whether it is new."""
        new = (channel, symbol) not in client.subscriptions
        client.subscriptions[(channel, symbol)] = None
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
            listeners = self._index[channel].get(symbol)
            if listeners is not None:
                listeners.discard(client.connection)
                if not listeners:
                    del self._index[channel][symbol]
        self.set_subscribed(client.connection, bool(client.subscriptions))

    # --- market data ----------------------------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Queue a ticker update per top-of-book change and a trade message per trade, each built once."""
        tickers = self._index[TICKER]
        trades = self._index[TRADE]
        frames = self.frames
        outbox = self.outbox
        for quote in quotes:
            state = frames.update(quote)
            if silent:
                continue
            native = quote.market.native
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

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["channels"] = {name: sorted(symbols) for name, symbols in self._index.items() if symbols}
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
