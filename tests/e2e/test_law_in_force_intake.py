"""The law in force at intake, on a real intake process: rule sets by date and province, the forms they print, the
admin API's refusals, and units merged into another.

A stack of its own (intake only): the tests move intake's clock, and time only moves forward, so each test takes
days after the ones before it. The clock cannot go back to 2025: the switch of regime on 1 July 2025 is read through
the API at those instants (what a dossier received then gets); dossiers are received across a province's override
dated in the future, which goes through the same path (resolve at reception, record the ref, print by the ref).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pypdf import PdfReader

from motcua import demo
from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.calendar import WorkingCalendar, province_of
from shared.clock import VN_TZ
from tests.support.stack import Stack, official, random_unit

SAME_DAY = "1.001193"  # Đăng ký khai sinh: same day, the cut-off applies
LIEN_THONG = "LT.0001"  # three inter-agency steps in the catalog
RECEIVED = "vn.motcua.dossier.received.v1"
STANDARD_RECEIPT = "Giấy tiếp nhận hồ sơ và hẹn trả kết quả"
STANDARD_REFUSAL = "Phiếu từ chối tiếp nhận giải quyết hồ sơ"
CALENDAR = WorkingCalendar()


@pytest.fixture(scope="module")
async def lawful(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake alone, whose clock this module moves."""
    stack = Stack.isolated(postgres, broker, Path(tmp_path_factory.mktemp("law-in-force")), services=["intake"])
    await stack.start()
    yield stack
    stack.stop()


# ---- helpers ---------------------------------------------------------------------------------------------------------


async def _now(stack: Stack) -> datetime:
    async with official(stack, "intake", "admin", "*", "ops") as admin:
        return datetime.fromisoformat((await admin.get("/api/v1/admin/clock")).json()["now"]).astimezone(VN_TZ)


async def _move_clock(stack: Stack, day: date, at: time) -> None:
    async with official(stack, "intake", "admin", "*", "ops") as admin:
        response = await admin.put("/api/v1/admin/clock", json={"now": datetime.combine(day, at, VN_TZ).isoformat()})
    assert response.status_code == 200, response.text


async def _working_days_ahead(stack: Stack, n: int) -> list[date]:
    """``n`` consecutive working days, the first after intake's today."""
    days = [CALENDAR.next_working((await _now(stack)).date())]
    while len(days) < n:
        days.append(CALENDAR.next_working(days[-1]))
    return days


async def _receive(stack: Stack, unit: str, procedure: str = SAME_DAY, **extra: Any) -> dict[str, Any]:
    async with official(stack, "intake", "clerk", unit, "mc-luat") as clerk:
        response = await clerk.post("/api/v1/dossiers", json={"procedure_code": procedure, "applicant_name": "Trần Thị Mai", **extra})
    assert response.status_code == 201, response.text
    return response.json()


def _text(pdf: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())


async def _receipt_text(stack: Stack, unit: str, code: str) -> str:
    async with official(stack, "intake", "clerk", unit, "mc-luat") as clerk:
        response = await clerk.get(f"/api/v1/dossiers/{code}/receipt.pdf")
    assert response.status_code == 200, response.text
    return _text(response.content)


async def _refusal_text(stack: Stack, unit: str) -> tuple[str, str]:
    """A refused dossier recorded now at the unit: its Form 03 (text) and the form number the API names."""
    async with official(stack, "intake", "clerk", unit, "mc-luat") as clerk:
        record = await clerk.post(
            "/api/v1/intake-records",
            json={"outcome": "refused", "procedure_code": SAME_DAY, "applicant_name": "Lê Văn Tâm", "reason": "Không thuộc thẩm quyền"},
        )
        assert record.status_code == 201, record.text
        pdf = await clerk.get(f"/api/v1/intake-records/{record.json()['reference']}/form.pdf")
    assert pdf.status_code == 200, pdf.text
    return _text(pdf.content), pdf.headers["content-disposition"]


