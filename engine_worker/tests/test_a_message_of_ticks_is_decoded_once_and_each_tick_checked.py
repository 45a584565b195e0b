"""The ZeroMQ hop's messages (signals_app/contracts/tick.py "the ZeroMQ hop"): every tick of a frame
in one msgpack message of positional fields, decoded once by the engine.

Every kind of tick round-trips exactly, many in one message. A message that is not one (not
msgpack, the wrong shape, a field of the wrong type, a level out of msgspec's bounds) is refused
whole; a tick of a well-formed message that breaks a rule (crossed, out of order, a bad name...)
is refused alone and the others are taken. Whatever the bytes, decoding raises nothing but
TickDecodeError, and the engine counts each refusal (`bad_messages`, `bad_ticks`) and raises no
signal from it.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import msgspec
import pytest

from engine_worker.config import EngineConfig
from engine_worker.service import EngineService, EngineServiceConfig
from signals_app.contracts import tick
from signals_app.contracts.tick import FEED_DOWN, FEED_UP, FeedState, Tick, TickDecodeError, decode_message

NS = 1_705_670_123_456_789_012
MS = NS // 1_000_000
BIDS = [[100.0, 1.5], [99.5, 2.0], [99.0, 0.25]]
ASKS = [[100.5, 0.5], [101.0, 3.0]]
NAN = float("nan")
INF = float("inf")


def a_quote(exchange: str = "binance", symbol: str = "BTC/USDT", bid: float = 100.0, ask: float = 100.5) -> Tick:
    return tick.quote(exchange, symbol, bid, ask, 1.5, 0.5, MS, NS)


def every_kind() -> list[Tick]:
    deep_bids = [[1000.0 - i * 0.5, 1.0 + i] for i in range(tick.MAX_LEVELS)]
    deep_asks = [[1000.5 + i * 0.5, 2.0] for i in range(tick.MAX_LEVELS)]
    return [
        a_quote(),
        tick.quote("coinbase", "BTC/USD", 100.0, 100.5, None, None, MS, NS),  # a feed that gives no sizes
        tick.trade("coinbase", "BTC/USD", 100.25, 0.01, MS, NS),
        tick.book("okx", "BTC/USDT", BIDS, ASKS, MS, NS),
        tick.book("okx", "ETH/USDT", [[10.0, 1.0]], [[10.5, 2.0]], MS, NS),  # one level a side
        tick.book("kraken", "BTC/USD", deep_bids, deep_asks, MS, NS),  # MAX_LEVELS a side
        tick.book_lost("gemini", "BTC/USD", MS, NS),
    ]


def test_every_kind_of_tick_round_trips_exactly_many_to_a_message() -> None:
    kinds = every_kind()
    ticks = [kinds[i % len(kinds)] for i in range(1000)]
    items, refused = decode_message(tick.encode_ticks(ticks))
    assert refused == ()
    assert list(items) == ticks
    assert all(type(each) is Tick for each in items)
    # floats stay floats (never ints), exactly: msgpack carries their 8 bytes
    assert all(type(each.price) is float and type(each.volume) is float for each in items)  # type: ignore[union-attr]
    for each in kinds:
        assert decode_message(tick.encode_ticks([each])).items == [each]


def test_a_message_is_far_smaller_than_the_ticks_json() -> None:
    ticks = every_kind()[:5]
    assert len(tick.encode_ticks(ticks)) < 0.6 * sum(len(tick.encode(each)) for each in ticks)


def test_a_feed_state_is_a_message_of_its_own() -> None:
    for state in (FEED_DOWN, FEED_UP):
        items, refused = decode_message(tick.encode_feed_state("kraken", state, 1234))
        assert (list(items), refused) == ([FeedState("kraken", state, 1234)], ())


# --- messages refused whole ------------------------------------------------------------
def fields(each: Tick, **changes: object) -> list[object]:
    """A tick's positional wire fields with some replaced (by name), as raw msgpack values."""
    values = each._replace(**changes)  # type: ignore[arg-type]
    return list(values)


