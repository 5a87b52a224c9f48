"""Drift is visible: every consumer compares what each producer's outbox announced with what it applied.

Two stacks. The session stack, on demand: after a few dossiers, every producer announces its outbox again and every
consumer, for every producer it listens to, reports each announced event applied (the producers' own outboxes are
the hand count). A stack on a broker of the test's own, for a real gap: workflow is stopped, dossiers go on being
received and published, the broker dies and comes back empty (what Tansu does), so the records workflow never read
are gone. Workflow's drift names exactly those events, the ``motcua drift check`` command prints them and exits 1,
the other consumers report nothing missing; once the producers' outboxes publish those rows again (what a replay
does), the gap closes: workflow has the cases and every drift is zero again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.clock import SystemClock
from shared.db import Database
from shared.events import OutboxManifest
from tests.support import api
from tests.support.platform import rows
from tests.support.stack import Stack, eventually, random_unit

pytestmark = pytest.mark.timeout(600)

CONSUMERS = ("intake", "workflow", "digitization", "payments", "reporting")
EVERYTHING = "2000-01-01"  # ``since`` for the whole outbox: other tests move the session stack's clocks forward


def _database(stack: Stack, service: str) -> Database:
    return Database(stack.database_url(service), service=service, namespace=stack.namespace, clock=SystemClock(), pool_size=2)


async def _outbox(stack: Stack, producer: str, types: list[str], *, after: int = 0) -> dict[str, int]:
    """The producer's own hand count: event id → outbox id of its rows of these types (manifests never)."""
    db = _database(stack, producer)
    try:
        found = await rows(
            db,
            "SELECT event_id::text AS event_id, id FROM outbox WHERE type = ANY(:types) AND type <> :manifest AND id > :after",
            types=types,
            manifest=OutboxManifest.type,
            after=after,
        )
    finally:
        await db.dispose()
    return {r["event_id"]: r["id"] for r in found}


async def _last_outbox_id(stack: Stack, producer: str) -> int:
    db = _database(stack, producer)
    try:
        return (await rows(db, "SELECT coalesce(max(id), 0) AS last FROM outbox"))[0]["last"]
    finally:
        await db.dispose()


