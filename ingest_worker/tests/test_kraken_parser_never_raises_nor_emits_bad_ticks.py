"""Whatever arrives, the Kraken parser never raises, never emits an impossible tick, and accounts for every frame once.

Property tests over arbitrary bytes, text and JSON, and over Kraken-shaped frames
(v1 ticker/trade/book arrays, v2 ticker/trade objects) whose fields are drawn
from anything JSON can hold, with a bias to the strings that break number
parsing. Book frames are sent as a sequence on one parser, so updates meet the
book state (and its checksum) that earlier frames left.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zlib

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
    number_strings,
    recv_times,
)
from ingest_worker.venues.kraken import KrakenParser

EXAMPLES = settings(max_examples=300, deadline=None)
PAIRS = st.sampled_from(["XBT/USD", "KSM/XBT", "ETH/CHF", "BTC/USD", "XBTUSD", "/USD", "XBT/"])


@EXAMPLES
@given(data=st.binary(max_size=300), recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_bytes(data, recv_ns, max_age_ms):
    frames: list[str | bytes] = [data, b"[1," + data, b'{"channel":"ticker","data":' + data]
    check(KrakenParser(max_age_ms=max_age_ms), frames, recv_ns)


@EXAMPLES
@given(text=any_text, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_text(text, recv_ns, max_age_ms):
    frames: list[str | bytes] = [text, "[1," + text, '[1,{"as":' + text]
    check(KrakenParser(max_age_ms=max_age_ms), frames, recv_ns)


@EXAMPLES
@given(value=json_values, recv_ns=recv_times, max_age_ms=max_ages)
def test_arbitrary_json_values(value, recv_ns, max_age_ms):
    frames = [as_frame(value, "str"), as_frame(value, "bytes"), as_frame([1, value, "book-10", "XBT/USD"], "str")]
    check(KrakenParser(max_age_ms=max_age_ms), frames, recv_ns)


def seconds_text(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}123"


@st.composite
def item_list(draw: st.DrawFn, valid: list[object]) -> list[object]:
    """`valid` (a v1 level, ticker side or trade) with up to two items replaced by anything, or cut short."""
    items = list(valid)
    for index in draw(st.lists(st.integers(0, len(items) - 1), max_size=2, unique=True)):
        items[index] = draw(st.one_of(number_strings, field_values))
    return items[: draw(st.integers(0, len(items)))] if draw(st.integers(0, 9)) == 0 else items


@st.composite
def v1_frames(draw: st.DrawFn) -> tuple[list[object], int]:
    """A few v1 frames on one pair: a ticker, a trade, a book snapshot and book updates."""
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    event_ms = recv_ns // 1_000_000 + draw(st.integers(min_value=-120_000, max_value=120_000))
    pair = draw(PAIRS)
    bid = draw(cents)
    ask = bid + draw(st.integers(min_value=-10, max_value=10**6))  # sometimes crossed
    ticker: dict[str, object] = {
        "a": draw(item_list([decimal(ask), 1, decimal(draw(cents))])),
        "b": draw(item_list([decimal(bid), 1, decimal(draw(cents))])),
    }
    trade = draw(item_list([decimal(draw(cents)), decimal(draw(cents)), seconds_text(event_ms), "b", "l", ""]))
    level_prices = draw(st.lists(cents, min_size=1, max_size=6))
    snapshot: dict[str, object] = {
        "as": [draw(item_list([decimal(bid + p), decimal(draw(cents)), seconds_text(event_ms)])) for p in level_prices],
        "bs": [draw(item_list([decimal(max(1, bid - p)), decimal(draw(cents)), seconds_text(event_ms)]))
               for p in level_prices],
    }  # fmt: skip
    frames: list[object] = [
        [1, draw(mutated(ticker)), "ticker", pair],
        [2, [trade], "trade", pair],
        [3, draw(mutated(snapshot)), "book-10", pair],
    ]
    for _ in range(draw(st.integers(0, 4))):
        side = draw(st.sampled_from(["a", "b"]))
        size = draw(st.one_of(st.just("0.00000000"), st.builds(decimal, cents)))
        level = draw(item_list([decimal(bid + draw(st.integers(-1000, 1000))), size, seconds_text(event_ms)]))
        update: dict[str, object] = {side: [level]}
        if draw(st.booleans()):
            update["c"] = str(draw(st.integers(0, 2**32 - 1)))
        frames.append([3, draw(mutated(update)), "book-10", pair])
    return frames, recv_ns


@EXAMPLES
@given(shaped=v1_frames(), max_age_ms=max_ages)
def test_frame_shaped_v1_json(shaped, max_age_ms):
    values, recv_ns = shaped
    check(KrakenParser(max_age_ms=max_age_ms), [as_frame(value, "str") for value in values], recv_ns)


@st.composite
def v2_frames(draw: st.DrawFn) -> tuple[dict[str, object], int]:
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    event = dt.datetime.fromtimestamp(recv_ns // 1000 / 1e6, dt.UTC) + dt.timedelta(
        milliseconds=draw(st.integers(min_value=-120_000, max_value=120_000))
    )
    timestamp = draw(
        st.one_of(
            st.just(event.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
            st.sampled_from(["2021-04-17T25:00:00Z", "2021-02-30T00:00:00.1Z", "2021-04-17T16:43:30Z"]),
        )
    )
    symbol = draw(PAIRS)
    bid = draw(cents)
    if draw(st.booleans()):
        item: dict[str, object] = {
            "symbol": symbol,
            "bid": bid / 100,
            "bid_qty": draw(cents) / 100,
            "ask": (bid + draw(cents)) / 100,
            "ask_qty": draw(cents) / 100,
            "last": bid / 100,
            "timestamp": timestamp,
        }
        channel = "ticker"
    else:
        item = {"symbol": symbol, "side": "buy", "price": bid / 100, "qty": draw(cents) / 100, "timestamp": timestamp}
        channel = "trade"
    items = [draw(mutated(item)) for _ in range(draw(st.integers(1, 3)))]
    return draw(mutated({"channel": channel, "type": "update", "data": items})), recv_ns


@EXAMPLES
@given(shaped=v2_frames(), max_age_ms=max_ages)
def test_frame_shaped_v2_json(shaped, max_age_ms):
    value, recv_ns = shaped
    check(KrakenParser(max_age_ms=max_age_ms), [as_frame(value, "str"), as_frame(value, "bytes")], recv_ns)


def test_the_shaped_frames_reach_the_tick_paths():
    """The strategies are not all garbage: their unmutated forms give ticks."""
    parser = KrakenParser()
    recv_ns = 1_618_678_142_600_000_000
    ms = recv_ns // 1_000_000
    frames = [
        [1, {"a": ["100.6", 1, "1.0"], "b": ["100.5", 1, "1.0"]}, "ticker", "XBT/USD"],
        [2, [["100.5", "1.0", seconds_text(ms), "b", "l", ""]], "trade", "XBT/USD"],
        [3, {"as": [["100.6", "1.0", seconds_text(ms)]], "bs": [["100.5", "1.0", seconds_text(ms)]]}, "book-10",
         "XBT/USD"],
    ]  # fmt: skip
    assert [len(parser.parse(json.dumps(frame), recv_ns)) for frame in frames] == [1, 1, 1]


def v2_book_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """Kraken's checksum of a book of these wire texts (best first): so that some updates apply."""
    digits = "".join(p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0") for p, q in asks[:10] + bids[:10])
    return zlib.crc32(digits.encode())


@st.composite
def v2_book_frames(draw: st.DrawFn) -> tuple[list[str], int]:
    """A v2 book snapshot and updates on one symbol, numbers written as Kraken writes them, the
    checksum right (of the snapshot alone, as if no update came between) or anything; half of the
    frames then mutated at their `data` item."""
    recv_ns = draw(st.integers(min_value=10**18, max_value=2 * 10**18))
    symbol = draw(PAIRS)
    bid = draw(st.integers(min_value=2, max_value=10**6))
    bids = [(decimal(max(1, bid - i)), decimal(draw(cents))) for i in range(draw(st.integers(1, 4)))]
    asks = [(decimal(bid + draw(st.integers(-1, 6)) + i), decimal(draw(cents))) for i in range(draw(st.integers(1, 4)))]
    frames = []
    for kind in ["snapshot", *["update"] * draw(st.integers(0, 3))]:
        levels = (bids, asks) if kind == "snapshot" else ([(decimal(bid), draw(st.sampled_from(["0", "1.5"])))], [])
        crc = draw(st.one_of(st.just(v2_book_checksum(bids, asks)), field_values))
        item: dict[str, object] = {
            "symbol": symbol,
            "bids": [{"price": p, "qty": q} for p, q in levels[0]],
            "asks": [{"price": p, "qty": q} for p, q in levels[1]],
            "checksum": crc,
        }
        text = json.dumps({"channel": "book", "type": kind, "data": [draw(st.one_of(st.just(item), mutated(item)))]})
        # Prices and sizes as JSON numbers, trailing zeros kept: unquote the decimal strings.
        frames.append(re.sub(r'"(price|qty)": "([0-9.]+)"', r'"\1": \2', text))
    return frames, recv_ns


@EXAMPLES
@given(shaped=v2_book_frames(), max_age_ms=max_ages)
def test_frame_shaped_v2_books(shaped, max_age_ms):
    values, recv_ns = shaped
    check(KrakenParser(max_age_ms=max_age_ms), list(values), recv_ns)
