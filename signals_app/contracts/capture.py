"""The capture file (DESIGN.md "Capture file"): one line per frame as received, with its receive time.

    {"recv_ms": 1705670123456.789, "exchange": "binance", "raw": "<frame text>"}

A venue whose markets are spread over several connections (Bitfinex past its channel cap)
gets one more key on each line, `"connection": N` (1, 2, ...): its channel ids and sequence
numbers are per connection, so a reader keeps one parser per connection (`ConnectionParsers`).
Lines of a venue on one connection are exactly DESIGN.md's. Other keys are ignored.

A REST response that seeds a book (a Binance depth snapshot) is a line of its own, with the
request URL in `"rest"` and the body in `"raw"` (DESIGN.md):

    {"recv_ms": 1705670123456.789, "exchange": "binance", "rest": "<url>", "raw": "<body>"}

Readers give it to the venue's parser as a snapshot (`SeedingParser.seed`), never as a frame;
a parser without `seed` cannot take one, and the reader counts the line as such.

The one rule for the receive time, for the writer and every reader:
- `recv_ms` is the local receive time in Unix ms, a JSON number (not a boolean) with
  0 < recv_ms < 9e12: 9e12 ms is the year 2255, beyond which the tick's recv_ns does not
  fit the 64 bits its encoding allows; 0 is no receive time but an unset clock.
- the tick's `recv_ns` is `recv_ms` to the microsecond (`recv_ns_of`): a float of Unix ms
  holds about a quarter of a microsecond, so `round(recv_ms * 1_000_000)` would turn
  1705670123456.789 into ...456788992; to the µs it is the figure the file shows.
- a replay's clock is `recv_ns // 1_000_000`, and frames are taken in `recv_ms` order, ties in
  file order, files in the order given (`read_in_order`).

A line that is not valid (not JSON, not an object, a field missing or of the wrong type, a time
outside the rule, a connection that is not a whole number >= 1) is a bad line: readers count it
and go on. Everything here is pure; `ingest_worker/record.py` writes, `manage.py normalize`,
`manage.py replay` and the simulator's `--replay` read.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO, Generic, NamedTuple, Protocol, Self, TypeGuard, TypeVar, cast, runtime_checkable

import orjson

from signals_app.contracts.tick import Tick

MAX_RECV_MS = 9_000_000_000_000  # the year 2255: recv_ns must fit in 64 bits (2**63 ns is 2262)

_loads = orjson.loads
_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE
_CHUNK_BYTES = 1 << 20  # lines are read about this much at a time
_new_line = tuple.__new__  # a CaptureLine without the keyword-handling constructor (the reader's hot path)


class CaptureLine(NamedTuple):
    """One line of a capture: a frame as received, with its receive time."""

    recv_ms: float  # local receive time, Unix ms, to the µs or better
    exchange: str  # lower-case venue name
    raw: str  # the frame exactly as received
    connection: int | None = None  # 1, 2, ... for a venue on several connections; None on one
    rest: str | None = None  # the request URL of a REST response that seeds a book; None for a frame

    @property
    def recv_ns(self) -> int:
        return recv_ns_of(self.recv_ms)


class BadCaptureLine(ValueError):
    """A line that is no valid capture line; readers count and skip it."""


class LineCounts(Protocol):
    """Where a reader counts a file's lines (ReplayStats, the simulator's Capture)."""

    lines: int
    bad_lines: int


def recv_ns_of(recv_ms: float) -> int:
    """The tick's recv_ns of a capture's recv_ms: to the microsecond (module docstring)."""
    return round(recv_ms * 1000.0) * 1000


def is_recv_ms(value: object) -> TypeGuard[float]:
    """A receive time as the rule has it: a JSON number (not a boolean), 0 < value < 9e12 Unix ms."""
    return (value.__class__ is float or value.__class__ is int) and 0 < value < MAX_RECV_MS


def encode(
    exchange: str, recv_ns: int, frame: str | bytes, connection: int | None = None, *, rest: str | None = None
) -> bytes:
    """One capture line with its newline; bytes that are not UTF-8 are kept as U+FFFD.

    With `rest` (the request URL) the line records a REST response that seeds a book.
    """
    raw = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
    line: dict[str, object] = {"recv_ms": recv_ns / 1_000_000, "exchange": exchange}
    if rest is not None:
        line["rest"] = rest
    line["raw"] = raw
    if connection is not None:
        line["connection"] = connection
    return _dumps(line, option=_NEWLINE)


def from_object(obj: object) -> CaptureLine:
    """The capture line a decoded JSON value holds; BadCaptureLine when it holds none."""
    if obj.__class__ is not dict:
        raise BadCaptureLine("not a JSON object")
    fields: dict[str, object] = obj
    recv_ms = fields.get("recv_ms")
    exchange = fields.get("exchange")
    raw = fields.get("raw")
    connection = fields.get("connection")
    rest = fields.get("rest")
    if not is_recv_ms(recv_ms):
        raise BadCaptureLine(f"recv_ms is no receive time: {recv_ms!r}")
    if exchange.__class__ is not str or raw.__class__ is not str:
        raise BadCaptureLine("exchange or raw is not a string")
    if connection is not None and (connection.__class__ is not int or connection < 1):
        raise BadCaptureLine(f"connection is not a whole number >= 1: {connection!r}")
    if rest is not None and rest.__class__ is not str:
        raise BadCaptureLine(f"rest is not a URL string: {rest!r}")
    return _new_line(CaptureLine, (float(recv_ms), exchange, raw, connection, rest))


def decode(line: bytes | str) -> CaptureLine:
    """One capture line (its line end may be there); BadCaptureLine when it is not a valid one."""
    try:
        obj = _loads(line)
    except orjson.JSONDecodeError:
        raise BadCaptureLine("not JSON") from None
    return from_object(obj)


def open_capture(path: Path) -> BinaryIO:
    """A capture file for reading: gzip-compressed when its name ends in `.gz` (a bundled demo
    with books stays small), plain otherwise."""
    if path.suffix == ".gz":
        return cast(BinaryIO, gzip.open(path, "rb"))
    return path.open("rb")


def read(path: Path, counts: LineCounts) -> list[CaptureLine]:
    """The valid lines of one capture file, in file order; every line and every bad line counted."""
    lines: list[CaptureLine] = []
    append = lines.append
    total = bad = 0
    new_line = _new_line
    max_recv_ms = float(MAX_RECV_MS)  # a float against a float: faster than against the int
    with open_capture(path) as handle:
        for chunk in iter(lambda: handle.readlines(_CHUNK_BYTES), []):
            total += len(chunk)
            try:
                objs = list(map(_loads, chunk))  # a chunk at once: most captures have no bad line
            except orjson.JSONDecodeError:
                objs = [_loads_or_none(line) for line in chunk]
            for obj in objs:
                # The common line, inline (a replay reads a capture's lines by the thousand);
                # anything else, and every check, is from_object's.
                try:
                    recv_ms = obj["recv_ms"]
                    exchange = obj["exchange"]
                    raw = obj["raw"]
                except (KeyError, TypeError):  # no such key, or not an object
                    bad += 1
                    continue
                if (
                    recv_ms.__class__ is float
                    and 0.0 < recv_ms < max_recv_ms
                    and exchange.__class__ is str
                    and raw.__class__ is str
                    and len(obj) == 3  # no "connection", no "rest", nor any other key
                ):
                    append(new_line(CaptureLine, (recv_ms, exchange, raw, None, None)))
                    continue
                try:
                    append(from_object(obj))
                except BadCaptureLine:
                    bad += 1
    counts.lines += total
    counts.bad_lines += bad
    return lines


def _loads_or_none(line: bytes) -> object:
    try:
        return _loads(line)
    except orjson.JSONDecodeError:
        return None  # not JSON: a bad line, as `null` is


def read_in_order(paths: Iterable[Path | str], counts: LineCounts) -> list[CaptureLine]:
    """The valid lines of the captures in `recv_ms` order, ties in file order, files in the order given."""
    lines: list[CaptureLine] = []
    for path in paths:
        lines.extend(read(Path(path), counts))
    lines.sort(key=_recv_ms)  # stable: ties keep file order, then line order
    return lines


_recv_ms = itemgetter(0)  # the recv_ms field; faster than its name on a NamedTuple


# --- one parser per connection ----------------------------------------------------------
class ParserCounters(Protocol):
    """What a reader reports of a parser's counters (ingest_worker.venues.base.ParseStats)."""

    @property
    def frames(self) -> int: ...

    @property
    def ticks(self) -> int: ...

    def as_dict(self) -> dict[str, object]: ...

    @classmethod
    def combined(cls, parts: Iterable[Self]) -> Self: ...


