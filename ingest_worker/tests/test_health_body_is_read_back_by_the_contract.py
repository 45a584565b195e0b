"""The ingestor's /health body is built and encoded by signals_app.contracts.heartbeat, and decodes with it."""

from __future__ import annotations

import orjson

from ingest_worker.feed import LIVE
from ingest_worker.service import IngestorConfig, IngestorService
from signals_app.contracts.heartbeat import FEED_LIVE, decode_ingestor_health


def test_the_ingestors_health_body_decodes_to_what_api_health_reads():
    service = IngestorService(IngestorConfig(exchanges=["binance", "coinbase"], zmq_endpoint="inproc://health-body"))
    try:
        status, content_type, body = service.health()
    finally:
        service.pusher.close()
    assert (status, content_type) == (503, "application/json")  # no feed is live before run()
    assert orjson.loads(body)["not_live"] == ["binance", "coinbase"]
    decoded = decode_ingestor_health(body)
    assert decoded["feeds"] == {
        "binance": {"state": "starting", "last_message_age_s": None, "message_rate": 0.0},
        "coinbase": {"state": "starting", "last_message_age_s": None, "message_rate": 0.0},
    }
    assert (decoded["ticks_sent"], decoded["ticks_dropped_backpressure"], decoded["feed_states_held"]) == (0, 0, 0)
    assert orjson.loads(body)["feed_states_holding"] == 0
    assert LIVE == FEED_LIVE
