"""Serving a capture file instead of the market model (`run_exchange_sim --replay CAPTURE`).

A capture (DESIGN.md, "Capture file") holds one `{"recv_ms", "exchange", "raw"}`
object per line. The replay sends each venue's frames, byte for byte, to that
venue's clients, in `recv_ms` order (ties in file order, as `manage.py replay`
orders them), at the recorded pace or `speed` times faster (`speed` 0: as fast
as the clients take them). Every simulated venue is replayed (`REPLAYED_VENUES`).

What a client receives, exactly:
- every frame of its venue, whatever it subscribed to, once it has subscribed to
  anything (a Binance stream by URL or SUBSCRIBE, a Coinbase channel, ...): the
  simplest rule that replays a recorded session faithfully, since the recorder
  subscribed to what it recorded. Frames are not re-wrapped: a capture of
  combined-stream frames stays combined on a `/ws/` connection, and a Kraken v1
  recording stays v1 on the simulator's v2 endpoint (the parser reads both).
- not the recorded answers to the recorder's own subscription requests, where the
  venue answers apart from the data: Binance `{"result":..,"id":..}`, Coinbase
  `subscriptions`, Kraken v1 `{"event":"subscriptionStatus"}` and v2
  `{"method":"subscribe"|"unsubscribe",..}`, OKX `{"event":"subscribe"|"unsubscribe"}`,
  Bitstamp `bts:subscription_succeeded` / `bts:unsubscription_succeeded`. The client
  gets the simulator's answers to its own requests instead, as live; they are
  counted per venue. Kraken v1 data frames do carry the `channelID` of their
  `subscriptionStatus`, but they also end with the channel name and the pair, which
  is what a client reads (Kraken calls channelID deprecated): they need no answer.
  Gemini's market data v2 answers a subscription with nothing but the data itself.
- Bitfinex is the exception: its data frames name their channel only by the
  `chanId` that the connection's `subscribed` event assigned, so the recorded
  `subscribed` events are data, and are replayed as recorded, like `info` (which
  starts a connection's channel ids afresh), `conf` and the `[chanId,"hb",seq]`
  heartbeats. The simulator still answers the client's own subscriptions, with the
  channel id the capture recorded for that channel and symbol, and never gives a
  capture's id to another channel (`BitfinexServer.replaying`): the two answers a
  client then gets agree, and no recorded data frame can be read as another channel's.
- bad lines of the capture (not JSON, missing fields: `signals_app/contracts/capture.py` reads
  the file) are skipped and counted; bad *frames* inside good lines are sent as recorded: they
  are part of the session.

The venues' market lists (each dialect's own REST format: `exchangeInfo`, `/products`,
`AssetPairs`, `instruments`, `trading-pairs-info`, `/v1/symbols`,
`conf/pub:list:pair:exchange`) are the markets the capture's frames name, so that a
client that subscribes to "every listed market" subscribes to the recorded ones. The
recorded subscription answers count as naming their markets: a market the recorder
subscribed to that stayed silent is listed, as it was on the venue. Names are split with
each venue's own helpers; a market is listed under the dialect's name for it (Kraken's
v1 `XBT/CHF` is the v2 `BTC/CHF`, which the simulator's `AssetPairs` lists as
`wsname` `XBT/CHF`), and derivatives (OKX futures, swaps, options) are not spot markets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import orjson

from ingest_worker.sim.model import BINANCE, BITFINEX, BITSTAMP, COINBASE, GEMINI, KRAKEN, OKX, Market
from ingest_worker.venues import bitfinex as bitfinex_venue
from ingest_worker.venues import bitstamp as bitstamp_venue
from ingest_worker.venues import gemini as gemini_venue
from ingest_worker.venues import kraken as kraken_venue
from ingest_worker.venues import okx as okx_venue
from ingest_worker.venues.coinbase import split_product
from signals_app.contracts import capture as capture_file
from signals_app.contracts.capture import CaptureLine
from signals_app.contracts.symbols import canonical, split_concatenated

# --- what each venue's recorded frames say -------------------------------------------
# Each reads a decoded frame (any JSON value: recordings hold bad frames too).


def _binance_answer(msg: object) -> bool:
    return isinstance(msg, dict) and "result" in msg and "id" in msg and "stream" not in msg


def _coinbase_answer(msg: object) -> bool:
    return isinstance(msg, dict) and msg.get("type") == "subscriptions"


def _kraken_answer(msg: object) -> bool:
    # v1 {"event":"subscriptionStatus",..}; v2 {"method":"subscribe","result":{..},"success":true,..}
    # (and their failures: an answer to the recorder's request all the same).
    return isinstance(msg, dict) and (
        msg.get("event") == "subscriptionStatus" or msg.get("method") in ("subscribe", "unsubscribe")
    )


def _okx_answer(msg: object) -> bool:
    return isinstance(msg, dict) and msg.get("event") in ("subscribe", "unsubscribe")


def _bitstamp_answer(msg: object) -> bool:
    return isinstance(msg, dict) and msg.get("event") in ("bts:subscription_succeeded", "bts:unsubscription_succeeded")


def _no_answer(msg: object) -> bool:
    """Gemini answers a subscription with the data itself; Bitfinex's answers are data (module docstring)."""
    return False


