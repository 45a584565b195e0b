"""`manage.py run_exchange_sim` as a process: free ports, the SIM_READY line, clean exit on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from django.core.management import CommandError, call_command
from websockets.asyncio.client import connect

from ingest_worker.tests.sim_helpers import frames_for, http, http_url, run, until_closed
from ingest_worker.venues import binance as binance_venue
from ingest_worker.venues.binance import BinanceParser

REPO = Path(__file__).resolve().parents[2]


def start(*options: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """The simulator on free ports, and its URLs from the SIM_READY line."""
    env = {**os.environ, "LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_exchange_sim", "--port", "binance=0", "--port", "coinbase=0", *options],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()  # the process prints nothing else on stdout
    if not line.startswith("SIM_READY "):
        process.kill()
        _, stderr = process.communicate(timeout=5)
        pytest.fail(f"no SIM_READY line: {line!r}\n{stderr.decode()}")
    return process, orjson.loads(line.removeprefix("SIM_READY "))


def stop(process: subprocess.Popen[bytes], signum: int | None, started: float | None = None) -> tuple[float, str]:
    """Send `signum` (None: it has been sent at `started`); (seconds until exit, stderr)."""
    if signum is not None:
        started = time.monotonic()
        process.send_signal(signum)
    assert started is not None
    try:
        _, stderr = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the simulator did not exit within 5 s")
    return time.monotonic() - started, stderr.decode()


def test_it_reports_its_free_ports_serves_both_venues_and_exits_0_on_sigterm() -> None:
    process, urls = start("--rate", "200", "--ping-interval", "1")
    signalled_at: list[float] = []
    try:
        assert set(urls) == {"binance", "coinbase"}
        assert all(url.startswith("ws://127.0.0.1:") for url in urls.values())

        async def body() -> None:
            parser = BinanceParser()
            # The live client's endpoint: combined-stream frames name their stream (partial depth
            # on the raw /ws endpoint names no market).
            async with connect(binance_venue.connect_url(urls["binance"])) as ws:
                await ws.send(orjson.dumps(binance_venue.subscribe_message(["BTCUSDT", "ETHUSDT"])).decode())
                assert await ws.recv() == '{"result":null,"id":1}'
                frames = await frames_for(ws, 0.5)
                assert frames
                assert all(parser.parse(frame, recv_ns) for frame, recv_ns in frames)
                status, answer = await http(http_url(urls["coinbase"]) + "/sim/status")
                assert status == 200
                assert answer["venues"]["binance"]["connections"] == 1
                # Shut down under a live connection: the client is told (1001 going away).
                signalled_at.append(time.monotonic())
                process.send_signal(signal.SIGTERM)
                await until_closed(ws, within_s=5)
                assert ws.close_code == 1001

        run(body)
        seconds, stderr = stop(process, None, signalled_at[0])
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert seconds < 5
    for state_change in (
        "binance: listening on",
        "coinbase: listening on",
        "connected to /stream",
        "subscribed to 6 stream(s)",  # bookTicker, trade and depth20@100ms of two markets
        "SIGTERM received",
        "disconnected (close code 1001)",
        "simulator closed",
    ):
        assert state_change in stderr


def test_it_replays_a_capture_and_exits_0_on_sigint(tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    frames = [
        f'{{"stream":"btcusdt@bookTicker","data":{{"u":{i},"s":"BTCUSDT","b":"41310.28000000","B":"0.19950000",'
        f'"a":"41311.08000000","A":"1.84230000"}}}}'
        for i in range(20)
    ]
    capture.write_bytes(
        b"".join(
            orjson.dumps({"recv_ms": 1_705_665_600_000 + 10 * i, "exchange": "binance", "raw": frame}) + b"\n"
            for i, frame in enumerate(frames)
        )
    )
    process, urls = start("--replay", str(capture), "--speed", "0")
    try:

        async def body() -> None:
            async with connect(f"{urls['binance']}/stream?streams=btcusdt@bookTicker") as ws:
                received = await frames_for(ws, 0.5)
            assert [frame for frame, _ in received] == frames

        run(body)
        _, stderr = stop(process, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "replay finished: 20 frames sent" in stderr
    assert "SIGINT received" in stderr


def test_bad_options_fail_at_start_with_a_message() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "run_exchange_sim", "--assets", "BTC,BTC/USDT"],
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert b"--assets" in result.stderr
    assert result.stdout == b""


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf"])
def test_an_okx_idle_timeout_that_is_no_duration_is_refused_at_start(seconds: str) -> None:
    with pytest.raises(CommandError, match="--okx-idle-timeout"):
        call_command("run_exchange_sim", "--okx-idle-timeout", seconds)
