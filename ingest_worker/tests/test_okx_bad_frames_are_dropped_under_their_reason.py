"""Bad OKX frames give no tick and are counted once, under the reason that says what was wrong;
control frames and skipped instruments are counted as such, never as drops."""

from __future__ import annotations

import json

import pytest

from ingest_worker.tests.test_bad_frames_are_dropped_under_their_reason import BAD_PRICES, BAD_SIZES
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
from ingest_worker.venues.okx import OkxParser
from signals_app.contracts.symbols import SymbolTable

RECV_NS = 1_652_459_226_100_000_000  # 2022-05-13T16:27:06.1Z
TS = str(RECV_NS // 1_000_000 - 50)

TICKER: dict[str, object] = {
    "instType": "SPOT",
    "instId": "BTC-USDT",
    "last": "30236",
    "lastSz": "0.0002",
    "askPx": "30243.5",
    "askSz": "0.5",
    "bidPx": "30236",
    "bidSz": "1.25",
    "ts": TS,
}
TRADE: dict[str, object] = {
    "instId": "BTC-USDT",
    "tradeId": "338476308",
    "px": "30243.5",
    "sz": "0.001",
    "side": "buy",
    "ts": TS,
}


def push(channel: str, item: dict[str, object], /, **changes: object) -> str:
    entry = {key: value for key, value in (item | changes).items() if value is not ...}  # ... removes a key
    native = entry.get("instId", "BTC-USDT")
    return json.dumps({"arg": {"channel": channel, "instId": native}, "data": [entry]}, separators=(",", ":"))


def ticker(**changes: object) -> str:
    return push("tickers", TICKER, **changes)


def trade(**changes: object) -> str:
    return push("trades", TRADE, **changes)


def outcome(frame: str | bytes, parser: OkxParser | None = None) -> dict[str, object]:
    parser = parser or OkxParser()
    assert parser.parse(frame, RECV_NS) == []
    stats = parser.stats.as_dict()
    assert stats["frames"] == 1
    assert stats["ticks"] == 0
    return stats


def assert_dropped(frame: str | bytes, reason: str, parser: OkxParser | None = None) -> None:
    assert outcome(frame, parser) == {"frames": 1, "ticks": 0, "control": {}, "ignored": {}, "dropped": {reason: 1}}


def test_the_good_frames_these_tests_break_are_good():
    [quote] = OkxParser().parse(ticker(), RECV_NS)
    assert (quote.symbol, quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (
        "BTC/USDT",
        30236,
        30243.5,
        1.25,
        0.5,
    )
    assert quote.timestamp == int(TS)
    [one] = OkxParser().parse(trade(), RECV_NS)
    assert (one.symbol, one.type, one.price, one.volume, one.timestamp) == (
        "BTC/USDT",
        "trade",
        30243.5,
        0.001,
        int(TS),
    )


def test_a_push_of_several_entries_gives_a_tick_for_each():
    second = TRADE | {"tradeId": "338476309", "px": "30244", "sz": "0.5"}
    frame = json.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [TRADE, second]})
    assert [tick.price for tick in OkxParser().parse(frame, RECV_NS)] == [30243.5, 30244.0]


def test_one_bad_entry_drops_the_whole_push_once():
    bad = TRADE | {"px": "-1"}
    frame = json.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [TRADE, bad]})
    assert_dropped(frame, BAD_PRICE)


@pytest.mark.parametrize(
    "bad", ["", " ", "{", '{"arg":', "not json", "[1,2", '{"a":1}}', "{'event': 'subscribe'}", "\x00", "ping", "PONG"]
)
def test_malformed_json(bad):
    assert_dropped(bad, MALFORMED_JSON)
    assert_dropped(bad.encode(), MALFORMED_JSON)


@pytest.mark.parametrize("token", ["NaN", "-NaN", "Infinity", "-Infinity", "inf", "1e400", "-1e400"])
def test_non_finite_json_numbers_make_the_frame_malformed(token):
    assert_dropped(ticker().replace('"30236"', token, 1), MALFORMED_JSON)
    assert_dropped(trade().replace('"0.001"', token, 1), MALFORMED_JSON)


