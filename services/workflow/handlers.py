"""Workflow use cases: one async function per command or consumed event.

Each command loads the case, asks ``domain`` for a decision and writes it with ``apply``: the
column changes under optimistic locking (``UPDATE … WHERE version = :v``), the tracking-slip rows
and the outbox events, all in the caller's unit of work. Consumed events lock the row instead,
so they never lose a race against an officer; an officer who loses a race gets 409.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from services.workflow import domain, notifications, senders, store
from services.workflow.domain import CaseState, CaseStatus, Decision
from shared import forms
from shared.auth import Principal, Role
from shared.calendar import WorkingCalendar, province_of
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.errors import Conflict, NotFound, Problem
from shared.events import (
    DIGITIZATION,
    INTAKE,
    PAYMENTS,
    CalendarDayDeclared,
    CalendarDayForgotten,
    CaseFeedbackAnswered,
    CaseFeedbackReceived,
    CaseRated,
    DocumentSigned,
    DossierReceived,
    DossierSupplemented,
    DossierWithdrawn,
    PaymentConfirmed,
    PaymentRefunded,
    PaymentRequested,
)

log = logging.getLogger("motcua.workflow")

_STATE_FIELDS = frozenset(f.name for f in fields(CaseState))


@dataclass(frozen=True)
class Rules:
    """What the use cases need besides the database: the calendar and the service's settings."""

    calendar: WorkingCalendar
    warning_threshold_working_hours: float = 9.5
    feedback_deadline_working_days: int = 15
    rating_link_secret: str = "dev"


# ---- provincial calendars ------------------------------------------------------------------------


def _with_days(national: WorkingCalendar, days: list[store.CalendarDay]) -> WorkingCalendar:
    """The national calendar (its office hours kept) plus a province's declared days."""
    if not days:
        return national
    return WorkingCalendar(
        extra_days_off={d.day: d.reason for d in days if not d.working},
        extra_working_days={d.day: d.reason for d in days if d.working},
        start_of_day=national.start_of_day,
        end_of_day=national.end_of_day,
        cutoff=national.cutoff,
    )


async def calendar_of(tx: UnitOfWork, rules: Rules, unit: str) -> WorkingCalendar:
    """The working calendar of the unit's province, read in the caller's transaction.

    Read per use from a small table instead of cached: the consumer that applies intake's calendar events
    and the officers' commands share this process, and a read in the same transaction can never be stale.
    """
    days = await store.calendar_days(session=tx.session, province=province_of(unit))
    return _with_days(rules.calendar, days)


async def calendars_by_province(tx: UnitOfWork, rules: Rules) -> dict[str, WorkingCalendar]:
    """Every province with declared days and its calendar (the others use ``rules.calendar``)."""
    grouped: dict[str, list[store.CalendarDay]] = {}
    for day in await store.calendar_days(session=tx.session):
        grouped.setdefault(day.province, []).append(day)
    return {province: _with_days(rules.calendar, days) for province, days in grouped.items()}


async def record_calendar_day(tx: UnitOfWork, event: CalendarDayDeclared, envelope: Envelope) -> None:
    """A province declared a day off or working: keep it (a redelivery or an older declaration changes nothing)."""
    await store.declare_day(
        session=tx.session,
        day=store.CalendarDay(
            province=event.province,
            day=event.day,
            working=event.kind == "working",
            reason=event.reason,
            declared_by=event.declared_by,
            declared_at=event.occurred_at,
        ),
    )


async def forget_calendar_day(tx: UnitOfWork, event: CalendarDayForgotten, envelope: Envelope) -> None:
    """A province withdrew a declared day: the national calendar rules it again."""
    await store.forget_day(session=tx.session, province=event.province, day=event.day, at=event.occurred_at)


# ---- requests -------------------------------------------------------------------------------

Text = Field(min_length=1, max_length=2000)


class AssignCase(BaseModel):
    """Hand the case to a department and/or an officer (``assignee: "me"`` for oneself)."""

    department: str | None = Field(default=None, min_length=1, max_length=200, examples=["Tư pháp - Hộ tịch"])
    assignee: str | None = Field(default=None, min_length=1, max_length=200, examples=["me"])


class RequestSupplement(BaseModel):
    """Form 02 from appraisal: what is missing and why."""

    reason: str = Field(min_length=1, max_length=2000, examples=["Thiếu bản sao giấy chứng sinh"])
    items: list[str] = Field(default_factory=list, max_length=50, examples=[["Bản sao giấy chứng sinh"]])

    @field_validator("items")
    @classmethod
    def _items_not_blank(cls, items: list[str]) -> list[str]:
        if any(not i.strip() or len(i) > 500 for i in items):
            raise ValueError("each item is 1 to 500 characters")
        return [i.strip() for i in items]


