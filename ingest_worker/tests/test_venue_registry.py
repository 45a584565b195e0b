"""One venue, one declaration: the registry finds every venue module, and everything that lists
venues (fees, simulator ports, dialects, parsers) reads it from there; a feed whose venue lists
none of the configured markets stops on a configuration error instead of retrying forever."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from pathlib import Path

import pytest
import zmq

from arbsite.redis_server import free_port
from ingest_worker.feed import STOPPED, Feed, NothingToSubscribe
from ingest_worker.push import TickPusher
from ingest_worker.sim.model import VENUE_PROFILES
from ingest_worker.sim.server import DEFAULT_PORTS, DIALECTS
from ingest_worker.tests.sim_helpers import http_url, run, simulator
from ingest_worker.venues import DEFAULT_FEES_PCT, NAMES, PARSERS, VENUES, make_parser, resolve_venues
from ingest_worker.venues.declaration import Venue

VENUE_DIR = Path(__file__).resolve().parents[1] / "venues"


def test_every_module_of_the_package_is_a_registered_venue() -> None:
    # Helpers shared by venues are private modules (_levels.py); base and declaration are the frame.
    modules = {path.stem for path in VENUE_DIR.glob("*.py") if not path.stem.startswith("_")} - {"base", "declaration"}
    assert set(VENUES) == modules
    assert all(isinstance(venue, Venue) for venue in VENUES.values())
    # One order everywhere: by simulator port.
    assert list(NAMES) == sorted(VENUES, key=lambda name: VENUES[name].sim_port)
    assert NAMES[:2] == ("binance", "coinbase")


def test_every_venue_list_is_derived_from_the_registry() -> None:
    assert list(DEFAULT_FEES_PCT) == list(NAMES) == list(DEFAULT_PORTS) == list(DIALECTS) == list(PARSERS)
    assert list(VENUE_PROFILES) == list(NAMES)
    for name, venue in VENUES.items():
        assert DEFAULT_FEES_PCT[name] == venue.default_fee_pct
        assert DEFAULT_PORTS[name] == venue.sim_port
        assert type(make_parser(name)) is venue.parser


def test_a_declaration_that_cannot_work_is_refused_when_it_is_made() -> None:
    okx = VENUES["okx"]
    with pytest.raises(ValueError, match="lower case"):
        dataclasses.replace(okx, name="OKX")
    with pytest.raises(ValueError, match="not a percentage"):
        dataclasses.replace(okx, default_fee_pct=-0.1)


def test_a_setting_names_registered_venues_or_none_for_all() -> None:
    assert resolve_venues([], "EXCHANGES") == NAMES
    assert resolve_venues(["okx", "kraken"], "EXCHANGES") == ("okx", "kraken")
    with pytest.raises(ValueError, match="EXCHANGES: no venue mtgox; registered: binance, coinbase"):
        resolve_venues(["binance", "mtgox"], "EXCHANGES")


def test_a_venue_that_lists_none_of_the_configured_markets_is_a_configuration_error() -> None:
    async def body() -> None:
        async with simulator(venues=("kraken",)) as sim:
            url = sim.urls["kraken"]
            pusher = TickPusher(f"tcp://127.0.0.1:{free_port()}", zmq.Context.instance())
            feed = Feed(
                VENUES["kraken"],
                ws_base=url,
                rest_base=http_url(url),
                pusher=pusher,
                symbols=["DOGE/JPY"],
                rng=random.Random(0),
            )
            try:
                with pytest.raises(NothingToSubscribe, match=r"kraken: lists \d+ markets, none of them DOGE/JPY"):
                    await asyncio.wait_for(feed.run(asyncio.Event()), 10)
                assert feed.state == STOPPED
                assert feed.connections == []
            finally:
                pusher.close()

    run(body)
