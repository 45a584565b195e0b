"""Bitfinex books: the recorded `book` frames give book ticks equal to a book rebuilt here by
Bitfinex's rules, at several depths; the checksum Bitfinex sends (`[chanId,"cs",CHECKSUM]`
with the conf flag OB_CHECKSUM) is the signed CRC32 of the top 25 levels as the server spells
them, so every checksum computed here from the recorded frames' own number texts verifies,
as do two books whose server checksums are published; a corrupted checksum, a crossed book or
an update before the snapshot drops the book and asks exactly once for a new one (unsubscribe
by the book's chanId, subscribe again), and the ticker stands in while there is none.

The recordings (conf flags 65536, SEQ_ALL only) hold no `cs` frame of their own: the checksums
here are made from the recorded numbers as the wire spelled them, independently of the
parser's own spelling (`js_number`).
"""

from __future__ import annotations

import json
import re
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from ingest_worker.tests.recorded import frames, lost
from ingest_worker.tests.test_bitfinex_ticks_match_their_frames import Expectation, check_file
from ingest_worker.venues.base import BAD_PRICE, BOOK_GAP, CROSSED_BOOK
from ingest_worker.venues.bitfinex import BitfinexParser, book_checksum, js_number

RECV_NS = 1_618_677_543_960_000_000


def recorded_books(market_data: Path) -> list[tuple[str, int]]:
    folder = market_data / "bitfinex"
    return sorted(frames(folder / "control.jsonl") + frames(folder / "book.jsonl"), key=lambda item: item[1])


@pytest.mark.parametrize("depth", [1, 5, 25])
def test_book_ticks_match_a_book_rebuilt_from_the_recorded_frames(market_data, depth):
    parser = BitfinexParser(max_age_ms=None, depth_levels=depth)
    expect = Expectation(None, depth)
    recorded = recorded_books(market_data)
    made = check_file(parser, expect, recorded, f"bitfinex book depth {depth}")
    assert made > 400  # 471 at depth 1, more deeper
    assert parser.stats.as_dict()["dropped"] == {}
    assert parser.resync_needed == parser.awaiting_snapshot() == set()


# [PRICE,COUNT,AMOUNT] with each number's text as sent.
LEVEL = re.compile(r"\[(-?[0-9.e+-]+),([0-9]+),(-?[0-9.e+-]+)\]")


