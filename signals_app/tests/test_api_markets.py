"""GET /api/markets: every cached quote, and the engine's net spread per asset, buy row × sell column.

The quotes and the matrix come from a real engine (`EngineService`) on the test's Redis: each
quote goes through its step, its publisher writes the price cache, and its heartbeat step
publishes its matrix. The web process's own settings take no part.
"""

from __future__ import annotations

import time

import orjson
import pytest

from engine_worker.config import EngineConfig
from signals_app.contracts import keys
from signals_app.contracts.signal import decode as decode_signal
from signals_app.tests import api_fixtures
from signals_app.tests.api_fixtures import PublishingEngine

api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis

URL = "/api/markets"


@pytest.fixture
def engine_config() -> EngineConfig:
    return EngineConfig(
        fees_pct={"binance": 0.1, "coinbase": 0.6, "kraken": 0.4},
        quote_groups=(("USD", "USDT", "USDC"), ("EUR", "EURC")),
        stale_ms=2000,
    )


@pytest.fixture
def engine(api_redis, api_redis_server, engine_config, settings) -> PublishingEngine:
    # The web's own settings disagree with the engine's on purpose: the matrix must be the engine's.
    settings.FEES_PCT = {"binance": 5.0, "coinbase": 5.0, "kraken": 5.0}
    settings.STALE_MS = 10
    return PublishingEngine(api_redis_server.url, engine_config)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_empty_cache(client, api_redis):
    response = client.get(URL)
    assert response.status_code == 200
    body = orjson.loads(response.content)
    assert body["markets"] == body["exchanges"] == body["assets"] == []
    assert body["matrix"] == {}


def test_markets_are_the_cached_ticks_sorted_by_exchange_and_symbol(client, api_redis, engine):
    now = now_ms()
    stored = {
        ("coinbase", "BTC/USD"): engine.quote("coinbase", "BTC/USD", 102.0, 102.2, now, None, 0.3),
        ("binance", "ETH/USDT"): engine.quote("binance", "ETH/USDT", 2000.0, 2001.0, now),
        ("binance", "BTC/USDT"): engine.quote("binance", "BTC/USDT", 100.0, 100.5, now),
    }
    api_redis.set("price-unrelated", b"x")  # not a price: key, never read
    engine.publish()
    body = orjson.loads(client.get(URL).content)
    assert [(m["exchange"], m["symbol"]) for m in body["markets"]] == sorted(stored)
    for market in body["markets"]:
        assert market == orjson.loads(stored[(market["exchange"], market["symbol"])])
    assert body["exchanges"] == ["binance", "coinbase"]
    assert body["assets"] == ["BTC", "ETH"]
    assert body["stale_ms"] == 2000
    assert abs(body["timestamp"] - now_ms()) < 5000


def test_matrix_matches_hand_computed_net_spreads(client, api_redis, engine):
    now = now_ms()
    # binance quotes BTC twice in the USD group: it buys at its lowest ask (USDT 100.5) and sells
    # at its highest bid (USDC 100.8), as the engine does.
    engine.quote("binance", "BTC/USDT", 100.0, 100.5, now)
    engine.quote("binance", "BTC/USDC", 100.8, 101.0, now)
    engine.quote("coinbase", "BTC/USD", 102.0, 102.2, now)
    # kraken: a EUR market nobody else has, and a USD market gone stale (3 s > STALE_MS).
    engine.quote("kraken", "BTC/EUR", 90.0, 90.1, now)
    engine.quote("kraken", "BTC/USD", 200.0, 201.0, now - 3000)
    # ETH in two groups (USD-like and BTC-quoted): the better net spread of the two counts.
    engine.quote("binance", "ETH/USDT", 2000.0, 2001.0, now)
    engine.quote("coinbase", "ETH/USD", 2030.0, 2031.0, now)
    engine.quote("binance", "ETH/BTC", 0.0500, 0.0501, now)
    engine.quote("coinbase", "ETH/BTC", 0.0520, 0.0521, now)
    engine.publish()

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


def test_matrix_agrees_with_the_engine(client, api_redis, api_redis_server):
    """Every cell is the net spread the engine itself reports for that pair (threshold lowered to see all)."""
    config = EngineConfig(
        fees_pct={"binance": 0.075, "coinbase": 0.4, "okx": 0.1},
        threshold_pct=0.0,
        update_ms=0,  # every change of figures is a message: the last one is current
    )
    engine = PublishingEngine(api_redis_server.url, config)
    now = now_ms()
    books = [
        ("binance", "SOL/USDT", 99.1, 99.2),
        ("binance", "SOL/USDC", 99.0, 99.15),
        ("coinbase", "SOL/USD", 100.4, 100.5),
        ("okx", "SOL/USDT", 98.0, 98.05),
        ("okx", "SOL/EUR", 94.0, 94.1),  # coinbase -> okx crosses only in the EUR group
        ("coinbase", "SOL/EUR", 92.5, 92.6),
    ]
    for exchange, symbol, bid, ask in books:
        engine.quote(exchange, symbol, bid, ask, now)
    engine.publish()
    # As published, in the order they were raised (the stream keeps it; the history sorts by timestamp).
    signals = [
        decode_signal(fields[keys.SIGNALS_STREAM_FIELD.encode()]) for _, fields in api_redis.xrange(keys.SIGNALS_STREAM)
    ]
    latest = {(s["buy_exchange"], s["sell_exchange"]): s["net_spread_pct"] for s in signals}
    assert len(latest) == 4, latest  # the books above cross in four directions

    matrix = orjson.loads(client.get(URL).content)["matrix"]["SOL"]
    for (buy, sell), net in latest.items():
        assert matrix[buy][sell] == net, (buy, sell)


