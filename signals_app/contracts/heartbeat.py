"""The workers' health as typed values, and the one encoding that writer and reader both use.

- The engine's heartbeat (`EngineHeartbeat`): `engine_worker.service` writes it every second to
  `keys.ENGINE_HEARTBEAT` (EX 5) and serves it, with `status` and `failing`, as its `/health`
  (`EngineHealth`); `/api/health` reads it from Redis.
- The ingestor's `/health` body (`IngestorHealth`, one `FeedHealth` per feed): `ingest_worker.service`
  builds it from each `Feed.snapshot()`; `/api/health` fetches it over HTTP.

Decoding is strict where a reader depends on a field (a heartbeat without an integer
`timestamp` tells no age; an ingestor body without `feeds` tells nothing) and tolerant
elsewhere: a field that is missing or of the wrong type reads as None, so a worker of another
version still shows what it can, and nothing raises past the decoder.
"""

from __future__ import annotations

from typing import Any, TypedDict

import orjson

Percentiles = dict[str, float | None]  # p50_us, p90_us, p99_us, max_us (arbsite.latency.LatencyWindow)
# What held up a worker's loop (arbsite.stalls.StallProbe.snapshot): the cyclic GC's pauses by
# generation, the objects gc.freeze() left out of its collections, the loop's late wake-ups by
# lateness, and the loop's own steps (count, how many over 5 ms, total and longest ms).
Stalls = dict[str, Any]

FEED_LIVE = "live"  # the ingestor's word for a feed that is up (ingest_worker.feed.LIVE)


class HealthDecodeError(ValueError):
    """Bytes that are not the health value they should be; the message says what is wrong."""


# --- the engine ---------------------------------------------------------------------------
class EngineHeartbeat(TypedDict):
    """The engine's counters and latencies; every field but `timestamp` may read as None."""

    timestamp: int  # Unix ms, the engine's clock when it was written
    ticks: int | None
    messages: int | None  # ZeroMQ messages received: the ticks of one frame, or one feed state
    bad_messages: int | None  # messages that were no message of ticks, each dropped whole
    bad_ticks: int | None  # ticks of well-formed messages that broke a rule, each dropped alone
    signals: dict[str, int]  # raised so far, by status
    open_opportunities: int | None
    feeds: dict[str, str]  # exchange -> the last feed state the ingestor announced
    redis_connected: bool | None
    signals_pending: int | None  # held for Redis
    signals_published: int | None
    signals_dropped: int | None  # held beyond the publisher's bound while Redis was away: lost
    # The hold (engine_worker.publish): signals waiting now for Redis, signals that had to wait in
    # total, times Redis went away (lost, unreachable, or its replies over a second late), signals
    # written again after their connection ended unanswered (Redis may have applied them: maybe
    # twice), signals with a command Redis refused, and the refused commands by name.
    signals_holding: int | None
    signals_held: int | None
    redis_outages: int | None
    signals_republished: int | None
    signals_refused: int | None
    redis_errors: dict[str, int]
    # engine:open at start-up (DESIGN.md lifecycle rule 8): what was found, restored and deleted as
    # no open signal, and whether Redis could not be reached (then the engine started without it).
    open_restore: OpenRestore | None
    stalls: Stalls | None  # what held up the engine's loop (arbsite.stalls)
    latency_frame_to_decision: Percentiles | None
    latency_engine_receive_to_decision: Percentiles | None
    latency_frame_to_signal_published: Percentiles | None
    # From the write that carried a signal to Redis's last reply to it, read (engine_worker.publish).
    latency_signal_write_to_reply: Percentiles | None
    quote_rates: dict[str, float | None] | None  # QUOTE_RATES=live: each currency's rate now; else None
    # Markets that took no part in the last 10 s: their mid too far from the other venues' median.
    suspect_markets: list[SuspectMarket]


class OpenRestore(TypedDict):
    """What the engine found in `keys.ENGINE_OPEN` when it started."""

    found: int  # entries
    restored: int | None  # held again by the engine (Engine.restore_open), resuming
    invalid: int  # not a whole open/update signal of their id: deleted, not restored
    redis_unreachable: bool  # no answer within the start-up wait: started without them


class SuspectMarket(TypedDict):
    """A market the engine leaves out (MAX_MARKET_DEVIATION_PCT): a ticker collision, a halted market."""

    exchange: str
    symbol: str
    mid: float  # in its quote group's common currency
    median_mid: float  # of the asset's other venues in that group
    deviation_pct: float  # |mid - median| / median, percent (4 dp)
    venues_compared: int
    seen_ms: int  # the engine clock when it was last found suspect


