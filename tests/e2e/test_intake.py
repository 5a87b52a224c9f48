"""A morning at the counter: catalog, appointments, the three channels, the four outcomes, forms and the portal."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pypdf import PdfReader

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from motcua.localstack import ServiceProcess
from shared.webhooks import signature as webhook_signature
from shared.envelope import Envelope
from shared.events import CaseSupplementRequested
from tests.support.http_peer import HttpPeer
from tests.support.stack import Stack, eventually, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SECRET = "portal-test-secret-7f3a"
CITIZEN = {"kind": "citizen", "name": "Nguyễn Thị Hồng Nhung", "id_number": "001203004567", "phone": "0912345678"}


@pytest.fixture(scope="module")
async def portal() -> AsyncIterator[HttpPeer]:
    """The provincial portal's status endpoint, a real HTTP server."""
    peer = HttpPeer()
    async with peer.running():
        yield peer


@pytest.fixture(scope="module")
async def counter(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, portal: HttpPeer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Intake and reporting, wired to the test portal."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("intake")), services=["intake", "reporting"],
        env={"INTAKE_PORTAL_WEBHOOK_SECRET": SECRET, "INTAKE_PORTAL_SYNC_URL": portal.url,
             "INTAKE_PORTAL_SYNC_SECRET": "push-secret-91c2", "INTAKE_PORTAL_SYNC_INTERVAL_SECONDS": "0.2",
             "INTAKE_PORTAL_SYNC_BACKOFF_MAX_SECONDS": "1", "INTAKE_UNIT_NAMES": '{"000.00.12.H56": "UBND phường Phú Hội"}'},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


def signed(body: dict, *, secret: str = SECRET, at: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    timestamp = str(int(at if at is not None else time.time()))
    return raw, {"X-Portal-Timestamp": timestamp, "X-Portal-Signature": "sha256=" + webhook_signature(secret, timestamp, raw),
                 "Content-Type": "application/json"}  # fmt: skip


def portal_submission(unit: str, portal_id: str, **overrides: object) -> dict:
    body = {"portal_dossier_id": portal_id, "unit": unit, "procedure_code": "1.004194", "applicant": CITIZEN,
            "submitted_at": datetime.now(VN).isoformat(), "return_channel": "online"}  # fmt: skip
    body.update(overrides)
    return body


# ---- the catalog -----------------------------------------------------------------


async def test_the_catalog_lists_every_seeded_procedure_with_fees_components_and_limits(counter: Stack) -> None:
    async with httpx.AsyncClient(base_url=counter.url("intake")) as anyone:
        listing = (await anyone.get("/api/v1/procedures")).json()
        assert listing["count"] >= 25
        by_code = {p["code"]: p for p in listing["data"]}
        khai_sinh = by_code["1.001193"]["definition"]
        assert by_code["1.001193"]["name"] == "Đăng ký khai sinh"
        assert khai_sinh["time_limit"]["unit"] == "SAME_DAY" and khai_sinh["on_the_spot"] is True
        assert by_code["2.000815"]["definition"]["fee_lines"][0]["cap_per_copy"] == 200_000
        assert by_code["1.004194"]["definition"]["fee_lines"][0]["online_amount"] == 7_000
        assert all(c["name"] for c in by_code["1.004222"]["definition"]["components"])
        ho_tich = (await anyone.get("/api/v1/procedures", params={"field": "Hộ tịch"})).json()
        assert ho_tich["count"] >= 10 and {p["field"] for p in ho_tich["data"]} == {"Hộ tịch"}
        found = (await anyone.get("/api/v1/procedures", params={"q": "tạm trú"})).json()
        assert "1.004194" in {p["code"] for p in found["data"]}
        missing = await anyone.get("/api/v1/procedures/9.999999")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


async def test_appointment_preview_follows_the_calendar_and_names_a_bad_moment(counter: Stack) -> None:
    async with httpx.AsyncClient(base_url=counter.url("intake")) as anyone:
        preview = await anyone.get("/api/v1/procedures/1.004194/appointment", params={"received_at": "2025-04-24T09:00:00+07:00"})
        assert preview.status_code == 200, preview.text
        assert datetime.fromisoformat(preview.json()["appointment_at"]).astimezone(VN).date().isoformat() == "2025-04-28"
        naive = await anyone.get("/api/v1/procedures/1.004194/appointment", params={"received_at": "2025-04-24T09:00:00"})
        assert naive.status_code == 422 and "received_at" in naive.json()["detail"]
        garbage = await anyone.get("/api/v1/procedures/1.004194/appointment", params={"received_at": "soon"})
        assert garbage.status_code == 422 and "received_at" in garbage.json()["detail"]


async def test_an_admin_publishes_a_new_version_and_dossiers_keep_theirs(counter: Stack) -> None:
    unit = random_unit()
    code = f"9.{int(time.time() * 1000) % 1_000_000:06d}"
    definition = {"name": "Thủ tục thử nghiệm", "field": "Thử nghiệm", "online_level": "full",
                  "time_limit": {"amount": 5, "unit": "WORKING_DAY"}, "components": [{"name": "Đơn đề nghị"}]}  # fmt: skip
    async with counter.client("intake", "admin", units=["*"]) as admin, counter.client("intake", "clerk", units=[unit]) as clerk:
        today = datetime.now(VN).date()
        first = await admin.post(f"/api/v1/procedures/{code}/versions", json={"effective_from": "2020-01-01", "definition": definition})
        assert first.status_code == 201, first.text
        received = (await clerk.post("/api/v1/dossiers", json={"procedure_code": code, "applicant": CITIZEN})).json()
        assert received["procedure_version"] == 1
        second = await admin.post(
            f"/api/v1/procedures/{code}/versions",
            json={"effective_from": today.isoformat(), "definition": {**definition, "time_limit": {"amount": 3, "unit": "WORKING_DAY"}}},
        )
        assert second.json()["version"] == 2
        again = (await clerk.post("/api/v1/dossiers", json={"procedure_code": code, "applicant": CITIZEN})).json()
        assert again["procedure_version"] == 2
        assert (await clerk.get(f"/api/v1/dossiers/{received['code']}")).json()["procedure_version"] == 1
        versions = (await admin.get(f"/api/v1/procedures/{code}/versions")).json()
        assert [v["version"] for v in versions["data"]] == [1, 2]
        refused = await clerk.post(f"/api/v1/procedures/{code}/versions", json={"effective_from": "2030-01-01", "definition": definition})
        assert refused.status_code == 403
        broken = await admin.post(
            f"/api/v1/procedures/{code}/versions",
            json={"effective_from": "2030-01-01", "definition": {**definition, "time_limit": {"amount": 3, "unit": "FORTNIGHT"}}},
        )
        assert broken.status_code == 422 and "FORTNIGHT" in broken.json()["detail"]


async def test_the_catalog_exports_and_imports_without_duplicates(counter: Stack) -> None:
    async with counter.client("intake", "admin", units=["*"]) as admin:
        exported = (await admin.get("/api/v1/catalog/export")).json()
        assert len(exported["procedures"]) >= 26
        again = await admin.post("/api/v1/catalog/import", json={"procedures": exported["procedures"]})
        assert again.status_code == 200 and again.json() == {"added": 0, "skipped": len(exported["procedures"])}
        tampered = [{**exported["procedures"][0], "definition": {**exported["procedures"][0]["definition"], "name": "Đổi tên"}}]
        conflict = await admin.post("/api/v1/catalog/import", json={"procedures": tampered})
        assert conflict.status_code == 409


async def test_a_provincial_day_off_moves_the_appointment_only_in_that_province(counter: Stack) -> None:
    province = f"Q{int(time.time() * 1000) % 100000}"
    unit = f"000.00.12.{province}"
    params = {"received_at": "2025-03-03T09:00:00+07:00", "unit": unit}  # Mon; tạm trú, 3 WD → Thu 06/03
    async with counter.client("intake", "admin", units=[unit]) as admin:
        before = (await admin.get("/api/v1/procedures/1.004194/appointment", params=params)).json()
        declared = await admin.put(f"/api/v1/calendar/{province}/days/2025-03-05", json={"working": False, "note": "Nghỉ lễ hội địa phương"})
        assert declared.status_code == 200, declared.text
        after = (await admin.get("/api/v1/procedures/1.004194/appointment", params=params)).json()
        elsewhere = (await admin.get("/api/v1/procedures/1.004194/appointment", params={**params, "unit": "000.00.12.H01"})).json()
        days = (await admin.get(f"/api/v1/calendar/{province}", params={"from": "2025-03-05", "to": "2025-03-05"})).json()
        assert (await admin.delete(f"/api/v1/calendar/{province}/days/2025-03-05")).status_code == 204
        other_admin = await admin.put("/api/v1/calendar/H01/days/2025-03-05", json={"working": False, "note": "x"})
    assert before["appointment_at"].startswith("2025-03-06")
    assert after["appointment_at"].startswith("2025-03-07")
    assert elsewhere["appointment_at"].startswith("2025-03-06")
    assert days["data"][0]["kind"] == "ADMIN_OFF"
    assert other_admin.status_code == 403


# ---- reception -----------------------------------------------------------------


async def test_the_counter_accepts_with_a_code_an_appointment_and_the_fee_and_masks_the_id(counter: Stack) -> None:
    unit = random_unit()
    async with counter.client("intake", "clerk", units=[unit]) as clerk:
        response = await clerk.post(
            "/api/v1/dossiers",
            json={"procedure_code": "1.004194", "applicant": CITIZEN, "return_channel": "counter",
                  "components": [{"name": "Tờ khai CT01"}, {"name": "Hợp đồng thuê nhà", "form": "copy", "document_id": "doc-123"}]},
        )  # fmt: skip
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["channel"] == "counter" and body["receiving_unit"] == body["processing_unit"] == unit
    assert body["applicant"]["id_number_masked"] == "*********567" and "001203004567" not in response.text
    assert body["fee"]["total"] == 15_000 and body["status"] == 2 and body["status_name"] == "Được tiếp nhận"
    assert [c["reused"] for c in body["components"]] == [False, True]
    assert datetime.fromisoformat(body["legal_due_at"]) == datetime.fromisoformat(body["appointment_at"])


async def test_bad_input_names_the_field_and_changes_nothing(counter: Stack) -> None:
    unit = random_unit()
    cases = [
        ({"procedure_code": "1.004194", "applicant": {**CITIZEN, "id_number": "003203004567"}}, "id_number"),
        ({"procedure_code": "1.004194", "applicant": {"kind": "organisation", "name": "Công ty TNHH Ánh Dương", "tax_code": "0100112438"}}, "tax_code"),
        ({"procedure_code": "1.004194", "applicant": {**CITIZEN, "email": "not-an-email"}}, "email"),
        ({"procedure_code": "1.004194"}, "applicant"),
        ({"procedure_code": "9.999999", "applicant": CITIZEN}, "procedure_code"),
        ({"procedure_code": "1.004194", "applicant": CITIZEN, "channel": "postal"}, "postal_tracking_number"),
        ({"procedure_code": "1.004194", "applicant": CITIZEN, "channel": "carrier-pigeon"}, "channel"),
    ]  # fmt: skip
    async with counter.client("intake", "clerk", units=[unit]) as clerk:
        for payload, field in cases:
            response = await clerk.post("/api/v1/dossiers", json=payload)
            assert response.status_code == 422, (payload, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert field in response.json()["detail"], (field, response.json())
        first = (await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN})).json()
    assert first["code"].endswith("-0001"), "a refused request must not use up a dossier number"


async def test_postal_dossiers_keep_their_tracking_number(counter: Stack) -> None:
    unit = random_unit()
    async with counter.client("intake", "clerk", units=[unit]) as clerk:
        body = (
            await clerk.post(
                "/api/v1/dossiers",
                json={"procedure_code": "1.004873", "applicant": CITIZEN, "channel": "postal", "postal_tracking_number": "EB123456789VN", "return_channel": "postal"},
            )
        ).json()  # fmt: skip
    assert body["channel"] == "postal" and body["postal_tracking_number"] == "EB123456789VN"


async def test_an_idempotency_key_gives_the_first_answer_again(counter: Stack) -> None:
    unit = random_unit()
    async with counter.client("intake", "clerk", units=[unit]) as clerk:
        headers = {"Idempotency-Key": "4f1c2a9e-double-click"}
        first = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN}, headers=headers)
        second = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN}, headers=headers)
        third = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["code"] == second.json()["code"]
    assert third.json()["code"].endswith("-0002")


