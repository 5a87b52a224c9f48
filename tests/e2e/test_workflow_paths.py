"""Every path of a case over HTTP and Kafka with the real services: status, class and events at the end.

Intake does not yet emit every fact the workflow consumes (``dossier.supplemented``,
``dossier.withdrawn``) and digitization and payments do not yet sign or collect, so the tests
produce those CloudEvents to the stack's topics themselves, as those services will.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.envelope import Envelope
from shared.events import (
    DocumentSigned,
    DossierReceived,
    DossierSupplemented,
    DossierWithdrawn,
    Event,
    PaymentConfirmed,
    PaymentRequested,
)
from tests.support.stack import Stack, eventually, official, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")

RECEIVED = "vn.motcua.dossier.received.v1"


# ---- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def kafka(stack: Stack) -> AsyncIterator[Callable[[Event], Any]]:
    """Produce an event to its producer's topic of the stack, as that service's relay would."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers, acks="all", enable_idempotence=False)
    await producer.start()

    async def produce(event: Event) -> None:
        envelope = Envelope.wrap(
            event, source=f"/motcua/{event.producer}", time=datetime.now(UTC), traceparent=None, actor="e2e"
        )
        await producer.send_and_wait(
            stack.topic(event.producer),
            key=envelope.subject.encode(),
            value=envelope.kafka_value(),
            headers=envelope.kafka_headers(),
        )

    yield produce
    await producer.stop()




