"""The OKX declaration gives a live client what OKX v5 expects: endpoint, subscribe requests, market list."""

from __future__ import annotations

import json

from ingest_worker.venues import okx
from signals_app.contracts.symbols import SymbolTable


def test_live_endpoints():
    assert okx.connect_url(okx.LIVE_WS_URL) == "wss://ws.okx.com:8443/ws/v5/public"
    assert okx.LIVE_REST_URL + okx.MARKETS_PATH == "https://www.okx.com/api/v5/public/instruments?instType=SPOT"
    assert okx.connect_url("ws://127.0.0.1:9001") == "ws://127.0.0.1:9001/ws/v5/public"


def test_subscribe_asks_for_the_book_tickers_and_trades_of_every_market():
    assert okx.subscribe_messages(["BTC-USDT"]) == [
        {
            "op": "subscribe",
            "args": [
                {"channel": "books", "instId": "BTC-USDT"},
                {"channel": "tickers", "instId": "BTC-USDT"},
                {"channel": "trades", "instId": "BTC-USDT"},
            ],
        }
    ]
    assert okx.subscribe_messages([]) == []


def test_a_lost_book_is_resubscribed_by_leaving_and_joining_its_books_channel():
    assert okx.resubscribe_messages(["BTC-USDT"]) == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]},
        {"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]},
    ]
    assert okx.VENUE.resubscribe_messages is okx.resubscribe_messages


def test_many_markets_are_split_into_requests_okx_accepts():
    natives = [f"COIN{number}-USDT" for number in range(333)]
    messages = okx.subscribe_messages(natives)
    args = [arg for message in messages for arg in message["args"]]
    channels = ("books", "tickers", "trades")
    assert args == [{"channel": channel, "instId": native} for native in natives for channel in channels]
    for message in messages:
        assert message["op"] == "subscribe"
        assert len(json.dumps(message, separators=(",", ":"))) < 4096  # OKX's request size limit


def test_markets_from_the_instruments_answer():
    # The shape of GET /api/v5/public/instruments?instType=SPOT (fields trimmed).
    payload = {
        "code": "0",
        "msg": "",
        "data": [
            {"instType": "SPOT", "instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT", "state": "live"},
            {"instType": "SPOT", "instId": "ETH-USDC", "baseCcy": "ETH", "quoteCcy": "USDC", "state": "live"},
            {"instType": "SPOT", "instId": "NEW-USDT", "baseCcy": "NEW", "quoteCcy": "USDT", "state": "preopen"},
            {"instType": "SPOT", "instId": "OLD-USDT", "baseCcy": "OLD", "quoteCcy": "USDT", "state": "suspend"},
        ],
    }
    markets = okx.markets_from_rest(payload)
    assert markets == [("BTC-USDT", "BTC", "USDT"), ("ETH-USDC", "ETH", "USDC")]
    table = SymbolTable(markets)
    assert table.resolve("BTC-USDT") == "BTC/USDT"
    assert table.native("ETH/USDC") == "ETH-USDC"
    assert table.resolve("NEW-USDT") is None


def test_canonical_symbols_and_back():
    table = okx.OkxParser.default_symbols()
    for native in ("BTC-USDT", "ETH-USDC", "1INCH-USDT", "XBT-EUR"):
        symbol = table.resolve(native)
        assert symbol is not None
        assert okx.to_native(symbol) == native.replace("XBT", "BTC")  # the shared aliases apply
    assert table.resolve("XBT-EUR") == "BTC/EUR"
    assert okx.to_native("BTC/USDT") == "BTC-USDT"


def test_derivative_ids_are_told_from_spot_ids():
    assert okx.derivative_kind("BTC-USD-220527") == "futures"
    assert okx.derivative_kind("UNI-USD-SWAP") == "swap"
    assert okx.derivative_kind("BTC-USD-210924-42000-P") == "option"
    for other in ("BTC-USDT", "BTC-USD-22052", "BTC-USD-SWAP-X", "btc-usd-swap", "BTC-USD-210924-42000-X", ""):
        assert okx.derivative_kind(other) is None, other
