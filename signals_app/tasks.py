"""Celery tasks: the stream → database writer (every second) and the retention prune (hourly).

Both are thin shells around `signals_app.persist`. Beat schedules them (settings,
`# --- Celery schedule`). Neither ever raises: with Redis or the database down a run
logs (at most once a minute while the outage lasts) and returns, and the next beat
retries; whatever was read and not stored stays pending in the stream.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import redis
from celery import shared_task
from django.conf import settings
from django.db import Error as DatabaseError

from signals_app import persist
from signals_app.contracts import keys

log = logging.getLogger("signals_app.tasks")

# One drain at a time across every worker: beat fires every second and a drain may take
# up to persist.DRAIN_BUDGET_S. The TTL is short and extended after each batch, so a
# worker killed mid-drain holds the others up for seconds, not minutes. Correctness does
# not depend on the lock (rows are unique by stream id); it saves duplicate work.
PERSIST_LOCK = keys.PERSIST_LOCK
PERSIST_LOCK_TTL_S = 10.0
OUTAGE_LOG_EVERY_S = 60.0

_clients: dict[str, redis.Redis] = {}
_outage_since: dict[str, float] = {}  # what is down ("redis", "database") -> when last logged


def redis_client() -> redis.Redis:
    """One client per process and URL (created lazily: prefork children connect themselves)."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        _clients[url] = client
    return client


def _outage(part: str, task: str, exc: BaseException) -> None:
    now = time.monotonic()
    last = _outage_since.get(part)
    if last is None or now - last >= OUTAGE_LOG_EVERY_S:
        log.warning("%s: %s unavailable (%s: %s); retrying on the next beat", task, part, type(exc).__name__, exc)
        _outage_since[part] = now


def _recovered(part: str, task: str) -> None:
    if _outage_since.pop(part, None) is not None:
        log.info("%s: %s is back", task, part)


@shared_task(name="signals_app.tasks.persist_signals", ignore_result=True, time_limit=60)  # type: ignore[untyped-decorator]
def persist_signals() -> dict[str, Any]:
    """Drain `signals:stream` into the Signal table; a summary of what was done (or why not)."""
    client = redis_client()
    try:
        lock = client.lock(PERSIST_LOCK, timeout=PERSIST_LOCK_TTL_S)
        if not lock.acquire(blocking=False):
            return {"skipped": "another drain is running"}
    except (redis.RedisError, OSError) as exc:
        _outage("redis", "persist_signals", exc)
        return {"error": "redis"}
    try:
        stats = persist.drain(client, after_batch=lock.reacquire)
    except redis.exceptions.LockError as exc:
        # The lock expired mid-drain (a very slow batch); what was acknowledged is stored.
        log.warning("persist_signals: lost the lock (%s); stopping this run", exc)
        return {"error": "lock lost"}
    except (redis.RedisError, OSError) as exc:
        _outage("redis", "persist_signals", exc)
        return {"error": "redis"}
    except DatabaseError as exc:
        _outage("database", "persist_signals", exc)
        return {"error": "database"}
    finally:
        _release(lock)
    _recovered("redis", "persist_signals")
    _recovered("database", "persist_signals")
    if stats.read:
        level = logging.INFO if stats.malformed or stats.rejected or stats.claimed or stats.trimmed else logging.DEBUG
        log.log(level, "persisted %s", stats.as_dict())
    return stats.as_dict()


def _release(lock: Any) -> None:
    # Expired, or Redis gone: the TTL frees it either way.
    with contextlib.suppress(redis.RedisError, OSError):
        lock.release()


@shared_task(name="signals_app.tasks.prune_signals", ignore_result=True, time_limit=600)  # type: ignore[untyped-decorator]
def prune_signals() -> dict[str, Any]:
    """Delete signals older than SIGNAL_RETENTION_DAYS."""
    days = settings.SIGNAL_RETENTION_DAYS
    try:
        deleted = persist.prune(days, int(time.time() * 1000))
    except DatabaseError as exc:
        _outage("database", "prune_signals", exc)
        return {"error": "database"}
    _recovered("database", "prune_signals")
    if deleted:
        log.info("pruned %d signals older than %d days", deleted, days)
    return {"deleted": deleted}
