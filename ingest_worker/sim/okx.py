"""The OKX v5 dialect: the public WebSocket (`books`, `tickers`, `trades`) and `GET /api/v5/public/instruments`.

As `wss://ws.okx.com:8443/ws/v5/public` does:

- `{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}, ...]}` is answered
  once per argument with `{"event":"subscribe","arg":{...},"connId":".."}`; `unsubscribe`
  likewise. A request that is not JSON, has no known `op` or a bad argument gets
  `{"event":"error","code":"60012","msg":"Invalid request: ..","connId":".."}`; an unknown
  instrument or channel `{"event":"error","code":"60018","msg":"Wrong URL or channel:..",..}`.
  The connection stays open either way.
- the text `ping` is answered with the text `pong` (OKX's own keepalive).
- a connection the client has sent nothing on for `idle_timeout_s` (30 s, as OKX) is closed
  with code 4004 "No data received in 30s." (OKX's close, as its users report it). OKX's
  documentation words the rule from the other side ("data has not been pushed for more than
  30 seconds") and asks clients to send `ping` when they have heard nothing for N < 30 s; the
  4004 close is about what the client sent, so the simulator holds clients to the stricter
  reading: only text or binary messages count, WebSocket ping frames do not.
- `tickers`: one push per top-of-book change, `{"arg":{..},"data":[{..}]}` with the fields
  in OKX's order (instType, instId, last, lastSz, askPx, askSz, bidPx, bidSz, open24h,
  high24h, low24h, sodUtc0, sodUtc8, volCcy24h, vol24h, ts), all decimal strings without
  trailing zeros, `ts` in Unix ms; on subscribing, the current ticker is pushed at once.
- `trades`: one push per trade: instId, tradeId, px, sz, side (the taker's), ts.
- `books`: on subscribing, a `snapshot` push of the instrument's book (`prevSeqId` -1), then an
  `update` push with the levels that changed on every quote: `{"arg":{..},"action":"update",
  "data":[{"asks":[[px,sz,"0",orders]],"bids":[..],"ts","checksum","prevSeqId","seqId"}]}`,
  size "0" removing a level, `prevSeqId` the `seqId` of the push before, and the checksum
  OKX documents (CRC32 of the top 25 bids and asks interleaved, "px:sz:px:sz...", as a signed
  int). sim/depth.py gives the levels; level 0 is the ticker's top, so book and ticker always
  agree. The book holds BOOK_LEVELS (25) levels a side, not OKX's 400: the model rebuilds the
  levels around each new top, and 400 would make every move an 800-level update. A client that
  misses updates (a `/sim/silence`) gets a fresh snapshot when data flows again; leaving
  `books` and subscribing again brings a new snapshot at once.

`fault(instId, kind)` (`/sim/fault?venue=okx&market=BTC-USDT&kind=...`) sends the instrument's
`books` subscribers one `update` their book cannot take, the server's book and sequence
unchanged (a resubscription gets it right): `gap`, a push whose `prevSeqId` is one past the
last `seqId` (a push was missed); `bad_checksum`, the best bid restated with a wrong checksum;
`crossed`, a bid half a percent above the best ask (with the checksum of the book it makes:
the crossing, not the checksum, gives it away).

Recorded traffic: ../shared/market-data/okx (tickers.jsonl, trades.jsonl, books.jsonl).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ingest_worker.sim.coinbase import trimmed
from ingest_worker.sim.depth import next_book
from ingest_worker.sim.model import OKX, Market, Quote, profile_of
from ingest_worker.sim.replay import ReplayRules, as_recorded
from ingest_worker.sim.venue import BookSubscribers, VenueServer, json_text, log, peer_name
from ingest_worker.venues import okx as okx_venue
from ingest_worker.venues._levels import interleaved_checksum

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = OKX
TICKERS = okx_venue.CHANNELS["quote"]  # "tickers"
TRADES = okx_venue.CHANNELS["trade"]  # "trades"
BOOKS = okx_venue.CHANNELS["book"]  # "books"
SERVED_CHANNELS = (BOOKS, TICKERS, TRADES)
BOOK_LEVELS = 25  # levels a side of the served book: the checksum's 25, above DEPTH_LEVELS (20)
INSTRUMENTS_PATH = okx_venue.INSTRUMENTS_PATH.partition("?")[0]  # /api/v5/public/instruments
IDLE_TIMEOUT_S = 30.0  # OKX closes a connection that sent nothing for this long
IDLE_CLOSE_CODE = 4004
CHECKSUM_LEVELS = okx_venue.CHECKSUM_LEVELS  # 25


@dataclass
class InstrumentState:
    """What an instrument's ticker reports: top of book, last trade, 24 h statistics (ticks, lots)."""

    market: Market
    trade_id: int
    open_24h: int
    low_24h: int
    high_24h: int
    sod_utc0: int
    sod_utc8: int
    volume_24h: float  # in the base asset
    volume_ccy_24h: float  # in the quote currency
    bid: int = 0
    ask: int = 0
    bid_size: int = 0
    ask_size: int = 0
    last: int = 0
    last_size: int = 0
    time_ns: int = 0
    quoted: bool = False
    seq_id: int = 0  # the `seqId` of the instrument's last books push
    bids: dict[int, int] = field(default_factory=dict)  # the book: price ticks -> size lots, best first
    asks: dict[int, int] = field(default_factory=dict)


