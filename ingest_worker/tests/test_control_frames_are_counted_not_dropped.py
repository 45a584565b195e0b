"""Subscription answers, heartbeats and exchange errors are control frames: counted as such, never as drops."""

from __future__ import annotations

import logging

import pytest

from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser

RECV_NS = 1_618_677_810_000_000_000


@pytest.mark.parametrize(
    ("parser_class", "frame", "kind"),
    [
        (BinanceParser, '{"result":null,"id":1}', "subscription"),
        (BinanceParser, '{"result":["btcusdt@bookTicker"],"id":3}', "subscription"),  # LIST_SUBSCRIPTIONS
        (BinanceParser, '{"code":2,"msg":"Invalid request: unknown variant `SUBSCRIB`","id":1}', "error"),
        (BinanceParser, '{"error":{"code":2,"msg":"Invalid request"},"id":1}', "error"),
        (
            CoinbaseParser,
            '{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["BTC-USD"]}]}',
            "subscriptions",
        ),
        (
            CoinbaseParser,
            '{"type":"heartbeat","last_trade_id":881613,"product_id":"BTC-USD","sequence":333938798,'
            '"time":"2021-04-17T16:43:30.244075Z"}',
            "heartbeat",
        ),
        (
            CoinbaseParser,
            '{"type":"error","message":"Failed to subscribe","reason":"FOO-BAR is not a product"}',
            "error",
        ),
    ],
)
def test_control_frames_are_counted_as_control(parser_class, frame, kind):
    parser = parser_class()
    for _ in range(3):
        assert parser.parse(frame, RECV_NS) == []
        assert parser.parse(frame.encode(), RECV_NS) == []
    assert parser.stats.as_dict() == {"frames": 6, "ticks": 0, "control": {kind: 6}, "ignored": {}, "dropped": {}}


@pytest.mark.parametrize(
    ("parser_class", "frame", "says"),
    [
        (BinanceParser, '{"code":-1121,"msg":"Invalid symbol."}', "Invalid symbol."),
        (CoinbaseParser, '{"type":"error","message":"Failed to subscribe"}', "Failed to subscribe"),
    ],
)
def test_exchange_errors_are_shown_to_the_operator(parser_class, frame, says, caplog):
    with caplog.at_level(logging.WARNING, logger="ingest_worker.parse"):
        parser_class().parse(frame, RECV_NS)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "exchange error" in record.getMessage()
    assert says in record.getMessage()
