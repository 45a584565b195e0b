"""Django settings for Arbitrage Sniper.

Everything is read from the environment (and `.env` at the repository root
when present) through the strict helpers in `arbsite.env`. The defaults make
a fresh clone run: SQLite, a local Redis, the demo exchange simulator.
Every setting is listed with its meaning in `.env.example`.
"""

from __future__ import annotations

from pathlib import Path

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

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

# --- Django ---------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
# Only a development default: set SECRET_KEY in any deployment.
SECRET_KEY = env_str("SECRET_KEY", "insecure-dev-key-change-me")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "signals_app",
    "ingest_worker",
    "engine_worker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "arbsite.urls"
ASGI_APPLICATION = "arbsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(url: str) -> dict[str, object]:
    """One DATABASES entry from a URL: sqlite:///PATH or postgres://USER:PASS@HOST:PORT/NAME?OPTION=VALUE.

    A relative SQLite path is relative to the repository, not to the working directory, so every
    process of the system opens the same file wherever it was started from. PostgreSQL query
    options (sslmode=require, connect_timeout=5, ...) go to the driver (psycopg 3) as they are.
    """
    from urllib.parse import parse_qsl, unquote, urlparse

    from django.core.exceptions import ImproperlyConfigured

    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///db.sqlite3 is relative, sqlite:////var/lib/arb/db.sqlite3 absolute.
        name = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
        name = name or "db.sqlite3"
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name if name == ":memory:" else str(BASE_DIR / name)}
    if parsed.scheme in ("postgres", "postgresql"):
        name = unquote(parsed.path.lstrip("/"))
        try:
            port = parsed.port
        except ValueError:
            raise ImproperlyConfigured(
                f"DATABASE_URL: the port in {_without_password(url)!r} is not a number"
            ) from None
        if not name:
            raise ImproperlyConfigured(
                f"DATABASE_URL: {_without_password(url)!r} names no database (postgres://USER:PASS@HOST:PORT/NAME)"
            )
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": unquote(parsed.hostname or ""),
            "PORT": str(port or ""),
            "OPTIONS": dict(parse_qsl(parsed.query)),
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL={_without_password(url)!r}: use sqlite:///PATH or postgres://USER:PASS@HOST:PORT/NAME"
    )


