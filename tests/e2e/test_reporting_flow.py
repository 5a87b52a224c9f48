"""A reporting period driven through the real services: intake receives, workflow decides, reporting counts.

Intake, workflow and reporting run as processes on a stack of their own; every clock moves forward together
(``PUT /api/v1/admin/clock``) so deadlines pass without waiting. Digitization and payments are not running:
the test publishes their CloudEvents (the signed result, the fee) as they would. The summary at the end must
equal the hand count of what was done: two dossiers carried over (one resolved late after an apology, one early
and returned by post), six received (one paused for additions then early, one withdrawn, one refused, one open
and not due, one open past its deadline, one due the first working day after the period).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.calendar import WorkingCalendar
from shared.envelope import Envelope
from shared.events import DocumentSigned, Event, PaymentConfirmed, PaymentRequested
from tests.support.stack import Stack, eventually, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkingCalendar()
SERVICES = ("intake", "workflow", "reporting")

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def office(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake, workflow and reporting whose clocks this module moves."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("reporting-flow")), services=list(SERVICES),
        env={"WORKFLOW_SWEEP_INTERVAL_SECONDS": "1"},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


class Office:
    """One unit's officials and the helpers a test drives them with."""

    def __init__(self, stack: Stack, unit: str, producer: AIOKafkaProducer) -> None:
        self.stack, self.unit, self.producer = stack, unit, producer

    def client(self, service: str, role: str, subject: str) -> httpx.AsyncClient:
        token = self.stack.token(role, units=[self.unit], subject=subject)
        return httpx.AsyncClient(base_url=self.stack.url(service), headers={"Authorization": f"Bearer {token}"}, timeout=20)

    async def move_clocks(self, to: datetime) -> None:
        token = self.stack.token("admin", units=["*"], subject="ops")
        for service in SERVICES:
            async with httpx.AsyncClient(base_url=self.stack.url(service), headers={"Authorization": f"Bearer {token}"}) as admin:
                response = await admin.put("/api/v1/admin/clock", json={"now": to.isoformat()})
            assert response.status_code == 200, response.text

    async def receive(self, procedure: str = "1.004194", **body: object) -> dict:
        async with self.client("intake", "clerk", "mc-1") as clerk:
            response = await clerk.post("/api/v1/dossiers", json={"procedure_code": procedure, "applicant_name": "Phạm Văn Nam", **body})
        assert response.status_code == 201, response.text
        return response.json()

    async def case(self, code: str, predicate: Callable[[dict], bool] = lambda c: True) -> dict:
        async with self.client("workflow", "auditor", "kt") as auditor:

            async def probe() -> dict | None:
                response = await auditor.get(f"/api/v1/cases/{code}")
                return response.json() if response.status_code == 200 and predicate(response.json()) else None

            return await eventually(probe)

    async def act(self, role: str, subject: str, code: str, action: str, body: dict | None = None) -> dict:
        async with self.client("workflow", role, subject) as official:
            response = await official.post(f"/api/v1/cases/{code}/{action}", json=body or {})
        assert response.status_code == 200, f"{action}: {response.text}"
        return response.json()

    async def publish(self, *events: Event) -> None:
        for event in events:
            env = Envelope.wrap(event, source=f"/motcua/{event.producer}", time=event.occurred_at, traceparent=None, actor="e2e")
            await self.producer.send_and_wait(self.stack.topic(event.producer), key=env.subject.encode(),
                                              value=env.kafka_value(), headers=env.kafka_headers())

    async def sign_and_pay(self, code: str, now: datetime, *, channel: str = "counter") -> None:
        """Digitization signs the result and payments collects the fee; then only the approval is missing."""
        case = await self.case(code)
        events: list[Event] = [
            DocumentSigned(dossier_code=code, unit=self.unit, occurred_at=now, document_id=f"kq-{uuid.uuid4().hex[:8]}",
                           signer="Chủ tịch UBND", certificate_serial="54A1")
        ]
        if case["fee_due_amount"]:
            amount, payment = Decimal(case["fee_due_amount"]), f"tt-{uuid.uuid4().hex[:8]}"
            events += [
                PaymentRequested(dossier_code=code, unit=self.unit, occurred_at=now, payment_id=payment, amount=amount),
                PaymentConfirmed(dossier_code=code, unit=self.unit, occurred_at=now, payment_id=payment, amount=amount, channel=channel),
            ]
        await self.publish(*events)
        await self.case(code, lambda c: c["result_gate"]["missing"] == ["approval"])


