"""The seven-venue demo capture (`demo/seven_venues.jsonl.gz`, what `make demo` replays) shows what it promises.

The capture is recorded by `demo/record_seven_venues.py` from our simulator through our ingestor,
so its exact signals change with every recording: these tests check properties that any
recording made by that script must have, not a copy of one run's output.

- It is a capture file under 1 MB, every one of the seven venues is in it and gives ticks,
  and no frame is dropped.
- With the default settings the replay opens an opportunity for every dislocation of the
  recorder's timetable (`SCRIPT`), cheap venue to rich venue, on at least five venue pairs other
  than Binance–Coinbase; the lifecycle holds together; two runs print the same bytes.
- The scripted silence makes a quote stale: the silenced venue's opportunity closes and opens
  again, and does not when STALE_MS is longer than the silence.
- The USDT depeg (when the simulator could record it) is an opportunity only QUOTE_RATES=live
  sees: buying the USDT markets and selling on USD venues, at the depegged rate; pairs of two
  USD markets are untouched by the rates, pairs with a USDT market have other net spreads.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from ingest_worker.sim.model import route_depth
from ingest_worker.venues import make_parser
from signals_app.contracts.signal import CLOSE_FIELDS, FIELDS

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "demo" / "seven_venues.jsonl.gz"
RECORDER = REPO / "demo" / "record_seven_venues.py"
VENUES = ("binance", "coinbase", "kraken", "okx", "bitstamp", "gemini", "bitfinex")
THRESHOLD_PCT = 0.5
# The defaults of DESIGN.md, spelled out so that a developer's environment cannot change the result.
SETTINGS = {
    "SPREAD_THRESHOLD_PCT": str(THRESHOLD_PCT),
    "STALE_MS": "2000",
    "SIGNAL_UPDATE_MS": "1000",
    "FEES": "",
    "QUOTE_GROUPS": "USD,USDT,USDC;EUR,EURC",
    "QUOTE_RATES": "fixed",
    "RATE_STALE_MS": "10000",
}
LIVE = {**SETTINGS, "QUOTE_RATES": "live"}
DEPEGGED_BELOW = 0.99  # a USDT/USD mid under this is the scripted depeg (it goes to 0.985)

Signal = dict[str, Any]


def replay(settings: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "arbsite.settings", **settings}
    done = subprocess.run(
        [sys.executable, "manage.py", "replay", str(CAPTURE)],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done


def signals(stdout: bytes) -> list[Signal]:
    return [orjson.loads(line) for line in stdout.splitlines()]


def opens(found: list[Signal]) -> list[Signal]:
    return [signal for signal in found if signal["status"] == "open"]


def quote_of(symbol: str) -> str:
    return symbol.rpartition("/")[2]


@pytest.fixture(scope="module")
def recorder() -> ModuleType:
    """The recorder script, for its timetable (it imports only the standard library and orjson)."""
    spec = importlib.util.spec_from_file_location("record_seven_venues", RECORDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(scope="module")
def lines() -> list[dict[str, Any]]:
    assert CAPTURE.is_file(), f"{CAPTURE} is missing: make demo-record"
    return [orjson.loads(line) for line in gzip.decompress(CAPTURE.read_bytes()).splitlines()]


@pytest.fixture(scope="module")
def ticks(lines: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every venue's ticks, parsed as the replay parses them; asserts that no frame was dropped."""
    parsers = {venue: make_parser(venue) for venue in VENUES}
    found: dict[str, list[Any]] = {venue: [] for venue in VENUES}
    for line in lines:
        recv_ns = round(line["recv_ms"] * 1000.0) * 1000
        found[line["exchange"]].extend(parsers[line["exchange"]].parse(line["raw"], recv_ns))
    for venue, parser in parsers.items():
        assert not any(parser.stats.dropped.values()), (venue, parser.stats.as_dict())
    return found


@pytest.fixture(scope="module")
def fixed() -> subprocess.CompletedProcess[bytes]:
    return replay(SETTINGS)


@pytest.fixture(scope="module")
def live() -> subprocess.CompletedProcess[bytes]:
    return replay(LIVE)


def test_the_capture_is_under_one_megabyte_and_holds_only_the_seven_venues(lines):
    assert CAPTURE.stat().st_size < 1_000_000
    per_venue = Counter(line["exchange"] for line in lines)
    assert sorted(per_venue) == sorted(VENUES)
    for line in lines:
        assert list(line) == ["recv_ms", "exchange", "raw"]
        assert isinstance(line["raw"], str)
    recv = [line["recv_ms"] for line in lines]
    assert (max(recv) - min(recv)) / 1000 > 45, "a recording of about a minute or more"


