"""The venue registry: every module of this package that declares a `VENUE` (see `declaration.py`).

A module holds one exchange: its declaration (URLs, market list, subscribe messages, fee,
simulator port and profile) and its parser. The registry finds the modules itself, so adding a
venue adds its module here and its dialect in ingest_worker/sim/ and touches nothing else.
`VENUES` is ordered by simulator port (binance 9101, coinbase 9102, ...): every list of venues
the system shows or iterates has that one order.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from ingest_worker.venues.base import DEPTH_LEVELS, MAX_TICK_AGE_MS, VenueParser
from ingest_worker.venues.declaration import Venue

_NOT_VENUES = frozenset({"base", "declaration"})


def _discover() -> dict[str, Venue]:
    found: list[Venue] = []
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name in _NOT_VENUES or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        venue = getattr(module, "VENUE", None)
        if not isinstance(venue, Venue):
            raise TypeError(f"{module.__name__} declares no VENUE = Venue(...)")
        if venue.name != module_info.name:
            raise ValueError(f"{module.__name__} declares venue {venue.name!r}: a module is named after its venue")
        found.append(venue)
    found.sort(key=lambda venue: venue.sim_port)
    ports = [venue.sim_port for venue in found]
    if len(set(ports)) != len(ports):
        raise ValueError(f"two venues declare the same simulator port: {ports}")
    return {venue.name: venue for venue in found}


VENUES: Mapping[str, Venue] = MappingProxyType(_discover())
NAMES: tuple[str, ...] = tuple(VENUES)
PARSERS: Mapping[str, type[VenueParser]] = MappingProxyType({name: venue.parser for name, venue in VENUES.items()})
# Each venue's default taker fee, percent: DESIGN.md's table, from the declarations; `FEES` overrides it.
DEFAULT_FEES_PCT: Mapping[str, float] = MappingProxyType(
    {name: venue.default_fee_pct for name, venue in VENUES.items()}
)
SIM_PORTS: Mapping[str, int] = MappingProxyType({name: venue.sim_port for name, venue in VENUES.items()})


def make_parser(
    exchange: str, *, max_age_ms: int | None = MAX_TICK_AGE_MS, depth_levels: int = DEPTH_LEVELS
) -> VenueParser:
    """A parser for `exchange` with the offline symbol fallback; KeyError for an unknown venue."""
    return PARSERS[exchange](max_age_ms=max_age_ms, depth_levels=depth_levels)


def resolve_venues(names: list[str] | tuple[str, ...], setting: str) -> tuple[str, ...]:
    """A setting's venue list (empty: every registered venue), checked against the registry."""
    if not names:
        return NAMES
    unknown = [name for name in names if name not in VENUES]
    if unknown:
        raise ValueError(f"{setting}: no venue {', '.join(unknown)}; registered: {', '.join(NAMES)}")
    return tuple(names)
