"""The OKX v5 dialect: the public WebSocket (`tickers`, `trades`) and `GET /api/v5/public/instruments`.

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

Recorded traffic: ../shared/market-data/okx (tickers.jsonl, trades.jsonl).
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

from ingest_worker.sim.coinbase import trimmed
from ingest_worker.sim.model import OKX, Market, Quote, profile_of
from ingest_worker.sim.replay import ReplayRules, as_recorded
from ingest_worker.sim.venue import VenueServer, json_text, log, peer_name
from ingest_worker.venues import okx as okx_venue

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = OKX
TICKERS = okx_venue.CHANNELS["quote"]  # "tickers"
TRADES = okx_venue.CHANNELS["trade"]  # "trades"
SERVED_CHANNELS = (TICKERS, TRADES)
INSTRUMENTS_PATH = okx_venue.INSTRUMENTS_PATH.partition("?")[0]  # /api/v5/public/instruments
IDLE_TIMEOUT_S = 30.0  # OKX closes a connection that sent nothing for this long
IDLE_CLOSE_CODE = 4004


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
            )

    def update(self, quote: Quote) -> InstrumentState:
        state = self.instruments[quote.market.native]
        state.bid, state.ask = quote.bid, quote.ask
        state.bid_size, state.ask_size = quote.bid_size, quote.ask_size
        state.time_ns = quote.time_ns
        state.quoted = True
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
        return state

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

    def __init__(self, markets: Sequence[Market], seed: int = 0, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = OkxFrames(self.markets, seed)
        self.idle_timeout_s = idle_timeout_s
        self.idle_closes = 0  # connections closed for sending nothing
        self.clients: dict[ServerConnection, OkxClient] = {}
        self._conn_ids = random.Random(f"okx-connections-{seed}")
        # channel -> instId -> connections; the publish path reads only these.
        self._index: dict[str, dict[str, set[ServerConnection]]] = {name: {} for name in SERVED_CHANNELS}

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
            # OKX pushes the current ticker of a newly subscribed instrument at once.
            state = self.frames.instruments[inst]
            if channel == TICKERS and state.quoted and not self.silent_until_ns:
                answers.append(self.frames.ticker(state))
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
        """Queue a `tickers` push per update and a `trades` push per trade, each built once."""
        tickers = self._index[TICKERS]
        trades = self._index[TRADES]
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
                    outbox.add(listeners, frames.trade(state, quote.trade.taker_side).encode())

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["channels"] = {name: sorted(insts) for name, insts in self._index.items() if insts}
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
