"""One dossier travels intake → workflow → reporting through the real broker."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from tests.support.stack import Stack, eventually, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")


async def _receive(stack: Stack, unit: str, name: str = "Nguyễn Thị Hồng Nhung") -> httpx.Response:
    async with stack.client("intake", "clerk", units=[unit]) as intake:
        return await intake.post(
            "/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant_name": name, "channel": "counter"}
        )


async def test_a_received_dossier_becomes_an_accepted_case_and_is_counted(stack: Stack) -> None:
    unit = random_unit()
    response = await _receive(stack, unit)
    assert response.status_code == 201, response.text
    receipt = response.json()
    code = receipt["code"]
    day_of_receipt = datetime.fromisoformat(receipt["received_at"]).astimezone(VN).strftime("%y%m%d")
    assert code == f"{unit}-{day_of_receipt}-0001"
    assert datetime.fromisoformat(receipt["appointment_at"]) > datetime.fromisoformat(receipt["received_at"])

    async with stack.client("workflow", "specialist", units=[unit]) as workflow:

        async def _case() -> dict | None:
            r = await workflow.get(f"/api/v1/cases/{code}")
            return r.json() if r.status_code == 200 else None

        case = await eventually(_case)
    assert case["status"] == "accepted"
    assert case["national_status"] == 2
    assert case["applicant_name"] == "Nguyễn Thị Hồng Nhung"
    assert datetime.fromisoformat(case["appointment_at"]) == datetime.fromisoformat(receipt["appointment_at"])

    day = datetime.fromisoformat(receipt["received_at"]).astimezone(VN).date().isoformat()
    async with stack.client("reporting", "leader", units=[unit]) as reporting:

        async def _summary() -> dict | None:
            r = await reporting.get("/api/v1/reports/summary", params={"unit": unit, "from": day, "to": day})
            assert r.status_code == 200, r.text
            body = r.json()
            return body if body["received_total"] == 1 else None

        summary = await eventually(_summary)
        assert summary["received_counter"] == 1 and summary["received_online"] == 0

        timeline = (await reporting.get(f"/api/v1/dossiers/{code}/timeline")).json()
        entries = timeline["data"]
        entry = entries[0]  # in the order things happened: payments' payment.requested may arrive first, but comes after
        assert entry["type"] == "vn.motcua.dossier.received.v1"
        assert sorted(e["sequence"] for e in entries) == list(range(1, len(entries) + 1)) and len(entry["hash"]) == 64
        assert entry["data"]["applicant_name"] == "Nguyễn Thị Hồng Nhung"
        assert (entry["data"]["procedure_name"], entry["data"]["procedure_field"]) == ("Đăng ký tạm trú", "Cư trú")
        verdict = (await reporting.get(f"/api/v1/dossiers/{code}/timeline/verify")).json()
        assert verdict["intact"] is True and verdict["first_broken_sequence"] is None
        assert verdict["events"] >= len(entries) and verdict["dossier_code"] == code


async def test_the_http_span_and_the_reporting_consumer_span_share_one_trace(stack: Stack) -> None:
    unit = random_unit()
    response = await _receive(stack, unit)
    trace_id = response.headers["x-trace-id"]
    assert len(trace_id) == 32
    code = response.json()["code"]
    async with stack.client("reporting", "auditor", units=[unit]) as reporting:

        async def _entry() -> dict | None:
            body = (await reporting.get(f"/api/v1/dossiers/{code}/timeline")).json()
            return body["data"][0] if body.get("data") else None

        entry = await eventually(_entry)
    assert entry["trace_id"] == trace_id


async def test_another_units_official_cannot_see_the_case(stack: Stack) -> None:
    unit = random_unit()
    code = (await _receive(stack, unit)).json()["code"]
    async with stack.client("workflow", "specialist", units=[unit]) as own, stack.client(
        "workflow", "specialist", units=[random_unit()]
    ) as other:
        await eventually(lambda: _status(own, code, 200))
        response = await other.get(f"/api/v1/cases/{code}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def _status(client: httpx.AsyncClient, path_code: str, status: int) -> bool:
    return (await client.get(f"/api/v1/cases/{path_code}")).status_code == status