class OkxFrames:
    """The wire state of the simulated OKX instruments and their pushes."""

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        rng = random.Random(f"okx-frames-{seed}")
        self.instruments: dict[str, InstrumentState] = {}
        for market in markets:
            scale = market.price_scale
            start = profile_of(market).start_price * scale
            typical = profile_of(market).typical_size
            volume = typical * rng.uniform(8_000, 20_000)
            self.instruments[market.native] = InstrumentState(
                market=market,
                trade_id=rng.randrange(100_000_000, 600_000_000),
                open_24h=max(1, round(start * rng.uniform(0.98, 1.02))),
                low_24h=max(1, round(start * rng.uniform(0.95, 0.98))),
                high_24h=round(start * rng.uniform(1.02, 1.05)),
                sod_utc0=max(1, round(start * rng.uniform(0.98, 1.02))),
                sod_utc8=max(1, round(start * rng.uniform(0.98, 1.02))),
                volume_24h=volume,
                volume_ccy_24h=volume * start / scale,
                last=max(1, round(start)),
                seq_id=rng.randrange(1_000_000, 9_000_000),
            )

    def update(self, quote: Quote) -> tuple[InstrumentState, str | None]:
        """Apply a quote: the instrument's state and its `books` update (None: the book did not change)."""
        state = self.instruments[quote.market.native]
        state.bid, state.ask = quote.bid, quote.ask
        state.bid_size, state.ask_size = quote.bid_size, quote.ask_size
        state.time_ns = quote.time_ns
        state.quoted = True
        state.bids, state.asks, bid_changes, ask_changes = next_book(quote, BOOK_LEVELS, state.bids, state.asks)
        book = None
        if bid_changes or ask_changes:
            previous = state.seq_id
            state.seq_id += 1
            book = self.book(state, "update", bid_changes, ask_changes, self.checksum(state), previous, state.seq_id)
        trade = quote.trade
        if trade is not None:
            market = quote.market
            state.trade_id += 1
            state.last, state.last_size = trade.price, trade.size
            size = trade.size / market.size_scale
            state.volume_24h += size
            state.volume_ccy_24h += size * trade.price / market.price_scale
            state.low_24h = min(state.low_24h, trade.price)
            state.high_24h = max(state.high_24h, trade.price)
        return state, book

    def book(
        self,
        state: InstrumentState,
        action: str,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        checksum: int,
        prev_seq_id: int,
        seq_id: int,
    ) -> str:
        """A `books` push of these levels."""
        market = state.market
        d, s = market.price_decimals, market.size_decimals

        def listed(levels: Iterable[tuple[int, int]]) -> str:
            # [price, size, "0" (deprecated), orders]; a removal has no orders left.
            return ",".join(f'["{trimmed(p, d)}","{trimmed(q, s)}","0","{1 + p % 4 if q else 0}"]' for p, q in levels)

        return (
            f'{{"arg":{{"channel":"books","instId":"{market.native}"}},"action":"{action}","data":[{{'
            f'"asks":[{listed(asks)}],"bids":[{listed(bids)}],"ts":"{state.time_ns // 1_000_000}",'
            f'"checksum":{checksum},"prevSeqId":{prev_seq_id},"seqId":{seq_id}}}]}}'
        )

    def snapshot(self, state: InstrumentState) -> str:
        bids, asks = sorted(state.bids.items(), reverse=True), sorted(state.asks.items())
        return self.book(state, "snapshot", bids, asks, self.checksum(state), -1, state.seq_id)

    def checksum(self, state: InstrumentState, bids: dict[int, int] | None = None) -> int:
        """OKX's CRC32 of the top 25 bids and asks interleaved, signed, of the book (or with these bids)."""
        market = state.market
        d, s = market.price_decimals, market.size_decimals
        top_bids = sorted((state.bids if bids is None else bids).items(), reverse=True)[:CHECKSUM_LEVELS]
        top_asks = sorted(state.asks.items())[:CHECKSUM_LEVELS]
        return interleaved_checksum(
            [f"{trimmed(price, d)}:{trimmed(size, s)}" for price, size in top_bids],
            [f"{trimmed(price, d)}:{trimmed(size, s)}" for price, size in top_asks],
        )

    def ticker(self, state: InstrumentState) -> str:
        market = state.market
        d, s = market.price_decimals, market.size_decimals
        return (
            f'{{"arg":{{"channel":"tickers","instId":"{market.native}"}},"data":[{{"instType":"SPOT",'
            f'"instId":"{market.native}","last":"{trimmed(state.last, d)}","lastSz":"{trimmed(state.last_size, s)}",'
            f'"askPx":"{trimmed(state.ask, d)}","askSz":"{trimmed(state.ask_size, s)}",'
            f'"bidPx":"{trimmed(state.bid, d)}","bidSz":"{trimmed(state.bid_size, s)}",'
            f'"open24h":"{trimmed(state.open_24h, d)}","high24h":"{trimmed(state.high_24h, d)}",'
            f'"low24h":"{trimmed(state.low_24h, d)}","sodUtc0":"{trimmed(state.sod_utc0, d)}",'
            f'"sodUtc8":"{trimmed(state.sod_utc8, d)}","volCcy24h":"{_decimal(state.volume_ccy_24h)}",'
            f'"vol24h":"{_decimal(state.volume_24h)}","ts":"{state.time_ns // 1_000_000}"}}]}}'
        )

    def trade(self, state: InstrumentState, taker_side: str) -> str:
        market = state.market
        return (
            f'{{"arg":{{"channel":"trades","instId":"{market.native}"}},"data":[{{"instId":"{market.native}",'
            f'"tradeId":"{state.trade_id}","px":"{trimmed(state.last, market.price_decimals)}",'
            f'"sz":"{trimmed(state.last_size, market.size_decimals)}","side":"{taker_side}",'
            f'"ts":"{state.time_ns // 1_000_000}"}}]}}'
        )


