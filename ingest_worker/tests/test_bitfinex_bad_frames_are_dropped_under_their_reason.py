"""Bad Bitfinex frames give no tick and are counted once, under the reason that says what was wrong;
control frames, unused channels, sequence gaps and unknown channel ids are counted as what they are."""

from __future__ import annotations

import json
import logging

import pytest

from ingest_worker.venues.base import (
    BAD_PRICE,
    BAD_SIZE,
    BAD_TIMESTAMP,
    CROSSED_BOOK,
    MALFORMED_JSON,
    MISSING_FIELD,
    STALE,
    UNKNOWN_MESSAGE,
    UNKNOWN_SYMBOL,
)
from ingest_worker.venues.bitfinex import BitfinexParser
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import Tick

RECV_NS = 1_618_677_543_960_000_000  # 2021-04-17T16:39:03.96Z
NOW_MS = RECV_NS // 1_000_000
TICKER_ID, TRADES_ID, BOOK_ID, FUNDING_ID = 10, 11, 12, 13
SUBSCRIBED = [
    {"event": "subscribed", "channel": "ticker", "chanId": TICKER_ID, "symbol": "tBTCUST", "pair": "BTCUST"},
    {"event": "subscribed", "channel": "trades", "chanId": TRADES_ID, "symbol": "tBTCUST", "pair": "BTCUST"},
    {"event": "subscribed", "channel": "book", "chanId": BOOK_ID, "symbol": "tBTCUST", "prec": "P0"},
    {"event": "subscribed", "channel": "ticker", "chanId": FUNDING_ID, "symbol": "fUSD", "currency": "USD"},
]
TICKER = [100.5, 3.5, 100.6, 4.5, -1.0, -0.01, 100.55, 1000.0, 110.0, 90.0]
TRADE = [401597395, NOW_MS - 500, -0.25, 100.5]

BAD_PRICES = ["-1", "nan", None, True, [1], {"v": 1}, -1, 0, 0.0, -0.5, 1e10, 10**16, 1e400]
BAD_SIZES = ["-1", "nan", None, True, [1], -0.0, 0, 0.0, 1e15, 10**16, 1e400]


def text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))  # 1e400 becomes the bare token Infinity: malformed


def subscribed_parser(**kwargs: object) -> BitfinexParser:
    """A parser that has seen the subscriptions; its counters start at zero."""
    parser = BitfinexParser(**kwargs)  # type: ignore[arg-type]
    for event in SUBSCRIBED:
        assert parser.parse(text(event), RECV_NS) == []
    parser.stats.control.clear()
    parser.stats.frames = 0
    return parser


def outcome(parser: BitfinexParser, frame: str | bytes) -> dict[str, object]:
    assert parser.parse(frame, RECV_NS) == []
    return parser.stats.as_dict()


def dropped(reason: str) -> dict[str, object]:
    return {"frames": 1, "ticks": 0, "control": {}, "ignored": {}, "dropped": {reason: 1}}


def test_the_good_frames_these_tests_break_are_good():
    parser = subscribed_parser()
    [quote] = parser.parse(text([TICKER_ID, TICKER, 5]), RECV_NS)
    assert quote == Tick("bitfinex", "BTC/USDT", "quote", 100.55, 0.0, 100.5, 100.6, None, None, NOW_MS, RECV_NS)
    [trade] = parser.parse(text([TRADES_ID, "te", TRADE, 6]), RECV_NS)
    assert trade == Tick("bitfinex", "BTC/USDT", "trade", 100.5, 0.25, None, None, None, None, NOW_MS - 500, RECV_NS)
    assert parser.stats.as_dict()["dropped"] == {}
    assert parser.sequence_gaps == 0


@pytest.mark.parametrize("bad", ["", " ", "[", "[10,", "not json", "[10,[1,2]", "{'event': 1}", "\x00", "[NaN]"])
def test_malformed_json(bad):
    assert outcome(subscribed_parser(), bad) == dropped(MALFORMED_JSON)
    assert outcome(subscribed_parser(), bad.encode()) == dropped(MALFORMED_JSON)


@pytest.mark.parametrize(
    "bad",
    [
        [TICKER_ID],  # no payload
        [TICKER_ID, TICKER[:3], 5],  # no ask size
        [TICKER_ID, 5, 6],  # a ticker that is not a list
        [TRADES_ID, "te", 5],  # a trade that is not a list
        [TRADES_ID, "te", TRADE[:3], 5],  # no price
        [TRADES_ID, "te"],
        [TRADES_ID, [[1, NOW_MS]], 5],  # a snapshot whose only trade is cut short
        {"event": "subscribed", "channel": "ticker", "symbol": "tBTCUSD"},  # no chanId
        {"event": "subscribed", "chanId": 99, "symbol": "tBTCUSD"},  # no channel
    ],
)
def test_missing_fields(bad):
    assert outcome(subscribed_parser(), text(bad)) == dropped(MISSING_FIELD)


