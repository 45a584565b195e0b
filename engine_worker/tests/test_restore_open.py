"""A restarted engine takes back what its predecessor left open (DESIGN.md lifecycle rule 8):
`Engine.restore_open(signals, now_ms)` with the last open or update signal of each opportunity,
as the publisher keeps them in `engine:open` (JSON, deleted on close).

Each restored opportunity resumes (same id, opened_at, peak; no second open; updates by the
usual rules, measured from the stored signal's timestamp) when a tick evaluates it fresh above
the threshold before now_ms + STALE_MS; closes with `threshold` when one evaluates it at or below;
and otherwise closes by the timer at now_ms + STALE_MS with `engine_restart`, carrying the stored
figures. Pure: an injected clock, the numbers of test_lifecycle (Binance ask 45000, Coinbase bid
45700: net 0.8454 %).
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from engine_worker.engine import Engine
from engine_worker.tests.test_lifecycle import BTC_ID, STALE_MS, T, binance, coinbase, feed, make_engine
from signals_app.contracts import tick
from signals_app.contracts.signal import CLOSE_FIELDS, Signal

KEY = ("BTC", "binance", "coinbase")
NOW = T + 5000  # the new engine starts 5 s after the open: the old quotes are long stale


def left_open(*signals: Signal) -> list[Signal]:
    """What `engine:open` holds after these signals: each id's last open or update, as stored JSON."""
    held: dict[str, bytes] = {}
    for signal in signals:
        if signal["status"] == "close":
            held.pop(signal["id"], None)
        else:
            held[signal["id"]] = orjson.dumps(signal)
    return [orjson.loads(value) for value in held.values()]


def previous_engine() -> tuple[Signal, list[Signal]]:
    """The engine that died: BTC opened at T (bid 45700), a held peak at T+300 (bid 45800, never sent)."""
    engine = make_engine()
    out = feed(engine, binance(T - 10), coinbase(T), coinbase(T + 300, bid=45800.0))
    assert [s["status"] for s in out] == ["open"]
    return out[0], left_open(*out)


def restarted(stored: list[Signal], now_ms: int = NOW) -> Engine:
    engine = make_engine()
    assert engine.restore_open(stored, now_ms) == len(stored)
    assert engine.restore_skipped == 0
    return engine


def closed_from(stored: Signal, at: int, recv_ns: int, reason: str) -> Signal:
    """The close of a restored opportunity that never resumed: the stored figures, stamped `at`."""
    return {
        **stored,
        "status": "close",
        "duration_ms": at - stored["opened_at"],
        "tick_recv_ns": recv_ns,
        "timestamp": at,
        "close_reason": reason,
    }


def test_fresh_quotes_above_the_threshold_resume_it_with_its_id_opened_at_and_peak_and_no_second_open():
    opened, stored = previous_engine()
    engine = restarted(stored)
    assert feed(engine, binance(NOW + 100)) == []  # one side only: nothing to evaluate yet
    assert feed(engine, coinbase(NOW + 200)) == []  # fresh, above, the stored figures: no open, no update
    opportunity = engine.lifecycle.open[KEY]
    assert (opportunity.id, opportunity.opened_at, opportunity.restored) == (BTC_ID, T, None)
    assert engine.lifecycle.resumed == 1
    assert engine.lifecycle.counts["open"] == 0
    # A change, long after the stored signal's timestamp: an update of the same opportunity.
    (update,) = feed(engine, coinbase(NOW + 300, bid=45750.0))
    assert (update["status"], update["id"], update["opened_at"]) == ("update", BTC_ID, T)
    assert (update["duration_ms"], update["sell_price"], update["net_spread_pct"]) == (NOW + 300 - T, 45750.0, 0.9557)
    assert update["peak_net_spread_pct"] == 0.9557
    assert "close_reason" not in update
    # Resumed: the restart deadline passes without a word; it now goes stale as any other does.
    assert engine.expire(NOW + STALE_MS) == []
    (close,) = engine.expire(NOW + 10_000)
    assert (close["id"], close["timestamp"], close["close_reason"]) == (BTC_ID, NOW + 100 + STALE_MS + 1, "stale")
    assert close["sell_price"] == 45750.0  # its own last figures above, no longer the stored ones
    assert opened["id"] == BTC_ID


