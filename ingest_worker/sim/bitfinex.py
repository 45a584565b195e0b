"""The Bitfinex WebSocket v2 dialect (`ticker`, `trades`, `book`) and `GET /v2/conf/pub:list:pair:exchange`.

As `wss://api-pub.bitfinex.com/ws/2` does:

- on connect, `{"event":"info","version":2,"serverId":"..","platform":{"status":1}}`;
- `{"event":"conf","flags":65536}` (SEQ_ALL) is answered `{"event":"conf","status":"OK","flags":65536}`,
  and from then on every array frame of the connection ends with its sequence number (1, 2, ...);
- `{"event":"subscribe","channel":"ticker"|"trades","symbol":"tBTCUSD"}` is answered
  `{"event":"subscribed","channel":..,"chanId":N,"symbol":"tBTCUSD","pair":"BTCUSD"}` (a channel id
  per subscription, per connection), then the channel's snapshot: the current ticker, or the
  recent trades `[chanId,[[ID,MTS,AMOUNT,PRICE],..]]` newest first; an unknown symbol, a
  channel not served or a repeat gets `{"event":"error","msg":..,"code":..}`; past
  OPEN_CHANNELS_LIMIT channels on the connection, `{"channel":..,"symbol":..,"event":"error",
  "msg":"subscribe: limit","code":10305,"pair":..}` (the request's fields first, as Bitfinex
  answers), and the connection stays open; `unsubscribe`
  `{"event":"unsubscribe","chanId":N}` is answered `{"event":"unsubscribed","status":"OK","chanId":N}`;
  `{"event":"ping","cid":N}` is answered `{"event":"pong","ts":..,"cid":N}`;
- `ticker`: `[chanId,[BID,BID_SIZE,ASK,ASK_SIZE,DAILY_CHANGE,DAILY_CHANGE_RELATIVE,LAST_PRICE,VOLUME,
  HIGH,LOW]]` on every top-of-book change, JSON numbers; the sizes are the sums of the 25 best
  levels, as on Bitfinex (here: a multiple of the top size);
- `trades`: `[chanId,"te",[ID,MTS,AMOUNT,PRICE]]` then `[chanId,"tu",[...]]` per trade (AMOUNT < 0:
  the taker sold);
- `book` (`"prec":"P0"` only; F0; BOOK_LEVELS levels a side whatever `len` asks): the snapshot
  `[chanId,[[PRICE,COUNT,AMOUNT],..]]`, bids best first then asks best first (AMOUNT < 0), then one
  `[chanId,[PRICE,COUNT,AMOUNT]]` per changed level (COUNT 0 removes it, AMOUNT 1 / -1 naming the
  side), from `sim/depth.py`'s book behind each quote, so that its top is the ticker's; numbers
  spelled as Bitfinex's JavaScript server spells them. With the conf flag OB_CHECKSUM (131072) a
  `[chanId,"cs",CHECKSUM]` follows the snapshot and each update's changes: the signed CRC32 of the
  top 25 bids and asks interleaved, "price:amount" as sent. A client that missed changes in a
  silence gets a fresh snapshot on its channel when data flows again;
- `[chanId,"hb"]` every 15 s per channel.

`fault(pair, kind)` (`/sim/fault?venue=bitfinex&market=tBTCUSD&kind=...`) sends the pair's book
subscribers one frame the server's book does not hold: `bad_checksum`, a `cs` one off the right
checksum, or `crossed`, a bid half a percent above the best ask. The server's book is unchanged.

Frames carry the connection's own channel ids and sequence numbers, so they are built
per connection (the payload once per update).

In a replay (`replaying`) the recorded frames name their channels by the ids of the
recording's `subscribed` events, which are replayed too: a client's subscription is then
answered with the id the recording gave that channel and symbol, and no other channel
gets an id the recording uses, so that the simulator's answers and the recorded frames
never disagree about what an id means.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ingest_worker.sim.coinbase import trimmed
from ingest_worker.sim.depth import book_levels, level_changes
from ingest_worker.sim.model import BITFINEX, Market, Quote, profile_of
from ingest_worker.sim.replay import ReplayRules, as_recorded, no_answer
from ingest_worker.sim.venue import VenueServer, json_text, log, peer_name
from ingest_worker.venues import bitfinex as bitfinex_venue
from ingest_worker.venues._levels import interleaved_checksum

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = BITFINEX
TICKER = bitfinex_venue.CHANNELS["quote"]  # "ticker"
TRADES = bitfinex_venue.CHANNELS["trade"]  # "trades"
BOOK = bitfinex_venue.BOOK_CHANNEL  # "book"
SERVED_CHANNELS = (TICKER, TRADES, BOOK)
SEQ_ALL = bitfinex_venue.SEQ_ALL
OB_CHECKSUM = bitfinex_venue.OB_CHECKSUM
BOOK_LEVELS = 25  # levels a side of every book served (a subscription's len is not followed)
CHECKSUM_LEVELS = 25  # Bitfinex's checksum covers the top 25 levels a side
HEARTBEAT_EVERY = 15  # heartbeat() calls (seconds) between two `hb` of a channel
RECENT_TRADES = 30  # trades in a trades snapshot
DEPTH_FACTOR = 12.0  # the ticker's sizes: 25 levels summed, about this many top sizes
# "You can subscribe to 25 channels at the same time on the same connection" (docs.bitfinex.com,
# Public Channels). The General page says 30 and the live server has taken a few more; the
# simulator holds clients to the documented 25, the smallest figure. Its own constant, not the
# client's: a client that miscounts must meet the limit here.
OPEN_CHANNELS_LIMIT = 25


@dataclass
class PairState:
    market: Market
    trade_id: int
    open_24h: int
    low_24h: int
    high_24h: int
    volume: float
    ticker: str = ""  # the payload of the last ticker; "": not quoted yet
    trades: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_TRADES))  # payloads, newest first
    bids: dict[int, int] = field(default_factory=dict)  # the book: price ticks -> size lots
    asks: dict[int, int] = field(default_factory=dict)
    book_changes: list[str] = field(default_factory=list)  # the last update's level payloads
    checksum: int = 0  # of the book as it is

    def level(self, price: int, size: int, bid: bool) -> str:
        """`[PRICE,COUNT,AMOUNT]` as Bitfinex spells it; size 0: the level's removal."""
        market = self.market
        amount = size / market.size_scale if size else 1
        count = 1 + price % 3 if size else 0  # orders at the level: any positive number
        return f"[{_js(price / market.price_scale)},{count},{_js(amount if bid else -amount)}]"

    def snapshot(self) -> str:
        bids = [self.level(price, self.bids[price], True) for price in sorted(self.bids, reverse=True)]
        asks = [self.level(price, self.asks[price], False) for price in sorted(self.asks)]
        return f"[{','.join(bids + asks)}]"

    def update_book(self, quote: Quote) -> None:
        """The book behind `quote`: its level changes (book_changes) and checksum."""
        new_bids, new_asks = (dict(side) for side in book_levels(quote, BOOK_LEVELS))
        bid_changes = level_changes(self.bids, new_bids)
        ask_changes = level_changes(self.asks, new_asks)
        # Every removal before any new level: a book applied frame by frame never crosses on the way.
        self.book_changes = [self.level(p, q, True) for p, q in bid_changes if not q]
        self.book_changes += [self.level(p, q, False) for p, q in ask_changes if not q]
        self.book_changes += [self.level(p, q, True) for p, q in bid_changes if q]
        self.book_changes += [self.level(p, q, False) for p, q in ask_changes if q]
        self.bids, self.asks = new_bids, new_asks
        market = self.market
        price_scale, size_scale = market.price_scale, market.size_scale
        self.checksum = interleaved_checksum(
            [
                f"{_js(price / price_scale)}:{_js(self.bids[price] / size_scale)}"
                for price in sorted(self.bids, reverse=True)[:CHECKSUM_LEVELS]
            ],
            [
                f"{_js(price / price_scale)}:{_js(-self.asks[price] / size_scale)}"
                for price in sorted(self.asks)[:CHECKSUM_LEVELS]
            ],
        )


