"""What a live Kraken client needs (v2 URL, subscriptions, market list) and the v2 frames it then receives.

No real v2 recording exists (../shared/market-data/SOURCES.md); the frames here
follow Kraken's v2 reference: objects with `channel`, `type` and a `data` list.
"""

from __future__ import annotations

from ingest_worker.venues import kraken
from ingest_worker.venues.kraken import KrakenParser
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import Tick

RECV_NS = 1_705_670_123_456_789_000  # 2024-01-19T13:15:23.456789Z

ASSET_PAIRS = {
    "error": [],
    "result": {
        "XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD", "base": "XXBT", "quote": "ZUSD", "status": "online"},
        "XETHZEUR": {"altname": "ETHEUR", "wsname": "ETH/EUR", "base": "XETH", "quote": "ZEUR", "status": "online"},
        "XDGUSD": {"altname": "XDGUSD", "wsname": "XDG/USD", "base": "XXDG", "quote": "ZUSD"},
        "USDTUSD": {"altname": "USDTUSD", "wsname": "USDT/USD", "base": "USDT", "quote": "ZUSD", "status": "online"},
        "XBTUSD.d": {"altname": "XBTUSD.d", "base": "XXBT", "quote": "ZUSD"},  # a dark pool: no wsname
        "SOLUSD": {"altname": "SOLUSD", "wsname": "SOL/USD", "base": "SOL", "quote": "ZUSD", "status": "delisted"},
    },
}


def test_the_live_client_speaks_v2():
    assert kraken.NAME == "kraken"
    assert kraken.connect_url(kraken.LIVE_WS_URL) == "wss://ws.kraken.com/v2"
    assert kraken.connect_url("ws://127.0.0.1:9003") == "ws://127.0.0.1:9003/v2"
    assert kraken.connect_url("ws://127.0.0.1:9003/v2") == "ws://127.0.0.1:9003/v2"
    assert kraken.LIVE_REST_URL + kraken.MARKETS_PATH == "https://api.kraken.com/0/public/AssetPairs"
    book, ticker, trade = kraken.subscribe_messages(["BTC/USD", "ETH/EUR"])
    assert book["method"] == ticker["method"] == trade["method"] == "subscribe"
    # The book sets the top (the ticker quotes a market only while it has no book).
    assert book["params"] == {"channel": "book", "symbol": ["BTC/USD", "ETH/EUR"], "depth": 25, "snapshot": True}
    assert kraken.BOOK_DEPTH >= 20  # DEPTH_LEVELS
    assert ticker["params"]["channel"] == "ticker"
    assert ticker["params"]["symbol"] == ["BTC/USD", "ETH/EUR"]
    assert ticker["params"]["event_trigger"] == "bbo"  # a quote on every top-of-book change, not only on trades
    assert trade["params"] == {"channel": "trade", "symbol": ["BTC/USD", "ETH/EUR"], "snapshot": False}


def test_the_market_list_gives_v2_names_and_canonical_symbols():
    markets = kraken.markets_from_rest(ASSET_PAIRS)
    assert markets == [
        ("BTC/USD", "XBT", "USD"),
        ("ETH/EUR", "ETH", "EUR"),
        ("DOGE/USD", "XDG", "USD"),
        ("USDT/USD", "USDT", "USD"),
    ]
    table = SymbolTable(markets)
    assert table.resolve("BTC/USD") == "BTC/USD"
    assert table.resolve("SOL/USD") is None
    for native, _, _ in markets:
        assert kraken.to_native(table.resolve(native) or "") == native


def test_v2_ticker_frames_give_quotes():
    parser = KrakenParser()
    snapshot = (
        '{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":41996.1,"bid_qty":0.03,'
        '"ask":41996.2,"ask_qty":1.59841547,"last":41996.2,"volume":1507.9,"vwap":41667.5,"low":41100.0,'
        '"high":42290.0,"change":-23.1,"change_pct":-0.05}]}'
    )
    update = (
        '{"channel":"ticker","type":"update","data":[{"symbol":"ETH/EUR","bid":2270.5,"bid_qty":4,'
        '"ask":2270.6,"ask_qty":2.5,"last":2270.6,"timestamp":"2024-01-19T13:15:23.401234Z"}]}'
    )
    assert parser.parse(snapshot, RECV_NS) == [
        Tick(
            "kraken",
            "BTC/USD",
            "quote",
            (41996.1 + 41996.2) / 2,
            0.0,
            41996.1,
            41996.2,
            0.03,
            1.59841547,
            RECV_NS // 1_000_000,
            RECV_NS,
        ),
    ]
    (tick,) = parser.parse(update, RECV_NS)
    assert tick == Tick("kraken", "ETH/EUR", "quote", (2270.5 + 2270.6) / 2, 0.0, 2270.5, 2270.6, 4.0, 2.5,
                        1_705_670_123_401, RECV_NS)  # fmt: skip
    assert type(tick.bid_size) is float  # an integer quantity on the wire is still a float size


def test_v2_trade_frames_give_one_tick_per_trade():
    parser = KrakenParser()
    frame = (
        '{"channel":"trade","type":"update","data":['
        '{"symbol":"BTC/USD","side":"sell","price":41996.1,"qty":0.00240000,"ord_type":"market",'
        '"trade_id":65640405,"timestamp":"2024-01-19T13:15:23.123456Z"},'
        '{"symbol":"BTC/USD","side":"sell","price":41995.0,"qty":0.5,"ord_type":"limit",'
        '"trade_id":65640406,"timestamp":"2024-01-19T13:15:23.2Z"}]}'
    )
    assert parser.parse(frame, RECV_NS) == [
        Tick("kraken", "BTC/USD", "trade", 41996.1, 0.0024, None, None, None, None, 1_705_670_123_123, RECV_NS),
        Tick("kraken", "BTC/USD", "trade", 41995.0, 0.5, None, None, None, None, 1_705_670_123_200, RECV_NS),
    ]


def test_v2_control_and_unused_channels_are_counted():
    parser = KrakenParser()
    control = [
        '{"channel":"status","data":[{"api_version":"v2","connection_id":123,"system":"online","version":"2.0.0"}],'
        '"type":"update"}',
        '{"channel":"heartbeat"}',
        '{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"BTC/USD"},"success":true,'
        '"time_in":"2024-01-19T13:15:23.000000Z","time_out":"2024-01-19T13:15:23.000100Z"}',
        '{"method":"pong","req_id":5,"time_in":"2024-01-19T13:15:23.000000Z","time_out":"2024-01-19T13:15:23.1Z"}',
    ]
    ignored = [
        '{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[]}}',
        '{"channel":"ohlc","type":"update","data":[]}',
    ]
    for frame in control + ignored:
        assert parser.parse(frame, RECV_NS) == []
    assert parser.stats.as_dict() == {
        "frames": 6,
        "ticks": 0,
        "control": {"heartbeat": 1, "pong": 1, "status": 1, "subscribe": 1},
        "ignored": {"instrument": 1, "ohlc": 1},
        "dropped": {},
    }


def test_v1_channels_we_do_not_use_are_ignored():
    parser = KrakenParser()
    spread = '[1,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],"spread","XBT/USD"]'
    ohlc = '[2,["1542057314.748456","1542057360.435743","3586.7","3586.7","3586.6","3586.6","3586.7","0.1",1],"ohlc-5","XBT/USD"]'  # noqa: E501
    assert parser.parse(spread, RECV_NS) == parser.parse(ohlc, RECV_NS) == []
    assert parser.stats.as_dict()["ignored"] == {"ohlc": 1, "spread": 1}
