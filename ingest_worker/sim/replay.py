"""Serving a capture file instead of the market model (`run_exchange_sim --replay CAPTURE`).

A capture (DESIGN.md, "Capture file") holds one `{"recv_ms", "exchange", "raw"}`
object per line. The replay sends each venue's frames, byte for byte, to that
venue's clients, in `recv_ms` order (ties in file order, as `manage.py replay`
orders them), at the recorded pace or `speed` times faster (`speed` 0: as fast
as the clients take them).

What a client receives, exactly:
- every frame of its venue, whatever it subscribed to, once it has subscribed to
  anything (a Binance stream by URL or SUBSCRIBE, a Coinbase channel): the
  simplest rule that replays a recorded session faithfully, since the recorder
  subscribed to what it recorded. Frames are not re-wrapped: a capture of
  combined-stream frames stays combined on a `/ws/` connection.
- not the recorded answers to the recorder's own subscription requests (Binance
  `{"result":..,"id":..}`, Coinbase `subscriptions`): the client gets the
  simulator's answers to its own requests instead, as live.
- bad lines of the capture (not JSON, missing fields) are skipped and counted;
  bad *frames* inside good lines are sent as recorded: they are part of the session.

The venues' market lists (`exchangeInfo`, `/products`) are the markets found in
the capture's frames, so that a client that subscribes to "every listed market"
subscribes to the recorded ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import orjson

from ingest_worker.sim.model import BINANCE, COINBASE, VENUES, Market
from ingest_worker.symbols import split_concatenated
from ingest_worker.venues.coinbase import split_product


class CaptureFrame(NamedTuple):
    recv_ms: float
    exchange: str
    raw: str


@dataclass
class Capture:
    frames: list[CaptureFrame]  # in replay order
    markets: list[Market]
    lines: int = 0
    bad_lines: int = 0  # not JSON, or without a numeric recv_ms, a string exchange and a string raw
    subscription_answers: int = 0  # recorded answers to the recorder's requests, not replayed
    unknown_exchange: dict[str, int] = field(default_factory=dict)

    @property
    def venues(self) -> list[str]:
        """The simulated venues with at least one frame to replay."""
        present = {frame.exchange for frame in self.frames}
        return [venue for venue in VENUES if venue in present]

    def summary(self) -> str:
        per_venue = ", ".join(f"{venue} {sum(1 for f in self.frames if f.exchange == venue)}" for venue in self.venues)
        unknown = ", ".join(f"{name} {count}" for name, count in sorted(self.unknown_exchange.items()))
        return (
            f"{len(self.frames)} frames to replay ({per_venue or 'none'}), {len(self.markets)} markets; "
            f"skipped: {self.bad_lines} bad lines, {self.subscription_answers} subscription answers"
            + (f", unknown exchanges: {unknown}" if unknown else "")
        )


def load_capture(path: Path | str) -> Capture:
    """Read a capture file: its frames in replay order and the markets they trade."""
    entries: list[tuple[float, int, CaptureFrame]] = []
    capture = Capture(frames=[], markets=[])
    with Path(path).open("rb") as handle:
        for index, line in enumerate(handle):
            if not line.strip():
                continue
            capture.lines += 1
            try:
                obj = orjson.loads(line)
                recv_ms = obj["recv_ms"]
                exchange = obj["exchange"]
                raw = obj["raw"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                capture.bad_lines += 1
                continue
            if recv_ms.__class__ not in (int, float) or exchange.__class__ is not str or raw.__class__ is not str:
                capture.bad_lines += 1
                continue
            if exchange not in VENUES:
                capture.unknown_exchange[exchange] = capture.unknown_exchange.get(exchange, 0) + 1
                continue
            if is_subscription_answer(exchange, raw):
                capture.subscription_answers += 1
                continue
            entries.append((float(recv_ms), index, CaptureFrame(float(recv_ms), exchange, raw)))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    capture.frames = [entry[2] for entry in entries]
    capture.markets = markets_in(capture.frames)
    return capture


def is_subscription_answer(exchange: str, raw: str) -> bool:
    """A recorded answer to the recorder's own (un)subscribe request."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(msg, dict):
        return False
    if exchange == BINANCE:
        return "result" in msg and "id" in msg and "stream" not in msg
    if exchange == COINBASE:
        return msg.get("type") == "subscriptions"
    return False


def markets_in(frames: Iterable[CaptureFrame]) -> list[Market]:
    """Every well-formed market name in the frames, per venue in order of first appearance."""
    names: dict[tuple[str, str], tuple[str, str]] = {}
    for frame in frames:
        try:
            msg = orjson.loads(frame.raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(msg, dict):
            continue
        if frame.exchange == BINANCE:
            data = msg.get("data", msg)
            native = data.get("s") if isinstance(data, dict) else None
            parts = split_concatenated(native) if isinstance(native, str) and native.isalnum() else None
        else:
            native = msg.get("product_id")
            parts = split_product(native) if isinstance(native, str) else None
        if parts is not None and isinstance(native, str):
            names.setdefault((frame.exchange, native), parts)
    markets: list[Market] = []
    for venue in VENUES:
        for (exchange, native), (base, quote) in names.items():
            if exchange == venue:
                markets.append(Market(len(markets), venue, base, quote, native, 8, 8))
    return markets


class ReplayCursor:
    """Which frames are due once `elapsed_ms` of replay time have passed, at `speed`× the recorded pace."""

    def __init__(self, frames: Sequence[CaptureFrame], speed: float) -> None:
        if not speed >= 0:
            raise ValueError(f"speed must be >= 0, not {speed}")
        self.frames = frames
        self.speed = speed
        self.position = 0
        self._first_ms = frames[0].recv_ms if frames else 0.0

    @property
    def done(self) -> bool:
        return self.position >= len(self.frames)

    def due_at_ms(self, frame: CaptureFrame) -> float:
        """The replay time at which `frame` is due (0 for the first frame; always 0 at speed 0)."""
        if self.speed == 0:
            return 0.0
        return max(0.0, frame.recv_ms - self._first_ms) / self.speed

    def next_due_ms(self) -> float | None:
        return None if self.done else self.due_at_ms(self.frames[self.position])

    def take(self, elapsed_ms: float, limit: int) -> list[CaptureFrame]:
        """The next frames due by `elapsed_ms`, at most `limit`, in order."""
        frames = self.frames
        start = self.position
        end = start
        stop = min(len(frames), start + limit)
        while end < stop and self.due_at_ms(frames[end]) <= elapsed_ms:
            end += 1
        self.position = end
        return list(frames[start:end])
