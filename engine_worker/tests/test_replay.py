"""`manage.py replay` prints exactly the signals a capture holds, and nothing else (DESIGN.md "Capture file").

The capture `fixtures/replay_capture.jsonl` is hand-written: real Binance
combined-stream `bookTicker` frames and Coinbase `ticker` frames (the modern
field set, with best_bid_size / best_ask_size), received from
T0 = 1705670123000 (2024-01-19T13:15:23Z). It is replayed with non-default
settings, passed through the environment as `run_engine` reads them:

    SPREAD_THRESHOLD_PCT=0.3  STALE_MS=1500  SIGNAL_UPDATE_MS=500  FEES=coinbase:0.2  (binance keeps 0.1)

so every opportunity below exists only because those settings were honoured
(with the defaults, 0.5 % and Coinbase at 0.6 %, the capture holds none).
Buying on Binance costs ask · 1.001; selling on Coinbase brings bid · 0.998.

BTC opens, updates, closes:
    T0+0.412     Binance BTCUSDT ask 45000 (size 0.5)
    T0+100.713   Coinbase BTC-USD bid 45350 (size 0.3)  -> open at T0+100
                 cost 45045, proceeds 45259.3, profit 214.3, net 214.3/45045 = 0.4757 %
    T0+300.2     Coinbase bid 45400: net 264.2/45045 = 0.5865 % (the peak), held (200 ms < 500)
    T0+450       Binance frame with a NaN bid: dropped by the parser
    T0+650.9     Binance, ask unchanged -> update at T0+650 with the figures of now (bid 45400)
    T0+900       Coinbase bid 45380: net 244.24/45045 = 0.5422 %, held (250 ms < 500)
    T0+1000.3    Coinbase bid 45100: net < 0 -> close at T0+1000 with the bid-45380 figures
ETH goes stale and is closed by the timer:
    T0+2000.5    Binance ETHUSDT ask 2500 (size 4)
    T0+2100.25   Coinbase ETH-USD bid 2520 (size 3)     -> open at T0+2100
                 cost 2502.5, proceeds 2514.96, profit 12.46, net 12.46/2502.5 = 0.4979 %
    T0+3500.9    a BTC frame: the Binance ETH quote is 1500 ms old, not yet stale
    (T0+3700     a Mt. Gox line: no parser, counted as an unknown exchange)
    T0+4000      the next frame: the timers close ETH at T0+3501, the instant it went stale
SOL opens and is still open when the capture ends:
    T0+4000      Binance SOLUSDT ask 100 (size 50), then Coinbase SOL-USD bid 100.70 (size 20), same ms
                 cost 100.1, proceeds 100.4986, profit 0.3986, net 0.3986/100.1 = 0.3982 %
    T0+4600.5    Binance, figures unchanged 600 ms after the open: no update (no heartbeats)
plus three lines that are not capture lines (not JSON, no raw, no recv_ms).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from signals_app.contracts.signal import CLOSE_FIELDS, DEPTH_FIELDS, FIELDS, Signal

REPO = Path(__file__).resolve().parents[2]
CAPTURE = Path(__file__).resolve().parent / "fixtures" / "replay_capture.jsonl"
T0 = 1_705_670_123_000
SETTINGS = {
    "SPREAD_THRESHOLD_PCT": "0.3",
    "STALE_MS": "1500",
    "SIGNAL_UPDATE_MS": "500",
    "FEES": "coinbase:0.2",
    "QUOTE_GROUPS": "USD,USDT,USDC;EUR,EURC",
    "QUOTE_RATES": "fixed",
}
DEFAULT_SETTINGS = {
    **SETTINGS,
    "SPREAD_THRESHOLD_PCT": "0.5",
    "STALE_MS": "2000",
    "SIGNAL_UPDATE_MS": "1000",
    "FEES": "",
}


def money(value: float):
    """Money is not rounded: compare the float with the hand-computed value."""
    return pytest.approx(value, rel=1e-12)


# The capture holds quote frames only: no market has a book, so every depth field is null.
NO_DEPTH = dict.fromkeys(DEPTH_FIELDS)

EXPECTED = [
    {
        "type": "ARBITRAGE_OPPORTUNITY",
        "id": "BTC:binance:coinbase:1705670123100",
        "status": "open",
        "action": "BUY_BINANCE_SELL_COINBASE",
        "symbol": "BTC/USDT",
        "asset": "BTC",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "BTC/USDT",
        "sell_symbol": "BTC/USD",
        "buy_price": 45000.0,
        "sell_price": 45350.0,
        "spread_pct": 0.7778,  # 350 / 45000 · 100
        "net_spread_pct": 0.4757,
        "size": 0.3,  # min(0.5, 0.3)
        "profit_per_unit": money(214.3),
        "profit_estimate": money(64.29),  # 214.3 · 0.3
        **NO_DEPTH,
        "fees_pct": {"binance": 0.1, "coinbase": 0.2},
        "opened_at": T0 + 100,
        "duration_ms": 0,
        "peak_net_spread_pct": 0.4757,
        "tick_recv_ns": 1_705_670_123_100_713_000,  # recv_ms 1705670123100.713, to the µs
        "timestamp": T0 + 100,
    },
    {
        "type": "ARBITRAGE_OPPORTUNITY",
        "id": "BTC:binance:coinbase:1705670123100",
        "status": "update",
        "action": "BUY_BINANCE_SELL_COINBASE",
        "symbol": "BTC/USDT",
        "asset": "BTC",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "BTC/USDT",
        "sell_symbol": "BTC/USD",
        "buy_price": 45000.0,
        "sell_price": 45400.0,
        "spread_pct": 0.8889,  # 400 / 45000 · 100
        "net_spread_pct": 0.5865,
        "size": 0.3,
        "profit_per_unit": money(264.2),  # 45400 · 0.998 − 45045
        "profit_estimate": money(79.26),
        **NO_DEPTH,
        "fees_pct": {"binance": 0.1, "coinbase": 0.2},
        "opened_at": T0 + 100,
        "duration_ms": 550,
        "peak_net_spread_pct": 0.5865,
        "tick_recv_ns": 1_705_670_123_650_900_000,
        "timestamp": T0 + 650,
    },
    {
        "type": "ARBITRAGE_OPPORTUNITY",
        "id": "BTC:binance:coinbase:1705670123100",
        "status": "close",
        "action": "BUY_BINANCE_SELL_COINBASE",
        "symbol": "BTC/USDT",
        "asset": "BTC",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "BTC/USDT",
        "sell_symbol": "BTC/USD",
        "buy_price": 45000.0,
        "sell_price": 45380.0,  # the last figures above the threshold, never sent before
        "spread_pct": 0.8444,  # 380 / 45000 · 100
        "net_spread_pct": 0.5422,
        "size": 0.3,
        "profit_per_unit": money(244.24),  # 45380 · 0.998 − 45045
        "profit_estimate": money(73.272),
        **NO_DEPTH,
        "fees_pct": {"binance": 0.1, "coinbase": 0.2},
        "opened_at": T0 + 100,
        "duration_ms": 900,
        "peak_net_spread_pct": 0.5865,
        "tick_recv_ns": 1_705_670_124_000_300_000,
        "timestamp": T0 + 1000,
        "close_reason": "threshold",  # closes only: the bid fell, the quotes were fresh
    },
    {
        "type": "ARBITRAGE_OPPORTUNITY",
        "id": "ETH:binance:coinbase:1705670125100",
        "status": "open",
        "action": "BUY_BINANCE_SELL_COINBASE",
        "symbol": "ETH/USDT",
        "asset": "ETH",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "ETH/USDT",
        "sell_symbol": "ETH/USD",
        "buy_price": 2500.0,
        "sell_price": 2520.0,
        "spread_pct": 0.8,  # 20 / 2500 · 100
        "net_spread_pct": 0.4979,
        "size": 3.0,  # min(4, 3)
        "profit_per_unit": money(12.46),
        "profit_estimate": money(37.38),
        **NO_DEPTH,
        "fees_pct": {"binance": 0.1, "coinbase": 0.2},
        "opened_at": T0 + 2100,
        "duration_ms": 0,
        "peak_net_spread_pct": 0.4979,
        "tick_recv_ns": 1_705_670_125_100_250_000,
        "timestamp": T0 + 2100,
    },
    {
        "type": "ARBITRAGE_OPPORTUNITY",
        "id": "ETH:binance:coinbase:1705670125100",
        "status": "close",
        "action": "BUY_BINANCE_SELL_COINBASE",
        "symbol": "ETH/USDT",
        "asset": "ETH",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "ETH/USDT",
        "sell_symbol": "ETH/USD",
        "buy_price": 2500.0,
        "sell_price": 2520.0,
        "spread_pct": 0.8,
        "net_spread_pct": 0.4979,
        "size": 3.0,
        "profit_per_unit": money(12.46),
        "profit_estimate": money(37.38),
        **NO_DEPTH,
        "fees_pct": {"binance": 0.1, "coinbase": 0.2},
        "opened_at": T0 + 2100,
        # Binance ETH quote received at T0+2000 is stale once the clock passes T0+2000+1500.
        "duration_ms": 1401,
        "peak_net_spread_pct": 0.4979,
        "tick_recv_ns": 1_705_670_125_100_250_000,  # no tick closed it: the newest quote it used
        "timestamp": T0 + 3501,
        "close_reason": "stale",  # the timer: the Binance ETH quote went stale
    },
    {
        "type": "ARBITRAGE_OPPORTUNITY",
        "id": "SOL:binance:coinbase:1705670127000",
        "status": "open",
        "action": "BUY_BINANCE_SELL_COINBASE",
        "symbol": "SOL/USDT",
        "asset": "SOL",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "SOL/USDT",
        "sell_symbol": "SOL/USD",
        "buy_price": 100.0,
        "sell_price": 100.7,
        "spread_pct": 0.7,  # 0.7 / 100 · 100
        "net_spread_pct": 0.3982,
        "size": 20.0,  # min(50, 20)
        "profit_per_unit": money(0.3986),
        "profit_estimate": money(7.972),
        **NO_DEPTH,
        "fees_pct": {"binance": 0.1, "coinbase": 0.2},
        "opened_at": T0 + 4000,
        "duration_ms": 0,
        "peak_net_spread_pct": 0.3982,
        "tick_recv_ns": 1_705_670_127_000_000_000,
        "timestamp": T0 + 4000,
    },
]


def replay(*paths: Path | str, settings: dict[str, str] = SETTINGS) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "arbsite.settings", **settings}
    return subprocess.run(
        [sys.executable, "manage.py", "replay", *map(str, paths)],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


def signals(stdout: bytes) -> list[Signal]:
    """The signal lines of stdout, after checking each is exactly the contract's JSON."""
    assert stdout == b"" or stdout.endswith(b"\n")
    parsed = [orjson.loads(line) for line in stdout.splitlines()]
    for signal in parsed:  # every key, in the contract's order; a close ends with its reason
        assert list(signal) == list(CLOSE_FIELDS if signal["status"] == "close" else FIELDS)
    # Byte for byte what orjson writes for those signals, one per line: no spaces, no other text.
    assert stdout == b"".join(orjson.dumps(signal) + b"\n" for signal in parsed)
    return parsed


