"""The durable hand-off from `signals:stream` to the SQL database, as plain functions.

The engine XADDs every signal to the stream (field `signal`, the JSON bytes). A
consumer group (`db-writer`) reads it in batches; each batch is written with one
`bulk_create(ignore_conflicts=True)` inside a transaction and acknowledged only
after the commit. `Signal.stream_id` is unique, so a batch that is written again
(a worker killed between commit and XACK, a claimed entry another consumer had
already stored) adds nothing. Nothing is lost either: an entry stays pending
until it is acknowledged, and each drain first re-reads this consumer's pending
entries, then claims those left by consumers idle for a minute, then reads new
ones.

Bad data never blocks the stream: an entry that is not a valid signal is logged,
counted, acknowledged and skipped; a row the database refuses for its data is
found row by row, skipped and acknowledged. A database or Redis that is down
raises out of `drain` with nothing acknowledged, for the caller to retry.

The Celery task (`signals_app.tasks`) is a thin shell around `drain` and `prune`;
tests call these directly.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from django.db import DataError, IntegrityError, transaction

from signals_app.contracts import keys
from signals_app.contracts.signal import CLOSE, CLOSE_REASONS, OPEN, UPDATE, decode
from signals_app.models import Signal

log = logging.getLogger("signals_app.persist")

GROUP = keys.SIGNALS_STREAM_GROUP
STREAM_FIELD = keys.SIGNALS_STREAM_FIELD.encode()  # the engine XADDs {field: <signal JSON>}; redis-py reads bytes
BATCH_SIZE = 500
DRAIN_BUDGET_S = 5.0  # one drain stops reading after this long; the next beat carries on
CLAIM_MIN_IDLE_MS = 60_000  # entries pending this long with another consumer are taken over
MALFORMED_LOG_LIMIT = 10  # per drain; the rest are only counted

# One stream entry as redis-py returns it: (id, fields); fields is empty for an entry still
# pending in the group but already trimmed from the stream (MAXLEN ~ 100000).
Entry = tuple[bytes, dict[bytes, bytes]]

_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a datetime holds
_INT64 = 2**63


class MalformedSignal(ValueError):
    """A stream entry that is not a signal the database can hold; the reason is the message."""


@dataclass
class DrainStats:
    """What one drain did; every entry read is exactly one of stored, malformed, trimmed, rejected."""

    read: int = 0  # entries read: pending, claimed and new
    stored: int = 0  # rows offered to the database (a replayed stream id is ignored there)
    malformed: int = 0  # not a valid signal: logged, acknowledged, skipped
    trimmed: int = 0  # pending entries the stream had already trimmed: acknowledged
    rejected: int = 0  # rows the database refused for their data: logged, acknowledged, skipped
    claimed: int = 0  # entries taken over from consumers idle for CLAIM_MIN_IDLE_MS
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def default_consumer() -> str:
    """This worker's consumer name in the group.

    Stable across restarts on one host (or container), so a restarted worker re-reads
    its own pending entries at once; entries of a consumer that never comes back are
    claimed by another one after CLAIM_MIN_IDLE_MS.
    """
    return f"worker@{socket.gethostname()}"


def ensure_group(client: redis.Redis, stream: str = keys.SIGNALS_STREAM, group: str = GROUP) -> None:
    """Create the consumer group (and the stream) if missing.

    From id 0, so the signals published before the group existed are persisted too.
    Called on every drain: a Redis restarted without persistence loses the group.
    """
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# --- stream entry -> row ---------------------------------------------------------------------

# signal JSON key -> model field, for the text fields (their max_length is the model's)
_TEXT_FIELDS = {
    "id": "signal_id",
    "asset": "asset",
    "action": "action",
    "buy_exchange": "buy_exchange",
    "sell_exchange": "sell_exchange",
    "buy_symbol": "buy_symbol",
    "sell_symbol": "sell_symbol",
}
_FLOAT_FIELDS = {
    "buy_price": "buy_price",
    "sell_price": "sell_price",
    "spread_pct": "spread_pct",
    "net_spread_pct": "net_spread_pct",
    "profit_per_unit": "profit_per_unit",
    "peak_net_spread_pct": "peak_net_spread_pct",
}
_NULLABLE_FLOAT_FIELDS = {"size": "size", "profit_estimate": "profit_estimate"}
# The depth figures: null when either market had no book; absent from a signal published before them.
_DEPTH_FLOAT_FIELDS = {
    "depth_size": "depth_size",
    "depth_buy_vwap": "depth_buy_vwap",
    "depth_sell_vwap": "depth_sell_vwap",
    "depth_profit": "depth_profit",
    "depth_net_spread_pct": "depth_net_spread_pct",
    "net_spread_at_target_pct": "net_spread_at_target_pct",
}
_STATUSES = frozenset((OPEN, UPDATE, CLOSE))


def _max_length(field: str) -> int:
    length = Signal._meta.get_field(field).max_length
    assert length is not None
    return int(length)


def _text(signal: dict[str, Any], key: str, field: str) -> str:
    value = signal.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedSignal(f"{key}: expected a non-empty string, got {value!r:.80}")
    # Longer than the column, or a NUL (PostgreSQL text cannot hold one): the database would
    # refuse the whole batch, so refuse the entry here.
    if len(value) > _max_length(field) or "\x00" in value:
        raise MalformedSignal(f"{key}: longer than {_max_length(field)} characters or holds NUL")
    return value


def _number(signal: dict[str, Any], key: str, nullable: bool = False) -> float | None:
    value = signal.get(key)
    if value is None and nullable and key in signal:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedSignal(f"{key}: expected a finite number, got {value!r:.80}")
    return float(value)


def _int(signal: dict[str, Any], key: str, low: int = -_INT64, high: int = _INT64 - 1) -> int:
    value = signal.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MalformedSignal(f"{key}: expected an integer in [{low}, {high}], got {value!r:.80}")
    return int(value)


def _close_reason(signal: dict[str, Any], status: str) -> str | None:
    """A close's `close_reason` (None when absent: an engine older than the reasons); none elsewhere."""
    reason = signal.get("close_reason")
    if reason is None:
        return None
    if status != CLOSE:
        raise MalformedSignal(f"close_reason: only a close carries one, got {reason!r:.80} on a {status}")
    if reason not in CLOSE_REASONS:
        raise MalformedSignal(f"close_reason: expected one of {list(CLOSE_REASONS)}, got {reason!r:.80}")
    return str(reason)