async def test_a_dossier_received_elsewhere_is_routed_to_the_competent_unit(counter: Stack) -> None:
    receiving, competent = random_unit(), random_unit()
    async with counter.client("intake", "clerk", units=[receiving]) as clerk:
        body = (await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN, "processing_unit": competent})).json()
    assert body["receiving_unit"] == receiving and body["processing_unit"] == competent
    assert body["code"].startswith(receiving)
    async with counter.client("intake", "specialist", units=[competent]) as specialist:
        assert (await specialist.get(f"/api/v1/dossiers/{body['code']}")).status_code == 200


async def test_codes_are_never_duplicated_or_skipped_across_two_intake_replicas(counter: Stack) -> None:
    unit = random_unit()
    second = ServiceProcess("intake", counter.env, counter.workdir / "logs")
    second.log_path = counter.workdir / "logs" / "intake-replica.log"
    second.start()
    try:
        await second.wait_ready()
        token = counter.token("clerk", units=[unit])
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            urls = [counter.url("intake"), second.url]

            async def receive(i: int) -> httpx.Response:
                """As a clerk's client should: one key per dossier, resent after Retry-After while the replica is busy."""
                key = str(uuid.uuid4())
                while True:
                    response = await client.post(f"{urls[i % 2]}/api/v1/dossiers", headers={"Idempotency-Key": key},
                                                 json={"procedure_code": "1.004194", "applicant_name": f"Người nộp {i}"})  # fmt: skip
                    if response.status_code != 503:
                        return response
                    await asyncio.sleep(float(response.headers["retry-after"]))

            responses = await asyncio.gather(*(receive(i) for i in range(60)))
    finally:
        second.stop()
    assert all(r.status_code == 201 for r in responses), {r.status_code for r in responses}
    # A refused request took no number: no gap, no duplicate.
    numbers = sorted(int(r.json()["code"].rsplit("-", 1)[1]) for r in responses)
    assert numbers == list(range(1, 61))