def _binance_names(msg: object) -> Iterator[str]:
    data = msg.get("data", msg) if isinstance(msg, dict) else None  # combined streams wrap the payload
    native = data.get("s") if isinstance(data, dict) else None
    if isinstance(native, str) and native.isalnum():
        yield native


def _coinbase_names(msg: object) -> Iterator[str]:
    native = msg.get("product_id") if isinstance(msg, dict) else None
    if isinstance(native, str):
        yield native


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


def _okx_names(msg: object) -> Iterator[str]:
    arg = msg.get("arg") if isinstance(msg, dict) else None
    native = arg.get("instId") if isinstance(arg, dict) else None
    if isinstance(native, str):
        yield native


def _bitstamp_names(msg: object) -> Iterator[str]:
    channel = msg.get("channel") if isinstance(msg, dict) else None
    if isinstance(channel, str):
        kind, _, pair = channel.rpartition("_")  # order_book_btcusd, diff_order_book_btcusd, live_trades_btcusd
        if kind:
            yield pair


def _gemini_names(msg: object) -> Iterator[str]:
    if isinstance(msg, dict) and msg.get("type") in ("l2_updates", "trade") and isinstance(msg.get("symbol"), str):
        yield msg["symbol"]


def _bitfinex_names(msg: object) -> Iterator[str]:
    # Data frames carry channel ids only; the `subscribed` events name the markets.
    if isinstance(msg, dict) and msg.get("event") == "subscribed" and isinstance(msg.get("symbol"), str):
        yield msg["symbol"]


MarketOf = Callable[[str], "tuple[str, str, str] | None"]


def _as_recorded(split: Callable[[str], tuple[str, str] | None]) -> MarketOf:
    """A venue whose dialect takes the recorded names: (that name, canonical base, canonical quote)."""

    def market(native: str) -> tuple[str, str, str] | None:
        parts = split(native)
        if parts is None:
            return None
        base, _, quote = canonical(*parts).partition("/")
        return native, base, quote

    return market


def _kraken_market(native: str) -> tuple[str, str, str] | None:
    """A v1 name (`XBT/CHF`) becomes the v2 name the dialect lists and takes (`BTC/CHF`)."""
    parts = kraken_venue.split_pair(native)
    if parts is None:
        return None
    symbol = canonical(*parts)
    base, _, quote = symbol.partition("/")
    return kraken_venue.to_native(symbol), base, quote


def _binance_split(native: str) -> tuple[str, str] | None:
    return split_concatenated(native)


class ReplayRules(NamedTuple):
    """How the replay reads one venue's recorded frames."""

    is_answer: Callable[[object], bool]  # a recorded answer to the recorder's own subscription request
    names: Callable[[object], Iterator[str]]  # the market names a frame carries, as recorded
    market: MarketOf  # a recorded name -> (the dialect's name for the market, base, quote); None: not spot


REPLAY_RULES: dict[str, ReplayRules] = {
    BINANCE: ReplayRules(_binance_answer, _binance_names, _as_recorded(_binance_split)),
    COINBASE: ReplayRules(_coinbase_answer, _coinbase_names, _as_recorded(split_product)),
    KRAKEN: ReplayRules(_kraken_answer, _kraken_names, _kraken_market),
    OKX: ReplayRules(_okx_answer, _okx_names, _as_recorded(okx_venue.split_inst_id)),
    BITSTAMP: ReplayRules(_bitstamp_answer, _bitstamp_names, _as_recorded(bitstamp_venue.split_pair)),
    GEMINI: ReplayRules(_no_answer, _gemini_names, _as_recorded(gemini_venue.split_symbol)),
    BITFINEX: ReplayRules(_no_answer, _bitfinex_names, _as_recorded(bitfinex_venue.split_pair)),
}
REPLAYED_VENUES: tuple[str, ...] = tuple(REPLAY_RULES)