class TransferCase(BaseModel):
    """Send the case to another agency (liên thông) with its share of the time."""

    to_agency: str = Field(min_length=1, max_length=64, examples=["000.00.01.H56"])
    step_days: int = Field(ge=1, le=365, examples=[2])
    to_officer: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class ReturnTransfer(BaseModel):
    """The other agency's part came back."""

    note: str | None = Field(default=None, max_length=2000)


class Approve(BaseModel):
    """The leader approves the result."""

    note: str | None = Field(default=None, max_length=2000)


class Reason(BaseModel):
    """A refusal or a stop, with its reason."""

    reason: str = Field(min_length=1, max_length=2000)


class IssueApology(BaseModel):
    """Form 04: why it is late and the new appointment."""

    reason: str = Field(min_length=1, max_length=2000, examples=["Chờ kết quả xác minh của cơ quan phối hợp"])
    new_appointment_at: datetime = Field(examples=["2026-12-10T17:00:00+07:00"])

    @field_validator("new_appointment_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. +07:00")
        return value


class ExplainDelay(BaseModel):
    """The written explanation of a late dossier to the head of the unit."""

    explanation: str = Field(min_length=1, max_length=10000)


class ReturnResult(BaseModel):
    """How the result went back."""

    channel: domain.ReturnChannel = "counter"
    tracking_number: str | None = Field(default=None, min_length=1, max_length=64)


class OnTheSpot(BaseModel):
    """4 tại chỗ: decide and return in one sitting."""

    channel: Literal["counter", "online"] = "counter"


RatingValue = Literal["very_satisfied", "satisfied", "dissatisfied"]
Score = Literal["very_satisfied", "satisfied", "dissatisfied"]


class RatingCriteria(BaseModel):
    """The criteria of DOMAIN §1.7.2 that the applicant answers (all optional)."""

    ease_of_use: Score | None = None
    on_time: Score | None = None
    officer_attitude: Score | None = None
    time_taken: Score | None = None
    times_contacted: int | None = Field(default=None, ge=0, le=100, description="times you had to contact the agency")
    agencies_contacted: int | None = Field(default=None, ge=0, le=50)
    received_and_returned_at_one_stop: bool | None = None
    procedure_publicity: Score | None = None
    feedback_handling: Score | None = None


class RateCase(BaseModel):
    """The applicant's rating, once per dossier after return."""

    rating: RatingValue
    criteria: RatingCriteria = Field(default_factory=RatingCriteria)
    comment: str | None = Field(default=None, max_length=2000)


class SubmitFeedback(BaseModel):
    """Phản ánh, kiến nghị about a dossier."""

    content: str = Field(min_length=1, max_length=10000)
    contact: str | None = Field(default=None, max_length=200)
    channel: Literal["public_link", "counter", "phone", "mail", "portal"] = "counter"


class AnswerFeedback(BaseModel):
    """The answer to a piece of feedback."""

    answer: str = Field(min_length=1, max_length=10000)


# ---- loading and writing a case ---------------------------------------------------------------


View = tuple[store.Case, CaseState]


def visible_units(case: store.Case) -> list[str]:
    """Units whose officials see the case: processing, receiving, and the agency of a running transfer."""
    return [u for u in (case.unit, case.receiving_unit, case.transfer_agency) if u]


def can_see(user: Principal, case: store.Case) -> bool:
    """True when one of the case's units is in the caller's token."""
    return any(user.can_see(u) for u in visible_units(case))


def to_state(case: store.Case, signed_at: datetime | None, payments: list[store.CasePayment]) -> CaseState:
    """The rules' view of a row and its result-gate facts."""
    values = {name: getattr(case, name) for name in _STATE_FIELDS if hasattr(case, name)}
    live = [p for p in payments if p.refunded_at is None and p.replaced_at is None]
    fee_due = case.fee_due_amount > 0 or case.fee_pending or bool(live)
    confirmed = [p.confirmed_at for p in live if p.confirmed_at is not None]
    paid_at = max(confirmed) if live and len(confirmed) == len(live) else None
    pending = tuple(sorted(p.payment_id for p in live if p.confirmed_at is None))
    values |= {
        "status": CaseStatus(case.status),
        "signed_at": signed_at,
        "fee_due": fee_due,
        "paid_at": paid_at,
        "pending_payments": pending,
    }
    return CaseState(**values)


async def load(tx: UnitOfWork, code: str, *, user: Principal | None = None, for_update: bool = False) -> View:
    """The case and its state; 404 when it does not exist or is outside the caller's units.

    An officer's command loads ``for_update``: the row stays locked until its decision is written, so an
    event applied meanwhile (a payment requested, a document signed) waits instead of turning the command
    into a 409 the officer did nothing to cause. Two officers' commands on one case then run one after the
    other, the second decided on what the first left.
    """
    case = await store.get(session=tx.session, code=code, for_update=for_update)
    if case is None or (user is not None and not can_see(user, case)):
        raise NotFound("case", code)
    signed_at, payments = await store.gate_facts(session=tx.session, code=code)
    return case, to_state(case, signed_at, payments)


