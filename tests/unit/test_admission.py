"""Admission control (shared/admission.py): bounded work in flight, an immediate 503 for the rest, health untouched."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shared.admission import AdmissionControl, Budget, Overloaded


async def test_a_free_slot_is_taken_at_once_and_given_back() -> None:
    budget = Budget("write", slots=2, max_queue_seconds=1, max_queue=10)
    assert await budget.enter() == 0.0
    assert budget.in_flight == 1
    budget.leave(0.01)
    assert budget.in_flight == 0


async def test_a_waiter_gets_the_slot_that_is_given_back_before_a_newcomer() -> None:
    budget = Budget("write", slots=1, max_queue_seconds=1, max_queue=10, initial_service_seconds=0.01)
    await budget.enter()
    waiter = asyncio.create_task(budget.enter())
    await asyncio.sleep(0)
    assert budget.queued == 1
    budget.leave()
    await asyncio.wait_for(waiter, 1)
    assert budget.in_flight == 1 and budget.queued == 0  # the slot passed straight to the waiter


async def test_a_queue_expected_to_take_too_long_is_refused_at_once_with_a_retry_time() -> None:
    budget = Budget("write", slots=2, max_queue_seconds=0.05, max_queue=100, initial_service_seconds=0.04)
    await budget.enter()
    await budget.enter()
    first = asyncio.create_task(budget.enter())  # expected wait 1 × 0.04 / 2 = 0.02 s: admitted to the queue
    await asyncio.sleep(0)
    second = asyncio.create_task(budget.enter())  # 2 × 0.04 / 2 = 0.04 s: admitted
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as refused:  # 3 × 0.04 / 2 = 0.06 s > 0.05 s: refused
        await budget.enter()
    assert refused.value.retry_after >= 1
    budget.leave()
    budget.leave()
    await asyncio.wait_for(asyncio.gather(first, second), 1)


async def test_the_queue_length_is_capped_whatever_the_service_time() -> None:
    budget = Budget("write", slots=1, max_queue_seconds=100, max_queue=1, initial_service_seconds=0.001)
    await budget.enter()
    waiter = asyncio.create_task(budget.enter())
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await budget.enter()
    budget.leave()
    await asyncio.wait_for(waiter, 1)


async def test_a_cancelled_waiter_does_not_keep_a_slot() -> None:
    budget = Budget("write", slots=1, max_queue_seconds=10, max_queue=10, initial_service_seconds=0.01)
    await budget.enter()
    waiter = asyncio.create_task(budget.enter())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    budget.leave()
    assert budget.in_flight == 0 and budget.queued == 0


def _app(release: asyncio.Event, started: asyncio.Event) -> FastAPI:
    app = FastAPI()
    writes: list[int] = []

    @app.post("/api/v1/things")
    async def create() -> dict[str, int]:
        started.set()
        await release.wait()
        writes.append(1)
        return {"written": len(writes)}

    @app.get("/api/v1/things")
    async def read() -> dict[str, int]:
        return {"written": len(writes)}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    app.add_middleware(
        AdmissionControl,
        service="unit-admission",
        write=Budget("write", slots=1, max_queue_seconds=0, max_queue=0),
        read=Budget("read", slots=4, max_queue_seconds=0, max_queue=0),
        openapi=lambda: app.openapi(),
    )
    app.state.writes = writes
    return app


async def test_beyond_its_slots_a_write_gets_a_503_problem_with_retry_after_and_nothing_is_done() -> None:
    release, started = asyncio.Event(), asyncio.Event()
    app = _app(release, started)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        holding = asyncio.create_task(client.post("/api/v1/things"))
        await started.wait()
        refused = await client.post("/api/v1/things")
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        body = refused.json()
        assert body["type"] == "urn:motcua:problem:overloaded" and "nothing was done" in body["detail"]
        assert "Idempotency-Key" in body["detail"]
        # Reads and health keep their own budget while the writes are full.
        assert (await client.get("/api/v1/things")).json() == {"written": 0}
        assert (await client.get("/readyz")).status_code == 200
        release.set()
        assert (await holding).status_code == 200
    assert app.state.writes == [1]  # the refused request wrote nothing
    shed = REGISTRY.get_sample_value(
        "motcua_http_shed_total", {"service": "unit-admission", "route": "/api/v1/things", "budget": "write"}
    )
    assert shed == 1.0