async def case_when(client: httpx.AsyncClient, code: str, predicate: Callable[[dict], bool], timeout: float = 30) -> dict:
    """The case once the predicate holds."""

    async def probe() -> dict | None:
        response = await client.get(f"/api/v1/cases/{code}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body = response.json()
        return body if predicate(body) else None

    return await eventually(probe, timeout=timeout)


async def timeline_types(stack: Stack, unit: str, code: str, *, until: str) -> list[str]:
    """The dossier's event types in reporting's timeline, once ``until`` is among them."""
    async with official(stack, "reporting", "auditor", unit) as reporting:

        async def probe() -> list[str] | None:
            response = await reporting.get(f"/api/v1/dossiers/{code}/timeline")
            if response.status_code != 200:
                return None
            types = [e["type"] for e in response.json()["data"]]
            return types if f"vn.motcua.{until}.v1" in types else None

        return await eventually(probe)


def short(types: list[str]) -> list[str]:
    """``vn.motcua.case.approved.v1`` → ``case.approved``."""
    return [t.removeprefix("vn.motcua.").removesuffix(".v1") for t in types]


async def receive_at_counter(stack: Stack, unit: str, procedure: str = "1.004194") -> dict:
    """A clerk accepts a dossier at intake (real HTTP); the receipt."""
    async with official(stack, "intake", "clerk", unit) as intake:
        response = await intake.post(
            "/api/v1/dossiers", json={"procedure_code": procedure, "applicant_name": "Lê Thị Thu Hà", "channel": "counter"}
        )
    assert response.status_code == 201, response.text
    return response.json()


_SEQUENCE = itertools.count(9001)  # apart from intake's own numbering (units are random anyway)


def received_event(unit: str, *, received_at: datetime | None = None, due_in: timedelta = timedelta(days=7), **extra: Any) -> DossierReceived:
    """A ``dossier.received`` fact as intake publishes it, with the deadline the test needs."""
    now = datetime.now(UTC)
    received_at = received_at or now
    due = now + due_in
    return DossierReceived(
        dossier_code=f"{unit}-{now:%y%m%d}-{next(_SEQUENCE):04d}",
        unit=unit,
        occurred_at=received_at,
        procedure_code="1.004194",
        procedure_name="Đăng ký tạm trú",
        applicant_name="Phạm Minh Tuấn",
        channel="counter",
        received_at=received_at,
        appointment_at=due,
        due_at_original=due,
        received_by="clerk-e2e",
        **extra,
    )


def signed(code: str, unit: str) -> DocumentSigned:
    """Digitization's fact: the result was signed."""
    return DocumentSigned(
        dossier_code=code, unit=unit, occurred_at=datetime.now(UTC), document_id=f"doc-{uuid.uuid4().hex[:8]}",
        signer="Chủ tịch UBND", certificate_serial="5401A0B1C2",
    )


def ts(value: str) -> datetime:
    """An instant from the API."""
    return datetime.fromisoformat(value)


def workflow_only(types: list[str]) -> list[str]:
    """The workflow's own events, in the order it published them."""
    return [t for t in types if t.startswith("case.")]


def in_order(types: list[str], *expected: str) -> bool:
    """True when the expected types occur in this order.

    Reporting's timeline lists events by the time their producers stamped them; events the test
    publishes itself (a signature, a payment) carry their own times, so only relative order is checked.
    """
    positions = [types.index(t) for t in expected]
    return positions == sorted(positions)


async def sign_and_pay(kafka: Callable, case: dict, client: httpx.AsyncClient) -> None:
    """Digitization signs the result; the fee intake assessed, if any, is paid.

    The payments service requests the fee itself once it assesses the dossier; the test confirms
    the requests the case shows as pending (or, if none comes, requests and confirms one itself).
    """
    code, unit = case["code"], case["unit"]
    await kafka(signed(code, unit))
    if not case["result_gate"]["fee_due"]:
        return

    async def pending() -> list[str] | None:
        body = (await client.get(f"/api/v1/cases/{code}")).json()
        return body["result_gate"]["pending_payments"] or None

    try:
        payment_ids = await eventually(pending, timeout=10)
    except AssertionError:
        payment_ids = [f"p-{code}"]
        await kafka(
            PaymentRequested(dossier_code=code, unit=unit, occurred_at=datetime.now(UTC), payment_id=payment_ids[0], amount=Decimal(case["fee_due_amount"]))
        )
    for payment_id in payment_ids:
        await kafka(
            PaymentConfirmed(
                dossier_code=code, unit=unit, occurred_at=datetime.now(UTC), payment_id=payment_id,
                amount=Decimal(case["fee_due_amount"]), channel="counter",
            )
        )


async def ok(response: httpx.Response, status: int = 200) -> dict:
    """The body of an expected success."""
    assert response.status_code == status, response.text
    return response.json()


# ---- the paths ---------------------------------------------------------------------------------------


async def test_straight_through_ends_returned_early_with_its_events_and_slip(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    code = (await receive_at_counter(stack, unit))["code"]
    async with (
        official(stack, "workflow", "specialist", unit, "cb-tuphap-1") as specialist,
        official(stack, "workflow", "leader", unit, "pct-ubnd") as leader,
        official(stack, "workflow", "clerk", unit, "mc-clerk-1") as clerk,
    ):
        case = await case_when(specialist, code, lambda c: True)
        assert (case["status"], case["national_status"]) == ("accepted", 2)
        assert "assign" in case["allowed_actions"]

        case = await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"department": "Công an xã", "assignee": "me"}))
        assert (case["status"], case["national_status"], case["assignee"]) == ("in_progress", 4, "cb-tuphap-1")

        case = await ok(await leader.post(f"/api/v1/cases/{code}/approve", json={"note": "Đủ điều kiện"}))
        assert case["status"] == "approved" and case["result_gate"]["missing"][0] == "signature"

        await sign_and_pay(kafka, case, clerk)
        case = await case_when(clerk, code, lambda c: c["status"] == "done")
        assert case["national_status"] == 9 and case["timeliness"] == "early" and case["finished_at"]

        case = await ok(await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "counter"}))
        assert (case["status"], case["national_status"], case["timeliness"]) == ("returned", 10, "early")
        assert ts(case["returned_at"]) >= ts(case["finished_at"])

        slip = await ok(await clerk.get(f"/api/v1/cases/{code}/steps"))
        assert [s["kind"] for s in slip["data"]] == ["assign", "result", "return"]
        assert all(s["completed_at"] for s in slip["data"])
        pdf = await clerk.get(f"/api/v1/cases/{code}/forms/05")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"

    types = short(await timeline_types(stack, unit, code, until="case.returned"))
    assert {"dossier.received", "case.assigned", "case.approved", "document.signed", "case.result_ready", "case.returned"} <= set(types)
    assert in_order(types, "case.assigned", "case.approved", "case.result_ready", "case.returned")


