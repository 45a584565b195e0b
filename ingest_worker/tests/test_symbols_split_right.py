"""Binance market names split into the canonical BASE/QUOTE; a table built from a market list is strict."""

from __future__ import annotations

import json

import pytest

from ingest_worker.tests.recorded import BINANCE_SYMBOLS, files, frames
from ingest_worker.venues.base import UNKNOWN_SYMBOL
from ingest_worker.venues.binance import BinanceParser
from signals_app.contracts.symbols import SymbolTable, split_concatenated


def recorded_binance_symbols(market_data) -> set[str]:
    symbols: set[str] = set()
    for folder in ("binance", "binance_usdm", "binance_coinm"):
        for path in files(market_data / folder, "*.jsonl"):
            for frame, _ in frames(path):
                msg = json.loads(frame)
                data = msg.get("data", msg)
                name = data.get("s", data.get("symbol"))
                if name is not None:
                    symbols.add(name)
    return symbols


def test_every_recorded_binance_symbol_is_in_the_expected_table(market_data):
    assert recorded_binance_symbols(market_data) == set(BINANCE_SYMBOLS)


@pytest.mark.parametrize(("native", "symbol"), sorted(BINANCE_SYMBOLS.items()))
def test_every_recorded_binance_symbol_splits_right(native, symbol):
    assert BinanceParser.default_symbols().resolve(native) == symbol
    parts = split_concatenated(native)
    assert (None if parts is None else "/".join(parts)) == symbol


@pytest.mark.parametrize(
    ("native", "symbol"),
    [
        ("BTCFDUSD", "BTC/FDUSD"),  # FDUSD, not USD
        ("ETHBUSD", "ETH/BUSD"),  # BUSD, not USD
        ("BTCTUSD", "BTC/TUSD"),
        ("btcusdt", "BTC/USDT"),
        ("USDT", None),  # a quote alone has no base
        ("BTCXYZ", None),  # no known quote
        ("BTC-USDT", None),  # not a Binance name
        ("", None),
    ],
)
def test_names_split_at_the_longest_known_quote(native, symbol):
    assert BinanceParser.default_symbols().resolve(native) == symbol


def test_a_table_from_a_market_list_knows_only_those_markets():
    table = SymbolTable([("BTCUSDT", "BTC", "USDT"), ("XBTEUR", "XBT", "EUR")], fallback=split_concatenated)
    assert table.strict
    assert table.resolve("BTCUSDT") == "BTC/USDT"
    assert table.resolve("XBTEUR") == "BTC/EUR"  # venue aliases map to one canonical asset
    assert table.native("BTC/EUR") == "XBTEUR"
    # Splittable names the venue did not list are unknown: the list is the truth.
    assert table.resolve("ETHUSDT") is None
    assert table.resolve("NKNUSDT") is None
    assert table.known() == ["BTC/EUR", "BTC/USDT"]


def test_a_parser_with_a_market_list_drops_names_not_on_it():
    parser = BinanceParser(SymbolTable([("BTCUSDT", "BTC", "USDT")]), max_age_ms=None)
    book = '"b":"1.0","B":"1","a":"2.0","A":"1"'
    assert parser.parse('{"u":1,"s":"BTCUSDT",' + book + "}", 10**18)[0].symbol == "BTC/USDT"
    assert parser.parse('{"u":2,"s":"ETHUSDT",' + book + "}", 10**18) == []
    assert parser.parse('{"e":"trade","E":1,"s":"NKNUSDT","p":"1","q":"1"}', 10**18) == []
    assert parser.stats.as_dict()["dropped"] == {UNKNOWN_SYMBOL: 2}