@pytest.mark.parametrize(
    "bad",
    [
        {"no": "event"},
        {"event": "nonsense"},
        "a string",
        42,
        None,
        ["10", TICKER, 5],  # chanId not a number
        [True, TICKER, 5],
        [TICKER_ID, "te", TRADE, 5],  # a trade on the ticker channel
        [TRADES_ID, "xx", TRADE, 5],
        [TRADES_ID, TRADE, 5],  # a flat trade without "te"
        [TICKER_ID, TICKER, 5, 6],  # one element too many
    ],
)
def test_unknown_messages(bad):
    assert outcome(subscribed_parser(), text(bad)) == dropped(UNKNOWN_MESSAGE)


@pytest.mark.parametrize("index", [0, 2])
@pytest.mark.parametrize("bad", BAD_PRICES)
def test_bad_ticker_prices(index, bad):
    fields = list(TICKER)
    fields[index] = bad
    reason = MALFORMED_JSON if bad == 1e400 else BAD_PRICE
    assert outcome(subscribed_parser(), text([TICKER_ID, fields, 5])) == dropped(reason)


@pytest.mark.parametrize("index", [1, 3])
@pytest.mark.parametrize("bad", BAD_SIZES)
def test_bad_ticker_sizes(index, bad):
    """The ticker's sizes are not emitted (they are 25-level sums) but a bad one still condemns the frame."""
    fields = list(TICKER)
    fields[index] = bad
    reason = MALFORMED_JSON if bad == 1e400 else BAD_SIZE
    assert outcome(subscribed_parser(), text([TICKER_ID, fields, 5])) == dropped(reason)


@pytest.mark.parametrize("bid_ask", [(100.6, 100.6), (100.7, 100.6)])
def test_crossed_or_locked_ticker(bid_ask):
    fields = list(TICKER)
    fields[0], fields[2] = bid_ask
    assert outcome(subscribed_parser(), text([TICKER_ID, fields, 5])) == dropped(CROSSED_BOOK)


@pytest.mark.parametrize("bad", BAD_PRICES)
def test_bad_trade_prices(bad):
    trade = [*TRADE[:3], bad]
    reason = MALFORMED_JSON if bad == 1e400 else BAD_PRICE
    assert outcome(subscribed_parser(), text([TRADES_ID, "te", trade, 5])) == dropped(reason)
    assert outcome(subscribed_parser(), text([TRADES_ID, [trade], 5])) == dropped(reason)


@pytest.mark.parametrize("bad", BAD_SIZES)
def test_bad_trade_amounts(bad):
    trade = [*TRADE[:2], bad, TRADE[3]]
    reason = MALFORMED_JSON if bad == 1e400 else BAD_SIZE
    assert outcome(subscribed_parser(), text([TRADES_ID, "te", trade, 5])) == dropped(reason)


@pytest.mark.parametrize("bad", [None, "1618677543460", 1.6e12, True, -1, 0, 10**14])
def test_bad_trade_times(bad):
    trade = [TRADE[0], bad, *TRADE[2:]]
    assert outcome(subscribed_parser(), text([TRADES_ID, "te", trade, 5])) == dropped(BAD_TIMESTAMP)


def test_stale_trades_are_dropped_and_fresh_ones_kept():
    for age_ms in (60_001, -60_001):  # late, or from the future
        trade = [TRADE[0], NOW_MS - age_ms, *TRADE[2:]]
        assert outcome(subscribed_parser(), text([TRADES_ID, "te", trade, 5])) == dropped(STALE)
        assert len(subscribed_parser(max_age_ms=None).parse(text([TRADES_ID, "te", trade, 5]), RECV_NS)) == 1
    trade = [TRADE[0], NOW_MS - 60_000, *TRADE[2:]]
    assert len(subscribed_parser().parse(text([TRADES_ID, "te", trade, 5]), RECV_NS)) == 1


def test_a_snapshot_keeps_its_good_trades_and_counts_the_rest():
    parser = subscribed_parser()
    old = [1, NOW_MS - 3_600_000, 1.0, 100.0]
    bad = [2, NOW_MS - 2000, 1.0, -100.0]
    newer = [3, NOW_MS - 1000, -2.0, 101.0]
    newest = [4, NOW_MS, 3.0, 102.0]
    ticks = parser.parse(text([TRADES_ID, [newest, newer, bad, old], 5]), RECV_NS)  # newest first, as sent
    assert [(tick.price, tick.volume, tick.timestamp) for tick in ticks] == [
        (101.0, 2.0, NOW_MS - 1000),
        (102.0, 3.0, NOW_MS),
    ]
    assert parser.stats.as_dict() == {"frames": 1, "ticks": 2, "control": {}, "ignored": {}, "dropped": {}}
    assert parser.snapshot_trades_skipped == {BAD_PRICE: 1, STALE: 1}


