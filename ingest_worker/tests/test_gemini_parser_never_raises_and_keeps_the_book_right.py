"""Whatever arrives, the Gemini parser never raises, never emits an impossible tick, and accounts for
every frame once; and over any run of valid l2 frames its quotes are the top of a book kept here.

The helpers (value strategies, `check`, `mutated`) are the ones the other venues' property tests use.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.tests.recorded import lost
from ingest_worker.tests.test_parsers_never_raise_and_never_emit_bad_ticks import (
    any_text,
    as_frame,
    cents,
    check,
    decimal,
    json_values,
    max_ages,
    mutated,
    number_strings,
    recv_times,
)
from ingest_worker.venues.gemini import GeminiParser

EXAMPLES = settings(max_examples=300, deadline=None)
SYMBOLS = ["BTCUSD", "ZECLTC", "BTCGBP", "BTCGUSDPERP", "USD"]


@EXAMPLES
@given(data=st.binary(max_size=300), recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_bytes(data, recv_ns, max_age_ms):
    prefixes = [b"", b'{"type":"l2_updates","symbol":"BTCUSD","changes":', b'{"type":"trade","symbol":']
    check(GeminiParser(max_age_ms=max_age_ms), [prefix + data for prefix in prefixes], recv_ns)


@EXAMPLES
@given(text=any_text, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_text(text, recv_ns, max_age_ms):
    check(GeminiParser(max_age_ms=max_age_ms), [text, '{"type":"l2_updates","changes":' + text], recv_ns)


@EXAMPLES
@given(value=json_values, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_json_values(value, recv_ns, max_age_ms):
    check(GeminiParser(max_age_ms=max_age_ms), [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)


def level(draw: st.DrawFn) -> list[object]:
    side = draw(st.sampled_from(["buy", "sell"]))
    size = draw(st.one_of(st.just("0"), cents.map(decimal)))
    # Bids 90.00 .. 100.10, asks 99.90 .. 110.00: books cross now and then, as a missed update would make them.
    low, high = (9_000, 10_010) if side == "buy" else (9_990, 11_000)
    return [side, decimal(draw(st.integers(min_value=low, max_value=high))), size]


@st.composite
def l2_frames(draw: st.DrawFn, symbol: str, snapshot: bool) -> dict[str, object]:
    frame: dict[str, object] = {
        "type": "l2_updates",
        "symbol": symbol,
        "changes": [level(draw) for _ in range(draw(st.integers(0, 8)))],
    }
    if snapshot:
        frame |= {"trades": [], "auction_events": []}
    return frame


@st.composite
def gemini_sessions(draw: st.DrawFn) -> tuple[list[dict[str, object]], int]:
    """Frame-shaped JSON: snapshots, updates and trades, each valid or with fields replaced by anything."""
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    session: list[dict[str, object]] = []
    for _ in range(draw(st.integers(1, 6))):
        symbol = draw(st.sampled_from(SYMBOLS))
        kind = draw(st.sampled_from(["snapshot", "update", "trade"]))
        if kind == "trade":
            valid: dict[str, object] = {
                "type": "trade",
                "symbol": symbol,
                "event_id": 1,
                "timestamp": recv_ns // 1_000_000 + draw(st.integers(-120_000, 120_000)),
                "price": decimal(draw(cents)),
                "quantity": decimal(draw(cents)),
                "side": "buy",
            }
        else:
            valid = draw(l2_frames(symbol, kind == "snapshot"))
            if draw(st.booleans()):  # a level with a bad number in it
                changes = valid["changes"]
                assert isinstance(changes, list)
                valid["changes"] = [*changes, ["sell", draw(number_strings), draw(number_strings)]]
        session.append(draw(mutated(valid)) if draw(st.booleans()) else valid)
    return session, recv_ns


@EXAMPLES
@given(shaped=gemini_sessions(), max_age_ms=max_ages, form=st.sampled_from(["str", "bytes"]))
def test_frame_shaped_gemini_json(shaped, max_age_ms, form):
    session, recv_ns = shaped
    check(GeminiParser(max_age_ms=max_age_ms), [as_frame(value, form) for value in session], recv_ns)


@st.composite
def valid_l2_runs(draw: st.DrawFn) -> list[dict[str, object]]:
    """A snapshot then updates for one symbol, with now and then a new snapshot (a resubscription)."""
    run = [draw(l2_frames("BTCUSD", snapshot=True))]
    for _ in range(draw(st.integers(0, 20))):
        run.append(draw(l2_frames("BTCUSD", snapshot=draw(st.integers(0, 9)) == 0)))
    return run


@settings(max_examples=150, deadline=None)  # each example is a run of up to 21 frames
@given(run=valid_l2_runs(), depth=st.sampled_from([1, 2, 20]))
def test_book_ticks_are_the_top_levels_of_the_book_the_frames_describe(run, depth):
    recv_ns = 1_618_677_942_700_000_000
    parser = GeminiParser(depth_levels=depth)
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    last: tuple[list[list[float]], list[list[float]]] | None = None  # the levels of the last book tick sent
    dropped = False  # the book crossed: it is dropped until the next snapshot
    held = False  # the engine holds a book of the market (one was sent since the last loss)
    for msg in run:
        snapshot = "trades" in msg
        # A snapshot replaces the book: the book sent before it is gone, whatever the snapshot holds.
        replaced = snapshot and held
        if snapshot:
            bids, asks, last, dropped, held = {}, {}, None, False, False
        for side, price, size in msg["changes"]:  # type: ignore[attr-defined]
            book = bids if side == "buy" else asks
            if float(size) == 0:
                book.pop(float(price), None)
            else:
                book[float(price)] = float(size)
        ticks = parser.parse(json.dumps(msg), recv_ns)
        if dropped:
            assert ticks == []  # the engine was told at the loss
            continue
        if not bids or not asks:
            # one-sided: no book tick, and the next is sent whatever it holds (the engine keeps the
            # last one: not a loss); a snapshot that leaves a side empty has replaced a sent book,
            # and the engine is told it is gone
            assert ticks == ([lost("gemini", "BTC/USD", recv_ns)] if replaced else [])
            last = None
            continue
        if max(bids) >= min(asks):
            # crossed: a missed update (or a bad snapshot); a fresh one is asked for, and the engine
            # is told the book it was sent is gone
            assert ticks == ([lost("gemini", "BTC/USD", recv_ns)] if replaced or held else [])
            dropped = True
            last = None
            held = False
            assert parser.resync_needed == parser.awaiting_snapshot() == {"BTCUSD"}
            parser.resync_needed.clear()
            continue
        levels = (
            [[p, bids[p]] for p in sorted(bids, reverse=True)[:depth]],
            [[p, asks[p]] for p in sorted(asks)[:depth]],
        )
        if levels == last:
            assert ticks == []
        else:
            [tick] = ticks
            assert (tick.type, tick.bids, tick.asks) == ("book", *levels)
        last = levels
        held = True
    assert parser.stats.dropped["unexpected"] == 0