def packed(*ticks_fields: object) -> bytes:
    return msgspec.msgpack.encode(list(ticks_fields))


BOOK = tick.book("okx", "BTC/USDT", BIDS, ASKS, MS, NS)

UNDECODABLE: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not msgpack", b"\xc1\xc1\xc1"),
    ("the old JSON object of a tick", tick.encode(a_quote())),
    ("truncated", tick.encode_ticks([BOOK])[:-3]),
    ("trailing bytes", tick.encode_ticks([a_quote()]) + b"\x00"),
    ("a number", msgspec.msgpack.encode(42)),
    ("a string", msgspec.msgpack.encode("ticks")),
    ("a list of numbers", msgspec.msgpack.encode([1, 2, 3])),
    ("a tick as a map", msgspec.msgpack.encode([tick.to_dict(a_quote())])),
    ("ten fields", packed(fields(a_quote())[:10])),
    ("fourteen fields", packed([*fields(BOOK), None])),
    ("a price as text", packed(fields(a_quote(), bid="100.0"))),
    ("a name as a number", packed(fields(a_quote(), exchange=7))),
    ("a float timestamp", packed(fields(a_quote(), timestamp=float(MS)))),
    ("a bool timestamp", packed(fields(a_quote(), timestamp=True))),
    ("levels as a map", packed(fields(BOOK, bids={"100.0": 1.5}))),
    ("a level of three", packed(fields(BOOK, bids=[[100.0, 1.5, 1.0]]))),
    ("a level of one", packed(fields(BOOK, bids=[[100.0, 1.5], [99.5]]))),
    ("a level's size as text", packed(fields(BOOK, bids=[[100.0, 1.5], [99.5, "2"]]))),
    ("a NaN size", packed(fields(BOOK, bids=[[100.0, 1.5], [99.5, NAN]]))),
    ("an infinite size", packed(fields(BOOK, asks=[[100.5, 0.5], [101.0, INF]]))),
    ("a zero size", packed(fields(BOOK, bids=[[100.0, 1.5], [99.5, 0.0]]))),
    ("a negative price", packed(fields(BOOK, bids=[[100.0, 1.5], [-1.0, 2.0]]))),
    ("a NaN price", packed(fields(BOOK, asks=[[100.5, 0.5], [NAN, 3.0]]))),
    (
        "more than MAX_LEVELS",
        packed(fields(BOOK, bids=[[100.0 - i * 0.01, 1.0] for i in range(tick.MAX_LEVELS + 1)])),
    ),
    ("a feed state with another word", msgspec.msgpack.encode({"feed": "kraken", "state": "gone", "timestamp": 1})),
    ("a feed state with a key more", msgspec.msgpack.encode({"feed": "kraken", "state": "up", "timestamp": 1, "x": 1})),
    ("a feed state without a time", msgspec.msgpack.encode({"feed": "kraken", "state": "up"})),
    ("a feed state of no venue", msgspec.msgpack.encode({"feed": "", "state": "up", "timestamp": 1})),
]


@pytest.mark.parametrize(("what", "data"), UNDECODABLE, ids=[what for what, _ in UNDECODABLE])
def test_a_message_that_is_not_one_is_refused_whole(what: str, data: bytes) -> None:
    with pytest.raises(TickDecodeError):
        decode_message(data)