async def apply(tx: UnitOfWork, case: store.Case, decision: Decision) -> View:
    """Write a decision: changes if nobody changed the case meanwhile (else 409), slip rows, events.

    Returns the case as it now stands, read in the same transaction (an agency that has just
    handed a case back no longer sees it afterwards, but sees the result of its own command).
    """
    if decision.empty:
        return await view(tx, case.code)
    now = tx.db.clock.now()
    if decision.changes:
        version = await store.update(
            session=tx.session, code=case.code, version=case.version, changes=decision.changes, now=now
        )
        if version is None:
            fresh = await store.get(session=tx.session, code=case.code)
            state = CaseStatus(fresh.status) if fresh else CaseStatus(case.status)
            raise Conflict(
                "Another officer changed the case first; reload it and try again.",
                case_status=state.value,
                allowed_actions=sorted(domain.ALLOWED[state]),
                version=fresh.version if fresh else None,
            )
    for step in decision.handovers:
        await store.hand_over(
            session=tx.session,
            code=case.code,
            now=now,
            kind=step.kind,
            from_unit=step.from_unit,
            from_officer=step.from_officer,
            to_unit=step.to_unit,
            to_officer=step.to_officer,
            step_due_at=step.step_due_at,
            note=step.note,
            final=step.final,
        )
    emitted = [(event, (await tx.emit(event)).id) for event in decision.events]
    await owe_notifications(tx, case.code, emitted)
    return await view(tx, case.code)


async def view(tx: UnitOfWork, code: str) -> View:
    """The case and its state as this transaction sees them."""
    return await load(tx, code)


def _officer_may_handle(user: Principal, state: CaseState) -> None:
    """A specialist acts on the cases given to them (or not yet given to anyone); a leader on any."""
    if user.roles & {Role.LEADER, Role.ADMIN}:
        return
    if Role.SPECIALIST in user.roles and state.assignee not in (None, user.subject):
        raise Problem(403, "not-assignee", "Not your case", f"The case is assigned to {state.assignee!r}.")


# ---- applicant notifications ------------------------------------------------------------------------


async def owe_notifications(tx: UnitOfWork, code: str, emitted: list[tuple[Any, str]]) -> int:
    """Write the notifications these events owe the applicant, in the events' transaction (so none is lost).

    One per event at most (the event id is unique on the row), and none when the applicant chose no channel.
    """
    kinds = notifications.owed_kinds([event for event, _ in emitted])
    owed = [(event, event_id, kind) for (event, event_id), kind in zip(emitted, kinds, strict=True) if kind is not None]
    if not owed:
        return 0
    case = await store.get(session=tx.session, code=code)
    if case is None or (to := notifications.recipient(case.notify_by, case.applicant_email, case.applicant_phone)) is None:
        return 0
    now, written = tx.db.clock.now(), 0
    snapshot = case.model_dump()
    for event, event_id, kind in owed:
        paid = outstanding = 0
        if kind is notifications.Kind.RESULT_READY:
            _, payments = await store.gate_facts(session=tx.session, code=code)
            live = [p for p in payments if p.refunded_at is None and p.replaced_at is None]
            paid = sum(p.amount or 0 for p in live if p.confirmed_at is not None)
            outstanding = sum(p.amount or 0 for p in live if p.confirmed_at is None)
        values = {
            "id": senders.new_id(),
            "case_code": code,
            "event_id": str(event_id),
            "kind": kind.value,
            "channel": to[0].value,
            "recipient": to[1],
            "facts": notifications.facts(kind, snapshot, event, fee_paid=paid, fee_outstanding=outstanding),
            "status": notifications.Status.PENDING.value,
            "next_attempt_at": now,
            "created_at": now,
        }
        written += await store.add_notification(session=tx.session, values=values)
    return written


async def case_notifications(
    tx: UnitOfWork, code: str, *, user: Principal
) -> list[tuple[store.Notification, list[store.NotificationAttempt]]]:
    """What the applicant of a case the caller may see was told, and every attempt at telling them."""
    await load(tx, code, user=user)
    return await store.notifications_of(session=tx.session, code=code)


class TemplateBody(BaseModel):
    """New words for one notification kind on one channel (``{field}`` placeholders)."""

    subject: str | None = Field(default=None, max_length=300, description="e-mail only")
    body: str = Field(min_length=1, max_length=5000)

    @field_validator("subject", "body")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 and c not in "\n\r\t" for c in value):
            raise ValueError("control characters are not allowed (line breaks and tabs are)")
        return value