def test_every_key_is_read_past_one_scan_batch(client, api_redis, engine):
    now = now_ms()
    for i in range(1200):
        engine.quote("binance", f"A{i:04d}/USDT", 1.0, 1.1, now)
    engine.publish()
    body = orjson.loads(client.get(URL).content)
    assert len(body["markets"]) == 1200
    assert len(body["assets"]) == 1200


def test_a_price_key_that_is_not_a_tick_is_skipped(client, api_redis, engine):
    engine.quote("binance", "BTC/USDT", 100.0, 100.5, now_ms())
    engine.publish()
    api_redis.set(keys.price_key("binance", "JUNK/USDT"), b"{not json")
    api_redis.set(keys.price_key("coinbase", "BTC/USD"), orjson.dumps({"exchange": "coinbase", "bid": -1}))
    response = client.get(URL)
    assert response.status_code == 200
    assert [m["symbol"] for m in orjson.loads(response.content)["markets"]] == ["BTC/USDT"]


def test_the_engine_field_says_what_the_matrix_was_computed_with(client, api_redis, engine):
    engine.quote("binance", "BTC/USDT", 100.0, 100.5, now_ms())
    engine.publish()
    body = orjson.loads(client.get(URL).content)
    published = body["engine"]
    assert published["ok"] is True, published
    assert published["error"] is None
    assert 0 <= published["age_ms"] < 5000
    assert published["timestamp"] == body["timestamp"] - published["age_ms"]
    # The engine's settings, never the web's (the fixture gives the web 5 % fees and STALE_MS=10).
    assert published["fees_pct"]["binance"] == 0.1
    assert published["fees_pct"]["coinbase"] == 0.6
    assert body["stale_ms"] == 2000
    assert published["threshold_pct"] == 0.5
    assert published["quote_rates"] == "fixed"
    assert published["quote_groups"] == [["USD", "USDT", "USDC"], ["EUR", "EURC"]]
    assert (published["exchanges"], published["assets"]) == (["binance"], ["BTC"])


def test_no_engine_means_no_matrix_and_says_so(client, api_redis, engine):
    engine.quote("binance", "BTC/USDT", 100.0, 100.5, now_ms())
    engine.quote("coinbase", "BTC/USD", 102.0, 102.2, now_ms())
    engine.publish(beat=False)  # the quotes reach the cache, the engine's matrix never does
    response = client.get(URL)
    assert response.status_code == 200
    body = orjson.loads(response.content)
    assert [m["exchange"] for m in body["markets"]] == ["binance", "coinbase"]
    assert body["matrix"] == {}
    assert body["stale_ms"] is None
    assert body["engine"]["ok"] is False
    assert "is run_engine running?" in body["engine"]["error"]
    assert body["engine"]["fees_pct"] is None


def test_an_old_matrix_is_shown_and_flagged(client, api_redis, engine):
    engine.quote("binance", "BTC/USDT", 100.0, 100.5, now_ms())
    engine.quote("coinbase", "BTC/USD", 102.0, 102.2, now_ms())
    engine.publish()
    published = orjson.loads(api_redis.get(keys.ENGINE_MARKETS))
    published["timestamp"] -= 6000  # an engine whose clock is behind, or a key kept too long
    api_redis.set(keys.ENGINE_MARKETS, orjson.dumps(published))
    body = orjson.loads(client.get(URL).content)
    assert body["matrix"]["BTC"]["binance"]["coinbase"] == 0.7828
    assert body["engine"]["ok"] is False
    assert body["engine"]["error"].endswith("s old")


def test_a_malformed_matrix_is_refused_and_said(client, api_redis):
    api_redis.set(keys.ENGINE_MARKETS, orjson.dumps({"timestamp": now_ms(), "matrix": []}))
    body = orjson.loads(client.get(URL).content)
    assert body["matrix"] == {}
    assert body["engine"]["ok"] is False
    assert body["engine"]["error"].startswith("malformed engine matrix: ")


def test_redis_down_is_a_503(client, settings):
    from arbsite.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get(URL)
    assert response.status_code == 503
    assert orjson.loads(response.content)["error"].startswith("redis unavailable")
