"""The JSON API: recent and long-term signal history, a signal's books, the quote cache with its spread matrix, health.

Plain function views in the healthchecks style. Each view reads its query parameters
through strict helpers that raise `BadParameter`, which `api_view` turns into a 400
naming the parameter; Redis or the database being away is a 503, never a 500. The
published signal JSON is passed through as stored bytes, never re-serialised, so a
client sees exactly what the engine published. The OpenAPI description of these views
is `signals_app.api_schema`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import heapq
import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypedDict, cast

import orjson
import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from arbsite.env import enabled_exchanges
from signals_app.api_schema import SCHEMA
from signals_app.contracts import keys
from signals_app.contracts.depth_view import DepthViewDecodeError, decode_depth_view, depth_view_key
from signals_app.contracts.heartbeat import (
    FEED_LIVE,
    FeedStatus,
    HealthDecodeError,
    Percentiles,
    SuspectMarket,
    decode_heartbeat,
    decode_ingestor_health,
)
from signals_app.contracts.markets import MarketsDecodeError, Matrix
from signals_app.contracts.markets import decode as decode_markets
from signals_app.contracts.signal import CLOSE, CLOSE_REASONS, OPEN, UPDATE
from signals_app.contracts.tick import Tick, TickDecodeError, to_dict
from signals_app.contracts.tick import decode as decode_tick
from signals_app.models import Signal
from signals_app.persist_lag import PersistenceCheck, check_persistence
from signals_app.relay import current_relay

log = logging.getLogger("signals_app.api")

HISTORY_LIMIT_DEFAULT = 50
HISTORY_LIMIT_MAX = keys.SIGNALS_HISTORY_KEEP  # the engine keeps no more than this in signals:history
SIGNALS_LIMIT_DEFAULT = 100
SIGNALS_LIMIT_MAX = 500
STATUSES = (OPEN, UPDATE, CLOSE)
BIGINT_MAX = 2**63 - 1  # larger integers would overflow the database's BIGINT: a 400, not a 500
INGESTOR_TIMEOUT_S = 0.5  # /api/health must answer promptly even when the ingestor hangs
SCAN_BATCH = 500

# A view takes the request and its URL's captured parameters (`signal_id` of /api/signals/<id>/depth).
View = Callable[..., HttpResponse]


# --- responses and parameters --------------------------------------------------------
class ErrorBody(TypedDict):
    error: str


class BadParameter(ValueError):
    """A query parameter the API refuses; the message names it and says what is expected."""


def json_response(payload: object, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")


def error(message: str, status: int = 400) -> HttpResponse:
    body: ErrorBody = {"error": message}
    return json_response(body, status)


def api_view(view: View) -> View:
    """GET only; bad parameters are a 400, Redis or the database away a 503; live data is never cached."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, **captured: str) -> HttpResponse:
        if request.method != "GET":
            response = error(f"method {request.method} not allowed: this endpoint answers GET only", 405)
            response["Allow"] = "GET"
            return response
        try:
            response = view(request, **captured)
        except BadParameter as exc:
            response = error(str(exc), 400)
        except (RedisError, OSError) as exc:
            log.warning("api %s: redis unavailable: %s", request.path, exc)
            response = error(f"redis unavailable: {exc}", 503)
            response._has_been_logged = True  # type: ignore[attr-defined]  # just above, not again by Django
        except DatabaseError as exc:
            log.warning("api %s: database unavailable: %s", request.path, exc)
            response = error(f"database unavailable: {exc}", 503)
            response._has_been_logged = True  # type: ignore[attr-defined]
        response["Cache-Control"] = "no-store"
        return response

    # Every view is GET only and changes nothing, so CSRF has nothing to protect; without the
    # exemption a POST would get the CSRF middleware's 403 page instead of our JSON 405.
    return exempt_from_csrf(wrapper)


def exempt_from_csrf(view: View) -> View:
    return cast(View, csrf_exempt(view))


_DIGITS = re.compile(r"[0-9]{1,19}")