def test_the_stored_peak_is_kept_when_the_resumed_figures_are_lower():
    _, stored = previous_engine()
    stored[0]["peak_net_spread_pct"] = 1.2345  # as if an update had carried a higher peak
    engine = restarted(stored)
    (update,) = feed(engine, binance(NOW), coinbase(NOW + 10, bid=45750.0))
    assert (update["net_spread_pct"], update["peak_net_spread_pct"]) == (0.9557, 1.2345)


def test_updates_are_measured_from_the_stored_signal_timestamp():
    # The last message before the restart: an update at T+1000 (bid 45750). The engine is back at
    # T+1300; a change at T+1310 is held (310 ms after that update), the next change at T+2000 is sent.
    engine = make_engine()
    out = feed(engine, binance(T - 10), coinbase(T), binance(T + 1000), coinbase(T + 1000, bid=45750.0))
    assert [s["status"] for s in out] == ["open", "update"]
    restarted_at = T + 1300
    engine = restarted(left_open(*out), restarted_at)
    assert feed(engine, binance(restarted_at), coinbase(restarted_at + 10, bid=45800.0)) == []
    (update,) = feed(engine, coinbase(T + 2000, bid=45790.0))
    assert (update["status"], update["id"], update["timestamp"], update["sell_price"]) == (
        "update",
        BTC_ID,
        T + 2000,
        45790.0,
    )
    assert update["peak_net_spread_pct"] == 1.066  # the held 45800 of T+1310 counts


def test_evaluated_at_or_below_the_threshold_it_closes_with_threshold_and_the_stored_figures():
    _, stored = previous_engine()
    engine = restarted(stored)
    closing = coinbase(NOW + 5, bid=45500.0)  # 0.4040 %: below
    (close,) = feed(engine, binance(NOW), closing)
    assert close == closed_from(stored[0], NOW + 5, closing.recv_ns, "threshold")
    assert list(close) == list(CLOSE_FIELDS)
    assert engine.lifecycle.open == {}
    assert engine.lifecycle.close_reasons["threshold"] == 1
    assert engine.expire(NOW + 60_000) == []  # closed once: the restart timer says nothing more


@pytest.mark.parametrize(
    "late_step",
    [
        pytest.param(lambda engine: engine.expire(NOW + 9000), id="timer-run-late"),
        pytest.param(lambda engine: feed(engine, binance(NOW + 9000, symbol="ETH/USDT", ask=2500.0)), id="other-asset"),
        pytest.param(lambda engine: feed(engine, binance(NOW + 9000)), id="one-side-of-the-asset"),
    ],
)
def test_not_resumed_within_stale_ms_it_closes_by_the_restart_timer_with_the_stored_figures(late_step):
    _, stored = previous_engine()
    engine = restarted(stored)
    assert feed(engine, binance(NOW + 100)) == []  # Coinbase never comes back: one side, it waits
    assert engine.expire(NOW + STALE_MS - 1) == []
    assert list(engine.lifecycle.open) == [KEY]
    out = late_step(engine)
    assert out == [closed_from(stored[0], NOW + STALE_MS, stored[0]["tick_recv_ns"], "engine_restart")]
    assert engine.lifecycle.open == {}
    assert engine.lifecycle.by_exchange == {"binance": {}, "coinbase": {}}
    assert (engine.lifecycle.counts["close"], engine.lifecycle.close_reasons["engine_restart"]) == (1, 1)