def day_at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=VN)


def nth_working_after(day: date, n: int) -> date:
    for _ in range(n):
        day = CAL.next_working(day)
    return day


async def test_a_period_through_the_real_services_matches_the_hand_count(office: Stack) -> None:
    unit = random_unit()
    producer = AIOKafkaProducer(bootstrap_servers=office.broker.bootstrap_servers, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await _drive(Office(office, unit, producer))
    finally:
        await producer.stop()


async def _drive(o: Office) -> None:
    today = datetime.now(VN).date()
    # Before the period: two dossiers that will be carried over.
    x1, x2 = (await o.receive())["code"], (await o.receive())["code"]
    x1_due = datetime.fromisoformat((await o.case(x1))["due_at"])
    await o.case(x2)  # both cases exist in workflow before anyone acts on them
    w1 = CAL.next_working(today)
    first = w1

    # Day 1 of the period.
    await o.move_clocks(day_at(w1, 8))
    await o.act("specialist", "cb-1", x1, "assign", {"department": "Công an xã", "assignee": "me"})
    apology = await o.act("specialist", "cb-1", x1, "apology",
                          {"reason": "Chờ xác minh", "new_appointment_at": (x1_due + timedelta(days=7)).isoformat()})  # fmt: skip
    assert apology["apology_timely"] is True
    new_date = apology["due_at_rescheduled"]
    await o.act("specialist", "cb-2", x2, "assign", {"assignee": "me"})
    await o.sign_and_pay(x2, day_at(w1, 8, 10))
    x2_done = await o.act("leader", "ct", x2, "approve")
    await o.act("clerk", "mc-1", x2, "return", {"channel": "postal", "tracking_number": "EV000111222VN"})

    y1 = (await o.receive())["code"]
    y2 = (await o.receive())["code"]
    y3 = (await o.receive(channel="postal", postal_tracking_number="RR123456789VN"))["code"]
    y4 = (await o.receive("LOCAL.BT.026"))["code"]
    await o.case(y1)
    await o.act("specialist", "cb-2", y1, "assign", {"assignee": "me"})
    await o.act("specialist", "cb-2", y1, "supplement-request", {"reason": "Thiếu bản sao giấy khai sinh", "items": ["Giấy khai sinh"]})
    await o.case(y2)
    async with o.client("intake", "clerk", "mc-1") as clerk:
        withdrawn = await clerk.post(f"/api/v1/dossiers/{y2}/withdrawal", json={"reason": "Người nộp xin rút"})
    assert withdrawn.status_code == 200, withdrawn.text
    await o.case(y3)
    await o.act("specialist", "cb-3", y3, "assign", {"assignee": "me"})
    y3_done = await o.act("leader", "ct", y3, "reject", {"reason": "Không thuộc thẩm quyền"})

    # Day 2: the additions arrive (the clock resumes); a dossier nobody will touch.
    w2 = CAL.next_working(w1)
    await o.move_clocks(day_at(w2, 9))
    async with o.client("intake", "clerk", "mc-1") as clerk:

        async def supplemented() -> bool:
            response = await clerk.post(f"/api/v1/dossiers/{y1}/supplements", json={"items": [{"name": "Giấy khai sinh", "form": "copy"}]})
            return response.status_code == 200

        await eventually(supplemented)  # once intake has followed the request (status 5)
    await o.case(y1, lambda c: c["status"] == "in_progress")
    y5 = (await o.receive())["code"]

    # Day 3: Y1's result is signed, paid online and approved.
    w3 = CAL.next_working(w2)
    await o.move_clocks(day_at(w3, 9))
    await o.sign_and_pay(y1, day_at(w3, 9), channel="online")
    y1_done = await o.act("leader", "ct", y1, "approve")

    # X1's deadline passes: the sweep announces it; it is then finished late and returned.
    late_day = CAL.next_working(x1_due.astimezone(VN).date())
    late_day = max(late_day, CAL.next_working(w3))
    await o.move_clocks(day_at(late_day, 10))
    overdue = await o.case(x1, lambda c: c["overdue_sent_at"] is not None)
    assert (overdue["late_holder_unit"], overdue["late_holder_officer"]) == ("Công an xã", "cb-1")
    await o.sign_and_pay(x1, day_at(late_day, 10))
    x1_done = await o.act("leader", "ct", x1, "approve")
    await o.act("clerk", "mc-1", x1, "return", {"channel": "counter"})

    # Y6 is received so that its deadline is the first working day after the period, which ends the day before.
    receive_day = CAL.next_working(late_day)
    await o.move_clocks(day_at(receive_day, 9))
    y6 = await o.receive()
    y6_due = datetime.fromisoformat(y6["appointment_at"]).astimezone(VN).date()
    assert y6_due == nth_working_after(receive_day, 3)
    last = y6_due - timedelta(days=1)
    await o.move_clocks(day_at(last, 18))  # the sweep marks Y5 overdue

    assert (x1_done["timeliness"], x2_done["timeliness"], y1_done["timeliness"]) == ("late", "early", "early")
    timeliness = [x1_done["timeliness"], x2_done["timeliness"], y1_done["timeliness"], y3_done["timeliness"]]
    y5_case = await o.case(y5, lambda c: c["overdue_sent_at"] is not None)
    expected = {
        "carried_over": 2, "received_total": 6, "received_online": 0, "received_counter": 5, "received_postal": 1,
        "to_process": 8, "resolved_total": 4, "resolved_early": timeliness.count("early"),
        "resolved_on_time": timeliness.count("on_time"), "resolved_late": 1, "resolved_with_result": 3,
        "resolved_not_returned": 1, "rejected": 1, "stopped": 0, "withdrawn": 1, "withdrawn_late": 0,
        "pending_total": 3, "pending_not_due": 1, "pending_near_due": 1, "pending_overdue": 1, "pending_paused": 0,
        "supplement_requested": 1, "received_within_time": 5, "results_signed": 3, "fee_dossiers": 5, "paid_online": 1,
        "postal_returned": 1, "apologies_issued": 1, "digitized_at_intake": 0, "ratings_total": 0,
    }  # fmt: skip
    period = {"unit": o.unit, "from": first.isoformat(), "to": last.isoformat()}
    async with o.client("reporting", "leader", "lanh-dao") as leader:
        last_seen: dict = {}

        async def counted() -> bool:
            response = await leader.get("/api/v1/reports/summary", params=period)
            assert response.status_code == 200, response.text
            last_seen.update(response.json())
            return {k: last_seen[k] for k in expected} == expected

        try:
            await eventually(counted, timeout=30)
        finally:
            assert {k: last_seen.get(k) for k in expected} == expected
        late = (await leader.get("/api/v1/reports/late", params=period)).json()
        verdicts = [(await leader.get(f"/api/v1/dossiers/{c}/timeline/verify")).json() for c in (x1, x2, y1, y2, y3, y4, y5, y6["code"])]
    rows = {r["code"]: r for r in late["data"]}
    assert set(rows) == {x1, y5}
    assert (rows[x1]["state"], rows[x1]["holder_unit"], rows[x1]["holder_officer"]) == ("resolved_late", "Công an xã", "cb-1")
    assert rows[x1]["apology_issued"] and datetime.fromisoformat(rows[x1]["new_appointment_at"]) == datetime.fromisoformat(new_date)
    assert (rows[y5]["state"], rows[y5]["holder_unit"], rows[y5]["holder_officer"]) == (
        "pending_overdue", y5_case["late_holder_unit"], y5_case["late_holder_officer"]
    )
    assert all(v["intact"] for v in verdicts), verdicts
