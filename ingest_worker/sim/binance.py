"""The Binance spot dialect: market-data WebSocket streams and `/api/v3/exchangeInfo`.

As `wss://stream.binance.com:9443` does:

- `/ws/<stream>[/<stream>...]`: raw payloads; `/stream?streams=<a>/<b>`: each payload
  wrapped as `{"stream":"<a>","data":<payload>}`; `/ws` and `/stream` with no
  stream, then requests over the socket:
  `{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}` -> `{"result":null,"id":1}`,
  `UNSUBSCRIBE` likewise, `LIST_SUBSCRIPTIONS` -> `{"result":["btcusdt@bookTicker"],"id":3}`,
  `SET_PROPERTY ["combined", true]` / `GET_PROPERTY ["combined"]`; a bad request gets
  `{"error":{"code":2,"msg":"Invalid request: ..."},"id":N}` (code 3 for bad JSON,
  0 and 1 for properties) and the connection stays open.
- streams `<symbol>@bookTicker` -> `{"u":..,"s":"BTCUSDT","b":"..","B":"..","a":"..","A":".."}`
  and `<symbol>@trade` -> `{"e":"trade","E":..,"s":..,"t":..,"p":..,"q":..,"T":..,"m":..,"M":true}`,
  prices and quantities as decimal strings with 8 decimals, key order as recorded
  (../shared/market-data/binance). Symbols in stream names are lower case. A
  stream name that is not one of these is accepted and listed, and never sends
  anything: Binance does the same with stream names it does not know.
- order books (ingest_worker/sim/depth.py gives the book behind each quote: its top is the
  bookTicker's): `<symbol>@depth<N>[@100ms]` (N 5, 10 or 20) partial book depth
  `{"lastUpdateId":..,"bids":[["price","qty"],..],"asks":[..]}`, the top N levels, pushed every
  100 ms (1000 ms without `@100ms`) when the book changed; `<symbol>@depth[@100ms]` diff depth
  `{"e":"depthUpdate","E":..,"s":..,"U":..,"u":..,"b":[..],"a":[..]}` at the same pace, and
  `GET /api/v3/depth?symbol=X&limit=N` (default 100, at most 5000; the book has DIFF_LEVELS
  levels a side). The update ids are the bookTicker's `u`: one counter per market, which a
  snapshot's lastUpdateId and each event's U..u follow, each event's U the previous event's u
  + 1, so a client following Binance's "How to manage a local order book correctly" holds
  exactly the server's book (an event names every level on which the book it follows, or a
  snapshot served since, differs: `IncrementalSide`; a snapshot counts until an event beyond its
  lastUpdateId is built, since a client drops the events that end on it). A silence loses events: the first one
  after it skips ids, as a client that missed some sees it.
- `fault(symbol, kind)` (`/sim/fault?venue=binance&market=BTCUSDT&kind=...`): `gap` sends the
  market's diff-depth subscribers an event whose U skips an id (the event before it lost);
  `crossed` sends its partial-depth subscribers the book with a bid half a percent above the
  best ask, and its diff-depth subscribers an event adding that bid. The server's book is
  unchanged: a fresh snapshot (or the next partial-depth frame) is right.
- keepalive: the server pings (every 20 s by default) and the websockets library
  answers the client's pings.
- `GET /api/v3/exchangeInfo[?symbol=X|?symbols=["X","Y"]]`, `GET /api/v3/ping`, `GET /api/v3/time`.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ingest_worker.sim.depth import IncrementalSide, Levels, book_levels
from ingest_worker.sim.model import BINANCE, Market, Quote
from ingest_worker.sim.replay import ReplayRules, as_recorded
from ingest_worker.sim.venue import VenueServer, json_text, log, peer_name
from ingest_worker.venues import binance as binance_venue
from signals_app.contracts.symbols import split_concatenated

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = BINANCE
CHANNELS = (binance_venue.CHANNELS["quote"], binance_venue.CHANNELS["trade"])  # bookTicker, trade
MAX_STREAMS = 1024  # per connection, as Binance
# `btcusdt@depth20@100ms` (partial: N levels), `btcusdt@depth@100ms` (diff); without @100ms, every second.
DEPTH_STREAM = re.compile(r"([a-z0-9]+)@depth(5|10|20)?(@100ms)?")
DIFF_LEVELS = 100  # levels a side of the book the diff stream and the REST snapshot describe
REST_DEPTH_LIMIT = (100, 5000)  # GET /api/v3/depth: the default limit and the largest
FAULT_SHIFT = 200  # a crossed fault's bid lies best ask / FAULT_SHIFT above the best ask (half a percent)
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_METHOD_LIST = ", ".join(f"`{method}`" for method in METHODS)


def decimal8(units: int, decimals: int) -> str:
    """An integer count of 10^-decimals as Binance prints it: always 8 decimals (`61837.63000000`)."""
    whole, fraction = divmod(units, 10**decimals)
    if decimals == 0:
        return f"{whole}.00000000"
    return f"{whole}.{fraction:0{decimals}d}{'0' * (8 - decimals)}"


def error_answer(code: int, msg: str, request_id: object) -> str:
    return json_text({"error": {"code": code, "msg": msg}, "id": request_id})


def _valid_id(value: object) -> bool:
    """Binance accepts a 64-bit signed integer, an alphanumeric string up to 36 characters, or null."""
    if value is None:
        return True
    if value.__class__ is int:
        return -(2**63) <= value < 2**63  # type: ignore[operator]
    if value.__class__ is str:
        return len(value) <= 36 and (value == "" or value.isalnum())  # type: ignore[attr-defined]
    return False


@dataclass
class DepthStream:
    """A depth stream someone listens to: its market, its pace, and what its last push said."""

    native: str
    levels: int | None  # partial depth: its N; None: diff depth
    interval_ns: int
    pushed_ns: int = 0
    pushed_id: int = 0  # the market's update id in the last push (diff depth: the last event's u)
    sides: tuple[IncrementalSide, IncrementalSide] | None = None  # diff depth: what its clients hold


def depth_stream(name: str) -> tuple[str, int | None, int] | None:
    """(native, levels or None for diff depth, interval ns) of a depth stream name; None: not one."""
    matched = DEPTH_STREAM.fullmatch(name)
    if matched is None:
        return None
    return matched[1].upper(), int(matched[2]) if matched[2] else None, 100_000_000 if matched[3] else 1_000_000_000


def levels_text(levels: Levels, price_decimals: int, size_decimals: int) -> str:
    """`["61837.63000000","0.12300000"],...` (no brackets around the list)."""
    return ",".join(f'["{decimal8(p, price_decimals)}","{decimal8(q, size_decimals)}"]' for p, q in levels)


class BinanceClient:
    """One connection's streams, in subscription order, and whether payloads are wrapped."""

    __slots__ = ("combined", "connection", "streams")

    def __init__(self, connection: ServerConnection, combined: bool) -> None:
        self.connection = connection
        self.combined = combined
        self.streams: dict[str, None] = {}