def test_a_snapshot_without_a_good_trade_is_one_drop_under_its_oldest_trades_reason():
    parser = subscribed_parser()
    stale = [1, NOW_MS - 3_600_000, 1.0, 100.0]
    bad = [2, NOW_MS, 1.0, -100.0]
    assert outcome(parser, text([TRADES_ID, [bad, stale, stale], 5])) == dropped(STALE)
    assert parser.snapshot_trades_skipped == {}


def test_unknown_symbols():
    parser = BitfinexParser(SymbolTable([("tETHUSD", "ETH", "USD")]))  # a strict market list
    parser.parse(text({"event": "subscribed", "channel": "ticker", "chanId": 1, "symbol": "tBTCUSD"}), RECV_NS)
    assert parser.parse(text([1, TICKER, 2]), RECV_NS) == []
    assert parser.stats.dropped[UNKNOWN_SYMBOL] == 1
    offline = BitfinexParser()  # the offline fallback: names it cannot split are unknown
    for chan_id, native in enumerate(["tBTCUSDT", "tbtcusd", "t:USD", "tBTC:", "BTCUSD", "tBTC-:USD"], 1):
        offline.parse(text({"event": "subscribed", "channel": "ticker", "chanId": chan_id, "symbol": native}), RECV_NS)
        assert offline.parse(text([chan_id, TICKER]), RECV_NS) == []
    assert offline.stats.dropped[UNKNOWN_SYMBOL] == 6


def test_control_and_ignored_frames_are_counted_as_such():
    parser = subscribed_parser()
    frames = [
        {"event": "info", "code": 20051, "msg": "Stop/Restart Websocket Server (please reconnect)"},
        {"event": "conf", "status": "OK", "flags": 65536},
        {"event": "pong", "ts": 1, "cid": 2},
        {"event": "error", "msg": "subscribe: dup", "code": 10301},
        [BOOK_ID, "cs", -1234567, 3],  # a checksum before the book's snapshot: nothing to check
        [FUNDING_ID, [0.0002, 30, 2, 100.0], 4],
        [TRADES_ID, "tu", TRADE, 5],
        [TRADES_ID, [], 6],
        [77, TICKER, 7],  # a channel id with no subscription yet
        [77, "hb", 8],
        [TICKER_ID, "hb", 9],
        {"event": "unsubscribed", "status": "OK", "chanId": TICKER_ID},
        [TICKER_ID, TICKER, 10],  # after the unsubscription, an unknown channel
    ]
    for frame in frames:
        assert parser.parse(text(frame), RECV_NS) == []
    assert parser.stats.as_dict() == {
        "frames": len(frames),
        "ticks": 0,
        "control": {
            "conf": 1,
            "empty_snapshot": 1,
            "error": 1,
            "hb": 1,
            "hb_unknown_channel": 1,
            "info": 1,
            "pong": 1,
            "unsubscribed": 1,
        },
        "ignored": {"cs_without_book": 1, "funding": 1, "trades_tu": 1, "unknown_channel": 2},
        "dropped": {},
    }
    assert parser.sequence_gaps == 0


def test_info_starts_a_new_connection_forgetting_the_old_channel_ids():
    parser = subscribed_parser()
    assert len(parser.parse(text([TICKER_ID, TICKER, 1]), RECV_NS)) == 1
    parser.parse(text({"event": "info", "version": 2}), RECV_NS)
    assert parser.parse(text([TICKER_ID, TICKER, 1]), RECV_NS) == []  # sequence restarts at 1: no gap
    assert parser.stats.ignored == {"unknown_channel": 1}
    assert parser.sequence_gaps == 0
    # A maintenance notice (an info event with a code) is not a new connection.
    parser.parse(text(SUBSCRIBED[0]), RECV_NS)
    parser.parse(text({"event": "info", "code": 20060, "msg": "maintenance"}), RECV_NS)
    assert len(parser.parse(text([TICKER_ID, TICKER, 2]), RECV_NS)) == 1


def test_sequence_gaps_are_counted_and_logged(caplog):
    parser = subscribed_parser()
    with caplog.at_level(logging.WARNING, logger="ingest_worker.parse"):
        for seq in (1, 2, 3, 5, 6, 6, 7):  # 4 missing, 6 repeated
            parser.parse(text([TICKER_ID, "hb", seq]), RECV_NS)
    assert parser.sequence_gaps == 2
    assert "sequence gap: 5 after 3" in caplog.text
    parser.parse(text([TICKER_ID, "hb"]), RECV_NS)  # without SEQ_ALL there is no sequence to check
    parser.parse(text([TICKER_ID, TICKER]), RECV_NS)
    assert parser.sequence_gaps == 2
