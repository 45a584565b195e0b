"""The capture contract (signals_app/contracts/capture.py): one writer, one reader, one rule for the time."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest

from signals_app.contracts import capture
from signals_app.contracts.capture import CaptureLine, ConnectionParsers
from signals_app.contracts.tick import Tick

T_NS = 1_705_670_123_456_789_000  # 2024-01-19T13:15:23.456789Z


class Counts:
    def __init__(self) -> None:
        self.lines = 0
        self.bad_lines = 0


def test_a_written_line_is_design_mds_and_reads_back_to_the_microsecond() -> None:
    line = capture.encode("binance", T_NS + 123, b'{"u":1}')
    assert line.endswith(b"\n")
    assert orjson.loads(line) == {"recv_ms": 1705670123456.789123, "exchange": "binance", "raw": '{"u":1}'}
    assert list(orjson.loads(line)) == ["recv_ms", "exchange", "raw"]
    read = capture.decode(line)
    assert read == CaptureLine(1705670123456.789123, "binance", '{"u":1}', None)
    assert read.recv_ns == T_NS  # to the µs: the float cannot hold the 123 ns
    assert capture.recv_ns_of(1705670123456.789) == T_NS


def test_only_a_venue_on_several_connections_writes_the_connection() -> None:
    line = capture.decode(capture.encode("bitfinex", T_NS, "[17,[1]]", 2))
    assert (line.exchange, line.connection) == ("bitfinex", 2)
    assert "connection" not in orjson.loads(capture.encode("bitfinex", T_NS, "[17,[1]]"))


@pytest.mark.parametrize("recv_ms", [1705670123456.789, 1705670123456, 0.001, 8_999_999_999_999])
def test_a_receive_time_is_a_number_of_unix_ms_that_fits_the_tick(recv_ms: object) -> None:
    line = capture.decode(orjson.dumps({"recv_ms": recv_ms, "exchange": "binance", "raw": "{}"}))
    assert line.recv_ms == recv_ms
    assert line.recv_ms.__class__ is float


@pytest.mark.parametrize(
    "fields",
    [
        {"recv_ms": 0, "exchange": "binance", "raw": "{}"},  # an unset clock, not a time
        {"recv_ms": -1, "exchange": "binance", "raw": "{}"},
        {"recv_ms": 9_000_000_000_000, "exchange": "binance", "raw": "{}"},  # recv_ns beyond 64 bits
        {"recv_ms": 1e300, "exchange": "binance", "raw": "{}"},
        {"recv_ms": True, "exchange": "binance", "raw": "{}"},
        {"recv_ms": "1705670123456", "exchange": "binance", "raw": "{}"},
        {"exchange": "binance", "raw": "{}"},
        {"recv_ms": 1705670123456, "raw": "{}"},
        {"recv_ms": 1705670123456, "exchange": 7, "raw": "{}"},
        {"recv_ms": 1705670123456, "exchange": "binance", "raw": {}},
        {"recv_ms": 1705670123456, "exchange": "binance", "raw": "{}", "connection": 0},
        {"recv_ms": 1705670123456, "exchange": "binance", "raw": "{}", "connection": "2"},
        {"recv_ms": 1705670123456, "exchange": "binance", "raw": "{}", "connection": True},
    ],
)
def test_a_line_outside_the_rule_is_a_bad_line(fields: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(capture.BadCaptureLine):
        capture.decode(orjson.dumps(fields))
    path = tmp_path / "capture.jsonl"
    path.write_bytes(orjson.dumps(fields) + b"\n" + capture.encode("binance", T_NS, "{}"))
    counts = Counts()
    assert [line.recv_ns for line in capture.read(path, counts)] == [T_NS]
    assert (counts.lines, counts.bad_lines) == (2, 1)


def test_every_line_is_counted_and_bad_ones_skipped(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    good = capture.encode("binance", T_NS, "{}")
    path.write_bytes(good + b"\n" + b"not JSON\n" + b"[1, 2]\n" + b"null\n" + good + b'{"recv_ms": 1}')
    counts = Counts()
    assert len(capture.read(path, counts)) == 2
    assert (counts.lines, counts.bad_lines) == (7, 5)  # the blank line is a line, and a bad one


def test_lines_are_taken_in_receive_order_ties_in_file_order_files_in_the_order_given(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(capture.encode("a", 3_000_000, "a3") + capture.encode("a", 1_000_000, "a1"))
    second.write_bytes(capture.encode("b", 1_000_000, "b1") + capture.encode("b", 2_000_000, "b2"))
    counts = Counts()
    assert [line.raw for line in capture.read_in_order([first, second], counts)] == ["a1", "b1", "b2", "a3"]
    assert (counts.lines, counts.bad_lines) == (4, 0)


class FakeStats:
    def __init__(self, frames: int = 0, ticks: int = 0) -> None:
        self.frames = frames
        self.ticks = ticks

    def as_dict(self) -> dict[str, object]:
        return {"frames": self.frames, "ticks": self.ticks}

    @classmethod
    def combined(cls, parts: Iterable[FakeStats]) -> FakeStats:
        parts = list(parts)
        return cls(sum(part.frames for part in parts), sum(part.ticks for part in parts))


class FakeParser:
    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.stats = FakeStats()

    def parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        self.stats.frames += 1
        return []


def test_each_connection_of_a_venue_has_a_parser_of_its_own_made_on_first_use() -> None:
    made: list[str] = []

    def make(exchange: str) -> FakeParser:
        if exchange == "mtgox":
            raise KeyError(exchange)
        made.append(exchange)
        return FakeParser(exchange)

    parsers = ConnectionParsers(make)
    assert made == []
    first = parsers["bitfinex"].on(None)
    assert parsers["bitfinex"].on(1) is first is parsers["bitfinex"].first
    second = parsers["bitfinex"].on(2)
    assert second is not first
    assert parsers["bitfinex"].on(2) is second
    assert made == ["bitfinex", "bitfinex"]
    with pytest.raises(KeyError):
        parsers["mtgox"]
    assert "mtgox" not in parsers
    first.parse("{}", T_NS)
    second.parse("{}", T_NS)
    second.parse("{}", T_NS)
    assert parsers["bitfinex"].stats.frames == 3  # one venue, one feed: the connections summed
    parsers["binance"].first.parse("{}", T_NS)
    assert parsers["binance"].stats is parsers["binance"].first.stats
