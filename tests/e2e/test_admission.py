"""Admission control in a real service: beyond its slots a write is refused at once with a 503 problem and
``Retry-After``, nothing is written, reads and health still answer, and the clerk's resend is safe.

An intake of its own with one write slot and no queue; a reception whose body is still arriving holds that slot,
so the refusal is certain whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from tests.support.stack import Stack, eventually, official, random_unit

CITIZEN = {"kind": "citizen", "name": "Lê Thị Thu Hà", "id_number": "001203004567"}


@pytest.fixture(scope="module")
async def narrow(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake with one write slot and no queue."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("admission")), services=["intake"],
        env={"INTAKE_ADMISSION_WRITE_SLOTS": "1", "INTAKE_ADMISSION_MAX_QUEUE": "0"},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


async def _write_in_flight(client: httpx.AsyncClient) -> bool:
    metrics = (await client.get("/metrics")).text
    return 'motcua_http_in_flight{budget="write",service="intake"} 1.0' in metrics


async def test_a_write_beyond_the_slots_is_refused_at_once_and_its_resend_is_received_once(narrow: Stack) -> None:
    unit = random_unit()
    body = json.dumps({"procedure_code": "1.004194", "applicant": CITIZEN}, ensure_ascii=False).encode()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:10]
        await release.wait()
        yield body[10:]

    async with official(narrow, "intake", "clerk", unit) as clerk:
        holding = asyncio.create_task(
            clerk.post("/api/v1/dossiers", content=slow_body(), headers={"Content-Type": "application/json"})
        )
        # Until the slow reception holds the one write slot (the metric says so), nothing else is sent.
        await eventually(lambda: _write_in_flight(clerk), timeout=20, interval=0.05)
        key = str(uuid.uuid4())
        refused = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN},
                                   headers={"Idempotency-Key": key})  # fmt: skip
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        problem = refused.json()
        assert problem["type"] == "urn:motcua:problem:overloaded"
        assert "nothing was done" in problem["detail"] and "Idempotency-Key" in problem["detail"]
        # Operators and readers keep their budget while the writes are full.
        assert (await clerk.get("/readyz")).status_code == 200
        assert (await clerk.get("/api/v1/procedures")).status_code == 200
        release.set()
        assert (await holding).status_code == 201
        # The refused request wrote nothing: its resend with the same key is the first reception, then a replay.
        resent = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN},
                                  headers={"Idempotency-Key": key})  # fmt: skip
        assert resent.status_code == 201, resent.text
        again = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN},
                                 headers={"Idempotency-Key": key})  # fmt: skip
        assert again.status_code == 200 and again.json()["code"] == resent.json()["code"]
        metrics = (await clerk.get("/metrics")).text
    shed = [line for line in metrics.splitlines() if line.startswith("motcua_http_shed_total{")]
    assert any('route="/api/v1/dossiers"' in line and 'budget="write"' in line and not line.endswith(" 0.0") for line in shed)
