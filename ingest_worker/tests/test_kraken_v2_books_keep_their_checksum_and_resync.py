"""Kraken v2 `book` frames, written as Kraken's docs show them, keep a checksummed book that sets the top.

The frames below are spelled as the v2 API reference and its checksum guide print them:
JSON numbers at the pair's precision (`0.00100000`, trailing zeros on the wire), a
`checksum` on the snapshot and on every update. The checksum each test expects is computed
here from those texts alone (the guide's steps: '.' removed, leading zeros removed, top ten
asks low to high, then top ten bids high to low, CRC32). A failed checksum, a crossed book
or an update before any snapshot drops the book and asks once for a resync; the ticker
quotes the market only while it has no book.
"""

from __future__ import annotations

import json
import zlib

import pytest

from ingest_worker.tests.recorded import lost
from ingest_worker.venues import kraken
from ingest_worker.venues.base import BAD_PRICE, BAD_SIZE, BOOK_GAP, CROSSED_BOOK, MISSING_FIELD
from ingest_worker.venues.kraken import KrakenParser
from signals_app.contracts import tick as tick_contract

RECV_NS = 1_705_670_123_456_000_000  # 2024-01-19T13:15:23.456Z
TIME = "2024-01-19T13:15:23.400123Z"
TIME_MS = 1_705_670_123_400
LOST = lost("kraken", "BTC/USD", RECV_NS)  # what a frame that drops the BTC/USD book sent gives

# (price text, qty text) as the wire writes them, best first.
BIDS = [("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000")]
ASKS = [("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109")]


def checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """Kraken's v2 book checksum of a book whose levels are these texts, best first."""

    def digits(text: str) -> str:
        return text.replace(".", "").lstrip("0")

    text = "".join(digits(p) + digits(q) for p, q in asks[:10]) + "".join(digits(p) + digits(q) for p, q in bids[:10])
    return zlib.crc32(text.encode())


def levels_text(levels: list[tuple[str, str]]) -> str:
    return "[" + ",".join(f'{{"price":{price},"qty":{qty}}}' for price, qty in levels) + "]"


def book_frame(
    kind: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    crc: int,
    *,
    symbol: str = "BTC/USD",
    timestamp: str | None = TIME,
) -> str:
    """A v2 book frame with its numbers written exactly as given (json.dumps would rewrite them)."""
    stamp = "" if timestamp is None else f',"timestamp":"{timestamp}"'
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":{levels_text(bids)},'
        f'"asks":{levels_text(asks)},"checksum":{crc}{stamp}}}]}}'
    )


def snapshot(bids: list[tuple[str, str]] = BIDS, asks: list[tuple[str, str]] = ASKS, **extra: object) -> str:
    return book_frame("snapshot", bids, asks, checksum(bids, asks), **extra)  # type: ignore[arg-type]


def dropped(parser: KrakenParser) -> dict[str, int]:
    return {reason: count for reason, count in parser.stats.dropped.items() if count}


def floats(levels: list[tuple[str, str]]) -> list[list[float]]:
    return [[float(price), float(qty)] for price, qty in levels]


def test_the_checksum_guide_formats_a_level_as_its_wire_digits():
    # The guide's worked step: price 45285.2 and qty 0.00100000 give "452852100000".
    assert kraken._checksum_text("45285.2", "0.00100000") == "452852100000"
    assert kraken._checksum_text("0.5660", "18097.15470000") == "56601809715470000"


def test_the_docs_subscribe_request_and_answer_are_what_the_client_sends_and_reads():
    book, *_ = kraken.subscribe_messages(["ALGO/USD", "MATIC/USD"])
    assert book == {
        "method": "subscribe",
        "params": {"channel": "book", "symbol": ["ALGO/USD", "MATIC/USD"], "depth": 25, "snapshot": True},
        "req_id": 3,
    }
    parser = KrakenParser()
    ack = (
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"ALGO/USD"},'
        '"success":true,"time_in":"2023-10-06T17:35:55.219022Z","time_out":"2023-10-06T17:35:55.219067Z"}'
    )
    assert parser.parse(ack, RECV_NS) == []
    assert parser.stats.control == {"subscribe": 1}


def test_a_docs_snapshot_gives_a_book_tick_with_the_top_levels():
    # The API reference's MATIC/USD snapshot (prices at 4 decimals, quantities at 8).
    bids = [("0.5666", "4831.75496356"), ("0.5665", "6658.22734739"), ("0.5664", "18724.91513344"),
            ("0.5663", "11563.92544914"), ("0.5662", "14006.65365711"), ("0.5661", "17454.85679807"),
            ("0.5660", "18097.15470000"), ("0.5659", "33644.89175666"), ("0.5658", "148.34640000"),
            ("0.5657", "606.70854372")]  # fmt: skip
    asks = [("0.5668", "4410.79769741"), ("0.5669", "4655.40412487"), ("0.5670", "49844.89424998"),
            ("0.5671", "24306.41678000"), ("0.5672", "1111.11111111"), ("0.5673", "222.22222222"),
            ("0.5674", "3333.33333333"), ("0.5675", "44.44444444"), ("0.5676", "5.55555555"),
            ("0.5677", "6666.66666666"), ("0.5678", "7.77777777")]  # fmt: skip
    parser = KrakenParser(depth_levels=5)
    (book_tick,) = parser.parse(snapshot(bids, asks, symbol="MATIC/USD", timestamp=None), RECV_NS)
    assert book_tick == tick_contract.book(
        "kraken", "MATIC/USD", floats(bids[:5]), floats(asks[:5]), RECV_NS // 1_000_000, RECV_NS
    )
    assert parser.stats.dropped == dict.fromkeys(parser.stats.dropped, 0)


