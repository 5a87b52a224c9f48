"""The law in force in the workflow (issue 16), on a stack of its own whose facts this module produces to the broker.

- Two dossiers received 30 June 2025 16:00 (rules VN.1) and 1 July 2025 09:00 (VN.2): their Form 04 titles differ,
  their control slips are numbered 05 and 06, and only the second has a stop notice.
- A new national version published later (``rules.published``) changes nothing for a dossier that recorded VN.2,
  and applies to a dossier that records it.
- A unit merged into another hands its open, paused and late cases over with their deadlines, each with
  ``case.handed_over``; officers of the successor act on them; the same fact delivered again changes nothing.
- A transfer takes the catalog's next planned step; a changed step without a reason is a 422 problem that changes
  nothing; a step that comes back late names its agency, and so does the dossier when it goes late.

The transfer test moves the workflow's clock (forward only), on a stack of its own.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.clock import VN_TZ
from shared.envelope import Envelope
from shared.events import DossierReceived, Fact, RulesPublished, UnitMerged, UnitsDeclared
from shared.rules import dump_version, shipped_book, shipped_versions
from tests.support.stack import Stack, eventually, official, produce, random_unit

HANDED_OVER = "vn.motcua.case.handed_over.v1"


@pytest.fixture(scope="module")
async def law(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The workflow alone: its facts come straight from this module."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("law-in-force")), services=["workflow"],
        env={"WORKFLOW_SWEEP_INTERVAL_SECONDS": "1", "WORKFLOW_LAW_CACHE_SECONDS": "1"},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
async def timed(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Another workflow whose clock the transfer test moves (tests run in random order; the clock only moves forward)."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("law-in-force-clock")), services=["workflow"],
        env={"WORKFLOW_SWEEP_INTERVAL_SECONDS": "1"},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


def _received(unit: str, *, at: datetime, due: datetime, rules: str | None, steps: list[dict] | None = None, code: str | None = None) -> DossierReceived:
    return DossierReceived(
        dossier_code=code or f"{unit}-{uuid.uuid4().hex[:8]}",
        unit=unit,
        occurred_at=at,
        procedure_code="1.001193",
        procedure_name="Đăng ký khai sinh",
        applicant_name="Trần Thị Ngọc Ánh",
        channel="counter",
        received_at=at,
        appointment_at=due,
        due_at_original=due,
        received_by="mc-1",
        rules=rules,
        lien_thong_steps=steps,  # type: ignore[arg-type]
    )


async def _case(client: httpx.AsyncClient, code: str) -> dict | None:
    r = await client.get(f"/api/v1/cases/{code}")
    return r.json() if r.status_code == 200 else None


async def _query(stack: Stack, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database("workflow")))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _emitted(stack: Stack, type_: str, code: str) -> list[dict]:
    rows = await _query(stack, "SELECT payload FROM outbox WHERE type = $1 AND key = $2 ORDER BY id", type_, code)
    return [json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in rows]


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


async def _pdf(client: httpx.AsyncClient, path: str, tmp_path: Path) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return _text(response.content, tmp_path)


# ---- forms in the dossier's version -----------------------------------------------------------------------------


async def test_each_dossier_gets_the_forms_of_its_regime(law: Stack, tmp_path: Path) -> None:
    unit = random_unit()
    june = _received(unit, at=datetime(2025, 6, 30, 16, tzinfo=VN_TZ), due=datetime(2025, 7, 7, 17, tzinfo=VN_TZ), rules="VN.1")
    july = _received(unit, at=datetime(2025, 7, 1, 9, tzinfo=VN_TZ), due=datetime(2025, 7, 8, 17, tzinfo=VN_TZ), rules="VN.2")
    await produce(law, june, july)
    new_date = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    async with (
        official(law, "workflow", "specialist", unit, "cb-1") as specialist,
        official(law, "workflow", "leader", unit, "ld-1") as leader,
    ):
        titles = {}
        for event in (june, july):
            code = event.dossier_code
            assert (await eventually(lambda: _case(specialist, code)))["rules"] == event.rules  # noqa: B023
            assert (await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"})).status_code == 200
            apology = await specialist.post(f"/api/v1/cases/{code}/apology", json={"reason": "Chờ xác minh", "new_appointment_at": new_date})
            assert apology.status_code == 200, apology.text
            titles[event.rules] = await _pdf(specialist, f"/api/v1/cases/{code}/forms/04", tmp_path)
        assert "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ" in titles["VN.1"].upper()
        assert "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT" in titles["VN.2"].upper()
        assert "PHIẾU XIN LỖI" not in titles["VN.2"].upper() and "GIA HẠN" not in titles["VN.1"].upper()

        assert "Mẫu số 05" in await _pdf(specialist, f"/api/v1/cases/{june.dossier_code}/forms/05", tmp_path)
        assert "Mẫu số 06" in await _pdf(specialist, f"/api/v1/cases/{july.dossier_code}/forms/05", tmp_path)

        not_yet = await specialist.get(f"/api/v1/cases/{july.dossier_code}/forms/stop-notice")
        assert not_yet.status_code == 404 and not_yet.json()["type"].endswith("form-not-issued")
        for event in (june, july):
            stopped = await leader.post(f"/api/v1/cases/{event.dossier_code}/stop", json={"reason": "Người nộp đề nghị dừng giải quyết"})
            assert stopped.status_code == 200, stopped.text
        old = await specialist.get(f"/api/v1/cases/{june.dossier_code}/forms/stop-notice")
        assert old.status_code == 404 and old.headers["content-type"].startswith("application/problem+json")
        assert old.json()["type"].endswith("form-not-in-regime") and "nd61-107" in old.json()["detail"]
        notice = await _pdf(specialist, f"/api/v1/cases/{july.dossier_code}/forms/stop-notice", tmp_path)
        for expected in ("THÔNG BÁO DỪNG GIẢI QUYẾT HỒ SƠ", "Mẫu số 05", july.dossier_code, "Người nộp đề nghị dừng giải quyết", "ld-1"):
            assert expected.upper() in notice.upper(), expected


async def test_a_dossier_keeps_its_rules_when_a_new_national_version_is_published(law: Stack, tmp_path: Path) -> None:
    today = datetime.now(VN_TZ).date()
    document = dump_version(next(v for v in shipped_versions() if v.ref == "VN.2"))
    document |= {"version": 3, "effective_from": today.isoformat(), "title": "Phiên bản thử nghiệm của tỉnh"}
    document["forms"]["apology"] = {"number": "04", "title": "Văn bản xin lỗi người dân (mẫu sửa đổi)"}
    document["deadlines"] = {"apology_lead_working_days": 1, "feedback_working_days": 5}
    await produce(law, RulesPublished(scope="VN", version=3, effective_from=today, document=document, occurred_at=datetime.now(UTC)))
    assert await eventually(lambda: _query(law, "SELECT 1 FROM rule_versions WHERE scope = 'VN' AND version = 3"))

    unit, now = random_unit(), datetime.now(UTC)
    kept = _received(unit, at=now, due=now + timedelta(days=20), rules="VN.2")
    newer = _received(unit, at=now, due=now + timedelta(days=20), rules="VN.3")
    await produce(law, kept, newer)
    async with official(law, "workflow", "specialist", unit, "cb-2") as specialist:
        pdfs, feedback_due = {}, {}
        for event in (kept, newer):
            code = event.dossier_code
            await eventually(lambda: _case(specialist, code))  # noqa: B023
            await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"})
            apology = await specialist.post(
                f"/api/v1/cases/{code}/apology", json={"reason": "Chờ xác minh", "new_appointment_at": (now + timedelta(days=30)).isoformat()}
            )
            assert apology.status_code == 200, apology.text
            pdfs[event.rules] = await _pdf(specialist, f"/api/v1/cases/{code}/forms/04", tmp_path)
            feedback = await specialist.post(f"/api/v1/cases/{code}/feedback", json={"content": "Hỏi tiến độ", "channel": "phone"})
            assert feedback.status_code == 201, feedback.text
            feedback_due[event.rules] = datetime.fromisoformat(feedback.json()["due_at"])
    assert "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN" in pdfs["VN.2"].upper()
    assert "VĂN BẢN XIN LỖI NGƯỜI DÂN (MẪU SỬA ĐỔI)" in pdfs["VN.3"].upper()
    assert feedback_due["VN.3"] < feedback_due["VN.2"]  # 5 working days against 15


# ---- unit merges ------------------------------------------------------------------------------------------------


async def _redeliver(stack: Stack, envelope: Envelope) -> None:
    """Send an envelope again, id and all, as a broker redelivers it."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(
            stack.topic("intake"), key=envelope.subject.encode(), value=envelope.kafka_value(), headers=envelope.kafka_headers()
        )
    finally:
        await producer.stop()