# --- ticks refused alone -----------------------------------------------------------------
REFUSED_ALONE: list[tuple[list[object], str]] = [
    (fields(a_quote(), bid=100.5), "bad quote prices"),  # bid == ask
    (fields(a_quote(), bid=101.0), "bad quote prices"),  # crossed
    (fields(a_quote(), bid=NAN), "bad quote prices"),
    (fields(a_quote(), ask=INF), "bad quote prices"),
    (fields(a_quote(), bid=-1.0), "bad quote prices"),
    (fields(a_quote(), bid=None), "bad quote prices"),
    (fields(a_quote(), bid_size=0.0), "bad quote size"),
    (fields(a_quote(), ask_size=NAN), "bad quote size"),
    (fields(a_quote(), ask_size=INF), "bad quote size"),
    (fields(a_quote(), exchange=""), "bad exchange or symbol"),
    (fields(a_quote(), exchange="x" * 65), "bad exchange or symbol"),
    (fields(a_quote(), symbol="BTCUSDT"), "bad exchange or symbol"),
    (fields(a_quote(), type="depth"), "unknown type"),
    (fields(a_quote(), bids=BIDS, asks=ASKS), "levels on a quote"),
    (fields(a_quote(), price=NAN), "bad price or volume"),
    (fields(a_quote(), price=-1.0), "bad price or volume"),
    (fields(tick.trade("okx", "BTC/USDT", 100.0, 1.0, MS, NS), price=0.0), "bad trade price"),
    (fields(tick.trade("okx", "BTC/USDT", 100.0, 1.0, MS, NS), price=NAN), "bad price or volume"),
    (fields(tick.trade("okx", "BTC/USDT", 100.0, 1.0, MS, NS), volume=INF), "bad price or volume"),
    (fields(tick.trade("okx", "BTC/USDT", 100.0, 1.0, MS, NS), bids=[]), "levels on a trade"),
    (fields(tick.trade("okx", "BTC/USDT", 100.0, 1.0, MS, NS), bid_size=1.0), "a top on a trade"),
    (fields(BOOK, bids=[[100.0, 1.5], [100.0, 2.0]]), "out of order"),  # a price twice
    (fields(BOOK, bids=[[100.0, 1.5], [100.2, 2.0]]), "out of order"),  # bids must fall
    (fields(BOOK, asks=[[100.5, 0.5], [100.4, 3.0]]), "out of order"),  # asks must rise
    (fields(BOOK, bids=[[99.5, 2.0]]), "the top is not the first level"),
    (fields(BOOK, bid_size=9.0), "the top is not the first level"),
    (fields(BOOK, bids=[]), "no list of levels"),  # one side empty: neither a book nor a lost one
    (fields(BOOK, asks=None), "no list of levels"),
    (fields(BOOK, bid=101.0, bids=[[101.0, 1.5]]), "bad quote prices"),  # crossed book
    (fields(tick.book_lost("okx", "BTC/USDT", MS, NS), bid=100.0), "a top on a book without levels"),
]


@pytest.mark.parametrize(("bad", "reason"), REFUSED_ALONE, ids=[reason for _, reason in REFUSED_ALONE])
def test_a_tick_that_breaks_a_rule_is_refused_alone_and_the_others_are_taken(bad: list[object], reason: str) -> None:
    before, after = a_quote("binance"), tick.book("okx", "ETH/USDT", [[10.0, 1.0]], [[10.5, 2.0]], MS, NS)
    items, refused = decode_message(packed(list(before), bad, list(after)))
    assert list(items) == [before, after]
    assert len(refused) == 1
    assert reason in refused[0]


# --- whatever the bytes ------------------------------------------------------------------
def _checked(items: object) -> None:
    """Every tick decoding lets through is one `encode_ticks` takes back unchanged and whose
    numbers the spread arithmetic can use."""
    for each in items:  # type: ignore[attr-defined]
        if isinstance(each, FeedState):
            continue
        assert decode_message(tick.encode_ticks([each])) == ([each], ())
        if each.type != tick.TRADE and not tick.is_book_lost(each):
            assert 0.0 < each.bid < each.ask < INF
            for levels in (each.bids or [], each.asks or []):
                assert all(math.isfinite(price) and 0.0 < size < INF for price, size in levels)


