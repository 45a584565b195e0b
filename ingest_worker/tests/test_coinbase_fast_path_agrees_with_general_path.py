"""The msgspec fast path for Coinbase tickers and the general path give the same ticks and counts.

`VenueParser.parse(parser, frame, recv_ns)` runs the general path alone. Both run
side by side on every recorded Coinbase frame, with and without the clock check,
on frames built to sit at the fast path's edges, and on generated ticker frames.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.tests.recorded import files, frames
from ingest_worker.venues.base import VenueParser
from ingest_worker.venues.coinbase import CoinbaseParser

RECV_NS = 1_705_665_600_100_000_000  # 2024-01-19T12:00:00.100Z

TICKER = {
    "type": "ticker",
    "sequence": 1,
    "product_id": "BTC-USD",
    "price": "41000.10",
    "best_bid": "41000.00",
    "best_bid_size": "0.5",
    "best_ask": "41000.20",
    "best_ask_size": "0.25",
    "side": "buy",
    "time": "2024-01-19T12:00:00.050000Z",
    "trade_id": 7,
    "last_size": "0.01",
}
MISSING = object()


def assert_paths_agree(frame: str, recv_ns: int, fast: CoinbaseParser, general: CoinbaseParser) -> None:
    fast_ticks = fast.parse(frame, recv_ns)
    general_ticks = VenueParser.parse(general, frame, recv_ns)
    assert fast_ticks == general_ticks, frame
    assert [type(value) for tick in fast_ticks for value in tick] == [
        type(value) for tick in general_ticks for value in tick
    ], frame
    assert fast.stats.as_dict() == general.stats.as_dict(), frame


def ticker(**changes: object) -> str:
    fields = {key: value for key, value in (TICKER | changes).items() if value is not MISSING}
    return json.dumps(fields, separators=(",", ":"))


@pytest.mark.parametrize("max_age_ms", [None, 60_000])
def test_both_paths_agree_on_every_recorded_frame(market_data, max_age_ms):
    for path in files(market_data / "coinbase", "*.jsonl"):
        fast, general = CoinbaseParser(max_age_ms=max_age_ms), CoinbaseParser(max_age_ms=max_age_ms)
        for frame, recv_ns in frames(path):
            assert_paths_agree(frame, recv_ns, fast, general)


def test_a_complete_ticker_takes_the_fast_path_and_gives_a_quote_and_a_trade():
    parser = CoinbaseParser()
    ticks = parser.parse(ticker(), RECV_NS)
    assert [tick.type for tick in ticks] == ["quote", "trade"]
    assert (ticks[0].bid, ticks[0].ask, ticks[0].bid_size, ticks[0].ask_size) == (41000.0, 41000.2, 0.5, 0.25)
    assert (ticks[1].price, ticks[1].volume) == (41000.1, 0.01)
    assert ticks[0].timestamp == 1_705_665_600_050


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"best_bid_size": MISSING, "best_ask_size": MISSING},
        {"best_bid_size": None},
        {"trade_id": MISSING},
        {"trade_id": "7"},
        {"price": None},
        {"last_size": MISSING},
        {"time": MISSING},
        {"time": "2024-01-19T12:00:00Z"},
        {"time": "2024-01-19T12:00:00.5Z"},
        {"time": "2024-01-19T12:00:60.000Z"},
        {"time": "2024-01-19T12:00:61.000Z"},
        {"time": "2024-01-19T12:00:0a.000Z"},
        {"time": "2024-1-19T12:00:00.000Z"},
        {"time": "2024-01-19T12:00:00.000+00:00"},
        {"time": "2024-01-19T12:00:00.Z"},
        {"time": 1705665600},
        {"time": "2024-01-19T12:02:00.000Z"},  # 2 minutes away: stale with the clock check
        {"best_bid": "41000.20"},  # crossed (equal)
        {"best_bid": "nan"},
        {"best_ask": "1e400"},
        {"best_bid": 41000},
        {"best_bid": True},
        {"best_bid_size": "0"},
        {"last_size": "-1"},
        {"product_id": "BTCUSD"},
        {"product_id": 5},
        {"type": "heartbeat"},
    ],
)
@pytest.mark.parametrize("max_age_ms", [None, 60_000])
def test_both_paths_agree_at_the_fast_paths_edges(changes, max_age_ms):
    assert_paths_agree(
        ticker(**changes), RECV_NS, CoinbaseParser(max_age_ms=max_age_ms), CoinbaseParser(max_age_ms=max_age_ms)
    )


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1", "0", "-1", "nan", "inf", "1e400", "41000.1", " 1", "1_0", "", "2024-01-19T12:00:00.1Z"]),
    st.text(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(TICKER)), VALUES, max_size=4))
def test_both_paths_agree_on_generated_tickers(changes):
    assert_paths_agree(ticker(**changes), RECV_NS, CoinbaseParser(), CoinbaseParser())
