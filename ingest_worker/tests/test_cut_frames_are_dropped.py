"""A peer that disconnects mid-frame leaves a prefix of a real frame: no tick, one malformed_json drop."""

from __future__ import annotations

import pytest

from ingest_worker.tests.recorded import frames
from ingest_worker.venues.base import MALFORMED_JSON
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser

RECORDED = [
    (BinanceParser, "binance/bookTicker.jsonl"),
    (BinanceParser, "binance/trade.jsonl"),
    (BinanceParser, "binance/aggTrade.20210417.jsonl"),
    (BinanceParser, "binance_usdm/bookTicker.jsonl"),
    (BinanceParser, "binance/kline_1m.20210417.jsonl"),
    (CoinbaseParser, "coinbase/ticker.jsonl"),
    (CoinbaseParser, "coinbase/subscriptions.jsonl"),
]


@pytest.mark.parametrize(("parser_class", "name"), RECORDED)
def test_every_prefix_of_a_real_frame_is_dropped_as_malformed(market_data, parser_class, name):
    frame, recv_ns = frames(market_data / name)[0]
    whole = parser_class(max_age_ms=None)
    assert whole.parse(frame, recv_ns) or whole.stats.control or whole.stats.ignored  # the whole frame is good
    for cut in range(len(frame)):
        for prefix in (frame[:cut], frame[:cut].encode()):
            parser = parser_class(max_age_ms=None)
            assert parser.parse(prefix, recv_ns) == [], prefix
            assert parser.stats.as_dict() == {
                "frames": 1,
                "ticks": 0,
                "control": {},
                "ignored": {},
                "dropped": {MALFORMED_JSON: 1},
            }, prefix
