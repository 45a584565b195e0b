"""Book ticks (DESIGN.md "Depth"): a quote with the market's levels. On the wire a quote's bytes are
what they were before books existed; a book tick round-trips exactly; whatever is not a valid book
is refused at decoding, so that the engine never walks a bad one. The engine takes a book tick as
the market's quote and keeps its levels beside the top they belong to."""

from __future__ import annotations

import orjson
import pytest

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from signals_app.contracts import tick

RECV_NS = 1_705_670_123_456_789_000
BIDS = [[100.0, 1.5], [99.5, 2.0], [99.0, 0.25]]
ASKS = [[100.5, 0.5], [101.0, 3.0]]


def book_tick(exchange: str = "binance", bids: tick.Levels = BIDS, asks: tick.Levels = ASKS) -> tick.Tick:
    return tick.book(exchange, "BTC/USDT", bids, asks, RECV_NS // 1_000_000, RECV_NS)


def test_a_quote_on_the_wire_has_no_levels_and_a_book_tick_round_trips() -> None:
    quote = tick.quote("binance", "BTC/USDT", 100.0, 100.5, 1.5, 0.5, 1705670123456, RECV_NS)
    assert list(orjson.loads(tick.encode(quote))) == list(tick.FIELDS)
    assert tick.decode(tick.encode(quote)) == quote
    book = book_tick()
    wire = orjson.loads(tick.encode(book))
    assert wire["type"] == "book"
    assert (wire["bids"], wire["asks"]) == (BIDS, ASKS)
    assert (wire["bid"], wire["bid_size"], wire["ask"], wire["ask_size"]) == (100.0, 1.5, 100.5, 0.5)
    assert wire["price"] == 100.25
    assert tick.decode(tick.encode(book)) == book
    assert tick.to_dict(quote).keys() == set(tick.FIELDS)


def test_a_book_ticks_top_is_a_quote() -> None:
    top = tick.top_of(book_tick())
    assert top == tick.quote("binance", "BTC/USDT", 100.0, 100.5, 1.5, 0.5, RECV_NS // 1_000_000, RECV_NS)
    quote = tick.quote("okx", "BTC/USDT", 1.0, 2.0, None, None, 1, 1)
    assert tick.top_of(quote) is quote


def wire_book(**changes: object) -> bytes:
    message = orjson.loads(tick.encode(book_tick()))
    message.update(changes)
    return orjson.dumps(message)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"bids": []}, "no list of levels"),
        ({"asks": None}, "no list of levels"),
        ({"bids": [[100.0, 1.5], [99.5]]}, "no \\[price, size\\]"),
        ({"bids": [[100.0, 1.5], [99.5, 0.0]]}, "bad level"),
        ({"bids": [[100.0, 1.5], [99.5, "2"]]}, "bad level"),
        ({"bids": [[100.0, 1.5], [100.0, 2.0]]}, "out of order"),  # a price twice
        ({"asks": [[100.5, 0.5], [100.4, 3.0]]}, "out of order"),  # asks must rise
        ({"bids": [[100.0, 1.5], [-1.0, 2.0]]}, "out of order"),
        ({"bids": [[99.5, 2.0]]}, "top is not the first level"),
        ({"bids": [[100.0 - i * 0.01, 1.0] for i in range(tick.MAX_LEVELS + 1)]}, "no list of levels"),
        ({"type": "quote"}, "levels on a quote"),
        ({"type": "trade"}, "levels on a trade"),
        ({"bid": 101.0, "bids": [[101.0, 1.5]]}, "bad quote prices"),  # crossed
    ],
)
def test_what_is_not_a_valid_book_is_refused(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(tick.TickDecodeError, match=reason):
        tick.decode(wire_book(**changes))


def test_the_engine_takes_a_book_tick_as_the_markets_quote_and_keeps_its_levels() -> None:
    engine = Engine(EngineConfig(threshold_pct=0.5, fees_pct={"binance": 0.1, "okx": 0.1}))
    assert engine.on_tick(book_tick("binance"), RECV_NS // 1_000_000) == []
    # OKX's bid 1 % above Binance's ask: the book tick opens it as a quote tick would.
    rich = tick.book("okx", "BTC/USDT", [[101.6, 1.0]], [[101.7, 1.0]], RECV_NS // 1_000_000, RECV_NS)
    (opened,) = engine.on_tick(rich, RECV_NS // 1_000_000)
    assert (opened["status"], opened["buy_exchange"], opened["sell_exchange"]) == ("open", "binance", "okx")
    assert (opened["buy_price"], opened["sell_price"]) == (100.5, 101.6)
    slot = engine.book.apply(book_tick("binance"))[0]
    assert (slot.bids, slot.asks) == (BIDS, ASKS)
    assert (list(slot.bid_levels(0) or []), list(slot.ask_levels(0) or [])) == (BIDS, ASKS)
    # A newer quote tick moves the top inside the book: a walk takes the new top, then only the
    # older book's levels behind it (never one better than the newer top).
    slot = engine.book.apply(tick.quote("binance", "BTC/USDT", 100.1, 100.4, 2.0, 3.0, 1, RECV_NS + 1))[0]
    assert list(slot.bid_levels(0) or []) == [(100.1, 2.0), *[level for level in BIDS if level[0] < 100.1]]
    assert list(slot.ask_levels(0) or []) == [(100.4, 3.0), *[level for level in ASKS if level[0] > 100.4]]
    # A top that moved away (the best levels were taken): the levels it passed are gone.
    slot = engine.book.apply(tick.quote("binance", "BTC/USDT", 99.7, 100.7, 0.5, 0.75, 1, RECV_NS + 2))[0]
    assert list(slot.bid_levels(0) or []) == [(99.7, 0.5), [99.5, 2.0], [99.0, 0.25]]
    assert list(slot.ask_levels(0) or []) == [(100.7, 0.75), [101.0, 3.0]]
    # A book received before the oldest fresh time takes no part.
    assert slot.bid_levels(RECV_NS // 1_000_000 + 1) is None
    assert slot.ask_levels(RECV_NS // 1_000_000 + 1) is None


def test_a_book_lost_tick_round_trips_and_a_top_without_levels_is_refused() -> None:
    lost = tick.book_lost("kraken", "BTC/USD", RECV_NS // 1_000_000, RECV_NS)
    wire = orjson.loads(tick.encode(lost))
    assert (wire["type"], wire["bids"], wire["asks"]) == ("book", [], [])
    assert (wire["bid"], wire["ask"], wire["bid_size"], wire["ask_size"], wire["price"]) == (None,) * 4 + (0.0,)
    assert tick.decode(tick.encode(lost)) == lost
    assert tick.is_book_lost(lost)
    assert not tick.is_book_lost(book_tick())
    assert not tick.is_book_lost(tick.quote("okx", "BTC/USDT", 1.0, 2.0, None, None, 1, 1))
    for changes in ({"bid": 100.0}, {"ask_size": 1.0}, {"asks": [[100.5, 0.5]]}):
        wire_lost = {**wire, **changes}
        with pytest.raises(tick.TickDecodeError):
            tick.decode(orjson.dumps(wire_lost))