async def put_template(
    tx: UnitOfWork, kind: notifications.Kind, channel: notifications.Channel, cmd: TemplateBody, *, user: Principal
) -> store.NotificationTemplate:
    """Replace a template after checking that it names only its kind's fields; notifications already rendered keep their words."""
    template = notifications.Template(kind, channel, cmd.body, cmd.subject if channel is notifications.Channel.EMAIL else None)
    try:
        notifications.check_template(template)
    except notifications.TemplateError as exc:
        raise domain.InvalidInput("body", str(exc)) from None
    row = await store.get_template(session=tx.session, kind=kind.value, channel=channel.value)
    row = row or store.NotificationTemplate(kind=kind.value, channel=channel.value, body=cmd.body, updated_at=tx.db.clock.now())
    row.subject, row.body, row.updated_at, row.updated_by = template.subject, template.body, tx.db.clock.now(), user.subject
    tx.session.add(row)
    await tx.session.flush()
    return row


# ---- consumed events ------------------------------------------------------------------------------


async def open_case(tx: UnitOfWork, event: DossierReceived, envelope: Envelope) -> None:
    """A received dossier becomes a case in status ``accepted`` (national status 2)."""
    values = domain.opening_columns(
        code=event.dossier_code,
        unit=event.unit,
        received_at=event.received_at,
        appointment_at=event.appointment_at,
        due_at_original=event.due_at_original,
        receiving_unit=_optional(event, "receiving_unit"),
        received_by=event.received_by,
    )
    values |= {
        "procedure_code": event.procedure_code,
        "procedure_name": event.procedure_name,
        "procedure_version": event.procedure_version,
        "applicant_name": event.applicant_name,
        "channel": event.channel,
        "received_by": event.received_by,
        "legal_due_at": _optional(event, "legal_due_at"),
        # A producer that does not say leaves it to the rules, which infer it from the time limit.
        "on_the_spot": event.on_the_spot if "on_the_spot" in event.model_fields_set else None,
        "fee_due_amount": int(_optional(event, "fee_due", 0) or 0),
        "fee_pending": bool(_optional(event, "fee_pending", False)),
        "requested_return_channel": _optional(event, "return_channel"),
        "applicant_email": _optional(event, "applicant_email"),
        "applicant_phone": _optional(event, "applicant_phone"),
        "notify_by": _optional(event, "notify_by"),
        "updated_at": tx.db.clock.now(),
    }
    if await store.insert_if_new(session=tx.session, values=values):
        await owe_notifications(tx, event.dossier_code, [(event, envelope.id)])


def _optional(event: Any, name: str, default: Any = None) -> Any:
    """A field a newer producer may add to a v1 event (read defensively)."""
    return getattr(event, name, default)


async def _locked(tx: UnitOfWork, code: str) -> tuple[store.Case, CaseState] | None:
    """The case row-locked for a consumed event (so it never loses a race), or None."""
    case = await store.get(session=tx.session, code=code, for_update=True)
    if case is None:
        return None
    signed_at, payments = await store.gate_facts(session=tx.session, code=code)
    return case, to_state(case, signed_at, payments)


async def resume_clock(tx: UnitOfWork, event: DossierSupplemented, envelope: Envelope, *, rules: Rules) -> None:
    """The applicant handed in the additions: the clock resumes with the days that were left."""
    found = await _locked(tx, event.dossier_code)
    if found is None or found[1].status != CaseStatus.SUPPLEMENT_REQUESTED:
        log.warning("supplement for %s ignored: no case is waiting for one", event.dossier_code)
        return
    case, state = found
    decision = domain.receive_supplement(
        state, supplemented_at=event.supplemented_at, now=tx.db.clock.now(), cal=await calendar_of(tx, rules, case.unit)
    )
    await apply(tx, case, decision)


async def close_withdrawn(tx: UnitOfWork, event: DossierWithdrawn, envelope: Envelope) -> None:
    """The applicant withdrew the dossier (national status 7)."""
    found = await _locked(tx, event.dossier_code)
    if found is None:
        log.warning("withdrawal of unknown case %s ignored", event.dossier_code)
        return
    case, state = found
    decision = domain.withdraw(state, reason=event.reason, now=tx.db.clock.now())
    if decision.empty:
        log.warning("withdrawal of %s ignored: the case is %s already", event.dossier_code, case.status)
    await apply(tx, case, decision)


async def _advance_locked(tx: UnitOfWork, code: str) -> None:
    """Re-check the result gate of a case (if it exists yet) after a signature or a payment.

    The version moves even when the status does not: an officer who read the gate before this
    fact arrived (say, approving "without a signature") then gets 409 and reloads, instead of
    leaving the case waiting for a signature that is already here.
    """
    found = await _locked(tx, code)
    if found is None:
        return  # the facts wait in the gate tables for the case
    case, state = found
    decision = domain.advance_result(state, now=tx.db.clock.now())
    if decision.empty:
        await store.update(session=tx.session, code=code, version=case.version, changes={}, now=tx.db.clock.now())
    else:
        await apply(tx, case, decision)