def test_an_evaluation_with_no_fresh_pair_leaves_it_waiting_and_fresh_quotes_then_resume_it():
    _, stored = previous_engine()
    engine = restarted(stored)
    # Both exchanges quote BTC, but Coinbase's quote is from before the restart (stale when processed):
    # the pair is evaluated and found nothing to judge by. Not a close: it waits for fresh quotes.
    assert feed(engine, binance(NOW + 100)) == []
    assert engine.on_tick(coinbase(NOW - 3000), NOW + 150) == []
    assert engine.lifecycle.open[KEY].restored is not None
    assert feed(engine, coinbase(NOW + 200)) == []  # fresh: resumed
    assert engine.lifecycle.open[KEY].restored is None
    assert engine.expire(NOW + STALE_MS) == []


def test_fresh_quotes_at_the_deadline_come_too_late_the_old_one_closes_and_a_new_one_opens():
    _, stored = previous_engine()
    engine = restarted(stored)
    assert feed(engine, binance(NOW + STALE_MS - 5)) == []
    out = feed(engine, coinbase(NOW + STALE_MS))
    assert [(s["status"], s["id"], s.get("close_reason")) for s in out] == [
        ("close", BTC_ID, "engine_restart"),
        ("open", f"BTC:binance:coinbase:{NOW + STALE_MS}", None),
    ]


def test_a_restored_key_that_a_new_crossing_would_have_opened_keeps_its_old_id():
    _, stored = previous_engine()
    crossing = (binance(NOW + 50), coinbase(NOW + 60, bid=45800.0))
    fresh = make_engine()
    assert [(s["status"], s["id"]) for s in feed(fresh, *crossing)] == [("open", f"BTC:binance:coinbase:{NOW + 60}")]
    engine = restarted(stored)
    out = feed(engine, *crossing)
    assert [(s["status"], s["id"], s["opened_at"], s["duration_ms"]) for s in out] == [
        ("update", BTC_ID, T, NOW + 60 - T)  # its figures changed, and it is 5 s since the stored open
    ]
    assert {key: o.id for key, o in engine.lifecycle.open.items()} == {KEY: BTC_ID}


def test_a_feed_going_down_while_it_resumes_closes_it_with_feed_down_and_the_stored_figures():
    _, stored = previous_engine()
    engine = restarted(stored)
    (close,) = engine.mark_down("coinbase", NOW + 700)
    assert close == closed_from(stored[0], NOW + 700, stored[0]["tick_recv_ns"], "feed_down")
    assert engine.expire(NOW + 60_000) == []


def test_two_stored_of_one_key_the_newest_resumes_and_the_other_closes_by_the_timer():
    # A predecessor's own orphan: an older opportunity of the same key was never deleted.
    _, stored = previous_engine()
    older = {**stored[0], "id": f"BTC:binance:coinbase:{T - 60_000}", "opened_at": T - 60_000, "duration_ms": 60_000}
    engine = restarted([older, *stored])
    assert engine.lifecycle.open[KEY].id == BTC_ID  # the newest is the one a tick can resume
    assert feed(engine, binance(NOW + 10), coinbase(NOW + 20)) == []  # resumed, unchanged
    out = engine.expire(NOW + STALE_MS)
    assert out == [closed_from(older, NOW + STALE_MS, older["tick_recv_ns"], "engine_restart")]
    assert engine.lifecycle.open[KEY].id == BTC_ID


def test_a_restart_close_keeps_the_stored_quote_rates_before_its_reason():
    _, stored = previous_engine()
    with_rates = {**stored[0], "quote_rates": {"USDT": 0.9991, "USD": 1.0}}
    engine = restarted([with_rates])
    (close,) = engine.expire(NOW + STALE_MS)
    assert list(close) == [*CLOSE_FIELDS[:-1], "quote_rates", "close_reason"]
    assert close["quote_rates"] == {"USDT": 0.9991, "USD": 1.0}


