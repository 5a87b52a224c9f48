"""The case's rules (DOMAIN.md §1.4–§1.9, §2, §9): state machine, clock, apology, transfers, gate, sweep."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.workflow import domain
from services.workflow.domain import Action, CaseState, CaseStatus
from shared.calendar import TimeLimit, TimeUnit, WorkingCalendar, due_at
from shared.clock import VN_TZ
from shared.events import (
    CaseApologyIssued,
    CaseAssigned,
    CaseClockResumed,
    CaseDeadlineWarning,
    CaseOverdue,
    CaseResultReady,
    CaseReturned,
    CaseSupplementRequested,
)
from shared.status import STATUS_NAMES

CAL = WorkingCalendar()
UNIT = "000.00.12.H56"


def vn(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    """An instant in Vietnam time."""
    return datetime(y, m, d, hh, mm, tzinfo=VN_TZ)


def close(y: int, m: int, d: int) -> datetime:
    """17:00 on a day: the deadline instant of a working-day limit."""
    return vn(y, m, d, 17, 0)


def received(at: datetime, limit: TimeLimit) -> dict[str, Any]:
    """The clock fields of a case accepted at ``at`` (the appointment as intake computes it)."""
    due = due_at(at, limit, CAL)
    return {"received_at": at, "due_at_original": due, "due_at": due, "appointment_at": due}


def make_case(**overrides: Any) -> CaseState:
    """A case in progress, received Mon 03/03/2025 09:00 with 10 working days (due Mon 17/03)."""
    values: dict[str, Any] = {
        "code": f"{UNIT}-250303-0001",
        "unit": UNIT,
        "status": CaseStatus.IN_PROGRESS,
        **received(vn(2025, 3, 3), TimeLimit(10, TimeUnit.WORKING_DAY)),
        "department": "Tư pháp",
        "assignee": "specialist-1",
        "holder_unit": "Tư pháp",
        "holder_officer": "specialist-1",
    }
    values.update(overrides)
    return CaseState(**values)


def after(state: CaseState, decision: domain.Decision) -> CaseState:
    """The state a decision leads to."""
    return state.evolve(decision.changes)


# ---- DOMAIN §2.5 worked examples, through the case's clock ---------------------------------------


def test_example_a_makeup_saturday_counts_for_the_case_and_its_steps() -> None:
    case = make_case(**received(vn(2025, 4, 24), TimeLimit(3, TimeUnit.WORKING_DAY)))
    assert case.due_at == close(2025, 4, 28)
    assert domain.classify_result(vn(2025, 4, 26, 10, 0), case) == "early"  # Sat 26/04 is a make-up working day
    assert domain.classify_result(vn(2025, 4, 28, 16, 0), case) == "on_time"
    assert domain.classify_result(vn(2025, 4, 29, 8, 0), case) == "late"
    step = domain.transfer(
        make_case(due_at=close(2025, 5, 30)), to_agency="000.00.01.H56", step_days=3, to_officer=None, note=None,
        by="leader-1", now=vn(2025, 4, 24), cal=CAL,
    )
    assert step.changes["transfer_step_due_at"] == close(2025, 4, 28)


def test_example_b_national_day_2025_is_skipped_by_a_step_deadline() -> None:
    decision = domain.transfer(
        make_case(due_at=close(2025, 9, 30)), to_agency="000.00.01.H56", step_days=5, to_officer=None, note=None,
        by="leader-1", now=vn(2025, 8, 27), cal=CAL,
    )
    assert decision.changes["transfer_step_due_at"] == close(2025, 9, 5)


def test_example_c_same_day_procedure_after_15h_is_due_monday_and_is_on_the_spot() -> None:
    case = make_case(status=CaseStatus.ACCEPTED, assignee=None, **received(vn(2025, 3, 7, 16, 10), TimeLimit(0, TimeUnit.SAME_DAY)))
    assert case.due_at == close(2025, 3, 10)
    assert domain.on_the_spot_eligible(case, CAL)
    assert domain.classify_result(vn(2025, 3, 10, 9, 0), case) == "on_time"
    assert domain.classify_result(vn(2025, 3, 7, 16, 30), case) == "early"


def test_example_d_supplement_pauses_and_resumes_the_clock() -> None:
    case = make_case()
    assert case.due_at == close(2025, 3, 17)
    requested = domain.request_supplement(
        case, reason="Thiếu giấy chứng sinh", items=["Giấy chứng sinh"], by="specialist-1", now=vn(2025, 3, 6, 10, 0), cal=CAL
    )
    paused = after(case, requested)
    assert paused.status is CaseStatus.SUPPLEMENT_REQUESTED
    assert paused.remaining_working_days == 7  # 04, 05, 06/03 used
    assert domain.NATIONAL_STATUS[paused.status] == 5
    resumed = domain.receive_supplement(paused, supplemented_at=vn(2025, 3, 12, 10, 0), now=vn(2025, 3, 12, 10, 0), cal=CAL)
    running = after(paused, resumed)
    assert running.status is CaseStatus.IN_PROGRESS
    assert running.due_at == close(2025, 3, 21)
    assert running.due_at_original == close(2025, 3, 17)  # the receipt's appointment never moves
    (event,) = resumed.events
    assert isinstance(event, CaseClockResumed) and event.due_at == close(2025, 3, 21)
    assert domain.classify_result(vn(2025, 3, 20, 10, 0), running) == "early"
    assert domain.classify_result(vn(2025, 3, 21, 16, 0), running) == "on_time"


def test_example_e_tet_2026_is_skipped_when_the_clock_resumes() -> None:
    case = make_case(**received(vn(2026, 2, 12), TimeLimit(3, TimeUnit.WORKING_DAY)))
    assert case.due_at == close(2026, 2, 24)
    # Paused on Thu 12/02 itself: all 3 working days are left; back on Mon 23/02 → 24, 25, 26/02.
    paused = after(case, domain.request_supplement(case, reason="r", items=[], by="s", now=vn(2026, 2, 12, 15, 0), cal=CAL))
    assert paused.remaining_working_days == 3
    running = after(paused, domain.receive_supplement(paused, supplemented_at=vn(2026, 2, 23, 8, 0), now=vn(2026, 2, 23, 8, 0), cal=CAL))
    assert running.due_at == close(2026, 2, 26)


def test_example_f_fifteen_working_days_over_the_2024_swap() -> None:
    case = make_case(**received(vn(2024, 4, 25), TimeLimit(15, TimeUnit.WORKING_DAY)))
    assert case.due_at == close(2024, 5, 20)
    assert domain.feedback_due_at(vn(2024, 4, 25), 15, CAL) == close(2024, 5, 20)


# ---- the state machine ---------------------------------------------------------------------------


def test_every_status_has_its_national_code() -> None:
    assert {domain.NATIONAL_STATUS[s] for s in CaseStatus} == set(range(2, 11))
    assert all(code in STATUS_NAMES for code in domain.NATIONAL_STATUS.values())


def test_an_action_the_state_does_not_allow_names_the_ones_it_does() -> None:
    case = make_case(status=CaseStatus.DONE)
    with pytest.raises(domain.ActionNotAllowed) as refused:
        domain.approve(case, by="leader-1", note=None, now=vn(2025, 3, 10))
    assert refused.value.allowed == sorted({Action.RETURN_RESULT, Action.WITHDRAW, Action.EXPLAIN_DELAY})


def test_closed_cases_allow_no_processing() -> None:
    for status in domain.FINAL:
        assert not ALLOWED_PROCESSING & domain.ALLOWED[status]


ALLOWED_PROCESSING = {Action.ASSIGN, Action.APPROVE, Action.REQUEST_SUPPLEMENT, Action.TRANSFER, Action.RETURN_RESULT}


def test_assignment_starts_processing_and_hands_the_dossier_over() -> None:
    case = make_case(status=CaseStatus.ACCEPTED, department=None, assignee=None, holder_unit=UNIT, holder_officer="clerk-1")
    decision = domain.assign(case, department="Tư pháp", assignee="specialist-2", by="leader-1", now=vn(2025, 3, 3, 10))
    state = after(case, decision)
    assert state.status is CaseStatus.IN_PROGRESS and domain.NATIONAL_STATUS[state.status] == 4
    assert (state.holder_unit, state.holder_officer) == ("Tư pháp", "specialist-2")
    (step,) = decision.handovers
    assert (step.from_unit, step.from_officer, step.to_unit, step.to_officer) == (UNIT, "clerk-1", "Tư pháp", "specialist-2")
    assert isinstance(decision.events[0], CaseAssigned)


def test_assignment_needs_someone_to_assign_to() -> None:
    with pytest.raises(domain.InvalidInput) as refused:
        domain.assign(make_case(), department=None, assignee=None, by="leader-1", now=vn(2025, 3, 4))
    assert refused.value.field == "assignee"


def test_withdrawal_closes_an_open_case_and_leaves_a_returned_one_alone() -> None:
    assert after(make_case(), domain.withdraw(make_case(), reason="rút", now=vn(2025, 3, 4))).status is CaseStatus.WITHDRAWN
    assert domain.withdraw(make_case(status=CaseStatus.RETURNED), reason=None, now=vn(2025, 3, 4)).empty


def test_refusal_is_a_result_judged_against_the_deadline() -> None:
    decision = domain.reject(make_case(), reason="Không đủ điều kiện", by="leader-1", now=vn(2025, 3, 18))
    state = after(make_case(), decision)
    assert state.status is CaseStatus.REJECTED and domain.NATIONAL_STATUS[state.status] == 3
    assert state.timeliness == "late" and state.is_late


# ---- the clock's rules ---------------------------------------------------------------------------


def test_a_second_supplement_request_is_allowed_but_marks_the_dossier_late() -> None:
    first = make_case(supplement_count=1)
    decision = domain.request_supplement(first, reason="lần 2", items=[], by="specialist-1", now=vn(2025, 3, 10), cal=CAL)
    state = after(first, decision)
    assert state.is_late and state.late_reason == "second_supplement"
    assert (state.late_holder_unit, state.late_holder_officer) == ("Tư pháp", "specialist-1")
    (event,) = decision.events
    assert isinstance(event, CaseSupplementRequested) and event.supplement_number == 2 and event.marks_late
    # finished well before the deadline, it still counts as late (766 indicator 2.1)
    assert domain.classify_result(vn(2025, 3, 11), state) == "late"


def test_a_supplement_request_after_the_deadline_finds_the_dossier_late() -> None:
    case = make_case()
    state = after(case, domain.request_supplement(case, reason="r", items=[], by="s", now=vn(2025, 3, 18), cal=CAL))
    assert state.is_late and state.late_reason == "overdue" and state.remaining_working_days == 0


def test_the_first_request_in_time_is_lawful() -> None:
    case = make_case()
    decision = domain.request_supplement(case, reason="r", items=["a"], by="s", now=vn(2025, 3, 5), cal=CAL)
    assert not after(case, decision).is_late and not decision.events[0].marks_late


def test_a_new_deadline_after_resuming_gets_its_own_warning() -> None:
    paused = make_case(status=CaseStatus.SUPPLEMENT_REQUESTED, paused_at=vn(2025, 3, 14), remaining_working_days=1,
                       warning_sent_at=vn(2025, 3, 14))
    decision = domain.receive_supplement(paused, supplemented_at=vn(2025, 3, 20), now=vn(2025, 3, 20), cal=CAL)
    assert decision.changes["due_at"] == close(2025, 3, 21) and decision.changes["warning_sent_at"] is None


def test_additions_handed_in_before_the_request_resume_from_the_request() -> None:
    paused = make_case(status=CaseStatus.SUPPLEMENT_REQUESTED, paused_at=vn(2025, 3, 6, 10), remaining_working_days=7)
    decision = domain.receive_supplement(paused, supplemented_at=vn(2025, 3, 5), now=vn(2025, 3, 6, 11), cal=CAL)
    assert decision.changes["due_at"] == close(2025, 3, 17)


def test_classification_is_against_the_vietnamese_calendar_day() -> None:
    case = make_case()
    assert domain.classify_result(close(2025, 3, 17), case) == "on_time"
    assert domain.classify_result(close(2025, 3, 17) + timedelta(microseconds=1), case) == "late"
    assert domain.classify_result(vn(2025, 3, 14, 16, 59), case) == "early"


def test_stopped_while_waiting_for_additions_is_judged_at_the_request_time() -> None:
    paused = make_case(status=CaseStatus.SUPPLEMENT_REQUESTED, paused_at=vn(2025, 3, 6, 10), remaining_working_days=7)
    decision = domain.stop(paused, reason="Công dân không bổ sung", by="leader-1", now=vn(2025, 5, 1))
    state = after(paused, decision)
    assert state.status is CaseStatus.STOPPED and domain.NATIONAL_STATUS[state.status] == 8
    assert state.finished_at == vn(2025, 3, 6, 10) and state.timeliness == "early"


# ---- apology (Form 04) and explanation ----------------------------------------------------------------


def test_an_apology_one_working_day_ahead_is_timely_and_sets_the_new_date_once() -> None:
    case = make_case()  # due Mon 17/03 17:00
    decision = domain.issue_apology(
        case, reason="Chờ xác minh", new_appointment_at=close(2025, 3, 20), by="leader-1", now=vn(2025, 3, 14, 16), cal=CAL
    )
    state = after(case, decision)
    assert state.due_at_rescheduled == close(2025, 3, 20) and state.due_at == close(2025, 3, 17)
    (event,) = decision.events
    assert isinstance(event, CaseApologyIssued) and event.timely is True and event.deadline_at == close(2025, 3, 17)
    with pytest.raises(domain.RuleViolation) as again:
        domain.issue_apology(state, reason="lần 2", new_appointment_at=close(2025, 3, 25), by="l", now=vn(2025, 3, 15), cal=CAL)
    assert again.value.slug == "apology-already-issued"


def test_an_apology_on_the_deadline_day_is_recorded_as_late() -> None:
    decision = domain.issue_apology(
        make_case(), reason="r", new_appointment_at=close(2025, 3, 20), by="l", now=vn(2025, 3, 17, 8), cal=CAL
    )
    assert decision.changes["apology_timely"] is False


def test_an_apology_counts_working_days_across_the_reunification_holidays() -> None:
    # Due Mon 05/05/2025: Tue 29/04 leaves 05/05 ahead (30/04, 01/05 holidays, 02/05 swapped off) → timely.
    case = make_case(due_at=close(2025, 5, 5), due_at_original=close(2025, 5, 5))
    timely = domain.issue_apology(case, reason="r", new_appointment_at=close(2025, 5, 9), by="l", now=vn(2025, 4, 29), cal=CAL)
    assert timely.changes["apology_timely"] is True
    sunday = domain.issue_apology(case, reason="r", new_appointment_at=close(2025, 5, 9), by="l", now=vn(2025, 5, 4), cal=CAL)
    assert sunday.changes["apology_timely"] is True  # Sunday 04/05: Monday is still a working day ahead
    monday = domain.issue_apology(case, reason="r", new_appointment_at=close(2025, 5, 9), by="l", now=vn(2025, 5, 5), cal=CAL)
    assert monday.changes["apology_timely"] is False


def test_the_new_appointment_must_come_after_the_deadline() -> None:
    with pytest.raises(domain.InvalidInput) as refused:
        domain.issue_apology(make_case(), reason="r", new_appointment_at=close(2025, 3, 17), by="l", now=vn(2025, 3, 10), cal=CAL)
    assert refused.value.field == "new_appointment_at"


def test_an_apology_never_turns_a_late_dossier_into_an_on_time_one() -> None:
    case = make_case()
    state = after(case, domain.issue_apology(case, reason="r", new_appointment_at=close(2025, 3, 24), by="l", now=vn(2025, 3, 12), cal=CAL))
    assert domain.classify_result(vn(2025, 3, 20), state) == "late"  # before the new date, after the deadline


def test_only_a_late_dossier_is_explained_and_the_explanation_names_its_holder() -> None:
    with pytest.raises(domain.RuleViolation) as refused:
        domain.explain_delay(make_case(), text="…", by="s", now=vn(2025, 3, 10))
    assert refused.value.slug == "not-late"
    decision = domain.explain_delay(make_case(), text="Chờ UBND huyện", by="specialist-1", now=vn(2025, 3, 18))
    state = after(make_case(), decision)
    assert state.explained_at == vn(2025, 3, 18) and state.is_late
    assert decision.events[0].holder_officer == "specialist-1"
    with pytest.raises(domain.RuleViolation):
        domain.explain_delay(state, text="again", by="s", now=vn(2025, 3, 19))


# ---- inter-agency steps -----------------------------------------------------------------------------


def test_a_transfer_step_has_its_own_deadline_and_the_agency_holds_the_case() -> None:
    case = make_case()
    decision = domain.transfer(case, to_agency="000.00.01.H56", step_days=2, to_officer="cb-huyen", note="xác minh",
                               by="specialist-1", now=vn(2025, 3, 4, 10), cal=CAL)
    state = after(case, decision)
    assert state.status is CaseStatus.TRANSFERRED and domain.NATIONAL_STATUS[state.status] == 4
    assert state.transfer_step_due_at == close(2025, 3, 6)
    assert (state.holder_unit, state.holder_officer) == ("000.00.01.H56", "cb-huyen")
    assert decision.handovers[0].step_due_at == close(2025, 3, 6)
    back = domain.return_transfer(state, by="clerk-1", note=None, now=vn(2025, 3, 7, 9))
    assert back.events[0].step_late is True
    returned = after(state, back)
    assert returned.status is CaseStatus.IN_PROGRESS and returned.holder_unit == "Tư pháp"


def test_a_step_may_not_outrun_the_case_deadline() -> None:
    with pytest.raises(domain.InvalidInput) as refused:
        domain.transfer(make_case(), to_agency="000.00.01.H56", step_days=20, to_officer=None, note=None, by="s",
                        now=vn(2025, 3, 4), cal=CAL)
    assert refused.value.field == "step_days"


def test_overdue_while_transferred_names_the_other_agency() -> None:
    case = make_case(status=CaseStatus.TRANSFERRED, holder_unit="000.00.01.H56", holder_officer="cb-huyen")
    now = vn(2025, 3, 18, 8)
    decision = domain.sweep(case, now=now, horizon=domain.warning_horizon(now, 8, CAL))
    state = after(case, decision)
    assert (state.late_holder_unit, state.late_holder_officer) == ("000.00.01.H56", "cb-huyen")
    (event,) = decision.events
    assert isinstance(event, CaseOverdue) and event.holder_unit == "000.00.01.H56" and event.holder == "cb-huyen"


# ---- the result gate and the return -------------------------------------------------------------------


def test_approval_without_a_signature_waits_and_says_so() -> None:
    state = after(make_case(), domain.approve(make_case(), by="leader-1", note=None, now=vn(2025, 3, 10)))
    assert state.status is CaseStatus.APPROVED and domain.gate_missing(state) == ["signature"]


def test_signed_but_unpaid_waits_for_payment_in_status_6_then_finishes() -> None:
    case = make_case(signed_at=vn(2025, 3, 10), fee_due=True)
    approval = domain.approve(case, by="leader-1", note=None, now=vn(2025, 3, 10, 10))
    state = after(case, approval)
    assert state.status is CaseStatus.AWAITING_PAYMENT and domain.NATIONAL_STATUS[state.status] == 6
    assert [type(e).__name__ for e in approval.events] == ["CaseApproved", "CasePaymentAwaited"]
    paid = state.evolve({"paid_at": vn(2025, 3, 11)})
    decision = domain.advance_result(paid, now=vn(2025, 3, 11, 9))
    done = after(paid, decision)
    assert done.status is CaseStatus.DONE and done.finished_at == vn(2025, 3, 11, 9) and done.timeliness == "early"
    assert isinstance(decision.events[0], CaseResultReady) and decision.events[0].due_at == close(2025, 3, 17)


def test_approval_of_a_signed_dossier_without_fee_finishes_it() -> None:
    case = make_case(signed_at=vn(2025, 3, 10))
    decision = domain.approve(case, by="leader-1", note=None, now=vn(2025, 3, 17, 16))
    assert [type(e).__name__ for e in decision.events] == ["CaseApproved", "CaseResultReady"]
    assert after(case, decision).timeliness == "on_time"


def test_a_postal_return_needs_a_tracking_number_and_keeps_both_times() -> None:
    done = make_case(status=CaseStatus.DONE, finished_at=vn(2025, 3, 12), timeliness="early")
    with pytest.raises(domain.InvalidInput) as refused:
        domain.return_result(done, channel="postal", tracking_number=None, by="clerk-1", now=vn(2025, 3, 14))
    assert refused.value.field == "tracking_number"
    decision = domain.return_result(done, channel="postal", tracking_number="EB123456789VN", by="clerk-1", now=vn(2025, 3, 20))
    (event,) = decision.events
    assert isinstance(event, CaseReturned)
    assert event.finished_at == vn(2025, 3, 12) and event.returned_at == vn(2025, 3, 20) and event.timeliness == "early"
    assert after(done, decision).status is CaseStatus.RETURNED


# ---- 4 tại chỗ ---------------------------------------------------------------------------------------


def _spot_case(**overrides: Any) -> CaseState:
    base = make_case(
        status=CaseStatus.ACCEPTED, department=None, assignee=None, holder_unit=UNIT, holder_officer="clerk-1",
        on_the_spot=True, signed_at=vn(2025, 3, 3, 9, 20), **received(vn(2025, 3, 3, 9), TimeLimit(0, TimeUnit.SAME_DAY)),
    )
    return base.evolve(overrides)


def test_on_the_spot_goes_2_4_9_10_in_one_sitting() -> None:
    decision = domain.on_the_spot(_spot_case(), officer="clerk-1", channel="counter", now=vn(2025, 3, 3, 9, 30), cal=CAL)
    kinds = [type(e).__name__ for e in decision.events]
    assert kinds == ["CaseAssigned", "CaseApproved", "CaseResultReady", "CaseReturned"]
    state = after(_spot_case(), decision)
    assert state.status is CaseStatus.RETURNED and state.timeliness == "on_time"
    assert decision.events[-1].on_the_spot is True


def test_on_the_spot_refuses_another_day_a_closed_gate_and_other_procedures() -> None:
    with pytest.raises(domain.RuleViolation) as next_day:
        domain.on_the_spot(_spot_case(), officer="clerk-1", channel="counter", now=vn(2025, 3, 4, 8), cal=CAL)
    assert next_day.value.slug == "not-same-day"
    with pytest.raises(domain.RuleViolation) as unsigned:
        domain.on_the_spot(_spot_case(signed_at=None), officer="clerk-1", channel="counter", now=vn(2025, 3, 3, 10), cal=CAL)
    assert unsigned.value.slug == "result-gate-closed" and unsigned.value.details["missing"] == ["signature"]
    with pytest.raises(domain.RuleViolation) as flagged_off:
        domain.on_the_spot(_spot_case(on_the_spot=False), officer="clerk-1", channel="counter", now=vn(2025, 3, 3, 10), cal=CAL)
    assert flagged_off.value.slug == "not-on-the-spot"
    with pytest.raises(domain.RuleViolation) as someone_else:
        domain.on_the_spot(_spot_case(assignee="specialist-9", status=CaseStatus.IN_PROGRESS), officer="clerk-1",
                           channel="counter", now=vn(2025, 3, 3, 10), cal=CAL)
    assert someone_else.value.slug == "not-assignee"


def test_without_the_flag_a_limit_over_one_working_day_is_not_on_the_spot() -> None:
    assert not domain.on_the_spot_eligible(make_case(on_the_spot=None), CAL)  # 10 working days
    assert domain.on_the_spot_eligible(make_case(on_the_spot=None, **received(vn(2025, 3, 3), TimeLimit(1, TimeUnit.WORKING_DAY))), CAL)


# ---- the deadline sweep -----------------------------------------------------------------------------


def test_the_warning_horizon_counts_office_hours_over_the_weekend() -> None:
    # Fri 16:00 + 8 office hours: 1 h on Friday, 7 h from Monday 07:30 → Monday 14:30.
    assert domain.warning_horizon(vn(2025, 3, 7, 16), 8, CAL) == vn(2025, 3, 10, 14, 30)


def test_a_warning_then_an_overdue_notice_each_once() -> None:
    case = make_case()  # due Mon 17/03 17:00
    early = vn(2025, 3, 13, 9)
    assert domain.sweep_verdict(case, now=early, horizon=domain.warning_horizon(early, 8, CAL)) is None
    near = vn(2025, 3, 17, 9, 30)  # 8 office hours ahead reach Tuesday 08:00
    decision = domain.sweep(case, now=near, horizon=domain.warning_horizon(near, 8, CAL))
    assert isinstance(decision.events[0], CaseDeadlineWarning)
    warned = after(case, decision)
    assert domain.sweep(warned, now=near, horizon=domain.warning_horizon(near, 8, CAL)).empty
    late = vn(2025, 3, 17, 17, 1)
    overdue = domain.sweep(warned, now=late, horizon=domain.warning_horizon(late, 8, CAL))
    marked = after(warned, overdue)
    assert isinstance(overdue.events[0], CaseOverdue) and marked.is_late and marked.late_at == close(2025, 3, 17)
    assert domain.sweep(marked, now=late, horizon=domain.warning_horizon(late, 8, CAL)).empty


def test_a_paused_or_closed_case_is_not_swept() -> None:
    now = vn(2025, 3, 20)
    horizon = domain.warning_horizon(now, 8, CAL)
    for status in (CaseStatus.SUPPLEMENT_REQUESTED, CaseStatus.DONE, CaseStatus.RETURNED, CaseStatus.WITHDRAWN):
        assert domain.sweep_verdict(make_case(status=status), now=now, horizon=horizon) is None


def test_a_case_found_past_its_deadline_gets_only_the_overdue_notice() -> None:
    now = vn(2025, 3, 20)
    decision = domain.sweep(make_case(), now=now, horizon=domain.warning_horizon(now, 8, CAL))
    assert [type(e).__name__ for e in decision.events] == ["CaseOverdue"]


# ---- ratings and feedback --------------------------------------------------------------------------------


def test_the_rating_link_is_signed_per_dossier() -> None:
    signature = domain.rating_signature("s3cret", "A-1")
    assert domain.rating_link_valid("s3cret", "A-1", signature)
    assert not domain.rating_link_valid("s3cret", "A-2", signature)
    assert not domain.rating_link_valid("other", "A-1", signature)
    assert not domain.rating_link_valid("s3cret", "A-1", "")


def test_a_rating_comes_once_and_after_return() -> None:
    with pytest.raises(domain.ActionNotAllowed):
        domain.rate(make_case(status=CaseStatus.DONE))
    domain.rate(make_case(status=CaseStatus.RETURNED))
    with pytest.raises(domain.RuleViolation) as again:
        domain.rate(make_case(status=CaseStatus.RETURNED, rated_at=vn(2025, 3, 20)))
    assert again.value.slug == "already-rated"


def test_feedback_is_answered_within_15_working_days_over_tet() -> None:
    due = domain.feedback_due_at(vn(2026, 2, 10, 10), 15, CAL)
    assert due == close(2026, 3, 10)  # Tết 16-20/02/2026 off
    assert domain.classify_answer(vn(2026, 3, 10, 16), due) == "on_time"
    assert domain.classify_answer(vn(2026, 3, 11, 8), due) == "late"