async def record_signature(tx: UnitOfWork, event: DocumentSigned, envelope: Envelope) -> None:
    """A result of the dossier was signed."""
    await store.record_signature(
        session=tx.session,
        code=event.dossier_code,
        document_id=event.document_id,
        signer=event.signer,
        certificate_serial=event.certificate_serial,
        signed_at=event.occurred_at,
    )
    await _advance_locked(tx, event.dossier_code)


async def record_payment_requested(tx: UnitOfWork, event: PaymentRequested, envelope: Envelope) -> None:
    """A fee is due: the result waits for it (a request that replaces an expired one takes its place)."""
    if replaced := _optional(event, "replaces_payment_id"):
        await store.record_payment(
            session=tx.session, code=event.dossier_code, payment_id=replaced, replaced_at=event.occurred_at
        )
    await store.record_payment(
        session=tx.session,
        code=event.dossier_code,
        payment_id=event.payment_id,
        amount=int(event.amount),
        requested_at=event.occurred_at,
    )
    await _advance_locked(tx, event.dossier_code)


async def record_payment_confirmed(tx: UnitOfWork, event: PaymentConfirmed, envelope: Envelope) -> None:
    """The fee was paid."""
    await store.record_payment(
        session=tx.session,
        code=event.dossier_code,
        payment_id=event.payment_id,
        amount=int(event.amount),
        confirmed_at=_optional(event, "paid_at") or event.occurred_at,
    )
    await _advance_locked(tx, event.dossier_code)


async def record_payment_refunded(tx: UnitOfWork, event: PaymentRefunded, envelope: Envelope) -> None:
    """The fee was refunded: it no longer counts as due or paid."""
    await store.record_payment(
        session=tx.session, code=event.dossier_code, payment_id=event.payment_id, refunded_at=event.occurred_at
    )
    await _advance_locked(tx, event.dossier_code)


def subscriptions(rules: Rules) -> Subscription:
    """What the workflow listens to."""
    return Subscription(
        producers=(INTAKE, DIGITIZATION, PAYMENTS),
        handlers={
            DossierReceived: open_case,
            DossierSupplemented: partial(resume_clock, rules=rules),
            DossierWithdrawn: close_withdrawn,
            DocumentSigned: record_signature,
            PaymentRequested: record_payment_requested,
            PaymentConfirmed: record_payment_confirmed,
            PaymentRefunded: record_payment_refunded,
            CalendarDayDeclared: record_calendar_day,
            CalendarDayForgotten: forget_calendar_day,
        },
    )


# ---- officers' commands ---------------------------------------------------------------------------


async def assign(tx: UnitOfWork, code: str, cmd: AssignCase, *, user: Principal) -> View:
    """Hand the case to a department and/or an officer."""
    case, state = await load(tx, code, user=user, for_update=True)
    assignee = user.subject if cmd.assignee == "me" else cmd.assignee
    if not user.roles & {Role.LEADER, Role.CLERK, Role.ADMIN} and assignee not in (None, user.subject):
        raise Problem(403, "role-forbidden", "Role not allowed", "A specialist may only take a case for themselves.")
    _officer_may_handle(user, state)
    decision = domain.assign(state, department=cmd.department, assignee=assignee, by=user.subject, now=tx.db.clock.now())
    return await apply(tx, case, decision)


async def request_supplement(
    tx: UnitOfWork, code: str, cmd: RequestSupplement, *, user: Principal, rules: Rules
) -> View:
    """Ask for additions (Form 02): the clock pauses."""
    case, state = await load(tx, code, user=user, for_update=True)
    _officer_may_handle(user, state)
    decision = domain.request_supplement(
        state,
        reason=cmd.reason,
        items=cmd.items,
        by=user.subject,
        now=tx.db.clock.now(),
        cal=await calendar_of(tx, rules, case.unit),
    )
    return await apply(tx, case, decision)


async def transfer(tx: UnitOfWork, code: str, cmd: TransferCase, *, user: Principal, rules: Rules) -> View:
    """Send the case to another agency for its step."""
    case, state = await load(tx, code, user=user, for_update=True)
    _officer_may_handle(user, state)
    decision = domain.transfer(
        state,
        to_agency=cmd.to_agency,
        step_days=cmd.step_days,
        to_officer=cmd.to_officer,
        note=cmd.note,
        by=user.subject,
        now=tx.db.clock.now(),
        cal=await calendar_of(tx, rules, case.unit),
    )
    return await apply(tx, case, decision)


