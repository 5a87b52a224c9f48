"""An officer's "near the deadline" worklist counts office hours on each case's own provincial calendar.

Two cases are due on the same Monday morning, in two provinces. One province has declared the Friday before a
day off, so from Thursday morning its few office hours left run into Monday: its case is near the deadline,
the other province's is not yet. The worklist is read through workflow's real handlers against its migrated
database, with the clock held on Thursday.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from motcua.devstack import EmbeddedPostgres
from services.workflow import handlers
from services.workflow.deps import WorkflowDeps
from services.workflow.settings import WorkflowSettings
from shared.auth import Principal, Role
from shared.clock import ManualClock
from shared.db import Database
from shared.envelope import Envelope
from shared.events import CalendarDayDeclared, DossierReceived
from tests.support.platform import namespace, service_database

VN = ZoneInfo("Asia/Ho_Chi_Minh")
THURSDAY = datetime(2030, 6, 13, 9, 0, tzinfo=VN)
FRIDAY = date(2030, 6, 14)
MONDAY_MORNING = datetime(2030, 6, 17, 9, 0, tzinfo=VN)
SETTINGS = WorkflowSettings()  # the office hours are those of the shipped rules in force (07:30-17:00)


def _envelope(event: DossierReceived | CalendarDayDeclared) -> Envelope:
    return Envelope.wrap(event, source="/motcua/intake", time=event.occurred_at, traceparent=None, actor="test")


async def _receive(db: Database, deps: WorkflowDeps, code: str, unit: str) -> None:
    received = THURSDAY.replace(day=10)
    event = DossierReceived(
        dossier_code=code, unit=unit, occurred_at=received, procedure_code="1.004194", procedure_name="Đăng ký tạm trú",
        applicant_name="Trần Văn Bình", channel="counter", received_at=received, appointment_at=MONDAY_MORNING,
        due_at_original=MONDAY_MORNING, received_by="mc-1",
    )  # fmt: skip
    async with db.unit_of_work() as tx:
        await handlers.on_dossier_received(tx, event, _envelope(event), deps=deps)


async def test_near_the_deadline_follows_the_provinces_declared_day_off(postgres: EmbeddedPostgres) -> None:
    db = await service_database(postgres, "workflow", namespace())
    db.clock = ManualClock(THURSDAY)
    festival, plain = f"F{uuid.uuid4().hex[:5].upper()}", f"P{uuid.uuid4().hex[:5].upper()}"
    festive_unit, plain_unit = f"000.00.01.{festival}", f"000.00.01.{plain}"
    deps = WorkflowDeps.of(SETTINGS, db=db, clock=db.clock)
    try:
        await _receive(db, deps, f"{festive_unit}-300610-0001", festive_unit)
        await _receive(db, deps, f"{plain_unit}-300610-0001", plain_unit)
        declared = CalendarDayDeclared(
            province=festival, day=FRIDAY, occurred_at=THURSDAY, kind="off", reason="Lễ hội truyền thống", declared_by="qt"
        )
        async with db.unit_of_work() as tx:
            await handlers.on_calendar_day_declared(tx, declared, _envelope(declared))

        officer = Principal(subject="cb-1", roles=frozenset({Role.SPECIALIST}), units=frozenset({festive_unit, plain_unit}))

        async def worklist(due: str) -> list[str]:
            async with db.unit_of_work() as tx:
                views, total = await handlers.worklist(
                    tx, deps=deps, user=officer, assignee=None, due=due, statuses=None, limit=10, offset=0  # type: ignore[arg-type]
                )
            assert total == len(views)
            return [case.unit for case, _ in views]

        assert await worklist("soon") == [festive_unit]
        assert await worklist("overdue") == []
        db.clock = ManualClock(datetime(2030, 6, 17, 8, 0, tzinfo=VN))  # Monday, an hour before both deadlines
        assert sorted(await worklist("soon")) == sorted([festive_unit, plain_unit])
    finally:
        await db.dispose()
