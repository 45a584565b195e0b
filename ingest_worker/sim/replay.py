"""Serving a capture file instead of the market model (`run_exchange_sim --replay CAPTURE`).

A capture (DESIGN.md, "Capture file") holds one `{"recv_ms", "exchange", "raw"}`
object per line. The replay sends each venue's frames, byte for byte, to that
venue's clients, in `recv_ms` order (ties in file order, as `manage.py replay`
orders them), at the recorded pace or `speed` times faster (`speed` 0: as fast
as the clients take them). Every simulated venue is replayed (`replay_rules()`: each dialect's
`REPLAY`).

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

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import orjson

from ingest_worker.sim.model import Market
from ingest_worker.venues import VENUES as REGISTRY
from signals_app.contracts import capture as capture_file
from signals_app.contracts.capture import CaptureLine
from signals_app.contracts.symbols import canonical

# --- how the replay reads a venue's recorded frames ----------------------------------------
# Each venue's rules are declared beside its dialect (`REPLAY` in ingest_worker/sim/<venue>.py);
# each reads a decoded frame (any JSON value: recordings hold bad frames too).
MarketOf = Callable[[str], "tuple[str, str, str] | None"]


def as_recorded(split: Callable[[str], tuple[str, str] | None]) -> MarketOf:
    """A venue whose dialect takes the recorded names: (that name, canonical base, canonical quote)."""

    def market(native: str) -> tuple[str, str, str] | None:
        parts = split(native)
        if parts is None:
            return None
        base, _, quote = canonical(*parts).partition("/")
        return native, base, quote

    return market


def no_answer(msg: object) -> bool:
    """A venue that answers a subscription with the data itself (Gemini), or whose answers are data (Bitfinex)."""
    return False


class ReplayRules(NamedTuple):
    """How the replay reads one venue's recorded frames."""

    is_answer: Callable[[object], bool]  # a recorded answer to the recorder's own subscription request
    names: Callable[[object], Iterator[str]]  # the market names a frame carries, as recorded
    market: MarketOf  # a recorded name -> (the dialect's name for the market, base, quote); None: not spot


@cache
def replay_rules() -> Mapping[str, ReplayRules]:
    """venue -> its dialect's `REPLAY`, for every registered venue, in the registry's order."""
    return MappingProxyType({name: importlib.import_module(f"ingest_worker.sim.{name}").REPLAY for name in REGISTRY})


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
    # REST snapshot lines (`"rest"`): a client fetches those over HTTP, so they are not sent as frames.
    rest_lines: int = 0

    @property
    def venues(self) -> list[str]:
        """The simulated venues with at least one frame to replay."""
        present = {frame.exchange for frame in self.frames}
        return [venue for venue in replay_rules() if venue in present]

    def summary(self) -> str:
        per_venue = ", ".join(f"{venue} {sum(1 for f in self.frames if f.exchange == venue)}" for venue in self.venues)
        answers = ", ".join(f"{name} {count}" for name, count in self.subscription_answers.items())
        unknown = ", ".join(f"{name} {count}" for name, count in sorted(self.unknown_exchange.items()))
        return (
            f"{len(self.frames)} frames to replay ({per_venue or 'none'}), {len(self.markets)} markets; "
            f"skipped: {self.bad_lines} bad lines, subscription answers ({answers or 'none'})"
            + (f", unknown exchanges: {unknown}" if unknown else "")
            + (f", REST snapshot lines: {self.rest_lines}" if self.rest_lines else "")
        )


def load_capture(path: Path | str) -> Capture:
    """Read a capture file: its frames in replay order and the markets they trade."""
    capture = Capture(frames=[], markets=[])
    recorded: list[CaptureLine] = []
    for line in capture_file.read_in_order([path], capture):
        if line.rest is not None:
            capture.rest_lines += 1
        elif line.exchange in replay_rules():
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
    rules = replay_rules().get(exchange)
    return rules is not None and rules.is_answer(_decoded(raw))


def markets_in(frames: Iterable[CaptureLine]) -> list[Market]:
    """Every spot market the frames name, per venue (in `replay_rules()` order) in order of first appearance."""
    found: dict[str, dict[str, tuple[str, str]]] = {venue: {} for venue in replay_rules()}
    for frame in frames:
        rules = replay_rules().get(frame.exchange)
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
