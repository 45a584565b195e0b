"""The market model on its own: deterministic, sane books, the rate kept, dislocations on target."""

from __future__ import annotations

import itertools

import pytest

from ingest_worker.sim.model import (
    BINANCE,
    COINBASE,
    DEFAULT_ASSETS,
    MarketModel,
    Quote,
    net_spread_pct,
    parse_assets,
)

T0 = 1_705_665_600_000_000_000  # 2024-01-19T12:00:00Z in ns
TWO = ("binance", "coinbase")  # the venues these tests simulate (the model serves every registered one)
MS = 1_000_000
FEES = {BINANCE: 0.1, COINBASE: 0.6}


def run_model(model: MarketModel, seconds: float, step_ms: int = 10) -> list[Quote]:
    quotes: list[Quote] = []
    for i in range(1, round(seconds * 1000 / step_ms) + 1):
        quotes.extend(model.advance(T0 + i * step_ms * MS).quotes)
    return quotes


def price(quote: Quote, side: str) -> float:
    return (quote.bid if side == "bid" else quote.ask) / quote.market.price_scale


def latest(quotes: list[Quote]) -> dict[tuple[str, str], Quote]:
    book: dict[tuple[str, str], Quote] = {}
    for quote in quotes:
        book[(quote.market.venue, quote.market.asset)] = quote
    return book


def pair_net(book: dict[tuple[str, str], Quote], asset: str, cheap: str, rich: str) -> float:
    return net_spread_pct(
        price(book[(rich, asset)], "bid"), price(book[(cheap, asset)], "ask"), FEES[cheap], FEES[rich]
    )


def test_the_same_seed_and_times_give_the_same_quotes() -> None:
    first = run_model(MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=7, rate=500), 5)
    second = run_model(MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=7, rate=500), 5)
    other = run_model(MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=8, rate=500), 5)
    assert first == second
    assert first != other


def test_markets_are_named_as_each_venue_names_them() -> None:
    model = MarketModel(("BTC", "ADA"), T0, venues=TWO)
    names = {(m.venue, m.native, m.symbol) for m in model.markets}
    assert names == {
        (BINANCE, "BTCUSDT", "BTC/USDT"),
        (BINANCE, "ADAUSDT", "ADA/USDT"),
        (COINBASE, "BTC-USD", "BTC/USD"),
        (COINBASE, "ADA-USD", "ADA/USD"),
        (BINANCE, "USDCUSDT", "USDC/USDT"),  # the stablecoin reference markets
        (COINBASE, "USDT-USD", "USDT/USD"),
    }
    assert [m.reference for m in model.markets] == [False] * 4 + [True] * 2


def test_every_quote_is_a_sane_book_and_every_trade_is_at_the_touch() -> None:
    quotes = run_model(
        MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=3, rate=400, auto_dislocations=True), 60, step_ms=20
    )
    assert len(quotes) > 20_000
    for quote in quotes:
        assert 0 < quote.bid < quote.ask
        assert quote.bid_size > 0
        assert quote.ask_size > 0
        if quote.trade is not None:
            assert quote.trade.size > 0
            assert quote.trade.price == (quote.ask if quote.trade.taker_side == "buy" else quote.bid)
    book = latest(quotes)  # and the prices are realistic ones
    for asset, expected in {"BTC": 45_000, "ETH": 2_500, "SOL": 100, "XRP": 0.6, "ADA": 0.5}.items():
        assert price(book[(BINANCE, asset)], "bid") == pytest.approx(expected, rel=0.1)


def test_the_rate_is_kept_across_all_markets() -> None:
    model = MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=1, rate=1000, auto_dislocations=False)
    quotes = run_model(model, 10, step_ms=5)
    markets = len(model.markets)
    # one first quote per market, then the rate; the 1 s refresh never triggers at this rate
    assert markets + 9_999 <= len(quotes) <= markets + 10_000


def test_every_market_is_quoted_at_least_every_second_even_at_a_low_rate() -> None:
    model = MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=1, rate=1, auto_dislocations=False)
    quotes = run_model(model, 20, step_ms=50)
    last_seen: dict[int, int] = {}
    for quote in quotes:
        previous = last_seen.get(quote.market.index)
        if previous is not None:
            assert quote.time_ns - previous <= 1_050 * MS
        last_seen[quote.market.index] = quote.time_ns
    assert len(last_seen) == len(model.markets)


def test_without_a_dislocation_no_pair_comes_near_a_signal() -> None:
    model = MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=11, rate=300, auto_dislocations=False)
    book: dict[tuple[str, str], Quote] = {}
    worst = -100.0
    for i in range(1, 120 * 20 + 1):
        for quote in model.advance(T0 + i * 50 * MS).quotes:
            book[(quote.market.venue, quote.market.asset)] = quote
        for asset in DEFAULT_ASSETS:
            worst = max(worst, pair_net(book, asset, BINANCE, COINBASE), pair_net(book, asset, COINBASE, BINANCE))
    assert worst < -0.5  # the 0.7 % round trip in fees is never beaten by mere noise


