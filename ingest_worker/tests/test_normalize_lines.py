"""`normalize_lines`: raw and capture lines in, one tick JSON per line out, every line counted."""

from __future__ import annotations

import io
import json

import orjson
import pytest

from ingest_worker.normalize import BAD_CAPTURE, OTHER_EXCHANGE, NormalizeCounts, companion_recv_ns, normalize_lines
from ingest_worker.tests.recorded import frames
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts.tick import FIELDS, encode

BOOK = '{"u":1,"s":"BTCUSDT","b":"100.5","B":"1.5","a":"100.6","A":"2.5"}'
TRADE = '{"e":"trade","E":1705670123400,"s":"BTCUSDT","t":1,"p":"100.5","q":"0.25"}'
TICKER = (
    '{"type":"ticker","product_id":"BTC-USD","price":"100.5","best_bid":"100.5","best_ask":"100.6",'
    '"time":"2024-01-19T13:15:23.400Z","trade_id":1,"last_size":"0.5"}'
)


def capture(raw: str, recv_ms: object, exchange: str = "binance") -> bytes:
    return orjson.dumps({"recv_ms": recv_ms, "exchange": exchange, "raw": raw})


def run(lines: list[bytes], parser=None, **kwargs) -> tuple[list[dict[str, object]], NormalizeCounts]:
    out = io.BytesIO()
    counts = normalize_lines(lines, parser or BinanceParser(max_age_ms=None), out, **kwargs)
    text = out.getvalue()
    assert text == b"" or text.endswith(b"\n")
    return [orjson.loads(line) for line in text.splitlines()], counts


def test_a_recorded_file_gives_the_parsers_ticks_in_tick_field_order(market_data):
    path = market_data / "binance" / "bookTicker.jsonl"  # over 1024 ticks: several writes
    recv_times = companion_recv_ns(path)
    assert recv_times is not None
    out = io.BytesIO()
    with path.open("rb") as lines:
        counts = normalize_lines(lines, BinanceParser(max_age_ms=None), out, recv_times=recv_times)
    parser = BinanceParser(max_age_ms=None)
    expected = [encode(tick) for frame, recv_ns in frames(path) for tick in parser.parse(frame, recv_ns)]
    assert out.getvalue().splitlines() == expected
    assert list(orjson.loads(expected[0])) == list(FIELDS)
    assert counts.lines == counts.stats.frames == counts.stats.ticks == len(expected) == 4949


def test_a_companion_with_another_number_of_lines_is_not_used(tmp_path):
    path = tmp_path / "frames.jsonl"
    path.write_text(BOOK + "\n" + BOOK + "\n")
    assert companion_recv_ns(path) is None  # no companion
    path.with_suffix(".recv_ns").write_text("1705670123456000000\n")
    assert companion_recv_ns(path) is None  # one time for two frames
    path.with_suffix(".recv_ns").write_text("1705670123456000000\n1705670123457000000\n")
    assert companion_recv_ns(path) == [1705670123456000000, 1705670123457000000]
    assert companion_recv_ns(tmp_path / "frames.txt") is None  # only X.jsonl has an X.recv_ns


@pytest.mark.parametrize("bad", ["abc\n1\n", "1.5\n2\n", "-1\n2\n", f"{2**63}\n1\n"])
def test_a_corrupt_companion_is_an_error_not_a_silent_fallback(tmp_path, bad):
    path = tmp_path / "frames.jsonl"
    path.write_text(BOOK + "\n" + BOOK + "\n")
    path.with_suffix(".recv_ns").write_text(bad)
    with pytest.raises(ValueError, match="recv_ns"):
        companion_recv_ns(path)


def test_without_receive_times_raw_lines_take_the_clock_as_they_are_read():
    clock = iter([1705670123456000000, 1705670123457000000]).__next__
    ticks, _ = run([BOOK.encode() + b"\n", BOOK.encode()], clock=clock)
    assert [tick["recv_ns"] for tick in ticks] == [1705670123456000000, 1705670123457000000]
    assert [tick["timestamp"] for tick in ticks] == [1705670123456, 1705670123457]


