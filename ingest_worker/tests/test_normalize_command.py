"""`manage.py normalize`, run as a user runs it: ticks on stdout, counts on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from ingest_worker.tests.recorded import frames
from ingest_worker.venues import PARSERS
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts.tick import encode

REPO = Path(__file__).resolve().parents[2]


def normalize(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "manage.py", "normalize", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_a_recorded_file_prints_the_parsers_ticks_and_the_counts(market_data):
    path = market_data / "binance" / "bookTicker.20210417.jsonl"
    done = normalize("--exchange", "binance", path)
    assert done.returncode == 0, done.stderr
    parser = BinanceParser(max_age_ms=None)
    expected = [encode(tick) for frame, recv_ns in frames(path) for tick in parser.parse(frame, recv_ns)]
    assert done.stdout.splitlines() == expected
    report = done.stderr.decode()
    assert "bookTicker.20210417.recv_ns" in report  # the receive times came from the companion
    for line in ("lines:   570", "frames:  570", "ticks:   570", "control: 0", "ignored: 0", "dropped: 0"):
        assert line in report, report


def test_a_recorded_coinbase_file_with_the_clock_check_drops_the_stale_ticker(market_data):
    path = market_data / "coinbase" / "ticker.jsonl"
    done = normalize("--exchange", "coinbase", path, "--max-age-s", "60")
    assert done.returncode == 0, done.stderr
    parser = CoinbaseParser(max_age_ms=60_000)
    expected = [encode(tick) for frame, recv_ns in frames(path) for tick in parser.parse(frame, recv_ns)]
    assert done.stdout.splitlines() == expected
    stale = parser.stats.dropped["stale"]
    assert stale >= 1
    assert f"dropped: {stale} (stale={stale})" in done.stderr.decode()


def test_ignored_channels_print_nothing_and_are_counted(market_data):
    done = normalize("--exchange", "binance", market_data / "binance" / "kline_1m.20210417.jsonl")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert "ignored: 20 (kline=20)" in done.stderr.decode()


def capture_line(recv_ms: float, exchange: str, raw: str) -> bytes:
    return orjson.dumps({"recv_ms": recv_ms, "exchange": exchange, "raw": raw})


BOOK = '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"45000.10","B":"0.5","a":"45000.20","A":"1.5"}}'
OLD_TRADE = '{"e":"trade","E":1705670000000,"s":"BTCUSDT","t":1,"p":"45000.15","q":"0.01"}'  # 123 s before
TICKER = (
    '{"type":"ticker","product_id":"BTC-USD","price":"45300","best_bid":"45299.99","best_ask":"45300.01",'
    '"time":"2024-01-19T13:15:23.456Z","trade_id":9,"last_size":"0.1"}'
)


def write_capture(tmp_path: Path) -> Path:
    path = tmp_path / "capture.jsonl"
    lines = [
        capture_line(1705670123456.789, "binance", BOOK),
        capture_line(1705670123457.0, "coinbase", TICKER),
        capture_line(1705670123458.25, "binance", OLD_TRADE),
        capture_line(1705670123459.0, "binance", '{"result":null,"id":1}'),
        capture_line(1705670123460.0, "binance", '{"stream":"btcusdt@bookTicker","data":{"u":2,'),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_capture_file_gives_ticks_at_the_captures_receive_times(tmp_path):
    done = normalize("--exchange", "binance", write_capture(tmp_path))
    assert done.returncode == 0, done.stderr
    ticks = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert ticks == [
        {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "type": "quote",
            "price": (45000.10 + 45000.20) / 2,
            "volume": 0.0,
            "bid": 45000.10,
            "ask": 45000.20,
            "bid_size": 0.5,
            "ask_size": 1.5,
            "timestamp": 1705670123456,
            "recv_ns": 1705670123456789000,
        },
        {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "type": "trade",
            "price": 45000.15,
            "volume": 0.01,
            "bid": None,
            "ask": None,
            "bid_size": None,
            "ask_size": None,
            "timestamp": 1705670000000,
            "recv_ns": 1705670123458250000,
        },
    ]
    report = done.stderr.decode()
    for line in ("lines:   5 (5 capture lines)", "frames:  4", "ticks:   2", "control: 1 (subscription=1)"):
        assert line in report, report
    assert "dropped: 1 (malformed_json=1)" in report
    assert "skipped: 1 (other_exchange=1)" in report


def test_the_same_capture_read_for_the_other_exchange(tmp_path):
    done = normalize("--exchange", "coinbase", write_capture(tmp_path))
    assert done.returncode == 0, done.stderr
    ticks = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [(tick["type"], tick["timestamp"], tick["recv_ns"]) for tick in ticks] == [
        ("quote", 1705670123456, 1705670123457000000),
        ("trade", 1705670123456, 1705670123457000000),
    ]
    assert "skipped: 4 (other_exchange=4)" in done.stderr.decode()


def test_max_age_drops_ticks_whose_event_time_is_too_far_from_the_receive_time(tmp_path):
    done = normalize("--exchange", "binance", write_capture(tmp_path), "--max-age-s", "60")
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line)["type"] for line in done.stdout.splitlines()] == ["quote"]
    assert "stale=1" in done.stderr.decode()
    done = normalize("--exchange", "binance", write_capture(tmp_path), "--max-age-s", "124")
    assert [orjson.loads(line)["type"] for line in done.stdout.splitlines()] == ["quote", "trade"]


def test_an_unknown_exchange_fails_and_names_the_known_venues(tmp_path):
    done = normalize("--exchange", "mtgox", write_capture(tmp_path))
    assert done.returncode != 0
    assert done.stdout == b""
    message = done.stderr.decode()
    assert "mtgox" in message
    assert f"known venues: {', '.join(sorted(PARSERS))}" in message


def test_a_missing_file_fails_with_a_message(tmp_path):
    done = normalize("--exchange", "binance", tmp_path / "nowhere.jsonl")
    assert done.returncode != 0
    assert "nowhere.jsonl" in done.stderr.decode()