class BinanceFrames:
    """The wire state of the simulated Binance markets (update ids, trade ids) and their frames."""

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        rng = random.Random(f"binance-frames-{seed}")
        self._rng = rng
        self.update_id = {m.native: rng.randrange(10_000_000_000, 60_000_000_000) for m in markets}
        self.trade_id = {m.native: rng.randrange(1_000_000_000, 4_000_000_000) for m in markets}
        self.latest: dict[str, Quote] = {}  # native -> its latest quote: the book is the one behind it

    def book_ticker(self, quote: Quote) -> str:
        market = quote.market
        native = market.native
        self.latest[native] = quote
        # `u` is the order book's update id: it moves with every book change, not only the top.
        update_id = self.update_id[native] + 1 + int(self._rng.random() * 30)
        self.update_id[native] = update_id
        d = market.price_decimals
        s = market.size_decimals
        return (
            f'{{"u":{update_id},"s":"{native}","b":"{decimal8(quote.bid, d)}","B":"{decimal8(quote.bid_size, s)}",'
            f'"a":"{decimal8(quote.ask, d)}","A":"{decimal8(quote.ask_size, s)}"}}'
        )

    def book(self, native: str, levels: int) -> tuple[Levels, Levels]:
        """The market's `levels` best bids and asks now (none before its first quote)."""
        quote = self.latest.get(native)
        return book_levels(quote, levels) if quote is not None else ([], [])

    def partial_depth(self, native: str, bids: Levels, asks: Levels) -> str:
        market = self.latest[native].market
        d, s = market.price_decimals, market.size_decimals
        return (
            f'{{"lastUpdateId":{self.update_id[native]},"bids":[{levels_text(bids, d, s)}],'
            f'"asks":[{levels_text(asks, d, s)}]}}'
        )

    def diff_event(self, native: str, first: int, final: int, bids: Levels, asks: Levels, now_ns: int) -> str:
        market = self.latest[native].market
        d, s = market.price_decimals, market.size_decimals
        return (
            f'{{"e":"depthUpdate","E":{now_ns // 1_000_000},"s":"{native}","U":{first},"u":{final},'
            f'"b":[{levels_text(bids, d, s)}],"a":[{levels_text(asks, d, s)}]}}'
        )

    def trade(self, quote: Quote) -> str:
        market = quote.market
        trade = quote.trade
        assert trade is not None
        trade_id = self.trade_id[market.native] + 1
        self.trade_id[market.native] = trade_id
        trade_ms = quote.time_ns // 1_000_000
        # m: the buyer was the maker, i.e. the taker sold into the bid.
        maker = "true" if trade.taker_side == "sell" else "false"
        return (
            f'{{"e":"trade","E":{trade_ms},"s":"{market.native}","t":{trade_id},'
            f'"p":"{decimal8(trade.price, market.price_decimals)}","q":"{decimal8(trade.size, market.size_decimals)}",'
            f'"T":{trade_ms},"m":{maker},"M":true}}'
        )