@pytest.mark.parametrize(
    "bad", [b"\xff\xfe", b'{"arg":{"channel":"trades","instId":"BTC-\xc3\x28"}}', b'{"event":"\xed\xa0\x80"}']
)
def test_bytes_that_are_not_utf8(bad):
    assert_dropped(bad, MALFORMED_JSON)


# --- missing fields ---------------------------------------------------------------------
@pytest.mark.parametrize("key", ["instId", "bidPx", "askPx", "bidSz", "askSz", "ts"])
def test_ticker_missing_a_field(key):
    assert_dropped(ticker(**{key: ...}), MISSING_FIELD)


@pytest.mark.parametrize("key", ["instId", "px", "sz", "ts"])
def test_trade_missing_a_field(key):
    assert_dropped(trade(**{key: ...}), MISSING_FIELD)


@pytest.mark.parametrize("channel", ["tickers", "trades"])
def test_push_without_entries(channel):
    assert_dropped(json.dumps({"arg": {"channel": channel, "instId": "BTC-USDT"}, "data": []}), MISSING_FIELD)


# --- times ------------------------------------------------------------------------------
# Signs, spaces, fractions, underscores and non-ASCII digits that int() would read as numbers.
BAD_TIMES = [
    *["", "yesterday", "-1", "+1652459226050", " 1652459226050", "1652459226050.5", "1_652_459_226_050"],
    *["\u0661\u0662", "1" * 16, 1652459226050.0, -5, True, [TS], {"ts": TS}],
]


@pytest.mark.parametrize("bad_ts", BAD_TIMES)
def test_a_time_that_is_not_unix_ms(bad_ts):
    assert_dropped(ticker(ts=bad_ts), BAD_TIMESTAMP)
    assert_dropped(trade(ts=bad_ts), BAD_TIMESTAMP)


def test_a_json_integer_time_is_taken():
    [tick] = OkxParser().parse(trade(ts=int(TS)), RECV_NS)
    assert tick.timestamp == int(TS)


@pytest.mark.parametrize("offset_ms", [60_001, -60_001, 3_600_000])
def test_more_than_60_s_from_the_receive_time_is_stale(offset_ms):
    ts = str(RECV_NS // 1_000_000 + offset_ms)
    assert_dropped(ticker(ts=ts), STALE)
    assert_dropped(trade(ts=ts), STALE)
    # Without the clock check (`normalize` without --max-age-s) the same frames give ticks.
    assert len(OkxParser(max_age_ms=None).parse(ticker(ts=ts), RECV_NS)) == 1
    assert len(OkxParser(max_age_ms=None).parse(trade(ts=ts), RECV_NS)) == 1


def test_within_60_s_is_not_stale():
    for offset_ms in (60_000, -60_000):
        ts = str(RECV_NS // 1_000_000 + offset_ms)
        assert len(OkxParser().parse(ticker(ts=ts), RECV_NS)) == 1


# --- prices and sizes -------------------------------------------------------------------
@pytest.mark.parametrize("value", BAD_PRICES)
@pytest.mark.parametrize("key", ["bidPx", "askPx"])
def test_bad_bid_or_ask(key, value):
    assert_dropped(ticker(**{key: value}), BAD_PRICE)


@pytest.mark.parametrize("value", BAD_SIZES)
@pytest.mark.parametrize("key", ["bidSz", "askSz"])
def test_bad_bid_or_ask_size(key, value):
    # null too: OKX always sends sizes, so null is not "the feed gives none".
    assert_dropped(ticker(**{key: value}), BAD_SIZE)


@pytest.mark.parametrize("value", BAD_PRICES)
def test_bad_trade_price(value):
    assert_dropped(trade(px=value), BAD_PRICE)


@pytest.mark.parametrize("value", BAD_SIZES)
def test_bad_trade_size(value):
    assert_dropped(trade(sz=value), BAD_SIZE)


@pytest.mark.parametrize(
    ("bid", "ask"), [("30243.6", "30243.5"), ("30243.5", "30243.5"), ("30243.50", "30243.5"), (30243.5, "30243.5")]
)
def test_crossed_or_locked_books(bid, ask):
    assert_dropped(ticker(bidPx=bid, askPx=ask), CROSSED_BOOK)


# --- instruments ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["BTCUSDT", "BTC/USDT", "btc-usdt", "BTC-", "-USDT", "BTC-USDT-", "BTC-USD-2205", "", 42, None, ["BTC-USDT"]],
)
def test_unknown_instruments(name):
    assert_dropped(ticker(instId=name), UNKNOWN_SYMBOL if name is not None else MISSING_FIELD)
    assert_dropped(trade(instId=name), UNKNOWN_SYMBOL if name is not None else MISSING_FIELD)


def test_with_a_market_list_a_spot_market_not_on_it_is_unknown():
    listed = SymbolTable([("ETH-USDT", "ETH", "USDT")])
    assert len(OkxParser(listed).parse(ticker(instId="ETH-USDT"), RECV_NS)) == 1
    assert_dropped(ticker(instId="BTC-USDT"), UNKNOWN_SYMBOL, OkxParser(listed))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("BTC-USD-220527", "futures"),
        ("TRX-USDT-210924", "futures"),
        ("UNI-USD-SWAP", "swap"),
        ("BTC-USDT-SWAP", "swap"),
        ("BTC-USD-210924-42000-P", "option"),
        ("ETH-USD-220624-20000-C", "option"),
    ],
)
def test_derivatives_are_skipped_and_counted_ignored_whatever_their_numbers(name, kind):
    for frame in (
        ticker(instId=name),
        trade(instId=name),
        ticker(instId=name, bidPx="nan"),
        trade(instId=name, ts="x"),
    ):
        assert outcome(frame) == {"frames": 1, "ticks": 0, "control": {}, "ignored": {kind: 1}, "dropped": {}}
    # With a market list (spot only, as the feed loads it), too.
    listed = SymbolTable([("BTC-USDT", "BTC", "USDT")])
    assert outcome(ticker(instId=name), OkxParser(listed))["ignored"] == {kind: 1}


