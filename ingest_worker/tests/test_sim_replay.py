"""`--replay`: a capture's frames go out unchanged, per venue, in receive-time order, at the asked pace."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from ingest_worker.sim.replay import ReplayCursor, load_capture
from ingest_worker.tests.sim_helpers import frames_for, http, http_url, run, simulator
from ingest_worker.venues import binance as binance_venue
from ingest_worker.venues import coinbase as coinbase_venue
from signals_app.contracts.capture import CaptureLine

T = 1_705_665_600_000.0  # recv_ms of the first frame


def book_ticker(update_id: int, symbol: str = "BTCUSDT", bid: str = "41310.28000000") -> str:
    return (
        f'{{"stream":"{symbol.lower()}@bookTicker","data":{{"u":{update_id},"s":"{symbol}",'
        f'"b":"{bid}","B":"0.19950000","a":"41311.08000000","A":"1.84230000"}}}}'
    )


def ticker(sequence: int, product: str = "BTC-USD") -> str:
    return (
        f'{{"type":"ticker","sequence":{sequence},"product_id":"{product}","price":"41300.01","open_24h":"41012.5",'
        '"volume_24h":"14290.00000000","low_24h":"40600","high_24h":"41900.99","volume_30d":"450118.00000000",'
        '"best_bid":"41300.00","best_bid_size":"0.30000000","best_ask":"41300.01","best_ask_size":"0.20000000",'
        f'"side":"buy","time":"2024-01-19T12:00:00.{sequence % 1000:03d}000Z","trade_id":{sequence},'
        '"last_size":"0.01"}'
    )


def line(recv_ms: float, exchange: str, raw: str) -> bytes:
    return orjson.dumps({"recv_ms": recv_ms, "exchange": exchange, "raw": raw}) + b"\n"


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """Out of order on purpose, with ties, a truncated frame, control answers and bad lines."""
    path = tmp_path / "capture.jsonl"
    path.write_bytes(
        line(T + 10, "coinbase", '{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["BTC-USD"]}]}')
        + line(T + 20, "binance", '{"result":null,"id":1}')
        + line(T + 300, "binance", book_ticker(3))
        + line(T + 100, "binance", book_ticker(1))
        + line(T + 200, "coinbase", ticker(1))
        + line(T + 200, "binance", book_ticker(2, "ETHUSDT", "2467.72000000"))  # a tie, after the coinbase one
        + b"this line is not JSON\n"
        + line(T + 250, "bybit", '{"event":"heartbeat"}')
        + b'{"recv_ms": "soon", "exchange": "binance", "raw": "{}"}\n'
        + line(T + 400, "binance", '{"stream":"btcusdt@bookTicker","data":{"u":4,"s":"BTCUSDT","b":"41')  # truncated
        + line(T + 500, "coinbase", ticker(2))
        + line(T + 600, "coinbase", ticker(3, "ETH-USD"))
    )
    return path


def test_a_capture_is_read_in_receive_order_without_bad_lines_or_subscription_answers(capture: Path) -> None:
    loaded = load_capture(capture)
    assert [(f.recv_ms - T, f.exchange) for f in loaded.frames] == [
        (100, "binance"),
        (200, "coinbase"),
        (200, "binance"),
        (300, "binance"),
        (400, "binance"),
        (500, "coinbase"),
        (600, "coinbase"),
    ]
    assert (loaded.lines, loaded.bad_lines) == (12, 2)
    assert loaded.subscription_answers == {"coinbase": 1, "binance": 1}
    assert loaded.unknown_exchange == {"bybit": 1}
    assert [(m.venue, m.native, m.symbol) for m in loaded.markets] == [
        ("binance", "BTCUSDT", "BTC/USDT"),
        ("binance", "ETHUSDT", "ETH/USDT"),
        ("coinbase", "BTC-USD", "BTC/USD"),
        ("coinbase", "ETH-USD", "ETH/USD"),
    ]
    assert loaded.venues == ["binance", "coinbase"]


def test_the_cursor_releases_frames_at_the_recorded_pace_times_the_speed() -> None:
    frames = [CaptureLine(T + offset, "binance", str(offset)) for offset in (0, 100, 100, 400, 1000)]
    cursor = ReplayCursor(frames, speed=2.0)
    assert [f.raw for f in cursor.take(0, 100)] == ["0"]
    assert cursor.take(49, 100) == []
    assert cursor.next_due_ms() == 50
    assert [f.raw for f in cursor.take(50, 1)] == ["100"]  # the batch limit holds
    assert [f.raw for f in cursor.take(50, 100)] == ["100"]
    assert [f.raw for f in cursor.take(10_000, 100)] == ["400", "1000"]
    assert cursor.done
    assert cursor.next_due_ms() is None
    fastest = ReplayCursor(frames, speed=0)
    assert len(fastest.take(0, 100)) == len(frames)


def test_replay_waits_for_both_venues_then_sends_every_frame_unchanged_in_order(capture: Path) -> None:
    expected = load_capture(capture).frames

    async def body() -> None:
        async with simulator(replay=capture, speed=0) as sim:
            _, info = await http(http_url(sim.urls["binance"]) + binance_venue.EXCHANGE_INFO_PATH)
            assert binance_venue.markets_from_exchange_info(info) == [
                ("BTCUSDT", "BTC", "USDT"),
                ("ETHUSDT", "ETH", "USDT"),
            ]
            _, products = await http(http_url(sim.urls["coinbase"]) + coinbase_venue.PRODUCTS_PATH)
            assert [native for native, _, _ in coinbase_venue.markets_from_products(products)] == ["BTC-USD", "ETH-USD"]
            async with connect(f"{sim.urls['binance']}/ws") as binance, connect(sim.urls["coinbase"] + "/") as coinbase:
                await binance.send('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}')
                assert await binance.recv() == '{"result":null,"id":1}'
                assert await frames_for(binance, 0.3) == []  # coinbase has no subscriber yet
                _, status = await http(http_url(sim.urls["binance"]) + "/sim/status")
                assert status["replay"]["state"] == "waiting"
                await coinbase.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker"]}')
                assert orjson.loads(await coinbase.recv())["type"] == "subscriptions"
                got_binance, got_coinbase = await asyncio.gather(frames_for(binance, 0.5), frames_for(coinbase, 0.5))
            # Every frame of the venue, whatever the subscription (ETH too), exactly as recorded.
            assert [frame for frame, _ in got_binance] == [f.raw for f in expected if f.exchange == "binance"]
            assert [frame for frame, _ in got_coinbase] == [f.raw for f in expected if f.exchange == "coinbase"]
            _, status = await http(http_url(sim.urls["coinbase"]) + "/sim/status")
            assert status["replay"] == {
                "file": str(capture),
                "speed": 0.0,
                "state": "finished",
                "frames": 7,
                "frames_sent": 7,
            }
            status_code, answer = await http(
                http_url(sim.urls["coinbase"]) + "/sim/dislocate?asset=BTC&cheap=binance&rich=coinbase"
            )
            assert status_code == 409
            assert "replay" in answer["error"]

    run(body)


def test_replay_keeps_the_recorded_gaps_divided_by_the_speed(tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    path.write_bytes(b"".join(line(T + 200 * i, "binance", book_ticker(i)) for i in range(5)))  # 800 ms recorded

    async def body() -> None:
        async with simulator(replay=path, speed=4) as sim:  # starts when binance, its only venue, has a client
            async with connect(f"{sim.urls['binance']}/ws/btcusdt@bookTicker") as ws:
                started = time.monotonic()
                frames = await frames_for(ws, 0.6)
            assert [orjson.loads(frame)["data"]["u"] for frame, _ in frames] == [0, 1, 2, 3, 4]
            span_s = (frames[-1][1] - frames[0][1]) / 1e9
            assert 0.15 <= span_s <= 0.35  # 800 ms recorded at 4x: 200 ms
            assert time.monotonic() - started < 1.0

    run(body)


def test_without_waiting_a_client_sees_only_what_is_replayed_after_it_subscribes(capture: Path) -> None:
    async def body() -> None:
        async with simulator(replay=capture, speed=0, replay_wait=False) as sim:
            for _ in range(100):
                if sim.replay_state == "finished":
                    break
                await asyncio.sleep(0.01)
            assert sim.replay_state == "finished"
            async with connect(f"{sim.urls['binance']}/ws/btcusdt@bookTicker") as ws:
                assert await frames_for(ws, 0.2) == []

    run(body)


def test_rest_snapshot_lines_are_counted_and_never_sent_as_frames(tmp_path: Path) -> None:
    path = tmp_path / "rest.jsonl"
    book = '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}'
    url = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    lines = [
        orjson.dumps({"recv_ms": T + 100, "exchange": "binance", "rest": url, "raw": '{"lastUpdateId":1}'}),
        orjson.dumps({"recv_ms": T + 200, "exchange": "binance", "raw": book}),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    loaded = load_capture(path)
    assert [frame.raw for frame in loaded.frames] == [book]
    assert loaded.rest_lines == 1
    assert "REST snapshot lines: 1" in loaded.summary()