def _js(value: float) -> str:
    """A number as Bitfinex's JavaScript server writes it (7e-7, 0.00002505, 60400)."""
    return bitfinex_venue.js_number(value)


class BitfinexFrames:
    """The wire state of the simulated Bitfinex pairs and their payloads (without channel id and sequence)."""

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        rng = random.Random(f"bitfinex-frames-{seed}")
        self.pairs: dict[str, PairState] = {}
        for market in markets:
            profile = profile_of(market)
            start = profile.start_price * market.price_scale
            self.pairs[market.native] = PairState(
                market=market,
                trade_id=rng.randrange(1_000_000_000, 1_600_000_000),
                open_24h=max(1, round(start * rng.uniform(0.98, 1.02))),
                low_24h=max(1, round(start * rng.uniform(0.95, 0.98))),
                high_24h=round(start * rng.uniform(1.02, 1.05)),
                volume=profile.typical_size * rng.uniform(1_000, 4_000),
            )

    def update(self, quote: Quote) -> tuple[PairState, str | None]:
        """Apply an update: the pair's state and its trade payload (`[ID,MTS,AMOUNT,PRICE]`), if any."""
        market = quote.market
        state = self.pairs[market.native]
        d, s = market.price_decimals, market.size_decimals
        trade = quote.trade
        trade_payload: str | None = None
        last = quote.bid
        if trade is not None:
            state.trade_id += 1
            size = trimmed(trade.size, s)
            amount = size if trade.taker_side == "buy" else f"-{size}"
            trade_payload = f"[{state.trade_id},{quote.time_ns // 1_000_000},{amount},{trimmed(trade.price, d)}]"
            state.trades.appendleft(trade_payload)
            state.volume += trade.size / market.size_scale
            state.low_24h = min(state.low_24h, trade.price)
            state.high_24h = max(state.high_24h, trade.price)
            last = trade.price
        change = last - state.open_24h
        state.ticker = (
            f"[{trimmed(quote.bid, d)},{quote.bid_size * DEPTH_FACTOR / market.size_scale:.8f},"
            f"{trimmed(quote.ask, d)},{quote.ask_size * DEPTH_FACTOR / market.size_scale:.8f},"
            f"{'-' if change < 0 else ''}{trimmed(abs(change), d)},{change / state.open_24h:.4f},"
            f"{trimmed(last, d)},{state.volume:.8f},{trimmed(state.high_24h, d)},{trimmed(state.low_24h, d)}]"
        )
        state.update_book(quote)
        return state, trade_payload


