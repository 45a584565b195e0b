"""The engine's receive loop lets the rest of the process run: a message's signals go out when
it caused them (not at its batch's end), a wake-up stops at its time budget with the rest left
queued, and the spread matrix is computed an asset at a time with the loop running between."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import orjson
import pytest
import zmq

from engine_worker import service as service_module
from engine_worker.config import EngineConfig
from engine_worker.service import DRAIN_MAX, EngineService, EngineServiceConfig
from signals_app.contracts.signal import OPEN, Signal
from signals_app.contracts.tick import encode_ticks, quote


def a_service() -> EngineService:
    config = EngineConfig(fees_pct={"binance": 0.1, "coinbase": 0.1})
    # Redis never answers here: what the engine hands the publisher is all that is looked at
    return EngineService(EngineServiceConfig(engine=config, redis_url="redis://127.0.0.1:1/0", health_port=0))


def pair(asset: str, rich: float, now_ms: int) -> bytes:
    return encode_ticks(
        [
            quote("binance", f"{asset}/USDT", 99.9, 100.0, 1.0, 1.0, now_ms, now_ms * 1_000_000),
            quote("coinbase", f"{asset}/USD", rich, rich + 0.1, 1.0, 1.0, now_ms, now_ms * 1_000_000),
        ]
    )


def test_a_messages_signals_are_handed_on_before_the_batch_goes_on() -> None:
    service = a_service()
    handed: list[Signal] = []
    original = service.publisher.publish

    def publish(signals: list[Signal]) -> None:
        handed.extend(signals)
        original(signals)

    service.publisher.publish = publish  # type: ignore[method-assign]
    now_ms = time.time_ns() // 1_000_000
    seen_before_next: list[int] = []

    def batch() -> Iterator[bytes]:
        yield pair("BTC", 101.0, now_ms)  # crosses: an open
        seen_before_next.append(len(handed))
        for n in range(50):
            yield pair(f"FLAT{n}", 100.0, now_ms)

    service.handle_batch(batch())
    assert seen_before_next == [1]
    assert [signal["status"] for signal in handed] == [OPEN]
    assert service.messages == 51
    assert service.engine.ticks == 102


def test_a_wake_up_stops_at_its_budget_or_its_first_signals_and_leaves_the_rest_queued() -> None:
    service = a_service()
    now_ms = time.time_ns() // 1_000_000
    context = zmq.Context()
    push, pull = context.socket(zmq.PUSH), context.socket(zmq.PULL)

    def wake_up(budget_s: float) -> list[bytes]:
        service.batch_deadline = time.perf_counter() + budget_s
        taken: list[bytes] = []

        def recorded() -> Iterator[bytes]:
            for data in service._drained(pull.recv(), pull):
                taken.append(data)
                yield data

        service.handle_batch(recorded())
        return taken

    try:
        for socket in (push, pull):
            socket.setsockopt(zmq.SNDHWM if socket is push else zmq.RCVHWM, 10 * DRAIN_MAX)
        pull.bind("inproc://drain")
        push.connect("inproc://drain")
        flat = [pair(f"F{n}", 100.0, now_ms) for n in range(20)]
        for data in flat:
            push.send(data)
        time.sleep(0.05)
        assert wake_up(-1.0) == flat[:1]  # budget already spent: the first only
        assert wake_up(60.0) == flat[1:]  # the rest, nothing skipped, nothing twice
        crossing = [*flat[:3], pair("BTC", 101.0, now_ms), *flat[3:6]]
        for data in crossing:
            push.send(data)
        time.sleep(0.05)
        assert wake_up(60.0) == crossing[:4]  # up to the message that caused a signal
        assert wake_up(60.0) == crossing[4:]
        for _ in range(DRAIN_MAX + 5):
            push.send(flat[0])
        time.sleep(0.2)
        assert len(wake_up(60.0)) == DRAIN_MAX
        assert len(wake_up(60.0)) == 5
        assert service.messages == 20 + 7 + DRAIN_MAX + 5
    finally:
        push.close(0)
        pull.close(0)
        context.term()


def test_the_matrix_is_the_engines_and_the_loop_runs_between_its_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    service = a_service()
    now_ms = time.time_ns() // 1_000_000
    service.handle_batch([pair(f"A{n}", 100.0 + n / 100, now_ms) for n in range(40)])
    monkeypatch.setattr(service_module, "MATRIX_SLICE_S", 0.0)  # a slice per asset
    turns = 0

    async def counting() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def steps() -> tuple[dict[str, dict[str, dict[str, float | None]]], float]:
        counter = asyncio.create_task(counting())
        await asyncio.sleep(0)
        before = turns
        try:
            matrix, spent = await service._spread_matrix(now_ms)
        finally:
            counter.cancel()
        assert turns - before >= 39  # the loop ran between the assets (none after the last)
        return matrix, spent

    matrix, spent = asyncio.run(steps())
    assert matrix == service.engine.spread_matrix(now_ms)
    assert len(matrix) == 40
    assert spent > 0
    assert service.stalls.steps.snapshot()["matrix"]["count"] == 40
    shown = orjson.loads(service.health()[2])["stalls"]  # /health and the heartbeat show the slices
    assert shown["steps"]["matrix"]["count"] == 40
    assert set(shown["gc"]) == {"gen0", "gen1", "gen2"}