async def test_supplement_pauses_the_clock_and_a_second_request_makes_it_late(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    code = (await receive_at_counter(stack, unit))["code"]
    async with (
        official(stack, "workflow", "specialist", unit, "cb-1") as specialist,
        official(stack, "workflow", "leader", unit) as leader,
        official(stack, "workflow", "clerk", unit) as clerk,
    ):
        await case_when(specialist, code, lambda c: True)
        await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        case = await ok(
            await specialist.post(
                f"/api/v1/cases/{code}/supplement-request",
                json={"reason": "Thiếu giấy tờ chứng minh chỗ ở hợp pháp", "items": ["Hợp đồng thuê nhà có công chứng"]},
            )
        )
        assert (case["status"], case["national_status"]) == ("supplement_requested", 5)
        assert case["paused_at"] and case["remaining_working_days"] is not None and not case["is_late"]
        assert "approve" not in case["allowed_actions"]
        form = await specialist.get(f"/api/v1/cases/{code}/forms/02")
        assert form.status_code == 200 and form.content[:5] == b"%PDF-"

        now = datetime.now(UTC)
        await kafka(DossierSupplemented(dossier_code=code, unit=unit, occurred_at=now, supplemented_at=now))
        case = await case_when(specialist, code, lambda c: c["status"] == "in_progress")
        assert case["paused_at"] is None and ts(case["due_at"]) >= ts(case["due_at_original"]) and not case["is_late"]

        case = await ok(await specialist.post(f"/api/v1/cases/{code}/supplement-request", json={"reason": "Lần hai"}))
        assert case["is_late"] and case["late_reason"] == "second_supplement" and case["late_holder_officer"] == "cb-1"
        await kafka(DossierSupplemented(dossier_code=code, unit=unit, occurred_at=datetime.now(UTC), supplemented_at=datetime.now(UTC)))
        await case_when(specialist, code, lambda c: c["status"] == "in_progress")

        await sign_and_pay(kafka, await ok(await leader.get(f"/api/v1/cases/{code}")), leader)
        await case_when(leader, code, lambda c: c["result_gate"]["missing"] == ["approval"])
        case = await ok(await leader.post(f"/api/v1/cases/{code}/approve"))
        assert (case["status"], case["timeliness"]) == ("done", "late")

        missing = await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "postal"})
        assert missing.status_code == 422 and missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["errors"][0]["location"] == ["body", "tracking_number"]
        case = await ok(await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "postal", "tracking_number": "EB123456789VN"}))
        assert (case["status"], case["return_channel"], case["tracking_number"]) == ("returned", "postal", "EB123456789VN")

    types = short(await timeline_types(stack, unit, code, until="case.returned"))
    assert types.count("case.supplement_requested") == 2 and types.count("case.clock_resumed") == 2
    assert workflow_only(types)[-2:] == ["case.result_ready", "case.returned"]