class BitfinexClient:
    """One connection: its channels (id -> (channel, pair)), the reverse map, and its sequence number."""

    __slots__ = ("channels", "checksums", "connection", "ids", "next_id", "seq")

    def __init__(self, connection: ServerConnection, first_id: int) -> None:
        self.connection = connection
        self.checksums = False  # OB_CHECKSUM asked for
        self.channels: dict[int, tuple[str, str]] = {}
        self.ids: dict[tuple[str, str], int] = {}
        self.next_id = first_id
        self.seq: int | None = None  # None: SEQ_ALL not asked for

    def frame(self, chan_id: int, body: str) -> str:
        """`[chanId,<body>]`, with the connection's next sequence number when SEQ_ALL is on."""
        if self.seq is None:
            return f"[{chan_id},{body}]"
        self.seq += 1
        return f"[{chan_id},{body},{self.seq}]"


class BitfinexServer(VenueServer):
    """The simulated Bitfinex WebSocket v2 public endpoint."""

    name = NAME

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = BitfinexFrames(self.markets, seed)
        self.clients: dict[ServerConnection, BitfinexClient] = {}
        self._ids = random.Random(f"bitfinex-channels-{seed}")
        # (channel, pair) -> clients; the publish path reads only these.
        self._index: dict[tuple[str, str], set[BitfinexClient]] = {}
        self._beats = 0
        self._recorded_ids: dict[tuple[str, str], int] = {}  # replay: (channel, symbol) -> the recorded chanId
        self._reserved_ids: set[int] = set()  # replay: every chanId the recorded frames use
        self.limit_refusals = 0  # subscriptions refused with 10305
        self._stale_books: set[str] = set()  # pairs whose book clients missed changes in a silence

    # --- HTTP ---------------------------------------------------------------------------
    def accepts_path(self, path: str) -> bool:
        return path in (bitfinex_venue.WS_PATH, bitfinex_venue.WS_PATH + "/")

    def rest(self, path: str, query: dict[str, list[str]], now_ns: int) -> tuple[int, object] | None:
        if path == bitfinex_venue.MARKETS_PATH:
            return 200, [[m.native[1:] for m in self.markets]]
        if path == "/v2/platform/status":
            return 200, [1]
        return None

    # --- WebSocket ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        client = BitfinexClient(connection, self._ids.randrange(10_000, 400_000))
        self.clients[connection] = client
        self.connected(connection)
        try:
            server_id = f"{self._ids.getrandbits(128):032x}"
            info = {"event": "info", "version": 2, "serverId": server_id, "platform": {"status": 1}}
            await connection.send(json_text(info))
            async for message in connection:
                # Through the outbox, as market data is: frames then leave in sequence-number order.
                for answer in self.on_message(client, message):
                    self.outbox.add_one(connection, answer.encode())
                self.flush()
        except ConnectionClosed:
            pass
        finally:
            for chan_id in list(client.channels):
                self._leave(client, chan_id)
            del self.clients[connection]
            self.disconnected(connection)

    def on_message(self, client: BitfinexClient, message: str | bytes) -> list[str]:
        """The frames answering one request: an event (then a snapshot) or an error event."""
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            return [_error("Malformed request", 10001)]
        event = request.get("event") if isinstance(request, dict) else None
        if event == "ping":
            return [json_text({"event": "pong", "ts": time.time_ns() // 1_000_000, "cid": request.get("cid")})]
        if event == "conf":
            flags = request.get("flags")
            if not isinstance(flags, int) or isinstance(flags, bool):
                return [_error("conf: invalid", 10000)]
            if flags & SEQ_ALL and client.seq is None:
                client.seq = 0
            if flags & OB_CHECKSUM:
                client.checksums = True
            return [json_text({"event": "conf", "status": "OK", "flags": flags})]
        if event == "unsubscribe":
            chan_id = request.get("chanId")
            if chan_id not in client.channels:
                return [_error("unsubscribe: invalid", 10400)]
            self._leave(client, chan_id)
            return [json_text({"event": "unsubscribed", "status": "OK", "chanId": chan_id})]
        if event != "subscribe":
            return [_error("Unknown event", 10000)]
        channel, symbol = request.get("channel"), request.get("symbol")
        if channel not in SERVED_CHANNELS or (channel == BOOK and request.get("prec", "P0") != "P0"):
            return [_error("subscribe: invalid", 10300)]
        state = self.frames.pairs.get(symbol) if isinstance(symbol, str) else None
        if state is None:
            return [json_text({"event": "error", "msg": "symbol: invalid", "code": 10300, "channel": channel})]
        assert isinstance(symbol, str)
        if (channel, symbol) in client.ids:
            return [json_text({"event": "error", "msg": "subscribe: dup", "code": 10301, "channel": channel})]
        if len(client.channels) >= OPEN_CHANNELS_LIMIT:
            self.limit_refusals += 1
            refused = {"channel": channel, "symbol": symbol, "event": "error", "msg": "subscribe: limit"}
            return [json_text({**refused, "code": 10305, "pair": symbol[1:]})]
        chan_id = self._recorded_ids.get((channel, symbol))
        if chan_id is None or chan_id in client.channels:
            chan_id = self._new_id(client)
        client.channels[chan_id] = (channel, symbol)
        client.ids[(channel, symbol)] = chan_id
        self._index.setdefault((channel, symbol), set()).add(client)
        self.set_subscribed(client.connection, True)
        log.info("%s: client %s subscribed to %s:%s", self.name, peer_name(client.connection), channel, symbol)
        subscribed = {"event": "subscribed", "channel": channel, "chanId": chan_id, "symbol": symbol}
        answers = [json_text({**subscribed, "pair": symbol[1:]})]
        if channel == TICKER and state.ticker and not self.silent_until_ns:
            answers.append(client.frame(chan_id, state.ticker))
        elif channel == TRADES:
            answers.append(client.frame(chan_id, f"[{','.join(state.trades)}]"))
        elif channel == BOOK and state.bids and not self.silent_until_ns:
            answers += self._book_snapshot(client, chan_id, state)
        return answers

    def _book_snapshot(self, client: BitfinexClient, chan_id: int, state: PairState) -> list[str]:
        frames = [client.frame(chan_id, state.snapshot())]
        if client.checksums:
            frames.append(client.frame(chan_id, f'"cs",{state.checksum}'))
        return frames

    def _new_id(self, client: BitfinexClient) -> int:
        """The connection's next channel id: increasing, with gaps, as Bitfinex's; never one a replay uses."""
        while True:
            chan_id = client.next_id
            client.next_id += 1 + self._ids.randrange(50)
            if chan_id not in self._reserved_ids and chan_id not in client.channels:
                return chan_id

    def replaying(self, raws: Sequence[str]) -> None:
        """Take note of the channel ids of the recorded frames (module docstring)."""
        for raw in raws:
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(msg, list) and msg and msg[0].__class__ is int:
                self._reserved_ids.add(msg[0])
            elif isinstance(msg, dict) and msg.get("event") == "subscribed":
                chan_id, channel, symbol = msg.get("chanId"), msg.get("channel"), msg.get("symbol")
                if chan_id.__class__ is int and isinstance(channel, str) and isinstance(symbol, str):
                    self._reserved_ids.add(chan_id)
                    self._recorded_ids.setdefault((channel, symbol), chan_id)

    def _leave(self, client: BitfinexClient, chan_id: int) -> None:
        key = client.channels.pop(chan_id)
        del client.ids[key]
        listeners = self._index.get(key)
        if listeners is not None:
            listeners.discard(client)
            if not listeners:
                del self._index[key]
        self.set_subscribed(client.connection, bool(client.channels))

    # --- market data ----------------------------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Queue per subscribed connection a ticker per update, the book's level changes and checksum,
        and `te` + `tu` per trade."""
        index = self._index
        outbox = self.outbox
        for quote in quotes:
            state, trade = self.frames.update(quote)
            native = quote.market.native
            if silent:
                # Book clients miss these changes: they get a fresh snapshot when data flows again.
                if (BOOK, native) in index:
                    self._stale_books.add(native)
                continue
            for client in index.get((TICKER, native), ()):
                chan_id = client.ids[(TICKER, native)]
                outbox.add_one(client.connection, client.frame(chan_id, state.ticker).encode())
            if native in self._stale_books:
                self._stale_books.discard(native)
                for client in index.get((BOOK, native), ()):
                    for frame in self._book_snapshot(client, client.ids[(BOOK, native)], state):
                        outbox.add_one(client.connection, frame.encode())
            else:
                for client in index.get((BOOK, native), ()):
                    chan_id = client.ids[(BOOK, native)]
                    for change in state.book_changes:
                        outbox.add_one(client.connection, client.frame(chan_id, change).encode())
                    if client.checksums and state.book_changes:
                        outbox.add_one(client.connection, client.frame(chan_id, f'"cs",{state.checksum}').encode())
            if trade is not None:
                for client in index.get((TRADES, native), ()):
                    chan_id = client.ids[(TRADES, native)]
                    outbox.add_one(client.connection, client.frame(chan_id, f'"te",{trade}').encode())
                    outbox.add_one(client.connection, client.frame(chan_id, f'"tu",{trade}').encode())

    FAULT_KINDS = ("bad_checksum", "crossed")

    def fault(self, market: str, kind: str) -> dict[str, Any]:
        state = self.fault_target(self.frames.pairs, market, kind)
        if not state.asks:
            raise ValueError(f"{market} has no book yet")
        if kind == "bad_checksum":
            body = f'"cs",{state.checksum + 1 if state.checksum < (1 << 31) - 1 else state.checksum - 1}'
        else:  # a bid half a percent above the best ask: unmistakable in a test's quotes
            best_ask = min(state.asks)
            body = state.level(best_ask + max(1, best_ask // 200), 1, True)
        listeners = self._index.get((BOOK, market), set())
        sent = ""
        for client in listeners:
            sent = client.frame(client.ids[(BOOK, market)], body)
            self.outbox.add_one(client.connection, sent.encode())
        self.flush()
        log.info("%s: fault %s sent to %d client(s) of %s", self.name, kind, len(listeners), market)
        return {"venue": self.name, "market": market, "kind": kind, "clients": len(listeners), "frame": sent}

    def heartbeat(self, now_ns: int, silent: bool) -> None:
        """`[chanId,"hb"]` per channel every 15 s: Bitfinex heartbeats even while market data is quiet."""
        self._beats += 1
        if self._beats % HEARTBEAT_EVERY:
            return
        for client in self.clients.values():
            for chan_id in client.channels:
                self.outbox.add_one(client.connection, client.frame(chan_id, '"hb"').encode())

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["channels"] = sorted(f"{channel}:{pair}" for channel, pair in self._index)
        status["channels_per_connection"] = sorted(len(client.channels) for client in self.clients.values())
        status["limit_refusals"] = self.limit_refusals
        return status


def _error(msg: str, code: int) -> str:
    return json_text({"event": "error", "msg": msg, "code": code})


def dialect(markets: Sequence[Market], config: SimConfig) -> VenueServer:
    """The simulator's registry entry (ingest_worker/sim/server.py finds it beside the venue's name)."""
    return BitfinexServer(markets, config.seed)


# --- how `--replay` reads a capture of this venue (ingest_worker/sim/replay.py) ----------
def _bitfinex_names(msg: object) -> Iterator[str]:
    # Data frames carry channel ids only; the `subscribed` events name the markets.
    if isinstance(msg, dict) and msg.get("event") == "subscribed" and isinstance(msg.get("symbol"), str):
        yield msg["symbol"]


REPLAY = ReplayRules(no_answer, _bitfinex_names, as_recorded(bitfinex_venue.split_pair))
