"""Case rules (DOMAIN.md §1.4–§1.9, §2, §9). Pure: no I/O, no clock, no framework.

Every command is a function ``state + input -> Decision`` (column changes, hand-overs for the
tracking slip, events) or a named domain error. The handlers load the state, call one function
and write what it decided in one unit of work.

Three deadlines live on a case (DOMAIN §2.1 rules 5 and 7):

- ``due_at_original``: the appointment of the receipt (Form 01); never changes;
- ``due_at``: the legal deadline the case is judged by: ``due_at_original``, moved only by the
  lawful supplement pause (the clock stops at the request and resumes with the working days left);
- ``due_at_rescheduled``: the new date of an apology (Form 04), shown to the applicant and never
  used to judge timeliness, so an apology cannot turn a late dossier into an on-time one.

What the law leaves to its rule set (``shared.rules``: the version recorded at reception) comes in as
arguments: the calendar in the rules' office hours, how many supplement requests are lawful and what a
supplement does to the clock, the apology's lead time and how often it may re-set the appointment.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from shared.calendar import (
    Classification,
    TimeLimit,
    TimeUnit,
    WorkingCalendar,
    classify,
    due_at,
    remaining_working_days,
    resume_due_at,
)
from shared.events import (
    CaseApologyIssued,
    CaseApproved,
    CaseAssigned,
    CaseClockResumed,
    CaseDeadlineWarning,
    CaseDelayExplained,
    CaseHandedOver,
    CaseOverdue,
    CasePaymentAwaited,
    CaseRejected,
    CaseResultReady,
    CaseReturned,
    CaseStopped,
    CaseSupplementRequested,
    CaseTransferred,
    CaseTransferReturned,
    Event,
)
from shared.status import NationalStatus

ReturnChannel = Literal["counter", "postal", "online"]
SupplementPolicy = Literal["pause", "restart"]


class CaseStatus(StrEnum):
    """The case's state."""

    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    TRANSFERRED = "transferred"
    APPROVED = "approved"
    AWAITING_PAYMENT = "awaiting_payment"
    DONE = "done"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"
    STOPPED = "stopped"
    REJECTED = "rejected"


# The national status (TrangThaiHoSo) each case status counts as.
NATIONAL_STATUS: dict[CaseStatus, NationalStatus] = {
    CaseStatus.ACCEPTED: NationalStatus.ACCEPTED,
    CaseStatus.REJECTED: NationalStatus.NOT_ACCEPTED,
    CaseStatus.IN_PROGRESS: NationalStatus.PROCESSING,
    CaseStatus.TRANSFERRED: NationalStatus.PROCESSING,  # an inter-agency step is still processing
    CaseStatus.APPROVED: NationalStatus.PROCESSING,  # decided; the signed result (and the fee) not there yet
    CaseStatus.SUPPLEMENT_REQUESTED: NationalStatus.SUPPLEMENT_REQUESTED,
    CaseStatus.AWAITING_PAYMENT: NationalStatus.AWAITING_PAYMENT,
    CaseStatus.WITHDRAWN: NationalStatus.WITHDRAWN,
    CaseStatus.STOPPED: NationalStatus.STOPPED,
    CaseStatus.DONE: NationalStatus.RESOLVED,
    CaseStatus.RETURNED: NationalStatus.RETURNED,
}

FINAL = frozenset({CaseStatus.RETURNED, CaseStatus.WITHDRAWN, CaseStatus.STOPPED, CaseStatus.REJECTED})
# Open and running: the deadline sweep watches these (a paused case is not running).
RUNNING = frozenset(
    {CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS, CaseStatus.TRANSFERRED, CaseStatus.APPROVED, CaseStatus.AWAITING_PAYMENT}
)


class Action(StrEnum):
    """What can happen to a case (HTTP commands and consumed events)."""

    ASSIGN = "assign"
    REQUEST_SUPPLEMENT = "request_supplement"
    RECEIVE_SUPPLEMENT = "receive_supplement"
    TRANSFER = "transfer"
    RETURN_TRANSFER = "return_transfer"
    APPROVE = "approve"
    REJECT = "reject"
    STOP = "stop"
    WITHDRAW = "withdraw"
    ISSUE_APOLOGY = "issue_apology"
    EXPLAIN_DELAY = "explain_delay"
    RETURN_RESULT = "return_result"
    ON_THE_SPOT = "on_the_spot"
    RATE = "rate"