def test_mutated_bytes_never_raise_anything_but_a_decode_error() -> None:
    rng = random.Random(12)
    seeds = [
        tick.encode_ticks(every_kind()[:5]),
        tick.encode_ticks([BOOK, a_quote()]),
        tick.encode_feed_state("okx", "up", 1),
    ]
    for _ in range(4000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            change = rng.random()
            if change < 0.5:
                data[at] = rng.randrange(256)
            elif change < 0.75:
                del data[at:]
                if not data:
                    break
            else:
                data[at:at] = bytes([rng.randrange(256)])
        try:
            items, _ = decode_message(bytes(data))
        except TickDecodeError:
            continue
        _checked(items)


ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    0.0,
    -0.0,
    NAN,
    INF,
    -INF,
    1e308,
    "",
    "BTC/USDT",
    [],
    [[1.0]],
    {},
    b"x",
]


def test_odd_values_in_any_field_never_raise_anything_but_a_decode_error() -> None:
    rng = random.Random(7)
    templates = [list(each) for each in every_kind()[:5]]
    for _ in range(4000):
        tick_fields = [list(rng.choice(templates)) for _ in range(rng.randint(1, 3))]
        for each in tick_fields:
            for _ in range(rng.randint(1, 3)):
                each[rng.randrange(len(each))] = rng.choice(ODD_VALUES)
        try:
            items, refused = decode_message(msgspec.msgpack.encode(tick_fields))
        except TickDecodeError:
            continue
        assert len(items) + len(refused) == len(tick_fields)  # a decodable message: every tick accounted for
        _checked(items)


# --- the engine's counts ------------------------------------------------------------------
def test_the_engine_counts_each_refusal_and_raises_no_signal_from_one() -> None:
    now_ns = time.time_ns()  # the engine's clock is the wall clock: its quotes must be fresh

    def a_quote(exchange: str = "binance", symbol: str = "BTC/USDT", bid: float = 100.0, ask: float = 100.5) -> Tick:
        return tick.quote(exchange, symbol, bid, ask, 1.5, 0.5, now_ns // 1_000_000, now_ns)

    service = EngineService(
        EngineServiceConfig(
            engine=EngineConfig(threshold_pct=0.5, fees_pct={"binance": 0.1, "okx": 0.1}), health_port=0
        )
    )
    cheap = a_quote("binance", bid=99.9, ask=100.0)
    # OKX's bid 1 % above Binance's ask would open an opportunity, but its ask is below its bid:
    # a crossed quote, refused, so nothing opens.
    crossed = fields(a_quote("okx"), bid=101.0, ask=100.9)
    service.handle_batch(
        [
            tick.encode_ticks([cheap, tick.trade("binance", "BTC/USDT", 100.0, 1.0, now_ns // 1_000_000, now_ns)]),
            b"\xc1 not a message",
            packed(list(a_quote("binance", "ETH/USDT")), crossed, list(tick.book_lost("okx", "ETH/USDT", 1, 1))),
            tick.encode_feed_state("okx", FEED_UP, MS),
        ]
    )
    assert (service.messages, service.bad_messages, service.bad_ticks, service.engine.ticks) == (4, 1, 1, 4)
    assert service.engine.lifecycle.counts.get("open", 0) == 0
    assert not service.engine.has_quote("okx", "BTC/USDT")
    assert service.feed_states == {"okx": FEED_UP}
    snapshot = service.snapshot()
    assert (snapshot["messages"], snapshot["bad_messages"], snapshot["bad_ticks"]) == (4, 1, 1)
    metrics = service.metrics()[2].decode()
    assert "arb_engine_bad_ticks_total 1.0" in metrics
    assert "arb_engine_bad_messages_total 1.0" in metrics
    assert "arb_engine_messages_total 4.0" in metrics
    # the same quote, not crossed, opens it: the refusal above is what kept it shut
    service.handle_batch([tick.encode_ticks([a_quote("okx", bid=101.0, ask=101.1)])])
    assert service.engine.lifecycle.counts["open"] == 1
