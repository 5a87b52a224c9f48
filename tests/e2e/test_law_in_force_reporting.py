"""Reports under the law in force, on the real stack (reporting as a process, events straight to the broker as intake
and workflow would send them): the registry's units of each period, a merge, receiving and processing units, the
register (Form 06 / 07) as PDF and XLSX, late inter-agency steps blamed on their agency, and 766 points a province
publishes from a date.

A province with one district (and a commune of it) until 30 June 2025, and three communes from 1 July 2025. The
district's commune has a code its district's code pattern does not cover (000.00.15 under 000.00.11): only the registry
puts it under the district.
"""

from __future__ import annotations

import calendar
import io
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.events import (
    CaseHandedOver,
    CaseOverdue,
    CaseResultReady,
    CaseReturned,
    CaseSupplementRequested,
    CaseTransferred,
    CaseTransferReturned,
    DossierReceived,
    Event,
    RulesPublished,
    UnitMerged,
    UnitsDeclared,
)
from shared.rules import RuleVersion, dump_version, shipped_book
from tests.support.stack import Stack, eventually, produce

VN = ZoneInfo("Asia/Ho_Chi_Minh")
AGENCY = "Chi cục Thuế khu vực II"

pytestmark = pytest.mark.timeout(600)


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=VN)


class Province:
    """The units and dossiers of one run (a province code no other test uses)."""

    def __init__(self) -> None:
        self.code = f"R{uuid.uuid4().hex[:6].upper()}"
        self.district = f"000.00.11.{self.code}"
        self.old_commune = f"000.00.15.{self.code}"
        self.c1, self.c2, self.c3 = (f"000.00.{n}.{self.code}" for n in (21, 22, 23))
        self.events: list[Event] = []
        self.codes: dict[str, str] = {}
        self._seq = 0

    def units(self) -> UnitsDeclared:
        old, new = {"valid_to": "2025-06-30"}, {"valid_from": "2025-07-01"}
        return UnitsDeclared(province=self.code, occurred_at=at("2025-01-01"), units=[
            {"code": self.code, "name": "Tỉnh Kiểm Thử", "tier": "province"},
            {"code": self.district, "name": "Huyện Cũ", "tier": "district", "parent": self.code, **old},
            {"code": self.old_commune, "name": "Xã Cũ", "tier": "commune", "parent": self.district, **old},
            {"code": self.c1, "name": "Phường Đông Hòa", "tier": "commune", "parent": self.code, **new},
            {"code": self.c2, "name": "Xã Tây Sơn", "tier": "commune", "parent": self.code, **new},
            {"code": self.c3, "name": "Xã Nam Định", "tier": "commune", "parent": self.code, **new},
        ])  # fmt: skip

    def received(self, key: str, unit: str, day: str, due: str, applicant: str = "Lê Thị Hoa", **extra: Any) -> str:
        self._seq += 1
        code = self.codes[key] = f"{unit}-{day[2:4]}{day[5:7]}{day[8:10]}-{self._seq:04d}"
        self.events.append(DossierReceived(
            dossier_code=code, unit=unit, occurred_at=at(day), procedure_code="1.004194", procedure_name="Đăng ký tạm trú",
            procedure_field="Cư trú", applicant_name=applicant, channel="counter", received_at=at(day),
            appointment_at=at(due, 17), due_at_original=at(due, 17), received_by="mc-1", **extra,
        ))  # fmt: skip
        return code

    def then(self, model: type[Event], key: str, day: str, hour: int = 10, unit: str | None = None, **fields: Any) -> None:
        code = self.codes[key]
        self.events.append(model(dossier_code=code, unit=unit or code.split("-")[0], occurred_at=at(day, hour), **fields))

    def returned(self, key: str, finished: str, returned: str) -> None:
        self.then(CaseResultReady, key, finished, finished_at=at(finished), timeliness="on_time")
        self.then(CaseReturned, key, returned, returned_at=at(returned, 10), return_channel="counter", timeliness="on_time",
                  finished_at=at(finished))  # fmt: skip


