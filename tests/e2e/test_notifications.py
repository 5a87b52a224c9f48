"""Applicant notifications end to end: a real SMTP server, a real HTTP server for the SMS gateway, a real stack.

Two dossiers, one whose applicant chose e-mail and one SMS, go through supplement request →
supplemented, a late apology (the workflow clock moved past the deadline), approval and return. The
workflow is SIGKILLed while the SMS gateway holds the first message unanswered, and restarted. At
the end each expected message arrived, in Vietnamese with its diacritics, once per notification id:
the SMS gateway de-duplicates on the ``Idempotency-Key`` that every copy carries (the killed send
reached it and is sent again after the lease: that is the at-least-once window), and each e-mail
``Message-ID`` arrived once.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from services.workflow.notifications import VIETNAM
from shared.events import DocumentSigned, Event, PaymentConfirmed, PaymentRequested
from tests.support.http_peer import serve
from tests.support.stack import Stack, eventually, official, produce, random_unit

UNIT_NAME = "UBND PHƯỜNG BẾN NGHÉ"
SMS_TOKEN = "sms-test-token"
KINDS = ["accepted", "supplement_requested", "apology_issued", "result_ready", "returned"]


# ---- the outside world: an SMTP server and an SMS gateway ----------------------------------------------


class Inbox:
    """aiosmtpd handler: keeps every message as it arrived (parsed with the standard library)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1 (its own thread)."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@dataclass
class SmsGateway:
    """An SMS gateway over HTTP: records every request; holds the first one unanswered; may fail some with 503."""

    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    hold_first: bool = True
    fail_next: int = 0
    first_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/sms"

    async def _handle(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {SMS_TOKEN}":
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        body = await request.json()
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"error": "gateway busy"}, status_code=503)
        self.received.append({"key": request.headers.get("idempotency-key"), **body})
        if self.hold_first and not self.first_arrived.is_set():
            self.first_arrived.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), timeout=120)
        return JSONResponse({"message_id": f"gw-{len(self.received)}"})

    def delivered(self) -> dict[str, list[dict[str, Any]]]:
        """What the gateway would deliver, by idempotency key: copies of one key are one SMS."""
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in self.received:
            by_key[message["key"]].append(message)
        return dict(by_key)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SmsGateway]:
        async with serve(Starlette(routes=[Route("/v1/sms", self._handle, methods=["POST"])]), self.port):
            try:
                yield self
            finally:
                self.release.set()  # a held request must answer before the server can stop


# ---- the stack ------------------------------------------------------------------------------------------------


@dataclass
class World:
    stack: Stack
    inbox: Inbox
    sms: SmsGateway
    unit: str


