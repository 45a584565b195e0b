"""Strict readers for settings that come from the environment (and `.env`).

A setting that is present but malformed fails loudly at start-up with a
message that names the variable and says what is expected: a typo in
`SPREAD_THRESHOLD_PCT` must never silently become the default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def load_dotenv(path: Path, environ: dict[str, str] | None = None) -> None:
    """Read KEY=VALUE lines from `path` into the environment.

    Variables already set in the environment win, so `.env` only fills gaps.
    Blank lines and `#` comments are skipped; values may be single- or
    double-quoted.
    """
    target = os.environ if environ is None else environ
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ImproperlyConfigured(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        target.setdefault(key, value)


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    source = os.environ if env is None else env
    value = source.get(name)
    if value is None:
        # Docker/Kubernetes secrets: NAME_FILE points at a file holding the value.
        file_path = source.get(f"{name}_FILE")
        if file_path:
            return Path(file_path).read_text().strip()
    return value


def env_str(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    """A string; unset or empty means the default (so `.env.example`'s blank lines change nothing)."""
    value = _raw(name, env)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, env)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")


def env_int(
    name: str,
    default: int,
    env: Mapping[str, str] | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = _raw(name, env)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}")
    return number


def env_float(
    name: str,
    default: float,
    env: Mapping[str, str] | None = None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    value = _raw(name, env)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name}={value!r} must be finite")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}")
    return number


def env_list(name: str, default: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated list; blanks are dropped, items stripped."""
    value = _raw(name, env)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...], env: Mapping[str, str] | None = None) -> str:
    value = env_str(name, default, env).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of: {', '.join(choices)}")
    return value


def env_ports(prefix: str, suffix: str, env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Every `{prefix}NAME{suffix}` variable as a port (0..65535): `SIM_OKX_PORT=9104` -> {"okx": 9104}."""
    source = os.environ if env is None else env
    ports: dict[str, int] = {}
    for name in sorted(source):
        middle = name[len(prefix) : len(name) - len(suffix)]
        if name.startswith(prefix) and name.endswith(suffix) and middle.isalnum() and source[name].strip():
            ports[middle.lower()] = env_int(name, 0, env, minimum=0, maximum=65535)
    return ports


def parse_fees(text: str, defaults: Mapping[str, float] | None = None) -> dict[str, float]:
    """`binance:0.075,coinbase=0.4` -> `defaults` (none: an empty table) with those venues overridden (percent).

    Settings keep only the overrides; the default of each venue is in its declaration
    (`ingest_worker.venues`), which the workers merge them into.
    """
    fees = dict(defaults or {})
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.replace("=", ":").partition(":")
        try:
            fee = float(value)
        except ValueError:
            fee = math.nan
        if not sep or not name.strip() or not math.isfinite(fee) or not 0.0 <= fee < 100.0:
            raise ImproperlyConfigured(f"FEES: {item!r} is not EXCHANGE:PERCENT (for example binance:0.1)")
        fees[name.strip().lower()] = fee
    return fees


def parse_quote_groups(text: str) -> tuple[tuple[str, ...], ...]:
    """`USD,USDT,USDC;EUR,EURC` -> (("USD","USDT","USDC"), ("EUR","EURC")). A quote may be in one group only."""
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for chunk in text.split(";"):
        members = tuple(member.strip().upper() for member in chunk.split(",") if member.strip())
        if not members:
            continue
        for member in members:
            if member in seen or not member.isalnum():
                raise ImproperlyConfigured(f"QUOTE_GROUPS: {member!r} is repeated or not a currency code")
            seen.add(member)
        groups.append(members)
    return tuple(groups)


def enabled_exchanges(exchanges: list[str], binance_enabled: bool, coinbase_enabled: bool) -> list[str]:
    """EXCHANGES less the venues that the seed's BINANCE_ENABLED / COINBASE_ENABLED switch off.

    The ingestor connects these, and /api/health expects a feed of each.
    """
    switched = {"binance": binance_enabled, "coinbase": coinbase_enabled}
    return [name for name in exchanges if switched.get(name, True)]