def test_updates_move_the_book_and_each_change_of_the_top_levels_is_a_tick():
    parser = KrakenParser(depth_levels=2)
    (first,) = parser.parse(snapshot(), RECV_NS)
    assert (first.bids, first.asks, first.timestamp) == (floats(BIDS[:2]), floats(ASKS[:2]), TIME_MS)
    # A new best bid, and the best ask's qty (removals are qty 0, written as the integer 0 or 0.0).
    bids = [("45284.0", "2.00000000"), *BIDS]
    asks = [("45285.2", "0.50000000"), *ASKS[1:]]
    update = book_frame("update", [("45284.0", "2.00000000")], [("45285.2", "0.50000000")], checksum(bids, asks))
    (second,) = parser.parse(update, RECV_NS)
    assert (second.bids, second.asks) == (floats(bids[:2]), floats(asks[:2]))
    asks = asks[1:]
    (third,) = parser.parse(book_frame("update", [], [("45285.2", "0")], checksum(bids, asks)), RECV_NS)
    assert third.asks == floats(asks[:2])
    # A change below the top two levels: kept (the checksum covers it), but no tick.
    bids = [*bids[:3], ("45282.1", "0.30000000")]
    assert parser.parse(book_frame("update", [("45282.1", "0.30000000")], [], checksum(bids, asks)), RECV_NS) == []
    assert parser.stats.ignored == {"book_below_top": 1}
    assert dropped(parser) == {}


def test_the_book_is_kept_to_the_subscribed_depth():
    bids = [(f"{45000 - i}.0", "1.00000000") for i in range(25)]
    asks = [(f"{45100 + i}.0", "1.00000000") for i in range(25)]
    parser = KrakenParser()
    parser.parse(snapshot(bids, asks), RECV_NS)
    # A better bid pushes the 25th out; Kraken sends no removal for it.
    bids = [("45000.5", "1.00000000"), *bids[:24]]
    parser.parse(book_frame("update", [("45000.5", "1.00000000")], [], checksum(bids, asks)), RECV_NS)
    book = parser.book("BTC/USD")
    assert book is not None
    assert book.bid_levels() == [(float(p), float(q)) for p, q in bids]
    assert dropped(parser) == {}


def test_while_a_market_has_a_book_its_ticker_is_not_a_quote():
    parser = KrakenParser()
    ticker = (
        '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":45283.5,"bid_qty":0.1,'
        '"ask":45285.2,"ask_qty":0.001,"last":45284.0,"volume":1.0,"timestamp":"' + TIME + '"}]}'
    )
    (quote,) = parser.parse(ticker, RECV_NS)  # no book yet: the ticker is the top
    assert quote.type == tick_contract.QUOTE
    parser.parse(snapshot(), RECV_NS)
    assert parser.parse(ticker, RECV_NS) == []
    assert parser.stats.ignored == {"ticker_behind_book": 1}
    # The book is lost (the engine told): the ticker quotes the market again until the next snapshot.
    assert parser.parse(book_frame("update", [("45283.6", "1")], [], 1), RECV_NS) == [LOST]
    (quote,) = parser.parse(ticker, RECV_NS)
    assert quote.type == tick_contract.QUOTE
    parser.parse(snapshot(), RECV_NS)
    assert parser.parse(ticker, RECV_NS) == []


def assert_lost_once(parser: KrakenParser, reason: str) -> None:
    assert dropped(parser) == {reason: 1}
    assert parser.book("BTC/USD") is None
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTC/USD"}
    parser.resync_needed.clear()  # the live client took the request
    # The updates still in flight are refused, and do not ask again.
    assert parser.parse(book_frame("update", [("45283.5", "0.2")], [], checksum(BIDS, ASKS)), RECV_NS) == []
    assert parser.stats.dropped[BOOK_GAP] == (reason == BOOK_GAP) + 1
    assert parser.resync_needed == set()
    # The resubscription's snapshot rebuilds it, and its book is sent again whatever it holds.
    (book_tick,) = parser.parse(snapshot(), RECV_NS)
    assert book_tick.bids == floats(BIDS)
    assert parser.awaiting_snapshot() == set()