def test_every_venue_gives_quotes_for_both_assets_and_no_frame_is_dropped(ticks):
    for venue in VENUES:
        # A book tick is also the market's quote (DESIGN.md "Depth").
        quoted = {tick.symbol.partition("/")[0] for tick in ticks[venue] if tick.type in ("quote", "book")}
        assert {"BTC", "ETH"} <= quoted, (venue, quoted)


def test_the_replay_counts_every_line_as_a_frame_and_every_venue_ticks(fixed):
    report = counts(fixed.stderr)
    assert report[0].endswith("bad lines 0, unknown exchange 0"), report[0]
    per_venue = {name: orjson.loads(stats) for name, _, stats in (line.partition(": ") for line in report[2:]) if stats}
    assert sorted(per_venue) == sorted(VENUES)
    for venue, stats in per_venue.items():
        assert stats["ticks"] > 50, (venue, stats)
        assert stats["dropped"] == {}, (venue, stats)


def test_every_scripted_dislocation_opens_and_many_venue_pairs_signal(fixed, recorder):
    found = signals(fixed.stdout)
    for signal in found:  # fixed rates: exactly the contract's shape, a close ending with its reason
        assert list(signal) == list(CLOSE_FIELDS if signal["status"] == "close" else FIELDS), signal
    opened = {(s["asset"], s["buy_exchange"], s["sell_exchange"]) for s in opens(found)}
    scripted = [event.params for event in recorder.SCRIPT if event.action == "dislocate"]
    assert len(scripted) >= 5
    for params in scripted:
        assert (params["asset"], params["cheap"], params["rich"]) in opened, params
    pairs = {frozenset((buy, sell)) for _, buy, sell in opened} - {frozenset(("binance", "coinbase"))}
    assert len(pairs) >= 5, pairs
    assert {asset for asset, _, _ in opened} >= {"BTC", "ETH"}
    assert all(signal["net_spread_pct"] > THRESHOLD_PCT for signal in opens(found))


def test_the_lifecycle_holds_together(fixed):
    found = signals(fixed.stdout)
    state: dict[str, str] = {}
    for signal in found:
        previous = state.get(signal["id"])
        if signal["status"] == "open":
            assert previous is None, signal
        else:
            assert previous in ("open", "update"), signal
        state[signal["id"]] = signal["status"]
        # No feed is down in a replay and no engine restarts: the bid fell back, or a quote went stale.
        assert signal.get("close_reason") in (("threshold", "stale") if signal["status"] == "close" else (None,))
    closed = sum(1 for status in state.values() if status == "close")
    assert closed >= len(state) - 2, "the recording runs until the scripted opportunities are over"


def counts(stderr: bytes) -> list[str]:
    """The replay's report on stderr, from its first line (what precedes it are timestamped log lines)."""
    report = stderr.decode().splitlines()
    return report[next(i for i, line in enumerate(report) if line.startswith("lines ")) :]


def test_the_same_capture_replays_to_the_same_bytes(fixed):
    again = replay(SETTINGS)
    assert again.stdout == fixed.stdout
    assert counts(again.stderr) == counts(fixed.stderr)
    assert fixed.stdout.count(b"\n") > 30


def test_the_silenced_venue_goes_stale_closes_and_opens_again(fixed, recorder):
    [silence] = [event for event in recorder.SCRIPT if event.action == "silence"]
    venue = silence.params["venue"]
    [dislocation] = [
        event
        for event in recorder.SCRIPT
        if event.action == "dislocate"
        and venue in (event.params["cheap"], event.params["rich"])
        and event.at_s < silence.at_s < event.at_s + event.lasts_s
    ]
    key = (dislocation.params["asset"], dislocation.params["cheap"], dislocation.params["rich"])

    def opened(stdout: bytes) -> int:
        return sum(1 for s in opens(signals(stdout)) if (s["asset"], s["buy_exchange"], s["sell_exchange"]) == key)

    assert opened(fixed.stdout) >= 2, f"{key}: closed by the stale quote, opened again when {venue} speaks"
    first_close = next(
        s
        for s in signals(fixed.stdout)
        if s["status"] == "close" and (s["asset"], s["buy_exchange"], s["sell_exchange"]) == key
    )
    assert first_close["close_reason"] == "stale", first_close
    patient = replay({**SETTINGS, "STALE_MS": "60000"})  # longer than the silence: nothing goes stale
    assert opened(patient.stdout) == 1, key


