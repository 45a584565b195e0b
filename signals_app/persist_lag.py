"""Persistence lag for /api/health: how long the oldest signal of `signals:stream` has waited to be stored.

A signal is stored once the consumer group `db-writer` (`signals_app.persist`) acknowledged its
stream entry, which happens only after the database commit. Two kinds of entry are waiting:
those delivered to a consumer but still pending (a worker killed mid-batch, a database that
refuses) and those never delivered (after the group's last-delivered id: the worker is stopped,
or behind). The oldest of either is the lag; its age is read on Redis's own clock (`TIME`), the
clock that stamped the entry's id. No group at all (no worker has ever run) means every entry of
the stream is waiting.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

import redis
from redis.exceptions import RedisError, ResponseError

from signals_app.contracts import keys


class PersistenceCheck(TypedDict):
    ok: bool
    error: str | None
    lag_s: float | None  # age of the oldest entry not yet acknowledged; 0.0 when none waits
    oldest_unpersisted_id: str | None  # that entry's stream id
    pending: int | None  # entries delivered to the group's consumers and not yet acknowledged
    limit_s: float  # PERSIST_LAG_LIMIT_S: past this, `ok` is false


def _ms(stream_id: bytes | str) -> tuple[int, int]:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    millis, _sep, seq = text.partition("-")
    return int(millis), int(seq or 0)


def oldest_unpersisted(
    client: redis.Redis, stream: str = keys.SIGNALS_STREAM, group: str = keys.SIGNALS_STREAM_GROUP
) -> tuple[str | None, int]:
    """The id of the oldest entry the group has not acknowledged (None: nothing waits), and how many are pending."""
    try:
        groups: list[dict[str, Any]] = client.xinfo_groups(stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None, 0  # no stream: nothing was ever published
        raise
    found = next((g for g in groups if g["name"] in (group, group.encode())), None)
    candidates: list[bytes | str] = []
    pending = 0
    if found is None:
        after = "-"
    else:
        pending = int(found["pending"])
        if pending:
            summary: dict[str, Any] = client.xpending(stream, group)
            if summary["min"] is not None:
                candidates.append(summary["min"])
        last = found["last-delivered-id"]
        after = "(" + (last.decode() if isinstance(last, bytes) else str(last))
    first_new = cast(list[tuple[bytes, Any]], client.xrange(stream, min=after, max="+", count=1))
    if first_new:
        candidates.append(first_new[0][0])
    if not candidates:
        return None, pending
    oldest = min(candidates, key=_ms)
    return (oldest.decode() if isinstance(oldest, bytes) else oldest), pending


def check_persistence(client: redis.Redis, redis_ok: bool, limit_s: float) -> PersistenceCheck:
    """Fine while the oldest unacknowledged stream entry is younger than `limit_s`."""
    check: PersistenceCheck = {
        "ok": False,
        "error": None,
        "lag_s": None,
        "oldest_unpersisted_id": None,
        "pending": None,
        "limit_s": limit_s,
    }
    if not redis_ok:
        check["error"] = "lag unreadable: redis unavailable"
        return check
    try:
        oldest, pending = oldest_unpersisted(client)
        seconds, micros = client.time()
    except (RedisError, OSError) as exc:
        check["error"] = f"lag unreadable: {exc.__class__.__name__}: {exc}"
        return check
    check["pending"] = pending
    if oldest is None:
        check["lag_s"] = 0.0
        check["ok"] = True
        return check
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    lag_s = max(now_ms - _ms(oldest)[0], 0) / 1000
    check["lag_s"] = round(lag_s, 3)
    check["oldest_unpersisted_id"] = oldest
    if lag_s > limit_s:
        check["error"] = (
            f"the oldest signal not yet stored waits for {lag_s:.1f} s (limit {limit_s:g} s): "
            "is the Celery worker running?"
        )
        return check
    check["ok"] = True
    return check