class EngineHealth(EngineHeartbeat):
    """The engine's `/health` body: its heartbeat, and what is failing (`redis` when Redis is away)."""

    status: str  # "ok" or "degraded"
    failing: list[str]


def encode_heartbeat(heartbeat: EngineHeartbeat) -> bytes:
    return orjson.dumps(heartbeat)


def decode_heartbeat(data: bytes | str) -> EngineHeartbeat:
    """The heartbeat in `data`; HealthDecodeError when it has no integer timestamp."""
    raw = _object(data)
    if "timestamp" not in raw:
        raise HealthDecodeError("no 'timestamp'")
    timestamp = _int_or_none(raw["timestamp"])
    if timestamp is None:
        raise HealthDecodeError("timestamp is not an integer")
    counts = raw.get("signals")
    feeds = raw.get("feeds")
    connected = raw.get("redis_connected")
    rates = raw.get("quote_rates")
    stalls = raw.get("stalls")
    return {
        "timestamp": timestamp,
        "ticks": _int_or_none(raw.get("ticks")),
        "messages": _int_or_none(raw.get("messages")),
        "bad_messages": _int_or_none(raw.get("bad_messages")),
        "bad_ticks": _int_or_none(raw.get("bad_ticks")),
        "signals": _counts(counts),
        "open_opportunities": _int_or_none(raw.get("open_opportunities")),
        "feeds": (
            {str(name): state for name, state in feeds.items() if isinstance(state, str)}
            if isinstance(feeds, dict)
            else {}
        ),
        "redis_connected": connected if isinstance(connected, bool) else None,
        "signals_pending": _int_or_none(raw.get("signals_pending")),
        "signals_published": _int_or_none(raw.get("signals_published")),
        "signals_dropped": _int_or_none(raw.get("signals_dropped")),
        "signals_holding": _int_or_none(raw.get("signals_holding")),
        "signals_held": _int_or_none(raw.get("signals_held")),
        "redis_outages": _int_or_none(raw.get("redis_outages")),
        "signals_republished": _int_or_none(raw.get("signals_republished")),
        "signals_refused": _int_or_none(raw.get("signals_refused")),
        "redis_errors": _counts(raw.get("redis_errors")),
        "open_restore": _open_restore(raw.get("open_restore")),
        "stalls": stalls if isinstance(stalls, dict) else None,
        "latency_frame_to_decision": _percentiles(raw.get("latency_frame_to_decision")),
        "latency_engine_receive_to_decision": _percentiles(raw.get("latency_engine_receive_to_decision")),
        "latency_frame_to_signal_published": _percentiles(raw.get("latency_frame_to_signal_published")),
        "latency_signal_write_to_reply": _percentiles(raw.get("latency_signal_write_to_reply")),
        "quote_rates": _percentiles(rates),  # the same shape: name -> number or None
        "suspect_markets": _suspects(raw.get("suspect_markets")),
    }


def _counts(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(name): count for name, count in value.items() if _int_or_none(count) is not None}


def _open_restore(value: object) -> OpenRestore | None:
    """A well-formed open_restore, else None."""
    if not isinstance(value, dict):
        return None
    found, restored, invalid = (_int_or_none(value.get(name)) for name in ("found", "restored", "invalid"))
    unreachable = value.get("redis_unreachable")
    if found is None or invalid is None or not isinstance(unreachable, bool):
        return None
    return {"found": found, "restored": restored, "invalid": invalid, "redis_unreachable": unreachable}


def _suspects(value: object) -> list[SuspectMarket]:
    """The well-formed entries of a heartbeat's suspect_markets (a malformed one is left out)."""
    if not isinstance(value, list):
        return []
    suspects: list[SuspectMarket] = []
    for entry in value:
        if not isinstance(entry, dict):
            continue
        exchange, symbol = entry.get("exchange"), entry.get("symbol")
        mid, median, deviation = (_float_or_none(entry.get(name)) for name in ("mid", "median_mid", "deviation_pct"))
        compared, seen = _int_or_none(entry.get("venues_compared")), _int_or_none(entry.get("seen_ms"))
        if not (isinstance(exchange, str) and isinstance(symbol, str)):
            continue
        if mid is None or median is None or deviation is None or compared is None or seen is None:
            continue
        suspects.append(
            {
                "exchange": exchange,
                "symbol": symbol,
                "mid": mid,
                "median_mid": median,
                "deviation_pct": deviation,
                "venues_compared": compared,
                "seen_ms": seen,
            }
        )
    return suspects