def test_the_usdt_depeg_is_an_opportunity_only_live_rates_see(fixed, live, ticks):
    usdt = [
        tick
        for venue in VENUES
        for tick in ticks[venue]
        if tick.symbol == "USDT/USD" and tick.type in ("quote", "book") and tick.bid is not None
    ]
    assert {tick.exchange for tick in usdt} >= {"coinbase", "kraken"}, "reference markets recorded"
    depegged = [tick.recv_ns // 1_000_000 for tick in usdt if tick.price < DEPEGGED_BELOW]
    if not depegged:
        pytest.skip("recorded by a simulator without /sim/depeg: no depeg in this capture")
    start, end = min(depegged), max(depegged)

    fixed_signals, live_signals = signals(fixed.stdout), signals(live.stdout)
    assert not [s for s in opens(fixed_signals) if start <= s["timestamp"] <= end], "fixed rates see no depeg"
    seen_fixed = {(s["asset"], s["buy_exchange"], s["sell_exchange"], s["opened_at"]) for s in opens(fixed_signals)}
    live_only = [
        s
        for s in opens(live_signals)
        if (s["asset"], s["buy_exchange"], s["sell_exchange"], s["opened_at"]) not in seen_fixed
        and start <= s["timestamp"] <= end
    ]
    assert len(live_only) >= 5, live_only
    for signal in live_only:
        assert quote_of(signal["buy_symbol"]) == "USDT", signal
        assert quote_of(signal["sell_symbol"]) == "USD", signal
        assert signal["quote_rates"]["USDT"] < 0.995, signal
    assert len({s["sell_exchange"] for s in live_only}) >= 3
    assert {s["asset"] for s in live_only} == {"BTC", "ETH"}


def test_live_rates_change_the_usdt_pairs_and_leave_the_usd_pairs_alone(fixed, live):
    fixed_signals, live_signals = signals(fixed.stdout), signals(live.stdout)

    def usd_only(signal: Signal) -> bool:
        return quote_of(signal["buy_symbol"]) == quote_of(signal["sell_symbol"]) == "USD"

    unconverted = [{k: v for k, v in s.items() if k != "quote_rates"} for s in live_signals if usd_only(s)]
    assert unconverted == [s for s in fixed_signals if usd_only(s)]
    assert len(unconverted) > 10
    for signal in live_signals:  # each records the rate of both its quote currencies; USD's is 1.0
        rates = signal["quote_rates"]
        assert set(rates) == {quote_of(signal["buy_symbol"]), quote_of(signal["sell_symbol"])}, signal
        assert rates.get("USD", 1.0) == 1.0

    by_key = {(s["id"], s["status"], s["timestamp"]): s for s in fixed_signals if not usd_only(s)}
    shared = [(by_key[k], s) for s in live_signals if (k := (s["id"], s["status"], s["timestamp"])) in by_key]
    assert len(shared) > 10
    assert any(f["net_spread_pct"] != s["net_spread_pct"] for f, s in shared), "live USDT rates are not 1.0"


def test_every_open_carries_depth_and_deep_routes_hold_more_than_thin_ones(fixed, recorder):
    """All seven venues are recorded with their books, so every signal walks two books; the
    simulator makes some routes deep and some thin (`ingest_worker.sim.model.route_depth`), and the
    replay's depth figures tell them apart."""
    found = signals(fixed.stdout)
    for signal in opens(found):
        assert signal["depth_size"] > 0, signal  # above the threshold at the top: some depth taken
        assert signal["depth_levels"][0] >= 1
        assert signal["depth_levels"][1] >= 1
    best: dict[tuple[str, str, str], float] = {}
    for signal in found:
        if signal["status"] != "close":
            key = (signal["asset"], signal["buy_exchange"], signal["sell_exchange"])
            best[key] = max(best.get(key, 0.0), signal["depth_profit"])
    scripted = {
        (event.params["asset"], event.params["cheap"], event.params["rich"])
        for event in recorder.SCRIPT
        if event.action == "dislocate"
    }
    deep = {key for key in scripted if route_depth(*key) == 0}
    thin = {key for key in scripted if route_depth(*key) == 1}
    assert deep
    assert thin
    compared = 0
    for asset in ("BTC", "ETH"):
        deep_profits = [best[key] for key in deep if key[0] == asset]
        thin_profits = [best[key] for key in thin if key[0] == asset]
        if deep_profits and thin_profits:
            assert min(deep_profits) > 5 * max(thin_profits), (asset, deep_profits, thin_profits)
            compared += 1
    assert compared