@pytest.fixture(scope="module")
def replayed() -> subprocess.CompletedProcess[bytes]:
    return replay(CAPTURE)


def test_replay_prints_exactly_the_expected_signals(replayed):
    assert replayed.returncode == 0, replayed.stderr.decode()
    assert signals(replayed.stdout) == EXPECTED


def test_replay_reports_the_counts_on_stderr(replayed):
    stderr = replayed.stderr.decode()
    # 17 lines: 3 not capture lines, 1 of an exchange without a parser, 13 frames;
    # 6 Binance frames give 6 quotes (the NaN one gives none), 6 Coinbase tickers a quote and a trade each.
    for name, count in [
        ("lines", 17),
        ("frames", 13),
        ("ticks", 18),
        ("bad lines", 3),
        ("unknown exchange", 1),
        ("open", 3),
        ("update", 1),
        ("close", 2),
        ('"bad_price"', 1),
    ]:
        assert re.search(rf"{name}\W*{count}\b", stderr), f"{name} {count} not in stderr:\n{stderr}"


def test_same_capture_gives_byte_identical_output(replayed):
    again = replay(CAPTURE)
    assert again.returncode == 0
    assert again.stdout == replayed.stdout


def test_default_settings_find_no_opportunity_in_the_capture():
    # The expected signals above exist only because the environment's settings were used.
    result = replay(CAPTURE, settings=DEFAULT_SETTINGS)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""