async def _outbox(stack: Stack, *, type_: str | None = None, key: str | None = None) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database("intake")))
    try:
        rows = await conn.fetch(
            "SELECT type, key, payload FROM outbox WHERE ($1::text IS NULL OR type = $1) AND ($2::text IS NULL OR key = $2) ORDER BY id",
            type_, key,
        )  # fmt: skip
    finally:
        await conn.close()
    return [{"type": r["type"], "key": r["key"], "payload": json.loads(r["payload"])} for r in rows]


def _data(row: dict[str, Any]) -> dict[str, Any]:
    payload = row["payload"]
    return payload.get("data", payload) if isinstance(payload, dict) else payload


async def _rulesets(stack: Stack) -> dict[str, Any]:
    async with stack.client("intake", "admin", units=["*"]) as anyone:
        response = await anyone.get("/api/v1/rulesets")
    assert response.status_code == 200, response.text
    return response.json()


def _override(province: str, effective_from: date, **changes: Any) -> dict[str, Any]:
    return {
        "scope": province, "regime": "nd118-2025", "effective_from": effective_from.isoformat(),
        "title": f"Quyết định của UBND tỉnh {province} về giờ tiếp nhận và mẫu phiếu", **changes,
    }  # fmt: skip


# ---- the regimes by date --------------------------------------------------------------------------------------------


async def test_the_regime_is_the_one_in_force_at_reception_and_a_dossier_prints_its_forms(lawful: Stack) -> None:
    unit = random_unit()
    province = province_of(unit)
    async with lawful.client("intake", "clerk", units=[unit]) as anyone:
        june = await anyone.get("/api/v1/rulesets/in-force", params={"at": "2025-06-30T16:00:00+07:00", "province": province})
        july = await anyone.get("/api/v1/rulesets/in-force", params={"at": "2025-07-01T09:00:00+07:00", "province": province})
        by_ref = await anyone.get("/api/v1/rulesets/VN.2")
        unknown = await anyone.get("/api/v1/rulesets/VN.99")
    assert (june.status_code, july.status_code) == (200, 200), (june.text, july.text)
    june_rules, july_rules = june.json(), july.json()
    assert (june_rules["ref"], june_rules["regime"]) == ("VN.1", "nd61-107")
    assert (july_rules["ref"], july_rules["regime"]) == ("VN.2", "nd118-2025")
    assert june_rules["forms"]["apology"]["title"] == "Phiếu xin lỗi và hẹn lại ngày trả kết quả"
    assert july_rules["forms"]["apology"]["title"] == "Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết"
    assert "stop" not in june_rules["forms"] and july_rules["forms"]["stop"]["title"] == "Thông báo dừng giải quyết hồ sơ"
    assert by_ref.json() == july_rules
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"

    history = {v["ref"]: v for v in (await _rulesets(lawful))["data"]}
    assert history["VN.1"]["effective_to"] == "2025-06-30" and history["VN.1"]["shipped"] is True
    assert history["VN.2"]["effective_from"] == "2025-07-01" and history["VN.2"]["shipped"] is True

    # today (December 2026) a dossier gets the 2025 regime, records it, and its Form 01 and 03 are the regime's
    dossier = await _receive(lawful, unit)
    assert dossier["rules"] == "VN.2"
    receipt = await _receipt_text(lawful, unit, dossier["code"])
    assert f"Mẫu số {july_rules['forms']['receipt']['number']} – {july_rules['forms']['receipt']['title']}" in receipt
    refusal, disposition = await _refusal_text(lawful, unit)
    assert f"Mẫu số 03 – {july_rules['forms']['refusal']['title']}" in refusal and "mau-03.pdf" in disposition
    [received] = await _outbox(lawful, type_=RECEIVED, key=dossier["code"])
    assert _data(received)["rules"] == "VN.2" and _data(received)["lien_thong_steps"] is None

    # the catalog's inter-agency step plan travels with the dossier
    lien_thong = await _receive(lawful, unit, LIEN_THONG)
    [event] = await _outbox(lawful, type_=RECEIVED, key=lien_thong["code"])
    assert _data(event)["lien_thong_steps"] == [
        {"agency": "UBND xã (tư pháp - hộ tịch)", "amount": 1, "unit": "WORKING_DAY"},
        {"agency": "Công an xã (cư trú)", "amount": 7, "unit": "WORKING_DAY"},
        {"agency": "Bảo hiểm xã hội", "amount": 2, "unit": "WORKING_DAY"},
    ]