def test_capture_lines_carry_their_receive_time():
    ticks, counts = run([capture(BOOK, 1705670123456.789), capture(TRADE, 1705670123400)])
    assert [tick["recv_ns"] for tick in ticks] == [1705670123456789000, 1705670123400000000]
    assert [tick["timestamp"] for tick in ticks] == [1705670123456, 1705670123400]
    assert counts.capture_lines == 2


def test_capture_lines_of_another_exchange_are_skipped_and_counted():
    lines = [capture(BOOK, 1705670123456.0), capture(TICKER, 1705670123457.0, "coinbase"), capture(BOOK, 1.0, "")]
    ticks, counts = run(lines)
    assert len(ticks) == 1
    assert counts.skipped == {OTHER_EXCHANGE: 2}
    assert counts.lines == 3
    assert counts.stats.frames == 1
    ticks, counts = run(lines, CoinbaseParser(max_age_ms=None))
    assert [tick["type"] for tick in ticks] == ["quote", "trade"]
    assert counts.skipped == {OTHER_EXCHANGE: 2}


@pytest.mark.parametrize(
    "line",
    [
        orjson.dumps({"recv_ms": "1705670123456", "exchange": "binance", "raw": BOOK}),
        orjson.dumps({"recv_ms": None, "exchange": "binance", "raw": BOOK}),
        orjson.dumps({"recv_ms": True, "exchange": "binance", "raw": BOOK}),
        orjson.dumps({"recv_ms": -1, "exchange": "binance", "raw": BOOK}),
        orjson.dumps({"recv_ms": 1e300, "exchange": "binance", "raw": BOOK}),
        orjson.dumps({"recv_ms": 1705670123456, "exchange": "binance", "raw": json.loads(BOOK)}),
        orjson.dumps({"recv_ms": 1705670123456, "exchange": "binance", "raw": None}),
    ],
)
def test_capture_lines_without_a_usable_time_or_frame_are_skipped_and_counted(line):
    ticks, counts = run([line, capture(BOOK, 1705670123456)])
    assert len(ticks) == 1
    assert counts.skipped == {BAD_CAPTURE: 1}


def test_raw_and_capture_lines_mix_and_every_line_is_accounted_for():
    lines = [
        BOOK.encode(),
        capture(TRADE, 1705670123400.5),
        b"",  # an empty line is not a frame
        b'{"result":null,"id":1}',
        b'{"u":1,"s":"BTC\xffUSDT"}',  # not UTF-8
        b'{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}',
        capture(TICKER, 1705670123401, "coinbase"),
        b'{"note":"recv_ms is mentioned but this is no capture line"}',
    ]
    ticks, counts = run(lines, recv_times=[1705670123456000000 + i for i in range(len(lines))])
    assert [tick["type"] for tick in ticks] == ["quote", "trade"]
    assert ticks[0]["recv_ns"] == 1705670123456000000  # raw line 0: its companion time
    assert ticks[1]["recv_ns"] == 1705670123400500000  # capture line: its own time
    stats = counts.stats
    assert counts.lines == len(lines) == stats.frames + sum(counts.skipped.values())
    assert stats.frames == stats.ticks + sum(stats.control.values()) + sum(stats.ignored.values()) + sum(
        stats.dropped.values()
    )
    assert counts.as_dict() == {
        "lines": 8,
        "capture_lines": 2,
        "skipped": {OTHER_EXCHANGE: 1},
        "frames": 7,
        "ticks": 2,
        "control": {"subscription": 1},
        "ignored": {"depth_buffered": 1},  # a diff before its snapshot is held for it
        "dropped": {"malformed_json": 2, "unknown_message": 1},
    }
    report = counts.report()
    for text in ("lines:   8", "frames:  7", "ticks:   2", "subscription=1", "depth_buffered=1", "malformed_json=2"):
        assert text in report
