"""Every field of every tick from the recorded Coinbase frames equals what the frame says.

A `ticker` frame gives a quote (best bid/ask after the trade) and a trade (the
trade that moved it). The expected ticks are worked out here from `json.loads`,
Decimal and `datetime.fromisoformat`, independently of the parser.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from ingest_worker.tests.recorded import COINBASE_SYMBOLS, frames
from ingest_worker.venues.coinbase import CoinbaseParser
from signals_app.contracts.tick import Tick

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def number(text: str) -> float:
    assert isinstance(text, str), text
    return float(Decimal(text))


def unix_ms(iso: str) -> int:
    """`2021-04-17T16:43:30.244075Z` -> Unix ms, the sub-millisecond digits cut off."""
    return (dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) - EPOCH) // dt.timedelta(milliseconds=1)


def expected_ticks(frame: str, recv_ns: int) -> list[Tick]:
    msg = json.loads(frame)
    symbol = COINBASE_SYMBOLS[msg["product_id"]]
    timestamp = unix_ms(msg["time"])
    bid, ask = number(msg["best_bid"]), number(msg["best_ask"])
    # These 2021 frames predate best_bid_size/best_ask_size: the sizes are unknown, not zero.
    assert "best_bid_size" not in msg
    assert "best_ask_size" not in msg
    quote = Tick("coinbase", symbol, "quote", (bid + ask) / 2, 0.0, bid, ask, None, None, timestamp, recv_ns)
    assert isinstance(msg["trade_id"], int)
    trade = Tick(
        "coinbase", symbol, "trade", number(msg["price"]), number(msg["last_size"]), None, None, None, None,
        timestamp, recv_ns,
    )  # fmt: skip
    return [quote, trade]


def test_every_ticker_tick_field_comes_from_its_frame(market_data):
    parser = CoinbaseParser(max_age_ms=None)  # the first ticker per product is old on purpose (see below)
    recorded = frames(market_data / "coinbase" / "ticker.jsonl")
    for line, (frame, recv_ns) in enumerate(recorded, 1):
        got = parser.parse(frame, recv_ns)
        want = expected_ticks(frame, recv_ns)
        assert len(got) == len(want), f"ticker.jsonl:{line}"
        for got_tick, want_tick in zip(got, want, strict=True):
            assert type(got_tick) is Tick
            for field in Tick._fields:
                got_value, want_value = getattr(got_tick, field), getattr(want_tick, field)
                assert got_value == want_value, f"ticker.jsonl:{line} {want_tick.type} {field}: {got_value!r}"
                assert type(got_value) is type(want_value), f"ticker.jsonl:{line} {field}"
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": 2 * len(recorded),
        "control": {},
        "ignored": {},
        "dropped": {},
    }


def test_with_the_clock_check_only_tickers_older_than_60_s_are_dropped(market_data):
    """Coinbase sends each product's last ticker on subscribe, however old: those are stale."""
    parser = CoinbaseParser()  # 60 s
    recorded = frames(market_data / "coinbase" / "ticker.jsonl")
    stale = 0
    for frame, recv_ns in recorded:
        age_ms = abs(recv_ns // 1_000_000 - unix_ms(json.loads(frame)["time"]))
        ticks = parser.parse(frame, recv_ns)
        if age_ms > 60_000:
            stale += 1
            assert ticks == []
        else:
            assert len(ticks) == 2
    assert stale >= 1  # the recording holds such a ticker; otherwise this test proves nothing
    assert parser.stats.as_dict()["dropped"] == {"stale": stale}
    assert parser.stats.ticks == 2 * (len(recorded) - stale)


def test_subscription_answers_are_control_frames(market_data):
    parser = CoinbaseParser()
    recorded = frames(market_data / "coinbase" / "subscriptions.jsonl")
    for frame, recv_ns in recorded:
        assert parser.parse(frame, recv_ns) == []
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": 0,
        "control": {"subscriptions": len(recorded)},
        "ignored": {},
        "dropped": {},
    }


# level2 frames are books now (test_coinbase_books_match_their_frames.py); matches stay unused.
def test_channels_we_do_not_use_give_no_ticks_and_are_counted_ignored(market_data):
    parser = CoinbaseParser()
    recorded = frames(market_data / "coinbase" / "matches.jsonl")
    kinds: dict[str, int] = {}
    for frame, recv_ns in recorded:
        assert parser.parse(frame, recv_ns) == []
        kind = json.loads(frame)["type"]
        kinds[kind] = kinds.get(kind, 0) + 1
    assert parser.stats.as_dict() == {
        "frames": len(recorded),
        "ticks": 0,
        "control": {},
        "ignored": dict(sorted(kinds.items())),
        "dropped": {},
    }