def _wrap(fact: Fact) -> Envelope:
    return Envelope.wrap(fact, source="/motcua/intake", time=datetime.now(UTC), traceparent=None, actor="e2e")


async def test_a_merged_unit_hands_its_open_paused_and_late_cases_over(law: Stack) -> None:
    province = f"T{uuid.uuid4().hex[:6].upper()}"
    old, new = f"000.00.31.{province}", f"000.00.32.{province}"
    now, today = datetime.now(UTC), datetime.now(VN_TZ).date()
    units = [
        {"code": province, "name": "Tỉnh thử nghiệm", "tier": "province"},
        {"code": old, "name": "Xã An Bình", "tier": "commune", "parent": province},
        {"code": new, "name": "Xã An Hòa", "tier": "commune", "parent": province},
    ]
    await produce(law, UnitsDeclared(province=province, units=units, occurred_at=now))
    open_, paused, late, stopped = (
        _received(old, at=now, due=now + timedelta(days=20), rules="VN.2"),
        _received(old, at=now, due=now + timedelta(days=20), rules="VN.2"),
        _received(old, at=now - timedelta(days=10), due=now - timedelta(days=2), rules="VN.2"),
        _received(old, at=now, due=now + timedelta(days=20), rules="VN.2"),
    )
    await produce(law, open_, paused, late, stopped)
    async with (
        official(law, "workflow", "specialist", old, "cb-old") as before,
        official(law, "workflow", "leader", old, "ld-old") as old_leader,
    ):
        for event in (open_, paused, late, stopped):
            await eventually(lambda: _case(before, event.dossier_code))  # noqa: B023
        assert (await before.post(f"/api/v1/cases/{paused.dossier_code}/assign", json={"assignee": "me"})).status_code == 200
        request = await before.post(f"/api/v1/cases/{paused.dossier_code}/supplement-request", json={"reason": "Thiếu tờ khai"})
        assert request.status_code == 200 and request.json()["status"] == "supplement_requested", request.text
        assert (await old_leader.post(f"/api/v1/cases/{stopped.dossier_code}/stop", json={"reason": "Dừng theo đề nghị"})).status_code == 200
        await eventually(lambda: _flag(before, late.dossier_code, "is_late"))
        snapshot = {e.dossier_code: await _case(before, e.dossier_code) for e in (open_, paused, late)}

    merged_unit = units[1] | {"valid_to": (today - timedelta(days=1)).isoformat(), "successor": new}
    merge = _wrap(UnitMerged(province=province, code=old, into=new, effective=today, unit=merged_unit, occurred_at=now))
    await _redeliver(law, merge)
    async with (
        official(law, "workflow", "specialist", new, "cb-new") as after,
        official(law, "workflow", "specialist", old, "cb-old") as gone,
    ):
        for code, was in snapshot.items():
            moved = await eventually(lambda: _case(after, code))  # noqa: B023
            assert moved["unit"] == new and moved["status"] == was["status"]
            for clock in ("due_at", "due_at_original", "appointment_at", "paused_at", "remaining_working_days", "is_late", "late_holder_unit"):
                assert moved[clock] == was[clock], clock
            handed = await _emitted(law, HANDED_OVER, code)
            assert [(h["unit"], h["from_unit"], h["reason"]) for h in handed] == [(new, old, "unit_merged")]
            assert (await gone.get(f"/api/v1/cases/{code}")).status_code == 404
        assert (await gone.get(f"/api/v1/cases/{stopped.dossier_code}")).json()["unit"] == old  # closed: stays
        assert await _emitted(law, HANDED_OVER, stopped.dossier_code) == []
        worklist = (await after.get("/api/v1/cases")).json()
        assert sorted(c["code"] for c in worklist["data"]) == sorted(snapshot)
        taken = await after.post(f"/api/v1/cases/{open_.dossier_code}/assign", json={"assignee": "me"})
        assert taken.status_code == 200 and taken.json()["assignee"] == "cb-new"
        versions = {code: (await _case(after, code))["version"] for code in snapshot}

        # the same fact again (same id), then a later one of the province to know the first was read
        await _redeliver(law, merge)
        marker = {"code": f"000.00.33.{province}", "name": "Xã An Phú", "tier": "commune", "parent": province}
        await produce(law, UnitsDeclared(province=province, units=[marker], occurred_at=datetime.now(UTC)))
        assert await eventually(lambda: _query(law, "SELECT 1 FROM admin_units WHERE code = $1", marker["code"]))
        for code in snapshot:
            assert len(await _emitted(law, HANDED_OVER, code)) == 1
            assert (await _case(after, code))["version"] == versions[code]