def _without_password(url: str) -> str:
    """The URL for an error message: a password never reaches a log."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.password is None:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)).geturl()


# TEST_DATABASE_URL (test runs only) wins over DATABASE_URL: `TEST_DATABASE_URL=postgres://... pytest`
# runs the whole suite on PostgreSQL, pytest-django creating and dropping test_<NAME> on that server
# (NAME itself need not exist). Child processes that tests start inherit it too.
# Lower case on purpose: not a Django setting, so the URL and its password never show on a debug page.
_database_url = env_str("TEST_DATABASE_URL", "") or env_str("DATABASE_URL", "sqlite:///db.sqlite3")
DATABASES = {"default": _database(_database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The web process: daphne on WEB_HOST:PORT (loopback unless configured).
WEB_HOST = env_str("WEB_HOST", "127.0.0.1")
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"

LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
}

# --- Pipeline (names from ../shared/DESIGN.md) -----------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# ZeroMQ has no authentication: whoever can push ticks can forge signals, so loopback by default.
ZMQ_ENDPOINT = env_str("ZMQ_ENDPOINT", "tcp://127.0.0.1:5555")
HEALTH_PORT = env_int("HEALTH_PORT", 8080, minimum=1, maximum=65535)
PORT = env_int("PORT", 3000, minimum=1, maximum=65535)
MARKET_SOURCE = env_choice("MARKET_SOURCE", "sim", ("sim", "live"))
# The venues to connect to; empty (the default) means every registered venue (ingest_worker/venues/).
EXCHANGES = [name.lower() for name in env_list("EXCHANGES", [])]
BINANCE_ENABLED = env_bool("BINANCE_ENABLED", True)
COINBASE_ENABLED = env_bool("COINBASE_ENABLED", True)
# Canonical BASE/QUOTE markets to subscribe to; empty means every listed market of the demo assets.
SYMBOLS = [symbol.upper() for symbol in env_list("SYMBOLS", [])]
# Without SYMBOLS: every listed market of these assets whose quote is in QUOTE_GROUPS.
ASSETS = [asset.upper() for asset in env_list("ASSETS", ["BTC", "ETH", "SOL", "XRP", "ADA"])]
# A feed that sends nothing for this long is declared dead and reconnected.
FEED_SILENCE_TIMEOUT_S = env_float("FEED_SILENCE_TIMEOUT_S", 10.0, minimum=0.1)
WS_PING_INTERVAL_S = env_float("WS_PING_INTERVAL_S", 20.0, minimum=0.1)
HEALTH_HOST = env_str("HEALTH_HOST", "127.0.0.1")
ENGINE_HEALTH_PORT = env_int("ENGINE_HEALTH_PORT", 8081, minimum=1, maximum=65535)

SPREAD_THRESHOLD_PCT = env_float("SPREAD_THRESHOLD_PCT", 0.5, minimum=0.0)
# Only the overrides: each venue's default fee is in its declaration (ingest_worker/venues/).
FEES_PCT = parse_fees(env_str("FEES", ""))
STALE_MS = env_int("STALE_MS", 2000, minimum=1)
SIGNAL_UPDATE_MS = env_int("SIGNAL_UPDATE_MS", 1000, minimum=0)
QUOTE_GROUPS = parse_quote_groups(env_str("QUOTE_GROUPS", "USD,USDT,USDC;EUR,EURC"))
# fixed: 1.0 within a quote group; live: rates from the feeds' reference markets (USDT/USD, ...).
QUOTE_RATES = env_choice("QUOTE_RATES", "fixed", ("fixed", "live"))
# With live rates: a reference quote older than this (ms) gives no rate, and its markets sit out.
RATE_STALE_MS = env_int("RATE_STALE_MS", 10_000, minimum=1)
# Depth (DESIGN.md "Depth"): levels a side each book tick carries; the notional (common quote, fees
# included) whose net spread every signal reports; a cap on the walk's cost (0 or empty: none).
DEPTH_LEVELS = env_int("DEPTH_LEVELS", 20, minimum=1, maximum=1000)
TARGET_NOTIONAL = env_float("TARGET_NOTIONAL", 10_000.0, minimum=1.0)
MAX_NOTIONAL = env_float("MAX_NOTIONAL", 0.0, minimum=0.0) or None
# A market further than this from the median mid of the asset's other venues takes no part (0: off).
MAX_MARKET_DEVIATION_PCT = env_float("MAX_MARKET_DEVIATION_PCT", 20.0, minimum=0.0)

# --- Web side: Channels, the workers' health, persistence --------------------
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # socket_timeout None: redis-py 8's default 5 s timeout equals the layer's blocking read, so a
        # quiet feed would drop every browser (channels_redis#422), and with any timeout Python 3.11
        # can lose a cancellation in wait_for (gh-86296). protocol 2: after a Redis restart, pooled
        # RESP3 connections are reused once too often (fixed after redis-py 8.1.0).
        # capacity: a browser's channel holds this many undelivered messages before channels_redis
        # drops new ones (its default, 100, lost signals of a 300-signal burst on a loaded machine);
        # a browser this far behind can refill from signals:history, which keeps as many.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": None, "protocol": 2}],
            "capacity": 1000,
        },
    },
}
# Where the web process reads the ingestor's /health for the dashboard and /api/health (the engine's
# state comes through Redis: keys.ENGINE_HEARTBEAT and keys.ENGINE_MARKETS).
INGESTOR_HEALTH_URL = env_str("INGESTOR_HEALTH_URL", f"http://127.0.0.1:{HEALTH_PORT}/health")
# Signals older than this are deleted from the SQL database by a periodic task.
SIGNAL_RETENTION_DAYS = env_int("SIGNAL_RETENTION_DAYS", 30, minimum=1)
# /api/health fails `persistence` when the oldest signals:stream entry not yet stored in the
# database (not acknowledged by the db-writer group) is older than this: the worker moves the
# stream every second, so a few seconds means it is stopped or cannot keep up.
PERSIST_LAG_LIMIT_S = env_float("PERSIST_LAG_LIMIT_S", 10.0, minimum=0.1)
# When set, `make run` creates (or updates) the admin user `admin` with this password.
ADMIN_PASSWORD = env_str("ADMIN_PASSWORD", "")

# --- Celery (background jobs; broker is the same Redis) --------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Exchange simulator (`manage.py run_exchange_sim`; MARKET_SOURCE=sim points the feeds here) ---
# Loopback by default: the control endpoints (/sim/drop, /sim/dislocate, ...) have no authentication.
SIM_HOST = env_str("SIM_HOST", "127.0.0.1")
# 0 picks a free port (the command prints the chosen ones in its SIM_READY line).
# SIM_<VENUE>_PORT: a venue's simulator port (0 picks a free one); unset, the port its declaration
# names (binance 9101, coinbase 9102, ...). Every such variable is read, whatever the venue.
SIM_PORTS = env_ports("SIM_", "_PORT")
# The venues the simulator serves, each on its port; empty (the default) means every registered venue.
SIM_VENUES = [venue.lower() for venue in env_list("SIM_VENUES", [])]
# Seed of the market model: the same seed gives the same random walks and dislocations.
SIM_SEED = env_int("SIM_SEED", 0, minimum=0)
# Base assets simulated on every venue (Binance and OKX against USDT, the others against USD).
SIM_ASSETS = [asset.upper() for asset in env_list("SIM_ASSETS", ["BTC", "ETH", "SOL", "XRP", "ADA"])]
# Quote updates per second, all markets, of the simulator `make run` starts (its --rate).
SIM_RATE = env_float("SIM_RATE", 50.0, minimum=0.1)

# --- Celery schedule (signals_app.tasks; the worker runs beat: `celery -A arbsite worker --beat`) ---
CELERY_BEAT_SCHEDULE = {
    # Drains signals:stream into the database. `expires`: a run not started within 5 s (a
    # worker busy with a long drain) is dropped rather than queued, so runs never pile up.
    "persist-signals": {
        "task": "signals_app.tasks.persist_signals",
        "schedule": 1.0,
        "options": {"expires": 5.0},
    },
    # Deletes rows older than SIGNAL_RETENTION_DAYS.
    "prune-signals": {
        "task": "signals_app.tasks.prune_signals",
        "schedule": 3600.0,
        "options": {"expires": 600.0},
    },
}
# Keep reconnecting to Redis however long it is away (Celery's default gives up after 100 tries).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Celery 6's default, set now: it silences a deprecation warning on every lost connection and
# changes nothing here (no task uses late acknowledgement; the stream keeps what is not stored).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Beat sends the persist task every second: keep Celery's three lines per run ("Sending due
# task", "received", "succeeded") out of INFO logs. Task failures are still logged (ERROR);
# the tasks log what they did themselves.
_celery_chatter_level = {"DEBUG": "DEBUG", "INFO": "WARNING"}.get(LOG_LEVEL, LOG_LEVEL)
_loggers = LOGGING.get("loggers")
LOGGING["loggers"] = {
    **(_loggers if isinstance(_loggers, dict) else {}),
    **{
        name: {"level": _celery_chatter_level} for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
    },
}