def test_a_failed_checksum_drops_the_book_and_asks_once_for_a_resync():
    parser = KrakenParser()
    parser.parse(snapshot(), RECV_NS)
    bids = [("45283.5", "0.20000000"), *BIDS[1:]]
    good = checksum(bids, ASKS)
    assert parser.parse(book_frame("update", [("45283.5", "0.20000000")], [], good ^ 1), RECV_NS) == [LOST]
    assert_lost_once(parser, BOOK_GAP)


def test_a_snapshot_with_a_wrong_checksum_is_no_book():
    parser = KrakenParser()
    assert parser.parse(book_frame("snapshot", BIDS, ASKS, checksum(BIDS, ASKS) + 1), RECV_NS) == []  # none sent
    assert_lost_once(parser, BOOK_GAP)


def test_an_update_that_crosses_the_book_drops_it_and_asks_once_for_a_resync():
    parser = KrakenParser()
    parser.parse(snapshot(), RECV_NS)
    bids = [("45285.2", "1.00000000"), *BIDS]  # a bid at the best ask: an update was missed
    crossed = book_frame("update", [("45285.2", "1.00000000")], [], checksum(bids, ASKS))
    assert parser.parse(crossed, RECV_NS) == [LOST]
    assert_lost_once(parser, BOOK_GAP)


def test_a_crossed_snapshot_is_no_book():
    parser = KrakenParser()
    bids = [("45285.3", "1.00000000"), *BIDS]
    assert parser.parse(snapshot(bids, ASKS), RECV_NS) == []  # no book was sent: none is lost
    assert_lost_once(parser, CROSSED_BOOK)


def test_an_update_before_any_snapshot_asks_once_for_one():
    parser = KrakenParser()
    assert parser.parse(book_frame("update", [("45283.5", "0.2")], [], 1), RECV_NS) == []
    assert dropped(parser) == {BOOK_GAP: 1}
    assert parser.resync_needed == {"BTC/USD"}
    parser.resync_needed.clear()
    assert parser.parse(book_frame("update", [("45283.5", "0.2")], [], 1), RECV_NS) == []
    assert parser.resync_needed == set()
    assert len(parser.parse(snapshot(), RECV_NS)) == 1


@pytest.mark.parametrize(
    ("level", "reason"),
    [
        ('{"price":"45283.6","qty":1.0}', BAD_PRICE),  # a quoted string is not how v2 writes numbers
        ('{"price":-45283.6,"qty":1.0}', BAD_PRICE),
        ('{"price":0,"qty":1.0}', BAD_PRICE),
        ('{"price":4.5e4,"qty":1.0}', BAD_PRICE),
        ('{"price":null,"qty":1.0}', BAD_PRICE),
        ('{"price":45283.6,"qty":-1.0}', BAD_SIZE),
        ('{"price":45283.6,"qty":true}', BAD_SIZE),
        ('{"price":45283.6}', MISSING_FIELD),
        ("[45283.6,1.0]", MISSING_FIELD),
    ],
)
def test_a_bad_level_drops_the_book_under_its_reason(level: str, reason: str) -> None:
    parser = KrakenParser()
    parser.parse(snapshot(), RECV_NS)
    frame = book_frame("update", [], [], 0).replace('"bids":[]', f'"bids":[{level}]')
    assert parser.parse(frame, RECV_NS) == [LOST]
    assert dropped(parser) == {reason: 1}
    assert parser.resync_needed == {"BTC/USD"}


def test_a_frame_without_checksum_or_with_a_bad_time_drops_the_book():
    parser = KrakenParser()
    parser.parse(snapshot(), RECV_NS)
    frame = json.loads(book_frame("update", [], [], checksum(BIDS, ASKS)))
    del frame["data"][0]["checksum"]
    assert parser.parse(json.dumps(frame), RECV_NS) == [LOST]
    assert dropped(parser) == {MISSING_FIELD: 1}
    assert len(parser.parse(snapshot(), RECV_NS)) == 1
    bad_time = book_frame("update", [], [], checksum(BIDS, ASKS), timestamp="yesterday")
    assert parser.parse(bad_time, RECV_NS) == [LOST]
    assert dropped(parser) == {MISSING_FIELD: 1, "bad_timestamp": 1}
    assert parser.stats.books() == {"ticks": 2, "clock_skewed": 0, "lost": 2}


def test_resubscribing_leaves_and_joins_the_book_of_the_lost_markets_only():
    assert kraken.resubscribe_messages(["BTC/USD"]) == [
        {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}, "req_id": 3},
        {
            "method": "subscribe",
            "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25, "snapshot": True},
            "req_id": 3,
        },
    ]
    assert kraken.VENUE.resubscribe_messages is kraken.resubscribe_messages


def test_a_new_connection_forgets_every_book():
    parser = KrakenParser()
    (first,) = parser.parse(snapshot(), RECV_NS)
    parser.parse(book_frame("update", [], [], 1, symbol="ETH/USD"), RECV_NS)
    assert parser.resync_needed == {"ETH/USD"}
    parser.new_connection()
    assert parser.resync_needed == parser.awaiting_snapshot() == set()
    assert parser.book("BTC/USD") is None
    assert parser.parse(snapshot(), RECV_NS) == [first]  # the same book is sent again