def signal_row(stream_id: str, data: bytes | None) -> Signal:
    """The model row for one stream entry; MalformedSignal says why there is none."""
    if data is None:
        raise MalformedSignal(f"no {STREAM_FIELD.decode()!r} field")
    try:
        signal = decode(data)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        raise MalformedSignal(f"not a signal JSON: {exc}") from None
    status = signal.get("status")
    if status not in _STATUSES:
        raise MalformedSignal(f"status: expected one of {sorted(_STATUSES)}, got {status!r:.80}")
    timestamp_ms = _int(signal, "timestamp", 0, _MAX_MS)
    fields: dict[str, Any] = {field: _text(signal, key, field) for key, field in _TEXT_FIELDS.items()}
    fields.update({field: _number(signal, key) for key, field in _FLOAT_FIELDS.items()})
    fields.update({field: _number(signal, key, nullable=True) for key, field in _NULLABLE_FLOAT_FIELDS.items()})
    fields.update(
        {field: _number(signal, key, nullable=True) for key, field in _DEPTH_FLOAT_FIELDS.items() if key in signal}
    )
    return Signal(
        stream_id=stream_id,
        status=status,
        close_reason=_close_reason(signal, status),
        opened_at_ms=_int(signal, "opened_at"),
        duration_ms=_int(signal, "duration_ms"),
        timestamp_ms=timestamp_ms,
        created=datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC),
        # The exact bytes the engine published (orjson has checked they are UTF-8 JSON).
        payload=data.decode("utf-8"),
        **fields,
    )


# --- writing -------------------------------------------------------------------------------


def store(rows: Sequence[Signal]) -> int:
    """Insert the rows in one transaction, replayed stream ids ignored; the number refused.

    Connection errors propagate (nothing committed). A data error (a row the database
    will not take, which `signal_row` did not foresee) would fail the batch on every
    retry and block the stream, so the batch is then written row by row and the rows
    refused are logged and skipped.
    """
    if not rows:
        return 0
    try:
        with transaction.atomic():
            Signal.objects.bulk_create(rows, ignore_conflicts=True)
        return 0
    except (DataError, IntegrityError) as exc:
        log.warning("batch of %d refused (%s); writing it row by row", len(rows), exc)
    refused = 0
    for row in rows:
        try:
            with transaction.atomic():
                Signal.objects.bulk_create([row], ignore_conflicts=True)
        except (DataError, IntegrityError) as exc:
            refused += 1
            log.error("stream entry %s refused by the database, skipped: %s", row.stream_id, exc)
    return refused