@pytest.mark.parametrize(
    ("asset", "cheap", "rich", "net_pct", "tolerance"),
    [
        ("BTC", BINANCE, COINBASE, 1.0, 0.03),
        ("BTC", COINBASE, BINANCE, 1.0, 0.03),
        ("ETH", BINANCE, COINBASE, 0.8, 0.03),
        ("SOL", COINBASE, BINANCE, 1.5, 0.03),
        ("ADA", BINANCE, COINBASE, 1.2, 0.06),  # a tick is 2 bp of ADA's price
        ("XRP", COINBASE, BINANCE, 0.6, 0.06),
    ],
)
def test_a_forced_dislocation_puts_the_net_spread_after_fees_on_target(
    asset: str, cheap: str, rich: str, net_pct: float, tolerance: float
) -> None:
    model = MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=5, rate=100, auto_dislocations=False, fees_pct=FEES)
    book = latest(run_model(model, 3))
    assert pair_net(book, asset, cheap, rich) < 0
    event, replaced = model.dislocate(asset, cheap, rich, net_pct, 4.0, T0 + 3_000 * MS)
    assert replaced is None
    step = model.advance(T0 + 3_001 * MS)
    assert step.started == [event]
    requoted = {(q.market.venue, q.market.asset) for q in step.quotes}
    assert {(cheap, asset), (rich, asset)} <= requoted  # both sides move at once
    book.update(latest(step.quotes))
    assert pair_net(book, asset, cheap, rich) == pytest.approx(net_pct, abs=tolerance)
    # Prices keep moving while it lasts, and the spread stays on target.
    prices = set()
    for i in range(1, 300):
        book.update(latest(model.advance(T0 + 3_001 * MS + i * 10 * MS).quotes))
        prices.add(book[(cheap, asset)].ask)
        assert pair_net(book, asset, cheap, rich) == pytest.approx(net_pct, abs=tolerance + 0.02)
    assert len(prices) > 1
    # It ends on time and the venues go back to quoting around the mid.
    step = model.advance(T0 + 7_001 * MS)
    assert step.ended == [event]
    book.update(latest(step.quotes))
    assert pair_net(book, asset, cheap, rich) < -0.5


def test_a_forced_dislocation_replaces_the_one_running_on_that_asset() -> None:
    model = MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=5, auto_dislocations=False)
    first, _ = model.dislocate("BTC", BINANCE, COINBASE, 1.0, 10.0)
    second, replaced = model.dislocate("btc", COINBASE, BINANCE, 1.2, 5.0)
    assert replaced == first
    assert model.dislocations == {"BTC": second}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("DOGE", BINANCE, COINBASE, 1.0, 5.0), "unknown asset"),
        (("BTC", "kraken", COINBASE, 1.0, 5.0), "unknown venue"),
        (("BTC", BINANCE, BINANCE, 1.0, 5.0), "two different venues"),
        (("BTC", BINANCE, COINBASE, float("nan"), 5.0), "net_pct"),
        (("BTC", BINANCE, COINBASE, 1.0, 0.0), "seconds"),
    ],
)
def test_a_bad_forced_dislocation_is_refused(args: tuple[str, str, str, float, float], message: str) -> None:
    model = MarketModel(DEFAULT_ASSETS, T0, venues=TWO)
    with pytest.raises(ValueError, match=message):
        model.dislocate(*args)
    assert model.dislocations == {}


def test_natural_dislocations_come_every_8_to_20_s_both_ways_and_clear_the_threshold() -> None:
    model = MarketModel(DEFAULT_ASSETS, T0, venues=TWO, seed=2, rate=100, fees_pct=FEES)
    book: dict[tuple[str, str], Quote] = {}
    started = []
    lowest_net_during: dict[int, float] = {}
    for i in range(1, 300 * 20 + 1):  # five minutes in 50 ms steps
        step = model.advance(T0 + i * 50 * MS)
        book.update(latest(step.quotes))
        started.extend(step.started)
        for event in model.dislocations.values():
            net = pair_net(book, event.asset, event.cheap, event.rich)
            key = id(event)
            lowest_net_during[key] = min(lowest_net_during.get(key, 100.0), net)
    assert len(started) >= 300 // 20
    gaps = [(b.start_ns - a.start_ns) / 1e9 for a, b in itertools.pairwise(started)]
    assert all(7.9 <= gap <= 20.1 for gap in gaps), gaps
    assert all(5.0 <= (e.end_ns - e.start_ns) / 1e9 <= 20.0 for e in started)
    assert all(0.8 <= e.start_net_pct <= 1.5 and 0.8 <= e.end_net_pct <= 1.5 for e in started)
    assert {(e.cheap, e.rich) for e in started} == {(BINANCE, COINBASE), (COINBASE, BINANCE)}
    assert len({e.asset for e in started}) >= 4
    # Throughout every dislocation the net spread is clearly above the 0.5 % threshold.
    assert min(lowest_net_during.values()) > 0.7


