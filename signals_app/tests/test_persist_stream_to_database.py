"""signals:stream → Signal table: every entry stored exactly once, acknowledged only after the commit.

A real Redis (EmbeddedRedis, never the machine's) and the test database; `drain` is
called directly, as the Celery task calls it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from django.db import DataError

from arbsite.redis_server import EmbeddedRedis
from engine_worker.publish import RedisPublisher
from signals_app import persist
from signals_app.contracts.keys import SIGNALS_STREAM, SIGNALS_STREAM_MAXLEN
from signals_app.contracts.signal import SIGNAL_TYPE
from signals_app.models import Signal

pytestmark = pytest.mark.django_db(transaction=True)

CONSUMER = "worker@test"


@pytest.fixture
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def client(server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


def make_signal(n: int, status: str = "open") -> dict[str, Any]:
    opened_at = 1705670000000 + n
    return {
        "type": SIGNAL_TYPE,
        "id": f"BTC:binance:coinbase:{opened_at}",
        "status": status,
        "action": "BUY_BINANCE_SELL_COINBASE",
        "symbol": "BTC/USDT",
        "asset": "BTC",
        "buy_exchange": "binance",
        "sell_exchange": "coinbase",
        "buy_symbol": "BTC/USDT",
        "sell_symbol": "BTC/USD",
        "buy_price": 45000.0 + n,
        "sell_price": 45300.0 + n,
        "spread_pct": 0.6667,
        "net_spread_pct": 0.5123,
        "size": 0.5,
        "profit_per_unit": 209.7,
        "profit_estimate": 104.85,
        "fees_pct": {"binance": 0.1, "coinbase": 0.1},
        "opened_at": opened_at,
        "duration_ms": 0,
        "peak_net_spread_pct": 0.5123,
        "tick_recv_ns": opened_at * 1_000_000,
        "timestamp": opened_at,
    }


def publish(client: redis.Redis, count: int, start: int = 0) -> list[str]:
    """XADD as engine_worker.publish does; the new entry ids."""
    ids = []
    for n in range(start, start + count):
        entry_id: Any = client.xadd(
            SIGNALS_STREAM, {"signal": orjson.dumps(make_signal(n))}, maxlen=SIGNALS_STREAM_MAXLEN, approximate=True
        )
        ids.append(entry_id.decode())
    return ids


def stored_ids() -> list[str]:
    return sorted(Signal.objects.values_list("stream_id", flat=True))


def pending(client: redis.Redis) -> int:
    return int(client.xpending(SIGNALS_STREAM, persist.GROUP)["pending"])


def read_without_ack(client: redis.Redis, consumer: str, count: int) -> list[str]:
    """What a worker killed between XREADGROUP and XACK leaves behind."""
    persist.ensure_group(client)
    reply: Any = client.xreadgroup(persist.GROUP, consumer, {SIGNALS_STREAM: ">"}, count=count)
    return [entry_id.decode() for entry_id, _fields in reply[0][1]]


def test_signals_published_before_the_group_existed_are_stored_once_each(client: redis.Redis) -> None:
    ids = publish(client, 1203)  # more than two batches
    stats = persist.drain(client, CONSUMER)
    assert stored_ids() == sorted(ids)
    assert (stats.read, stats.stored, stats.batches) == (1203, 1203, 3)
    assert pending(client) == 0
    assert persist.drain(client, CONSUMER).read == 0


def test_the_row_holds_the_published_bytes(client: redis.Redis) -> None:
    [entry_id] = publish(client, 1)
    persist.drain(client, CONSUMER)
    row = Signal.objects.get(stream_id=entry_id)
    entries: Any = client.xrange(SIGNALS_STREAM)
    assert row.payload.encode() == entries[0][1][b"signal"]
    assert row.created.timestamp() * 1000 == pytest.approx(row.timestamp_ms)


def test_what_the_engine_publishes_is_stored_as_published(server: EmbeddedRedis, client: redis.Redis) -> None:
    signals = [make_signal(0), make_signal(0, status="update"), make_signal(0, status="close")]
    signals[1]["timestamp"] += 1000
    signals[2]["timestamp"] += 2000

    async def engine_publishes() -> None:
        publisher = RedisPublisher(server.url)
        publisher.add_signals(signals)
        assert await publisher.flush()
        await publisher.close()

    asyncio.run(engine_publishes())
    persist.drain(client, CONSUMER)
    stored = Signal.objects.order_by("timestamp_ms")
    assert [row.payload.encode() for row in stored] == [orjson.dumps(signal) for signal in signals]
    assert [row.status for row in stored] == ["open", "update", "close"]


def test_new_signals_after_a_drain_are_stored_by_the_next(client: redis.Redis) -> None:
    first = publish(client, 3)
    persist.drain(client, CONSUMER)
    second = publish(client, 4, start=3)
    assert persist.drain(client, CONSUMER).stored == 4
    assert stored_ids() == sorted(first + second)


def test_an_existing_group_is_kept(client: redis.Redis) -> None:
    persist.ensure_group(client)
    persist.ensure_group(client)  # BUSYGROUP is not an error
    ids = publish(client, 2)
    persist.drain(client, CONSUMER)
    assert stored_ids() == sorted(ids)


def test_a_worker_killed_between_read_and_ack_loses_and_duplicates_nothing(client: redis.Redis) -> None:
    ids = publish(client, 10)
    read_without_ack(client, CONSUMER, 6)  # the worker died here, before storing or acking
    assert pending(client) == 6
    stats = persist.drain(client, CONSUMER)
    assert stats.read == 10
    assert stored_ids() == sorted(ids)
    assert pending(client) == 0


def test_a_worker_killed_between_commit_and_ack_adds_no_duplicate(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = publish(client, 5)

    def ack_lost(*args: object) -> int:
        raise redis.ConnectionError("killed before XACK")

    with monkeypatch.context() as patch:
        patch.setattr(client, "xack", ack_lost)
        with pytest.raises(redis.ConnectionError):
            persist.drain(client, CONSUMER)
    assert stored_ids() == sorted(ids)  # committed...
    assert pending(client) == 5  # ...but not acknowledged
    stats = persist.drain(client, CONSUMER)  # the restarted worker replays the batch
    assert stats.read == 5
    assert Signal.objects.count() == 5
    assert pending(client) == 0


def test_entries_of_a_consumer_gone_for_good_are_claimed(client: redis.Redis) -> None:
    ids = publish(client, 8)
    read_without_ack(client, "worker@old-container", 5)
    # Idle for less than the claim threshold: left to their consumer, which may be alive.
    persist.drain(client, CONSUMER)
    assert len(stored_ids()) == 3
    assert pending(client) == 5
    stats = persist.drain(client, CONSUMER, claim_min_idle_ms=0)
    assert stats.claimed == 5
    assert stored_ids() == sorted(ids)
    assert pending(client) == 0


def test_a_pending_entry_trimmed_from_the_stream_is_acknowledged(client: redis.Redis) -> None:
    ids = publish(client, 4)
    read_without_ack(client, CONSUMER, 4)
    client.xdel(SIGNALS_STREAM, ids[1])  # what MAXLEN ~ does to the oldest entries
    stats = persist.drain(client, CONSUMER)
    assert (stats.trimmed, stats.stored) == (1, 3)
    assert stored_ids() == sorted(ids[:1] + ids[2:])
    assert pending(client) == 0


def test_a_trimmed_entry_claimed_from_a_dead_consumer_is_acknowledged(client: redis.Redis) -> None:
    ids = publish(client, 3)
    read_without_ack(client, "worker@old-container", 3)
    client.xdel(SIGNALS_STREAM, ids[0])
    persist.drain(client, CONSUMER, claim_min_idle_ms=0)
    persist.drain(client, CONSUMER, claim_min_idle_ms=0)  # Redis 6.2 hands the trimmed id over first
    assert stored_ids() == sorted(ids[1:])
    assert pending(client) == 0


def test_malformed_entries_are_skipped_and_acknowledged_without_holding_the_stream(client: redis.Redis) -> None:
    good = publish(client, 2)
    client.xadd(SIGNALS_STREAM, {"signal": b"{not json"})
    client.xadd(SIGNALS_STREAM, {"other": b"field"})
    client.xadd(SIGNALS_STREAM, {"signal": orjson.dumps({**make_signal(9), "status": "bogus"})})
    good += publish(client, 2, start=2)
    stats = persist.drain(client, CONSUMER)
    assert (stats.read, stats.stored, stats.malformed) == (7, 4, 3)
    assert stored_ids() == sorted(good)
    assert pending(client) == 0
    assert persist.drain(client, CONSUMER).read == 0  # never seen again


def test_a_row_the_database_refuses_is_skipped_and_the_rest_of_its_batch_stored(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = publish(client, 4)
    real_signal_row = persist.signal_row

    def unforeseen_bad_row(stream_id: str, data: bytes | None) -> Signal:
        row = real_signal_row(stream_id, data)
        if stream_id == ids[2]:
            row.buy_price = None  # type: ignore[assignment]  # NOT NULL: the database refuses it
        return row

    monkeypatch.setattr(persist, "signal_row", unforeseen_bad_row)
    persist.drain(client, CONSUMER)
    assert stored_ids() == sorted(ids[:2] + ids[3:])
    assert pending(client) == 0


def test_a_batch_refused_for_one_row_is_written_row_by_row(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's INSERT OR IGNORE skips a NOT NULL violation by itself; PostgreSQL refuses the
    # whole statement, as here, whatever the backend.
    ids = publish(client, 5)
    real_bulk_create = Signal.objects.bulk_create

    def refuse_one(rows: list[Signal], **kwargs: Any) -> Any:
        if any(row.stream_id == ids[1] for row in rows):
            raise DataError("value too long for type character varying(32)")
        return real_bulk_create(rows, **kwargs)

    monkeypatch.setattr(Signal.objects, "bulk_create", refuse_one)
    stats = persist.drain(client, CONSUMER)
    assert (stats.stored, stats.rejected) == (4, 1)
    assert stored_ids() == sorted(ids[:1] + ids[2:])
    assert pending(client) == 0


def test_a_drain_stops_after_its_budget_and_the_next_one_carries_on(client: redis.Redis) -> None:
    ids = publish(client, 10)
    ticks = iter(range(1000))
    # Each clock reading is one second later: pending, claim, then one batch of new entries fit.
    stats = persist.drain(client, CONSUMER, batch_size=3, budget_s=3.5, clock=lambda: float(next(ticks)))
    assert stats.read == 3
    persist.drain(client, CONSUMER, batch_size=3)
    assert stored_ids() == sorted(ids)
    assert pending(client) == 0