def populate(p: Province) -> None:
    # 2025, the district tier
    p.received("d1", p.district, "2025-02-10", "2025-02-20", applicant="Phạm Văn Đức")
    p.returned("d1", "2025-02-18", "2025-02-20")
    p.received("d2", p.district, "2025-02-12", "2025-03-20")
    p.received("dc1", p.old_commune, "2025-03-03", "2025-03-10")
    p.received("d3", p.district, "2025-06-10", "2025-06-20", applicant="Võ Thị Ngọc Ánh")
    # 2026, the communes
    p.received("x", p.c1, "2025-12-29", "2026-01-06", applicant="Đặng Quốc Huy")
    p.returned("x", "2026-01-05", "2026-01-06")
    p.received("a", p.c1, "2026-01-05", "2026-01-09", applicant="Nguyễn Thị Ánh")
    p.returned("a", "2026-01-07", "2026-01-08")
    p.received("b", p.c1, "2026-01-06", "2026-01-13", applicant="Trương Văn Bảo")
    p.then(CaseTransferred, "b", "2026-01-06", 14, to_agency=AGENCY, step_due_at=at("2026-01-08", 17), step_no=1)
    p.then(CaseTransferReturned, "b", "2026-01-12", 10, from_agency=AGENCY, step_late=True, step_due_at=at("2026-01-08", 17), step_no=1)
    p.then(CaseOverdue, "b", "2026-01-14", 8, due_at=at("2026-01-13", 17), holder_unit=p.c1)
    p.received("c2a", p.c2, "2026-01-07", "2026-01-20")
    p.received("r", p.c1, "2026-01-08", "2026-01-22", applicant="Hồ Thị Lụa", receiving_unit=p.c2)
    p.received("c3a", p.c3, "2026-01-09", "2026-01-16")
    p.returned("c3a", "2026-01-14", "2026-01-15")
    # February 2026 in the commune that will be merged: open, paused and late
    p.received("open", p.c3, "2026-02-02", "2026-03-30")
    p.received("paused", p.c3, "2026-02-03", "2026-03-25")
    p.then(CaseSupplementRequested, "paused", "2026-02-05", reason="Thiếu bản sao giấy khai sinh", supplement_number=1)
    p.received("late", p.c3, "2026-02-04", "2026-02-10")
    p.then(CaseOverdue, "late", "2026-02-11", 8, due_at=at("2026-02-10", 17), holder_unit=p.c3)


