"""A venue recorded over several connections (Bitfinex past its channel cap): capture lines carry
`"connection": N` and the readers keep one parser per connection.

Bitfinex channel ids and sequence numbers are per connection, and every connection opens with
an `info` event. Read through one parser, two interleaved connections would map one's channel
ids onto the other's markets: here both connections use channel id 17, one for BTC and one for
ETH, and one shared parser prices ETH at BTC's price.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import orjson

from engine_worker.config import EngineConfig
from engine_worker.replay import replay_files
from engine_worker.tests.test_replay import coinbase_ticker
from ingest_worker.normalize import normalize_lines
from ingest_worker.record import CaptureWriter
from ingest_worker.venues import DEFAULT_FEES_PCT, make_parser
from ingest_worker.venues.bitfinex import BitfinexParser

T0_MS = 1_705_670_123_000  # 2024-01-19T13:15:23Z
INFO = '{"event":"info","version":2,"serverId":"x","platform":{"status":1}}'


def bitfinex_session(tmp_path: Path, with_connections: bool = True) -> Path:
    """Two Bitfinex connections, interleaved, both using channel id 17; a Coinbase BTC quote."""
    frames: list[tuple[int, str, str, int | None]] = [
        (0, "bitfinex", INFO, 1),
        (1, "bitfinex", '{"event":"subscribed","channel":"ticker","chanId":17,"symbol":"tBTCUSD","pair":"BTCUSD"}', 1),
        (2, "bitfinex", INFO, 2),
        (3, "bitfinex", '{"event":"subscribed","channel":"ticker","chanId":17,"symbol":"tETHUSD","pair":"ETHUSD"}', 2),
        (4, "bitfinex", "[17,[44990,1.5,45000,2.0,10,0.0002,44995,1000,45500,44000]]", 1),
        (5, "bitfinex", "[17,[2499,30,2500,40,1,0.0004,2499.5,5000,2550,2450]]", 2),
        (
            6,
            "coinbase",
            coinbase_ticker(1000, "BTC-USD", "45700.00", "0.5", "45710.00", "0.5", "2024-01-19T13:15:23.006000Z"),
            None,
        ),
    ]
    path = tmp_path / "capture.jsonl"
    writer = CaptureWriter(path)
    for offset, exchange, raw, connection in frames:
        writer.write(exchange, (T0_MS + offset) * 1_000_000, raw, connection if with_connections else None)
    writer.close()
    return path


def test_the_recorder_marks_lines_of_a_venue_on_several_connections_and_only_those(tmp_path: Path) -> None:
    lines = [orjson.loads(line) for line in bitfinex_session(tmp_path).read_bytes().splitlines()]
    assert [line.get("connection") for line in lines] == [1, 1, 2, 2, 1, 2, None]
    assert list(lines[-1]) == ["recv_ms", "exchange", "raw"]  # exactly DESIGN.md's capture line


def test_normalize_reads_each_connection_with_its_own_parser(tmp_path: Path) -> None:
    out = io.BytesIO()
    with bitfinex_session(tmp_path).open("rb") as lines:
        counts = normalize_lines(lines, BitfinexParser(max_age_ms=None), out)
    ticks = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(t["symbol"], t["bid"], t["ask"]) for t in ticks] == [("BTC/USD", 44990, 45000), ("ETH/USD", 2499, 2500)]
    assert counts.stats.ticks == 2
    assert counts.stats.control == {"info": 2, "subscribed": 2}


def test_replay_prices_each_market_from_its_own_connection(tmp_path: Path) -> None:
    out = io.BytesIO()
    stats = replay_files(
        [bitfinex_session(tmp_path)], EngineConfig(fees_pct=DEFAULT_FEES_PCT), out, make_parser=make_parser
    )
    signals = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(s["status"], s["asset"], s["buy_exchange"], s["buy_price"]) for s in signals] == [
        ("open", "BTC", "bitfinex", 45000)
    ]
    assert stats.parsers["bitfinex"].stats.ticks == 2


def test_without_the_connection_key_one_parser_mixes_the_connections_up(tmp_path: Path) -> None:
    # What the key prevents: the second connection's info and channel 17 take over the first's.
    out = io.BytesIO()
    with bitfinex_session(tmp_path, with_connections=False).open("rb") as lines:
        normalize_lines(lines, BitfinexParser(max_age_ms=None), out)
    ticks = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(t["symbol"], t["ask"]) for t in ticks] == [("ETH/USD", 45000), ("ETH/USD", 2500)]  # ETH at BTC's price