def _decimal(value: float) -> str:
    """A volume as OKX prints it: up to 8 decimals, no trailing zeros."""
    text = f"{value:.8f}"
    return text.rstrip("0").rstrip(".")


class OkxClient:
    """One connection's subscriptions, `(channel, instId)` in subscription order."""

    __slots__ = ("conn_id", "connection", "subscriptions")

    def __init__(self, connection: ServerConnection, conn_id: str) -> None:
        self.connection = connection
        self.conn_id = conn_id
        self.subscriptions: dict[tuple[str, str], None] = {}


class RequestError(ValueError):
    """A request OKX refuses: becomes an `error` event with this code."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class OkxServer(VenueServer):
    """The simulated OKX v5 public market-data endpoint."""

    name = NAME
    FAULT_KINDS = ("gap", "bad_checksum", "crossed")

    def __init__(self, markets: Sequence[Market], seed: int = 0, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = OkxFrames(self.markets, seed)
        self.idle_timeout_s = idle_timeout_s
        self.idle_closes = 0  # connections closed for sending nothing
        self.clients: dict[ServerConnection, OkxClient] = {}
        self._conn_ids = random.Random(f"okx-connections-{seed}")
        # channel -> instId -> connections (tickers, trades), and the `books` subscribers; the
        # publish path reads only these.
        self._index: dict[str, dict[str, set[ServerConnection]]] = {TICKERS: {}, TRADES: {}}
        self._books = BookSubscribers()

    # --- HTTP ---------------------------------------------------------------------------
    def accepts_path(self, path: str) -> bool:
        return path == okx_venue.PUBLIC_WS_PATH

    def rest(self, path: str, query: dict[str, list[str]], now_ns: int) -> tuple[int, object] | None:
        if path == INSTRUMENTS_PATH:
            kind = query.get("instType", [""])[-1]
            if not kind:
                return 400, {"code": "50014", "msg": "Parameter instType can not be empty.", "data": []}
            if kind not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
                return 400, {"code": "51000", "msg": "Parameter instType error", "data": []}
            markets = self.markets if kind == "SPOT" else []
            wanted = query.get("instId", [""])[-1]
            if wanted:
                markets = [m for m in markets if m.native == wanted]
            return 200, {"code": "0", "msg": "", "data": [_instrument(m) for m in markets]}
        if path == "/api/v5/public/time":
            return 200, {"code": "0", "msg": "", "data": [{"ts": str(now_ns // 1_000_000)}]}
        return None

    # --- WebSocket ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        client = OkxClient(connection, f"{self._conn_ids.getrandbits(32):08x}")
        self.clients[connection] = client
        self.connected(connection)
        try:
            while True:
                try:
                    # recv() may be cancelled safely: an unread message stays for the next call.
                    async with asyncio.timeout(self.idle_timeout_s):
                        message = await connection.recv()
                except TimeoutError:
                    await self._close_idle(connection)
                    break
                for answer in self.on_message(client, message):
                    await connection.send(answer)
        except ConnectionClosed:
            pass
        finally:
            self._leave(client, list(client.subscriptions), quiet=True)
            del self.clients[connection]
            self.disconnected(connection)

    async def _close_idle(self, connection: ServerConnection) -> None:
        self.idle_closes += 1
        log.info(
            "%s: client %s sent nothing for %g s: closed (%d)",
            self.name,
            peer_name(connection),
            self.idle_timeout_s,
            IDLE_CLOSE_CODE,
        )
        await connection.close(IDLE_CLOSE_CODE, f"No data received in {self.idle_timeout_s:g}s.")

    def on_message(self, client: OkxClient, message: str | bytes) -> list[str]:
        """The frames answering one client message: `pong`, per-argument events (then tickers), or an error."""
        if message == "ping" or message == b"ping":
            return ["pong"]
        try:
            request = orjson.loads(message)
            if not isinstance(request, dict):
                raise RequestError("60012", f"Invalid request: {_shown(message)}")
            op = request.get("op")
            if op not in ("subscribe", "unsubscribe"):
                raise RequestError("60012", f"Invalid request: {_shown(message)}")
            wanted = self._requested(request.get("args"), message)
        except orjson.JSONDecodeError:
            return [self._error(client, "60012", f"Invalid request: {_shown(message)}")]
        except RequestError as exc:
            return [self._error(client, exc.code, exc.msg)]
        answers = [
            json_text({"event": op, "arg": {"channel": c, "instId": i}, "connId": client.conn_id}) for c, i in wanted
        ]
        if op == "unsubscribe":
            self._leave(client, wanted)
            return answers
        for channel, inst in self._join(client, wanted):
            # OKX pushes the current ticker and the book of a newly subscribed instrument at once.
            state = self.frames.instruments[inst]
            ready = state.quoted and not self.silent_until_ns
            if channel == TICKERS and ready:
                answers.append(self.frames.ticker(state))
            elif channel == BOOKS:
                if ready:  # the updates follow a snapshot: without one (no quote yet) the client waits
                    answers.append(self.frames.snapshot(state))
                self._books.join(inst, client.connection, ready)
        return answers

    def _error(self, client: OkxClient, code: str, msg: str) -> str:
        return json_text({"event": "error", "code": code, "msg": msg, "connId": client.conn_id})

    def _requested(self, args: object, message: str | bytes) -> list[tuple[str, str]]:
        if not isinstance(args, list) or not args:
            raise RequestError("60012", f"Invalid request: {_shown(message)}")
        known = {m.native for m in self.markets}
        wanted: list[tuple[str, str]] = []
        for arg in args:
            if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
                raise RequestError("60012", f"Invalid request: {_shown(message)}")
            channel, inst = arg["channel"], arg.get("instId")
            if channel not in SERVED_CHANNELS or not isinstance(inst, str) or inst not in known:
                raise RequestError("60018", f"Wrong URL or channel:{channel},instId:{inst} doesn't exist")
            wanted.append((channel, inst))
        return wanted

    def _join(self, client: OkxClient, wanted: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        added: list[tuple[str, str]] = []
        for channel, inst in wanted:
            if (channel, inst) not in client.subscriptions:
                client.subscriptions[(channel, inst)] = None
                added.append((channel, inst))
            if channel != BOOKS:
                self._index[channel].setdefault(inst, set()).add(client.connection)
        self.set_subscribed(client.connection, bool(client.subscriptions))
        if added:
            shown = ", ".join(f"{c}:{i}" for c, i in added[:6]) + (", ..." if len(added) > 6 else "")
            log.info("%s: client %s subscribed to %d: %s", self.name, peer_name(client.connection), len(added), shown)
        return added

    def _leave(self, client: OkxClient, wanted: Iterable[tuple[str, str]], quiet: bool = False) -> None:
        removed = 0
        for channel, inst in wanted:
            if client.subscriptions.pop((channel, inst), 0) is None:
                removed += 1
            if channel == BOOKS:
                self._books.leave(inst, client.connection)
                continue
            listeners = self._index[channel].get(inst)
            if listeners is not None:
                listeners.discard(client.connection)
                if not listeners:
                    del self._index[channel][inst]
        self.set_subscribed(client.connection, bool(client.subscriptions))
        if removed and not quiet:
            log.info("%s: client %s unsubscribed from %d", self.name, peer_name(client.connection), removed)

    # --- market data ----------------------------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Queue a `books` and a `tickers` push per update and a `trades` push per trade, each built
        once; a `books` subscriber still waiting for its snapshot gets it."""
        tickers = self._index[TICKERS]
        trades = self._index[TRADES]
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
                    outbox.add(listeners, frames.trade(state, quote.trade.taker_side).encode())

    def fault(self, market: str, kind: str) -> dict[str, Any]:
        state = self.frames.instruments.get(market)
        if state is None:
            raise ValueError(f"okx lists no {market!r}; markets: {', '.join(self.frames.instruments)}")
        if kind not in self.FAULT_KINDS:
            raise ValueError(f"kind must be one of: {', '.join(self.FAULT_KINDS)}")
        if not state.asks or not state.bids:
            raise ValueError(f"{state.market.native} has no book yet")
        frames, seq = self.frames, state.seq_id
        best_bid, best_ask = max(state.bids), min(state.asks)
        restated = [(best_bid, state.bids[best_bid])]
        if kind == "gap":  # the push after a missed one: its prevSeqId is not the last seqId
            frame = frames.book(state, "update", restated, [], frames.checksum(state), seq + 1, seq + 2)
        elif kind == "bad_checksum":
            frame = frames.book(state, "update", restated, [], frames.checksum(state) ^ 1, seq, seq)
        else:
            price = best_ask + max(1, best_ask // 200)  # half a percent above it: unmistakable in a test
            crossed = frames.checksum(state, bids={**state.bids, price: 1})
            frame = frames.book(state, "update", [(price, 1)], [], crossed, seq, seq)
        listeners = self._books.live.get(state.market.native, set())
        return self.send_fault(state.market.native, kind, listeners, frame)

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["channels"] = {name: sorted(insts) for name, insts in self._index.items() if insts}
        books = sorted(self._books.live.keys() | self._books.awaiting.keys())
        if books:
            status["channels"][BOOKS] = books
        status["idle_timeout_s"] = self.idle_timeout_s
        status["idle_closes"] = self.idle_closes
        return status


def _shown(message: str | bytes) -> str:
    text = message if isinstance(message, str) else message.decode(errors="replace")
    return text[:200]


def _instrument(market: Market) -> dict[str, object]:
    return {
        "alias": "",
        "baseCcy": market.asset,
        "category": "1",
        "ctMult": "",
        "ctType": "",
        "ctVal": "",
        "ctValCcy": "",
        "expTime": "",
        "instFamily": "",
        "instId": market.native,
        "instType": "SPOT",
        "lever": "10",
        "listTime": "1548133413000",
        "lotSz": trimmed(1, market.size_decimals),
        "maxIcebergSz": "9999999999",
        "maxLmtSz": "9999999999",
        "maxMktSz": "1000000",
        "minSz": trimmed(1, market.size_decimals),
        "quoteCcy": market.quote,
        "settleCcy": "",
        "state": "live",
        "stk": "",
        "tickSz": trimmed(1, market.price_decimals),
        "uly": "",
    }


def dialect(markets: Sequence[Market], config: SimConfig) -> VenueServer:
    """The simulator's registry entry (ingest_worker/sim/server.py finds it beside the venue's name)."""
    return OkxServer(markets, config.seed, idle_timeout_s=config.okx_idle_timeout_s)


# --- how `--replay` reads a capture of this venue (ingest_worker/sim/replay.py) ----------
def _okx_answer(msg: object) -> bool:
    return isinstance(msg, dict) and msg.get("event") in ("subscribe", "unsubscribe")


def _okx_names(msg: object) -> Iterator[str]:
    arg = msg.get("arg") if isinstance(msg, dict) else None
    native = arg.get("instId") if isinstance(arg, dict) else None
    if isinstance(native, str):
        yield native


REPLAY = ReplayRules(_okx_answer, _okx_names, as_recorded(okx_venue.split_inst_id))