class FrameParser(Protocol):
    """A venue's parser as a capture reader uses it (ingest_worker.venues.base.VenueParser)."""

    @property
    def stats(self) -> ParserCounters: ...

    def parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]: ...


@runtime_checkable
class SeedingParser(FrameParser, Protocol):
    """A parser that takes a REST response seeding a book (a capture's `rest` line)."""

    def seed(self, url: str, body: str | bytes, recv_ns: int) -> list[Tick]:
        """The ticks of seeding the book of the market `url` names with `body`; never raises."""
        ...


def seed(parser: FrameParser, line: CaptureLine) -> list[Tick] | None:
    """The ticks of giving `parser` the REST line `line`; None when the parser cannot seed a book."""
    if not isinstance(parser, SeedingParser):
        return None
    return parser.seed(line.rest or "", line.raw, line.recv_ns)


P = TypeVar("P", bound=FrameParser)
# A new parser for an exchange (ingest_worker.venues.make_parser); KeyError when there is none.
ParserFactory = Callable[[str], FrameParser]


class VenueParsers(Generic[P]):
    """One venue's parsers: `first` for its first (or only) connection, one more per further connection."""

    __slots__ = ("_make", "first", "more")

    def __init__(self, first: P, make: Callable[[], P]) -> None:
        self.first = first
        self.more: dict[int, P] = {}  # connection 2, 3, ... -> its parser, made on first use
        self._make = make

    def on(self, connection: int | None) -> P:
        if connection is None or connection == 1:
            return self.first
        parser = self.more.get(connection)
        if parser is None:
            parser = self.more[connection] = self._make()
        return parser

    @property
    def parsers(self) -> list[P]:
        return [self.first, *self.more.values()]

    @property
    def stats(self) -> ParserCounters:
        """The venue's counters: its connections' summed (it is one feed), the one parser's own on one."""
        if not self.more:
            return self.first.stats
        return self.first.stats.combined([parser.stats for parser in self.parsers])


class ConnectionParsers(dict[str, VenueParsers[P]]):
    """A parser per (exchange, connection) in the captures read, each made on first use by `make`.

    `parsers[line.exchange].on(line.connection)`; a line without "connection" is its venue's
    first connection's (`.first`). `make(exchange)` raises KeyError for an exchange it has no
    parser for; the lookup lets it through and keeps nothing, so the next line of that
    exchange asks again.
    """

    def __init__(self, make: Callable[[str], P]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, exchange: str) -> VenueParsers[P]:
        make = self._make
        venue = self[exchange] = VenueParsers(make(exchange), lambda: make(exchange))
        return venue