async def return_transfer(tx: UnitOfWork, code: str, cmd: ReturnTransfer, *, user: Principal) -> View:
    """Record that the other agency handed its part back."""
    case, state = await load(tx, code, user=user, for_update=True)
    decision = domain.return_transfer(state, by=user.subject, note=cmd.note, now=tx.db.clock.now())
    return await apply(tx, case, decision)


async def approve(tx: UnitOfWork, code: str, cmd: Approve, *, user: Principal) -> View:
    """The leader approves; the result is ready once signed (and paid where a fee is due)."""
    case, state = await load(tx, code, user=user, for_update=True)
    return await apply(tx, case, domain.approve(state, by=user.subject, note=cmd.note, now=tx.db.clock.now()))


async def reject(tx: UnitOfWork, code: str, cmd: Reason, *, user: Principal) -> View:
    """Refuse the dossier during processing."""
    case, state = await load(tx, code, user=user, for_update=True)
    return await apply(tx, case, domain.reject(state, reason=cmd.reason, by=user.subject, now=tx.db.clock.now()))


async def stop(tx: UnitOfWork, code: str, cmd: Reason, *, user: Principal) -> View:
    """Stop processing (national status 8)."""
    case, state = await load(tx, code, user=user, for_update=True)
    return await apply(tx, case, domain.stop(state, reason=cmd.reason, by=user.subject, now=tx.db.clock.now()))


async def issue_apology(tx: UnitOfWork, code: str, cmd: IssueApology, *, user: Principal, rules: Rules) -> View:
    """Form 04: apologise and set a new appointment, once."""
    case, state = await load(tx, code, user=user, for_update=True)
    decision = domain.issue_apology(
        state,
        reason=cmd.reason,
        new_appointment_at=cmd.new_appointment_at,
        by=user.subject,
        now=tx.db.clock.now(),
        cal=await calendar_of(tx, rules, case.unit),
    )
    return await apply(tx, case, decision)


async def explain_delay(tx: UnitOfWork, code: str, cmd: ExplainDelay, *, user: Principal) -> View:
    """Record the explanation of a late dossier."""
    case, state = await load(tx, code, user=user, for_update=True)
    decision = domain.explain_delay(state, text=cmd.explanation, by=user.subject, now=tx.db.clock.now())
    return await apply(tx, case, decision)


async def return_result(tx: UnitOfWork, code: str, cmd: ReturnResult, *, user: Principal) -> View:
    """The result went back to the applicant."""
    case, state = await load(tx, code, user=user, for_update=True)
    decision = domain.return_result(
        state, channel=cmd.channel, tracking_number=cmd.tracking_number, by=user.subject, now=tx.db.clock.now()
    )
    return await apply(tx, case, decision)


async def on_the_spot(tx: UnitOfWork, code: str, cmd: OnTheSpot, *, user: Principal, rules: Rules) -> View:
    """4 tại chỗ: take, approve and return in one sitting; all of it or nothing."""
    case, state = await load(tx, code, user=user, for_update=True)
    decision = domain.on_the_spot(
        state, officer=user.subject, channel=cmd.channel, now=tx.db.clock.now(), cal=await calendar_of(tx, rules, case.unit)
    )
    return await apply(tx, case, decision)


async def get_case(tx: UnitOfWork, code: str, *, user: Principal) -> View:
    """A case the caller may see, with its state."""
    return await load(tx, code, user=user)


async def tracking_slip(tx: UnitOfWork, code: str, *, user: Principal) -> tuple[store.Case, list[store.CaseStep]]:
    """The case and its Form 05 rows."""
    case, _ = await load(tx, code, user=user)
    return case, await store.steps(session=tx.session, code=code)


async def inbox(
    tx: UnitOfWork,
    *,
    user: Principal,
    rules: Rules,
    assignee: str | None,
    due: Literal["soon", "overdue"] | None,
    statuses: list[CaseStatus] | None,
    limit: int,
    offset: int,
) -> tuple[list[View], int]:
    """An officer's worklist, soonest deadline first."""
    now = tx.db.clock.now()
    if statuses:
        wanted = [s.value for s in statuses]
    elif due:
        wanted = [s.value for s in domain.RUNNING]  # a paused clock is neither near nor past its deadline
    else:
        wanted = [s.value for s in CaseStatus if s not in domain.FINAL]
    due_before = due_after = None
    due_before_in: dict[str, datetime] = {}
    if due == "soon":
        due_after, (due_before, due_before_in) = now, await warning_horizons(tx, rules, now)
    elif due == "overdue":
        due_before = now
    rows, total = await store.inbox(
        session=tx.session,
        units=user.units,
        statuses=wanted,
        assignee=user.subject if assignee == "me" else assignee,
        due_before=due_before,
        due_after=due_after,
        due_before_in=due_before_in,
        limit=limit,
        offset=offset,
    )
    facts = await store.gate_facts_of(session=tx.session, codes=[r.code for r in rows])
    return [(r, to_state(r, *facts[r.code])) for r in rows], total