@pytest.fixture
async def world(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[World]:
    """Intake and workflow whose workflow sends through the two servers; the lease outlasts a send by far."""
    unit = random_unit()
    with smtp_server() as (inbox, smtp_port):
        async with SmsGateway().running() as sms:
            env = {
                "WORKFLOW_SMTP_HOST": "127.0.0.1",
                "WORKFLOW_SMTP_PORT": str(smtp_port),
                "WORKFLOW_SMTP_TLS": "none",
                "WORKFLOW_SMTP_FROM": "Bộ phận Một cửa <motcua@benghe.gov.vn>",
                "WORKFLOW_SMS_PROVIDER_URL": sms.url,
                "WORKFLOW_SMS_PROVIDER_TOKEN": SMS_TOKEN,
                "WORKFLOW_NOTIFICATION_INTERVAL_SECONDS": "0.3",
                "WORKFLOW_NOTIFICATION_SEND_TIMEOUT_SECONDS": "60",
                "WORKFLOW_NOTIFICATION_LEASE_SECONDS": "90",
                "WORKFLOW_NOTIFICATION_BACKOFF_INITIAL_SECONDS": "0.2",
                "WORKFLOW_NOTIFICATION_BACKOFF_MAX_SECONDS": "1",
                "WORKFLOW_SWEEP_INTERVAL_SECONDS": "1",
                "WORKFLOW_UNIT_NAMES": json.dumps({unit: UNIT_NAME}, ensure_ascii=False),
            }
            stack = Stack.isolated(postgres, broker, tmp_path / "stack", services=["intake", "workflow"], env=env)
            await stack.start()
            try:
                yield World(stack, inbox, sms, unit)
            finally:
                await asyncio.to_thread(stack.stop)






async def _receive(stack: Stack, unit: str, applicant: dict[str, Any], notify_by: str | None) -> str:
    async with official(stack, "intake", "clerk", unit, "mc-1") as intake:
        body: dict[str, Any] = {"procedure_code": "1.004194", "applicant": applicant, "channel": "counter"}
        if notify_by:
            body["notify_by"] = notify_by
        response = await intake.post("/api/v1/dossiers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["code"]


async def _notifications(stack: Stack, unit: str, code: str) -> list[dict[str, Any]]:
    async with official(stack, "workflow", "auditor", unit, "kt") as auditor:
        response = await auditor.get(f"/api/v1/cases/{code}/notifications")
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def _sent(stack: Stack, unit: str, code: str, count: int) -> list[dict[str, Any]] | None:
    rows = await _notifications(stack, unit, code)
    return rows if len(rows) == count and all(r["status"] == "sent" for r in rows) else None


async def _move_clock(stack: Stack, to: datetime) -> None:
    async with official(stack, "workflow", "admin", "*", "ops") as admin:
        response = await admin.put("/api/v1/admin/clock", json={"now": to.isoformat()})
    assert response.status_code == 200, response.text


async def _change_returned_sms(stack: Stack, unit: str) -> None:
    """Templates are data: listed for officials, changed by an admin, checked against their kind's fields."""
    async with official(stack, "workflow", "clerk", unit, "mc-1") as clerk, official(stack, "workflow", "admin", "*", "ops") as admin:
        listed = (await clerk.get("/api/v1/notification-templates")).json()
        assert listed["count"] == 10
        returned = next(t for t in listed["data"] if (t["kind"], t["channel"]) == ("returned", "sms"))
        assert "rating_url" in returned["fields"] and returned["sample_segments"] >= 1
        words = {"body": returned["body"] + " Xin cảm ơn ông/bà."}
        refused = await clerk.put("/api/v1/notification-templates/returned/sms", json=words)
        assert refused.status_code == 403, refused.text
        unknown = await admin.put("/api/v1/notification-templates/returned/sms", json={"body": "Hồ sơ {dossier_code}: {apology_reason}"})
        assert unknown.status_code == 422 and "{apology_reason}" in unknown.json()["detail"], unknown.text
        changed = await admin.put("/api/v1/notification-templates/returned/sms", json=words)
        assert changed.status_code == 200 and changed.json()["sample"].endswith(" Xin cảm ơn ông/bà."), changed.text


async def _drive(world: World, code: str, *, late_at: asyncio.Future[datetime], due_seen: asyncio.Queue[datetime]) -> None:
    """Supplement → supplemented → (late) apology → signed, paid, approved → returned."""
    stack, unit = world.stack, world.unit
    async with (
        official(stack, "workflow", "specialist", unit, "cb-tp") as specialist,
        official(stack, "workflow", "leader", unit, "ct-ubnd") as leader,
        official(stack, "workflow", "clerk", unit, "mc-1") as clerk,
        official(stack, "intake", "clerk", unit, "mc-1") as intake,
    ):

        async def case(status: str | None = None) -> dict | None:
            r = await specialist.get(f"/api/v1/cases/{code}")
            return r.json() if r.status_code == 200 and (status is None or r.json()["status"] == status) else None

        await eventually(case)
        assigned = await specialist.post(f"/api/v1/cases/{code}/assign", json={"department": "Công an phường", "assignee": "me"})
        assert assigned.status_code == 200, assigned.text
        asked = await specialist.post(
            f"/api/v1/cases/{code}/supplement-request",
            json={"reason": "Thiếu giấy tờ chứng minh chỗ ở hợp pháp", "items": ["Hợp đồng thuê nhà có công chứng"]},
        )
        assert asked.status_code == 200, asked.text

        async def supplemented() -> bool:
            r = await intake.post(f"/api/v1/dossiers/{code}/supplements", json={"items": [{"name": "Hợp đồng thuê nhà", "form": "copy"}]})
            return r.status_code == 200

        await eventually(supplemented)
        resumed = await eventually(lambda: case("in_progress"))
        await due_seen.put(datetime.fromisoformat(resumed["due_at"]))
        now = await late_at  # the clock is moved past every deadline: the apology is late
        apology = await specialist.post(
            f"/api/v1/cases/{code}/apology",
            json={"reason": "Chờ kết quả xác minh nơi cư trú", "new_appointment_at": (now + timedelta(days=5)).isoformat()},
        )
        assert apology.status_code == 200, apology.text
        assert apology.json()["apology_timely"] is False

        signed_at = datetime.now(UTC)
        events: list[Event] = [
            DocumentSigned(dossier_code=code, unit=unit, occurred_at=signed_at, document_id=f"d-{uuid.uuid4().hex[:6]}", signer="CT", certificate_serial="01")
        ]
        if resumed["result_gate"]["fee_due"]:
            amount = Decimal(resumed["fee_due_amount"])
            events += [
                PaymentRequested(dossier_code=code, unit=unit, occurred_at=signed_at, payment_id=f"p-{code}", amount=amount),
                PaymentConfirmed(dossier_code=code, unit=unit, occurred_at=signed_at, payment_id=f"p-{code}", amount=amount, channel="counter"),
            ]
        await produce(stack, *events)

        async def only_approval_missing() -> bool:
            return (await specialist.get(f"/api/v1/cases/{code}")).json()["result_gate"]["missing"] == ["approval"]

        await eventually(only_approval_missing)
        done = await leader.post(f"/api/v1/cases/{code}/approve")
        assert done.status_code == 200 and done.json()["status"] == "done", done.text
        returned = await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "counter"})
        assert returned.status_code == 200, returned.text