# ---- not accepted ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "form"),
    [
        ({"outcome": "out_of_scope", "guidance": "Nộp tại Sở Tư pháp tỉnh"}, None),
        ({"outcome": "incomplete", "missing": ["Bản sao giấy khai sinh", "Ảnh 4x6"]}, "02"),
        ({"outcome": "refused", "reason": "Không thuộc trường hợp được đăng ký lại khai sinh"}, "03"),
    ],
)
async def test_a_dossier_not_accepted_gets_its_record_and_form_and_no_code(counter: Stack, payload: dict, form: str | None) -> None:
    unit = random_unit()
    async with counter.client("intake", "clerk", units=[unit]) as clerk:
        response = await clerk.post("/api/v1/intake-records", json={**payload, "procedure_code": "1.004884", "applicant_name": "Trần Văn Đức"})
        assert response.status_code == 201, response.text
        record = response.json()
        assert record["form"] == form and record["outcome"] == payload["outcome"]
        pdf = await clerk.get(f"/api/v1/intake-records/{record['reference']}/form.pdf")
        accepted = (await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004884", "applicant_name": "Lê Thị Ánh"})).json()
    assert accepted["code"].endswith("-0001"), "a record is not a dossier and takes no dossier number"
    if form is None:
        assert pdf.status_code == 404
    else:
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        assert pdf.headers["content-type"] == "application/pdf"
        assert "Trần Văn Đức" in text and record["reference"] in text


async def test_a_refusal_without_a_reason_is_refused(counter: Stack) -> None:
    async with counter.client("intake", "clerk", units=[random_unit()]) as clerk:
        response = await clerk.post("/api/v1/intake-records", json={"outcome": "refused", "applicant_name": "Lý Thị Mai"})
    assert response.status_code == 422 and "reason" in response.json()["detail"]


async def test_the_receipt_prints_with_diacritics_and_without_the_whole_id_number(counter: Stack) -> None:
    unit = "000.00.12.H56"
    async with counter.client("intake", "clerk", units=[unit]) as clerk:
        code = (await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN})).json()["code"]
        pdf = await clerk.get(f"/api/v1/dossiers/{code}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Nguyễn Thị Hồng Nhung" in text and code in text and "Đăng ký tạm trú" in text
    assert "UBND phường Phú Hội" in text
    assert "001203004567" not in text.replace(" ", "")


# ---- online ------------------------------------------------------------------------


async def test_the_portal_webhook_accepts_signed_and_refuses_forged_stale_replayed_and_unsigned(counter: Stack) -> None:
    unit = random_unit()
    portal_id = f"DVC-{time.time_ns()}"
    url = f"{counter.url('intake')}/api/v1/portal/dossiers"
    async with httpx.AsyncClient() as portal_client:
        raw, headers = signed(portal_submission(unit, portal_id))
        first = await portal_client.post(url, content=raw, headers=headers)
        assert first.status_code == 201, first.text
        assert first.json()["channel"] == "online" and first.json()["fee"]["total"] == 7_000
        replay = await portal_client.post(url, content=raw, headers=headers)
        assert replay.status_code == 409 and replay.json()["type"].endswith("webhook-replayed")
        raw2, headers2 = signed(portal_submission(unit, portal_id), at=time.time() + 1)
        retried = await portal_client.post(url, content=raw2, headers=headers2)
        assert retried.status_code == 200 and retried.json()["code"] == first.json()["code"]
        forged_raw, forged_headers = signed(portal_submission(unit, f"{portal_id}-x"), secret="guessed")
        forged = await portal_client.post(url, content=forged_raw, headers=forged_headers)
        stale_raw, stale_headers = signed(portal_submission(unit, f"{portal_id}-y"), at=time.time() - 600)
        stale = await portal_client.post(url, content=stale_raw, headers=stale_headers)
        unsigned = await portal_client.post(url, content=raw, headers={"Content-Type": "application/json"})
        in_person_raw, in_person_headers = signed(portal_submission(unit, f"{portal_id}-z", procedure_code="2.000884"))
        in_person = await portal_client.post(url, content=in_person_raw, headers=in_person_headers)
    assert [forged.status_code, stale.status_code, unsigned.status_code] == [401, 401, 401]
    assert forged.json()["type"].endswith("webhook-forged") and stale.json()["type"].endswith("webhook-stale")
    assert in_person.status_code == 422 and "procedure_code" in in_person.json()["detail"]


async def test_an_online_dossier_sent_on_a_sunday_counts_from_monday_morning(counter: Stack) -> None:
    sunday_evening = datetime(2025, 3, 2, 21, 0, tzinfo=VN)
    raw, headers = signed(portal_submission(random_unit(), f"DVC-{time.time_ns()}", submitted_at=sunday_evening.isoformat()))
    async with httpx.AsyncClient() as portal_client:
        body = (await portal_client.post(f"{counter.url('intake')}/api/v1/portal/dossiers", content=raw, headers=headers)).json()
    # Counted from Mon 03/03 07:30; the receipt day is not counted: 04, 05, 06 → Thu 06/03/2025.
    assert datetime.fromisoformat(body["appointment_at"]).astimezone(VN).date().isoformat() == "2025-03-06"


async def _request_supplement(stack: Stack, code: str, unit: str) -> None:
    event = CaseSupplementRequested(dossier_code=code, unit=unit, occurred_at=datetime.now(VN), reason="Thiếu giấy tờ chứng minh chỗ ở")
    envelope = Envelope.wrap(event, source="/motcua/workflow", time=datetime.now(VN), traceparent=None, actor="specialist-1")
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(stack.topic("workflow"), envelope.kafka_value(), key=code.encode(), headers=envelope.kafka_headers())
    finally:
        await producer.stop()


async def test_status_changes_of_an_online_dossier_reach_the_portal_in_order_despite_an_outage(counter: Stack, portal: HttpPeer) -> None:
    unit = random_unit()
    portal_id = f"DVC-{time.time_ns()}"
    portal.failures = 4  # the portal is down for the first pushes
    raw, headers = signed(portal_submission(unit, portal_id))
    async with httpx.AsyncClient() as portal_client:
        code = (await portal_client.post(f"{counter.url('intake')}/api/v1/portal/dossiers", content=raw, headers=headers)).json()["code"]
    await _request_supplement(counter, code, unit)
    async with counter.client("intake", "clerk", units=[unit]) as clerk:

        async def _status_is(status: int) -> bool:
            return (await clerk.get(f"/api/v1/public/dossiers/{code}")).json()["status"] == status

        await eventually(lambda: _status_is(5))
        supplemented = await clerk.post(f"/api/v1/dossiers/{code}/supplements", json={"items": [{"name": "Hợp đồng thuê nhà", "form": "copy"}]})
        assert supplemented.status_code == 200 and supplemented.json()["status"] == 4, supplemented.text
        withdrawn = await clerk.post(f"/api/v1/dossiers/{code}/withdrawal", json={"reason": "Đã chuyển nơi ở"})
        assert withdrawn.status_code == 200 and withdrawn.json()["status"] == 7

    def _mine() -> list[int]:
        return [r.json()["TrangThaiHoSo"] for r in portal.received if r.json()["MaHoSoCongDVC"] == portal_id]

    async def _all_delivered() -> list[int] | None:
        statuses = _mine()
        return statuses if len(statuses) >= 4 else None

    delivered = await eventually(_all_delivered, timeout=30)
    assert delivered == [2, 5, 4, 7]
    sample = next(r for r in portal.received if r.json()["MaHoSoCongDVC"] == portal_id)
    assert sample.headers["x-motcua-signature"].startswith("sha256=")
    assert sample.json()["TenTrangThai"] == "Được tiếp nhận"


async def test_the_public_lookup_shows_status_and_appointment_but_no_personal_data(counter: Stack) -> None:
    unit = random_unit()
    async with counter.client("intake", "clerk", units=[unit]) as clerk:
        code = (await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN})).json()["code"]
    async with httpx.AsyncClient(base_url=counter.url("intake")) as citizen:
        response = await citizen.get(f"/api/v1/public/dossiers/{code}")
        unknown = await citizen.get("/api/v1/public/dossiers/000.00.00.X00-250101-9999")
    body = response.json()
    assert body["status"] == 2 and body["status_name"] == "Được tiếp nhận" and body["procedure_name"] == "Đăng ký tạm trú"
    assert "Nhung" not in response.text and "567" not in response.text and "0912345678" not in response.text
    assert unknown.status_code == 404


async def test_supplement_without_a_request_and_withdrawal_of_a_closed_dossier_are_conflicts(counter: Stack) -> None:
    unit = random_unit()
    async with counter.client("intake", "clerk", units=[unit]) as clerk:
        code = (await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN})).json()["code"]
        premature = await clerk.post(f"/api/v1/dossiers/{code}/supplements", json={"items": [{"name": "Ảnh"}]})
        first = await clerk.post(f"/api/v1/dossiers/{code}/withdrawal", json={"reason": "Không còn nhu cầu"})
        twice = await clerk.post(f"/api/v1/dossiers/{code}/withdrawal", json={})
    assert premature.status_code == 409 and first.status_code == 200 and twice.status_code == 409
    async with counter.client("reporting", "auditor", units=[unit]) as auditor:

        async def _types() -> list[str] | None:
            body = (await auditor.get(f"/api/v1/dossiers/{code}/timeline")).json()
            types = [e["type"] for e in body.get("data", [])]
            return types if len(types) == 2 else None

        assert await eventually(_types) == ["vn.motcua.dossier.received.v1", "vn.motcua.dossier.withdrawn.v1"]


