"""A parser that drops a book says which market needs a fresh snapshot (`resync_needed`), once per
loss, and stops asking when the snapshot has come; the venue module says how to ask for it."""

from __future__ import annotations

import json
import zlib

from ingest_worker.tests.recorded import lost
from ingest_worker.venues import gemini as gemini_venue
from ingest_worker.venues.base import BAD_PRICE, BOOK_GAP, ParseStats, VenueParser
from ingest_worker.venues.binance import BinanceParser
from ingest_worker.venues.bitfinex import BitfinexParser
from ingest_worker.venues.gemini import GeminiParser
from ingest_worker.venues.kraken import KrakenParser

RECV_NS = 1_618_677_942_700_000_000
TIME_S = "1618677942.657535"


def gemini(symbol: str, changes: list[list[str]], snapshot: bool = False) -> str:
    frame: dict[str, object] = {"type": "l2_updates", "symbol": symbol, "changes": changes}
    if snapshot:
        frame |= {"trades": [], "auction_events": []}
    return json.dumps(frame)


BOOK = [["buy", "100.5", "1.5"], ["buy", "100.4", "3"], ["sell", "100.6", "2.5"], ["sell", "100.7", "4"]]


def test_a_gemini_update_that_crosses_the_book_asks_once_for_the_symbol_until_its_snapshot():
    parser = GeminiParser()
    assert len(parser.parse(gemini("BTCUSD", BOOK, snapshot=True), RECV_NS)) == 1
    assert len(parser.parse(gemini("ETHUSD", BOOK, snapshot=True), RECV_NS)) == 1
    assert parser.resync_needed == set()
    # A bid above the best ask: the book missed the update that took that ask away; the engine is
    # told the book it was sent is gone.
    assert parser.parse(gemini("BTCUSD", [["buy", "100.8", "1"]]), RECV_NS) == [lost("gemini", "BTC/USD", RECV_NS)]
    assert parser.stats.dropped[BOOK_GAP] == 1
    assert parser.resync_needed == parser.awaiting_snapshot() == {"BTCUSD"}
    # The updates still in flight are refused, and do not ask again (nor say the book is gone again).
    parser.resync_needed.clear()  # the live client took the request
    assert parser.parse(gemini("BTCUSD", [["sell", "100.65", "1"]]), RECV_NS) == []
    assert parser.stats.dropped[BOOK_GAP] == 2
    assert parser.resync_needed == set()
    assert parser.awaiting_snapshot() == {"BTCUSD"}
    # The other symbol's book carries on.
    [quote] = parser.parse(gemini("ETHUSD", [["sell", "100.55", "1"]]), RECV_NS)
    assert (quote.symbol, quote.ask) == ("ETH/USD", 100.55)
    # The resubscription's snapshot rebuilds the book: quotes flow again, and nothing is awaited.
    [quote] = parser.parse(gemini("BTCUSD", BOOK, snapshot=True), RECV_NS)
    assert (quote.bid, quote.ask) == (100.5, 100.6)
    assert parser.awaiting_snapshot() == set()
    [quote] = parser.parse(gemini("BTCUSD", [["buy", "100.55", "2"]]), RECV_NS)
    assert quote.bid == 100.55
    # A second loss asks again, and says again that the book is gone.
    assert parser.parse(gemini("BTCUSD", [["sell", "nan", "1"]]), RECV_NS) == [lost("gemini", "BTC/USD", RECV_NS)]
    assert parser.stats.dropped[BAD_PRICE] == 1
    assert parser.resync_needed == {"BTCUSD"}


def test_a_loss_after_a_one_sided_moment_still_tells_the_engine():
    """A side that empties for a moment is no loss (the engine keeps the last book sent); a drop
    after it still is, and the engine is told."""
    parser = GeminiParser()
    parser.parse(gemini("BTCUSD", BOOK, snapshot=True), RECV_NS)
    assert parser.parse(gemini("BTCUSD", [["sell", "100.6", "0"], ["sell", "100.7", "0"]]), RECV_NS) == []
    assert parser.stats.books_lost == 0
    assert parser.parse(gemini("BTCUSD", [["buy", "100.8", "1"], ["sell", "100.75", "1"]]), RECV_NS) == [
        lost("gemini", "BTC/USD", RECV_NS)
    ]
    assert parser.stats.books_lost == 1