async def test_each_notification_arrives_once_in_vietnamese_across_a_sigkill_mid_send(world: World) -> None:
    stack, unit, sms = world.stack, world.unit, world.sms

    # 1. The SMS applicant's receipt: the gateway takes the request and holds it; the workflow dies mid-send.
    sms_code = await _receive(stack, unit, {"name": "Trần Thị Ngọc Ánh", "phone": "0912 345 678"}, "sms")
    await eventually(lambda: _true(sms.first_arrived.is_set()))
    stack.services["workflow"].kill()
    sms.release.set()  # the killed request's connection is gone; the gateway still "delivered" it
    in_flight = sms.received[0]["key"]

    stack.services["workflow"].start()
    await stack.services["workflow"].wait_ready()
    interrupted = await _notifications(stack, unit, sms_code)
    assert [(n["kind"], n["status"], [a["outcome"] for a in n["attempts"]]) for n in interrupted] == [("accepted", "pending", ["sending"])]
    # The lease of the killed send runs out (the workflow clock moved past it): the message goes again.
    await _move_clock(stack, datetime.now(UTC) + timedelta(seconds=120))
    again = await eventually(lambda: _sent(stack, unit, sms_code, 1))
    assert [a["outcome"] for a in again[0]["attempts"]] == ["interrupted", "sent"]

    # 2. An admin changes the words of the SMS sent at return; the notifications rendered later use them.
    await _change_returned_sms(stack, unit)

    # 3. The e-mail applicant, and one who chose nothing (nothing is owed to them).
    mail_code = await _receive(stack, unit, {"name": "Phạm Đức Hùng", "email": "hung.pham@example.vn"}, "email")
    silent_code = await _receive(stack, unit, {"name": "Lê Văn Tám", "email": "tam@example.vn", "phone": "0987654321"}, None)

    # 4. Both through supplement, a late apology, result and return; the gateway refuses two requests on the way.
    sms.fail_next = 2
    late_at: asyncio.Future[datetime] = asyncio.get_running_loop().create_future()
    due_seen: asyncio.Queue[datetime] = asyncio.Queue()
    drives = [asyncio.create_task(_drive(world, code, late_at=late_at, due_seen=due_seen)) for code in (sms_code, mail_code)]
    latest_due = max([await due_seen.get(), await due_seen.get()])
    moved_to = latest_due + timedelta(hours=2)
    await _move_clock(stack, moved_to)
    late_at.set_result(moved_to)
    await asyncio.gather(*drives)

    sms_rows = await eventually(lambda: _sent(stack, unit, sms_code, 5), timeout=60)
    mail_rows = await eventually(lambda: _sent(stack, unit, mail_code, 5), timeout=60)
    assert [n["kind"] for n in sms_rows] == KINDS and [n["kind"] for n in mail_rows] == KINDS
    assert await _notifications(stack, unit, silent_code) == []

    # SMS: one per notification id; only the killed send was repeated, and with the same words.
    delivered = sms.delivered()
    assert set(delivered) == {n["id"] for n in sms_rows}
    assert {key: len(copies) for key, copies in delivered.items() if len(copies) > 1} == {in_flight: 2}
    assert all(len({c["text"] for c in copies}) == 1 for copies in delivered.values())
    texts = {n["kind"]: delivered[n["id"]][0]["text"] for n in sms_rows}
    assert all(c["to"] == "+84912345678" for copies in delivered.values() for c in copies)
    assert texts["accepted"].startswith(f"Hồ sơ {sms_code} đã được tiếp nhận. Hẹn trả kết quả: ")
    assert texts["supplement_requested"] == f"Hồ sơ {sms_code} cần bổ sung: Hợp đồng thuê nhà có công chứng. Lý do: Thiếu giấy tờ chứng minh chỗ ở hợp pháp."
    assert "Lý do: Chờ kết quả xác minh nơi cư trú" in texts["apology_issued"]
    assert f"tại Bộ phận Tiếp nhận và Trả kết quả, {UNIT_NAME}" in texts["result_ready"]
    assert f"/trang/theo-doi/{sms_code}?sig=" in texts["returned"] and "#danh-gia" in texts["returned"]  # the page's rating form
    assert texts["returned"].endswith(" Xin cảm ơn ông/bà.")
    for row in sms_rows:
        assert row["encoding"] == "ucs2" and row["segments"] >= 1 and row["body"] == texts[row["kind"]]
    refused = [n for n in sms_rows if any(a["outcome"] == "failed" for a in n["attempts"])]
    assert sum(a["outcome"] == "failed" for n in refused for a in n["attempts"]) == 2
    assert all(n["attempts"][-1]["outcome"] == "sent" and "503" in (n["attempts"][0]["error"] or "") for n in refused)

    # E-mail: one message per notification, decoded, in Vietnamese, each Message-ID once.
    mails = [m for m in world.inbox.messages if m["To"] == "hung.pham@example.vn"]
    assert len(world.inbox.messages) == len(mails) == 5
    ids = [m["Message-ID"] for m in mails]
    assert sorted(ids) == sorted(f"<{n['id']}@benghe.gov.vn>" for n in mail_rows)
    by_subject = {str(m["Subject"]): m.get_content() for m in mails}
    assert set(by_subject) == {
        f"Hồ sơ {mail_code} đã được tiếp nhận",
        f"Hồ sơ {mail_code}: yêu cầu bổ sung, hoàn thiện hồ sơ",
        f"Hồ sơ {mail_code}: thư xin lỗi và hẹn lại ngày trả kết quả",
        f"Hồ sơ {mail_code} đã có kết quả",
        f"Hồ sơ {mail_code} đã trả kết quả",
    }
    apology = by_subject[f"Hồ sơ {mail_code}: thư xin lỗi và hẹn lại ngày trả kết quả"]
    assert "Kính gửi ông/bà Phạm Đức Hùng," in apology and "Lý do: Chờ kết quả xác minh nơi cư trú" in apology
    assert f"Ngày hẹn trả kết quả mới: {(moved_to + timedelta(days=5)).astimezone(VIETNAM):%H:%M} ngày" in apology
    assert "Giấy tờ cần bổ sung: Hợp đồng thuê nhà có công chứng" in by_subject[f"Hồ sơ {mail_code}: yêu cầu bổ sung, hoàn thiện hồ sơ"]
    assert "Mời ông/bà đánh giá mức độ hài lòng" in by_subject[f"Hồ sơ {mail_code} đã trả kết quả"]
    assert all(m["From"] == "Bộ phận Một cửa <motcua@benghe.gov.vn>" for m in mails)

    async with httpx.AsyncClient(base_url=stack.url("workflow")) as anyone:

        async def drained() -> str | None:  # the gauge is refreshed by the sender's next round
            text = (await anyone.get("/metrics")).text
            return text if 'motcua_notification_backlog{channel="sms"} 0.0' in text else None

        metrics = await eventually(drained)
    assert 'motcua_notifications_sent_total{channel="email",kind="returned"} 1.0' in metrics
    assert 'motcua_notification_failures_total{channel="sms",kind=' in metrics
    assert 'motcua_notification_backlog{channel="email"} 0.0' in metrics


async def _true(value: bool) -> bool:
    return value