def handle_batch(
    client: redis.Redis,
    entries: Sequence[Entry],
    stats: DrainStats,
    stream: str = keys.SIGNALS_STREAM,
    group: str = GROUP,
) -> None:
    """Parse, store and then acknowledge one batch of entries (XACK only after the commit)."""
    rows: list[Signal] = []
    for raw_id, fields in entries:
        stream_id = raw_id.decode()
        if not fields:
            stats.trimmed += 1
            log.warning("stream entry %s was trimmed before it was stored: acknowledged", stream_id)
            continue
        try:
            rows.append(signal_row(stream_id, fields.get(STREAM_FIELD)))
        except MalformedSignal as exc:
            stats.malformed += 1
            if stats.malformed <= MALFORMED_LOG_LIMIT:
                log.warning("malformed stream entry %s skipped: %s", stream_id, exc)
    refused = store(rows)  # raises when the database is down: nothing is acknowledged
    stats.rejected += refused
    stats.stored += len(rows) - refused
    stats.read += len(entries)
    stats.batches += 1
    client.xack(stream, group, *(raw_id for raw_id, _fields in entries))


def _read(client: redis.Redis, consumer: str, start: str, count: int, stream: str, group: str) -> list[Entry]:
    reply: Any = client.xreadgroup(group, consumer, {stream: start}, count=count)
    if not reply:
        return []
    entries: list[Entry] = reply[0][1]
    return entries


def drain(
    client: redis.Redis,
    consumer: str | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    budget_s: float = DRAIN_BUDGET_S,
    claim_min_idle_ms: int = CLAIM_MIN_IDLE_MS,
    stream: str = keys.SIGNALS_STREAM,
    group: str = GROUP,
    after_batch: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DrainStats:
    """Move what the stream holds for this consumer into the database, for up to `budget_s`.

    In order: this consumer's pending entries (read but never acknowledged: a worker
    killed between read and ack, or a database that failed), entries other consumers
    have left pending for `claim_min_idle_ms`, then new entries until a read returns
    nothing. `after_batch` runs after each acknowledged batch (the task extends its
    lock there). Raises redis.RedisError / django.db.Error when either side is down.
    """
    consumer = consumer or default_consumer()
    stats = DrainStats()
    deadline = clock() + budget_s
    ensure_group(client, stream, group)

    def done_batch(entries: Sequence[Entry]) -> None:
        handle_batch(client, entries, stats, stream, group)
        if after_batch is not None:
            after_batch()

    # 1. Our own pending entries, oldest first; everything handled is acknowledged, so the
    # cursor only moves past what is gone from our pending list.
    cursor = "0"
    while clock() < deadline:
        entries = _read(client, consumer, cursor, batch_size, stream, group)
        if not entries:
            break
        done_batch(entries)
        cursor = entries[-1][0].decode()

    # 2. Entries a dead consumer left pending. On Redis 6.2 an entry trimmed meanwhile comes
    # back as (None, None) but still moves to us: the next drain's step 1 acknowledges it.
    # Redis 7 drops such entries from the pending list itself.
    claim_cursor = "0-0"
    while clock() < deadline:
        reply: Any = client.xautoclaim(
            stream, group, consumer, min_idle_time=claim_min_idle_ms, start_id=claim_cursor, count=batch_size
        )
        claimed = [entry for entry in reply[1] if entry[0] is not None]
        if claimed:
            stats.claimed += len(claimed)
            log.info("claimed %d stream entries left pending by other consumers", len(claimed))
            done_batch(claimed)
        claim_cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if claim_cursor == "0-0":
            break

    # 3. New entries.
    while clock() < deadline:
        entries = _read(client, consumer, ">", batch_size, stream, group)
        if not entries:
            break
        done_batch(entries)

    if stats.malformed > MALFORMED_LOG_LIMIT:
        log.warning("%d malformed stream entries skipped in this run", stats.malformed)
    return stats


# --- retention -------------------------------------------------------------------------------

PRUNE_CHUNK = 10_000  # rows per DELETE, so a large prune never holds the table for long


def prune(retention_days: int, now_ms: int) -> int:
    """Delete the signals older than `retention_days` before `now_ms`; how many were deleted."""
    cutoff_ms = now_ms - retention_days * 86_400_000
    deleted = 0
    while True:
        ids = list(Signal.objects.filter(timestamp_ms__lt=cutoff_ms).values_list("pk", flat=True)[:PRUNE_CHUNK])
        if not ids:
            return deleted
        count, _by_model = Signal.objects.filter(pk__in=ids).delete()
        deleted += count
