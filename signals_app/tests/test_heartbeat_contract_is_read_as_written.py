"""contracts/heartbeat.py: what the engine and the ingestor write is what /api/health reads, strictly and tolerantly.

Strict where a reader depends on a field (a heartbeat's timestamp, an ingestor body's feeds),
tolerant elsewhere: a field missing or of the wrong type reads as None, never an exception.
"""

from __future__ import annotations

import orjson
import pytest

from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from signals_app.contracts.heartbeat import (
    HealthDecodeError,
    decode_heartbeat,
    decode_ingestor_health,
    encode_heartbeat,
)


def test_the_engines_heartbeat_decodes_to_itself():
    service = EngineService(EngineServiceConfig(engine=EngineConfig(quote_rates="live")))
    service.decision_latency.add(120.0)
    service.feed_states["binance"] = "up"
    snapshot = service.snapshot()
    assert decode_heartbeat(encode_heartbeat(snapshot)) == snapshot
    assert snapshot["signals_dropped"] == 0


def test_a_field_of_the_wrong_type_reads_as_none():
    decoded = decode_heartbeat(
        orjson.dumps(
            {
                "timestamp": 5,
                "ticks": "many",
                "messages": True,
                "signals": {"open": 2, "close": "x"},
                "feeds": ["binance"],
                "redis_connected": 1,
                "signals_dropped": 1.5,
                "latency_frame_to_decision": {"p50_us": 3, "max_us": "slow"},
                "quote_rates": "fixed",
            }
        )
    )
    assert decoded["timestamp"] == 5
    assert (decoded["ticks"], decoded["messages"], decoded["signals_dropped"]) == (None, None, None)
    assert decoded["signals"] == {"open": 2}
    assert decoded["feeds"] == {}
    assert decoded["redis_connected"] is None
    assert decoded["latency_frame_to_decision"] == {"p50_us": 3.0, "max_us": None}
    assert decoded["quote_rates"] is None
    assert decoded["open_opportunities"] is None  # missing


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"ticks": 3}', "no 'timestamp'"),
        (b'{"timestamp": "1705670123456"}', "timestamp is not an integer"),
        (b'{"timestamp": true}', "timestamp is not an integer"),
        (b"[1, 2]", "not a JSON object"),
        (b"{not json", "unexpected character"),
    ],
)
def test_a_heartbeat_without_an_integer_timestamp_is_malformed(data, message):
    with pytest.raises(HealthDecodeError, match=message):
        decode_heartbeat(data)


@pytest.mark.parametrize("data", [b'["not", "a", "body"]', b'{"status": "ok"}', b'{"feeds": []}'])
def test_an_ingestor_body_without_feeds_is_refused(data):
    with pytest.raises(HealthDecodeError, match="no feeds in its /health"):
        decode_ingestor_health(data)


def test_a_feed_that_is_not_an_object_reads_as_unknown():
    decoded = decode_ingestor_health(b'{"feeds": {"kraken": "live", "okx": {"state": 3, "message_rate": "fast"}}}')
    assert decoded["feeds"] == {
        "kraken": {"state": None, "last_message_age_s": None, "message_rate": None},
        "okx": {"state": None, "last_message_age_s": None, "message_rate": None},
    }
    assert decoded["ticks_sent"] is None
