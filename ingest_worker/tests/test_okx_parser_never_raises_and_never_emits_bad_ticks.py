"""Whatever arrives, the OKX parser never raises, never emits an impossible tick, and accounts for every frame once.

Property tests over arbitrary bytes, text and JSON values, and over frame-shaped
JSON: `tickers` and `trades` pushes (spot and derivative instruments) and event
frames whose field values are drawn from anything JSON can hold. The strategies
and the per-frame check are the shared ones of the Binance and Coinbase tests.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.tests.test_parsers_never_raise_and_never_emit_bad_ticks import (
    any_text,
    as_frame,
    cents,
    check,
    decimal,
    field_values,
    json_values,
    max_ages,
    mutated,
    recv_times,
)
from ingest_worker.venues.okx import OkxParser

EXAMPLES = settings(max_examples=300, deadline=None)
# Spot markets more often than the rest, so that a good share of the frames reach the ticks.
INSTRUMENTS = [
    "BTC-USDT",
    "BTC-USDT",
    "BTC-USDT",
    "ELON-USDT",
    "ELON-USDT",
    "BTC-USD-220527",
    "UNI-USD-SWAP",
    "BTC-USD-210924-42000-P",
    "BTCUSDT",
    "BTC-",
]


@st.composite
def okx_frames(draw: st.DrawFn) -> tuple[object, int]:
    """A push or an event frame, valid before `mutated` breaks up to three of its fields."""
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    ts = str(recv_ns // 1_000_000 + draw(st.integers(min_value=-120_000, max_value=120_000)))
    native = draw(st.sampled_from(INSTRUMENTS))
    bid = draw(cents)
    kind = draw(st.sampled_from(["tickers", "tickers", "trades", "trades", "event", "books"]))
    if kind == "event":
        event = draw(st.sampled_from(["subscribe", "error", "notice", "unheardOf"]))
        frame: dict[str, object] = {"event": event, "arg": {"channel": "tickers", "instId": native}, "code": "0"}
        return draw(mutated(frame)), recv_ns
    if kind == "tickers":
        item: dict[str, object] = {
            "instType": "SPOT",
            "instId": native,
            "last": decimal(bid),
            "lastSz": decimal(draw(cents)),
            "askPx": decimal(bid + draw(cents)),
            "askSz": decimal(draw(cents)),
            "bidPx": decimal(bid),
            "bidSz": decimal(draw(cents)),
            "ts": ts,
        }
    elif kind == "trades":
        item = {
            "instId": native,
            "tradeId": "1",
            "px": decimal(bid),
            "sz": decimal(draw(cents)),
            "side": "buy",
            "ts": ts,
        }
    else:
        item = {"asks": [[decimal(bid), "1", "0", "1"]], "bids": [], "ts": ts, "checksum": -1}
    # Each layer is kept valid half of the time, so that a good share of frames reach the ticks.
    entries = draw(st.lists(st.one_of(st.just(item), mutated(item)), min_size=0, max_size=3))
    arg: dict[str, object] = {"channel": kind, "instId": native}
    if draw(st.booleans()):
        arg = draw(mutated(arg))
    frame = {"arg": arg, "data": entries}
    return (draw(mutated(frame)) if draw(st.booleans()) else frame), recv_ns


@EXAMPLES
@given(data=st.binary(max_size=300), recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_bytes(data, recv_ns, max_age_ms):
    frames: list[str | bytes] = [data, b'{"arg":' + data, b'{"arg":{"channel":"tickers"},"data":' + data]
    check(OkxParser(max_age_ms=max_age_ms), frames, recv_ns)


@EXAMPLES
@given(text=any_text, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_text(text, recv_ns, max_age_ms):
    frames: list[str | bytes] = [text, '{"event":' + text, '{"arg":{"channel":"trades"},"data":[' + text]
    check(OkxParser(max_age_ms=max_age_ms), frames, recv_ns)


@EXAMPLES
@given(value=json_values, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_json_values(value, recv_ns, max_age_ms):
    check(OkxParser(max_age_ms=max_age_ms), [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)


@EXAMPLES
@given(value=field_values, recv_ns=recv_times)
def test_a_push_whose_data_is_anything(value, recv_ns):
    for channel in ("tickers", "trades"):
        frame = {"arg": {"channel": channel, "instId": "BTC-USDT"}, "data": value}
        check(OkxParser(max_age_ms=None), [as_frame(frame, "str"), as_frame(frame, "bytes")], recv_ns)


@EXAMPLES
@given(shaped=okx_frames(), max_age_ms=max_ages)
def test_frame_shaped_okx_json(shaped, max_age_ms):
    value, recv_ns = shaped
    check(OkxParser(max_age_ms=max_age_ms), [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)