# --- several captures ------------------------------------------------------------
def binance_book_ticker(update_id: int, native: str, bid: str, bid_qty: str, ask: str, ask_qty: str) -> str:
    """A Binance combined-stream bookTicker frame, as the exchange sends it."""
    data = {"u": update_id, "s": native, "b": bid, "B": bid_qty, "a": ask, "A": ask_qty}
    return json.dumps({"stream": f"{native.lower()}@bookTicker", "data": data}, separators=(",", ":"))


def coinbase_ticker(sequence: int, product: str, bid: str, bid_size: str, ask: str, ask_size: str, time: str) -> str:
    """A Coinbase Exchange ticker frame with the modern field set (sizes included)."""
    frame = {
        "type": "ticker",
        "sequence": sequence,
        "product_id": product,
        "price": bid,
        "open_24h": "44210.15",
        "volume_24h": "12345.67890123",
        "low_24h": "44002.01",
        "high_24h": "45999.99",
        "volume_30d": "456789.01234567",
        "best_bid": bid,
        "best_bid_size": bid_size,
        "best_ask": ask,
        "best_ask_size": ask_size,
        "side": "sell",
        "time": time,
        "trade_id": sequence - 1000,
        "last_size": "0.01000000",
    }
    return json.dumps(frame, separators=(",", ":"))