def test_a_binance_reseed_that_fails_tells_the_engine_on_its_own_answer():
    parser = BinanceParser()
    url = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    body = json.dumps({"lastUpdateId": 10, "bids": [["100.0", "1"]], "asks": [["101.0", "1"]]})
    [book] = parser.seed(url, body, RECV_NS)
    assert book.type == "book"
    assert parser.seed(url, "{not json", RECV_NS + 5) == [lost("binance", "BTC/USDT", RECV_NS + 5)]
    assert parser.parse('{"result":null,"id":1}', RECV_NS + 6) == []  # nothing left over for the next frame


def test_a_gemini_snapshot_with_a_bad_level_asks_for_another():
    parser = GeminiParser()
    # No book of it was sent: no book-lost tick either.
    assert parser.parse(gemini("BTCUSD", [*BOOK, ["sell", "-1", "1"]], snapshot=True), RECV_NS) == []
    assert parser.resync_needed == {"BTCUSD"}


def test_a_new_connection_forgets_pending_requests_and_books():
    parser = GeminiParser()
    parser.parse(gemini("BTCUSD", BOOK, snapshot=True), RECV_NS)
    assert parser.parse(gemini("BTCUSD", [["buy", "100.8", "1"]]), RECV_NS) == [lost("gemini", "BTC/USD", RECV_NS)]
    assert parser.resync_needed == {"BTCUSD"}
    parser.new_connection()
    assert parser.resync_needed == parser.awaiting_snapshot() == set()
    assert not parser.has_book("BTCUSD")
    # The new connection's first l2_updates of the symbol is its book.
    assert len(parser.parse(gemini("BTCUSD", BOOK), RECV_NS)) == 1


def test_gemini_resubscribes_by_leaving_and_joining_the_l2_subscription():
    assert gemini_venue.resubscribe_messages(["BTCUSD", "ETHUSD"]) == [
        {"type": "unsubscribe", "subscriptions": [{"name": "l2", "symbols": ["BTCUSD", "ETHUSD"]}]},
        {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["BTCUSD", "ETHUSD"]}]},
    ]


def test_a_kraken_book_that_fails_its_checksum_asks_once_for_the_pair():
    parser = KrakenParser()
    snapshot = json.dumps(
        [1, {"as": [["100.6", "2.5", TIME_S]], "bs": [["100.5", "1.5", TIME_S]]}, "book-10", "XBT/USD"]
    )
    assert len(parser.parse(snapshot, RECV_NS)) == 1
    good = zlib.crc32(b"1005510" + b"100625" + b"100515")
    update = [1, {"a": [["100.55", "1.0", TIME_S]], "c": str(good)}, "book-10", "XBT/USD"]
    assert len(parser.parse(json.dumps(update), RECV_NS)) == 1
    assert parser.resync_needed == set()
    bad = [1, {"a": [["100.54", "1.0", TIME_S]], "c": "12345"}, "book-10", "XBT/USD"]
    assert parser.parse(json.dumps(bad), RECV_NS) == [lost("kraken", "BTC/USD", RECV_NS)]
    assert parser.resync_needed == parser.awaiting_snapshot() == {"XBT/USD"}
    parser.resync_needed.clear()
    # No book to apply it to: no second request, and no second book-lost tick.
    assert parser.parse(json.dumps(bad), RECV_NS) == []
    assert parser.resync_needed == set()
    assert len(parser.parse(snapshot, RECV_NS)) == 1
    assert parser.awaiting_snapshot() == set()


def test_parsers_without_books_never_ask():
    parser: VenueParser = BitfinexParser()
    for frame in ("[1,[1,2,3,4]]", '{"event":"info","version":2}', "garbage", '[5,"hb",1]'):
        parser.parse(frame, RECV_NS)
    assert parser.resync_needed == parser.awaiting_snapshot() == set()


def test_the_counters_of_several_parsers_add_up():
    first, second = GeminiParser(), GeminiParser()
    first.parse(gemini("BTCUSD", BOOK, snapshot=True), RECV_NS)
    first.parse('{"type":"heartbeat","timestamp":1}', RECV_NS)
    second.parse("not json", RECV_NS)
    second.parse('{"type":"heartbeat","timestamp":1}', RECV_NS)
    second.parse(gemini("BTCUSD", [["buy", "1", "1"]]), RECV_NS)  # an update before any snapshot is the book
    total = ParseStats.combined([first.stats, second.stats]).as_dict()
    assert total == {
        "frames": 5,
        "ticks": 1,
        "control": {"heartbeat": 2},
        "ignored": {"one_sided_book": 1},
        "dropped": {"malformed_json": 1},
    }
    assert ParseStats.combined([]).as_dict() == ParseStats().as_dict()
