"""The deadline sweep announces each deadline exactly once, however many replicas sweep at the same time.

Three sweepers, each with its own engine (as three workflow replicas would have), race over one
real Postgres database full of due cases; the outbox must hold one warning or one overdue notice
per case, never two.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from motcua.devstack import EmbeddedPostgres
from motcua.migrate import upgrade
from services.workflow import domain, store
from services.workflow.deps import WorkflowDeps
from services.workflow.settings import WorkflowSettings
from services.workflow.sweeps import DeadlineSweeper
from shared.clock import ManualClock
from shared.db import Database

SETTINGS = WorkflowSettings(warning_threshold_working_hours=9.5)  # the office's default hours: 07:30-17:00
NOW = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)  # Wed 11/03/2026 17:00 in Vietnam


@pytest.fixture(scope="module")
async def database_url(postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    """A workflow database of this module's own, migrated to head."""
    name = f"motcua_workflow_sweep_{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(postgres.ensure_database, name)
    url = postgres.dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, "workflow", url)
    yield url


def _replica(url: str, clock: ManualClock) -> Database:
    return Database(url, service="workflow", namespace="sweeptest", clock=clock, pool_size=2)


def _deps(db: Database) -> WorkflowDeps:
    return WorkflowDeps.of(SETTINGS, db=db, clock=db.clock)


_SEQUENCE = itertools.count(1)


async def _open(db: Database, unit: str, due: datetime, **extra: object) -> str:
    code = f"{unit}-260311-{next(_SEQUENCE):04d}"
    values = domain.opening_columns(
        code=code, unit=unit, received_at=due - timedelta(days=10), appointment_at=due, due_at_original=due,
        receiving_unit=None, received_by="clerk",
    )
    values |= {"procedure_code": "1.004194", "procedure_name": "Đăng ký tạm trú", "applicant_name": "A", "channel": "counter"}
    values |= extra
    async with db.unit_of_work() as tx:
        assert await store.insert_if_new(session=tx.session, values=values)
    return code


async def _announced(db: Database, unit: str) -> Counter[tuple[str, str]]:
    async with db.sessions() as session:
        rows = await session.execute(
            text("SELECT key, type FROM outbox WHERE key LIKE :unit || '-%'"), {"unit": unit}
        )
        return Counter((key, type_.split(".")[-2]) for key, type_ in rows.all())


async def test_three_replicas_sweeping_at_once_announce_each_deadline_once(database_url: str) -> None:
    clock = ManualClock(NOW)
    replicas = [_replica(database_url, clock) for _ in range(3)]
    unit = f"000.00.99.S{uuid.uuid4().hex[:6].upper()}"
    try:
        overdue = [await _open(replicas[0], unit, NOW - timedelta(hours=h + 1)) for h in range(40)]
        near = [await _open(replicas[0], unit, NOW + timedelta(hours=2, minutes=m)) for m in range(40)]
        far = await _open(replicas[0], unit, NOW + timedelta(days=30))
        paused = await _open(replicas[0], unit, NOW - timedelta(days=1), status="supplement_requested")

        sweepers = [DeadlineSweeper(_deps(db), interval=0.01, batch=7) for db in replicas]

        async def drain(sweeper: DeadlineSweeper) -> int:
            total = 0
            while claimed := await sweeper.sweep_once():
                total += claimed
            return total

        claimed = await asyncio.gather(*(drain(s) for s in sweepers))
        assert sum(claimed) == 80
        assert await sweepers[0].sweep_once() == 0

        announced = await _announced(replicas[0], unit)
        assert {announced[(code, "overdue")] for code in overdue} == {1}
        assert {announced[(code, "deadline_warning")] for code in near} == {1}
        assert not any(announced[(code, "deadline_warning")] for code in overdue)
        assert not any(announced[(c, kind)] for c in (far, paused) for kind in ("overdue", "deadline_warning"))
        assert sum(announced.values()) == 80

        # later, the near ones pass their deadline: one overdue notice each, still no second warning
        clock.advance(timedelta(hours=3))
        claimed = await asyncio.gather(*(drain(s) for s in sweepers))
        assert sum(claimed) == 40
        announced = await _announced(replicas[0], unit)
        assert {announced[(code, "overdue")] for code in near} == {1}
        assert {announced[(code, "deadline_warning")] for code in near} == {1}
        async with replicas[0].sessions() as session:
            case = await store.get(session=session, code=near[0])
        assert case is not None and case.is_late and case.late_reason == "overdue" and case.version == 1
    finally:
        for db in replicas:
            await db.dispose()


async def test_the_sweep_does_not_disturb_an_officer_holding_the_case_version(database_url: str) -> None:
    clock = ManualClock(NOW)
    db = _replica(database_url, clock)
    unit = f"000.00.98.S{uuid.uuid4().hex[:6].upper()}"
    try:
        code = await _open(db, unit, NOW - timedelta(hours=1))
        async with db.sessions() as session:
            before = await store.get(session=session, code=code)
        assert before is not None
        await DeadlineSweeper(_deps(db), interval=0.01, batch=10).sweep_once()
        async with db.unit_of_work() as tx:
            # an officer who read the case before the sweep still writes with the version they read
            assert await store.update(
                session=tx.session, code=code, version=before.version, changes={"assignee": "cb-1"}, now=clock.now()
            ) == before.version + 1
    finally:
        await db.dispose()