async def _flag(client: httpx.AsyncClient, code: str, flag: str) -> dict | None:
    body = await _case(client, code)
    return body if body and body.get(flag) else None


# ---- inter-agency steps from the catalog (moves the clock of its own stack) ----------------------------------------------


async def _move_clock(stack: Stack, to: datetime) -> None:
    async with official(stack, "workflow", "admin", "*", "ops") as admin:
        response = await admin.put("/api/v1/admin/clock", json={"now": to.isoformat()})
    assert response.status_code == 200, response.text


async def test_a_transfer_follows_the_catalog_plan_and_a_late_step_names_its_agency(timed: Stack) -> None:
    law = timed
    unit, now = random_unit(), datetime.now(UTC)
    plan = [{"agency": "Công an xã Tân Hòa", "amount": 2}, {"agency": "Chi cục Thuế khu vực I", "amount": 1}]
    event = _received(unit, at=now, due=now + timedelta(days=20), rules="VN.2", steps=plan)
    code = event.dossier_code
    await produce(law, event)
    async with official(law, "workflow", "specialist", unit, "cb-3") as specialist:
        opened = await eventually(lambda: _case(specialist, code))
        assert [(s["agency"], s["amount"]) for s in opened["step_plan"]] == [("Công an xã Tân Hòa", 2), ("Chi cục Thuế khu vực I", 1)]
        await specialist.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"})

        first = await specialist.post(f"/api/v1/cases/{code}/transfer", json={})
        assert first.status_code == 200, first.text
        assert (first.json()["transfer_agency"], first.json()["transfer_step_no"]) == ("Công an xã Tân Hòa", 1)
        assert (await specialist.post(f"/api/v1/cases/{code}/transfer-return", json={})).status_code == 200

        before = await _case(specialist, code)
        refused = await specialist.post(f"/api/v1/cases/{code}/transfer", json={"step_days": 4})
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["location"] == ["body", "adjusted_reason"]
        assert await _case(specialist, code) == before  # nothing changed

        second = await specialist.post(f"/api/v1/cases/{code}/transfer", json={"step_days": 2, "adjusted_reason": "Chờ số liệu thuế"})
        assert second.status_code == 200, second.text
        step_due = datetime.fromisoformat(second.json()["transfer_step_due_at"])
        assert (second.json()["transfer_agency"], second.json()["transfer_step_no"]) == ("Chi cục Thuế khu vực I", 2)

        await _move_clock(law, step_due + timedelta(hours=20))
        back = await specialist.post(f"/api/v1/cases/{code}/transfer-return", json={})
        assert back.status_code == 200, back.text
        assert back.json()["late_step_agency"] == "Chi cục Thuế khu vực I" and not back.json()["is_late"]
        slip = (await specialist.get(f"/api/v1/cases/{code}/steps")).json()["data"]
        transfers = [(s["to_unit"], s["step_no"], s["planned_days"], s["adjusted_reason"], s["late"]) for s in slip if s["kind"] == "transfer"]
        assert transfers == [
            ("Công an xã Tân Hòa", 1, 2, None, False),
            ("Chi cục Thuế khu vực I", 2, 1, "Chờ số liệu thuế", True),
        ]
        returned = await _emitted(law, "vn.motcua.case.transfer_returned.v1", code)
        assert [(r["from_agency"], r["step_no"], r["step_late"]) for r in returned] == [
            ("Công an xã Tân Hòa", 1, False),
            ("Chi cục Thuế khu vực I", 2, True),
        ]
        assert datetime.fromisoformat(returned[1]["step_due_at"]) == step_due

        await _move_clock(law, datetime.fromisoformat(before["due_at"]) + timedelta(hours=1))
        late = await eventually(lambda: _flag(specialist, code, "is_late"))
        assert (late["late_holder_unit"], late["late_holder_officer"]) == ("Chi cục Thuế khu vực I", None)
        overdue = await _emitted(law, "vn.motcua.case.overdue.v1", code)
        assert [o["holder_unit"] for o in overdue] == ["Chi cục Thuế khu vực I"]


def test_the_dates_used_here_are_in_the_regimes_they_name() -> None:
    book = shipped_book()
    assert book.in_force(date(2025, 6, 30)).ref == "VN.1" and book.in_force(date(2025, 7, 1)).ref == "VN.2"
