"""GET /api/markets: every cached quote, and the engine's net spread per asset, buy row × sell column."""

from __future__ import annotations

import time

import orjson
import pytest

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from ingest_worker.venues import DEFAULT_FEES_PCT
from signals_app.contracts import keys
from signals_app.contracts.tick import quote
from signals_app.tests import api_fixtures
from signals_app.tests.api_fixtures import cache_quote

api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis

URL = "/api/markets"


@pytest.fixture
def engine_settings(settings):
    settings.FEES_PCT = {"binance": 0.1, "coinbase": 0.6, "kraken": 0.4}
    settings.QUOTE_GROUPS = (("USD", "USDT", "USDC"), ("EUR", "EURC"))
    settings.STALE_MS = 2000
    return settings


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_empty_cache(client, api_redis):
    response = client.get(URL)
    assert response.status_code == 200
    body = orjson.loads(response.content)
    assert body["markets"] == body["exchanges"] == body["assets"] == []
    assert body["matrix"] == {}


def test_markets_are_the_cached_ticks_sorted_by_exchange_and_symbol(client, api_redis, engine_settings):
    now = now_ms()
    stored = {
        ("coinbase", "BTC/USD"): cache_quote(api_redis, "coinbase", "BTC/USD", 102.0, 102.2, now, None, 0.3),
        ("binance", "ETH/USDT"): cache_quote(api_redis, "binance", "ETH/USDT", 2000.0, 2001.0, now),
        ("binance", "BTC/USDT"): cache_quote(api_redis, "binance", "BTC/USDT", 100.0, 100.5, now),
    }
    api_redis.set("price-unrelated", b"x")  # not a price: key, never read
    body = orjson.loads(client.get(URL).content)
    assert [(m["exchange"], m["symbol"]) for m in body["markets"]] == sorted(stored)
    for market in body["markets"]:
        assert market == orjson.loads(stored[(market["exchange"], market["symbol"])])
    assert body["exchanges"] == ["binance", "coinbase"]
    assert body["assets"] == ["BTC", "ETH"]
    assert body["stale_ms"] == 2000
    assert abs(body["timestamp"] - now_ms()) < 5000


def test_matrix_matches_hand_computed_net_spreads(client, api_redis, engine_settings):
    now = now_ms()
    # binance quotes BTC twice in the USD group: it buys at its lowest ask (USDT 100.5) and sells
    # at its highest bid (USDC 100.8), as the engine does.
    cache_quote(api_redis, "binance", "BTC/USDT", 100.0, 100.5, now)
    cache_quote(api_redis, "binance", "BTC/USDC", 100.8, 101.0, now)
    cache_quote(api_redis, "coinbase", "BTC/USD", 102.0, 102.2, now)
    # kraken: a EUR market nobody else has, and a USD market gone stale (3 s > STALE_MS).
    cache_quote(api_redis, "kraken", "BTC/EUR", 90.0, 90.1, now)
    cache_quote(api_redis, "kraken", "BTC/USD", 200.0, 201.0, now - 3000)
    # ETH in two groups (USD-like and BTC-quoted): the better net spread of the two counts.
    cache_quote(api_redis, "binance", "ETH/USDT", 2000.0, 2001.0, now)
    cache_quote(api_redis, "coinbase", "ETH/USD", 2030.0, 2031.0, now)
    cache_quote(api_redis, "binance", "ETH/BTC", 0.0500, 0.0501, now)
    cache_quote(api_redis, "coinbase", "ETH/BTC", 0.0520, 0.0521, now)

    matrix = orjson.loads(client.get(URL).content)["matrix"]

    # Fees: binance 0.1 %, coinbase 0.6 %. net = (bid·(1 − f_sell) − ask·(1 + f_buy)) / (ask·(1 + f_buy)) · 100
    # BTC buy binance 100.5, sell coinbase 102.0: (101.388 − 100.6005) / 100.6005 = +0.7828 %
    # BTC buy coinbase 102.2, sell binance 100.8: (100.6992 − 102.8132) / 102.8132 = −2.0562 %
    # ETH buy binance, sell coinbase: USD group (2017.82 − 2003.001) / 2003.001 = +0.7398 %;
    #   BTC group (0.051688 − 0.0501501) / 0.0501501 = +3.0666 %: the better, 3.0666
    # ETH buy coinbase, sell binance: USD (1998 − 2043.186) / 2043.186 = −2.2115 %; BTC group −4.6985 %
    assert matrix == {
        "BTC": {
            "binance": {"coinbase": 0.7828, "kraken": None},
            "coinbase": {"binance": -2.0562, "kraken": None},
            "kraken": {"binance": None, "coinbase": None},
        },
        "ETH": {
            "binance": {"coinbase": 3.0666},
            "coinbase": {"binance": -2.2115},
        },
    }


def test_matrix_agrees_with_the_engine(client, api_redis, settings):
    """Every cell is the net spread the engine itself reports for that pair (threshold lowered to see all)."""
    settings.FEES_PCT = {"binance": 0.075, "coinbase": 0.4, "okx": 0.1}
    settings.SPREAD_THRESHOLD_PCT = 0.0
    settings.SIGNAL_UPDATE_MS = 0  # every change of figures is a message: the last one is current
    now = now_ms()
    books = [
        ("binance", "SOL/USDT", 99.1, 99.2),
        ("binance", "SOL/USDC", 99.0, 99.15),
        ("coinbase", "SOL/USD", 100.4, 100.5),
        ("okx", "SOL/USDT", 98.0, 98.05),
        ("okx", "SOL/EUR", 94.0, 94.1),  # coinbase -> okx crosses only in the EUR group
        ("coinbase", "SOL/EUR", 92.5, 92.6),
    ]
    config = EngineConfig.from_settings(settings, DEFAULT_FEES_PCT)
    engine = Engine(config)
    signals = []
    for exchange, symbol, bid, ask in books:
        cache_quote(api_redis, exchange, symbol, bid, ask, now)
        signals += engine.on_tick(quote(exchange, symbol, bid, ask, 1.0, 1.0, now, now * 1_000_000), now)
    latest = {(s["buy_exchange"], s["sell_exchange"]): s["net_spread_pct"] for s in signals}
    assert len(latest) == 4, latest  # the books above cross in four directions

    matrix = orjson.loads(client.get(URL).content)["matrix"]["SOL"]
    for (buy, sell), net in latest.items():
        assert matrix[buy][sell] == net, (buy, sell)


def test_every_key_is_read_past_one_scan_batch(client, api_redis, engine_settings):
    now = now_ms()
    for i in range(1200):
        cache_quote(api_redis, "binance", f"A{i:04d}/USDT", 1.0, 1.1, now)
    body = orjson.loads(client.get(URL).content)
    assert len(body["markets"]) == 1200
    assert len(body["assets"]) == 1200


def test_a_price_key_that_is_not_a_tick_is_skipped(client, api_redis, engine_settings):
    cache_quote(api_redis, "binance", "BTC/USDT", 100.0, 100.5, now_ms())
    api_redis.set(keys.price_key("binance", "JUNK/USDT"), b"{not json")
    api_redis.set(keys.price_key("coinbase", "BTC/USD"), orjson.dumps({"exchange": "coinbase", "bid": -1}))
    response = client.get(URL)
    assert response.status_code == 200
    assert [m["symbol"] for m in orjson.loads(response.content)["markets"]] == ["BTC/USDT"]


def test_redis_down_is_a_503(client, settings):
    from arbsite.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get(URL)
    assert response.status_code == 503
    assert orjson.loads(response.content)["error"].startswith("redis unavailable")