@pytest.fixture(scope="module")
async def reporting(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack.isolated(postgres, broker, Path(tmp_path_factory.mktemp("law-reporting")), services=["reporting"])
    await stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
async def province(reporting: Stack) -> Province:
    """The registry and every dossier event, applied (a merge changes a province: its test has its own)."""
    return await applied_province(reporting)


async def applied_province(reporting: Stack) -> Province:
    p = Province()
    populate(p)
    await produce(reporting, p.units(), *p.events)
    wanted: dict[str, int] = {}
    for event in p.events:
        wanted[event.dossier_code] = wanted.get(event.dossier_code, 0) + 1
    async with reporting.client("reporting", "auditor", units=["*"]) as auditor:

        async def applied() -> bool:
            for code, count in wanted.items():
                response = await auditor.get(f"/api/v1/dossiers/{code}/timeline")
                if response.status_code != 200 or response.json()["count"] < count:
                    return False
            # the registry too: the district's commune (outside its code pattern) counts in its quarter
            quarter = await auditor.get("/api/v1/reports/summary", params={"unit": p.district, "from": "2025-01-01", "to": "2025-03-31"})
            return quarter.status_code == 200 and quarter.json()["received_total"] == 3

        await eventually(applied, timeout=90, interval=0.3)
    return p


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> dict:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def month(yyyy_mm: str) -> dict[str, str]:
    year, number = (int(x) for x in yyyy_mm.split("-"))
    return {"from": f"{yyyy_mm}-01", "to": f"{yyyy_mm}-{calendar.monthrange(year, number)[1]:02d}"}


COUNTED = ("carried_over", "received_total", "resolved_total", "pending_total", "pending_paused", "pending_overdue", "to_process")


def _counts(body: dict) -> dict[str, int]:
    return {k: body[k] for k in COUNTED}


def _sum(*bodies: dict) -> dict[str, int]:
    return {k: sum(b[k] for b in bodies) for k in COUNTED}


async def test_a_districts_2025_quarter_counts_its_dossiers_and_a_provinces_2026_month_is_the_sum_of_its_communes(
    reporting: Stack, province: Province
) -> None:
    p = province
    q1 = {"from": "2025-01-01", "to": "2025-03-31"}
    async with reporting.client("reporting", "leader", units=[p.district]) as district:
        quarter = await _get(district, "/api/v1/reports/summary", unit=p.district, **q1)
        assert (quarter["received_total"], quarter["resolved_total"], quarter["pending_total"]) == (3, 1, 2)
        # its commune of then, by the registry: the district's token reads it, though the code pattern does not cover it
        assert (await _get(district, "/api/v1/reports/summary", unit=p.old_commune, **q1))["received_total"] == 1
        assert (await district.get("/api/v1/reports/summary", params={"unit": p.c1, **month("2026-01")})).status_code == 403
    async with reporting.client("reporting", "leader", units=[p.code]) as leader:
        assert (await _get(leader, "/api/v1/reports/summary", unit=p.code, **q1))["received_total"] == 3
        january = month("2026-01")
        whole = await _get(leader, "/api/v1/reports/summary", unit=p.code, **january)
        communes = [await _get(leader, "/api/v1/reports/summary", unit=c, **january) for c in (p.c1, p.c2, p.c3)]
        assert _counts(whole) == _sum(*communes)
        assert (whole["carried_over"], whole["received_total"]) == (1, 5)  # x carried over; a, b, c2a, r, c3a
        assert [c["received_total"] for c in communes] == [3, 1, 1]
        # the district tier is history: none of its dossiers is in a 2026 month, nor a commune's in its quarter
        assert (await _get(leader, "/api/v1/reports/summary", unit=p.district, **january))["to_process"] == 2  # d2, dc1 open


async def test_the_receiving_one_stop_reads_what_it_received_for_another_unit(reporting: Stack, province: Province) -> None:
    p = province
    january = month("2026-01")
    async with reporting.client("reporting", "clerk", units=[p.c2]) as one_stop:
        processing = await _get(one_stop, "/api/v1/reports/summary", unit=p.c2, **january)
        receiving = await _get(one_stop, "/api/v1/reports/summary", unit=p.c2, attribution="receiving", **january)
        assert (processing["received_total"], receiving["received_total"]) == (1, 2)  # c2a; c2a and r (processed by c1)
        breakdown = await _get(one_stop, "/api/v1/reports/breakdown", unit=p.c2, by="procedure", period="month", year=2026, number=1,
                               attribution="receiving")  # fmt: skip
        assert breakdown["data"][0]["total"]["received_total"] == 2
        assert (await one_stop.get("/api/v1/reports/summary", params={"unit": p.c1, **january})).status_code == 403
        # the dossier itself: its timeline is the receiving one-stop's to read too, not a third unit's
        assert (await one_stop.get(f"/api/v1/dossiers/{p.codes['r']}/timeline")).status_code == 200
    async with reporting.client("reporting", "clerk", units=[p.c3]) as third:
        assert (await third.get(f"/api/v1/dossiers/{p.codes['r']}/timeline")).status_code == 404
    async with reporting.client("reporting", "leader", units=[p.c1]) as processor:
        processing = await _get(processor, "/api/v1/reports/summary", unit=p.c1, **january)
        receiving = await _get(processor, "/api/v1/reports/summary", unit=p.c1, attribution="receiving", **january)
        assert (processing["received_total"], receiving["received_total"]) == (3, 2)


async def test_a_late_inter_agency_step_shows_under_its_agency(reporting: Stack, province: Province) -> None:
    p = province
    async with reporting.client("reporting", "leader", units=[p.code]) as leader:
        late = await _get(leader, "/api/v1/reports/late", unit=p.c1, **month("2026-01"))
        assert late["late_steps"] == [{"agency": AGENCY, "late_steps": 1, "dossiers": 1}]
        rows = {r["code"]: r for r in late["data"]}
        assert rows[p.codes["b"]]["late_step_agencies"] == [AGENCY]
        breakdown = await _get(leader, "/api/v1/reports/breakdown", unit=p.code, by="field", period="month", year=2026, number=1)
        assert breakdown["data"][0]["late_steps"] == [{"agency": AGENCY, "late_steps": 1, "dossiers": 1}]
        february = await _get(leader, "/api/v1/reports/breakdown", unit=p.code, by="field", period="month", year=2026, number=2)
        assert february["data"][0]["late_steps"] == []


def _pdf_text(body: bytes, tmp_path: Path) -> str:
    path = tmp_path / "register.pdf"
    path.write_bytes(body)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


async def test_the_register_of_a_month_lists_every_dossier_received_or_returned_in_it(
    reporting: Stack, province: Province, tmp_path: Path
) -> None:
    p = province
    wanted = [p.codes[k] for k in ("x", "a", "b", "r")]  # x: received in December, returned in January
    async with reporting.client("reporting", "leader", units=[p.c1]) as leader:
        pdf = await leader.get("/api/v1/reports/register.pdf", params={"unit": p.c1, **month("2026-01")})
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = _pdf_text(pdf.content, tmp_path)
        flat = "".join(text.split())
        assert "Mẫu số 07" in text and "SỔ THEO DÕI HỒ SƠ" in text
        assert all(code in flat for code in wanted) and p.codes["c2a"] not in flat
        assert "NguyễnThịÁnh" in flat and "TrươngVănBảo" in flat and "Đãtrảkếtquả" in flat and "Trễhạn" in flat
        xlsx = await leader.get("/api/v1/reports/register.xlsx", params={"unit": p.c1, **month("2026-01")})
        assert xlsx.status_code == 200
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet.cell(row=1, column=1).value.startswith("Mẫu số 07: SỔ THEO DÕI HỒ SƠ")
        rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
        assert [r[1] for r in rows] == wanted and [r[0] for r in rows] == [1, 2, 3, 4]
        assert rows[1][3] == "Nguyễn Thị Ánh" and rows[1][8] == "Đã trả kết quả" and rows[0][7] == "06/01/2026 10:00"
        assert "Trễ hạn" in rows[2][9] and "liên thông" in rows[2][9]
        # another unit's token gets the register's 403, as the reports'
        async with reporting.client("reporting", "leader", units=[p.c2]) as other:
            assert (await other.get("/api/v1/reports/register.xlsx", params={"unit": p.c1, **month("2026-01")})).status_code == 403
    async with reporting.client("reporting", "leader", units=[p.district]) as district:
        june = await district.get("/api/v1/reports/register.xlsx", params={"unit": p.district, **month("2025-06")})
        sheet = load_workbook(io.BytesIO(june.content)).active
        assert sheet.cell(row=1, column=1).value.startswith("Mẫu số 06: SỔ THEO DÕI HỒ SƠ")
        assert [row[1].value for row in sheet.iter_rows(min_row=3)] == [p.codes["d3"]]
        assert sheet.cell(row=3, column=4).value == "Võ Thị Ngọc Ánh"
        text = _pdf_text((await district.get("/api/v1/reports/register.pdf", params={"unit": p.district, **month("2025-06")})).content, tmp_path)
        assert "Mẫu số 06" in text and "Võ Thị Ngọc Ánh" in text


async def test_a_merge_hands_the_dossiers_over_and_the_months_still_add_up(reporting: Stack) -> None:
    p = await applied_province(reporting)
    february, march = month("2026-02"), month("2026-03")
    async with reporting.client("reporting", "auditor", units=["*"]) as auditor:
        province_february = await _get(auditor, "/api/v1/reports/summary", unit=p.code, **february)
        province_march = await _get(auditor, "/api/v1/reports/summary", unit=p.code, **march)
        c1_march = await _get(auditor, "/api/v1/reports/summary", unit=p.c1, **march)
        # open at the end of March: b, c2a, r (past due), and c3's open, paused and late dossiers
        assert (province_march["pending_total"], province_march["pending_paused"], province_march["pending_overdue"]) == (6, 1, 5)
        c3_march = await _get(auditor, "/api/v1/reports/summary", unit=p.c3, **march)
        assert (c3_march["carried_over"], c3_march["pending_paused"], c3_march["pending_overdue"]) == (3, 1, 2)
        merged = {"code": p.c3, "name": "Xã Nam Định", "tier": "commune", "parent": p.code, "valid_from": "2025-07-01",
                  "valid_to": "2026-02-28", "successor": p.c1}  # fmt: skip
        handed = []
        for key in ("open", "paused", "late"):
            code = p.codes[key]
            handed.append(CaseHandedOver(dossier_code=code, unit=p.c1, occurred_at=at("2026-03-02", 8), from_unit=p.c3))
        await produce(reporting, UnitMerged(province=p.code, code=p.c3, into=p.c1, effective=date(2026, 3, 1), unit=merged,
                                            occurred_at=at("2026-02-20")), *handed)  # fmt: skip

        async def merged_in() -> dict | None:
            body = await _get(auditor, "/api/v1/reports/summary", unit=p.c1, **march)
            return body if body["carried_over"] == c1_march["carried_over"] + 3 else None

        c1_after = await eventually(merged_in, timeout=60, interval=0.3)
        assert (c1_after["pending_paused"], c1_after["pending_overdue"]) == (c1_march["pending_paused"] + 1, c1_march["pending_overdue"] + 2)
        # no dossier lost or counted twice: the province's months are what they were, and March is its communes' sum
        assert _counts(await _get(auditor, "/api/v1/reports/summary", unit=p.code, **february)) == _counts(province_february)
        after = await _get(auditor, "/api/v1/reports/summary", unit=p.code, **march)
        assert _counts(after) == _counts(province_march)
        c2_march = await _get(auditor, "/api/v1/reports/summary", unit=p.c2, **march)
        assert _counts(after) == _sum(c1_after, c2_march)
        late = await _get(auditor, "/api/v1/reports/late", unit=p.c1, **march)
        assert p.codes["late"] in {r["code"] for r in late["data"]}
    # the successor's officials now read the merged unit's reports
    async with reporting.client("reporting", "leader", units=[p.c1]) as successor:
        assert (await _get(successor, "/api/v1/reports/summary", unit=p.c3, **february))["received_total"] == 3


def _province_points(p: Province) -> dict:
    national = shipped_book().in_force(date(2026, 2, 1))
    indicators = {k: v.model_dump() for k, v in national.indicators.items()}
    indicators["PROGRESS_ON_TIME"]["max_points"] = 10
    indicators["ONLINE_DOSSIERS"]["max_points"] = 22
    version = RuleVersion(scope=p.code, version=1, regime="nd118-2025", effective_from=date(2026, 2, 1),
                          title="Điểm chỉ số 766 của tỉnh", indicators=indicators)  # fmt: skip
    return dump_version(version)


async def test_a_province_publishing_other_points_changes_the_766_scores_only_from_its_date(reporting: Stack, province: Province) -> None:
    p = province
    async with reporting.client("reporting", "leader", units=[p.code]) as leader:
        before = await _get(leader, "/api/v1/reports/index-766", unit=p.code, month="2026-02")
        assert before["rules"] == "VN.2"
        await produce(reporting, RulesPublished(scope=p.code, version=1, effective_from=date(2026, 2, 1), document=_province_points(p),
                                                occurred_at=at("2026-01-20")))  # fmt: skip

        async def published() -> dict | None:
            body = await _get(leader, "/api/v1/reports/index-766", unit=p.code, month="2026-02")
            return body if body["rules"] == f"VN.2+{p.code}.1" else None

        february = await eventually(published, timeout=60, interval=0.3)
        january = await _get(leader, "/api/v1/reports/index-766", unit=p.code, month="2026-01")
    maximum = lambda body: {i["code"]: i["max_points"] for i in body["indicators"]}  # noqa: E731
    assert january["rules"] == "VN.2" and maximum(january)["PROGRESS_ON_TIME"] == 20 and maximum(january)["ONLINE_DOSSIERS"] == 12
    assert maximum(february)["PROGRESS_ON_TIME"] == 10 and maximum(february)["ONLINE_DOSSIERS"] == 22
    assert maximum(before)["PROGRESS_ON_TIME"] == 20
    # the same dossiers, other points: on time earns half as much (points are rounded to 2 decimals)
    progress = {i["code"]: i for i in february["indicators"]}["PROGRESS_ON_TIME"]
    earlier = {i["code"]: i for i in before["indicators"]}["PROGRESS_ON_TIME"]
    assert (progress["numerator"], progress["denominator"]) == (earlier["numerator"], earlier["denominator"])
    assert progress["points"] == pytest.approx(earlier["points"] / 2, abs=0.01) and progress["points"] < earlier["points"]
    # another province's months are untouched (the override is this province's)
    async with reporting.client("reporting", "auditor", units=["*"]) as auditor:
        other = await _get(auditor, "/api/v1/reports/index-766", unit="000.00.01.H01", month="2026-02")
    assert other["rules"] == "VN.2"