async def test_late_with_an_apology_stays_late_and_names_who_held_it(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    event = received_event(unit, received_at=datetime.now(UTC) - timedelta(days=6), due_in=timedelta(seconds=15))
    code = event.dossier_code
    await kafka(event)
    async with (
        official(stack, "workflow", "specialist", unit, "cb-cham") as specialist,
        official(stack, "workflow", "leader", unit) as leader,
        official(stack, "workflow", "clerk", unit) as clerk,
    ):
        await case_when(specialist, code, lambda c: True)
        await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"department": "Địa chính", "assignee": "me"}))
        new_date = (datetime.now(UTC) + timedelta(days=5)).isoformat()
        too_early = await specialist.post(
            f"/api/v1/cases/{code}/apology", json={"reason": "Chờ xác minh", "new_appointment_at": event.received_at.isoformat()}
        )
        assert too_early.status_code == 422 and too_early.json()["errors"][0]["location"] == ["body", "new_appointment_at"]
        case = await ok(
            await specialist.post(f"/api/v1/cases/{code}/apology", json={"reason": "Chờ xác minh", "new_appointment_at": new_date})
        )
        assert case["apology_issued_at"] and case["apology_timely"] is False  # not one working day ahead
        again = await specialist.post(f"/api/v1/cases/{code}/apology", json={"reason": "Lần hai", "new_appointment_at": new_date})
        assert again.status_code == 409 and again.json()["type"] == "urn:motcua:problem:apology-already-issued"
        form = await specialist.get(f"/api/v1/cases/{code}/forms/04")
        assert form.status_code == 200 and form.content[:5] == b"%PDF-"

        case = await case_when(specialist, code, lambda c: c["overdue_sent_at"] is not None, timeout=45)
        assert case["is_late"] and case["late_holder_officer"] == "cb-cham" and case["late_holder_unit"] == "Địa chính"
        overdue = await ok(await specialist.get("/api/v1/cases", params={"assignee": "me", "due": "overdue"}))
        assert [c["code"] for c in overdue["data"]] == [code]

        case = await ok(await specialist.post(f"/api/v1/cases/{code}/explanation", json={"explanation": "Chờ UBND huyện trả lời"}))
        assert case["explained_at"] and case["explained_by"] == "cb-cham"

        await kafka(signed(code, unit))
        await case_when(leader, code, lambda c: c["result_gate"]["signed"])
        case = await ok(await leader.post(f"/api/v1/cases/{code}/approve"))
        assert (case["status"], case["timeliness"]) == ("done", "late")
        case = await ok(await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "counter"}))
        # returned before the rescheduled date, still late: the apology does not change the class
        assert ts(case["returned_at"]) < ts(case["due_at_rescheduled"]) and case["timeliness"] == "late"

    types = short(await timeline_types(stack, unit, code, until="case.returned"))
    assert types.count("case.overdue") == 1 and types.count("case.apology_issued") == 1
    assert "case.delay_explained" in types and types.count("case.deadline_warning") <= 1


async def test_a_near_deadline_is_warned_once_and_shows_in_the_inbox(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    event = received_event(unit, due_in=timedelta(hours=1))
    code = event.dossier_code
    await kafka(event)
    async with official(stack, "workflow", "specialist", unit, "cb-soon") as specialist:
        await case_when(specialist, code, lambda c: True)
        await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        case = await case_when(specialist, code, lambda c: c["warning_sent_at"] is not None)
        assert case["overdue_sent_at"] is None and not case["is_late"]
        soon = await ok(await specialist.get("/api/v1/cases", params={"assignee": "me", "due": "soon"}))
        assert [c["code"] for c in soon["data"]] == [code]
        await asyncio.sleep(6)  # another sweep round: no second warning
    types = short(await timeline_types(stack, unit, code, until="case.deadline_warning"))
    assert types.count("case.deadline_warning") == 1 and "case.overdue" not in types


async def test_transferred_to_another_agency_and_back(stack: Stack, kafka: Callable) -> None:
    unit, agency = random_unit(), random_unit()
    code = (await receive_at_counter(stack, unit))["code"]
    async with (
        official(stack, "workflow", "specialist", unit, "cb-lt") as specialist,
        official(stack, "workflow", "specialist", agency, "cb-huyen") as other_agency,
        official(stack, "workflow", "leader", unit) as leader,
        official(stack, "workflow", "clerk", unit) as clerk,
    ):
        await case_when(specialist, code, lambda c: True)
        await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        assert (await other_agency.get(f"/api/v1/cases/{code}")).status_code == 404  # not theirs yet

        too_long = await specialist.post(f"/api/v1/cases/{code}/transfer", json={"to_agency": agency, "step_days": 30})
        assert too_long.status_code == 422 and too_long.json()["errors"][0]["location"] == ["body", "step_days"]
        zero = await specialist.post(f"/api/v1/cases/{code}/transfer", json={"to_agency": agency, "step_days": 0})
        assert zero.status_code == 422 and "step_days" in zero.json()["detail"]

        case = await ok(
            await specialist.post(
                f"/api/v1/cases/{code}/transfer", json={"to_agency": agency, "step_days": 1, "to_officer": "cb-huyen", "note": "Xác minh"}
            )
        )
        assert (case["status"], case["national_status"], case["holder_unit"]) == ("transferred", 4, agency)
        assert ts(case["transfer_step_due_at"]) <= ts(case["due_at"])

        seen = await ok(await other_agency.get(f"/api/v1/cases/{code}"))
        assert seen["holder_officer"] == "cb-huyen"
        case = await ok(await other_agency.post(f"/api/v1/cases/{code}/transfer-return", json={"note": "Đã xác minh"}))
        assert (case["status"], case["holder_officer"], case["transfer_agency"]) == ("in_progress", "cb-lt", None)

        slip = (await ok(await clerk.get(f"/api/v1/cases/{code}/steps")))["data"]
        transfer_row = next(s for s in slip if s["kind"] == "transfer")
        assert transfer_row["to_unit"] == agency and transfer_row["step_due_at"] and transfer_row["late"] is False

        await sign_and_pay(kafka, await ok(await leader.get(f"/api/v1/cases/{code}")), leader)
        await case_when(leader, code, lambda c: c["result_gate"]["missing"] == ["approval"])
        await ok(await leader.post(f"/api/v1/cases/{code}/approve"))
        case = await ok(await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "online"}))
        assert (case["status"], case["timeliness"], case["return_channel"]) == ("returned", "early", "online")

    types = short(await timeline_types(stack, unit, code, until="case.returned"))
    assert types.index("case.transferred") < types.index("case.transfer_returned") < types.index("case.result_ready")


