"""A flood of bad frames logs one warning per reason per 10 s of receive time, not one per frame."""

from __future__ import annotations

import logging

import pytest

from ingest_worker.venues.base import BAD_PRICE, CROSSED_BOOK, MALFORMED_JSON, UNKNOWN_SYMBOL
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser

RECV_NS = 1_723_161_254_087_891_268
SECOND_NS = 1_000_000_000

BAD = {
    BinanceParser: {
        MALFORMED_JSON: '{"u":1,"s":"BTCUSDT"',
        BAD_PRICE: '{"u":1,"s":"BTCUSDT","b":"nan","B":"1","a":"2","A":"1"}',
        CROSSED_BOOK: '{"u":1,"s":"BTCUSDT","b":"2","B":"1","a":"1","A":"1"}',
        UNKNOWN_SYMBOL: '{"u":1,"s":"BTCUSD_PERP","b":"1","B":"1","a":"2","A":"1"}',
    },
    CoinbaseParser: {
        MALFORMED_JSON: '{"type":"ticker"',
        BAD_PRICE: '{"type":"ticker","product_id":"BTC-USD","best_bid":"-1","best_ask":"2"}',
        CROSSED_BOOK: '{"type":"ticker","product_id":"BTC-USD","best_bid":"2","best_ask":"1"}',
        UNKNOWN_SYMBOL: '{"type":"ticker","product_id":"BTCUSD","best_bid":"1","best_ask":"2"}',
    },
}


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ingest_worker.parse" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("parser_class", [BinanceParser, CoinbaseParser])
def test_a_thousand_bad_frames_within_a_second_log_one_warning_per_reason(parser_class, caplog):
    parser = parser_class()
    with caplog.at_level(logging.WARNING, logger="ingest_worker.parse"):
        for i in range(1000):
            for frame in BAD[parser_class].values():
                assert parser.parse(frame, RECV_NS + i * SECOND_NS // 1000) == []
    logged = warnings(caplog)
    assert len(logged) == len(BAD[parser_class])
    for reason in BAD[parser_class]:
        assert sum(f"({reason})" in message for message in logged) == 1, (reason, logged)
    # Every frame is still counted, logged or not.
    assert parser.stats.as_dict()["dropped"] == dict.fromkeys(sorted(BAD[parser_class]), 1000)


def test_the_next_warning_comes_10_s_later_and_says_how_many_were_held_back(caplog):
    parser = BinanceParser()
    frame = BAD[BinanceParser][BAD_PRICE]
    with caplog.at_level(logging.WARNING, logger="ingest_worker.parse"):
        for i in range(1000):
            parser.parse(frame, RECV_NS + i * SECOND_NS // 1000)
        parser.parse(frame, RECV_NS + 9 * SECOND_NS)  # still within 10 s of the first warning
        assert len(warnings(caplog)) == 1
        parser.parse(frame, RECV_NS + 10 * SECOND_NS)
    logged = warnings(caplog)
    assert len(logged) == 2
    assert "+1000 more" in logged[1]
