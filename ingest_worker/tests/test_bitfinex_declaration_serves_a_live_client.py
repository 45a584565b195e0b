"""The Bitfinex declaration gives a live client what it needs: URL, subscriptions, market list, symbols."""

from __future__ import annotations

import pytest

from ingest_worker.venues import bitfinex
from ingest_worker.venues.bitfinex import BitfinexParser
from signals_app.contracts.symbols import SymbolTable

# A cut of the real `conf/pub:list:pair:exchange` answer.
PAIRS = [["BTCUSD", "BTCUST", "ETHUST", "UDCUSD", "IOTETH", "TESTBTC:TESTUSD", "AVAX:USD", "DOGUSD", "odd"]]


def test_connect_url_and_subscribe_messages():
    assert bitfinex.connect_url(bitfinex.LIVE_WS_URL) == "wss://api-pub.bitfinex.com/ws/2"
    assert bitfinex.connect_url("ws://127.0.0.1:9001") == "ws://127.0.0.1:9001/ws/2"
    assert bitfinex.subscribe_messages(["tBTCUSD", "tTESTBTC:TESTUSD"]) == [
        {"event": "conf", "flags": 65536 + 131072},  # SEQ_ALL and OB_CHECKSUM
        {"event": "subscribe", "channel": "ticker", "symbol": "tBTCUSD"},
        {"event": "subscribe", "channel": "trades", "symbol": "tBTCUSD"},
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0", "freq": "F0", "len": "25"},
        {"event": "subscribe", "channel": "ticker", "symbol": "tTESTBTC:TESTUSD"},
        {"event": "subscribe", "channel": "trades", "symbol": "tTESTBTC:TESTUSD"},
        {
            "event": "subscribe",
            "channel": "book",
            "symbol": "tTESTBTC:TESTUSD",
            "prec": "P0",
            "freq": "F0",
            "len": "25",
        },
    ]
    # Three channels a market: eight markets fill a connection's 25.
    assert (bitfinex.VENUE.channels_per_market, bitfinex.VENUE.markets_per_connection) == (3, 8)
    assert f"{bitfinex.LIVE_REST_URL}{bitfinex.MARKETS_PATH}" == (
        "https://api-pub.bitfinex.com/v2/conf/pub:list:pair:exchange"
    )


def test_market_list_gives_native_names_and_canonical_assets():
    markets = bitfinex.markets_from_rest(PAIRS)
    assert markets == [
        ("tBTCUSD", "BTC", "USD"),
        ("tBTCUST", "BTC", "USDT"),
        ("tETHUST", "ETH", "USDT"),
        ("tUDCUSD", "USDC", "USD"),
        ("tIOTETH", "IOTA", "ETH"),
        ("tTESTBTC:TESTUSD", "TESTBTC", "TESTUSD"),
        ("tAVAX:USD", "AVAX", "USD"),
        ("tDOGUSD", "MDOGE", "USD"),
    ]
    table = SymbolTable(markets)
    assert table.resolve("tBTCUST") == "BTC/USDT"
    assert table.native("BTC/USDT") == "tBTCUST"
    assert table.resolve("fUSD") is None
    assert bitfinex.markets_from_rest({"error": "x"}) == []
    assert bitfinex.markets_from_rest([]) == []


@pytest.mark.parametrize(
    ("symbol", "native"),
    [
        ("BTC/USD", "tBTCUSD"),
        ("BTC/USDT", "tBTCUST"),
        ("USDC/USD", "tUDCUSD"),
        ("IOTA/ETH", "tIOTETH"),
        ("MDOGE/USD", "tDOGUSD"),
        ("TESTBTC/TESTUSD", "tTESTBTC:TESTUSD"),
        ("AVAX/USD", "tAVAX:USD"),
    ],
)
def test_to_native_is_the_inverse_of_the_offline_table(symbol, native):
    assert bitfinex.to_native(symbol) == native
    assert BitfinexParser.default_symbols().resolve(native) == symbol


def test_funding_and_odd_names_are_no_spot_market():
    table = BitfinexParser.default_symbols()
    for native in ["fUSD", "fUST", "BTCUSD", "tBTC", "tBTCUSDT", "t:USD", "tBTC:", "tbtcusd", "tBTC-:USD", ""]:
        assert table.resolve(native) is None, native