async def test_withdrawn_by_the_applicant_closes_the_case(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    code = (await receive_at_counter(stack, unit))["code"]
    async with official(stack, "workflow", "specialist", unit) as specialist, official(stack, "workflow", "leader", unit) as leader:
        await case_when(specialist, code, lambda c: True)
        await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        await kafka(DossierWithdrawn(dossier_code=code, unit=unit, occurred_at=datetime.now(UTC), reason="Người nộp rút hồ sơ"))
        case = await case_when(specialist, code, lambda c: c["status"] == "withdrawn")
        assert case["national_status"] == 7 and case["allowed_actions"] == [] and case["timeliness"] is None
        refused = await leader.post(f"/api/v1/cases/{code}/approve")
        assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["allowed_actions"] == [] and refused.json()["case_status"] == "withdrawn"
    # Intake's and workflow's events reach reporting on different topics, in either order: wait for both.
    await timeline_types(stack, unit, code, until="case.assigned")
    types = short(await timeline_types(stack, unit, code, until="dossier.withdrawn"))
    assert workflow_only(types) == ["case.assigned"] and {"dossier.received", "dossier.withdrawn"} <= set(types)


async def test_rejected_with_a_reason(stack: Stack) -> None:
    unit = random_unit()
    code = (await receive_at_counter(stack, unit))["code"]
    async with official(stack, "workflow", "specialist", unit) as specialist, official(stack, "workflow", "leader", unit) as leader:
        await case_when(specialist, code, lambda c: True)
        await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        forbidden = await specialist.post(f"/api/v1/cases/{code}/reject", json={"reason": "x"})
        assert forbidden.status_code == 403
        blank = await leader.post(f"/api/v1/cases/{code}/reject", json={"reason": ""})
        assert blank.status_code == 422 and blank.json()["errors"][0]["location"] == ["body", "reason"]
        case = await ok(await leader.post(f"/api/v1/cases/{code}/reject", json={"reason": "Không thuộc diện đăng ký tạm trú"}))
        assert (case["status"], case["national_status"], case["timeliness"]) == ("rejected", 3, "early")
        assert case["closed_reason"] == "Không thuộc diện đăng ký tạm trú"
    types = short(await timeline_types(stack, unit, code, until="case.rejected"))
    assert workflow_only(types) == ["case.assigned", "case.rejected"]


async def test_on_the_spot_one_officer_one_sitting(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    end_of_today = datetime.now(VN).replace(hour=23, minute=59, second=59, microsecond=0)
    event = received_event(unit, due_in=end_of_today - datetime.now(VN), on_the_spot=True)
    code = event.dossier_code
    await kafka(event)
    async with official(stack, "workflow", "clerk", unit, "mc-4taicho") as clerk:
        case = await case_when(clerk, code, lambda c: True)
        assert case["on_the_spot"] and "on_the_spot" in case["allowed_actions"]
        unsigned = await clerk.post(f"/api/v1/cases/{code}/on-the-spot")
        assert unsigned.status_code == 409 and unsigned.json()["missing"] == ["signature"]
        assert (await ok(await clerk.get(f"/api/v1/cases/{code}")))["status"] == "accepted"  # all or nothing

        await kafka(signed(code, unit))
        await case_when(clerk, code, lambda c: c["result_gate"]["signed"])
        case = await ok(await clerk.post(f"/api/v1/cases/{code}/on-the-spot", json={"channel": "counter"}))
        assert (case["status"], case["national_status"], case["timeliness"]) == ("returned", 10, "on_time")
        assert case["returned_on_the_spot"] and case["assignee"] == "mc-4taicho" and case["approved_by"] == "mc-4taicho"

    other = received_event(unit, due_in=timedelta(days=5), on_the_spot=False)
    await kafka(other)
    async with official(stack, "workflow", "clerk", unit) as clerk:
        await case_when(clerk, other.dossier_code, lambda c: True)
        refused = await clerk.post(f"/api/v1/cases/{other.dossier_code}/on-the-spot")
        assert refused.status_code == 409 and refused.json()["type"] == "urn:motcua:problem:not-on-the-spot"

    types = short(await timeline_types(stack, unit, code, until="case.returned"))
    # Due tonight, the case is near due from the start: the deadline sweep may warn of it (at most once) at any
    # moment of the sitting. That notice is the sweep's, not the sitting's.
    assert types.count("case.deadline_warning") <= 1
    sitting = [t for t in workflow_only(types) if t != "case.deadline_warning"]
    assert sitting == ["case.assigned", "case.approved", "case.result_ready", "case.returned"]


async def test_a_fee_holds_the_result_in_status_6_until_paid(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    event = received_event(unit)
    code = event.dossier_code
    await kafka(event)
    async with official(stack, "workflow", "specialist", unit) as specialist, official(stack, "workflow", "leader", unit) as leader:
        await case_when(specialist, code, lambda c: True)
        await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        now = datetime.now(UTC)
        await kafka(PaymentRequested(dossier_code=code, unit=unit, occurred_at=now, payment_id="pay-1", amount=Decimal(50000)))
        await kafka(signed(code, unit))
        await case_when(leader, code, lambda c: c["result_gate"]["signed"] and c["result_gate"]["fee_due"])
        case = await ok(await leader.post(f"/api/v1/cases/{code}/approve"))
        assert (case["status"], case["national_status"]) == ("awaiting_payment", 6)
        assert case["result_gate"]["missing"] == ["payment"]
        await kafka(
            PaymentConfirmed(dossier_code=code, unit=unit, occurred_at=datetime.now(UTC), payment_id="pay-1", amount=Decimal(50000), channel="online")
        )
        case = await case_when(leader, code, lambda c: c["status"] == "done")
        assert case["timeliness"] == "early" and case["result_gate"]["missing"] == []


async def test_two_officers_at_once_one_wins_the_other_gets_409(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    event = received_event(unit)
    code = event.dossier_code
    await kafka(event)
    async with (
        official(stack, "workflow", "leader", unit, "leader-a") as first,
        official(stack, "workflow", "leader", unit, "leader-b") as second,
    ):
        await case_when(first, code, lambda c: True)
        responses = await asyncio.gather(
            first.post(f"/api/v1/cases/{code}/assign", json={"assignee": "cb-a"}),
            second.post(f"/api/v1/cases/{code}/assign", json={"assignee": "cb-b"}),
        )
        # both may run in order too; then the second finds the first's assignment already made (409 by version)
        statuses = sorted(r.status_code for r in responses)
        assert statuses in ([200, 409], [200, 200]), [r.text for r in responses]
        if statuses == [200, 409]:
            loser = next(r for r in responses if r.status_code == 409)
            assert loser.headers["content-type"] == "application/problem+json"
            assert "approve" in loser.json()["allowed_actions"]
        approvals = await asyncio.gather(
            first.post(f"/api/v1/cases/{code}/approve"), second.post(f"/api/v1/cases/{code}/approve")
        )
        assert sorted(r.status_code for r in approvals) == [200, 409], [r.text for r in approvals]
        loser = next(r for r in approvals if r.status_code == 409)
        assert "allowed_actions" in loser.json()
    types = short(await timeline_types(stack, unit, code, until="case.approved"))
    assert types.count("case.approved") == 1


async def test_rating_once_after_return_and_feedback_with_its_own_deadline(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    event = received_event(unit)
    code = event.dossier_code
    await kafka(event)
    await kafka(signed(code, unit))
    async with (
        official(stack, "workflow", "leader", unit, "lanh-dao") as leader,
        official(stack, "workflow", "clerk", unit) as clerk,
        httpx.AsyncClient(base_url=stack.url("workflow"), timeout=10) as citizen,
    ):
        await case_when(leader, code, lambda c: c["result_gate"]["signed"])
        await ok(await leader.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        links = await ok(await clerk.get(f"/api/v1/cases/{code}/public-links"))
        rating_path = f"/api/v1/public/cases/{code}/rating"
        vote = {"rating": "very_satisfied", "criteria": {"officer_attitude": "satisfied", "times_contacted": 1}, "comment": "Nhanh"}

        too_soon = await citizen.post(rating_path, params={"sig": links["signature"]}, json=vote)
        assert too_soon.status_code == 409 and too_soon.json()["type"] == "urn:motcua:problem:action-not-allowed"
        await ok(await leader.post(f"/api/v1/cases/{code}/approve"))
        await ok(await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "counter"}))

        forged = await citizen.post(rating_path, params={"sig": "0" * 64}, json=vote)
        assert forged.status_code == 403
        bad = await citizen.post(rating_path, params={"sig": links["signature"]}, json={"rating": "great"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["location"] == ["body", "rating"]
        rating = await ok(await citizen.post(rating_path, params={"sig": links["signature"]}, json=vote), 201)
        assert rating["derived"]["supplement_requests"] == 0 and rating["criteria"]["times_contacted"] == 1
        twice = await citizen.post(rating_path, params={"sig": links["signature"]}, json=vote)
        assert twice.status_code == 409 and twice.json()["type"] == "urn:motcua:problem:already-rated"
        view = await ok(await citizen.get(f"/api/v1/public/cases/{code}", params={"sig": links["signature"]}))
        assert view["rated"] and not view["can_rate"] and view["national_status"] == 10

        feedback = await ok(
            await citizen.post(
                f"/api/v1/public/cases/{code}/feedback", params={"sig": links["signature"]}, json={"content": "Phí photo cao"}
            ),
            201,
        )
        assert feedback["channel"] == "public_link" and ts(feedback["due_at"]) > ts(feedback["submitted_at"]) + timedelta(days=14)
        listed = await ok(await leader.get("/api/v1/feedback", params={"state": "open"}))
        assert [f["id"] for f in listed["data"]] == [feedback["id"]]
        answered = await ok(await leader.post(f"/api/v1/feedback/{feedback['id']}/answer", json={"answer": "Đã điều chỉnh"}))
        assert answered["timeliness"] in ("early", "on_time") and answered["answered_by"] == "lanh-dao"
        again = await leader.post(f"/api/v1/feedback/{feedback['id']}/answer", json={"answer": "x"})
        assert again.status_code == 409

    types = short(await timeline_types(stack, unit, code, until="case.feedback_answered"))
    assert workflow_only(types)[-3:] == ["case.rated", "case.feedback_received", "case.feedback_answered"]


async def test_officials_see_only_their_units_and_act_only_in_their_role(stack: Stack, kafka: Callable) -> None:
    unit = random_unit()
    event = received_event(unit)
    await kafka(event)
    code = event.dossier_code
    async with (
        official(stack, "workflow", "specialist", unit, "cb-x") as specialist,
        official(stack, "workflow", "specialist", unit, "cb-y") as colleague,
        official(stack, "workflow", "leader", random_unit()) as stranger,
    ):
        await case_when(specialist, code, lambda c: True)
        assert (await stranger.get(f"/api/v1/cases/{code}")).status_code == 404
        assert (await stranger.post(f"/api/v1/cases/{code}/approve")).status_code == 404
        taken_for_other = await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "cb-y"})
        assert taken_for_other.status_code == 403
        await ok(await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        not_theirs = await colleague.post(f"/api/v1/cases/{code}/supplement-request", json={"reason": "r"})
        assert not_theirs.status_code == 403 and not_theirs.json()["type"] == "urn:motcua:problem:not-assignee"
        assert (await specialist.post(f"/api/v1/cases/{code}/approve")).status_code == 403