def test_assets_are_parsed_strictly() -> None:
    assert parse_assets(" btc, Eth ,SOL") == ("BTC", "ETH", "SOL")
    for bad, message in (("", "no assets"), ("BTC,BTC", "twice"), ("BTC/USDT", "not an asset"), ("B TC", "not an")):
        with pytest.raises(ValueError, match=message):
            parse_assets(bad)


# --- stablecoins ---------------------------------------------------------------------


def mid(quote: Quote) -> float:
    return (quote.bid + quote.ask) / 2 / quote.market.price_scale


def by_symbol(quotes: list[Quote]) -> dict[tuple[str, str], Quote]:
    book: dict[tuple[str, str], Quote] = {}
    for quote in quotes:
        book[(quote.market.venue, quote.market.symbol)] = quote
    return book


def test_reference_markets_quote_the_stablecoins_value_and_a_repriced_depeg_moves_the_usdt_markets() -> None:
    model = MarketModel(("BTC",), T0, venues=TWO, seed=4, rate=200, auto_dislocations=False)
    before = by_symbol(run_model(model, 3))
    assert mid(before[(COINBASE, "USDT/USD")]) == pytest.approx(1.0, abs=2e-4)
    assert mid(before[(BINANCE, "USDC/USDT")]) == pytest.approx(1.0, abs=2e-4)
    ratio = mid(before[(BINANCE, "BTC/USDT")]) / mid(before[(COINBASE, "BTC/USD")])
    assert ratio == pytest.approx(1.0, abs=1e-3)

    state = model.set_currency("USDT", usd=0.97)
    assert state == {"currency": "USDT", "usd": 0.97, "pricing": 0.97, "reference": True}
    # Every market the change touches is quoted on the very next step.
    first = model.advance(model.now_ns + MS).quotes
    assert {(q.market.venue, q.market.symbol) for q in first} >= {
        (BINANCE, "BTC/USDT"),
        (BINANCE, "USDC/USDT"),
        (COINBASE, "USDT/USD"),
    }
    after = by_symbol(first + run_model_from(model, 2))
    assert mid(after[(COINBASE, "USDT/USD")]) == pytest.approx(0.97, abs=2e-4)
    assert mid(after[(BINANCE, "USDC/USDT")]) == pytest.approx(1 / 0.97, abs=2e-4)
    # BTC costs 1/0.97 times as many USDT as USD: nothing to gain once converted.
    ratio = mid(after[(BINANCE, "BTC/USDT")]) / mid(after[(COINBASE, "BTC/USD")])
    assert ratio * 0.97 == pytest.approx(1.0, abs=1e-3)


def test_a_depeg_the_asset_markets_have_not_followed_leaves_usdt_prices_where_they_were() -> None:
    model = MarketModel(("BTC",), T0, venues=TWO, seed=4, rate=200, auto_dislocations=False)
    run_model(model, 1)
    assert model.set_currency("USDT", usd=0.97, reprice=False)["pricing"] == 1.0
    after = by_symbol(run_model_from(model, 2))
    assert mid(after[(COINBASE, "USDT/USD")]) == pytest.approx(0.97, abs=2e-4)
    ratio = mid(after[(BINANCE, "BTC/USDT")]) / mid(after[(COINBASE, "BTC/USD")])
    assert ratio == pytest.approx(1.0, abs=1e-3)


def test_halted_reference_markets_stop_quoting_and_resume() -> None:
    model = MarketModel(("BTC",), T0, venues=TWO, seed=4, rate=200, auto_dislocations=False)
    run_model(model, 1)
    assert model.set_currency("usdt", reference=False)["reference"] is False
    halted = run_model_from(model, 3)
    symbols = {(q.market.venue, q.market.symbol) for q in halted}
    assert (COINBASE, "USDT/USD") not in symbols
    assert (BINANCE, "USDC/USDT") not in symbols  # it involves USDT too
    assert {(BINANCE, "BTC/USDT"), (COINBASE, "BTC/USD")} <= symbols
    model.set_currency("USDT", reference=True)
    resumed = {(q.market.venue, q.market.symbol) for q in model.advance(model.now_ns + MS).quotes}
    assert {(COINBASE, "USDT/USD"), (BINANCE, "USDC/USDT")} <= resumed


@pytest.mark.parametrize(
    ("currency", "usd"), [("USD", 0.9), ("BTC", 0.9), ("USDT", 0.0), ("USDT", 2.5), ("USDT", float("nan"))]
)
def test_set_currency_refuses_what_is_not_a_stablecoin_value(currency: str, usd: float) -> None:
    model = MarketModel(("BTC",), T0, venues=TWO)
    with pytest.raises(ValueError, match=r"currency|usd"):
        model.set_currency(currency, usd=usd)
    assert model.usd_values == {"USD": 1.0, "USDT": 1.0, "USDC": 1.0}


def run_model_from(model: MarketModel, seconds: float, step_ms: int = 10) -> list[Quote]:
    start = model.now_ns
    quotes: list[Quote] = []
    for i in range(1, round(seconds * 1000 / step_ms) + 1):
        quotes.extend(model.advance(start + i * step_ms * MS).quotes)
    return quotes
