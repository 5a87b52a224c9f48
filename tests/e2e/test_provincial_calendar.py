"""A province's declared days reach the workflow through intake's calendar events and move its deadlines.

An admin declares a local day off in intake; intake publishes ``calendar.day_declared`` in the same
transaction, the workflow keeps it in its own table and resumes a paused case on its province's calendar.
Forgetting the day travels the same way. Each test uses a unit of its own, so a province of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.calendar import WorkingCalendar, province_of, resume_due_at
from shared.envelope import Envelope
from shared.events import (
    CalendarDayDeclared,
    CalendarDayForgotten,
    DossierSupplemented,
    Fact,
)
from tests.support.stack import Stack, eventually, official, random_unit


@pytest.fixture(scope="module")
async def kafka(stack: Stack) -> AsyncIterator[Callable[[Fact], Any]]:
    """Produce an event to its producer's topic of the stack, as that service's relay would."""
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.broker.bootstrap_servers,
        acks="all",
        enable_idempotence=False,
    )
    await producer.start()

    async def produce(event: Fact) -> None:
        envelope = Envelope.wrap(
            event,
            source=f"/motcua/{event.producer}",
            time=datetime.now(UTC),
            traceparent=None,
            actor="e2e",
        )
        await producer.send_and_wait(
            stack.topic(event.producer),
            key=envelope.subject.encode(),
            value=envelope.kafka_value(),
            headers=envelope.kafka_headers(),
        )

    yield produce
    await producer.stop()




async def _workflow_days(stack: Stack, province: str) -> dict[date, tuple[bool, str]]:
    """The workflow's own copy of the province's declared days (read from its database)."""
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database("workflow")))
    try:
        rows = await conn.fetch(
            "SELECT day, working, reason FROM province_calendar_days WHERE province = $1",
            province,
        )
    finally:
        await conn.close()
    return {r["day"]: (r["working"], r["reason"]) for r in rows}


async def test_a_provincial_day_off_moves_the_resumed_deadline_and_forgetting_it_propagates(
    stack: Stack, kafka: Callable
) -> None:
    unit = random_unit()
    province = province_of(unit)
    async with official(stack, "intake", "clerk", unit, "mc-cal") as intake:
        received = await intake.post(
            "/api/v1/dossiers",
            json={
                "procedure_code": "1.004194",
                "applicant_name": "Lê Thị Hoà",
                "channel": "counter",
            },
        )
    assert received.status_code == 201, received.text
    code = received.json()["code"]

    async with official(stack, "workflow", "specialist", unit, "cb-cal") as specialist:

        async def case() -> dict | None:
            r = await specialist.get(f"/api/v1/cases/{code}")
            return r.json() if r.status_code == 200 else None

        await eventually(case)
        assigned = await specialist.post(
            f"/api/v1/cases/{code}/assign", json={"assignee": "me"}
        )
        assert assigned.status_code == 200, assigned.text
        paused = await specialist.post(
            f"/api/v1/cases/{code}/supplement-request",
            json={"reason": "Thiếu giấy khai sinh"},
        )
        assert paused.status_code == 200, paused.text
        remaining = paused.json()["remaining_working_days"]
        assert (
            remaining >= 1
        )  # paused on the national calendar, before the province declares anything

        supplemented_at = datetime.now(UTC)
        national = WorkingCalendar()
        festival = national.next_working(
            national.open_instant(supplemented_at).date()
        )  # the first day the clock counts
        async with official(stack, "intake", "admin", unit, "qt-tinh") as admin:
            declared = await admin.put(
                f"/api/v1/calendar/{province}/days/{festival.isoformat()}",
                json={"working": False, "note": "Lễ hội đền Hùng địa phương"},
            )
            assert declared.status_code == 200, declared.text
            assert await eventually(lambda: _workflow_days(stack, province)) == {
                festival: (False, "Lễ hội đền Hùng địa phương")
            }

            await kafka(
                DossierSupplemented(
                    dossier_code=code,
                    unit=unit,
                    occurred_at=supplemented_at,
                    supplemented_at=supplemented_at,
                )
            )
            resumed = await eventually(lambda: _resumed(specialist, code))
            provincial = WorkingCalendar(
                extra_days_off={festival: "Lễ hội đền Hùng địa phương"}
            )
            expected = resume_due_at(supplemented_at, remaining, provincial)
            national_due = resume_due_at(supplemented_at, remaining, national)
            assert expected.date() == national.next_working(
                national_due.date()
            )  # one working day later than nationally
            assert datetime.fromisoformat(resumed["due_at"]) == expected

            forgotten = await admin.delete(
                f"/api/v1/calendar/{province}/days/{festival.isoformat()}"
            )
            assert forgotten.status_code == 204, forgotten.text
            assert await eventually(lambda: _no_days(stack, province))


async def _resumed(client: httpx.AsyncClient, code: str) -> dict | None:
    body = (await client.get(f"/api/v1/cases/{code}")).json()
    return body if body.get("status") != "supplement_requested" else None


async def _no_days(stack: Stack, province: str) -> bool:
    return not await _workflow_days(stack, province)


async def test_calendar_events_apply_once_and_the_later_fact_wins(
    stack: Stack, kafka: Callable
) -> None:
    """A redelivered declaration changes nothing; an older declaration after a newer one is ignored; forgetting removes it."""
    province = f"T{uuid.uuid4().hex[:6].upper()}"
    day = date(2031, 3, 14)
    newer = datetime.now(UTC)
    older = newer.replace(year=newer.year - 1)
    declared = CalendarDayDeclared(
        province=province,
        day=day,
        occurred_at=newer,
        kind="working",
        reason="Làm bù",
        declared_by="qt",
    )
    await kafka(declared)
    await kafka(declared)
    await kafka(
        CalendarDayDeclared(
            province=province,
            day=day,
            occurred_at=older,
            kind="off",
            reason="Cũ",
            declared_by="qt",
        )
    )
    marker = date(
        2031, 3, 15
    )  # declared last: once it is there, the three before it were applied (one partition, in order)
    await kafka(
        CalendarDayDeclared(
            province=province,
            day=marker,
            occurred_at=newer,
            kind="off",
            reason="Mốc",
            declared_by="qt",
        )
    )

    async def both() -> dict | None:
        days = await _workflow_days(stack, province)
        return days if marker in days else None

    assert await eventually(both) == {day: (True, "Làm bù"), marker: (False, "Mốc")}
    await kafka(
        CalendarDayForgotten(province=province, day=day, occurred_at=datetime.now(UTC))
    )
    await kafka(
        CalendarDayForgotten(
            province=province, day=marker, occurred_at=datetime.now(UTC)
        )
    )
    assert await eventually(lambda: _no_days(stack, province))