# ---- the deadline sweep -----------------------------------------------------------------------------


async def warning_horizons(tx: UnitOfWork, rules: Rules, now: datetime) -> tuple[datetime, dict[str, datetime]]:
    """Where "near the deadline" ends: on the national calendar, and in each province that declared days of its own."""
    national = domain.warning_horizon(now, rules.warning_threshold_working_hours, rules.calendar)
    provinces = {
        province: domain.warning_horizon(now, rules.warning_threshold_working_hours, cal)
        for province, cal in (await calendars_by_province(tx, rules)).items()
    }
    return national, provinces


async def sweep_deadlines(tx: UnitOfWork, *, rules: Rules, limit: int) -> int:
    """Announce near and passed deadlines; each flag is set with its event, rows other sweepers hold are skipped."""
    now = tx.db.clock.now()
    # a province's day off pushes its horizon later: claim up to the latest, judge each case by its own province's
    national, horizons = await warning_horizons(tx, rules, now)
    claimed = await store.claim_for_sweep(
        session=tx.session,
        statuses=[s.value for s in domain.RUNNING],
        now=now,
        horizon=max([national, *horizons.values()]),
        limit=limit,
    )
    for case in claimed:
        horizon = horizons.get(province_of(case.unit), national)
        decision = domain.sweep(to_state(case, None, []), now=now, horizon=horizon)
        if decision.empty:
            continue
        await store.set_flags(session=tx.session, code=case.code, changes=decision.changes)
        for event in decision.events:
            await tx.emit(event)
    return len(claimed)


# ---- ratings and feedback ---------------------------------------------------------------------------


def check_link(rules: Rules, code: str, signature: str) -> None:
    """Refuse a public link that this service did not sign for this dossier."""
    if not domain.rating_link_valid(rules.rating_link_secret, code, signature):
        raise Problem(403, "link-invalid", "Link not valid", "This link was not issued for this dossier.")


async def rate(tx: UnitOfWork, code: str, cmd: RateCase, *, signature: str, rules: Rules) -> store.Rating:
    """The applicant rates the dossier through the signed link: once, after return."""
    check_link(rules, code, signature)
    case, state = await load(tx, code)
    domain.rate(state)
    now = tx.db.clock.now()
    agencies = {s.to_unit for s in await store.steps(session=tx.session, code=code) if s.kind == "transfer"}
    derived = {
        "supplement_requests": state.supplement_count,
        "agencies_involved": 1 + len(agencies),
        "timeliness": state.timeliness,
    }
    criteria = cmd.criteria.model_dump(exclude_none=True)
    rating = store.Rating(
        case_code=code, unit=case.unit, rating=cmd.rating, criteria=criteria, derived=derived, comment=cmd.comment, rated_at=now
    )
    decision = Decision(
        {"rated_at": now},
        (),
        (CaseRated(dossier_code=code, unit=case.unit, occurred_at=now, rating=cmd.rating, criteria=criteria, comment=cmd.comment),),
    )
    await apply(tx, case, decision)
    store.add_rating(session=tx.session, rating=rating)
    return rating


async def submit_feedback(
    tx: UnitOfWork, code: str, cmd: SubmitFeedback, *, rules: Rules, user: Principal | None = None
) -> store.Feedback:
    """Citizen feedback about a dossier, due for an answer in N working days."""
    case, _ = await load(tx, code, user=user)
    now = tx.db.clock.now()
    feedback = store.Feedback(
        id=str(uuid.uuid4()),
        case_code=code,
        unit=case.unit,
        channel=cmd.channel if user is not None else "public_link",
        content=cmd.content,
        contact=cmd.contact,
        submitted_at=now,
        due_at=domain.feedback_due_at(now, rules.feedback_deadline_working_days, await calendar_of(tx, rules, case.unit)),
    )
    store.add_feedback(session=tx.session, feedback=feedback)
    await tx.emit(
        CaseFeedbackReceived(
            dossier_code=code, unit=case.unit, occurred_at=now, feedback_id=feedback.id, channel=feedback.channel, due_at=feedback.due_at
        )
    )
    return feedback


async def answer_feedback(tx: UnitOfWork, feedback_id: str, cmd: AnswerFeedback, *, user: Principal) -> store.Feedback:
    """Answer a piece of feedback, once; the answer is judged against its deadline."""
    feedback = await store.get_feedback(session=tx.session, feedback_id=feedback_id, for_update=True)
    if feedback is None or not user.can_see(feedback.unit):
        raise NotFound("feedback", feedback_id)
    if feedback.answered_at is not None:
        raise Conflict("This feedback has been answered already.", answered_at=feedback.answered_at.isoformat())
    now = tx.db.clock.now()
    feedback.answered_at, feedback.answer, feedback.answered_by = now, cmd.answer, user.subject
    feedback.timeliness = domain.classify_answer(now, feedback.due_at)
    tx.session.add(feedback)
    await tx.emit(
        CaseFeedbackAnswered(
            dossier_code=feedback.case_code,
            unit=feedback.unit,
            occurred_at=now,
            feedback_id=feedback.id,
            answered_at=now,
            timeliness=feedback.timeliness,
        )
    )
    return feedback