_A = Action
ALLOWED: dict[CaseStatus, frozenset[Action]] = {
    CaseStatus.ACCEPTED: frozenset(
        {_A.ASSIGN, _A.TRANSFER, _A.STOP, _A.WITHDRAW, _A.ISSUE_APOLOGY, _A.EXPLAIN_DELAY, _A.ON_THE_SPOT}
    ),
    CaseStatus.IN_PROGRESS: frozenset(
        {
            _A.ASSIGN,
            _A.REQUEST_SUPPLEMENT,
            _A.TRANSFER,
            _A.APPROVE,
            _A.REJECT,
            _A.STOP,
            _A.WITHDRAW,
            _A.ISSUE_APOLOGY,
            _A.EXPLAIN_DELAY,
            _A.ON_THE_SPOT,
        }
    ),
    CaseStatus.SUPPLEMENT_REQUESTED: frozenset(
        {_A.RECEIVE_SUPPLEMENT, _A.REJECT, _A.STOP, _A.WITHDRAW, _A.EXPLAIN_DELAY}
    ),
    CaseStatus.TRANSFERRED: frozenset({_A.RETURN_TRANSFER, _A.STOP, _A.WITHDRAW, _A.ISSUE_APOLOGY, _A.EXPLAIN_DELAY}),
    CaseStatus.APPROVED: frozenset({_A.STOP, _A.WITHDRAW, _A.ISSUE_APOLOGY, _A.EXPLAIN_DELAY}),
    CaseStatus.AWAITING_PAYMENT: frozenset({_A.STOP, _A.WITHDRAW, _A.ISSUE_APOLOGY, _A.EXPLAIN_DELAY}),
    CaseStatus.DONE: frozenset({_A.RETURN_RESULT, _A.WITHDRAW, _A.EXPLAIN_DELAY}),
    CaseStatus.RETURNED: frozenset({_A.RATE, _A.EXPLAIN_DELAY}),
    CaseStatus.WITHDRAWN: frozenset(),
    CaseStatus.STOPPED: frozenset({_A.EXPLAIN_DELAY}),
    CaseStatus.REJECTED: frozenset({_A.EXPLAIN_DELAY}),
}


# ---- errors ---------------------------------------------------------------------------------


class DomainError(Exception):
    """A command the rules refuse; ``slug`` is the stable problem type."""

    slug = "domain-rule"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ActionNotAllowed(DomainError):
    """The case's state does not allow the action."""

    slug = "action-not-allowed"

    def __init__(self, status: CaseStatus, action: Action, allowed: Iterable[Action]) -> None:
        self.status, self.action, self.allowed = status, action, sorted(allowed)
        super().__init__(f"A case in status {status.value!r} does not allow {action.value!r}.")


