"""The Gemini declaration gives a live client what it needs: URL, subscribe message, market list, names."""

from __future__ import annotations

from ingest_worker.venues import gemini
from ingest_worker.venues.gemini import GeminiParser
from signals_app.contracts.symbols import SymbolTable


def test_connect_url_and_subscribe_message():
    assert gemini.connect_url(gemini.LIVE_WS_URL) == "wss://api.gemini.com/v2/marketdata"
    assert gemini.subscribe_messages(["BTCUSD", "ETHBTC"]) == [
        {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["BTCUSD", "ETHBTC"]}]}
    ]


def test_to_native_is_the_inverse_of_the_symbol_table():
    table = GeminiParser.default_symbols()
    for native in ["BTCUSD", "ETHBTC", "ZECLTC", "BTCGBP", "LINKETH", "BTCGUSD", "USDTUSD", "ETHDAI", "BTCSGD"]:
        symbol = table.resolve(native)
        assert symbol is not None
        assert gemini.to_native(symbol) == native
    assert table.resolve("BTCGUSD") == "BTC/GUSD"  # GUSD is matched before USD
    assert table.resolve("USDTUSD") == "USDT/USD"
    assert table.resolve("BTCGUSDPERP") is None  # perpetuals are not spot markets


def test_markets_from_the_symbols_list_and_from_symbol_details():
    names = ["btcusd", "ethbtc", "zecltc", "btcgbp", "btcgusdperp", 42]
    assert gemini.markets_from_rest(names) == [
        ("BTCUSD", "BTC", "USD"),
        ("ETHBTC", "ETH", "BTC"),
        ("ZECLTC", "ZEC", "LTC"),
        ("BTCGBP", "BTC", "GBP"),
    ]
    details = [
        {"symbol": "BTCUSD", "base_currency": "BTC", "quote_currency": "USD", "status": "open"},
        {"symbol": "OLDUSD", "base_currency": "OLD", "quote_currency": "USD", "status": "closed"},
    ]
    assert gemini.markets_from_rest(details) == [("BTCUSD", "BTC", "USD")]
    assert gemini.markets_from_rest({"error": "x"}) == []


def test_a_parser_on_the_live_market_list_knows_only_listed_markets():
    parser = GeminiParser(SymbolTable(gemini.markets_from_rest(["btcusd"])))
    assert parser.symbols.resolve("BTCUSD") == "BTC/USD"
    assert parser.symbols.resolve("ETHUSD") is None
