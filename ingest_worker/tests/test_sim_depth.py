"""The simulator's books behind its quotes: the top is the ticker's, deeper levels lie further out,
and a dislocation keeps its price only as many levels deep as its route says."""

from __future__ import annotations

from ingest_worker.sim import depth
from ingest_worker.sim.model import ROUTE_DEPTHS, MarketModel, Quote, build_markets, route_depth


def model_quotes(seconds: float = 2.0) -> list[Quote]:
    model = MarketModel(("BTC", "ETH"), 0, venues=("binance", "coinbase", "kraken"), rate=200, seed=3)
    quotes: list[Quote] = []
    for step in range(1, int(seconds * 10) + 1):
        quotes += model.advance(step * 100_000_000).quotes
    return quotes


def test_the_top_level_is_the_tickers_and_deeper_levels_are_worse_and_sized() -> None:
    for quote in model_quotes():
        bids, asks = depth.book_levels(quote, 20)
        assert bids[0] == (quote.bid, quote.bid_size)
        assert asks[0] == (quote.ask, quote.ask_size)
        assert len(asks) == 20
        assert 1 <= len(bids) <= 20
        assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
        assert [p for p, _ in asks] == sorted({p for p, _ in asks})
        assert all(size >= 1 for _, size in bids + asks)


def test_a_thin_dislocation_keeps_its_price_only_on_its_first_levels() -> None:
    quote = Quote(build_markets(("BTC",), ("binance", "coinbase"))[0], 4_500_000, 4_500_100, 60, 70, 0, None)
    deep_bids, deep_asks = depth.book_levels(quote, 20)
    bids, asks = depth.book_levels(quote._replace(thin_asks=3, thin_gap=50_000), 20)
    assert asks[:3] == deep_asks[:3]
    assert [p for p, _ in asks[3:]] == [p + 50_000 for p, _ in deep_asks[3:]]
    assert bids == deep_bids
    bids, asks = depth.book_levels(quote._replace(thin_bids=1, thin_gap=50_000), 20)
    assert bids[0] == deep_bids[0]
    assert bids[1][0] == deep_bids[1][0] - 50_000
    assert asks == deep_asks


def test_routes_differ_in_depth_and_each_keeps_its_own() -> None:
    venues = ("binance", "coinbase", "kraken", "okx", "bitstamp", "gemini", "bitfinex")
    depths = {route_depth("BTC", cheap, rich) for cheap in venues for rich in venues if cheap != rich}
    assert depths == set(ROUTE_DEPTHS)  # thin and deep routes both occur
    assert route_depth("ETH", "binance", "okx") == route_depth("ETH", "binance", "okx")


def test_a_dislocations_quotes_carry_their_routes_depth() -> None:
    model = MarketModel(("BTC",), 0, venues=("binance", "coinbase"), rate=50, seed=1, auto_dislocations=False)
    model.advance(1_000_000_000)
    model.dislocate("BTC", "binance", "coinbase", 1.0, 10.0)
    quotes = model.advance(1_100_000_000).quotes
    thin = route_depth("BTC", "binance", "coinbase")
    cheap = next(q for q in quotes if q.market.venue == "binance" and not q.market.reference)
    rich = next(q for q in quotes if q.market.venue == "coinbase" and not q.market.reference)
    assert (cheap.thin_asks, cheap.thin_bids) == (thin, 0)
    assert (rich.thin_bids, rich.thin_asks) == (thin, 0)
    if thin:
        # Behind the thin levels the cheap asks lie above the rich top bid: nothing more to take there.
        _, asks = depth.book_levels(cheap, 20)
        assert asks[thin][0] / cheap.market.price_scale > rich.bid / rich.market.price_scale


def test_level_changes_turn_one_side_into_the_next() -> None:
    old = {100: 5, 99: 3, 98: 1}
    new = {100: 4, 98: 1, 97: 2}
    changes = depth.level_changes(old, new)
    assert changes == [(99, 0), (100, 4), (97, 2)]
    rebuilt = dict(old)
    for price, size in changes:
        if size:
            rebuilt[price] = size
        else:
            del rebuilt[price]
    assert rebuilt == new