class BinanceServer(VenueServer):
    """The simulated Binance spot market-data endpoint."""

    name = NAME
    FAULT_KINDS = ("gap", "crossed")

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = BinanceFrames(self.markets, seed)
        self.depth: dict[str, DepthStream] = {}  # depth stream -> its state, while someone listens
        self.clients: dict[ServerConnection, BinanceClient] = {}
        # stream -> connections wanting it raw / wrapped; the publish path reads only these.
        self._raw: dict[str, set[ServerConnection]] = {}
        self._wrapped: dict[str, set[ServerConnection]] = {}
        self._streams_of = {
            m.native: tuple(f"{m.native.lower()}@{channel}" for channel in CHANNELS) for m in self.markets
        }

    # --- HTTP ---------------------------------------------------------------------------
    def accepts_path(self, path: str) -> bool:
        return path in ("/ws", "/ws/", "/stream", "/stream/") or path.startswith("/ws/")

    def rest(self, path: str, query: dict[str, list[str]], now_ns: int) -> tuple[int, object] | None:
        if path == binance_venue.EXCHANGE_INFO_PATH:
            return self.exchange_info(query, now_ns)
        if path == binance_venue.DEPTH_SNAPSHOT_PATHS[0]:
            return self.depth_snapshot(query)
        if path == "/api/v3/ping":
            return 200, {}
        if path == "/api/v3/time":
            return 200, {"serverTime": now_ns // 1_000_000}
        return None

    def exchange_info(self, query: dict[str, list[str]], now_ns: int) -> tuple[int, object]:
        markets = self.markets
        wanted: list[str] | None = None
        if "symbol" in query:
            wanted = [query["symbol"][0]]
        elif "symbols" in query:
            try:
                parsed = orjson.loads(query["symbols"][0])
            except orjson.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
                return 400, {"code": -1100, "msg": "Illegal characters found in parameter 'symbols'."}
            wanted = parsed
        if wanted is not None:
            by_name = {m.native: m for m in markets}
            if any(name not in by_name for name in wanted):
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            markets = [by_name[name] for name in wanted]
        return 200, {
            "timezone": "UTC",
            "serverTime": now_ns // 1_000_000,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [_symbol_info(m) for m in markets],
        }

    def depth_snapshot(self, query: dict[str, list[str]]) -> tuple[int, object]:
        """`GET /api/v3/depth?symbol=X&limit=N`: the top N levels and the update id they are at."""
        native = query.get("symbol", [""])[0]
        if not native:
            return 400, {
                "code": -1102,
                "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            }
        if native not in self.frames.update_id:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        text = query.get("limit", [str(REST_DEPTH_LIMIT[0])])[0]
        if not text.isdigit() or int(text) < 1:
            return 400, {
                "code": -1100,
                "msg": "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
            }
        bids, asks = self.frames.book(native, min(int(text), REST_DEPTH_LIMIT[1], DIFF_LEVELS))
        last_update_id = self.frames.update_id[native]
        for stream in self.depth.values():
            if stream.native == native and stream.sides is not None:
                # The client holds this from now on, until it applies an event beyond last_update_id.
                stream.sides[0].served(dict(bids), last_update_id)
                stream.sides[1].served(dict(asks), last_update_id)
        quote = self.frames.latest.get(native)
        d, s = (quote.market.price_decimals, quote.market.size_decimals) if quote is not None else (0, 0)
        return 200, {
            "lastUpdateId": last_update_id,
            "bids": [[decimal8(p, d), decimal8(q, s)] for p, q in bids],
            "asks": [[decimal8(p, d), decimal8(q, s)] for p, q in asks],
        }

    # --- WebSocket ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        combined, streams = streams_of_path(request.path)
        client = BinanceClient(connection, combined)
        self.clients[connection] = client
        self.connected(connection)
        try:
            if streams:
                self._subscribe(client, streams)
            async for message in connection:
                answer = self.on_request(client, message)
                await connection.send(answer)
        except ConnectionClosed:
            pass
        finally:
            self._unsubscribe(client, list(client.streams), quiet=True)
            del self.clients[connection]
            self.disconnected(connection)

    def on_request(self, client: BinanceClient, message: str | bytes) -> str:
        """The answer to one request sent over the socket."""
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return error_answer(3, f"Invalid JSON: {exc}", None)
        if not isinstance(request, dict):
            return error_answer(2, "Invalid request: expected a JSON object", None)
        request_id = request.get("id")
        if "id" not in request or not _valid_id(request_id):
            return error_answer(2, "Invalid request: request ID must be an unsigned integer", None)
        method = request.get("method")
        if method is None:
            return error_answer(2, "Invalid request: missing field `method`", request_id)
        if method not in METHODS:
            return error_answer(
                2, f"Invalid request: unknown variant `{method}`, expected one of {_METHOD_LIST}", request_id
            )
        extra = set(request) - {"method", "params", "id"}
        if extra:
            return error_answer(2, "Invalid request: too many parameters", request_id)
        params = request.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return json_text({"result": list(client.streams), "id": request_id})
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(client, method, params, request_id)
        if not isinstance(params, list) or not all(isinstance(item, str) for item in params):
            return error_answer(2, "Invalid request: params must be an array of stream names", request_id)
        if method == "SUBSCRIBE":
            if len(set(client.streams) | set(params)) > MAX_STREAMS:
                return error_answer(2, f"Invalid request: too many streams (at most {MAX_STREAMS})", request_id)
            self._subscribe(client, params)
        else:
            self._unsubscribe(client, params)
        return json_text({"result": None, "id": request_id})

    def _property(self, client: BinanceClient, method: str, params: object, request_id: object) -> str:
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            return error_answer(2, "Invalid request: property name must be a string", request_id)
        if params[0] != "combined":
            return error_answer(0, "Unknown property", request_id)
        if method == "GET_PROPERTY":
            return json_text({"result": client.combined, "id": request_id})
        if len(params) != 2 or not isinstance(params[1], bool):
            return error_answer(1, "Invalid value type: expected Boolean", request_id)
        streams = list(client.streams)
        self._unsubscribe(client, streams, quiet=True)
        client.combined = params[1]
        self._subscribe(client, streams, quiet=True)
        return json_text({"result": None, "id": request_id})

    def _subscribe(self, client: BinanceClient, streams: Iterable[str], quiet: bool = False) -> None:
        index = self._wrapped if client.combined else self._raw
        added = []
        for stream in streams:
            if stream not in client.streams:
                client.streams[stream] = None
                added.append(stream)
            index.setdefault(stream, set()).add(client.connection)
            if stream not in self.depth:
                self._start_depth(stream)
        self.set_subscribed(client.connection, bool(client.streams))
        if added and not quiet:
            log.info("%s: client %s subscribed to %s", self.name, _peer_of(client), _summary(added))

    def _unsubscribe(self, client: BinanceClient, streams: Iterable[str], quiet: bool = False) -> None:
        index = self._wrapped if client.combined else self._raw
        removed = []
        for stream in streams:
            if stream in client.streams:
                del client.streams[stream]
                removed.append(stream)
            listeners = index.get(stream)
            if listeners is not None:
                listeners.discard(client.connection)
                if not listeners:
                    del index[stream]
                    if stream not in self._raw and stream not in self._wrapped:
                        self.depth.pop(stream, None)
        self.set_subscribed(client.connection, bool(client.streams))
        if removed and not quiet:
            log.info("%s: client %s unsubscribed from %s", self.name, _peer_of(client), _summary(removed))

    def _start_depth(self, name: str) -> None:
        """Follow a depth stream from now on (a name that is no depth stream of a listed market: nothing)."""
        parsed = depth_stream(name)
        if parsed is None or parsed[0] not in self.frames.update_id:
            return
        native, levels, interval_ns = parsed
        stream = self.depth[name] = DepthStream(native, levels, interval_ns, pushed_id=self.frames.update_id[native])
        if levels is None:  # its events start from the book as it is now
            bids, asks = self.frames.book(native, DIFF_LEVELS)
            stream.sides = (IncrementalSide(dict(bids)), IncrementalSide(dict(asks)))

    # --- market data ----------------------------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Queue the frames of these updates for their subscribers (flush sends them).

        Each frame is built once, and only when someone listens; the wire state
        (update and trade ids) moves on either way, as the real book would.
        """
        raw_index = self._raw
        wrapped_index = self._wrapped
        outbox = self.outbox
        frames = self.frames
        for quote in quotes:
            book_stream, trade_stream = self._streams_of[quote.market.native]
            raw = raw_index.get(book_stream)
            wrapped = wrapped_index.get(book_stream)
            payload = frames.book_ticker(quote)
            if not silent:
                if raw:
                    outbox.add(raw, payload.encode())
                if wrapped:
                    outbox.add(wrapped, f'{{"stream":"{book_stream}","data":{payload}}}'.encode())
            if quote.trade is not None:
                payload = frames.trade(quote)
                if silent:
                    continue
                raw = raw_index.get(trade_stream)
                wrapped = wrapped_index.get(trade_stream)
                if raw:
                    outbox.add(raw, payload.encode())
                if wrapped:
                    outbox.add(wrapped, f'{{"stream":"{trade_stream}","data":{payload}}}'.encode())

    def due(self, now_ns: int, silent: bool) -> None:
        """Push each depth stream whose market changed since its last push, at most once per interval."""
        frames = self.frames
        update_ids = frames.update_id
        for name, stream in self.depth.items():
            native = stream.native
            if update_ids[native] == stream.pushed_id or now_ns - stream.pushed_ns < stream.interval_ns:
                continue
            stream.pushed_ns = now_ns
            if stream.levels is not None:
                stream.pushed_id = update_ids[native]
                payload = frames.partial_depth(native, *frames.book(native, stream.levels))
            else:
                event = self._next_event(stream, now_ns)
                if event is None:
                    continue
                payload = event
            if not silent:  # a silent venue's diff events are lost: the next one sent skips ids
                self._send(name, payload)

    def _next_event(self, stream: DepthStream, now_ns: int) -> str | None:
        """The diff event from the stream's last one to the book now (None: no level changed)."""
        assert stream.sides is not None
        native = stream.native
        bids, asks = self.frames.book(native, DIFF_LEVELS)
        first, final = stream.pushed_id + 1, self.frames.update_id[native]
        bid_changes = stream.sides[0].changes(dict(bids), final)
        ask_changes = stream.sides[1].changes(dict(asks), final)
        if not bid_changes and not ask_changes:
            return None  # the next event covers these update ids too
        stream.pushed_id = final
        return self.frames.diff_event(native, first, final, bid_changes, ask_changes, now_ns)

    def _send(self, stream: str, payload: str) -> list[ServerConnection]:
        """Queue one payload of `stream` for its raw and combined listeners; who they are."""
        raw = self._raw.get(stream)
        wrapped = self._wrapped.get(stream)
        if raw:
            self.outbox.add(raw, payload.encode())
        if wrapped:
            self.outbox.add(wrapped, f'{{"stream":"{stream}","data":{payload}}}'.encode())
        return [*(raw or ()), *(wrapped or ())]

    def fault(self, market: str, kind: str) -> dict[str, Any]:
        native = market.upper()
        frames = self.frames
        if native not in frames.update_id:
            raise ValueError(f"binance lists no {market!r}; markets: {', '.join(frames.update_id)}")
        if kind not in self.FAULT_KINDS:
            raise ValueError(f"kind must be one of: {', '.join(self.FAULT_KINDS)}")
        if native not in frames.latest:
            raise ValueError(f"{native} has no book yet")
        bids, asks = frames.book(native, DIFF_LEVELS)
        crossing = (asks[0][0] + max(1, asks[0][0] // FAULT_SHIFT), 1)  # a bid above the best ask
        clients: list[ServerConnection] = []
        sent: list[str] = []
        for name, stream in self.depth.items():
            if stream.native != native:
                continue
            if stream.levels is not None:
                if kind == "crossed":
                    payload = frames.partial_depth(
                        native, [crossing, *bids[: stream.levels - 1]], asks[: stream.levels]
                    )
                    clients += self._send(name, payload)
                    sent.append(payload)
                continue
            assert stream.sides is not None
            # gap: the event skips the id after the last one sent; crossed: it adds a bid the book does not hold.
            first = stream.pushed_id + (2 if kind == "gap" else 1)
            final = frames.update_id[native] = max(frames.update_id[native], first)
            bid_changes = stream.sides[0].changes(dict(bids), final)
            ask_changes = stream.sides[1].changes(dict(asks), final)
            if kind == "crossed":
                bid_changes.append(crossing)
            payload = frames.diff_event(native, first, final, bid_changes, ask_changes, time.time_ns())
            stream.pushed_id = final
            clients += self._send(name, payload)
            sent.append(payload)
        self.flush()
        log.info("%s: fault %s sent to %d client(s) of %s", self.name, kind, len(clients), native)
        return {"venue": self.name, "market": native, "kind": kind, "clients": len(clients), "frames": sent}

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["streams"] = sorted(set(self._raw) | set(self._wrapped))
        return status


def streams_of_path(path: str) -> tuple[bool, list[str]]:
    """(combined, streams) of a connection URL path: `/ws/a/b` raw, `/stream?streams=a/b` combined."""
    parts = urlsplit(path)
    if parts.path.startswith("/stream"):
        names = parse_qs(parts.query).get("streams", [""])[0]
        return True, [name for name in names.split("/") if name]
    return False, [name for name in parts.path[len("/ws") :].split("/") if name]


def _symbol_info(market: Market) -> dict[str, object]:
    tick = decimal8(1, market.price_decimals)
    step = decimal8(1, market.size_decimals)
    return {
        "symbol": market.native,
        "status": "TRADING",
        "baseAsset": market.asset,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
    }


def _peer_of(client: BinanceClient) -> str:
    return peer_name(client.connection)


def _summary(streams: list[str]) -> str:
    shown = ", ".join(streams[:6])
    return f"{len(streams)} stream(s): {shown}" + (", ..." if len(streams) > 6 else "")


def dialect(markets: Sequence[Market], config: SimConfig) -> VenueServer:
    """The simulator's registry entry (ingest_worker/sim/server.py finds it beside the venue's name)."""
    return BinanceServer(markets, config.seed)


# --- how `--replay` reads a capture of this venue (ingest_worker/sim/replay.py) ----------
def _binance_answer(msg: object) -> bool:
    return isinstance(msg, dict) and "result" in msg and "id" in msg and "stream" not in msg


def _binance_names(msg: object) -> Iterator[str]:
    data = msg.get("data", msg) if isinstance(msg, dict) else None  # combined streams wrap the payload
    native = data.get("s") if isinstance(data, dict) else None
    if isinstance(native, str) and native.isalnum():
        yield native


def _binance_split(native: str) -> tuple[str, str] | None:
    return split_concatenated(native)


REPLAY = ReplayRules(_binance_answer, _binance_names, as_recorded(_binance_split))