# --- the ingestor -------------------------------------------------------------------------
class FeedHealth(TypedDict):
    """One feed in the ingestor's `/health` (`ingest_worker.feed.Feed.snapshot`)."""

    state: str  # starting, connecting, live, reconnecting, stopped
    last_message_age_s: float | None  # None: no frame yet
    frames: int
    message_rate: float  # frames per second
    ticks_sent: int
    connects: int
    disconnects: int
    dead_declared: int
    resyncs: int
    markets: int
    connections: list[dict[str, Any]]  # per connection, the ingestor's own detail
    latency_frame_to_tick_sent: Percentiles
    parse: dict[str, object]  # frames, ticks and drops by reason (ingest_worker.venues.base.ParseStats)
    books: dict[str, int]  # book ticks made; clock_skewed: those over a second off the receive time


class IngestorHealth(TypedDict):
    """The ingestor's `/health` body; the ingestor answers 503 with it when a feed is not live."""

    status: str  # "ok" or "degraded"
    not_live: list[str]
    feeds: dict[str, FeedHealth]
    ticks_sent: int
    messages_sent: int  # ZeroMQ messages those ticks went in: one per frame
    feed_states_sent: int  # venue down/up messages sent, each a ZeroMQ message of its own
    ticks_dropped_backpressure: int  # refused at the ZeroMQ high-water mark, or behind a held feed state
    feed_states_held: int  # venue down/up messages that met the mark and waited (none is dropped)
    feed_states_holding: int  # waiting now
    stalls: Stalls | None  # what held up the ingestor's loop (arbsite.stalls)


class FeedStatus(TypedDict):
    """What a reader of the ingestor's `/health` can rely on for one feed; None where it is not told."""

    state: str | None
    last_message_age_s: float | None
    message_rate: float | None


class IngestorStatus(TypedDict):
    """The ingestor's `/health` as its readers decode it."""

    feeds: dict[str, FeedStatus]
    ticks_sent: int | None
    ticks_dropped_backpressure: int | None
    feed_states_held: int | None


def ingestor_health(
    feeds: dict[str, FeedHealth],
    ticks_sent: int,
    ticks_dropped: int,
    states_held: int = 0,
    states_holding: int = 0,
    messages_sent: int = 0,
    states_sent: int = 0,
    stalls: Stalls | None = None,
) -> IngestorHealth:
    """The body for these feeds: `degraded`, naming them, while any feed is not live."""
    not_live = [name for name, feed in feeds.items() if feed["state"] != FEED_LIVE]
    return {
        "status": "ok" if not not_live else "degraded",
        "not_live": not_live,
        "feeds": feeds,
        "ticks_sent": ticks_sent,
        "messages_sent": messages_sent,
        "feed_states_sent": states_sent,
        "ticks_dropped_backpressure": ticks_dropped,
        "feed_states_held": states_held,
        "feed_states_holding": states_holding,
        "stalls": stalls,
    }


def encode_ingestor_health(health: IngestorHealth) -> tuple[int, bytes]:
    """(HTTP status, body): 200 when every feed is live, else 503 with the same body."""
    return (200 if not health["not_live"] else 503), orjson.dumps(health)


def decode_ingestor_health(data: bytes) -> IngestorStatus:
    """The ingestor's `/health` in `data`; HealthDecodeError when it holds no `feeds` object."""
    raw = _object(data, "no feeds in its /health")
    feeds = raw.get("feeds")
    if not isinstance(feeds, dict):
        raise HealthDecodeError("no feeds in its /health")
    return {
        "feeds": {str(name): _feed_status(feed) for name, feed in feeds.items()},
        "ticks_sent": _int_or_none(raw.get("ticks_sent")),
        "ticks_dropped_backpressure": _int_or_none(raw.get("ticks_dropped_backpressure")),
        "feed_states_held": _int_or_none(raw.get("feed_states_held")),
    }


def _feed_status(feed: object) -> FeedStatus:
    if not isinstance(feed, dict):
        return {"state": None, "last_message_age_s": None, "message_rate": None}
    state = feed.get("state")
    return {
        "state": state if isinstance(state, str) else None,
        "last_message_age_s": _float_or_none(feed.get("last_message_age_s")),
        "message_rate": _float_or_none(feed.get("message_rate")),
    }


# --- tolerant readers -----------------------------------------------------------------------
def _object(data: bytes | str, not_an_object: str = "not a JSON object") -> dict[str, Any]:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise HealthDecodeError(str(exc)) from None
    if not isinstance(raw, dict):
        raise HealthDecodeError(not_an_object)
    return raw


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _percentiles(value: object) -> dict[str, float | None] | None:
    if not isinstance(value, dict):
        return None
    return {str(name): _float_or_none(figure) for name, figure in value.items()}
