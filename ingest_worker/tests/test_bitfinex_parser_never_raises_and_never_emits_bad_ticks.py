"""Whatever arrives, the Bitfinex parser never raises, never emits an impossible tick, and accounts
for every frame once: arbitrary bytes, text and JSON, and frame-shaped JSON (ticker, trade and
snapshot frames, subscribed events) whose fields hold anything JSON can."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.tests.test_parsers_never_raise_and_never_emit_bad_ticks import (
    any_text,
    check,
    field_values,
    json_values,
    max_ages,
    number_strings,
    recv_times,
)
from ingest_worker.venues.bitfinex import BitfinexParser

EXAMPLES = settings(max_examples=300, deadline=None)
CHANNELS = [("ticker", 1), ("trades", 2), ("book", 3), ("candles", 4)]
SYMBOLS = ["tBTCUSD", "tBTCUST", "tTESTBTC:TESTUSD", "tDOGUSD", "fUSD", "tBTC", "", "tbtcusd"]

# Prices and sizes as Bitfinex sends them: JSON numbers, of any sign and size.
wire_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(min_value=1e-9, max_value=1e11),
)
positive = st.floats(min_value=1e-9, max_value=1e9)
anything = st.one_of(wire_numbers, field_values, number_strings)


def text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@st.composite
def mutated_list(draw: st.DrawFn, valid: Sequence[object]) -> list[object]:
    """`valid` with up to three positions replaced by anything, maybe cut short or made longer."""
    values = list(valid)
    if draw(st.booleans()):
        return values  # half of the frames stay valid, so that the tick-giving paths are exercised too
    for index in draw(st.lists(st.integers(min_value=0, max_value=len(values) - 1), max_size=3, unique=True)):
        values[index] = draw(anything)
    how = draw(st.sampled_from(["keep", "keep", "cut", "extend"]))
    if how == "cut":
        values = values[: draw(st.integers(min_value=0, max_value=len(values)))]
    elif how == "extend":
        values.append(draw(anything))
    return values


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[str | bytes], int]:
    """Subscribed events (possibly broken), then frame-shaped data for their channel ids."""
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    now_ms = recv_ns // 1_000_000
    events: list[object] = []
    for channel, chan_id in CHANNELS:
        event: dict[str, object] = {
            "event": "subscribed",
            "channel": channel,
            "chanId": chan_id,
            "symbol": draw(st.sampled_from(SYMBOLS[:4]) | st.sampled_from(SYMBOLS)),
        }
        for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=1 if draw(st.booleans()) else 0)):
            event[key] = draw(anything)
        events.append(event)
    data: list[object] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        chan_id = draw(st.sampled_from([1, 2]) | st.sampled_from([1, 2, 3, 4, 99]))
        seq = draw(st.integers(min_value=0, max_value=20))
        bid = draw(st.floats(min_value=1e-6, max_value=1e9))
        ask = bid * draw(st.floats(min_value=1.0001, max_value=2.0))  # mutations cross or lock it
        trade = [
            draw(st.integers(min_value=0, max_value=2**40)),
            now_ms + draw(st.integers(min_value=-120_000, max_value=120_000)),
            draw(positive | wire_numbers),
            draw(positive),
        ]
        shapes = ["ticker", "te", "tu", "snapshot", "hb", "cs"]
        usual = {1: ["ticker"], 2: ["te", "snapshot"]}.get(chan_id, shapes)  # mostly what the channel sends
        shape = draw(st.sampled_from(usual) | st.sampled_from(shapes))
        if shape == "ticker":
            fields = [
                bid,
                draw(positive | wire_numbers),
                ask,
                draw(positive | wire_numbers),
                0.0,
                0.0,
                bid,
                1.0,
                ask,
                bid,
            ]
            frame: list[object] = [chan_id, draw(mutated_list(fields)), seq]
        elif shape in ("te", "tu"):
            frame = [chan_id, shape, draw(mutated_list(trade)), seq]
        elif shape == "snapshot":
            frame = [chan_id, [draw(mutated_list(trade)) for _ in range(draw(st.integers(0, 3)))], seq]
        elif shape == "hb":
            frame = [chan_id, "hb", seq]
        else:
            frame = [chan_id, "cs", draw(anything), seq]
        data.append(frame if draw(st.integers(min_value=0, max_value=3)) else draw(mutated_list(frame)))
    frames: list[str | bytes] = []
    for value in [*events, *data]:
        as_text = text(value)
        frames.append(as_text.encode() if draw(st.booleans()) else as_text)
    return frames, recv_ns


@EXAMPLES
@given(data=st.binary(max_size=300), recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_bytes(data, recv_ns, max_age_ms):
    check(BitfinexParser(max_age_ms=max_age_ms), [data, b"[1," + data, b'{"event":' + data], recv_ns)


@EXAMPLES
@given(value=any_text, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_text(value, recv_ns, max_age_ms):
    check(BitfinexParser(max_age_ms=max_age_ms), [value, "[1," + value, '{"event":' + value], recv_ns)


@EXAMPLES
@given(value=json_values, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_json_values(value, recv_ns, max_age_ms):
    frames: list[str | bytes] = [text(value), text(value).encode(), text([1, value, 2]), text([2, "te", value, 3])]
    check(BitfinexParser(max_age_ms=max_age_ms), frames, recv_ns)


@EXAMPLES
@given(session=sessions(), max_age_ms=max_ages)
def test_frame_shaped_json(session, max_age_ms):
    frames, recv_ns = session
    check(BitfinexParser(max_age_ms=max_age_ms), frames, recv_ns)