# ---- a province's override, published for a future day ---------------------------------------------------------


async def test_a_province_override_for_a_future_day_changes_nothing_before_it_and_only_its_province_after(lawful: Stack) -> None:
    unit, elsewhere = random_unit(), random_unit()
    province = province_of(unit)
    before_day, from_day = await _working_days_ahead(lawful, 2)
    forms = {
        "receipt": {"number": "01", "title": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả (Trung tâm phục vụ hành chính công)"},
        "refusal": {"number": "03", "title": "Phiếu từ chối tiếp nhận hồ sơ (Trung tâm phục vụ hành chính công)"},
    }
    body = _override(
        province, from_day, office={"opens": "07:00", "closes": "17:00", "cutoff": "16:00"}, forms=forms,
        dossier_code="{unit}-{day:%Y%m%d}-{sequence:05d}",
    )  # fmt: skip
    async with official(lawful, "intake", "admin", unit, "qt-tinh") as admin:
        published = await admin.post("/api/v1/rulesets", json=body)
    assert published.status_code == 201, published.text
    version = published.json()
    assert (version["ref"], version["effective_from"], version["effective_to"], version["shipped"]) == (
        f"{province}.1", from_day.isoformat(), None, False,
    )
    assert version["published_by"] == "qt-tinh" and version["office"]["cutoff"] == "16:00:00"
    [fact] = await _outbox(lawful, type_="vn.motcua.rules.published.v1", key=province)
    assert _data(fact)["version"] == 1 and _data(fact)["document"]["scope"] == province

    # 15:30 the working day before: the national rules, the 15:00 cut-off, the national code and forms
    await _move_clock(lawful, before_day, time(15, 30))
    before = await _receive(lawful, unit)
    assert before["rules"] == "VN.2"
    assert before["code"] == f"{unit}-{before_day:%y%m%d}-0001"
    assert datetime.fromisoformat(before["appointment_at"]).astimezone(VN_TZ).date() == from_day  # after the cut-off
    assert f"Mẫu số 01 – {STANDARD_RECEIPT} – Mã hồ sơ" in await _receipt_text(lawful, unit, before["code"])
    refused_before, _ = await _refusal_text(lawful, unit)
    assert f"Mẫu số 03 – {STANDARD_REFUSAL}" in refused_before

    # 15:30 on its first day: the override in its province, the national rules elsewhere
    await _move_clock(lawful, from_day, time(15, 30))
    after = await _receive(lawful, unit)
    other = await _receive(lawful, elsewhere)
    assert after["rules"] == f"VN.2+{province}.1" and other["rules"] == "VN.2"
    assert after["code"] == f"{unit}-{from_day:%Y%m%d}-00001" and other["code"] == f"{elsewhere}-{from_day:%y%m%d}-0001"
    assert datetime.fromisoformat(after["appointment_at"]).astimezone(VN_TZ).date() == from_day  # before its 16:00 cut-off
    assert datetime.fromisoformat(other["appointment_at"]).astimezone(VN_TZ).date() > from_day
    assert f"Mẫu số 01 – {forms['receipt']['title']}" in await _receipt_text(lawful, unit, after["code"])
    assert f"Mẫu số 01 – {STANDARD_RECEIPT} – Mã hồ sơ" in await _receipt_text(lawful, elsewhere, other["code"])
    refused_after, _ = await _refusal_text(lawful, unit)
    assert f"Mẫu số 03 – {forms['refusal']['title']}" in refused_after
    # the dossier received the day before keeps its rules and forms
    assert f"Mẫu số 01 – {STANDARD_RECEIPT} – Mã hồ sơ" in await _receipt_text(lawful, unit, before["code"])
    [event] = await _outbox(lawful, type_=RECEIVED, key=after["code"])
    assert _data(event)["rules"] == f"VN.2+{province}.1"

    async with lawful.client("intake", "clerk", units=[unit]) as anyone:
        in_force = await anyone.get("/api/v1/rulesets/in-force", params={"at": from_day.isoformat(), "province": province})
        national = await anyone.get("/api/v1/rulesets/in-force", params={"at": from_day.isoformat(), "province": province_of(elsewhere)})
        page = await anyone.get(f"/tra-cuu/ho-so/{before['code']}")
        other_page = await anyone.get(f"/tra-cuu/ho-so/{other['code']}")
        board = await anyone.get(f"/tra-cuu/niem-yet/{unit}")
    assert in_force.json()["office"]["cutoff"] == "16:00:00" and national.json()["office"]["cutoff"] == "15:00:00"
    # the public pages print the hours in force today in the unit's province
    assert page.status_code == 200 and "Giờ làm việc: từ 07 giờ 00 đến 17 giờ 00" in page.text
    assert other_page.status_code == 200 and "Giờ làm việc: từ 07 giờ 30 đến 17 giờ 00" in other_page.text
    assert board.status_code == 200 and "hồ sơ nhận sau 16 giờ 00" in board.text


# ---- refusals change nothing ----------------------------------------------------------------------------------------


async def test_every_refusal_of_the_admin_api_is_a_problem_and_changes_nothing(lawful: Stack) -> None:
    unit = random_unit()
    province = province_of(unit)
    far = (await _now(lawful)).date() + timedelta(days=400)
    async with official(lawful, "intake", "admin", unit, "qt-tinh") as admin:
        first = await admin.post("/api/v1/rulesets", json=_override(province, far, office={"opens": "07:00", "closes": "17:00", "cutoff": "16:00"}))
        assert first.status_code == 201, first.text
        versions, outbox = await _rulesets(lawful), await _outbox(lawful)
        units = (await admin.get("/api/v1/units")).json()

        refusals = {
            "unknown regime": (await admin.post("/api/v1/rulesets", json=_override(province, far + timedelta(days=30), regime="nd999-2030")), 422),
            "overlap": (await admin.post("/api/v1/rulesets", json=_override(province, far - timedelta(days=1), office={"opens": "07:00", "closes": "17:00", "cutoff": "15:30"})), 409),
            "same day": (await admin.post("/api/v1/rulesets", json=_override(province, far, dossier_code="{unit}-{sequence:05d}")), 409),
            "no sequence in the code": (await admin.post("/api/v1/rulesets", json=_override(province, far + timedelta(days=30), dossier_code="{unit}-{day:%Y%m%d}")), 422),
            "two forms, one number": (await admin.post("/api/v1/rulesets", json=_override(province, far + timedelta(days=30), forms={"apology": {"number": "01", "title": "Văn bản xin lỗi"}})), 422),
            "national without sections": (await admin.post("/api/v1/rulesets", json=_override(province, far, scope="VN")), 403),
            "cut-off after closing": (await admin.post("/api/v1/rulesets", json=_override(province, far + timedelta(days=30), office={"opens": "07:30", "closes": "17:00", "cutoff": "17:30"})), 422),
            "bad time": (await admin.post("/api/v1/rulesets", json=_override(province, far + timedelta(days=30), office={"opens": "25:00", "closes": "17:00", "cutoff": "15:00"})), 422),
            "missing title": (await admin.post("/api/v1/rulesets", json={k: v for k, v in _override(province, far + timedelta(days=30)).items() if k != "title"}), 422),
            "unknown parent": (await admin.post("/api/v1/units", json={"units": [{"code": f"000.10.01.{province}", "name": "Phường Mới", "tier": "commune", "parent": f"X{province}"}]}), 422),
            "merge of an unknown unit": (await admin.post(f"/api/v1/units/000.99.99.{province}/merge", json={"into": unit, "effective": far.isoformat()}), 404),
        }  # fmt: skip
    async with official(lawful, "intake", "admin", "*", "qt-quoc-gia") as national_admin:
        refusals["national version lacking sections"] = (
            await national_admin.post("/api/v1/rulesets", json=_override(province, far, scope="VN", regime="nd118-2025")), 422,
        )
        # a province with no version yet (one with a later version would be an overlap first)
        refusals["in the past"] = (
            await national_admin.post("/api/v1/rulesets", json=_override(province_of(random_unit()), date(2025, 7, 1), notes="hồi tố")), 422,
        )
        refusals["national version of an unknown regime"] = (
            await national_admin.post("/api/v1/rulesets", json=_override(province, far, scope="VN", regime="nd999-2030")), 422,
        )
    for name, (response, status) in refusals.items():
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json", name

    problems = {name: response.json() for name, (response, _) in refusals.items()}
    assert any("unknown regime 'nd999-2030'" in p for p in problems["unknown regime"]["problems"])
    assert "overlapping effective dates" in problems["overlap"]["detail"] and problems["overlap"]["problems"]
    assert any("sequence" in p for p in problems["no sequence in the code"]["problems"])
    assert any("two forms share a number" in p for p in problems["two forms, one number"]["problems"])
    assert any("in the past" in p for p in problems["in the past"]["problems"])
    assert "cut-off must lie within office hours" in json.dumps(problems["cut-off after closing"], ensure_ascii=False)
    assert problems["unknown parent"]["detail"].startswith("parent:") and f"X{province}" in problems["unknown parent"]["detail"]
    lacking = problems["national version lacking sections"]["problems"]
    assert "counting: a national version needs this section" in lacking and len(lacking) >= 5
    assert any("unknown regime" in p for p in problems["national version of an unknown regime"]["problems"])

    assert await _rulesets(lawful) == versions
    assert await _outbox(lawful) == outbox
    async with official(lawful, "intake", "admin", unit, "qt-tinh") as admin:
        assert (await admin.get("/api/v1/units")).json() == units


# ---- a merge of units -------------------------------------------------------------------------------------------


async def test_after_a_merge_new_dossiers_of_the_merged_unit_go_to_its_successor(lawful: Stack) -> None:
    probe = random_unit()
    province = province_of(probe)
    district, commune_a, commune_b = f"000.00.01.{province}", f"000.10.01.{province}", f"000.10.02.{province}"
    registry = [
        {"code": province, "name": "Tỉnh Thử Nghiệm", "tier": "province"},
        {"code": district, "name": "Huyện Cũ", "tier": "district", "parent": province, "valid_to": "2025-06-30"},
        {"code": commune_a, "name": "Phường Trung Tâm", "tier": "commune", "parent": province, "valid_from": "2025-07-01"},
        {"code": commune_b, "name": "Xã Ven Biển", "tier": "commune", "parent": province, "valid_from": "2025-07-01"},
    ]
    [merge_day] = await _working_days_ahead(lawful, 1)
    async with official(lawful, "intake", "admin", probe, "qt-tinh") as admin:
        declared = await admin.post("/api/v1/units", json={"units": registry})
        assert declared.status_code == 200, declared.text
        listed = await admin.get("/api/v1/units", params={"province": province})
        assert sorted(u["code"] for u in listed.json()["data"]) == sorted(u["code"] for u in registry)
        [fact] = await _outbox(lawful, type_="vn.motcua.units.declared.v1", key=province)
        assert len(_data(fact)["units"]) == 4

        # a district that ended on 30 June 2025 receives nothing; an unknown unit is received as it is
        async with official(lawful, "intake", "clerk", district, "mc-huyen") as clerk:
            gone = await clerk.post("/api/v1/dossiers", json={"procedure_code": SAME_DAY, "applicant_name": "Phạm Văn An"})
        assert gone.status_code == 422 and gone.json()["type"].endswith("unit-not-in-force"), gone.text
        assert "does not exist" in gone.json()["detail"]

        before = await _receive(lawful, commune_b)
        assert before["processing_unit"] == commune_b

        into_unknown = await admin.post(f"/api/v1/units/{commune_b}/merge", json={"into": f"000.99.99.{province}", "effective": merge_day.isoformat()})
        assert into_unknown.status_code == 422 and into_unknown.headers["content-type"] == "application/problem+json"
        assert into_unknown.json()["field"] == "into" and f"000.99.99.{province}" in into_unknown.json()["detail"]
        into_itself = await admin.post(f"/api/v1/units/{commune_b}/merge", json={"into": commune_b, "effective": merge_day.isoformat()})
        assert into_itself.status_code == 422
        assert await _outbox(lawful, type_="vn.motcua.units.merged.v1", key=province) == []

        # a merge is recorded on or after the day it takes effect (its open dossiers move when it is recorded)
        early = await admin.post(f"/api/v1/units/{commune_b}/merge", json={"into": commune_a, "effective": merge_day.isoformat()})
        assert early.status_code == 422 and early.json()["field"] == "effective", early.text
        assert await _outbox(lawful, type_="vn.motcua.units.merged.v1", key=province) == []

    # the day before the merge takes effect the commune still processes its own dossiers
    still = await _receive(lawful, commune_b)
    assert still["processing_unit"] == commune_b

    await _move_clock(lawful, merge_day, time(9, 0))
    async with official(lawful, "intake", "admin", probe, "qt-tinh") as admin:
        merged = await admin.post(f"/api/v1/units/{commune_b}/merge", json={"into": commune_a, "effective": merge_day.isoformat()})
        assert merged.status_code == 200, merged.text
        assert merged.json()["successor"] == commune_a
        assert merged.json()["valid_to"] == (merge_day - timedelta(days=1)).isoformat()
        [fact] = await _outbox(lawful, type_="vn.motcua.units.merged.v1", key=province)
        assert (_data(fact)["code"], _data(fact)["into"], _data(fact)["effective"]) == (commune_b, commune_a, merge_day.isoformat())
        again = await admin.post(f"/api/v1/units/{commune_b}/merge", json={"into": commune_a, "effective": merge_day.isoformat()})
        assert again.status_code == 422 and "already" in again.json()["detail"]

    after = await _receive(lawful, commune_b)
    assert (after["receiving_unit"], after["processing_unit"]) == (commune_b, commune_a)
    assert after["code"].startswith(commune_b) and after["rules"] == "VN.2"
    [event] = await _outbox(lawful, type_=RECEIVED, key=after["code"])
    assert (_data(event)["unit"], _data(event)["receiving_unit"]) == (commune_a, commune_b)
    # the one-stop that received it and the unit that processes it both read it; a third unit does not
    async with official(lawful, "intake", "clerk", commune_b, "mc-xa") as receiving:
        assert (await receiving.get(f"/api/v1/dossiers/{after['code']}")).status_code == 200
    async with official(lawful, "intake", "specialist", commune_a, "cb-phuong") as processing:
        assert (await processing.get(f"/api/v1/dossiers/{after['code']}")).status_code == 200
    async with official(lawful, "intake", "specialist", probe, "cb-khac") as stranger:
        assert (await stranger.get(f"/api/v1/dossiers/{after['code']}")).status_code == 404


async def test_the_demo_registry_declares_through_the_api_and_its_clerk_unit_still_receives(lawful: Stack) -> None:
    async with official(lawful, "intake", "admin", "*", "qt-demo") as admin:
        assert await demo.declare_units(admin) == len(demo.UNITS)
        listed = (await admin.get("/api/v1/units", params={"province": demo.DEMO_PROVINCE})).json()
    assert {u["code"] for u in listed["data"]} == {u["code"] for u in demo.UNITS}
    assert (await _receive(lawful, "000.00.12.H56"))["processing_unit"] == "000.00.12.H56"
    async with official(lawful, "intake", "clerk", "000.01.00.H56", "mc-huyen") as clerk:
        gone = await clerk.post("/api/v1/dossiers", json={"procedure_code": SAME_DAY, "applicant_name": "Phạm Văn An"})
    assert gone.status_code == 422, gone.text
