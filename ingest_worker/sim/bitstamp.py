"""The Bitstamp WebSocket v2 dialect (`order_book_<pair>`, `live_trades_<pair>`) and its REST pair list.

As `wss://ws.bitstamp.net` does, on path `/`:

- `{"event":"bts:subscribe","data":{"channel":"order_book_btcusd"}}` (one channel per request) is
  answered `{"event":"bts:subscription_succeeded","channel":"order_book_btcusd","data":{}}`;
  `bts:unsubscribe` with `bts:unsubscription_succeeded`; a channel that does not exist or a bad
  request gets `{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription string."}}`
  and the connection stays open; `{"event":"bts:heartbeat"}` is answered
  `{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}`.
- `order_book_<pair>`: on every book change, a full snapshot of the top 100 levels per side, best
  first: `{"data":{"timestamp":"..","microtimestamp":"..","bids":[["price","amount"],..],"asks":[..]},
  "channel":"order_book_btcusd","event":"data"}`, prices with the pair's counter decimals, amounts
  with 8: `sim/depth.py`'s book behind the model's quote, so that its top is the quote's.
- `live_trades_<pair>`: `{"data":{"id","timestamp","amount","amount_str","price","price_str","type",
  "microtimestamp","buy_order_id","sell_order_id"},"channel":"live_trades_btcusd","event":"trade"}`,
  `type` 0 when the taker bought, 1 when it sold, in the recorded key order
  (../shared/market-data/bitstamp/live_trades.jsonl).
- `GET /api/v2/trading-pairs-info/` and `GET /api/v2/order_book/<pair>` (the top 100 levels).

`fault(pair, "crossed")` (`/sim/fault?venue=bitstamp&market=btcusd&kind=crossed`) sends the pair's
`order_book` subscribers one message whose best bid is half a percent above its best ask; the
next message is a whole, good book again, as every order_book message is.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ingest_worker.sim.coinbase import fixed
from ingest_worker.sim.depth import Levels, book_levels
from ingest_worker.sim.model import BITSTAMP, Market, Quote
from ingest_worker.sim.replay import ReplayRules, as_recorded
from ingest_worker.sim.venue import VenueServer, json_text, log, peer_name
from ingest_worker.venues import bitstamp as bitstamp_venue

if TYPE_CHECKING:
    from ingest_worker.sim.server import SimConfig

NAME = BITSTAMP
BOOK = bitstamp_venue.BOOK_CHANNEL  # "order_book"
TRADES = bitstamp_venue.TRADES_CHANNEL  # "live_trades"
SERVED_CHANNELS = (BOOK, TRADES)
DEPTH = 100  # levels per side in an order_book message
BAD_SUBSCRIPTION = '{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription string."}}'
ORDER_BOOK_PREFIX = bitstamp_venue.ORDER_BOOK_PATH.partition("{")[0]  # /api/v2/order_book/


@dataclass
class PairState:
    market: Market
    trade_id: int
    order_id: int
    quote: Quote | None = None  # the last one: the book behind it is the pair's


class BitstampFrames:
    """The wire state of the simulated Bitstamp pairs and their messages."""

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        rng = random.Random(f"bitstamp-frames-{seed}")
        self.pairs: dict[str, PairState] = {
            m.native: PairState(m, rng.randrange(100_000_000, 300_000_000), rng.randrange(10**15, 2 * 10**15))
            for m in markets
        }

    def update(self, quote: Quote) -> PairState:
        state = self.pairs[quote.market.native]
        state.quote = quote
        return state

    def book_data(self, state: PairState, crossed: bool = False) -> str:
        """The `data` object of an order_book message (and the body of the REST order book); `crossed`:
        with a best bid half a percent above the best ask (a fault)."""
        market = state.market
        quote = state.quote
        assert quote is not None, "a book before the pair's first quote"
        bids, asks = book_levels(quote, DEPTH)
        if crossed:
            bids = [(asks[0][0] + max(1, asks[0][0] // 200), 1), *bids]
        return self._data(market, quote.time_ns // 1000, bids, asks)

    @staticmethod
    def _data(market: Market, micros: int, bids: Levels, asks: Levels) -> str:
        d, s = market.price_decimals, market.size_decimals
        levels = ",".join
        return (
            f'{{"timestamp":"{micros // 1_000_000}","microtimestamp":"{micros}",'
            f'"bids":[{levels(f"[{_q(fixed(p, d))},{_q(fixed(a, s))}]" for p, a in bids)}],'
            f'"asks":[{levels(f"[{_q(fixed(p, d))},{_q(fixed(a, s))}]" for p, a in asks)}]}}'
        )

    def order_book(self, state: PairState, crossed: bool = False) -> str:
        data = self.book_data(state, crossed)
        return f'{{"data":{data},"channel":"order_book_{state.market.native}","event":"data"}}'

    def trade(self, quote: Quote) -> str:
        market = quote.market
        trade = quote.trade
        assert trade is not None
        state = self.pairs[market.native]
        state.trade_id += 1
        state.order_id += 2
        price = fixed(trade.price, market.price_decimals)
        amount = fixed(trade.size, market.size_decimals)
        micros = quote.time_ns // 1000
        buy_order, sell_order = state.order_id, state.order_id - 1
        if trade.taker_side == "sell":
            buy_order, sell_order = sell_order, buy_order
        return (
            f'{{"data":{{"id":{state.trade_id},"timestamp":"{micros // 1_000_000}",'
            f'"amount":{_number(amount)},"amount_str":"{amount}","price":{_number(price)},"price_str":"{price}",'
            f'"type":{0 if trade.taker_side == "buy" else 1},"microtimestamp":"{micros}",'
            f'"buy_order_id":{buy_order},"sell_order_id":{sell_order}}},'
            f'"channel":"live_trades_{market.native}","event":"trade"}}'
        )


def _q(text: str) -> str:
    return f'"{text}"'


def _number(text: str) -> str:
    """A decimal as a JSON number the way Bitstamp writes one: no trailing zeros, but a digit after a dot."""
    if "." not in text:
        return text
    trimmed = text.rstrip("0")
    return trimmed + "0" if trimmed.endswith(".") else trimmed


class BitstampServer(VenueServer):
    """The simulated Bitstamp WebSocket v2 endpoint."""

    name = NAME

    def __init__(self, markets: Sequence[Market], seed: int = 0) -> None:
        super().__init__()
        self.markets = [m for m in markets if m.venue == NAME]
        self.frames = BitstampFrames(self.markets, seed)
        self.channels_of: dict[ServerConnection, dict[str, None]] = {}
        # channel name (`order_book_btcusd`) -> connections; the publish path reads only these.
        self._index: dict[str, set[ServerConnection]] = {}
        self._known = {f"{channel}_{m.native}" for m in self.markets for channel in SERVED_CHANNELS}

    # --- HTTP ---------------------------------------------------------------------------
    def accepts_path(self, path: str) -> bool:
        return path in ("", "/")

    def rest(self, path: str, query: dict[str, list[str]], now_ns: int) -> tuple[int, object] | None:
        if path == bitstamp_venue.MARKETS_PATH:
            return 200, [_pair_info(m) for m in self.markets]
        if path.startswith(ORDER_BOOK_PREFIX):
            state = self.frames.pairs.get(path[len(ORDER_BOOK_PREFIX) :].strip("/"))
            if state is None:
                return 404, {"status": "error", "reason": "Not Found"}
            if state.quote is None:
                return 200, {
                    "timestamp": str(now_ns // 10**9),
                    "microtimestamp": str(now_ns // 1000),
                    "bids": [],
                    "asks": [],
                }
            return 200, orjson.loads(self.frames.book_data(state))
        return None

    # --- WebSocket ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        self.channels_of[connection] = {}
        self.connected(connection)
        try:
            async for message in connection:
                for answer in self.on_message(connection, message):
                    await connection.send(answer)
        except ConnectionClosed:
            pass
        finally:
            for channel in list(self.channels_of[connection]):
                self._leave(connection, channel)
            del self.channels_of[connection]
            self.disconnected(connection)

    def on_message(self, connection: ServerConnection, message: str | bytes) -> list[str]:
        """The frames answering one request: a (un)subscription event (then the current book) or an error."""
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            return [BAD_SUBSCRIPTION]
        if not isinstance(request, dict):
            return [BAD_SUBSCRIPTION]
        event = request.get("event")
        if event == "bts:heartbeat":
            return ['{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}']
        data = request.get("data")
        channel = data.get("channel") if isinstance(data, dict) else None
        if event not in ("bts:subscribe", "bts:unsubscribe") or not isinstance(channel, str):
            return [BAD_SUBSCRIPTION]
        if channel not in self._known:
            return [BAD_SUBSCRIPTION]
        if event == "bts:unsubscribe":
            self._leave(connection, channel)
            return [json_text({"event": "bts:unsubscription_succeeded", "channel": channel, "data": {}})]
        channels = self.channels_of[connection]
        if channel not in channels:
            channels[channel] = None
            self._index.setdefault(channel, set()).add(connection)
            self.set_subscribed(connection, True)
            log.info("%s: client %s subscribed to %s", self.name, peer_name(connection), channel)
        return [json_text({"event": "bts:subscription_succeeded", "channel": channel, "data": {}})]

    def _leave(self, connection: ServerConnection, channel: str) -> None:
        channels = self.channels_of[connection]
        channels.pop(channel, None)
        listeners = self._index.get(channel)
        if listeners is not None:
            listeners.discard(connection)
            if not listeners:
                del self._index[channel]
        self.set_subscribed(connection, bool(channels))

    # --- market data ----------------------------------------------------------------------
    def publish(self, quotes: Iterable[Quote], silent: bool) -> None:
        """Queue an order_book snapshot per book change and a live_trades message per trade, each built once."""
        index = self._index
        frames = self.frames
        outbox = self.outbox
        for quote in quotes:
            state = frames.update(quote)
            if silent:
                continue
            native = quote.market.native
            listeners = index.get(f"order_book_{native}")
            if listeners:
                outbox.add(listeners, frames.order_book(state).encode())
            if quote.trade is not None:
                listeners = index.get(f"live_trades_{native}")
                if listeners:
                    outbox.add(listeners, frames.trade(quote).encode())
                else:
                    frames.pairs[native].trade_id += 1  # trade ids count every trade, watched or not

    FAULT_KINDS = ("crossed",)

    def fault(self, market: str, kind: str) -> dict[str, Any]:
        state = self.fault_target(self.frames.pairs, market.lower(), kind)
        if state.quote is None:
            raise ValueError(f"{state.market.native} has no book yet")
        frame = self.frames.order_book(state, crossed=True)
        listeners = self._index.get(f"order_book_{state.market.native}", set())
        self.outbox.add(listeners, frame.encode())
        self.flush()
        log.info("%s: fault %s sent to %d client(s) of %s", self.name, kind, len(listeners), state.market.native)
        return {
            "venue": self.name,
            "market": state.market.native,
            "kind": kind,
            "clients": len(listeners),
            "frame": frame,
        }

    def status(self, now_ns: int) -> dict[str, Any]:
        status = super().status(now_ns)
        status["channels"] = sorted(self._index)
        return status


def _pair_info(market: Market) -> dict[str, object]:
    return {
        "name": f"{market.asset}/{market.quote}",
        "url_symbol": market.native,
        "base_decimals": market.size_decimals,
        "counter_decimals": market.price_decimals,
        "instant_order_counter_decimals": market.price_decimals,
        "minimum_order": f"10.{'0' * market.price_decimals} {market.quote}"
        if market.price_decimals
        else f"10 {market.quote}",
        "trading": "Enabled",
        "instant_and_market_orders": "Enabled",
        "description": f"{market.asset} / {market.quote}",
    }


def dialect(markets: Sequence[Market], config: SimConfig) -> VenueServer:
    """The simulator's registry entry (ingest_worker/sim/server.py finds it beside the venue's name)."""
    return BitstampServer(markets, config.seed)


# --- how `--replay` reads a capture of this venue (ingest_worker/sim/replay.py) ----------
def _bitstamp_answer(msg: object) -> bool:
    return isinstance(msg, dict) and msg.get("event") in ("bts:subscription_succeeded", "bts:unsubscription_succeeded")


def _bitstamp_names(msg: object) -> Iterator[str]:
    channel = msg.get("channel") if isinstance(msg, dict) else None
    if isinstance(channel, str):
        kind, _, pair = channel.rpartition("_")  # order_book_btcusd, diff_order_book_btcusd, live_trades_btcusd
        if kind:
            yield pair


REPLAY = ReplayRules(_bitstamp_answer, _bitstamp_names, as_recorded(bitstamp_venue.split_pair))
