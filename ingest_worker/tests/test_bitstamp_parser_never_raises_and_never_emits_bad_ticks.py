"""Whatever arrives, the Bitstamp parser never raises, never emits an impossible tick, and counts every frame once.

Arbitrary bytes, text and JSON; frame-shaped trades, order books, diffs on a seeded book and
REST snapshots whose fields are drawn from anything JSON can hold; and sequences of valid
diffs, whose book ticks must be the top levels of a book kept independently here.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.tests.recorded import lost
from ingest_worker.tests.test_parsers_never_raise_and_never_emit_bad_ticks import (
    any_text,
    as_frame,
    assert_valid_tick,
    cents,
    check,
    check_frame_ticks,
    decimal,
    frame_counts,
    json_values,
    max_ages,
    mutated,
    recv_times,
)
from ingest_worker.venues.base import UNEXPECTED
from ingest_worker.venues.bitstamp import BitstampParser

EXAMPLES = settings(max_examples=300, deadline=None)
PAIRS = ["btcusd", "usdteur", "xlmgbp", "gbpusd", "xyzabc", "BTCUSD", ""]


def snapshot_body(recv_ns: int) -> str:
    micros = recv_ns // 1000 - 10_000_000
    return json.dumps({"microtimestamp": str(micros), "bids": [["100.5", "1"]], "asks": [["100.6", "2"]]})


@EXAMPLES
@given(data=st.binary(max_size=300), recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_bytes(data, recv_ns, max_age_ms):
    check(BitstampParser(max_age_ms=max_age_ms), [data, b'{"event":' + data, b'{"data":' + data], recv_ns)


@EXAMPLES
@given(text=any_text, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_text(text, recv_ns, max_age_ms):
    frames: list[str | bytes] = [text, '{"event":"data","channel":"order_book_btcusd","data":' + text]
    check(BitstampParser(max_age_ms=max_age_ms), frames, recv_ns)


@EXAMPLES
@given(value=json_values, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_json_values(value, recv_ns, max_age_ms):
    check(BitstampParser(max_age_ms=max_age_ms), [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)


@st.composite
def levels(draw: st.DrawFn, low: int, removals: bool) -> list[list[object]]:
    amounts = st.integers(min_value=0 if removals else 1, max_value=10**6)
    return [
        [decimal(low + draw(cents)), decimal(draw(amounts))] for _ in range(draw(st.integers(min_value=0, max_value=3)))
    ]


@st.composite
def bitstamp_frames(draw: st.DrawFn) -> tuple[dict[str, object], int]:
    """A valid trade, order_book or diff_order_book frame, then mutated; event times within 2 min."""
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    micros = recv_ns // 1000 + draw(st.integers(min_value=-120_000_000, max_value=120_000_000))
    pair = draw(st.sampled_from(PAIRS))
    kind = draw(st.sampled_from(["live_trades", "order_book", "diff_order_book"]))
    data: dict[str, object] = {"microtimestamp": str(micros), "timestamp": str(micros // 1_000_000)}
    if kind == "live_trades":
        data |= {"price": draw(cents) / 100, "amount": draw(cents) / 100, "id": 1, "type": 0}
        event = "trade"
    else:
        bid = draw(cents)
        data |= {"bids": draw(levels(bid - 10**6, kind == "diff_order_book")), "asks": draw(levels(bid, False))}
        event = "data"
    msg: dict[str, object] = {"event": event, "channel": f"{kind}_{pair}", "data": draw(mutated(data))}
    return draw(mutated(msg)), recv_ns


@EXAMPLES
@given(shaped=bitstamp_frames(), max_age_ms=max_ages)
def test_frame_shaped_bitstamp_json(shaped, max_age_ms):
    value, recv_ns = shaped
    parser = BitstampParser(max_age_ms=max_age_ms)
    for pair in PAIRS:  # diffs meet a seeded book where the pair is known
        parser.load_snapshot(pair, snapshot_body(recv_ns), recv_ns)
    parser.stats.__init__()  # type: ignore[misc]
    check(parser, [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)


SNAPSHOT: dict[str, object] = {"microtimestamp": "1", "timestamp": "1", "bids": [["1.5", "2"]], "asks": [["1.6", "3"]]}


@EXAMPLES
@given(
    body=mutated(SNAPSHOT),
    pair=st.sampled_from(PAIRS),
    recv_ns=recv_times,
    max_age_ms=max_ages,
)
def test_snapshot_bodies(body, pair, recv_ns, max_age_ms):
    parser = BitstampParser(max_age_ms=max_age_ms)
    for form in ("str", "bytes", "dict"):
        before = frame_counts(parser)
        ticks = parser.load_snapshot(pair, body if form == "dict" else as_frame(body, form), recv_ns)
        check_frame_ticks(parser, ticks, before)
    assert parser.stats.dropped[UNEXPECTED] == 0


# Prices on a small grid so that diffs often touch, remove and cross the top.
grid_levels = st.lists(
    st.tuples(st.integers(min_value=1, max_value=12), st.integers(min_value=0, max_value=3)), max_size=4
)


@EXAMPLES
@given(diffs=st.lists(st.tuples(grid_levels, grid_levels), min_size=1, max_size=25), depth=st.sampled_from([1, 3, 20]))
def test_diff_books_are_the_top_levels_of_an_independently_kept_book(diffs, depth):
    recv_ns = 1_641_343_697_403_365_900
    micros = recv_ns // 1000
    parser = BitstampParser(depth_levels=depth)
    snapshot = {"microtimestamp": str(micros), "bids": [["5", "1"]], "asks": [["8", "1"]]}
    model: tuple[dict[int, int], dict[int, int]] | None = ({5: 1}, {8: 1})
    Levels = list[list[float]]
    sent: tuple[Levels, Levels] | None = None
    assert len(parser.load_snapshot("btcusd", json.dumps(snapshot), recv_ns)) == 1
    sent = ([[5.0, 1.0]], [[8.0, 1.0]])
    held = True  # the engine holds a book of the market (one was sent since the last loss)
    gaps = 0  # the diff that crossed the book, and each after it: no book to apply them to
    for step, (bid_updates, ask_updates) in enumerate(diffs, 1):
        data = {
            "microtimestamp": str(micros + step),
            "bids": [[str(price), str(amount)] for price, amount in bid_updates],
            "asks": [[str(price), str(amount)] for price, amount in ask_updates],
        }
        frame = json.dumps({"event": "data", "channel": "diff_order_book_btcusd", "data": data})
        ticks = parser.parse(frame, recv_ns)
        for tick in ticks:
            assert_valid_tick(tick, parser)
        if model is None:
            assert ticks == []
            gaps += 1
            continue
        for side, updates in zip(model, (bid_updates, ask_updates), strict=True):
            for price, amount in updates:
                if amount:
                    side[price] = amount
                else:
                    side.pop(price, None)
        bids, asks = model
        if not bids or not asks:
            sent = None  # the next book goes whatever it holds; the engine keeps the last one
            assert ticks == []
            continue
        if max(bids) >= min(asks):  # crossed: a missed update; the book waits for the next snapshot
            # The engine is told the book is gone when it holds one (also through a one-sided book).
            assert ticks == ([lost("bitstamp", "BTC/USD", recv_ns)] if held else [])
            model = None
            sent = None
            held = False
            gaps += 1
            continue
        levels = (
            [[float(p), float(bids[p])] for p in sorted(bids, reverse=True)[:depth]],
            [[float(p), float(asks[p])] for p in sorted(asks)[:depth]],
        )
        if levels == sent:
            assert ticks == []
            continue
        sent = levels
        held = True
        (tick,) = ticks
        assert (tick.bids, tick.asks) == levels
    assert parser.stats.dropped[UNEXPECTED] == 0
    assert parser.stats.dropped.get("book_gap", 0) == gaps
    assert parser.awaiting_snapshot() == (set() if model is not None else {"btcusd"})
    assert parser.resync_needed == parser.awaiting_snapshot()
