"""Late with a timely apology, driven by moving the workflow's clock (``motcua clock set``'s endpoint).

A stack of its own (intake, workflow, reporting): moving time must not disturb the shared stack.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.events import DocumentSigned, Event, PaymentConfirmed, PaymentRequested
from tests.support.stack import Stack, eventually, official, produce, random_unit


@pytest.fixture(scope="module")
async def timed(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake, workflow and reporting whose workflow clock this module moves."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("workflow-clock")), services=["intake", "workflow", "reporting"],
        env={"WORKFLOW_SWEEP_INTERVAL_SECONDS": "1"},
    )
    await stack.start()
    yield stack
    stack.stop()






async def _move_workflow_clock(stack: Stack, to: datetime) -> None:
    async with official(stack, "workflow", "admin", "*", "ops") as admin:
        response = await admin.put("/api/v1/admin/clock", json={"now": to.isoformat()})
    assert response.status_code == 200, response.text


async def test_a_timely_apology_does_not_save_a_dossier_that_then_goes_late(timed: Stack) -> None:
    unit = random_unit()
    async with official(timed, "intake", "clerk", unit, "mc-1") as intake:
        response = await intake.post(
            "/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant_name": "Đỗ Văn Hùng", "channel": "counter"}
        )
    assert response.status_code == 201, response.text
    code = response.json()["code"]

    async with (
        official(timed, "workflow", "specialist", unit, "cb-dc") as specialist,
        official(timed, "workflow", "leader", unit, "ct-ubnd") as leader,
        official(timed, "workflow", "clerk", unit, "mc-1") as clerk,
    ):

        async def case() -> dict | None:
            r = await specialist.get(f"/api/v1/cases/{code}")
            return r.json() if r.status_code == 200 else None

        opened = await eventually(case)
        due = datetime.fromisoformat(opened["due_at"])
        assert opened["due_at"] == opened["due_at_original"] and due > datetime.now(UTC) + timedelta(hours=20)
        assert (await specialist.post(f"/api/v1/cases/{code}/assign", json={"department": "Công an xã", "assignee": "me"})).status_code == 200

        new_date = due + timedelta(days=4)
        apology = await specialist.post(
            f"/api/v1/cases/{code}/apology", json={"reason": "Chờ xác minh nơi cư trú", "new_appointment_at": new_date.isoformat()}
        )
        assert apology.status_code == 200, apology.text
        assert apology.json()["apology_timely"] is True  # at least one working day before the deadline

        await _move_workflow_clock(timed, due - timedelta(hours=1))
        warned = await eventually(lambda: _when(specialist, code, "warning_sent_at"))
        assert warned["overdue_sent_at"] is None and not warned["is_late"]

        await _move_workflow_clock(timed, due + timedelta(hours=2))
        late = await eventually(lambda: _when(specialist, code, "overdue_sent_at"))
        assert late["is_late"] and (late["late_holder_unit"], late["late_holder_officer"]) == ("Công an xã", "cb-dc")
        overdue = (await specialist.get("/api/v1/cases", params={"assignee": "me", "due": "overdue"})).json()
        assert [c["code"] for c in overdue["data"]] == [code]

        explained = await specialist.post(f"/api/v1/cases/{code}/explanation", json={"explanation": "Công an huyện trả lời chậm"})
        assert explained.status_code == 200, explained.text

        now = datetime.now(UTC)
        events: list[Event] = [
            DocumentSigned(dossier_code=code, unit=unit, occurred_at=now, document_id=f"d-{uuid.uuid4().hex[:6]}", signer="CT", certificate_serial="01")
        ]
        if late["result_gate"]["fee_due"]:
            amount = Decimal(late["fee_due_amount"])
            events += [
                PaymentRequested(dossier_code=code, unit=unit, occurred_at=now, payment_id="p1", amount=amount),
                PaymentConfirmed(dossier_code=code, unit=unit, occurred_at=now, payment_id="p1", amount=amount, channel="counter"),
            ]
        await produce(timed, *events)
        await eventually(lambda: _gate_open_but_approval(leader, code))
        done = await leader.post(f"/api/v1/cases/{code}/approve")
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["timeliness"]) == ("done", "late")
        returned = (await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "counter"})).json()
        assert returned["timeliness"] == "late"
        assert datetime.fromisoformat(returned["returned_at"]) < datetime.fromisoformat(returned["due_at_rescheduled"])

    async with official(timed, "reporting", "auditor", unit, "kt") as reporting:

        async def types() -> list[str] | None:
            r = await reporting.get(f"/api/v1/dossiers/{code}/timeline")
            found = [e["type"].removeprefix("vn.motcua.").removesuffix(".v1") for e in r.json().get("data", [])]
            return found if "case.returned" in found else None

        seen = await eventually(types)
    workflow = [t for t in seen if t.startswith("case.")]
    assert workflow == [
        "case.assigned", "case.apology_issued", "case.deadline_warning", "case.overdue", "case.delay_explained",
        "case.approved", "case.result_ready", "case.returned",
    ]


async def _when(client: httpx.AsyncClient, code: str, flag: str) -> dict | None:
    body = (await client.get(f"/api/v1/cases/{code}")).json()
    return body if body.get(flag) else None


async def _gate_open_but_approval(client: httpx.AsyncClient, code: str) -> bool:
    body = (await client.get(f"/api/v1/cases/{code}")).json()
    return body["result_gate"]["missing"] == ["approval"]
