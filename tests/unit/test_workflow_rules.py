"""Workflow under the law in force (issue 16): each case follows the rules recorded at its reception.

Pure parts: the counting rules taken from a rule set (supplement requests, pause or restart, apology lead time and
re-sets), the catalog's inter-agency step plan, a late step blamed on its agency, a merged unit's hand-over, the
calendar in the rules' office hours, and the forms printed in the dossier's version.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, time
from typing import Any

import pytest

from services.workflow import calendars, domain, pages, printing, store
from services.workflow.domain import CaseState, CaseStatus
from services.workflow.handlers import rules_of
from shared.calendar import TimeLimit, TimeUnit, WorkingCalendar, due_at, resume_due_at
from shared.clock import VN_TZ
from shared.events import CaseHandedOver, CaseOverdue, CaseTransferred, CaseTransferReturned
from shared.rules import FormSpec, OfficeHours, shipped_book

CAL = WorkingCalendar()
UNIT = "000.00.12.H56"
BOOK = shipped_book()
OLD, NEW = BOOK.by_ref("VN.1"), BOOK.by_ref("VN.2")
PLAN = [{"agency": "Công an huyện", "amount": 3, "unit": "WORKING_DAY"}, {"agency": "Chi cục Thuế", "amount": 2, "unit": "WORKING_DAY"}]


def vn(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=VN_TZ)


def make_case(**overrides: Any) -> CaseState:
    """A case in progress, received Mon 02/03/2026 09:00 with 10 working days (due Mon 16/03 17:00)."""
    due = due_at(vn(2026, 3, 2), TimeLimit(10, TimeUnit.WORKING_DAY), CAL)
    values: dict[str, Any] = {
        "code": f"{UNIT}-260302-0001",
        "unit": UNIT,
        "status": CaseStatus.IN_PROGRESS,
        "received_at": vn(2026, 3, 2),
        "due_at_original": due,
        "due_at": due,
        "appointment_at": due,
        "department": "Tư pháp",
        "assignee": "cb-1",
        "holder_unit": "Tư pháp",
        "holder_officer": "cb-1",
    }
    values.update(overrides)
    return CaseState(**values)


# ---- counting rules from the rule set ---------------------------------------------------------------------------


def test_the_rules_decide_how_many_supplement_requests_are_lawful() -> None:
    once = make_case(supplement_count=1)
    strict = domain.request_supplement(once, reason="Thiếu", items=[], by="cb-1", now=vn(2026, 3, 4), cal=CAL, max_requests=1)
    assert strict.changes["is_late"] and strict.changes["late_reason"] == "second_supplement"
    lenient = domain.request_supplement(once, reason="Thiếu", items=[], by="cb-1", now=vn(2026, 3, 4), cal=CAL, max_requests=2)
    assert "is_late" not in lenient.changes and lenient.changes["supplement_count"] == 2


def test_pause_keeps_the_days_left_and_restart_gives_the_whole_time_again() -> None:
    paused = make_case(status=CaseStatus.SUPPLEMENT_REQUESTED, paused_at=vn(2026, 3, 12), remaining_working_days=2)
    back = vn(2026, 3, 20, 10)
    kept = domain.receive_supplement(paused, supplemented_at=back, now=back, cal=CAL, supplement="pause")
    again = domain.receive_supplement(paused, supplemented_at=back, now=back, cal=CAL, supplement="restart")
    assert kept.changes["due_at"] == resume_due_at(back, 2, CAL)  # Tue 24/03
    assert domain.full_working_days(paused, CAL) == 10
    assert again.changes["due_at"] == resume_due_at(back, 10, CAL)  # Fri 03/04
    assert again.events[0].remaining_working_days == 10 and kept.events[0].remaining_working_days == 2


def test_the_apology_lead_time_comes_from_the_rules() -> None:
    deadline = vn(2026, 3, 16, 17)
    assert domain.apology_is_timely(vn(2026, 3, 13, 16), deadline, CAL, 1)  # Friday before Monday's deadline
    assert not domain.apology_is_timely(vn(2026, 3, 13, 16), deadline, CAL, 2)
    assert domain.apology_is_timely(vn(2026, 3, 16, 16), deadline, CAL, 0)  # none: by the deadline itself
    assert not domain.apology_is_timely(vn(2026, 3, 16, 18), deadline, CAL, 0)


def test_the_rules_decide_how_often_an_apology_re_sets_the_appointment() -> None:
    case = make_case()
    first = domain.issue_apology(
        case, reason="Chờ xác minh", new_appointment_at=vn(2026, 3, 20, 17), by="cb-1", now=vn(2026, 3, 10), cal=CAL
    )
    after = case.evolve(first.changes)
    assert after.apology_count == 1
    with pytest.raises(domain.RuleViolation) as refused:
        domain.issue_apology(after, reason="Lần nữa", new_appointment_at=vn(2026, 3, 27, 17), by="cb-1", now=vn(2026, 3, 11), cal=CAL)
    assert refused.value.slug == "apology-already-issued"
    with pytest.raises(domain.InvalidInput):  # a second re-set must move the date beyond the first one
        domain.issue_apology(
            after, reason="Lần nữa", new_appointment_at=vn(2026, 3, 18, 17), by="cb-1", now=vn(2026, 3, 11), cal=CAL, max_reschedules=2
        )
    second = domain.issue_apology(
        after, reason="Lần nữa", new_appointment_at=vn(2026, 3, 27, 17), by="cb-1", now=vn(2026, 3, 11), cal=CAL, max_reschedules=2
    )
    assert second.changes["apology_count"] == 2 and second.changes["due_at_rescheduled"] == vn(2026, 3, 27, 17)
    # a case apologised for before the count existed counts as one re-set
    legacy = make_case(apology_issued_at=vn(2026, 3, 9), due_at_rescheduled=vn(2026, 3, 20, 17))
    with pytest.raises(domain.RuleViolation):
        domain.issue_apology(legacy, reason="x", new_appointment_at=vn(2026, 3, 27, 17), by="cb-1", now=vn(2026, 3, 11), cal=CAL)


# ---- the catalog's step plan ----------------------------------------------------------------------------------


def _transfer(state: CaseState, **given: Any) -> domain.Decision:
    values: dict[str, Any] = {"to_agency": None, "step_days": None, "to_officer": None, "note": None}
    return domain.transfer(state, **(values | given), by="cb-1", now=vn(2026, 3, 3), cal=CAL)


def test_a_transfer_without_agency_and_days_takes_the_next_planned_step() -> None:
    case = make_case(step_plan=PLAN)
    first = _transfer(case)
    event = first.events[0]
    assert isinstance(event, CaseTransferred)
    assert (event.to_agency, event.step_days, event.step_no, event.adjusted_reason) == ("Công an huyện", 3, 1, None)
    assert event.step_due_at == vn(2026, 3, 6, 17)
    assert first.handovers[0].step_no == 1 and first.handovers[0].planned_days == 3
    back = case.evolve(first.changes).evolve(domain.return_transfer(case.evolve(first.changes), by="x", note=None, now=vn(2026, 3, 5)).changes)
    second = domain.transfer(back, to_agency=None, step_days=None, to_officer=None, note=None, by="cb-1", now=vn(2026, 3, 5), cal=CAL)
    assert (second.events[0].to_agency, second.events[0].step_no) == ("Chi cục Thuế", 2)
    done = back.evolve(second.changes)
    assert done.planned_steps_sent == 2 and domain.next_planned_step(done) is None


def test_changing_the_planned_step_needs_a_reason() -> None:
    case = make_case(step_plan=PLAN)
    for given in ({"step_days": 5}, {"to_agency": "Sở Tư pháp"}, {"to_agency": "Sở Tư pháp", "step_days": 3}):
        with pytest.raises(domain.InvalidInput) as refused:
            _transfer(case, **given)
        assert refused.value.field == "adjusted_reason"
    same = _transfer(case, to_agency="Công an huyện", step_days=3, adjusted_reason="không đổi")
    assert same.events[0].adjusted_reason is None  # as planned: nothing to explain
    changed = _transfer(case, step_days=5, adjusted_reason="Cần xác minh thực địa")
    event = changed.events[0]
    assert (event.to_agency, event.step_days, event.step_no, event.adjusted_reason) == ("Công an huyện", 5, 1, "Cần xác minh thực địa")
    assert changed.handovers[0].adjusted_reason == "Cần xác minh thực địa"


def test_without_a_plan_the_officer_names_agency_and_days() -> None:
    case = make_case()
    with pytest.raises(domain.InvalidInput) as refused:
        _transfer(case, step_days=2)
    assert refused.value.field == "to_agency"
    with pytest.raises(domain.InvalidInput) as refused:
        _transfer(case, to_agency="Sở Tư pháp")
    assert refused.value.field == "step_days"
    typed = _transfer(case, to_agency="Sở Tư pháp", step_days=2).events[0]
    assert (typed.to_agency, typed.step_days, typed.step_no) == ("Sở Tư pháp", 2, None)


def test_a_late_step_is_blamed_on_the_agency_that_held_it() -> None:
    case = make_case(step_plan=PLAN)
    out = case.evolve(_transfer(case).changes)  # due back Fri 06/03 17:00
    back = domain.return_transfer(out, by="cb-1", note=None, now=vn(2026, 3, 9, 10))
    returned = back.events[0]
    assert isinstance(returned, CaseTransferReturned)
    assert (returned.from_agency, returned.step_late, returned.step_no) == ("Công an huyện", True, 1)
    assert returned.step_due_at == vn(2026, 3, 6, 17)
    home = out.evolve(back.changes)
    assert home.late_step_agency == "Công an huyện" and not home.is_late  # the dossier itself is not late yet
    assert home.holder_unit == "Tư pháp"
    overdue = domain.sweep(home, now=vn(2026, 3, 17, 8), horizon=vn(2026, 3, 18))
    event = overdue.events[0]
    assert isinstance(event, CaseOverdue) and (event.holder_unit, event.holder) == ("Công an huyện", None)
    assert (overdue.changes["late_holder_unit"], overdue.changes["late_holder_officer"]) == ("Công an huyện", None)


def test_a_step_back_late_after_the_deadline_makes_the_dossier_late_on_the_agency() -> None:
    case = make_case(step_plan=[{"agency": "Công an huyện", "amount": 8, "unit": "WORKING_DAY"}])
    out = case.evolve(_transfer(case).changes)
    back = domain.return_transfer(out, by="cb-1", note=None, now=vn(2026, 3, 17, 9))  # after the case's 16/03 deadline
    assert back.changes["is_late"] and back.changes["late_holder_unit"] == "Công an huyện"
    assert back.changes["late_reason"] == "step_late"


# ---- unit merges ----------------------------------------------------------------------------------------------


def test_a_merged_units_open_case_moves_with_its_deadlines_and_a_closed_one_stays() -> None:
    at_unit = make_case(holder_unit=UNIT, holder_officer=None, status=CaseStatus.SUPPLEMENT_REQUESTED, is_late=True)
    moved = domain.hand_over_unit(at_unit, into="000.00.99.H56", now=vn(2026, 3, 5))
    assert moved.changes == {"unit": "000.00.99.H56", "holder_unit": "000.00.99.H56"}
    event = moved.events[0]
    assert isinstance(event, CaseHandedOver) and (event.unit, event.from_unit, event.reason) == ("000.00.99.H56", UNIT, "unit_merged")
    assert "due_at" not in moved.changes and not moved.handovers
    in_department = domain.hand_over_unit(make_case(), into="000.00.99.H56", now=vn(2026, 3, 5))
    assert in_department.changes == {"unit": "000.00.99.H56"}
    assert domain.hand_over_unit(make_case(status=CaseStatus.RETURNED), into="000.00.99.H56", now=vn(2026, 3, 5)).empty
    there = make_case().evolve(in_department.changes)
    assert domain.hand_over_unit(there, into="000.00.99.H56", now=vn(2026, 3, 6)).empty  # not moved twice


# ---- the rules of a case, its calendar --------------------------------------------------------------------------


def _row(**values: Any) -> store.Case:
    base: dict[str, Any] = {
        "code": f"{UNIT}-250630-0001", "unit": UNIT, "procedure_code": "1.004194", "procedure_name": "Đăng ký khai sinh",
        "applicant_name": "Trần Văn Bình", "channel": "counter", "status": "in_progress", "received_at": vn(2025, 6, 30, 16),
    }  # fmt: skip
    return store.Case(**(base | values))


def test_a_case_keeps_its_recorded_rules_and_an_old_case_gets_those_of_its_reception() -> None:
    assert rules_of(BOOK, _row(rules="VN.1", received_at=vn(2026, 12, 1))).ref == "VN.1"
    assert rules_of(BOOK, _row(rules=None, received_at=vn(2025, 6, 30, 16))).ref == "VN.1"
    assert rules_of(BOOK, _row(rules=None, received_at=vn(2025, 7, 1, 9))).ref == "VN.2"
    assert rules_of(BOOK, _row(rules="VN.9", received_at=vn(2025, 7, 1, 9))).ref == "VN.2"  # unknown here yet: the date
    assert rules_of(BOOK, _row(rules=None, received_at=vn(2017, 1, 3))).ref == "VN.1"  # before any: the first


def test_the_calendar_takes_the_office_hours_of_the_rules() -> None:
    assert calendars.with_hours(CAL, OLD.office) is CAL
    late_office = OfficeHours(opens=time(8), closes=time(17, 30), cutoff=time(16))
    cal = calendars.with_hours(CAL.with_declared_days([(vn(2026, 3, 6).date(), False, "Lễ hội")]), late_office)
    assert (cal.start_of_day, cal.end_of_day, cal.cutoff) == (time(8), time(17, 30), time(16))
    assert not cal.is_working(vn(2026, 3, 6).date())  # the province's declared day stays
    assert due_at(vn(2026, 3, 2), TimeLimit(4, TimeUnit.WORKING_DAY), cal) == vn(2026, 3, 9, 17, 30)  # Fri 06/03 off


# ---- forms in the dossier's version ----------------------------------------------------------------------------


def _ctx(rules: Any) -> printing.FormContext:
    return printing.FormContext(one_stop_name="Bộ phận Một cửa", unit_names={UNIT: "UBND XÃ AN BÌNH"}, lookup_url="https://x/y", rules=rules)


def _apologised(**values: Any) -> store.Case:
    return _row(
        apology_issued_at=vn(2025, 7, 8), apology_reason="Chờ xác minh", apology_by="cb-1",
        due_at=vn(2025, 7, 10, 17), due_at_rescheduled=vn(2025, 7, 15, 17), **values,
    )  # fmt: skip


def _pdf_text(pdf: bytes, tmp_path: Any) -> str:
    path = tmp_path / "form.pdf"
    path.write_bytes(pdf)
    return " ".join(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout.split())


def test_form_04_and_the_control_slip_follow_the_dossiers_regime(tmp_path: Any) -> None:
    old = printing.apology_form(_apologised(rules="VN.1"), _ctx(OLD))
    new = printing.apology_form(_apologised(rules="VN.2"), _ctx(NEW))
    assert old is not None and new is not None
    assert (old.number, old.title) == ("04", "Phiếu xin lỗi và hẹn lại ngày trả kết quả")
    assert (new.number, new.title) == ("04", "Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết")
    text = _pdf_text(printing.render_apology(new), tmp_path)
    assert "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN" in text.upper() and "Mẫu số 04" in text
    assert printing.control_slip_form(_row(), [], _ctx(OLD)).number == "05"
    assert printing.control_slip_form(_row(), [], _ctx(NEW)).number == "06"


def test_form_02_takes_number_and_title_from_the_dossiers_rules() -> None:
    asked = _row(supplement_requested_at=vn(2025, 7, 2), supplement_reason="Thiếu tờ khai", supplement_requested_by="cb-1")
    amended = NEW.model_copy(update={"forms": NEW.forms | {"supplement": FormSpec(number="02", title="Phiếu đề nghị bổ sung hồ sơ")}})
    form = printing.supplement_request_form(asked, _ctx(amended))
    assert form is not None and (form.number, form.title) == ("02", "Phiếu đề nghị bổ sung hồ sơ")
    assert printing.supplement_request_form(asked, _ctx(OLD)).title == "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ"  # type: ignore[union-attr]


def test_the_stop_notice_exists_only_from_circular_03_2025(tmp_path: Any) -> None:
    stopped = _row(status="stopped", closed_at=vn(2025, 7, 9, 10), closed_reason="Người nộp không bổ sung hồ sơ", closed_by="ld-1")
    assert printing.stop_notice_form(stopped, _ctx(OLD)) is None
    assert printing.stop_notice_form(_row(), _ctx(NEW)) is None  # not stopped
    form = printing.stop_notice_form(stopped, _ctx(NEW))
    assert form is not None and (form.number, form.title, form.unit) == ("05", "Thông báo dừng giải quyết hồ sơ", "UBND XÃ AN BÌNH")
    text = _pdf_text(printing.render_stop_notice(form), tmp_path)
    for expected in ("THÔNG BÁO DỪNG GIẢI QUYẾT HỒ SƠ", f"{UNIT}-250630-0001", "TRẦN VĂN BÌNH", "Người nộp không bổ sung hồ sơ", "ld-1"):
        assert expected.upper() in text.upper(), expected


def test_the_applicants_page_names_the_apology_as_the_dossiers_rules_do() -> None:
    assert pages.apology_line(OLD) == "Gửi phiếu xin lỗi và hẹn lại ngày trả kết quả"
    assert pages.apology_line(NEW) == "Gửi văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết"
