"""A frame from the raw-stream endpoint (`/ws/<stream>`: the payload alone) gives the same ticks
as the same payload wrapped by the combined endpoint (`{"stream": ..., "data": payload}`)."""

from __future__ import annotations

import json

import pytest

from ingest_worker.tests.recorded import files, frames
from ingest_worker.venues.binance import BinanceParser


def payload_text(frame: str) -> str:
    """The `data` object of a combined frame, byte for byte as it appears in the frame."""
    assert frame.startswith('{"stream":'), frame[:80]
    assert frame.endswith("}"), frame[-80:]
    payload = frame[frame.index(',"data":') + len(',"data":') : -1]
    assert json.loads(payload) == json.loads(frame)["data"]
    return payload


@pytest.mark.parametrize("folder", ["binance", "binance_usdm", "binance_coinm"])
def test_raw_stream_frames_give_the_ticks_of_their_combined_frames(market_data, folder):
    compared = 0
    for path in files(market_data / folder, "*.jsonl"):
        if path.name.startswith("depth_snapshot_rest"):
            continue  # REST answers, never wrapped
        combined, raw = BinanceParser(), BinanceParser()
        for frame, recv_ns in frames(path):
            assert raw.parse(payload_text(frame), recv_ns) == combined.parse(frame, recv_ns), frame
            compared += 1
        assert raw.stats.as_dict() == combined.stats.as_dict(), path.name
    assert compared > 1000