class TextBook:
    """One channel's book keyed by the wire's own number texts: the checksum's input as sent."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}  # price text -> amount text
        self.asks: dict[str, str] = {}

    def apply(self, price: str, count: str, amount: str) -> None:
        side = self.bids if Decimal(amount) > 0 else self.asks
        if count == "0":
            side.pop(price, None)
        else:
            side[price] = amount

    def checksum(self) -> int:
        bids = sorted(self.bids, key=Decimal, reverse=True)[:25]
        asks = sorted(self.asks, key=Decimal)[:25]
        parts: list[str] = []
        for index in range(25):
            if index < len(bids):
                parts += [bids[index], self.bids[bids[index]]]
            if index < len(asks):
                parts += [asks[index], self.asks[asks[index]]]
        crc = zlib.crc32(":".join(parts).encode())
        return crc - 2**32 if crc >= 2**31 else crc  # Bitfinex sends it signed


def test_every_checksum_of_the_recorded_books_verifies(market_data):
    parser = BitfinexParser(max_age_ms=None)
    books: dict[int, TextBook] = {}
    book_channels: set[int] = set()
    checked = 0
    for text, recv_ns in recorded_books(market_data):
        parser.parse(text, recv_ns)
        msg = json.loads(text)
        if isinstance(msg, dict):
            if msg.get("event") == "subscribed" and msg["channel"] == "book":
                book_channels.add(msg["chanId"])
            continue
        chan_id = msg[0]
        if chan_id not in book_channels or msg[1] == "hb":
            continue
        body = text[text.index(",") + 1 : text.rindex(",")]  # the payload's text, as sent
        if body.startswith("[["):
            books[chan_id] = TextBook()
        for level in LEVEL.findall(body):
            books[chan_id].apply(*level)
        parser.parse(f'[{chan_id},"cs",{books[chan_id].checksum()}]', recv_ns)
        checked += 1
    assert checked == 1600
    assert parser.stats.control["cs"] == checked
    assert parser.stats.as_dict()["dropped"] == {}
    assert parser.resync_needed == set()


# Two books with the checksum Bitfinex's server gave for them, as published with the test suite
# of Bitfinex's Python client (bitfinexcom/bitfinex-api-py, tests/test_ws_orderbook.py): the
# snapshot's levels, then updates, then the checksum. The second has prices below 1e-6, which
# JavaScript spells 7e-7.
PUBLISHED = [
    (
        "[[0.0000886,1,1060.55466114],[0.00008859,1,1000],[0.00008858,1,2713.47159343],[0.00008857,1,4276.92870916],"
        "[0.00008856,2,6764.75562319],[0.00008854,1,5641.48532401],[0.00008853,1,2255.92632223],[0.0000885,1,2256.69584601],"
        "[0.00008848,2,3630.3],[0.00008845,1,28195.70625766],[0.00008844,1,15571.7],[0.00008843,1,2500],"
        "[0.00008841,1,64196.16117814],[0.00008838,1,7500],[0.00008837,2,2764.12999012],[0.00008834,2,10886.476298],"
        "[0.00008831,1,20000],[0.0000883,1,1000],[0.00008829,2,2517.22175358],[0.00008828,1,450.45],[0.00008827,1,13000],"
        "[0.00008824,1,1500],[0.0000882,1,300],[0.00008817,1,3000],[0.00008816,1,100],[0.00008864,1,-481.8549041],"
        "[0.0000887,2,-2141.77009092],[0.00008871,1,-2256.45433182],[0.00008872,1,-2707.58122743],"
        "[0.00008874,1,-5640.31794092],[0.00008876,1,-29004.93294912],[0.00008878,1,-2500],[0.0000888,1,-20000],"
        "[0.00008881,2,-2880.15595827],[0.00008882,1,-27705.42933984],[0.00008883,1,-4509.83708214],[0.00008884,1,-1500],"
        "[0.00008885,1,-2500],[0.00008888,1,-902.91405442],[0.00008889,1,-900],[0.00008891,1,-7500],"
        "[0.00008894,1,-775.08564697],[0.00008896,1,-150],[0.00008899,3,-11628.02590049],[0.000089,2,-1299.7],"
        "[0.00008902,2,-4841.8],[0.00008904,3,-25320.46250083],[0.00008909,1,-14000],[0.00008913,1,-123947.999],"
        "[0.00008915,2,-28019.6]]",
        ["[0.00008915,0,-1]", "[0.00008837,1,56.54876269]", "[0.00008873,1,-15699.9]"],
        30026640,
    ),
    (
        "[[0.00000121,5,249013.0209708],[0.0000012,6,518315.33310128],[0.00000119,4,566200.89],[0.00000118,2,260000],"
        "[0.00000117,1,100000],[0.00000116,2,160000],[0.00000114,1,60000],[0.00000113,2,198500],[0.00000112,1,60000],"
        "[0.0000011,1,60000],[0.00000106,2,113868.87735849],[0.00000105,2,105000],[0.00000103,1,3000],"
        "[0.00000102,2,105000],[0.00000101,2,202970],[0.000001,2,21000],[7e-7,1,10000],[6.6e-7,1,10000],[6e-7,1,100000],"
        "[4.9e-7,1,10000],[2.5e-7,1,2000],[6e-8,1,100000],[5e-8,1,200000],[1e-8,4,640000],[0.00000122,7,-312043.19],"
        "[0.00000123,6,-415094.8939744],[0.00000124,5,-348181.23],[0.00000125,1,-12000],[0.00000126,2,-143872.31],"
        "[0.00000127,1,-5000],[0.0000013,1,-5000],[0.00000134,1,-8249.18938656],[0.00000135,2,-230043.1337899],"
        "[0.00000136,1,-13161.25184766],[0.00000145,1,-2914],[0.0000015,3,-54448.5],[0.00000152,2,-5538.54849594],"
        "[0.00000153,1,-62691.75475079],[0.00000159,1,-2914],[0.0000016,1,-52631.10296831],[0.00000164,1,-4000],"
        "[0.00000166,1,-3831.46784605],[0.00000171,1,-14575.17730379],[0.00000174,1,-3124.81815395],"
        "[0.0000018,1,-18000],[0.00000182,1,-16000],[0.00000186,1,-4000],[0.00000189,1,-10000.686624],"
        "[0.00000191,1,-14500]]",
        ["[0.00000121,4,228442.6609708]", "[0.00000121,6,304023.8109708]"],
        1770440002,
    ),
]


def subscribed(chan_id: int, native: str = "tXRPBTC") -> str:
    return json.dumps(
        {"event": "subscribed", "channel": "book", "chanId": chan_id, "symbol": native, "prec": "P0", "len": "25"}
    )


@pytest.mark.parametrize(("snapshot", "updates", "checksum"), PUBLISHED)
def test_the_published_server_checksums_verify(snapshot, updates, checksum):
    parser = BitfinexParser(max_age_ms=None)
    parser.parse(subscribed(123), RECV_NS)
    parser.parse(f"[123,{snapshot}]", RECV_NS)
    for update in updates:
        parser.parse(f"[123,{update}]", RECV_NS)
    assert parser.parse(f'[123,"cs",{checksum}]', RECV_NS) == []
    assert parser.stats.control["cs"] == 1
    assert parser.stats.as_dict()["dropped"] == {}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (60400, "60400"),
        (1.0, "1"),
        (-1, "-1"),
        (0.00002505, "0.00002505"),
        (0.000001, "0.000001"),
        (9.1e-7, "9.1e-7"),
        (1e-8, "1e-8"),
        (-123947.999, "-123947.999"),
        (1e21, "1e+21"),
        (1.5e22, "1.5e+22"),
        (123456789012.5, "123456789012.5"),
    ],
)
def test_numbers_are_spelled_as_javascript_does(value, text):
    assert js_number(value) == text


def test_the_checksum_interleaves_bids_and_asks_and_is_signed():
    crc = zlib.crc32(b"100:2:101:-3:99:1")
    assert book_checksum(["100:2", "99:1"], ["101:-3"]) == (crc - 2**32 if crc >= 2**31 else crc)


BOOK = "[[100.5,1,2],[100.4,2,3],[100.6,1,-2],[100.7,1,-4]]"


def booked_parser() -> BitfinexParser:
    parser = BitfinexParser()
    parser.parse(subscribed(7, "tBTCUSD"), RECV_NS)
    parser.parse(json.dumps({"event": "subscribed", "channel": "ticker", "chanId": 8, "symbol": "tBTCUSD"}), RECV_NS)
    [tick] = parser.parse(f"[7,{BOOK}]", RECV_NS)
    assert (tick.type, tick.bids, tick.asks) == ("book", [[100.5, 2.0], [100.4, 3.0]], [[100.6, 2.0], [100.7, 4.0]])
    return parser


def good_checksum() -> int:
    return book_checksum(["100.5:2", "100.4:3"], ["100.6:-2", "100.7:-4"])


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (f'[7,"cs",{good_checksum() + 1}]', BOOK_GAP),  # a corrupted checksum
        ("[7,[100.65,1,5]]", CROSSED_BOOK),  # a bid above the best ask
        ("[7,[-1,1,5]]", BAD_PRICE),
    ],
)
def test_a_book_that_fails_drops_and_asks_once_for_a_new_one(frame, reason):
    parser = booked_parser()
    assert parser.parse(f'[7,"cs",{good_checksum()}]', RECV_NS) == []  # the good one passes
    # The book sent is gone: the engine is told so, once.
    assert parser.parse(frame, RECV_NS) == [lost("bitfinex", "BTC/USD", RECV_NS)]
    assert parser.stats.as_dict()["dropped"] == {reason: 1}
    assert parser.stats.books() == {"ticks": 1, "clock_skewed": 0, "lost": 1}
    assert parser.resync_needed == parser.awaiting_snapshot() == {"tBTCUSD"}
    parser.resync_needed.clear()  # the live client took the request
    # Updates and checksums in flight until the new snapshot: ignored, never a second drop or request.
    assert parser.parse("[7,[100.3,1,1]]", RECV_NS) == []
    assert parser.parse(f'[7,"cs",{good_checksum()}]', RECV_NS) == []
    assert parser.resync_needed == set()
    assert parser.stats.as_dict()["dropped"] == {reason: 1}
    assert parser.stats.books_lost == 1
    # Meanwhile the ticker gives the top (no sizes: they are 25-level sums).
    [quote] = parser.parse("[8,[100.5,10,100.6,12,0,0,100.5,1,101,99]]", RECV_NS)
    assert (quote.type, quote.bid, quote.ask, quote.bid_size) == ("quote", 100.5, 100.6, None)
    # The resync: unsubscribe the book by its chanId, subscribe it again.
    assert parser.resubscribe_messages(["tBTCUSD"]) == [
        {"event": "unsubscribe", "chanId": 7},
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0", "freq": "F0", "len": "25"},
    ]
    parser.parse('{"event":"unsubscribed","status":"OK","chanId":7}', RECV_NS)
    parser.parse(subscribed(9, "tBTCUSD"), RECV_NS)
    [tick] = parser.parse(f"[9,{BOOK}]", RECV_NS)
    assert tick.type == "book"
    assert parser.awaiting_snapshot() == set()
    assert parser.parse("[8,[100.5,10,100.6,12,0,0,100.5,1,101,99]]", RECV_NS) == []  # the book has the top again
    assert parser.stats.ignored["ticker_behind_book"] == 1


def test_an_update_before_the_snapshot_drops_and_asks_once():
    parser = BitfinexParser()
    parser.parse(subscribed(7, "tBTCUSD"), RECV_NS)
    assert parser.parse("[7,[100.5,1,2]]", RECV_NS) == []
    assert parser.parse("[7,[100.4,1,2]]", RECV_NS) == []
    assert parser.stats.as_dict()["dropped"] == {BOOK_GAP: 1}  # the second is in flight after the loss
    assert parser.stats.ignored["book_awaiting_snapshot"] == 1
    assert parser.resync_needed == {"tBTCUSD"}
    assert len(parser.parse(f"[7,{BOOK}]", RECV_NS)) == 1
    assert parser.awaiting_snapshot() == set()


def test_a_new_connection_forgets_books_and_requests():
    parser = booked_parser()
    parser.parse("[7,[100.65,1,5]]", RECV_NS)
    assert parser.resync_needed == {"tBTCUSD"}
    parser.new_connection()
    assert parser.resync_needed == parser.awaiting_snapshot() == set()
    assert parser.resubscribe_messages(["tBTCUSD"]) == [
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0", "freq": "F0", "len": "25"}
    ]
