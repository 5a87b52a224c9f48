"""Reports follow the units of their period: a scope resolved against the unit registry (districts until 30 June 2025,
communes since, a merge), token coverage through the registry, and the register's lines by the rules in force."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.reporting import domain
from shared.events import CaseTransferReturned
from shared.rules import shipped_book
from shared.units import AdminUnit, UnitRegistry

VN = ZoneInfo("Asia/Ho_Chi_Minh")
PROVINCE = "H77"
DISTRICT = "000.00.01.H77"  # until 30 June 2025
OLD_COMMUNE = "000.05.01.H77"  # a commune of the district, until 30 June 2025
WARD = "000.00.21.H77"  # communes of the two-tier province, from 1 July 2025
VILLAGE = "000.00.22.H77"
LAST_DISTRICT_DAY, FIRST_COMMUNE_DAY = date(2025, 6, 30), date(2025, 7, 1)


def registry(*, merged: bool = False) -> UnitRegistry:
    units = UnitRegistry([
        AdminUnit(code=PROVINCE, name="Tỉnh Thử Nghiệm", tier="province"),
        AdminUnit(code=DISTRICT, name="Huyện Cũ", tier="district", parent=PROVINCE, valid_to=LAST_DISTRICT_DAY),
        AdminUnit(code=OLD_COMMUNE, name="Xã Cũ", tier="commune", parent=DISTRICT, valid_to=LAST_DISTRICT_DAY),
        AdminUnit(code=WARD, name="Phường Mới", tier="commune", parent=PROVINCE, valid_from=FIRST_COMMUNE_DAY),
        AdminUnit(code=VILLAGE, name="Xã Mới", tier="commune", parent=PROVINCE, valid_from=FIRST_COMMUNE_DAY),
    ])  # fmt: skip
    if merged:
        units, _ = units.merge(VILLAGE, WARD, date(2026, 3, 1))
    return units


def test_a_districts_2025_q1_report_covers_the_district_and_its_communes_of_then() -> None:
    scope = domain.resolve_scope(DISTRICT, registry(), date(2025, 1, 1), date(2025, 3, 31))
    assert scope.units == {DISTRICT, OLD_COMMUNE} and scope.provinces == {PROVINCE} and scope.province == PROVINCE
    assert scope.pattern is None and scope.unit is None


def test_a_provinces_2026_month_is_its_communes_and_a_2025_h1_quarter_its_districts() -> None:
    in_2026 = domain.resolve_scope(PROVINCE, registry(), date(2026, 1, 1), date(2026, 1, 31))
    assert in_2026.units == {PROVINCE, WARD, VILLAGE}
    in_2025_q1 = domain.resolve_scope(PROVINCE, registry(), date(2025, 1, 1), date(2025, 3, 31))
    assert in_2025_q1.units == {PROVINCE, DISTRICT, OLD_COMMUNE}
    # a period across the reform covers both tiers: each dossier counts once, under the unit it was received for
    across = domain.resolve_scope(PROVINCE, registry(), date(2025, 6, 1), date(2025, 7, 31))
    assert across.units == {PROVINCE, DISTRICT, OLD_COMMUNE, WARD, VILLAGE}


def test_the_successor_of_a_merge_reports_the_merged_units_dossiers_and_the_merged_unit_its_own() -> None:
    units = registry(merged=True)
    assert domain.resolve_scope(WARD, units, date(2026, 3, 1), date(2026, 3, 31)).units == {WARD, VILLAGE}
    assert domain.resolve_scope(VILLAGE, units, date(2026, 2, 1), date(2026, 2, 28)).units == {VILLAGE}
    assert domain.resolve_scope(WARD, registry(), date(2026, 3, 1), date(2026, 3, 31)).units == {WARD}  # before the merge


def test_a_code_the_registry_does_not_know_keeps_its_qcvn_pattern() -> None:
    scope = domain.resolve_scope("000.00.12.H56", registry(), date(2026, 1, 1), date(2026, 1, 31))
    assert scope.units is None and scope == domain.parse_scope("000.00.12.H56")
    receiving = domain.resolve_scope("000.00.12.H56", registry(), date(2026, 1, 1), date(2026, 1, 31), "receiving")
    assert receiving.attribution == "receiving" and receiving.pattern == scope.pattern


def test_a_token_covers_the_units_the_registry_puts_under_it() -> None:
    units = registry(merged=True)
    march = (date(2026, 3, 1), date(2026, 3, 31))
    village = domain.resolve_scope(VILLAGE, units, *march)
    # the ward's code pattern (000.00.21: everything of group 21) does not reach the village (group 22): the merge does
    assert not domain.scope_covers(domain.parse_scope(WARD), domain.parse_scope(VILLAGE))
    assert domain.token_covers([WARD], village, units, *march)
    assert not domain.token_covers([VILLAGE], domain.resolve_scope(WARD, units, *march), units, *march)
    assert not domain.token_covers([WARD], village, None, *march)  # without the registry: the code pattern only
    assert not domain.token_covers([WARD], domain.resolve_scope(VILLAGE, registry(), *march), registry(), *march)
    assert domain.token_covers([PROVINCE], village, units, *march) and domain.token_covers(["*"], village, units, *march)
    # a unit outside the registry, named under another province, is not covered
    other = domain.resolve_scope("000.00.01.H99", units, *march)
    assert not domain.token_covers([PROVINCE], other, units, *march)


def test_a_late_inter_agency_step_is_blamed_on_its_agency() -> None:
    fact = domain.new_fact(f"{WARD}-260105-0001", WARD)
    returned = datetime(2026, 1, 9, 10, tzinfo=VN)
    late = CaseTransferReturned(dossier_code=fact.code, unit=WARD, occurred_at=returned, from_agency="Chi cục Thuế",
                                step_late=True, step_due_at=datetime(2026, 1, 8, 17, tzinfo=VN), step_no=2)  # fmt: skip
    folded = domain.fold(fact, late)
    assert folded.late_steps == (domain.LateStep("Chi cục Thuế", returned, 2, datetime(2026, 1, 8, 17, tzinfo=VN)),)
    on_time = CaseTransferReturned(dossier_code=fact.code, unit=WARD, occurred_at=returned, from_agency="Công an", step_late=False)
    assert domain.fold(fact, on_time).late_steps == ()


def test_the_registers_number_status_names_and_notes_come_from_the_rules_in_force() -> None:
    book = shipped_book()
    assert book.in_force(date(2025, 6, 30)).form("register").number == "06"
    assert book.in_force(date(2026, 1, 31)).form("register").number == "07"
    period = domain.month_period(date(2026, 1, 1))
    t = lambda d, h=9: datetime(2026, 1, d, h, tzinfo=VN)  # noqa: E731
    rows = [
        {"code": "A", "unit": WARD, "procedure_name": "Đăng ký khai sinh", "applicant_name": "Nguyễn Thị Ánh", "received_at": t(5),
         "due_at_original": t(8), "result_at": t(7), "closed_at": t(7), "close_kind": "result", "returned_at": t(9)},
        {"code": "B", "unit": WARD, "receiving_unit": VILLAGE, "procedure_name": "Chứng thực", "applicant_name": "Trần Văn Bình",
         "received_at": t(6), "due_at_original": t(7), "closed_at": t(8), "close_kind": "withdrawn", "late_at": t(7, 17)},
        {"code": "C", "unit": WARD, "procedure_name": "Cấp phép", "applicant_name": "Lê Đức", "received_at": t(20),
         "due_at_original": datetime(2026, 2, 20, 17, tzinfo=VN), "paused": True, "late_step": True},
    ]  # fmt: skip
    lines = domain.register_lines(rows, period, book.in_force(period.last))
    assert [line.number for line in lines] == [1, 2, 3]
    assert [line.status for line in lines] == ["Đã trả kết quả", "Công dân yêu cầu rút hồ sơ", "Yêu cầu bổ sung giấy tờ"]
    assert lines[0].note == "" and lines[0].finished_at == t(7) and lines[0].returned_at == t(9)
    assert lines[1].note == f"Trễ hạn; Công dân rút hồ sơ; Tiếp nhận tại {VILLAGE}, xử lý tại {WARD}" and lines[1].finished_at is None
    assert lines[2].note == "Chờ bổ sung hồ sơ; Có bước liên thông trễ hạn" and lines[2].cells()[3] == "Lê Đức"
