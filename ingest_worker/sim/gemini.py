"""The Gemini market data v2 dialect (`l2`) and `GET /v1/symbols`.

As `wss://api.gemini.com/v2/marketdata` does:

- `{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD",..]}]}` gets no
  acknowledgement: the first `l2_updates` of each symbol is the book itself, and it alone
  carries `trades` (the latest trades, up to 50) and `auction_events`; then `l2_updates`
  with only the levels that changed (`[side, price, quantity]`, quantity "0" removes the
  level) and one `trade` message per trade: `{"type":"trade","symbol","event_id","timestamp",
  "price","quantity","side"}` (the taker's side), as recorded (../shared/market-data/gemini);
- `{"type":"heartbeat","timestamp":<ms>}` every 5 s per subscribed connection;
- a request that is not a well-formed subscription, or names a symbol Gemini does not list,
  gets `{"result":"error","reason":"..","message":".."}` and the connection stays open.

The book is `sim/depth.py`'s book behind the model's quote (DEPTH levels a side, its top
the quote's), sent as `level_changes`, so that the updates a client applies rebuild exactly
the book the server holds. A client that
misses updates (a `/sim/silence`) gets a fresh book when data flows again. A client
that leaves a symbol (`unsubscribe`) and subscribes again gets a new book at once.

`fault(symbol, kind)` (`/sim/fault?venue=gemini&market=BTCUSD&kind=...`) sends the
symbol's subscribers one `l2_updates` the server's book does not hold: `crossed`, a bid
above the best ask (half a percent above, so that a test can tell it from any real bid;
what a client's book looks like after a missed update), or `bad_level`, a level whose
price is not a number. The server's book is unchanged: a fresh subscription gets it right.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ingest_worker.sim.coinbase import fixed, trimmed
from ingest_worker.sim.depth import book_levels, level_changes
from ingest_worker.sim.model import GEMINI, Market, Quote
from ingest_worker.sim.replay import ReplayRules, as_recorded, no_answer
from ingest_worker.sim.venue import VenueServer, json_text, log, peer_name
from ingest_worker.venues import gemini as gemini_venue

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = GEMINI
L2 = gemini_venue.CHANNELS["quote"]  # "l2"
DEPTH = 25  # levels per side: more than a book tick's DEPTH_LEVELS (20)
RECENT_TRADES = 50  # trades carried by a snapshot
HEARTBEAT_EVERY = 5  # heartbeat() calls (seconds) between two Gemini heartbeats


@dataclass
class SymbolState:
    """A symbol's book as the server holds it (price ticks -> quantity lots) and its recent trades."""

    market: Market
    event_id: int
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    trades: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_TRADES))  # newest first
    quoted: bool = False


class GeminiFrames:
    """The wire state of the simulated Gemini symbols and their messages."""

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        self._rng = random.Random(f"gemini-frames-{seed}")
        self.symbols = {m.native: SymbolState(m, self._rng.randrange(30_000_000_000, 40_000_000_000)) for m in markets}

    def update(self, quote: Quote) -> tuple[SymbolState, str | None]:
        """Apply an update: the symbol's state and its `l2_updates` message (None: the book did not change)."""
        state = self.symbols[quote.market.native]
        bids, asks = (dict(side) for side in book_levels(quote, DEPTH))
        changes = [("buy", price, size) for price, size in level_changes(state.bids, bids)]
        changes += [("sell", price, size) for price, size in level_changes(state.asks, asks)]
        state.bids, state.asks = bids, asks
        state.quoted = True
        message = self._l2_open(state, changes) + "}" if changes else None
        return state, message

    def _l2_open(self, state: SymbolState, changes: list[tuple[str, int, int]]) -> str:
        """An `l2_updates` message without its closing brace (a snapshot adds fields)."""
        market = state.market
        d, s = market.price_decimals, market.size_decimals
        listed = ",".join(f'["{side}","{fixed(price, d)}","{trimmed(size, s)}"]' for side, price, size in changes)
        return f'{{"type":"l2_updates","symbol":"{market.native}","changes":[{listed}]'

    def snapshot(self, state: SymbolState) -> str:
        """The first `l2_updates` of a subscription: every level, the recent trades, the auction events."""
        levels = [("buy", p, q) for p, q in sorted(state.bids.items(), reverse=True)]
        levels += [("sell", p, q) for p, q in sorted(state.asks.items())]
        return self._l2_open(state, levels) + f',"trades":[{",".join(state.trades)}],"auction_events":[]}}'

    def trade(self, quote: Quote) -> str:
        market = quote.market
        trade = quote.trade
        assert trade is not None
        state = self.symbols[market.native]
        state.event_id += 1 + int(self._rng.random() * 3)  # event ids count the symbol's other events too
        text = (
            f'{{"type":"trade","symbol":"{market.native}","event_id":{state.event_id},'
            f'"timestamp":{quote.time_ns // 1_000_000},"price":"{fixed(trade.price, market.price_decimals)}",'
            f'"quantity":"{trimmed(trade.size, market.size_decimals)}","side":"{trade.taker_side}"}}'
        )
        state.trades.appendleft(text)
        return text