def test_a_restored_signal_with_depth_resumes_without_an_update_while_the_books_say_the_same():
    def books(at_ms: int, second_bid: float = 45690.0) -> tuple[tick.Tick, tick.Tick]:
        buy = tick.book("binance", "BTC/USDT", [[44990.0, 1.0]], [[45000.0, 0.5], [45010.0, 1.0]], at_ms, at_ms * 10**6)
        sell = tick.book(
            "coinbase", "BTC/USD", [[45700.0, 0.3], [second_bid, 1.0]], [[45710.0, 1.0]], at_ms, at_ms * 10**6
        )
        return buy, sell

    before = make_engine()
    out = feed(before, *books(T))
    assert [s["status"] for s in out] == ["open"]
    assert out[0]["depth_size"] > 0.3  # the walk went past the top level
    engine = restarted(left_open(*out))
    assert feed(engine, *books(NOW)) == []  # the same walk: nothing new to say
    (update,) = feed(engine, books(NOW + 10, second_bid=45695.0)[1])  # only the depth changes
    assert (update["status"], update["id"], update["net_spread_pct"]) == ("update", BTC_ID, out[0]["net_spread_pct"])
    assert update["depth_profit"] > out[0]["depth_profit"]


def good() -> Signal:
    return previous_engine()[1][0]


def _without(name: str) -> Any:
    stored = good()
    del stored[name]
    return stored


MALFORMED = {
    "null": None,
    "text": "not a signal",
    "list": [1, 2],
    "empty-object": {},
    "not-arbitrage": {**good(), "type": "SOMETHING_ELSE"},
    "a-close": {**good(), "status": "close"},
    "missing-field": _without("buy_price"),
    "missing-depth-field": _without("depth_size"),
    "price-as-text": {**good(), "buy_price": "45000"},
    "price-nan": {**good(), "sell_price": math.nan},
    "price-zero": {**good(), "buy_price": 0.0},
    "net-infinite": {**good(), "net_spread_pct": math.inf},
    "opened-at-float": {**good(), "opened_at": float(T)},
    "timestamp-bool": {**good(), "timestamp": True},
    "id-of-another-key": {**good(), "id": f"ETH:binance:coinbase:{T}"},
    "action-of-another-pair": {**good(), "action": "BUY_COINBASE_SELL_BINANCE"},
    "duration-inconsistent": {**good(), "duration_ms": 5},
    "asset-empty": {**good(), "asset": "", "id": f":binance:coinbase:{T}"},
    "half-a-depth": {**good(), "depth_size": 1.0},
    "depth-levels-three": {
        **good(),
        **dict.fromkeys(("depth_size", "depth_buy_vwap", "depth_sell_vwap", "depth_profit"), 1.0),
        "depth_net_spread_pct": 0.8,
        "depth_levels": [1, 2, 3],
    },
    "fees-not-numbers": {**good(), "fees_pct": {"binance": "0.1"}},
    "rates-not-an-object": {**good(), "quote_rates": [1.0]},
}


@pytest.mark.parametrize("stored", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_stored_value_that_is_not_an_open_or_update_signal_is_skipped_and_counted(stored):
    engine = make_engine()
    assert engine.restore_open([stored], NOW) == 0
    assert engine.restore_skipped == 1
    assert isinstance(engine.lifecycle.restore_problem, str)
    assert engine.lifecycle.open == {}
    assert engine.expire(NOW + 60_000) == []  # nothing held, nothing ever closed from it


def test_good_entries_among_malformed_ones_are_restored_and_an_id_given_twice_counts_once():
    engine = make_engine()
    valid = good()
    assert engine.restore_open([MALFORMED["a-close"], valid, None, dict(valid)], NOW) == 1
    assert engine.restore_skipped == 3
    assert engine.lifecycle.restore_problem == "its id is already held"
    assert [o.id for o in engine.lifecycle.open.values()] == [BTC_ID]
    assert engine.lifecycle.restored == 1
    (close,) = engine.expire(NOW + STALE_MS)
    assert (close["id"], close["close_reason"]) == (BTC_ID, "engine_restart")