# --- control, ignored and unknown messages ----------------------------------------------
@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ('{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}', "subscribe"),
        ('{"event":"unsubscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}', "unsubscribe"),
        ('{"event":"notice","code":"64008","msg":"The connection will soon be closed for an upgrade."}', "notice"),
        ('{"event":"channel-conn-count","channel":"tickers","connCount":"2","connId":"a4d3"}', "channel-conn-count"),
        ("pong", "pong"),
        (b"pong", "pong"),
        ('{"event":"error","code":"60012","msg":"Invalid request: {\\"op\\": \\"subscribe\\"}"}', "error"),
    ],
)  # fmt: skip
def test_control_frames(frame, kind):
    assert outcome(frame) == {"frames": 1, "ticks": 0, "control": {kind: 1}, "ignored": {}, "dropped": {}}


@pytest.mark.parametrize("channel", ["books5", "bbo-tbt", "candle1m", "funding-rate"])
def test_channels_we_do_not_use_are_ignored(channel):
    frame = json.dumps({"arg": {"channel": channel, "instId": "BTC-USDT"}, "data": [{"asks": [], "bids": []}]})
    assert outcome(frame) == {"frames": 1, "ticks": 0, "control": {}, "ignored": {channel: 1}, "dropped": {}}


@pytest.mark.parametrize(
    "bad",
    [
        *["[]", "1", "null", "{}", '"tickers"', '{"event":"unheardOf"}', '{"event":5}', '{"event":["error"]}'],
        *['{"arg":{"channel":"tickers"}}', '{"data":[]}', '{"arg":"tickers","data":[]}', '{"arg":{},"data":[]}'],
        *['{"arg":{"channel":"unheardOf"},"data":[]}', '{"arg":{"channel":7},"data":[]}'],
        *['{"arg":{"channel":"tickers"},"data":{}}', '{"arg":{"channel":"trades"},"data":[1]}'],
        '{"arg":{"channel":"trades"},"data":null}',
    ],
)
def test_unknown_messages(bad):
    assert_dropped(bad, UNKNOWN_MESSAGE)