def error_message(reason: str, message: str) -> str:
    return json_text({"result": "error", "reason": reason, "message": message})


class GeminiServer(VenueServer):
    """The simulated Gemini market data v2 endpoint."""

    name = NAME
    FAULT_KINDS = ("crossed", "bad_level")

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = GeminiFrames(self.markets, seed)
        self.symbols_of: dict[ServerConnection, dict[str, None]] = {}
        # symbol -> connections that have its book / wait for it (no quote yet when they subscribed).
        self._live: dict[str, set[ServerConnection]] = {}
        self._awaiting: dict[str, set[ServerConnection]] = {}
        self._beats = 0

    # --- HTTP ---------------------------------------------------------------------------
    def accepts_path(self, path: str) -> bool:
        return path in (gemini_venue.WS_PATH, gemini_venue.WS_PATH + "/")

    def rest(self, path: str, query: dict[str, list[str]], now_ns: int) -> tuple[int, object] | None:
        if path == gemini_venue.SYMBOLS_PATH:
            return 200, [m.native.lower() for m in self.markets]
        return None

    # --- WebSocket ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        self.symbols_of[connection] = {}
        self.connected(connection)
        try:
            async for message in connection:
                for answer in self.on_message(connection, message):
                    await connection.send(answer)
        except ConnectionClosed:
            pass
        finally:
            self._leave(connection, list(self.symbols_of[connection]))
            del self.symbols_of[connection]
            self.disconnected(connection)

    def on_message(self, connection: ServerConnection, message: str | bytes) -> list[str]:
        """The frames answering one request: the books of newly subscribed symbols, or an error."""
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            return [error_message("InvalidJson", "Failed to parse the request as JSON")]
        kind = request.get("type") if isinstance(request, dict) else None
        subscriptions = request.get("subscriptions") if isinstance(request, dict) else None
        if kind not in ("subscribe", "unsubscribe") or not isinstance(subscriptions, list) or not subscriptions:
            return [error_message("InvalidRequest", "Expected a subscribe or unsubscribe with subscriptions")]
        known = {m.native for m in self.markets}
        wanted: list[str] = []
        for subscription in subscriptions:
            if not isinstance(subscription, dict) or subscription.get("name") != L2:
                return [error_message("InvalidSubscription", f"Unsupported subscription {subscription!r:.100}")]
            symbols = subscription.get("symbols")
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                return [error_message("InvalidSymbols", "symbols must be a list of symbol names")]
            unknown = [s for s in symbols if s.upper() not in known]
            if unknown:
                return [error_message("InvalidSymbols", f"Unknown symbol(s): {', '.join(unknown)}")]
            wanted += [s.upper() for s in symbols if s.upper() not in wanted]
        if kind == "unsubscribe":
            self._leave(connection, wanted)
            return []
        answers: list[str] = []
        mine = self.symbols_of[connection]
        for symbol in wanted:
            if symbol in mine:
                continue
            mine[symbol] = None
            state = self.frames.symbols[symbol]
            if state.quoted and not self.silent_until_ns:
                answers.append(self.frames.snapshot(state))
                self._live.setdefault(symbol, set()).add(connection)
            else:
                self._awaiting.setdefault(symbol, set()).add(connection)
        self.set_subscribed(connection, bool(mine))
        if wanted:
            log.info("%s: client %s subscribed to l2 %s", self.name, peer_name(connection), ", ".join(wanted))
        return answers

    def _leave(self, connection: ServerConnection, symbols: Iterable[str]) -> None:
        mine = self.symbols_of[connection]
        for symbol in symbols:
            mine.pop(symbol, None)
            for index in (self._live, self._awaiting):
                listeners = index.get(symbol)
                if listeners is not None:
                    listeners.discard(connection)
                    if not listeners:
                        del index[symbol]
        self.set_subscribed(connection, bool(mine))

    # --- market data ----------------------------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Queue each update's level changes and trade; a client still waiting for a book gets the book."""
        frames = self.frames
        outbox = self.outbox
        live = self._live
        awaiting = self._awaiting
        for quote in quotes:
            state, changes = frames.update(quote)
            trade = frames.trade(quote) if quote.trade is not None else None
            native = quote.market.native
            if silent:
                # Clients miss these changes: their books would go wrong, so they get a new one when data flows.
                missed = live.pop(native, None)
                if missed:
                    awaiting.setdefault(native, set()).update(missed)
                continue
            waiting = awaiting.pop(native, None)
            if waiting:
                outbox.add(waiting, frames.snapshot(state).encode())
            listeners = live.get(native)
            if listeners:
                if changes is not None:
                    outbox.add(listeners, changes.encode())
                if trade is not None:
                    outbox.add(listeners, trade.encode())
            if waiting:
                live.setdefault(native, set()).update(waiting)

    def heartbeat(self, now_ns: int, silent: bool) -> None:
        self._beats += 1
        if self._beats % HEARTBEAT_EVERY == 0 and self.subscribed:
            self.outbox.add(self.subscribed, f'{{"type":"heartbeat","timestamp":{now_ns // 1_000_000}}}'.encode())

    def fault(self, market: str, kind: str) -> dict[str, Any]:
        state = self.fault_target(self.frames.symbols, market.upper(), kind)
        if not state.asks:
            raise ValueError(f"{state.market.native} has no book yet")
        market_ = state.market
        if kind == "crossed":
            best_ask = min(state.asks)  # half a percent above it: unmistakable in a test's quotes
            price = fixed(best_ask + max(1, best_ask // 200), market_.price_decimals)
            change = f'["buy","{price}","{trimmed(1, market_.size_decimals)}"]'
        else:
            change = '["sell","NaN","1"]'
        frame = f'{{"type":"l2_updates","symbol":"{market_.native}","changes":[{change}]}}'
        listeners = self._live.get(market_.native, set())
        self.outbox.add(listeners, frame.encode())
        self.flush()
        log.info("%s: fault %s sent to %d client(s) of %s", self.name, kind, len(listeners), market_.native)
        return {"venue": self.name, "market": market_.native, "kind": kind, "clients": len(listeners), "frame": frame}

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["symbols"] = sorted(self._live)
        return status


def dialect(markets: Sequence[Market], config: SimConfig) -> VenueServer:
    """The simulator's registry entry (ingest_worker/sim/server.py finds it beside the venue's name)."""
    return GeminiServer(markets, config.seed)


# --- how `--replay` reads a capture of this venue (ingest_worker/sim/replay.py) ----------
def _gemini_names(msg: object) -> Iterator[str]:
    if isinstance(msg, dict) and msg.get("type") in ("l2_updates", "trade") and isinstance(msg.get("symbol"), str):
        yield msg["symbol"]


REPLAY = ReplayRules(no_answer, _gemini_names, as_recorded(gemini_venue.split_symbol))
