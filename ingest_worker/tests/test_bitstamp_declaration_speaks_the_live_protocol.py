"""The Bitstamp declaration gives a live client what it needs: URL, subscriptions, market list, names."""

from __future__ import annotations

from typing import Any

from ingest_worker.venues import bitstamp
from signals_app.contracts.symbols import SymbolTable


def test_live_endpoints():
    assert bitstamp.NAME == "bitstamp"
    assert bitstamp.LIVE_WS_URL == "wss://ws.bitstamp.net"
    assert bitstamp.connect_url("ws://127.0.0.1:9001") == "ws://127.0.0.1:9001"
    assert bitstamp.LIVE_REST_URL + bitstamp.MARKETS_PATH == "https://www.bitstamp.net/api/v2/trading-pairs-info/"


def test_one_subscribe_message_per_channel_and_pair():
    assert bitstamp.subscribe_messages(["btcusd", "usdteur"]) == [
        {"event": "bts:subscribe", "data": {"channel": "order_book_btcusd"}},
        {"event": "bts:subscribe", "data": {"channel": "live_trades_btcusd"}},
        {"event": "bts:subscribe", "data": {"channel": "order_book_usdteur"}},
        {"event": "bts:subscribe", "data": {"channel": "live_trades_usdteur"}},
    ]
    assert bitstamp.subscribe_messages([]) == []


def test_markets_from_the_trading_pairs_info_answer():
    payload: list[dict[str, Any]] = [
        {"name": "BTC/USD", "url_symbol": "btcusd", "trading": "Enabled", "base_decimals": 8},
        {"name": "USDT/EUR", "url_symbol": "usdteur", "trading": "Enabled"},
        {"name": "XLM/GBP", "url_symbol": "xlmgbp", "trading": "Disabled"},
        {"name": "GBP/USD", "url_symbol": "gbpusd"},
    ]
    markets = bitstamp.markets_from_rest(payload)
    assert markets == [("btcusd", "BTC", "USD"), ("usdteur", "USDT", "EUR"), ("gbpusd", "GBP", "USD")]
    table = SymbolTable(markets)
    assert table.resolve("usdteur") == "USDT/EUR"
    assert table.resolve("xlmgbp") is None
    assert table.native("BTC/USD") == "btcusd"


def test_to_native_and_the_offline_split():
    assert bitstamp.to_native("BTC/USD") == "btcusd"
    assert bitstamp.to_native("USDT/EUR") == "usdteur"
    assert bitstamp.split_pair("gusdusd") == ("GUSD", "USD")
    assert bitstamp.split_pair("btcusdt") == ("BTC", "USDT")
    assert bitstamp.split_pair("usdcusdt") == ("USDC", "USDT")
    assert bitstamp.split_pair("BTCUSD") is None
    assert bitstamp.split_pair("usd") is None
    assert bitstamp.split_pair("btc_usd") is None
