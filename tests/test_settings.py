"""Settings: read strictly, every one documented in .env.example, `.env` only filling gaps."""

from __future__ import annotations

import contextlib
import io
import re
import types
from pathlib import Path

import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from arbsite.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_ports,
    env_str,
    load_dotenv,
    parse_fees,
    parse_quote_groups,
)
from ingest_worker.venues import DEFAULT_FEES_PCT

REPO = Path(__file__).resolve().parent.parent


def test_every_setting_read_from_the_environment_is_in_env_example():
    source = (REPO / "arbsite" / "settings.py").read_text()
    names = set(re.findall(r'env_(?:str|bool|int|float|list|choice)\("([A-Z_]+)"', source))
    documented = set(re.findall(r"^([A-Z_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    assert names, "no settings found: the pattern no longer matches settings.py"
    assert names - documented == set()


@pytest.mark.parametrize("value", ["maybe", "2", "tru"])
def test_a_malformed_boolean_fails_loudly(value):
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        env_bool("DEBUG", False, {"DEBUG": value})


def test_numbers_are_checked_against_their_bounds():
    assert env_int("STALE_MS", 2000, {"STALE_MS": "1500"}, minimum=1) == 1500
    with pytest.raises(ImproperlyConfigured, match="STALE_MS"):
        env_int("STALE_MS", 2000, {"STALE_MS": "0"}, minimum=1)
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("STALE_MS", 2000, {"STALE_MS": "2s"})
    with pytest.raises(ImproperlyConfigured, match="finite"):
        env_float("SPREAD_THRESHOLD_PCT", 0.5, {"SPREAD_THRESHOLD_PCT": "nan"})


def test_empty_means_default_and_lists_drop_blanks():
    assert env_str("SECRET_KEY", "dev", {"SECRET_KEY": ""}) == "dev"
    assert env_list("EXCHANGES", ["binance"], {"EXCHANGES": " binance, ,coinbase "}) == ["binance", "coinbase"]
    with pytest.raises(ImproperlyConfigured, match="QUOTE_RATES"):
        env_choice("QUOTE_RATES", "fixed", ("fixed",), {"QUOTE_RATES": "live"})


def test_secrets_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    assert env_str("SECRET_KEY", "dev", {"SECRET_KEY_FILE": str(secret)}) == "s3cret"


def test_dotenv_fills_gaps_without_overriding_the_environment(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text('# comment\nSTALE_MS=1500\nexport FEES="binance:0.2"\nREDIS_URL=redis://x\n')
    environ = {"REDIS_URL": "redis://from-env"}
    load_dotenv(dotenv, environ)
    assert environ == {"REDIS_URL": "redis://from-env", "STALE_MS": "1500", "FEES": "binance:0.2"}
    dotenv.write_text("not a setting\n")
    with pytest.raises(ImproperlyConfigured, match=r"\.env:1"):
        load_dotenv(dotenv, {})


def test_fee_and_quote_group_forms():
    assert parse_fees("binance:0.075, coinbase=0.4", DEFAULT_FEES_PCT)["binance"] == 0.075
    assert parse_fees("", DEFAULT_FEES_PCT)["kraken"] == 0.4
    assert parse_quote_groups("USD,USDT;EUR") == (("USD", "USDT"), ("EUR",))
    with pytest.raises(ImproperlyConfigured):
        parse_quote_groups("USD,USDT;USD")


def test_every_sim_venue_port_variable_is_read_whatever_the_venue():
    env = {"SIM_OKX_PORT": "9204", "SIM_NEWVENUE_PORT": "0", "SIM_GEMINI_PORT": "", "SIM_HOST": "x", "SIM_SEED": "1"}
    assert env_ports("SIM_", "_PORT", env) == {"newvenue": 0, "okx": 9204}  # empty: the declaration's port
    with pytest.raises(ImproperlyConfigured, match="SIM_OKX_PORT"):
        env_ports("SIM_", "_PORT", {"SIM_OKX_PORT": "70000"})


def test_fees_name_only_the_overrides_and_the_venues_declare_their_defaults():
    assert parse_fees("okx:0.08") == {"okx": 0.08}
    assert parse_fees("okx:0.08", DEFAULT_FEES_PCT) == {**DEFAULT_FEES_PCT, "okx": 0.08}


def test_depth_and_deviation_settings_reach_the_ingestor_the_engine_and_normalize(settings, tmp_path):
    from engine_worker.config import EngineConfig
    from ingest_worker.service import IngestorConfig

    settings.DEPTH_LEVELS = 5
    settings.MAX_MARKET_DEVIATION_PCT = 7.5
    assert IngestorConfig.from_settings(settings).depth_levels == 5
    assert EngineConfig.from_settings(settings, DEFAULT_FEES_PCT).max_market_deviation_pct == 7.5
    # normalize builds its parser with the setting too: a 5-level partial-depth frame gives book ticks of 2.
    settings.DEPTH_LEVELS = 2
    frame = {
        "stream": "btcusdt@depth5@100ms",
        "data": {
            "lastUpdateId": 7,
            "bids": [[str(100 - i), "1.0"] for i in range(5)],
            "asks": [[str(101 + i), "1.0"] for i in range(5)],
        },
    }
    capture = tmp_path / "depth.jsonl"
    capture.write_bytes(orjson.dumps(frame) + b"\n")
    out = io.BytesIO()
    stdout = types.SimpleNamespace(buffer=out, write=lambda text: len(text), flush=lambda: None, fileno=lambda: -1)
    with contextlib.redirect_stdout(stdout):  # type: ignore[type-var]
        call_command("normalize", "--exchange", "binance", str(capture), stderr=io.StringIO())
    (book,) = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert (len(book["bids"]), len(book["asks"])) == (2, 2)