async def _settled_everywhere(stack: Stack, consumers: tuple[str, ...], *, announce: bool = False) -> dict:
    """Wait until every pair is settled (asking the producers to announce again each time, when told)."""

    async def _probe() -> dict:
        if announce:
            await _announce_everywhere(stack, stack.names)
        return await _pairs_settled(stack, consumers)

    try:
        return await eventually(_probe, timeout=120, interval=1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last pair unsettled: {UNSETTLED}") from None


async def _days_of(stack: Stack, producers: tuple[str, ...], event_ids: set[str]) -> set[str]:
    """The Vietnamese days on which the producers wrote these events (what the drift report groups by)."""
    days: set[str] = set()
    for producer in producers:
        db = _database(stack, producer)
        try:
            found = await rows(
                db,
                "SELECT DISTINCT (created_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date::text AS day FROM outbox "
                "WHERE event_id::text = ANY(:ids)",
                ids=sorted(event_ids),
            )
        finally:
            await db.dispose()
        days |= {r["day"] for r in found}
    return days


async def _unsent(stack: Stack, producer: str) -> int:
    db = _database(stack, producer)
    try:
        return (await rows(db, "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"))[0]["n"]
    finally:
        await db.dispose()


async def _drift(stack: Stack, service: str, **params: str | int) -> dict:
    async with stack.client(service, "auditor", units=["*"]) as client:
        response = await client.get("/api/v1/admin/drift", params={"since": EVERYTHING, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def _announce_everywhere(stack: Stack, services: tuple[str, ...]) -> None:
    for service in services:
        async with stack.client(service, "admin", units=["*"]) as client:
            response = await client.post("/api/v1/admin/drift/announce")
        assert response.status_code == 200, response.text


UNSETTLED: list[dict] = []  # the last pair that did not match, for the failure message


async def _pairs_settled(stack: Stack, consumers: tuple[str, ...]) -> dict[tuple[str, str], dict]:
    """Every consumer has applied every event its producers' outboxes hold of the types it handles: per pair, the
    report's totals, once they equal the hand count ({} until then; the pair that did not is in ``UNSETTLED``)."""
    settled = {}
    for consumer in consumers:
        report = await _drift(stack, consumer, limit=1000)
        for producer in report["producers"]:
            if producer not in stack.names:
                continue
            expected = set(await _outbox(stack, producer, report["types"]))
            days = [r for r in report["data"] if r["producer"] == producer]
            announced = sum(r["announced"] for r in days)
            applied = sum(r["applied"] for r in days)
            if announced != len(expected) or applied != len(expected) or any(r["pending"] or r["missing"] for r in days):
                UNSETTLED[:] = [{"consumer": consumer, "producer": producer, "outbox": len(expected), "days": days}]
                return {}
            settled[(consumer, producer)] = {"announced": announced, "applied": applied}
    return settled


def _drift_command(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``motcua drift …`` against a test stack (its URLs, its signing key)."""
    urls = [f"--url={name}={stack.url(name)}" for name in stack.names]
    services = [f"--service={name}" for name in stack.names]
    return subprocess.run(
        [sys.executable, "-m", "motcua.cli", "drift", *args, *services, *urls],
        env={**os.environ, "MOTCUA_JWT_PRIVATE_KEY_FILE": str(stack.private_key_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ---- the session stack: a normal run ---------------------------------------------------------------------------


async def test_a_normal_run_leaves_no_drift_between_any_producer_and_consumer(stack: Stack) -> None:
    unit = random_unit()
    async with stack.client("intake", "clerk", units=[unit]) as intake:
        codes = [(await api.receive_dossier(intake, f"Trần Văn Hưởng {i}"))["code"] for i in range(3)]
    async with stack.client("workflow", "specialist", units=[unit]) as workflow:
        for code in codes:
            await eventually(lambda code=code: api.case(workflow, code), timeout=60)
            assigned = await workflow.post(f"/api/v1/cases/{code}/assign", json={"department": "Tư pháp", "assignee": "me"})
            assert assigned.status_code == 200, assigned.text

    pairs = await _settled_everywhere(stack, stack.names, announce=True)
    # Every consumer heard from every producer it listens to: intake's receptions reached its four consumers, and
    # workflow's assignments intake and reporting, each announced event applied.
    assert {c for c, p in pairs if p == "intake"} == {"workflow", "digitization", "payments", "reporting"}
    assert all(pairs[(c, "intake")]["applied"] >= len(codes) for c in ("workflow", "payments", "reporting"))
    assert all(pairs[(c, "workflow")]["applied"] >= len(codes) for c in ("intake", "reporting"))
    for consumer in stack.names:
        assert (await _drift(stack, consumer))["missing"] == 0
    async with httpx.AsyncClient(base_url=stack.url("workflow")) as scrape:
        assert await api.metric(scrape, "motcua_drift_missing_events", service="workflow", producer="intake") == 0


async def test_only_admins_and_auditors_read_drift_and_a_wrong_question_is_a_problem(stack: Stack) -> None:
    async with stack.client("workflow", "clerk", units=["*"]) as clerk:
        assert (await clerk.get("/api/v1/admin/drift")).status_code == 403
    async with stack.client("workflow", "auditor", units=["*"]) as auditor:
        assert (await auditor.post("/api/v1/admin/drift/announce")).status_code == 403
        wrong = await auditor.get("/api/v1/admin/drift", params={"producer": "reporting"})
        assert wrong.status_code == 422 and wrong.headers["content-type"].startswith("application/problem+json")
        assert "reporting" in wrong.json()["detail"] and "intake" in wrong.json()["detail"]
        bad_day = await auditor.get("/api/v1/admin/drift", params={"since": "3 tháng 12"})
        assert bad_day.status_code == 422 and bad_day.headers["content-type"].startswith("application/problem+json")
        narrowed = await auditor.get("/api/v1/admin/drift", params={"producer": "payments", "since": EVERYTHING})
        assert narrowed.status_code == 200 and {r["producer"] for r in narrowed.json()["data"]} <= {"payments"}
    async with stack.client("reporting", "admin", units=["*"]) as admin:
        announced = await admin.post("/api/v1/admin/drift/announce")
        assert announced.status_code == 200 and announced.json() == {"manifests": 0, "events": 0}  # reporting publishes nothing


# ---- a stack of its own: the broker loses what workflow had not read ----------------------------------------



@pytest.fixture
async def drift_stack(postgres: EmbeddedPostgres, own_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Stack]:
    """Intake, workflow, payments and reporting with the drift loops in seconds, not minutes, and the relays' own
    replay after a broker data loss held back (the gap must be seen before anything closes it)."""
    env = {
        "RELAY_AUTO_REPLAY": "false",
        "DRIFT_MANIFEST_SECONDS": "0.5",
        "DRIFT_REANNOUNCE_SECONDS": "2",
        "DRIFT_CHECK_SECONDS": "0.5",
        "DRIFT_GRACE_SECONDS": "3",
    }
    stack = Stack.isolated(postgres, own_broker, tmp_path / "stack", services=("intake", "workflow", "payments", "reporting"), env=env)
    await stack.start()
    yield stack
    await asyncio.to_thread(stack.stop)


@pytest.mark.slow
async def test_a_broker_that_lost_records_shows_as_drift_naming_the_lost_events(
    drift_stack: Stack, own_broker: EmbeddedBroker
) -> None:
    stack = drift_stack
    producers = ("intake", "payments")  # the producers of this stack (workflow's own events are not at stake)
    unit = random_unit()
    async with stack.client("intake", "clerk", units=[unit]) as intake:
        before = [(await api.receive_dossier(intake, f"Lê Thị Ánh {i}"))["code"] for i in range(3)]
    await _settled_everywhere(stack, stack.names)
    workflow_types = (await _drift(stack, "workflow"))["types"]
    marks = {p: await _last_outbox_id(stack, p) for p in producers}

    # Workflow stops; the counter goes on; every producer publishes, every other consumer reads it all.
    await asyncio.to_thread(stack.services["workflow"].stop)
    async with stack.client("intake", "clerk", units=[unit]) as intake:
        during = [(await api.receive_dossier(intake, f"Phạm Đức Thắng {i}"))["code"] for i in range(5)]
    lost: dict[str, int] = {}

    async def _published_and_read_elsewhere() -> bool:
        for p in producers:
            if await _unsent(stack, p):
                return False
        return bool(await _pairs_settled(stack, ("intake", "payments", "reporting")))

    await eventually(_published_and_read_elsewhere, timeout=120, interval=0.5)
    by_producer = {p: await _outbox(stack, p, workflow_types, after=marks[p]) for p in producers}
    for p in producers:
        lost.update(by_producer[p])
    assert len(lost) >= len(during)  # one dossier.received each, and payments' requests for their fees

    # The broker dies and comes back empty: what workflow had not read is gone.
    await asyncio.to_thread(own_broker.stop)
    await asyncio.to_thread(own_broker.start)
    stack.services["workflow"].start()
    await stack.services["workflow"].wait_ready()

    async def _gap_named() -> dict | None:
        report = await _drift(stack, "workflow", limit=1000)
        named = {i for r in report["data"] for i in r["missing_event_ids"]}
        return report if report["missing"] == len(lost) and named == set(lost) else None

    report = await eventually(_gap_named, timeout=120, interval=0.5)
    assert report["applied"] == report["announced"] - len(lost) and report["dead_lettered"] == 0
    assert {r["day"] for r in report["data"] if r["missing"]} == await _days_of(stack, producers, set(lost))
    async with stack.client("workflow", "specialist", units=[unit]) as workflow:
        assert [await api.case(workflow, code) for code in during] == [None] * len(during)
        assert all([await api.case(workflow, code) for code in before])
    for consumer in ("intake", "payments", "reporting"):
        assert (await _drift(stack, consumer))["missing"] == 0, consumer
    async with httpx.AsyncClient(base_url=stack.url("workflow")) as scrape:

        async def _gauges() -> dict[str, float] | None:
            found = {p: await api.metric(scrape, "motcua_drift_missing_events", service="workflow", producer=p) for p in producers}
            return found if sum(found.values()) == len(lost) else None

        gauges = await eventually(_gauges, timeout=30, interval=0.5)
    assert gauges == {p: sum(1 for i in lost if i in by_producer[p]) for p in producers}

    checked = await asyncio.to_thread(_drift_command, stack, "check", f"--since={EVERYTHING}", "--limit=1000")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    printed = {line.split()[-1] for line in checked.stdout.splitlines() if line.strip().startswith("missing ")}
    assert printed == set(lost), checked.stdout

    # What a replay does: the producers publish those rows again; workflow applies them once, the gap closes.
    for p in producers:
        db = _database(stack, p)
        try:
            async with db.sessions() as session, session.begin():
                await session.execute(
                    text("UPDATE outbox SET sent_at = NULL WHERE id > :mark AND type <> :manifest"),
                    {"mark": marks[p], "manifest": OutboxManifest.type},
                )
        finally:
            await db.dispose()
    await _settled_everywhere(stack, stack.names)
    async with stack.client("workflow", "specialist", units=[unit]) as workflow:
        for code in during:
            assert await api.case(workflow, code) is not None, code
    checked = await asyncio.to_thread(_drift_command, stack, "check", f"--since={EVERYTHING}")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip().endswith("0 missing")
