"""A market whose mid lies more than MAX_MARKET_DEVIATION_PCT from the median mid of the asset's other
venues (the same ticker for two tokens, a halted market) takes no part and is listed as suspect:
never a false signal from it, while the real opportunities beside it still open."""

from __future__ import annotations

from engine_worker.config import EngineConfig
from engine_worker.engine import Engine
from signals_app.contracts import tick
from signals_app.contracts.heartbeat import decode_heartbeat, encode_heartbeat

T0 = 1_705_670_123_000
FEES = {"binance": 0.1, "coinbase": 0.1, "kraken": 0.1, "okx": 0.1}


def quote(exchange: str, bid: float, ask: float, at_ms: int = T0, symbol: str = "BTC/USD") -> tick.Tick:
    return tick.quote(exchange, symbol, bid, ask, 1.0, 1.0, at_ms, at_ms * 1_000_000)


def engine(**overrides: object) -> Engine:
    settings: dict[str, object] = {"threshold_pct": 0.5, "fees_pct": FEES}
    settings.update(overrides)
    return Engine(EngineConfig(**settings))  # type: ignore[arg-type]


def test_a_market_at_twice_the_others_price_raises_nothing_and_is_listed() -> None:
    e = engine()
    for exchange, bid in (("binance", 45_000.0), ("coinbase", 45_010.0), ("kraken", 44_990.0)):
        assert e.on_tick(quote(exchange, bid, bid + 1.0), T0) == []
    # "BTC" on OKX is another token at 90,000: a 100 % "spread" against every venue, and no signal.
    assert e.on_tick(quote("okx", 90_000.0, 90_001.0, T0 + 1), T0 + 1) == []
    assert e.lifecycle.open == {}
    (suspect,) = e.suspect_markets(T0 + 1)
    assert (suspect.exchange, suspect.symbol, suspect.venues_compared) == ("okx", "BTC/USD", 3)
    assert suspect.median_mid == 45_000.5
    assert round(suspect.deviation_pct) == 100
    # A real 1 % dislocation beside it still opens: the suspect takes no part in the median's venues' pairs.
    opened = e.on_tick(quote("kraken", 45_500.0, 45_501.0, T0 + 2), T0 + 2)
    assert {(s["status"], s["buy_exchange"], s["sell_exchange"]) for s in opened} == {
        ("open", "binance", "kraken"),
        ("open", "coinbase", "kraken"),
    }
    # The matrix leaves the suspect's pairs empty, as the signals do.
    assert e.spread_matrix(T0 + 2)["BTC"]["binance"]["okx"] is None


def test_an_open_opportunity_closes_when_one_of_its_markets_turns_suspect() -> None:
    e = engine()
    e.on_tick(quote("binance", 45_000.0, 45_001.0), T0)
    e.on_tick(quote("coinbase", 45_010.0, 45_011.0), T0)
    opened = e.on_tick(quote("kraken", 45_500.0, 45_501.0, T0 + 1), T0 + 1)
    assert [s["status"] for s in opened] == ["open", "open"]
    closed = e.on_tick(quote("kraken", 60_000.0, 60_001.0, T0 + 2), T0 + 2)  # a halted book, a bad print
    assert [(s["status"], s["id"]) for s in closed] == [("close", s["id"]) for s in opened]
    assert [s.exchange for s in e.suspect_markets(T0 + 2)] == ["kraken"]


def test_two_venues_that_disagree_beyond_the_limit_both_take_no_part() -> None:
    e = engine()
    e.on_tick(quote("binance", 45_000.0, 45_001.0), T0)
    assert e.on_tick(quote("coinbase", 57_000.0, 57_001.0, T0 + 1), T0 + 1) == []  # 26.7 % apart
    assert {s.exchange for s in e.suspect_markets(T0 + 1)} == {"binance", "coinbase"}


def test_within_the_limit_a_large_spread_is_a_signal_and_the_check_can_be_turned_off() -> None:
    e = engine()
    e.on_tick(quote("binance", 45_000.0, 45_001.0), T0)
    (opened,) = e.on_tick(quote("coinbase", 49_000.0, 49_001.0, T0 + 1), T0 + 1)  # 8.9 %: within 20
    assert opened["status"] == "open"
    assert e.suspect_markets(T0 + 1) == []
    off = engine(max_market_deviation_pct=0.0)
    off.on_tick(quote("binance", 45_000.0, 45_001.0), T0)
    (opened,) = off.on_tick(quote("coinbase", 90_000.0, 90_001.0, T0 + 1), T0 + 1)
    assert opened["status"] == "open"


def test_a_suspect_is_forgotten_once_it_is_no_longer_found() -> None:
    e = engine()
    for exchange, bid in (("binance", 45_000.0), ("coinbase", 45_010.0), ("okx", 90_000.0)):
        e.on_tick(quote(exchange, bid, bid + 1.0), T0)
    assert [s.exchange for s in e.suspect_markets(T0)] == ["okx"]
    assert e.suspect_markets(T0 + 10_001) == []


def test_the_heartbeat_lists_the_suspects_and_reads_back_through_the_contract() -> None:
    e = engine()
    for exchange, bid in (("binance", 45_000.0), ("coinbase", 45_010.0), ("okx", 90_000.0)):
        e.on_tick(quote(exchange, bid, bid + 1.0, T0 + 0), T0)
    suspects = e.suspect_markets(T0)
    wire = [
        {
            "exchange": s.exchange,
            "symbol": s.symbol,
            "mid": s.mid,
            "median_mid": s.median_mid,
            "deviation_pct": round(s.deviation_pct, 4),
            "venues_compared": s.venues_compared,
            "seen_ms": s.seen_ms,
        }
        for s in suspects
    ]
    heartbeat = decode_heartbeat(encode_heartbeat({"timestamp": T0, "suspect_markets": wire}))  # type: ignore[typeddict-item]
    assert heartbeat["suspect_markets"] == wire
    broken = decode_heartbeat(b'{"timestamp": 1, "suspect_markets": [{"exchange": "okx"}, 3, {"symbol": 1}]}')
    assert broken["suspect_markets"] == []