async def list_feedback(
    tx: UnitOfWork, *, user: Principal, state: Literal["open", "overdue", "answered"] | None, limit: int, offset: int
) -> tuple[list[store.Feedback], int]:
    """Feedback of the caller's units, soonest deadline first."""
    answered = {"open": False, "overdue": False, "answered": True}.get(state or "")
    due_before = tx.db.clock.now() if state == "overdue" else None
    return await store.list_feedback(
        session=tx.session, units=user.units, answered=answered, due_before=due_before, limit=limit, offset=offset
    )




# ---- printable forms (02, 04, 05) ------------------------------------------------------------------


@dataclass(frozen=True)
class FormContext:
    """What the forms print besides the case: names of the issuing bodies and the applicant's lookup link."""

    one_stop_name: str
    unit_names: dict[str, str]
    lookup_url: str


def _agency(case: store.Case, ctx: FormContext) -> forms.Agency:
    unit = case.receiving_unit or case.unit
    return forms.Agency(name=ctx.one_stop_name, parent=ctx.unit_names.get(unit, unit))


def _procedure(case: store.Case) -> forms.Procedure:
    return forms.Procedure(name=case.procedure_name, code=case.procedure_code)


async def supplement_request_form(
    tx: UnitOfWork, code: str, *, user: Principal, ctx: FormContext
) -> forms.SupplementRequestForm:
    """Form 02 of the case's latest supplement request (from appraisal)."""
    case, _ = await load(tx, code, user=user)
    if case.supplement_requested_at is None:
        raise Problem(404, "form-not-issued", "Form not issued", "No supplement was requested for this case.")
    reason = case.supplement_reason or ""
    items = tuple(forms.SupplementItem(content=i, reason=reason) for i in case.supplement_items or []) or (
        forms.SupplementItem(content=reason, reason=reason),
    )
    return forms.SupplementRequestForm(
        agency=_agency(case, ctx),
        dossier_code=code,
        lookup_url=ctx.lookup_url,
        applicant=forms.Applicant(name=case.applicant_name),
        procedure=_procedure(case),
        stage=forms.SupplementStage.APPRAISAL,
        items=items,
        issued_at=case.supplement_requested_at,
        officer=forms.Officer(name=case.supplement_requested_by or ""),
        received_at=case.received_at,
    )


async def apology_form(tx: UnitOfWork, code: str, *, user: Principal, ctx: FormContext) -> forms.ApologyForm:
    """Form 04 of the case's apology."""
    case, _ = await load(tx, code, user=user)
    if case.apology_issued_at is None or case.due_at_rescheduled is None or case.due_at is None:
        raise Problem(404, "form-not-issued", "Form not issued", "No apology was issued for this case.")
    return forms.ApologyForm(
        agency=_agency(case, ctx),
        dossier_code=code,
        lookup_url=ctx.lookup_url,
        applicant=forms.Applicant(name=case.applicant_name),
        procedure=_procedure(case),
        received_at=case.received_at,
        original_appointment_at=case.due_at,
        new_appointment_at=case.due_at_rescheduled,
        reason=case.apology_reason or "",
        issued_at=case.apology_issued_at,
        signer=forms.Officer(name=case.apology_by or ""),
    )


async def control_slip_form(tx: UnitOfWork, code: str, *, user: Principal, ctx: FormContext) -> forms.ControlSlipForm:
    """Form 05: every hand-over of the case so far."""
    case, rows = await tracking_slip(tx, code, user=user)
    handovers = tuple(
        forms.HandOver(
            from_unit=r.from_unit or "",
            from_officer=r.from_officer or "",
            to_unit=r.to_unit or "Người nộp hồ sơ",
            to_officer=r.to_officer or "",
            received_at=r.handed_at,
            step_due_at=r.step_due_at,
            handed_over_at=r.completed_at,
            result=" ".join(filter(None, [r.note, "(trễ hạn)" if r.late else None])),
        )
        for r in rows
    )
    return forms.ControlSlipForm(
        agency=_agency(case, ctx),
        dossier_code=code,
        lookup_url=ctx.lookup_url,
        applicant=forms.Applicant(name=case.applicant_name),
        procedure=_procedure(case),
        received_at=case.received_at,
        appointment_at=case.due_at_original or case.received_at,
        rows=handovers,
    )
