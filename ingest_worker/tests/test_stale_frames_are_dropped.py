"""With a 60 s clock check, a tick whose exchange time is more than 60 s from its receive time is dropped.

The receive time is the clock (injected: a replay passes the capture's time),
so "stale" covers both directions: an old event, and an exchange clock ahead
of ours.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ingest_worker.venues.base import STALE
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.coinbase import CoinbaseParser

RECV_NS = 1_723_161_254_087_891_268
RECV_MS = RECV_NS // 1_000_000


def binance_trade(event_ms: int) -> str:
    return json.dumps({"e": "trade", "E": event_ms, "s": "BTCUSDT", "t": 1, "p": "61837.63", "q": "0.02"})


def coinbase_ticker(event_ms: int) -> str:
    time = dt.datetime.fromtimestamp(event_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(
        {"type": "ticker", "product_id": "BTC-USD", "price": "61800.25", "best_bid": "61800.2", "best_ask": "61800.3"}
        | {"time": time, "trade_id": 1, "last_size": "0.5"}
    )


MAKERS = {
    "binance trade": (BinanceParser, binance_trade),
    "coinbase ticker": (CoinbaseParser, coinbase_ticker),
}


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("offset_ms", [-61_000, 61_000, -60_001, 60_001, -3_600_000, 10**12])
def test_event_more_than_60_s_from_the_receive_time_is_dropped_as_stale(kind, offset_ms):
    parser_class, make = MAKERS[kind]
    parser = parser_class(max_age_ms=60_000)
    assert parser.parse(make(RECV_MS + offset_ms), RECV_NS) == []
    assert parser.stats.as_dict()["dropped"] == {STALE: 1}
    assert parser.stats.ticks == 0


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("offset_ms", [-60_000, -59_999, -1_272, 0, 1_272, 59_999, 60_000])
def test_event_within_60_s_of_the_receive_time_is_accepted(kind, offset_ms):
    parser_class, make = MAKERS[kind]
    parser = parser_class(max_age_ms=60_000)
    ticks = parser.parse(make(RECV_MS + offset_ms), RECV_NS)
    assert ticks
    assert {tick.timestamp for tick in ticks} == {RECV_MS + offset_ms}
    assert parser.stats.as_dict()["dropped"] == {}


@pytest.mark.parametrize("kind", MAKERS)
def test_without_a_clock_check_old_events_pass_with_their_own_time(kind):
    parser_class, make = MAKERS[kind]
    event_ms = RECV_MS - 7 * 86_400_000  # a week old
    ticks = parser_class(max_age_ms=None).parse(make(event_ms), RECV_NS)
    assert ticks
    assert {tick.timestamp for tick in ticks} == {event_ms}


def test_spot_book_ticker_has_no_event_time_and_is_never_stale():
    frame = '{"u":1,"s":"BTCUSDT","b":"61837.63","B":"3.7","a":"61837.64","A":"1.5"}'
    parser = BinanceParser(max_age_ms=60_000)
    (tick,) = parser.parse(frame, RECV_NS)
    assert tick.timestamp == RECV_MS