def write_capture(path: Path, lines: list[tuple[float, str, str]]) -> Path:
    path.write_text("".join(json.dumps({"recv_ms": at, "exchange": ex, "raw": raw}) + "\n" for at, ex, raw in lines))
    return path


@pytest.fixture
def two_captures(tmp_path: Path) -> tuple[Path, Path]:
    # Capture A: Coinbase bid 45350 at T0, Binance ask 45010 at T0+100, Coinbase bid 45100 at T0+1000.
    # Capture B: Binance ask 45000 at T0+100, the same instant as A's Binance frame.
    # Merged by recv_ms, B's frame comes before A's close; between the two T0+100 frames the first
    # opens (net 0.4534 % at 45010, 0.4757 % at 45000) and the second is held by SIGNAL_UPDATE_MS, so it
    # is only seen in the close, which carries the last figures above the threshold.
    first = write_capture(
        tmp_path / "a.jsonl",
        [
            (
                T0 + 0.0,
                "coinbase",
                coinbase_ticker(5001, "BTC-USD", "45350.00", "0.3", "45360.00", "1.2", "2024-01-19T13:15:22.999500Z"),
            ),
            (
                T0 + 100.0,
                "binance",
                binance_book_ticker(9001, "BTCUSDT", "44999.00000000", "2.0", "45010.00000000", "0.5"),
            ),
            (
                T0 + 1000.0,
                "coinbase",
                coinbase_ticker(5002, "BTC-USD", "45100.00", "0.3", "45110.00", "1.2", "2024-01-19T13:15:23.999500Z"),
            ),
        ],
    )
    second = write_capture(
        tmp_path / "b.jsonl",
        [
            (
                T0 + 100.0,
                "binance",
                binance_book_ticker(9002, "BTCUSDT", "44990.00000000", "2.0", "45000.00000000", "0.5"),
            )
        ],
    )
    return first, second


@pytest.mark.parametrize(
    ("order", "opened_buy_price", "closed_buy_price"),
    [
        pytest.param((0, 1), 45010.0, 45000.0, id="a-then-b"),
        pytest.param((1, 0), 45000.0, 45010.0, id="b-then-a"),
    ],
)
def test_captures_merge_by_receive_time_with_ties_in_the_order_given(
    two_captures, order, opened_buy_price, closed_buy_price
):
    result = replay(*(two_captures[index] for index in order))
    assert result.returncode == 0, result.stderr.decode()
    opportunity = f"BTC:binance:coinbase:{T0 + 100}"
    assert [(s["status"], s["id"], s["timestamp"], s["buy_price"]) for s in signals(result.stdout)] == [
        ("open", opportunity, T0 + 100, opened_buy_price),
        ("close", opportunity, T0 + 1000, closed_buy_price),
    ]
    assert signals(result.stdout)[-1]["close_reason"] == "threshold"


def test_missing_capture_file_exits_non_zero(tmp_path):
    missing = tmp_path / "no-such-capture.jsonl"
    result = replay(CAPTURE, missing)
    assert result.returncode != 0
    assert result.stdout == b""
    assert "no-such-capture.jsonl" in result.stderr.decode()