class RuleViolation(DomainError):
    """The state allows the action but a rule refuses this instance of it."""

    def __init__(self, slug: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.slug = slug
        self.details = details


class InvalidInput(DomainError):
    """One input field breaks a rule that only the domain can check."""

    slug = "validation-error"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


# ---- state and decisions ---------------------------------------------------------------------


@dataclass(frozen=True)
class CaseState:
    """What the rules need to know about a case (the row plus the result-gate facts)."""

    code: str
    unit: str
    status: CaseStatus
    received_at: datetime
    due_at_original: datetime | None
    due_at: datetime | None
    appointment_at: datetime | None = None
    due_at_rescheduled: datetime | None = None
    channel: str = "counter"
    received_by: str | None = None
    receiving_unit: str | None = None
    on_the_spot: bool | None = None
    fee_due: bool = False
    department: str | None = None
    assignee: str | None = None
    holder_unit: str | None = None
    holder_officer: str | None = None
    transfer_agency: str | None = None
    transfer_step_due_at: datetime | None = None
    transfer_step_no: int | None = None
    rules: str | None = None
    step_plan: list[dict[str, Any]] | None = None
    planned_steps_sent: int = 0
    late_step_agency: str | None = None
    apology_count: int = 0
    supplement_count: int = 0
    paused_at: datetime | None = None
    remaining_working_days: int | None = None
    is_late: bool = False
    late_reason: str | None = None
    late_at: datetime | None = None
    late_holder_unit: str | None = None
    late_holder_officer: str | None = None
    apology_issued_at: datetime | None = None
    explained_at: datetime | None = None
    approved_at: datetime | None = None
    signed_at: datetime | None = None
    paid_at: datetime | None = None
    pending_payments: tuple[str, ...] = ()  # requested fees not confirmed yet, by payment id
    finished_at: datetime | None = None
    timeliness: str | None = None
    returned_at: datetime | None = None
    warning_sent_at: datetime | None = None
    overdue_sent_at: datetime | None = None
    rated_at: datetime | None = None
    version: int = 1

    def evolve(self, changes: dict[str, Any]) -> CaseState:
        """The state after these column changes (unknown columns are the store's business)."""
        known = {k: v for k, v in changes.items() if k in self.__dataclass_fields__}
        if "status" in known:
            known["status"] = CaseStatus(known["status"])
        return replace(self, **known)

    @property
    def home_unit(self) -> str:
        """The unit that processes the case (the event's ``unit``)."""
        return self.unit

    @property
    def one_stop(self) -> str:
        """The one-stop unit that received the dossier and returns the result."""
        return self.receiving_unit or self.unit


@dataclass(frozen=True)
class HandOver:
    """One row of the tracking slip (Form 05): who handed the dossier to whom, and the step deadline."""

    from_unit: str | None
    from_officer: str | None
    to_unit: str | None
    to_officer: str | None
    step_due_at: datetime | None = None
    note: str | None = None
    kind: str = "handover"
    final: bool = False  # the receiver is the applicant: the row is complete at once
    step_no: int | None = None  # an inter-agency step: its place in the catalog's plan
    planned_days: int | None = None
    adjusted_reason: str | None = None


@dataclass(frozen=True)
class Decision:
    """What a command decided: column changes, tracking-slip rows and events, in order."""

    changes: dict[str, Any] = field(default_factory=dict)
    handovers: tuple[HandOver, ...] = ()
    events: tuple[Event, ...] = ()

    def then(self, other: Decision) -> Decision:
        """This decision followed by another (later changes win)."""
        return Decision({**self.changes, **other.changes}, self.handovers + other.handovers, self.events + other.events)

    @property
    def empty(self) -> bool:
        """True when nothing changes."""
        return not (self.changes or self.handovers or self.events)


def allowed_actions(state: CaseState) -> list[Action]:
    """Actions the case's state allows, sorted."""
    return sorted(ALLOWED[state.status])


def require(state: CaseState, action: Action) -> None:
    """Refuse an action the state does not allow."""
    if action not in ALLOWED[state.status]:
        raise ActionNotAllowed(state.status, action, ALLOWED[state.status])


def _base(state: CaseState, now: datetime) -> dict[str, Any]:
    return {"dossier_code": state.code, "unit": state.unit, "occurred_at": now}


def _holder_changes(unit: str | None, officer: str | None) -> dict[str, Any]:
    return {"holder_unit": unit, "holder_officer": officer}


def _home_holder(state: CaseState) -> tuple[str, str | None]:
    """Where the case sits while its own unit works on it."""
    return state.department or state.home_unit, state.assignee


def _late_changes(state: CaseState, *, reason: str, at: datetime) -> dict[str, Any]:
    """Mark the case late once, with who answers for it (the accountability list, DOMAIN §8.3): the agency whose
    inter-agency step came back late, else whoever held the case at that moment."""
    if state.is_late:
        return {}
    if state.late_step_agency:
        holder_unit, holder_officer = state.late_step_agency, None
    else:
        holder_unit, holder_officer = state.holder_unit or state.home_unit, state.holder_officer
    return {
        "is_late": True,
        "late_reason": reason,
        "late_at": at,
        "late_holder_unit": holder_unit,
        "late_holder_officer": holder_officer,
    }


# ---- opening ---------------------------------------------------------------------------------


def opening_columns(
    *,
    code: str,
    unit: str,
    received_at: datetime,
    appointment_at: datetime | None,
    due_at_original: datetime | None,
    receiving_unit: str | None,
    received_by: str | None,
) -> dict[str, Any]:
    """Clock and holder of a case that has just been accepted (national status 2).

    The case is judged against the appointment of the receipt (NgayHenTra), as 766 does.
    """
    original = due_at_original or appointment_at
    return {
        "code": code,
        "unit": unit,
        "status": CaseStatus.ACCEPTED.value,
        "received_at": received_at,
        "appointment_at": appointment_at,
        "due_at_original": original,
        "due_at": original,
        "receiving_unit": receiving_unit,
        "holder_unit": receiving_unit or unit,
        "holder_officer": received_by,
    }


# ---- assignment ------------------------------------------------------------------------------


def assign(
    state: CaseState, *, department: str | None, assignee: str | None, by: str, now: datetime
) -> Decision:
    """The head of the unit (or the one-stop clerk) hands the case to a department and an officer."""
    require(state, Action.ASSIGN)
    if department is None and assignee is None:
        raise InvalidInput("assignee", "name a department, an officer or both")
    department = department if department is not None else state.department
    to_unit = department or state.home_unit
    changes = {
        "status": CaseStatus.IN_PROGRESS.value,
        "department": department,
        "assignee": assignee,
        "assigned_at": now,
        **_holder_changes(to_unit, assignee),
    }
    step = HandOver(state.holder_unit, state.holder_officer or by, to_unit, assignee, state.due_at, kind="assign")
    event = CaseAssigned(**_base(state, now), department=department, assignee=assignee)
    return Decision(changes, (step,), (event,))


# ---- the supplement loop and the clock ---------------------------------------------------------


def request_supplement(
    state: CaseState,
    *,
    reason: str,
    items: list[str],
    by: str,
    now: datetime,
    cal: WorkingCalendar,
    max_requests: int = 1,
) -> Decision:
    """Form 02 from appraisal: the clock pauses with the working days left (DOMAIN §1.5.2, §2.1.5).

    The rules allow ``max_requests`` requests (one under both shipped regimes); one more is recorded but
    marks the dossier late (766 indicator 2.1). A request made after the deadline also finds the dossier late.
    """
    require(state, Action.REQUEST_SUPPLEMENT)
    number = state.supplement_count + 1
    remaining = remaining_working_days(now, state.due_at, cal) if state.due_at else None
    late_reason = "second_supplement" if number > max_requests else ("overdue" if state.due_at and now > state.due_at else None)
    changes: dict[str, Any] = {
        "status": CaseStatus.SUPPLEMENT_REQUESTED.value,
        "supplement_count": number,
        "paused_at": now,
        "remaining_working_days": remaining,
        "supplement_requested_at": now,
        "supplement_reason": reason,
        "supplement_requested_by": by,
        "supplement_items": list(items),
        **_holder_changes(state.one_stop, None),
    }
    if late_reason:
        changes |= _late_changes(state, reason=late_reason, at=now)
    step = HandOver(
        state.holder_unit, state.holder_officer or by, state.one_stop, None, note="Form 02: " + reason, kind="supplement"
    )
    event = CaseSupplementRequested(
        **_base(state, now),
        reason=reason,
        requested_items=list(items),
        supplement_number=number,
        remaining_working_days=remaining,
        marks_late=late_reason is not None,
    )
    return Decision(changes, (step,), (event,))


def full_working_days(state: CaseState, cal: WorkingCalendar) -> int | None:
    """The case's whole processing time in working days: from the day its clock started to the receipt's appointment."""
    if state.due_at_original is None:
        return None
    start = cal.open_instant(state.received_at).date()
    return cal.working_days_between(start, cal.local(state.due_at_original).date())


def receive_supplement(
    state: CaseState,
    *,
    supplemented_at: datetime,
    now: datetime,
    cal: WorkingCalendar,
    supplement: SupplementPolicy = "pause",
) -> Decision:
    """The additions arrived: the clock resumes; the resume day is not counted.

    ``pause`` (the rules' supplement policy): with the working days that were left when it paused;
    ``restart``: with the case's whole processing time again, counted from the supplement.
    """
    require(state, Action.RECEIVE_SUPPLEMENT)
    resumed = max(supplemented_at, state.paused_at) if state.paused_at else supplemented_at
    days = state.remaining_working_days
    if supplement == "restart":
        days = full_working_days(state, cal) if state.due_at_original is not None else days
    new_due = resume_due_at(resumed, days, cal) if days is not None else state.due_at
    unit, officer = _home_holder(state)
    changes: dict[str, Any] = {
        "status": CaseStatus.IN_PROGRESS.value,
        "due_at": new_due,
        "paused_at": None,
        "remaining_working_days": None,
        "supplement_received_at": resumed,
        **_holder_changes(unit, officer),
    }
    if new_due and state.due_at and new_due > state.due_at:
        changes["warning_sent_at"] = None  # a new deadline gets its own warning
    step = HandOver(state.one_stop, None, unit, officer, new_due, note="supplement received", kind="resume")
    event = CaseClockResumed(
        **_base(state, now),
        supplemented_at=resumed,
        due_at=new_due,
        remaining_working_days=days,
    )
    return Decision(changes, (step,), (event,))


def is_late_now(state: CaseState, now: datetime) -> bool:
    """True when the case is late already or its running clock has passed the deadline."""
    if state.is_late or state.timeliness == "late":
        return True
    running = state.status in RUNNING
    return running and state.due_at is not None and now > state.due_at


def classify_result(finished_at: datetime, state: CaseState) -> Classification:
    """Early / on time / late at the end of processing, against the legal deadline (DOMAIN §2.4).

    A case already marked late (a second supplement request, an overdue deadline) stays late.
    """
    if state.is_late or state.due_at is None:
        return "late" if state.is_late else "on_time"
    return classify(finished_at, state.due_at)


# ---- inter-agency steps ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    """The next inter-agency step of the catalog's plan (``lien_thong_steps``): its number, agency and share of time."""

    number: int
    agency: str
    amount: int
    unit: TimeUnit = TimeUnit.WORKING_DAY

    @property
    def limit(self) -> TimeLimit:
        """The step's time limit (counted from the hand-over, no same-day cut-off)."""
        return TimeLimit(self.amount, self.unit, cutoff_rule=False)


def next_planned_step(state: CaseState) -> PlannedStep | None:
    """The plan's next step not sent yet, or None (no plan, or every planned step went out)."""
    plan = state.step_plan or []
    if state.planned_steps_sent >= len(plan):
        return None
    step = plan[state.planned_steps_sent]
    return PlannedStep(
        number=state.planned_steps_sent + 1,
        agency=str(step["agency"]),
        amount=int(step["amount"]),
        unit=TimeUnit(step.get("unit") or TimeUnit.WORKING_DAY),
    )


def transfer(
    state: CaseState,
    *,
    to_agency: str | None,
    step_days: int | None,
    to_officer: str | None,
    note: str | None,
    by: str,
    now: datetime,
    cal: WorkingCalendar,
    adjusted_reason: str | None = None,
) -> Decision:
    """Liên thông: the case goes to another agency with its own share of the time (DOMAIN §1.5.6).

    With a step plan from the catalog, the next planned step is taken: its agency and time unless the officer
    names others, which needs a reason (``adjusted_reason``). Without a plan, or once every planned step went out,
    the officer names the agency and the working days.
    """
    require(state, Action.TRANSFER)
    planned = next_planned_step(state)
    adjusted: str | None = None
    if planned is None:
        if to_agency is None:
            raise InvalidInput("to_agency", "the procedure has no planned inter-agency step left: name the agency")
        if step_days is None:
            raise InvalidInput("step_days", "the procedure has no planned inter-agency step left: name the step's working days")
        agency, limit = to_agency, TimeLimit(step_days, TimeUnit.WORKING_DAY, cutoff_rule=False)
    else:
        changed = []
        if to_agency is not None and to_agency != planned.agency:
            changed.append("to_agency")
        if step_days is not None and (planned.unit != TimeUnit.WORKING_DAY or step_days != planned.amount):
            changed.append("step_days")
        reason = (adjusted_reason or "").strip()
        if changed and not reason:
            raise InvalidInput(
                "adjusted_reason",
                f"step {planned.number} of the procedure's plan is {planned.agency!r} in {planned.amount} "
                f"{planned.unit.value.lower().replace('_', ' ')}(s); changing {' and '.join(changed)} needs a reason",
            )
        adjusted = reason if changed else None
        agency = to_agency if to_agency is not None else planned.agency
        limit = TimeLimit(step_days, TimeUnit.WORKING_DAY, cutoff_rule=False) if step_days is not None else planned.limit
    if limit.amount < 1 and limit.unit != TimeUnit.SAME_DAY:
        raise InvalidInput("step_days", "a step takes at least one working day")
    if agency in {state.home_unit, state.transfer_agency}:
        raise InvalidInput("to_agency", "the case is already with this agency")
    step_due = due_at(now, limit, cal)
    if state.due_at and step_due > state.due_at and not is_late_now(state, now):
        raise InvalidInput(
            "step_days",
            f"the step would end {step_due.isoformat()}, after the case's deadline {state.due_at.isoformat()}",
        )
    step_no = planned.number if planned is not None else None
    days = limit.amount if limit.unit == TimeUnit.WORKING_DAY else None
    changes: dict[str, Any] = {
        "status": CaseStatus.TRANSFERRED.value,
        "transfer_agency": agency,
        "transfer_step_due_at": step_due,
        "transfer_step_no": step_no,
        **_holder_changes(agency, to_officer),
    }
    if step_no is not None:
        changes["planned_steps_sent"] = step_no
    step = HandOver(
        state.holder_unit,
        state.holder_officer or by,
        agency,
        to_officer,
        step_due,
        note,
        kind="transfer",
        step_no=step_no,
        planned_days=planned.amount if planned is not None else None,
        adjusted_reason=adjusted,
    )
    event = CaseTransferred(
        **_base(state, now),
        to_agency=agency,
        step_due_at=step_due,
        step_days=days,
        from_unit=state.home_unit,
        step_no=step_no,
        adjusted_reason=adjusted,
    )
    return Decision(changes, (step,), (event,))


def return_transfer(state: CaseState, *, by: str, note: str | None, now: datetime) -> Decision:
    """The other agency handed its part back; its step was on time or late against its own deadline.

    A late step is the agency's to answer for: it is remembered (``late_step_agency``), so that when the dossier
    goes late, now or later, the accountability list names that agency rather than whoever holds the case then.
    """
    require(state, Action.RETURN_TRANSFER)
    step_late = state.transfer_step_due_at is not None and now > state.transfer_step_due_at
    unit, officer = _home_holder(state)
    changes: dict[str, Any] = {
        "status": CaseStatus.IN_PROGRESS.value,
        "transfer_agency": None,
        "transfer_step_due_at": None,
        "transfer_step_no": None,
        **_holder_changes(unit, officer),
    }
    if step_late and state.transfer_agency and not state.late_step_agency:
        changes["late_step_agency"] = state.transfer_agency
        if is_late_now(state, now):
            changes |= _late_changes(replace(state, late_step_agency=state.transfer_agency), reason="step_late", at=now)
    step = HandOver(state.transfer_agency, state.holder_officer or by, unit, officer, state.due_at, note, kind="transfer_return")
    event = CaseTransferReturned(
        **_base(state, now),
        from_agency=state.transfer_agency or "",
        step_late=step_late,
        step_due_at=state.transfer_step_due_at,
        step_no=state.transfer_step_no,
    )
    return Decision(changes, (step,), (event,))


# ---- decision, result gate, return -------------------------------------------------------------


def gate_missing(state: CaseState) -> list[str]:
    """What still holds the result back (DOMAIN §1.6.4, §9.3): approval, signature, payment."""
    missing = []
    if state.approved_at is None:
        missing.append("approval")
    if state.signed_at is None:
        missing.append("signature")
    if state.fee_due and state.paid_at is None:
        missing.append("payment")
    return missing


def advance_result(state: CaseState, *, now: datetime) -> Decision:
    """After approval, a signature or a payment: finish (status 9) when nothing is missing."""
    if state.status not in (CaseStatus.APPROVED, CaseStatus.AWAITING_PAYMENT):
        return Decision()
    missing = gate_missing(state)
    if not missing:
        timeliness = classify_result(now, state)
        changes: dict[str, Any] = {
            "status": CaseStatus.DONE.value,
            "finished_at": now,
            "timeliness": timeliness,
            **_holder_changes(state.one_stop, None),
        }
        if timeliness == "late":
            changes |= _late_changes(state, reason="finished_late", at=state.due_at or now)
        step = HandOver(state.holder_unit, state.holder_officer, state.one_stop, None, note="result ready", kind="result")
        event = CaseResultReady(**_base(state, now), finished_at=now, timeliness=timeliness, due_at=state.due_at)
        return Decision(changes, (step,), (event,))
    wanted = CaseStatus.AWAITING_PAYMENT if missing == ["payment"] else CaseStatus.APPROVED
    if wanted == state.status:
        return Decision()
    if wanted == CaseStatus.AWAITING_PAYMENT:
        return Decision({"status": wanted.value}, (), (CasePaymentAwaited(**_base(state, now)),))
    return Decision({"status": wanted.value})


def approve(state: CaseState, *, by: str, note: str | None, now: datetime) -> Decision:
    """The leader approves the result; it is ready once signed and, where a fee is due, paid."""
    require(state, Action.APPROVE)
    changes = {"status": CaseStatus.APPROVED.value, "approved_at": now, "approved_by": by, "decision_note": note}
    decided = Decision(changes, (), (CaseApproved(**_base(state, now), approved_by=by),))
    return decided.then(advance_result(state.evolve(changes), now=now))


def reject(state: CaseState, *, reason: str, by: str, now: datetime) -> Decision:
    """Refusal during processing (DOMAIN §1.5.4): a result too, judged against the deadline."""
    require(state, Action.REJECT)
    timeliness = classify_result(now, state)
    changes: dict[str, Any] = {
        "status": CaseStatus.REJECTED.value,
        "finished_at": now,
        "timeliness": timeliness,
        "closed_at": now,
        "closed_reason": reason,
        "closed_by": by,
        "paused_at": None,
    }
    if timeliness == "late":
        changes |= _late_changes(state, reason="finished_late", at=state.due_at or now)
    return Decision(changes, (), (CaseRejected(**_base(state, now), reason=reason, timeliness=timeliness),))


def stop(state: CaseState, *, reason: str, by: str, now: datetime) -> Decision:
    """Dừng xử lý (status 8). When the applicant never brought the additions, the request time is
    the end of processing and the case is judged from it (DOMAIN §2.1.5)."""
    require(state, Action.STOP)
    timeliness: Classification | None = None
    changes: dict[str, Any] = {
        "status": CaseStatus.STOPPED.value,
        "closed_at": now,
        "closed_reason": reason,
        "closed_by": by,
        "paused_at": None,
    }
    if state.status == CaseStatus.SUPPLEMENT_REQUESTED and state.paused_at is not None:
        timeliness = classify_result(state.paused_at, state)
        changes |= {"finished_at": state.paused_at, "timeliness": timeliness}
    return Decision(changes, (), (CaseStopped(**_base(state, now), reason=reason, timeliness=timeliness),))


def withdraw(state: CaseState, *, reason: str | None, now: datetime) -> Decision:
    """The applicant withdrew (intake's fact); a case already closed keeps its status."""
    if Action.WITHDRAW not in ALLOWED[state.status]:
        return Decision()
    return Decision(
        {"status": CaseStatus.WITHDRAWN.value, "closed_at": now, "closed_reason": reason, "paused_at": None}
    )


def return_result(
    state: CaseState,
    *,
    channel: ReturnChannel,
    tracking_number: str | None,
    by: str,
    now: datetime,
    on_the_spot: bool = False,
) -> Decision:
    """Trả kết quả (status 10): the return time is recorded apart from the end of processing."""
    require(state, Action.RETURN_RESULT)
    if channel == "postal" and not tracking_number:
        raise InvalidInput("tracking_number", "a postal return needs the postal tracking number")
    if channel != "postal" and tracking_number:
        raise InvalidInput("tracking_number", "only a postal return has a tracking number")
    changes = {
        "status": CaseStatus.RETURNED.value,
        "returned_at": now,
        "return_channel": channel,
        "tracking_number": tracking_number,
        "returned_by": by,
        "returned_on_the_spot": on_the_spot,
        **_holder_changes(None, None),
    }
    step = HandOver(state.one_stop, by, None, None, note=f"returned ({channel})", kind="return", final=True)
    event = CaseReturned(
        **_base(state, now),
        returned_at=now,
        return_channel=channel,
        timeliness=state.timeliness or classify_result(state.finished_at or now, state),
        finished_at=state.finished_at,
        tracking_number=tracking_number,
        on_the_spot=on_the_spot,
    )
    return Decision(changes, (step,), (event,))


# ---- 4 tại chỗ ---------------------------------------------------------------------------------


def on_the_spot_eligible(state: CaseState, cal: WorkingCalendar) -> bool:
    """The procedure is flagged on-the-spot; without the flag, a limit of at most one working day."""
    if state.on_the_spot is not None:
        return state.on_the_spot
    if state.due_at_original is None:
        return True  # "null only for results returned on the spot"
    received_day = cal.local(state.received_at).date()
    return cal.working_days_between(received_day, cal.local(state.due_at_original).date()) <= 1


def on_the_spot(
    state: CaseState, *, officer: str, channel: ReturnChannel, now: datetime, cal: WorkingCalendar
) -> Decision:
    """4 tại chỗ (DOMAIN §9.1): one officer receives, decides, signs and returns the same day: 2 → 4 → 9 → 10."""
    require(state, Action.ON_THE_SPOT)
    if not on_the_spot_eligible(state, cal):
        raise RuleViolation("not-on-the-spot", "The procedure is not handled on the spot.")
    if cal.local(now).date() != cal.local(state.received_at).date():
        raise RuleViolation("not-same-day", "On-the-spot handling must finish on the day of receipt.")
    if state.assignee not in (None, officer):
        raise RuleViolation("not-assignee", f"The case is assigned to {state.assignee!r}.")
    decision = Decision()
    current = state
    if current.status == CaseStatus.ACCEPTED or current.assignee is None:
        step = assign(current, department=current.department, assignee=officer, by=officer, now=now)
        decision, current = decision.then(step), current.evolve(step.changes)
    approval = approve(current, by=officer, note="4 tại chỗ", now=now)
    current = current.evolve(approval.changes)
    if current.status != CaseStatus.DONE:
        missing = gate_missing(current)
        raise RuleViolation(
            "result-gate-closed", f"The result cannot be returned yet: missing {', '.join(missing)}.", missing=missing
        )
    decision = decision.then(approval)
    returned = return_result(current, channel=channel, tracking_number=None, by=officer, now=now, on_the_spot=True)
    return decision.then(returned)


# ---- apology and explanation -------------------------------------------------------------------


def apology_is_timely(now: datetime, deadline: datetime, cal: WorkingCalendar, lead_working_days: int = 1) -> bool:
    """Form 04 is due no later than ``lead_working_days`` before the deadline (the rules' apology lead time; one
    working day under both shipped regimes, DOMAIN §1.5.5); with no lead time, by the deadline itself."""
    if lead_working_days <= 0:
        return now <= deadline
    return remaining_working_days(now, deadline, cal) >= lead_working_days


def issue_apology(
    state: CaseState,
    *,
    reason: str,
    new_appointment_at: datetime,
    by: str,
    now: datetime,
    cal: WorkingCalendar,
    lead_working_days: int = 1,
    max_reschedules: int = 1,
) -> Decision:
    """Form 04: a new appointment, as often as the rules allow (once under both shipped regimes); a late letter
    is recorded as late; the legal deadline stays."""
    require(state, Action.ISSUE_APOLOGY)
    issued = max(state.apology_count, 1 if state.apology_issued_at is not None else 0)
    if issued >= max_reschedules:
        times = "once" if max_reschedules == 1 else f"{max_reschedules} times"
        raise RuleViolation(
            "apology-already-issued",
            f"The appointment may be re-set only {times} under the rules of this dossier.",
            apology_issued_at=state.apology_issued_at.isoformat() if state.apology_issued_at else None,
            max_reschedules=max_reschedules,
        )
    deadline = state.due_at
    if deadline is None:
        raise RuleViolation("no-deadline", "The case has no deadline to apologise for.")
    if new_appointment_at <= max(now, deadline, state.due_at_rescheduled or deadline):
        raise InvalidInput(
            "new_appointment_at", f"must be after the current deadline {deadline.isoformat()}, any earlier new date, and in the future"
        )
    timely = apology_is_timely(now, deadline, cal, lead_working_days)
    changes = {
        "apology_count": issued + 1,
        "apology_issued_at": now,
        "apology_reason": reason,
        "apology_timely": timely,
        "apology_by": by,
        "due_at_rescheduled": new_appointment_at,
    }
    event = CaseApologyIssued(
        **_base(state, now), reason=reason, new_appointment_at=new_appointment_at, timely=timely, deadline_at=deadline
    )
    return Decision(changes, (), (event,))


def explain_delay(state: CaseState, *, text: str, by: str, now: datetime) -> Decision:
    """Báo cáo giải trình: every late dossier gets a written explanation to the head of the unit, once."""
    require(state, Action.EXPLAIN_DELAY)
    if not is_late_now(state, now):
        raise RuleViolation("not-late", "Only a late dossier needs an explanation.")
    if state.explained_at is not None:
        raise RuleViolation("explanation-already-recorded", "The explanation of this dossier is recorded already.")
    changes: dict[str, Any] = {"explanation": text, "explained_at": now, "explained_by": by}
    changes |= _late_changes(state, reason="overdue", at=state.due_at or now)
    holder_unit = changes.get("late_holder_unit", state.late_holder_unit)
    holder_officer = changes.get("late_holder_officer", state.late_holder_officer)
    event = CaseDelayExplained(
        **_base(state, now), explanation=text, holder_unit=holder_unit, holder_officer=holder_officer
    )
    return Decision(changes, (), (event,))


# ---- the deadline sweep ------------------------------------------------------------------------

SweepVerdict = Literal["warning", "overdue"]


def warning_horizon(now: datetime, threshold_working_hours: float, cal: WorkingCalendar) -> datetime:
    """A deadline at or before this instant is within the threshold of office hours from now."""
    return cal.add_working_hours(now, threshold_working_hours)


def sweep_verdict(state: CaseState, *, now: datetime, horizon: datetime) -> SweepVerdict | None:
    """Which deadline event a running case needs now, if any; each is sent once per case."""
    if state.status not in RUNNING or state.due_at is None:
        return None
    if state.due_at < now:
        return "overdue" if state.overdue_sent_at is None else None
    if state.warning_sent_at is None and state.due_at <= horizon:
        return "warning"
    return None


def sweep(state: CaseState, *, now: datetime, horizon: datetime) -> Decision:
    """The warning or overdue event, with its flag set in the same decision (so: exactly once)."""
    verdict = sweep_verdict(state, now=now, horizon=horizon)
    if verdict == "warning":
        return Decision({"warning_sent_at": now}, (), (CaseDeadlineWarning(**_base(state, now), due_at=state.due_at),))
    if verdict == "overdue":
        assert state.due_at is not None
        changes = {"overdue_sent_at": now, **_late_changes(state, reason="overdue", at=state.due_at)}
        holder_unit = changes.get("late_holder_unit", state.holder_unit or state.home_unit)
        holder = changes.get("late_holder_officer", state.holder_officer)
        event = CaseOverdue(**_base(state, now), due_at=state.due_at, holder=holder, holder_unit=holder_unit)
        return Decision(changes, (), (event,))
    return Decision()


# ---- unit merges ---------------------------------------------------------------------------------


def hand_over_unit(state: CaseState, *, into: str, now: datetime) -> Decision:
    """The case's unit was merged into ``into``: an open case moves there with its code, history and deadlines.

    Nothing for a closed case or one already there (a fact applied twice moves nothing twice).
    """
    if state.status in FINAL or state.unit == into:
        return Decision()
    changes: dict[str, Any] = {"unit": into}
    if state.holder_unit == state.unit:
        changes["holder_unit"] = into
    event = CaseHandedOver(dossier_code=state.code, unit=into, occurred_at=now, from_unit=state.unit)
    return Decision(changes, (), (event,))


# ---- ratings and citizen feedback -------------------------------------------------------------


def rating_signature(secret: str, code: str) -> str:
    """The signature of a dossier's public rating link: HMAC-SHA256 over the dossier code."""
    return hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()


def rating_link_valid(secret: str, code: str, signature: str) -> bool:
    """True when the link was signed with this secret for this dossier."""
    return hmac.compare_digest(rating_signature(secret, code).encode(), (signature or "").encode())  # bytes: any text compares


def rate(state: CaseState) -> None:
    """A rating is taken once per dossier, after the result went back (DOMAIN §1.7)."""
    require(state, Action.RATE)
    if state.rated_at is not None:
        raise RuleViolation("already-rated", "This dossier has been rated already.")


def can_rate(state: CaseState) -> bool:
    """True while the applicant may still rate the dossier: returned, and not rated yet."""
    return Action.RATE in ALLOWED[state.status] and state.rated_at is None


def feedback_due_at(submitted_at: datetime, working_days: int, cal: WorkingCalendar) -> datetime:
    """Deadline of an answer to citizen feedback (phản ánh, kiến nghị): N working days, receipt day not counted."""
    return due_at(submitted_at, TimeLimit(working_days, TimeUnit.WORKING_DAY, cutoff_rule=False), cal)


def classify_answer(answered_at: datetime, due: datetime) -> Classification:
    """Early / on time / late for an answer to feedback."""
    return classify(answered_at, due)