def _decoded(raw: str) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


# --- the capture ------------------------------------------------------------------------
@dataclass
class Capture:
    frames: list[CaptureLine]  # in replay order
    markets: list[Market]
    lines: int = 0
    bad_lines: int = 0  # not a capture line (signals_app/contracts/capture.py)
    subscription_answers: dict[str, int] = field(default_factory=dict)  # per venue: recorded answers, not replayed
    unknown_exchange: dict[str, int] = field(default_factory=dict)

    @property
    def venues(self) -> list[str]:
        """The simulated venues with at least one frame to replay."""
        present = {frame.exchange for frame in self.frames}
        return [venue for venue in REPLAYED_VENUES if venue in present]

    def summary(self) -> str:
        per_venue = ", ".join(f"{venue} {sum(1 for f in self.frames if f.exchange == venue)}" for venue in self.venues)
        answers = ", ".join(f"{name} {count}" for name, count in self.subscription_answers.items())
        unknown = ", ".join(f"{name} {count}" for name, count in sorted(self.unknown_exchange.items()))
        return (
            f"{len(self.frames)} frames to replay ({per_venue or 'none'}), {len(self.markets)} markets; "
            f"skipped: {self.bad_lines} bad lines, subscription answers ({answers or 'none'})"
            + (f", unknown exchanges: {unknown}" if unknown else "")
        )


def load_capture(path: Path | str) -> Capture:
    """Read a capture file: its frames in replay order and the markets they trade."""
    capture = Capture(frames=[], markets=[])
    recorded: list[CaptureLine] = []
    for line in capture_file.read_in_order([path], capture):
        if line.exchange in REPLAY_RULES:
            recorded.append(line)
        else:
            capture.unknown_exchange[line.exchange] = capture.unknown_exchange.get(line.exchange, 0) + 1
    capture.markets = markets_in(recorded)  # the subscription answers name markets too
    answers = capture.subscription_answers
    for frame in recorded:
        if is_subscription_answer(frame.exchange, frame.raw):
            answers[frame.exchange] = answers.get(frame.exchange, 0) + 1
        else:
            capture.frames.append(frame)
    return capture


def is_subscription_answer(exchange: str, raw: str) -> bool:
    """A recorded answer to the recorder's own (un)subscribe request, which the replay leaves out."""
    rules = REPLAY_RULES.get(exchange)
    return rules is not None and rules.is_answer(_decoded(raw))


def markets_in(frames: Iterable[CaptureLine]) -> list[Market]:
    """Every spot market the frames name, per venue (in `REPLAYED_VENUES` order) in order of first appearance."""
    found: dict[str, dict[str, tuple[str, str]]] = {venue: {} for venue in REPLAYED_VENUES}
    for frame in frames:
        rules = REPLAY_RULES.get(frame.exchange)
        if rules is None:
            continue
        listed = found[frame.exchange]
        for name in rules.names(_decoded(frame.raw)):
            market = rules.market(name)
            if market is not None:
                native, base, quote = market
                listed.setdefault(native, (base, quote))
    markets: list[Market] = []
    for venue, listed in found.items():
        for native, (base, quote) in listed.items():
            markets.append(Market(len(markets), venue, base, quote, native, 8, 8))
    return markets


class ReplayCursor:
    """Which frames are due once `elapsed_ms` of replay time have passed, at `speed`× the recorded pace."""

    def __init__(self, frames: Sequence[CaptureLine], speed: float) -> None:
        if not speed >= 0:
            raise ValueError(f"speed must be >= 0, not {speed}")
        self.frames = frames
        self.speed = speed
        self.position = 0
        self._first_ms = frames[0].recv_ms if frames else 0.0

    @property
    def done(self) -> bool:
        return self.position >= len(self.frames)

    def due_at_ms(self, frame: CaptureLine) -> float:
        """The replay time at which `frame` is due (0 for the first frame; always 0 at speed 0)."""
        if self.speed == 0:
            return 0.0
        return max(0.0, frame.recv_ms - self._first_ms) / self.speed

    def next_due_ms(self) -> float | None:
        return None if self.done else self.due_at_ms(self.frames[self.position])

    def take(self, elapsed_ms: float, limit: int) -> list[CaptureLine]:
        """The next frames due by `elapsed_ms`, at most `limit`, in order."""
        frames = self.frames
        start = self.position
        end = start
        stop = min(len(frames), start + limit)
        while end < stop and self.due_at_ms(frames[end]) <= elapsed_ms:
            end += 1
        self.position = end
        return list(frames[start:end])