def int_param(request: HttpRequest, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    """A decimal integer in [minimum, maximum]; an absent or empty parameter gives `default`."""
    raw: str = request.GET.get(name, "")
    if raw == "":
        return default
    if not _DIGITS.fullmatch(raw):
        raise BadParameter(f"{name}: {raw[:40]!r} is not a whole number between {minimum} and {maximum}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise BadParameter(f"{name}: {value} is out of range: use {minimum} to {maximum}")
    return value


def name_param(request: HttpRequest, name: str) -> str | None:
    """An asset or exchange name: letters and digits only, up to 32; empty means no filter."""
    raw: str = request.GET.get(name, "").strip()
    if raw == "":
        return None
    if len(raw) > 32 or not raw.isascii() or not raw.isalnum():
        raise BadParameter(f"{name}: {raw[:40]!r} is not a name (letters and digits, at most 32)")
    return raw


# --- Redis ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _redis_for(url: str) -> redis.Redis:
    # One pooled client per URL (tests point REDIS_URL at their own server). Short timeouts and
    # a single immediate retry: a request must fail fast when Redis is away, and the retry
    # covers a pooled connection that died while Redis restarted.
    return redis.Redis.from_url(
        url, socket_connect_timeout=0.5, socket_timeout=1.0, retry=Retry(NoBackoff(), 1), health_check_interval=30
    )


def redis_client() -> redis.Redis:
    return _redis_for(settings.REDIS_URL)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- GET /api/signals/history ---------------------------------------------------------
@api_view
def signals_history(request: HttpRequest) -> HttpResponse:
    """The newest `limit` signals of `signals:history`, oldest first, each byte for byte as published."""
    limit = int_param(request, "limit", HISTORY_LIMIT_DEFAULT, 1, HISTORY_LIMIT_MAX)
    assert limit is not None
    members = cast(list[bytes], redis_client().zrange(keys.SIGNALS_HISTORY, -limit, -1))
    return HttpResponse(b"[" + b",".join(members) + b"]", content_type="application/json")


# --- GET /api/signals ----------------------------------------------------------------
class SignalFilters(TypedDict):
    asset: str | None
    exchange: str | None
    status: str | None
    close_reason: str | None  # one of contracts.signal.CLOSE_REASONS: closes only
    since: int | None  # Unix ms, inclusive
    until: int | None  # Unix ms, exclusive
    cursor: tuple[int, int] | None  # (timestamp_ms, id) of the last row of the previous page
    limit: int


def encode_cursor(timestamp_ms: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{timestamp_ms}:{row_id}".encode()).decode().rstrip("=")


_CURSOR = re.compile(r"([0-9]{1,19}):([0-9]{1,19})")


def decode_cursor(raw: str) -> tuple[int, int]:
    problem = BadParameter(f"cursor: {raw[:40]!r} is not a cursor this API returned (use next_cursor as given)")
    if len(raw) > 64:
        raise problem
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise problem from None
    match = _CURSOR.fullmatch(text)
    if match is None or encode_cursor(int(match[1]), int(match[2])) != raw.rstrip("="):
        raise problem
    timestamp_ms, row_id = int(match[1]), int(match[2])
    if timestamp_ms > BIGINT_MAX or row_id > BIGINT_MAX:
        raise problem
    return timestamp_ms, row_id


def signal_filters(request: HttpRequest) -> SignalFilters:
    asset = name_param(request, "asset")
    exchange = name_param(request, "exchange")
    status = request.GET.get("status", "").strip().lower() or None
    if status is not None and status not in STATUSES:
        raise BadParameter(f"status: {status[:40]!r} is not one of {', '.join(STATUSES)}")
    close_reason = request.GET.get("close_reason", "").strip().lower() or None
    if close_reason is not None and close_reason not in CLOSE_REASONS:
        raise BadParameter(f"close_reason: {close_reason[:40]!r} is not one of {', '.join(CLOSE_REASONS)}")
    since = int_param(request, "since", None, 0, BIGINT_MAX)
    until = int_param(request, "until", None, 0, BIGINT_MAX)
    if since is not None and until is not None and since > until:
        raise BadParameter(f"since ({since}) is after until ({until}): since must be <= until")
    raw_cursor = request.GET.get("cursor", "")
    limit = int_param(request, "limit", SIGNALS_LIMIT_DEFAULT, 1, SIGNALS_LIMIT_MAX)
    assert limit is not None
    return {
        "asset": asset.upper() if asset else None,
        "exchange": exchange.lower() if exchange else None,
        "status": status,
        "close_reason": close_reason,
        "since": since,
        "until": until,
        "cursor": decode_cursor(raw_cursor) if raw_cursor else None,
        "limit": limit,
    }


def signal_querysets(filters: SignalFilters) -> list[QuerySet[Signal]]:
    """The queries of one page, newest first; each can walk one of the model's (field, timestamp_ms) indexes.

    An exchange matches either side of a signal. Rather than one `buy OR sell` query, which
    must sort every matching row before it can apply the limit, it is two queries, one per
    side, each reading at most a page from its own index; the caller merges them.
    """
    query = Signal.objects.all()
    if filters["asset"] is not None:
        query = query.filter(asset=filters["asset"])
    if filters["status"] is not None:
        query = query.filter(status=filters["status"])
    if filters["close_reason"] is not None:
        query = query.filter(close_reason=filters["close_reason"])
    if filters["since"] is not None:
        query = query.filter(timestamp_ms__gte=filters["since"])
    if filters["until"] is not None:
        query = query.filter(timestamp_ms__lt=filters["until"])
    if filters["cursor"] is not None:
        timestamp_ms, row_id = filters["cursor"]
        # Rows strictly after the cursor in (timestamp_ms, id) descending order; the redundant
        # `timestamp_ms <= ts` gives the planner a range to seek to in the index.
        query = query.filter(
            Q(timestamp_ms__lt=timestamp_ms) | Q(timestamp_ms=timestamp_ms, id__lt=row_id),
            timestamp_ms__lte=timestamp_ms,
        )
    query = query.order_by("-timestamp_ms", "-id")
    exchange = filters["exchange"]
    if exchange is None:
        return [query]
    return [query.filter(buy_exchange=exchange), query.filter(sell_exchange=exchange)]


def _page_rows(filters: SignalFilters) -> list[tuple[int, int, str]]:
    """Up to limit + 1 rows (timestamp_ms, id, payload), newest first: the extra row says a next page exists."""
    wanted = filters["limit"] + 1
    parts: list[Iterator[tuple[int, int, str]]] = [
        iter(query.values_list("timestamp_ms", "id", "payload")[:wanted]) for query in signal_querysets(filters)
    ]
    rows: list[tuple[int, int, str]] = []
    seen: set[int] = set()
    for row in heapq.merge(*parts, key=lambda row: (-row[0], -row[1])):
        if row[1] not in seen:  # a row whose two sides are the same exchange is in both parts
            seen.add(row[1])
            rows.append(row)
            if len(rows) == wanted:
                break
    return rows


@api_view
def signals(request: HttpRequest) -> HttpResponse:
    """Long-term history from the SQL database: filtered, newest first, keyset-paginated."""
    filters = signal_filters(request)
    rows = _page_rows(filters)
    next_cursor: str | None = None
    if len(rows) > filters["limit"]:
        rows = rows[: filters["limit"]]
        next_cursor = encode_cursor(rows[-1][0], rows[-1][1])
    # The payloads are spliced in as stored: the exact published JSON. The writer decodes each
    # one to fill the other columns, so a row exists only for valid signal JSON.
    body = b'{"results":[' + b",".join(row[2].encode() for row in rows) + b'],"next_cursor":'
    return HttpResponse(body + orjson.dumps(next_cursor) + b"}", content_type="application/json")


# --- GET /api/signals/<id>/depth ------------------------------------------------------
SIGNAL_ID_MAX = 256  # an id is ASSET:buy:sell:opened_at; anything longer is not one


@api_view
def signal_depth(request: HttpRequest, signal_id: str) -> HttpResponse:
    """The books and profit curve the engine left beside the signal (`signal:depth:{id}`), as stored.

    404 when the key is absent: expired (an hour after the opportunity's last update with depth)
    or never written (a signal without a book on both markets); 502 when it holds no depth view.
    """
    if len(signal_id) > SIGNAL_ID_MAX:
        raise BadParameter(f"id: {signal_id[:40]!r}... is not a signal id (at most {SIGNAL_ID_MAX} characters)")
    try:
        data = cast(bytes | None, redis_client().get(depth_view_key(signal_id)))
        if data is None:
            return error(f"no books held for signal {signal_id!r}: expired, or it carried no depth", 404)
        decode_depth_view(data)
    except (DepthViewDecodeError, ResponseError) as exc:
        if isinstance(exc, ResponseError) and not str(exc).startswith("WRONGTYPE"):
            raise  # Redis refused the command: a 503 from api_view; WRONGTYPE is a key that holds no string
        log.warning("api %s: %s holds no depth view: %s", request.path, depth_view_key(signal_id), exc)
        response = error(f"malformed depth view for signal {signal_id!r}: {exc}", 502)
        response._has_been_logged = True  # type: ignore[attr-defined]  # just above, not again by Django
        return response
    # Checked, then passed through as the engine wrote it (as the history is).
    return HttpResponse(data, content_type="application/json")


# --- GET /api/markets -------------------------------------------------------------------
class MarketsEngine(TypedDict):
    """Where the matrix comes from: the engine's own, published beside its heartbeat (keys.ENGINE_MARKETS)."""

    ok: bool  # False: no matrix from a running engine (the body's matrix is then empty or old)
    error: str | None
    timestamp: int | None  # Unix ms, the engine's clock the matrix was computed at
    age_ms: int | None
    threshold_pct: float | None
    fees_pct: dict[str, float] | None  # the taker fee (percent) the engine charges each exchange
    quote_rates: str | None
    quote_groups: list[list[str]] | None
    exchanges: list[str] | None  # the exchanges and assets of the engine's matrix
    assets: list[str] | None


class MarketsBody(TypedDict):
    timestamp: int  # Unix ms when the cache was read: ages and staleness are relative to it
    stale_ms: int | None  # the engine's STALE_MS; None when the engine publishes no matrix
    markets: list[dict[str, Any]]
    exchanges: list[str]
    assets: list[str]
    matrix: Matrix  # the engine's; {} when it publishes none (see engine.error)
    engine: MarketsEngine


def cached_quotes(client: redis.Redis) -> list[Tick]:
    """Every quote in the `price:*` cache (SCAN, never KEYS: the web must not block Redis)."""
    names: list[bytes] = list(client.scan_iter(match=b"price:*", count=SCAN_BATCH))
    quotes: list[Tick] = []
    for start in range(0, len(names), SCAN_BATCH):
        for data in client.mget(names[start : start + SCAN_BATCH]):
            if data is None:  # expired between SCAN and MGET
                continue
            try:
                quotes.append(decode_tick(data))
            except TickDecodeError:
                log.warning("markets: skipped a price key that holds no quote tick")
    quotes.sort(key=lambda tick: (tick.exchange, tick.symbol))
    return quotes


def engine_matrix(client: redis.Redis, clock_ms: int) -> tuple[MarketsEngine, Matrix, int | None]:
    """(where it comes from, the matrix, its STALE_MS): the spread matrix the engine published last.

    The web evaluates no spread itself: the engine's matrix is computed with the engine's fees,
    STALE_MS and rates, the ones its signals are raised with, whatever this process's settings say.
    """
    check: MarketsEngine = {
        "ok": False,
        "error": None,
        "timestamp": None,
        "age_ms": None,
        "threshold_pct": None,
        "fees_pct": None,
        "quote_rates": None,
        "quote_groups": None,
        "exchanges": None,
        "assets": None,
    }
    data = client.get(keys.ENGINE_MARKETS)
    if data is None:
        check["error"] = (
            f"no spread matrix from the engine in the last {keys.ENGINE_MARKETS_TTL_S} s: is run_engine running?"
        )
        return check, {}, None
    try:
        published = decode_markets(data)
    except MarketsDecodeError as exc:
        check["error"] = f"malformed engine matrix: {exc}"
        return check, {}, None
    age = clock_ms - published["timestamp"]
    check["timestamp"] = published["timestamp"]
    check["age_ms"] = age
    check["threshold_pct"] = published["threshold_pct"]
    check["fees_pct"] = published["fees_pct"]
    check["quote_rates"] = published["quote_rates"]
    check["quote_groups"] = published["quote_groups"]
    check["exchanges"] = published["exchanges"]
    check["assets"] = published["assets"]
    if age >= keys.ENGINE_MARKETS_TTL_S * 1000:
        check["error"] = f"the engine's matrix is {age / 1000:.1f} s old"
    else:
        check["ok"] = True
    return check, published["matrix"], published["stale_ms"]


@api_view
def markets(request: HttpRequest) -> HttpResponse:
    """The latest quote of every market in the quote cache, and the engine's net spread matrix per asset."""
    client = redis_client()
    quotes = cached_quotes(client)
    clock_ms = now_ms()
    engine, matrix, stale_ms = engine_matrix(client, clock_ms)
    body: MarketsBody = {
        "timestamp": clock_ms,
        "stale_ms": stale_ms,
        "markets": [to_dict(tick) for tick in quotes],
        "exchanges": sorted({tick.exchange for tick in quotes}),
        "assets": sorted({tick.symbol.partition("/")[0] for tick in quotes}),
        "matrix": matrix,
        "engine": engine,
    }
    return json_response(body)


# --- GET /api/health ------------------------------------------------------------------
class Check(TypedDict):
    ok: bool
    error: str | None


class EngineCheck(TypedDict):
    ok: bool
    error: str | None
    heartbeat_age_ms: int | None
    ticks: int | None
    messages: int | None
    bad_messages: int | None
    signals: dict[str, int]  # raised so far, by status
    open_opportunities: int | None
    signals_published: int | None
    signals_pending: int | None
    signals_dropped: int | None  # lost: held beyond the engine's bound while Redis was away
    bad_ticks: int | None  # ticks of well-formed messages that broke a rule, each dropped alone
    signals_holding: int | None  # held now while Redis is away or frozen
    signals_held: int | None  # held in total
    redis_outages: int | None
    signals_republished: int | None  # unanswered writes written again on a new connection
    signals_refused: int | None  # refused by an error reply (counted, not sent again)
    latency_frame_to_decision: Percentiles | None  # p50_us, p90_us, p99_us, max_us
    latency_frame_to_signal_published: Percentiles | None
    suspect_markets: list[SuspectMarket]  # left out: too far from the other venues' median mid


class FeedCheck(TypedDict):
    ok: bool
    state: str | None  # the ingestor's word: live, reconnecting, connecting, ...; None when unknown
    last_message_age_s: float | None
    message_rate: float | None  # frames per second


class HealthBody(TypedDict):
    status: str  # "ok" or "degraded"
    failing: list[str]  # "redis", "database", "engine", "ingestor", "persistence", "feed:<exchange>"
    timestamp: int
    redis: Check
    database: Check
    engine: EngineCheck
    ingestor: Check
    feeds: dict[str, FeedCheck]
    persistence: PersistenceCheck
    # This process's live-feed relay (signals_app.relay.SignalRelay.stats: relayed, missed,
    # overflows, queued, browsers...); null until its first WebSocket started it.
    relay: dict[str, Any] | None


def check_redis(client: redis.Redis) -> Check:
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    return {"ok": True, "error": None}


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    return {"ok": True, "error": None}


def check_engine(client: redis.Redis, redis_ok: bool, clock_ms: int) -> EngineCheck:
    """The engine is healthy when its heartbeat (refreshed every second, EX 5) is under 5 s old."""
    check: EngineCheck = {
        "ok": False,
        "error": None,
        "heartbeat_age_ms": None,
        "ticks": None,
        "messages": None,
        "bad_messages": None,
        "signals": {},
        "open_opportunities": None,
        "signals_published": None,
        "signals_pending": None,
        "signals_dropped": None,
        "bad_ticks": None,
        "signals_holding": None,
        "signals_held": None,
        "redis_outages": None,
        "signals_republished": None,
        "signals_refused": None,
        "latency_frame_to_decision": None,
        "latency_frame_to_signal_published": None,
        "suspect_markets": [],
    }
    if not redis_ok:
        check["error"] = "heartbeat unreadable: redis unavailable"
        return check
    try:
        data = client.get(keys.ENGINE_HEARTBEAT)
    except (RedisError, OSError) as exc:
        check["error"] = f"heartbeat unreadable: {exc}"
        return check
    if data is None:
        check["error"] = f"no heartbeat in the last {keys.ENGINE_HEARTBEAT_TTL_S} s: is run_engine running?"
        return check
    try:
        heartbeat = decode_heartbeat(data)
    except HealthDecodeError as exc:
        check["error"] = f"malformed heartbeat: {exc}"
        return check
    age = clock_ms - heartbeat["timestamp"]
    check["heartbeat_age_ms"] = age
    check["ticks"] = heartbeat["ticks"]
    check["messages"] = heartbeat["messages"]
    check["bad_messages"] = heartbeat["bad_messages"]
    check["signals"] = heartbeat["signals"]
    check["open_opportunities"] = heartbeat["open_opportunities"]
    check["signals_published"] = heartbeat["signals_published"]
    check["signals_pending"] = heartbeat["signals_pending"]
    check["signals_dropped"] = heartbeat["signals_dropped"]
    check["bad_ticks"] = heartbeat["bad_ticks"]
    check["signals_holding"] = heartbeat["signals_holding"]
    check["signals_held"] = heartbeat["signals_held"]
    check["redis_outages"] = heartbeat["redis_outages"]
    check["signals_republished"] = heartbeat["signals_republished"]
    check["signals_refused"] = heartbeat["signals_refused"]
    check["latency_frame_to_decision"] = heartbeat["latency_frame_to_decision"]
    check["latency_frame_to_signal_published"] = heartbeat["latency_frame_to_signal_published"]
    check["suspect_markets"] = heartbeat["suspect_markets"]
    if age >= keys.ENGINE_HEARTBEAT_TTL_S * 1000:
        check["error"] = f"heartbeat is {age / 1000:.1f} s old"
        return check
    check["ok"] = True
    return check


# Bypass any HTTP proxy from the environment: the workers' /health is on this machine or network.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch_ingestor_health(url: str) -> tuple[Check, dict[str, FeedStatus]]:
    """The feeds of the ingestor's /health body; it answers 503 (with the same body) when a feed is not live."""
    try:
        try:
            with _direct.open(url, timeout=INGESTOR_TIMEOUT_S) as response:
                data = response.read(1_000_000)
        except urllib.error.HTTPError as exc:
            with exc:
                data = exc.read(1_000_000)
        body = decode_ingestor_health(data)
    # URLError, timeouts and HealthDecodeError are among these; HTTPException for what is not HTTP.
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return {"ok": False, "error": f"{url}: {exc}"}, {}
    return {"ok": True, "error": None}, body["feeds"]


def configured_feeds() -> list[str]:
    # The same rule as the ingestor's: a feed it is not told to run is not expected of it.
    return enabled_exchanges(settings.EXCHANGES, settings.BINANCE_ENABLED, settings.COINBASE_ENABLED)


def check_feeds(reported: dict[str, FeedStatus]) -> dict[str, FeedCheck]:
    """A feed is fine when it is live and its last frame is younger than FEED_SILENCE_TIMEOUT_S."""
    feeds: dict[str, FeedCheck] = {}
    unknown: FeedStatus = {"state": None, "last_message_age_s": None, "message_rate": None}
    for name in sorted(set(configured_feeds()) | set(reported)):
        feed = reported.get(name, unknown)
        age = feed["last_message_age_s"]
        feeds[name] = {
            "ok": feed["state"] == FEED_LIVE and age is not None and age < settings.FEED_SILENCE_TIMEOUT_S,
            "state": feed["state"],
            "last_message_age_s": age,
            "message_rate": feed["message_rate"],
        }
    return feeds


@api_view
def health(request: HttpRequest) -> HttpResponse:
    """200 when Redis, the database, the engine and every feed are fine; 503 naming each part that is not."""
    client = redis_client()
    redis_check = check_redis(client)
    database_check = check_database()
    engine_check = check_engine(client, redis_check["ok"], now_ms())
    ingestor_check, reported = fetch_ingestor_health(settings.INGESTOR_HEALTH_URL)
    feeds = check_feeds(reported)
    persistence = check_persistence(client, redis_check["ok"], settings.PERSIST_LAG_LIMIT_S)
    failing = [
        name
        for name, ok in (
            ("redis", redis_check["ok"]),
            ("database", database_check["ok"]),
            ("engine", engine_check["ok"]),
            ("ingestor", ingestor_check["ok"]),
            ("persistence", persistence["ok"]),
        )
        if not ok
    ]
    failing.extend(f"feed:{name}" for name, feed in feeds.items() if not feed["ok"])
    body: HealthBody = {
        "status": "degraded" if failing else "ok",
        "failing": failing,
        "timestamp": now_ms(),
        "redis": redis_check,
        "database": database_check,
        "engine": engine_check,
        "ingestor": ingestor_check,
        "feeds": feeds,
        "persistence": persistence,
        "relay": relay.stats() if (relay := current_relay()) is not None else None,
    }
    _log_health_change(failing)
    response = json_response(body, 503 if failing else 200)
    # The dashboard polls this endpoint: a degraded pipeline is reported once per change (above),
    # not as one django.request ERROR line per poll.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


_last_failing: list[str] = []


def _log_health_change(failing: list[str]) -> None:
    global _last_failing
    if failing != _last_failing:
        if failing:
            log.warning("health: degraded: %s failing", ", ".join(failing))
        else:
            log.info("health: ok again")
        _last_failing = failing


# --- GET /api/schema and unknown API paths --------------------------------------------
@api_view
def schema(request: HttpRequest) -> HttpResponse:
    """The OpenAPI 3.1 description of this API."""
    return json_response(SCHEMA)


def _not_found(request: HttpRequest) -> HttpResponse:
    """Any other path under /api/: a JSON 404 rather than Django's HTML page."""
    return error(f"no such endpoint: {request.path} (see /api/schema)", 404)


not_found = exempt_from_csrf(_not_found)
