"""Workflow use cases: one async function per command, query or consumed event.

Each command loads the case, asks ``domain`` for a decision and writes it with ``_apply``: the
column changes under optimistic locking (``UPDATE … WHERE version = :v``), the tracking-slip rows
and the outbox events, all in the caller's unit of work. Consumed events lock the row instead,
so they never lose a race against an officer; an officer who loses a race gets 409.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import fields
from datetime import datetime
from functools import partial
from typing import Any, Literal

from services.workflow import calendars, domain, notifications, printing, senders, store
from services.workflow.deps import WorkflowDeps
from services.workflow.domain import CaseState, CaseStatus, Decision
from services.workflow.models import (
    AnswerFeedback,
    Approve,
    AssignCase,
    ExplainDelay,
    IssueApology,
    OnTheSpot,
    RateCase,
    Reason,
    RequestSupplement,
    ReturnResult,
    ReturnTransfer,
    SubmitFeedback,
    TemplateBody,
    TransferCase,
)
from shared import forms, lawstore
from shared.auth import Principal
from shared.calendar import WorkingCalendar, province_of
from shared.clock import VN_TZ
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
    DossierImported,
    DossierReceived,
    DossierSupplemented,
    DossierWithdrawn,
    PaymentConfirmed,
    PaymentRefunded,
    PaymentRequested,
    RulesPublished,
    UnitMerged,
    UnitsDeclared,
)
from shared.roles import Role
from shared.rules import NATIONAL, RuleBook, Rules

log = logging.getLogger("motcua.workflow")

_STATE_FIELDS = frozenset(f.name for f in fields(CaseState))

View = tuple[store.Case, CaseState]


# ---- loading and writing a case ---------------------------------------------------------------


def _can_see(user: Principal, case: store.Case) -> bool:
    """True when one of the units that see the case is in the caller's token."""
    return any(user.can_see(u) for u in store.units_seeing(case))


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


async def _load(tx: UnitOfWork, code: str, *, user: Principal | None = None, for_update: bool = False) -> View:
    """The case and its state; 404 when it does not exist or is outside the caller's units.

    An officer's command loads ``for_update``: the row stays locked until its decision is written, so an
    event applied meanwhile (a payment requested, a document signed) waits instead of turning the command
    into a 409 the officer did nothing to cause. Two officers' commands on one case then run one after the
    other, the second decided on what the first left.
    """
    case = await store.get(session=tx.session, code=code, for_update=for_update)
    if case is None or (user is not None and not _can_see(user, case)):
        raise NotFound("case", code)
    signed_at, payments = await store.gate_facts(session=tx.session, code=code)
    return case, to_state(case, signed_at, payments)


async def _apply(tx: UnitOfWork, case: store.Case, decision: Decision) -> View:
    """Write a decision: changes if nobody changed the case meanwhile (else 409), slip rows, events.

    Returns the case as it now stands, read in the same transaction (an agency that has just
    handed a case back no longer sees it afterwards, but sees the result of its own command).
    """
    if decision.empty:
        return await _load(tx, case.code)
    now = tx.now
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
            step_no=step.step_no,
            planned_days=step.planned_days,
            adjusted_reason=step.adjusted_reason,
        )
    emitted = [(event, (await tx.emit(event)).id) for event in decision.events]
    await _owe_notifications(tx, case.code, emitted)
    return await _load(tx, case.code)


def _officer_may_handle(user: Principal, state: CaseState) -> None:
    """A specialist acts on the cases given to them (or not yet given to anyone); a leader on any."""
    if user.roles & {Role.LEADER, Role.ADMIN}:
        return
    if Role.SPECIALIST in user.roles and state.assignee not in (None, user.subject):
        raise Problem(403, "not-assignee", "Not your case", f"The case is assigned to {state.assignee!r}.")


async def _owe_notifications(tx: UnitOfWork, code: str, emitted: list[tuple[Any, str]]) -> int:
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
    now, written = tx.now, 0
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


def _check_link(deps: WorkflowDeps, code: str, signature: str) -> None:
    """Refuse a public link that this service did not sign for this dossier."""
    if not domain.rating_link_valid(deps.settings.rating_link_secret, code, signature):
        raise Problem(403, "link-invalid", "Link not valid", "This link was not issued for this dossier.")


# ---- the law of a case ----------------------------------------------------------------------------------


def rules_of(book: RuleBook, case: store.Case) -> Rules:
    """The rules a case follows to its end: the version recorded at reception, or (a dossier from before refs were
    recorded) the version in force in its province at its reception; before the first version, the first."""
    try:
        return book.rules_of(case.rules, case.received_at, province_of(case.unit))
    except LookupError:
        first = book.history(NATIONAL)[0]
        return book.in_force(first.effective_from, province_of(case.unit))


async def _law(tx: UnitOfWork, deps: WorkflowDeps, case: store.Case) -> tuple[Rules, WorkingCalendar]:
    """The case's rules (from the cached book: no query while it is fresh) and its calendar in their office hours."""
    rules = rules_of(await deps.law.book(tx), case)
    return rules, await calendars.of_unit(tx, deps.calendar, case.unit, rules.office)


async def case_rules(tx: UnitOfWork, case: store.Case, *, deps: WorkflowDeps) -> Rules:
    """The rules of a case (for the forms it prints and the page it shows)."""
    return rules_of(await deps.law.book(tx), case)


async def _warning_horizons(
    tx: UnitOfWork, deps: WorkflowDeps, now: datetime
) -> tuple[datetime, dict[str, datetime], datetime]:
    """Where "near the deadline" ends, for a dossier received under the rules in force now: nationally and in each
    province with declared days or rules of its own; and the latest of the horizons any rules in the book give
    (office hours differ between versions), which bounds what the sweep claims."""
    threshold = deps.settings.warning_threshold_working_hours
    book = await deps.law.book(tx)
    declared = await calendars.by_province(tx, deps.calendar)

    def horizon(province: str | None) -> datetime:
        cal = declared.get(province, deps.calendar) if province else deps.calendar
        return domain.warning_horizon(now, threshold, calendars.with_hours(cal, book.in_force(now, province).office))

    provinces = set(declared) | {v.scope for v in book.versions if v.scope != NATIONAL}
    hours = {v.office for v in book.versions if v.office is not None}
    latest = max(
        domain.warning_horizon(now, threshold, calendars.with_hours(cal, office))
        for cal in [deps.calendar, *declared.values()]
        for office in hours or {None}
    )
    return horizon(None), {p: horizon(p) for p in provinces}, latest


# ---- officers' commands ---------------------------------------------------------------------------


async def assign(tx: UnitOfWork, code: str, cmd: AssignCase, *, user: Principal) -> View:
    """Hand the case to a department and/or an officer."""
    case, state = await _load(tx, code, user=user, for_update=True)
    assignee = user.subject if cmd.assignee == "me" else cmd.assignee
    if not user.roles & {Role.LEADER, Role.CLERK, Role.ADMIN} and assignee not in (None, user.subject):
        raise Problem(403, "role-forbidden", "Role not allowed", "A specialist may only take a case for themselves.")
    _officer_may_handle(user, state)
    decision = domain.assign(state, department=cmd.department, assignee=assignee, by=user.subject, now=tx.now)
    return await _apply(tx, case, decision)


async def request_supplement(
    tx: UnitOfWork, code: str, cmd: RequestSupplement, *, deps: WorkflowDeps, user: Principal
) -> View:
    """Ask for additions (Form 02): the clock pauses."""
    case, state = await _load(tx, code, user=user, for_update=True)
    _officer_may_handle(user, state)
    rules, cal = await _law(tx, deps, case)
    decision = domain.request_supplement(
        state,
        reason=cmd.reason,
        items=cmd.items,
        by=user.subject,
        now=tx.now,
        cal=cal,
        max_requests=rules.counting.max_supplement_requests,
    )
    return await _apply(tx, case, decision)


async def transfer(tx: UnitOfWork, code: str, cmd: TransferCase, *, deps: WorkflowDeps, user: Principal) -> View:
    """Send the case to another agency for its step: the catalog plan's next step unless the officer, with a reason,
    names another agency or time."""
    case, state = await _load(tx, code, user=user, for_update=True)
    _officer_may_handle(user, state)
    _, cal = await _law(tx, deps, case)
    decision = domain.transfer(
        state,
        to_agency=cmd.to_agency,
        step_days=cmd.step_days,
        adjusted_reason=cmd.adjusted_reason,
        to_officer=cmd.to_officer,
        note=cmd.note,
        by=user.subject,
        now=tx.now,
        cal=cal,
    )
    return await _apply(tx, case, decision)


async def return_transfer(tx: UnitOfWork, code: str, cmd: ReturnTransfer, *, user: Principal) -> View:
    """Record that the other agency handed its part back."""
    case, state = await _load(tx, code, user=user, for_update=True)
    decision = domain.return_transfer(state, by=user.subject, note=cmd.note, now=tx.now)
    return await _apply(tx, case, decision)


async def approve(tx: UnitOfWork, code: str, cmd: Approve, *, user: Principal) -> View:
    """The leader approves; the result is ready once signed (and paid where a fee is due)."""
    case, state = await _load(tx, code, user=user, for_update=True)
    return await _apply(tx, case, domain.approve(state, by=user.subject, note=cmd.note, now=tx.now))


async def reject(tx: UnitOfWork, code: str, cmd: Reason, *, user: Principal) -> View:
    """Refuse the dossier during processing."""
    case, state = await _load(tx, code, user=user, for_update=True)
    return await _apply(tx, case, domain.reject(state, reason=cmd.reason, by=user.subject, now=tx.now))


async def stop(tx: UnitOfWork, code: str, cmd: Reason, *, user: Principal) -> View:
    """Stop processing (national status 8)."""
    case, state = await _load(tx, code, user=user, for_update=True)
    return await _apply(tx, case, domain.stop(state, reason=cmd.reason, by=user.subject, now=tx.now))


async def issue_apology(tx: UnitOfWork, code: str, cmd: IssueApology, *, deps: WorkflowDeps, user: Principal) -> View:
    """Form 04: apologise and set a new appointment, as often as the case's rules allow."""
    case, state = await _load(tx, code, user=user, for_update=True)
    rules, cal = await _law(tx, deps, case)
    decision = domain.issue_apology(
        state,
        reason=cmd.reason,
        new_appointment_at=cmd.new_appointment_at,
        by=user.subject,
        now=tx.now,
        cal=cal,
        lead_working_days=rules.deadlines.apology_lead_working_days,
        max_reschedules=rules.counting.max_reschedules,
    )
    return await _apply(tx, case, decision)


async def explain_delay(tx: UnitOfWork, code: str, cmd: ExplainDelay, *, user: Principal) -> View:
    """Record the explanation of a late dossier."""
    case, state = await _load(tx, code, user=user, for_update=True)
    decision = domain.explain_delay(state, text=cmd.explanation, by=user.subject, now=tx.now)
    return await _apply(tx, case, decision)


async def return_result(tx: UnitOfWork, code: str, cmd: ReturnResult, *, user: Principal) -> View:
    """The result went back to the applicant."""
    case, state = await _load(tx, code, user=user, for_update=True)
    decision = domain.return_result(
        state, channel=cmd.channel, tracking_number=cmd.tracking_number, by=user.subject, now=tx.now
    )
    return await _apply(tx, case, decision)


async def on_the_spot(tx: UnitOfWork, code: str, cmd: OnTheSpot, *, deps: WorkflowDeps, user: Principal) -> View:
    """4 tại chỗ: take, approve and return in one sitting; all of it or nothing."""
    case, state = await _load(tx, code, user=user, for_update=True)
    _, cal = await _law(tx, deps, case)
    decision = domain.on_the_spot(state, officer=user.subject, channel=cmd.channel, now=tx.now, cal=cal)
    return await _apply(tx, case, decision)


# ---- officers' queries ------------------------------------------------------------------------------


async def get_case(tx: UnitOfWork, code: str, *, user: Principal) -> View:
    """A case the caller may see, with its state."""
    return await _load(tx, code, user=user)


async def tracking_slip(tx: UnitOfWork, code: str, *, user: Principal) -> tuple[store.Case, list[store.CaseStep]]:
    """The case and its Form 05 rows."""
    case, _ = await _load(tx, code, user=user)
    return case, await store.steps(session=tx.session, code=code)


async def worklist(
    tx: UnitOfWork,
    *,
    deps: WorkflowDeps,
    user: Principal,
    assignee: str | None,
    due: Literal["soon", "overdue"] | None,
    statuses: list[CaseStatus] | None,
    limit: int,
    offset: int,
) -> tuple[list[View], int]:
    """An officer's worklist, soonest deadline first."""
    now = tx.now
    if statuses:
        wanted = [s.value for s in statuses]
    elif due:
        wanted = [s.value for s in domain.RUNNING]  # a paused clock is neither near nor past its deadline
    else:
        wanted = [s.value for s in CaseStatus if s not in domain.FINAL]
    due_before = due_after = None
    due_before_in: dict[str, datetime] = {}
    if due == "soon":
        due_after, (due_before, due_before_in, _) = now, await _warning_horizons(tx, deps, now)
    elif due == "overdue":
        due_before = now
    rows, total = await store.worklist(
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


async def public_links(tx: UnitOfWork, code: str, *, deps: WorkflowDeps, user: Principal) -> notifications.SignedLinks:
    """The applicant's signed links to a case the caller may see."""
    await _load(tx, code, user=user)
    return notifications.signed_links(deps.render_context, code)


# ---- printable forms (02, 04, the stop notice, the control slip), each in the version of its dossier -------------


async def _form_context(tx: UnitOfWork, deps: WorkflowDeps, case: store.Case) -> printing.FormContext:
    return printing.FormContext(
        one_stop_name=deps.settings.one_stop_name,
        unit_names=deps.settings.unit_names,
        lookup_url=notifications.signed_links(deps.render_context, case.code).status_url,
        rules=await case_rules(tx, case, deps=deps),
    )


async def supplement_request_form(
    tx: UnitOfWork, code: str, *, deps: WorkflowDeps, user: Principal
) -> forms.SupplementRequestForm:
    """Form 02 of the case's latest supplement request (from appraisal)."""
    case, _ = await _load(tx, code, user=user)
    form = printing.supplement_request_form(case, await _form_context(tx, deps, case))
    if form is None:
        raise Problem(404, "form-not-issued", "Form not issued", "No supplement was requested for this case.")
    return form


async def apology_form(tx: UnitOfWork, code: str, *, deps: WorkflowDeps, user: Principal) -> printing.ApologyForm:
    """Form 04 of the case's apology."""
    case, _ = await _load(tx, code, user=user)
    form = printing.apology_form(case, await _form_context(tx, deps, case))
    if form is None:
        raise Problem(404, "form-not-issued", "Form not issued", "No apology was issued for this case.")
    return form


async def stop_notice_form(tx: UnitOfWork, code: str, *, deps: WorkflowDeps, user: Principal) -> printing.StopNoticeForm:
    """The stop notice (Form 05 of Circular 03/2025) of a stopped case; the regimes before it have no such form."""
    case, state = await _load(tx, code, user=user)
    ctx = await _form_context(tx, deps, case)
    if ctx.rules.form("stop") is None:
        raise Problem(
            404,
            "form-not-in-regime",
            "No such form in this dossier's rules",
            f"The rules of this dossier ({ctx.rules.ref}, regime {ctx.rules.regime}) have no stop notice "
            "(Thông báo dừng giải quyết hồ sơ): the form exists from Circular 03/2025/TT-VPCP.",
            rules=ctx.rules.ref,
            regime=ctx.rules.regime,
        )
    form = printing.stop_notice_form(case, ctx) if state.status == CaseStatus.STOPPED else None
    if form is None:
        raise Problem(404, "form-not-issued", "Form not issued", "Processing of this case was not stopped.")
    return form


async def control_slip_form(tx: UnitOfWork, code: str, *, deps: WorkflowDeps, user: Principal) -> printing.ControlSlipForm:
    """The control slip (Form 05 of Circular 01/2018, 06 of Circular 03/2025): every hand-over of the case so far."""
    case, rows = await tracking_slip(tx, code, user=user)
    return printing.control_slip_form(case, rows, await _form_context(tx, deps, case))


# ---- applicant notifications ------------------------------------------------------------------------


async def case_notifications(
    tx: UnitOfWork, code: str, *, user: Principal
) -> list[tuple[store.Notification, list[store.NotificationAttempt]]]:
    """What the applicant of a case the caller may see was told, and every attempt at telling them."""
    await _load(tx, code, user=user)
    return await store.notifications_of(session=tx.session, code=code)


async def list_templates(tx: UnitOfWork, *, deps: WorkflowDeps) -> list[tuple[store.NotificationTemplate, notifications.Rendered]]:
    """Every notification template, each with its words filled for the sample dossier."""
    return [(row, _preview(row, deps)) for row in await store.templates(session=tx.session)]


async def put_template(
    tx: UnitOfWork,
    kind: notifications.Kind,
    channel: notifications.Channel,
    cmd: TemplateBody,
    *,
    deps: WorkflowDeps,
    user: Principal,
) -> tuple[store.NotificationTemplate, notifications.Rendered]:
    """Replace a template after checking that it names only its kind's fields; notifications already rendered keep their words."""
    template = notifications.Template(kind, channel, cmd.body, cmd.subject if channel is notifications.Channel.EMAIL else None)
    try:
        notifications.check_template(template)
    except notifications.TemplateError as exc:
        raise domain.InvalidInput("body", str(exc)) from None
    row = await store.get_template(session=tx.session, kind=kind.value, channel=channel.value)
    row = row or store.NotificationTemplate(kind=kind.value, channel=channel.value, body=cmd.body, updated_at=tx.now)
    row.subject, row.body, row.updated_at, row.updated_by = template.subject, template.body, tx.now, user.subject
    tx.session.add(row)
    await tx.session.flush()
    return row, _preview(row, deps)


def _preview(row: store.NotificationTemplate, deps: WorkflowDeps) -> notifications.Rendered:
    template = notifications.Template(notifications.Kind(row.kind), notifications.Channel(row.channel), row.body, row.subject)
    return notifications.preview(template, deps.render_context)


# ---- the applicant's signed links: status, rating, feedback ------------------------------------------


async def public_case(tx: UnitOfWork, code: str, *, signature: str, deps: WorkflowDeps) -> View:
    """The dossier as the applicant's signed link shows it."""
    _check_link(deps, code, signature)
    return await _load(tx, code)


async def public_case_page(
    tx: UnitOfWork, code: str, *, signature: str, deps: WorkflowDeps
) -> tuple[store.Case, CaseState, list[store.CaseStep], Rules]:
    """The dossier, its tracking slip and its rules, for the applicant's page (which shows only the public part)."""
    case, state = await public_case(tx, code, signature=signature, deps=deps)
    return case, state, await store.steps(session=tx.session, code=code), await case_rules(tx, case, deps=deps)


async def rate(tx: UnitOfWork, code: str, cmd: RateCase, *, signature: str, deps: WorkflowDeps) -> store.Rating:
    """The applicant rates the dossier through the signed link: once, after return."""
    _check_link(deps, code, signature)
    case, state = await _load(tx, code)
    domain.rate(state)
    now = tx.now
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
    await _apply(tx, case, decision)
    store.add_rating(session=tx.session, rating=rating)
    return rating


async def public_feedback(tx: UnitOfWork, code: str, cmd: SubmitFeedback, *, signature: str, deps: WorkflowDeps) -> store.Feedback:
    """Citizen feedback through the signed link."""
    _check_link(deps, code, signature)
    case, _ = await _load(tx, code)
    return await _receive_feedback(tx, case, cmd, channel="public_link", deps=deps)


# ---- citizen feedback, as officials see it ------------------------------------------------------------


async def record_feedback(tx: UnitOfWork, code: str, cmd: SubmitFeedback, *, deps: WorkflowDeps, user: Principal) -> store.Feedback:
    """Feedback an official received at the counter, by phone or by mail."""
    case, _ = await _load(tx, code, user=user)
    return await _receive_feedback(tx, case, cmd, channel=cmd.channel, deps=deps)


async def _receive_feedback(
    tx: UnitOfWork, case: store.Case, cmd: SubmitFeedback, *, channel: str, deps: WorkflowDeps
) -> store.Feedback:
    """Citizen feedback about a dossier, due for an answer in N working days."""
    now = tx.now
    rules, cal = await _law(tx, deps, case)
    feedback = store.Feedback(
        id=str(uuid.uuid4()),
        case_code=case.code,
        unit=case.unit,
        channel=channel,
        content=cmd.content,
        contact=cmd.contact,
        submitted_at=now,
        due_at=domain.feedback_due_at(now, rules.deadlines.feedback_working_days, cal),
    )
    store.add_feedback(session=tx.session, feedback=feedback)
    await tx.emit(
        CaseFeedbackReceived(
            dossier_code=case.code, unit=case.unit, occurred_at=now, feedback_id=feedback.id, channel=feedback.channel, due_at=feedback.due_at
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
    now = tx.now
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
    due_before = tx.now if state == "overdue" else None
    return await store.list_feedback(
        session=tx.session, units=user.units, answered=answered, due_before=due_before, limit=limit, offset=offset
    )


# ---- the deadline sweep -----------------------------------------------------------------------------


async def sweep_deadlines(tx: UnitOfWork, *, deps: WorkflowDeps, limit: int) -> int:
    """Announce near and passed deadlines; each flag is set with its event, rows other sweepers hold are skipped."""
    now = tx.now
    # a province's day off or shorter office hours push its horizon later: claim up to the latest, judge each case by
    # its own province's calendar in the office hours of its own rules
    *_, latest = await _warning_horizons(tx, deps, now)
    claimed = await store.claim_for_sweep(
        session=tx.session,
        statuses=[s.value for s in domain.RUNNING],
        now=now,
        horizon=latest,
        limit=limit,
    )
    book = await deps.law.book(tx)
    declared = await calendars.by_province(tx, deps.calendar) if claimed else {}
    horizons: dict[tuple[str, Any], datetime] = {}
    for case in claimed:
        province, office = province_of(case.unit), rules_of(book, case).office
        if (province, office) not in horizons:
            cal = calendars.with_hours(declared.get(province, deps.calendar), office)
            horizons[province, office] = domain.warning_horizon(now, deps.settings.warning_threshold_working_hours, cal)
        decision = domain.sweep(to_state(case, None, []), now=now, horizon=horizons[province, office])
        if decision.empty:
            continue
        await store.set_flags(session=tx.session, code=case.code, changes=decision.changes)
        for event in decision.events:
            await tx.emit(event)
    return len(claimed)


# ---- consumed events ------------------------------------------------------------------------------


def _optional(event: Any, name: str, default: Any = None) -> Any:
    """A field a newer producer may add to a v1 event (read defensively)."""
    return getattr(event, name, default)


async def _locked(tx: UnitOfWork, code: str) -> View | None:
    """The case row-locked for a consumed event (so it never loses a race), or None."""
    case = await store.get(session=tx.session, code=code, for_update=True)
    if case is None:
        return None
    signed_at, payments = await store.gate_facts(session=tx.session, code=code)
    return case, to_state(case, signed_at, payments)


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
    decision = domain.advance_result(state, now=tx.now)
    if decision.empty:
        await store.update(session=tx.session, code=code, version=case.version, changes={}, now=tx.now)
    else:
        await _apply(tx, case, decision)


async def on_dossier_received(tx: UnitOfWork, event: DossierReceived, envelope: Envelope, *, deps: WorkflowDeps) -> None:
    """A received dossier becomes a case in status ``accepted`` (national status 2), with the rules in force at its
    reception and the catalog's inter-agency step plan. A dossier of a unit merged meanwhile (its fact overtook this
    one) is handed over to the successor at once, as the merge did with the unit's open cases."""
    plan = _optional(event, "lien_thong_steps")
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
        "rules": _optional(event, "rules"),
        "step_plan": [step.model_dump(mode="json") for step in plan] if plan else None,
        "updated_at": tx.now,
    }
    if not await store.insert_if_new(session=tx.session, values=values):
        return
    await _owe_notifications(tx, event.dossier_code, [(event, envelope.id)])
    successor = (await deps.law.registry(tx)).current(event.unit, tx.now.astimezone(VN_TZ).date())
    if successor != event.unit:
        case, state = await _locked(tx, event.dossier_code) or (None, None)
        if case is not None and state is not None:
            await _apply(tx, case, domain.hand_over_unit(state, into=successor, now=tx.now))


_IMPORTED_STATUS = {
    "open": CaseStatus.ACCEPTED, "done": CaseStatus.DONE, "returned": CaseStatus.RETURNED, "rejected": CaseStatus.REJECTED,
    "stopped": CaseStatus.STOPPED, "withdrawn": CaseStatus.WITHDRAWN,
}  # fmt: skip


async def on_dossier_imported(tx: UnitOfWork, event: DossierImported, envelope: Envelope) -> None:
    """A dossier of a paper register becomes a case as the register left it: an open one in status ``accepted`` with
    its original deadline (moved by the days it was paused), held by the register's officer or nobody known, so the
    sweep finds it late on the legal day (or at once when that day has passed); a closed one closed, with the dates
    and the timeliness of the register. No notification: the applicant was told on paper."""
    status = _IMPORTED_STATUS[event.outcome]
    values = domain.opening_columns(
        code=event.dossier_code, unit=event.unit, received_at=event.received_at, appointment_at=event.appointment_at,
        due_at_original=event.appointment_at, receiving_unit=event.receiving_unit, received_by=event.officer,
    )  # fmt: skip
    values |= {
        "status": status.value,
        "due_at": event.due_at,
        "legal_due_at": event.due_at,
        "procedure_code": event.procedure_code,
        "procedure_name": event.procedure_name,
        "procedure_version": event.procedure_version,
        "applicant_name": event.applicant_name,
        "channel": "imported",
        "received_by": event.officer,
        "assignee": event.officer,
        "rules": event.rules,
        "updated_at": tx.now,
    }
    if status is not CaseStatus.ACCEPTED:
        ended = event.finished_at or event.returned_at
        values |= {"holder_unit": None, "holder_officer": None, "closed_at": ended if status in domain.FINAL else None}
        if status in (CaseStatus.DONE, CaseStatus.RETURNED):
            values |= {"finished_at": ended, "timeliness": event.timeliness}
        if status is CaseStatus.RETURNED:
            values |= {"returned_at": event.returned_at, "return_channel": "counter", "closed_reason": "returned"}
        elif status in (CaseStatus.REJECTED, CaseStatus.STOPPED, CaseStatus.WITHDRAWN):
            values |= {"closed_reason": event.notes or "imported from the paper register"}
        if event.timeliness == "late":
            values |= {"is_late": True, "late_reason": "finished_late", "late_at": event.due_at, "late_holder_unit": event.unit,
                       "late_holder_officer": event.officer}  # fmt: skip
    await store.insert_if_new(session=tx.session, values=values)


async def on_dossier_supplemented(tx: UnitOfWork, event: DossierSupplemented, envelope: Envelope, *, deps: WorkflowDeps) -> None:
    """The applicant handed in the additions: the clock resumes with the days that were left."""
    found = await _locked(tx, event.dossier_code)
    if found is None or found[1].status != CaseStatus.SUPPLEMENT_REQUESTED:
        log.warning("supplement for %s ignored: no case is waiting for one", event.dossier_code)
        return
    case, state = found
    rules, cal = await _law(tx, deps, case)
    decision = domain.receive_supplement(
        state, supplemented_at=event.supplemented_at, now=tx.now, cal=cal, supplement=rules.counting.supplement
    )
    await _apply(tx, case, decision)


async def on_dossier_withdrawn(tx: UnitOfWork, event: DossierWithdrawn, envelope: Envelope) -> None:
    """The applicant withdrew the dossier (national status 7)."""
    found = await _locked(tx, event.dossier_code)
    if found is None:
        log.warning("withdrawal of unknown case %s ignored", event.dossier_code)
        return
    case, state = found
    decision = domain.withdraw(state, reason=event.reason, now=tx.now)
    if decision.empty:
        log.warning("withdrawal of %s ignored: the case is %s already", event.dossier_code, case.status)
    await _apply(tx, case, decision)


async def on_document_signed(tx: UnitOfWork, event: DocumentSigned, envelope: Envelope) -> None:
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


async def on_payment_requested(tx: UnitOfWork, event: PaymentRequested, envelope: Envelope) -> None:
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


async def on_payment_confirmed(tx: UnitOfWork, event: PaymentConfirmed, envelope: Envelope) -> None:
    """The fee was paid."""
    await store.record_payment(
        session=tx.session,
        code=event.dossier_code,
        payment_id=event.payment_id,
        amount=int(event.amount),
        confirmed_at=_optional(event, "paid_at") or event.occurred_at,
    )
    await _advance_locked(tx, event.dossier_code)


async def on_payment_refunded(tx: UnitOfWork, event: PaymentRefunded, envelope: Envelope) -> None:
    """The fee was refunded: it no longer counts as due or paid."""
    await store.record_payment(
        session=tx.session, code=event.dossier_code, payment_id=event.payment_id, refunded_at=event.occurred_at
    )
    await _advance_locked(tx, event.dossier_code)


async def on_calendar_day_declared(tx: UnitOfWork, event: CalendarDayDeclared, envelope: Envelope) -> None:
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


async def on_calendar_day_forgotten(tx: UnitOfWork, event: CalendarDayForgotten, envelope: Envelope) -> None:
    """A province withdrew a declared day: the national calendar rules it again."""
    await store.forget_day(session=tx.session, province=event.province, day=event.day, at=event.occurred_at)


async def on_rules_published(tx: UnitOfWork, event: RulesPublished, envelope: Envelope, *, deps: WorkflowDeps) -> None:
    """Intake published a rule set version: keep it (dossiers already received keep the version they recorded)."""
    await lawstore.apply_rules_published(tx, event, deps.law)


async def on_units_declared(tx: UnitOfWork, event: UnitsDeclared, envelope: Envelope, *, deps: WorkflowDeps) -> None:
    """Intake entered or corrected administrative units: keep them."""
    await lawstore.apply_units_declared(tx, event, deps.law)


async def on_unit_merged(tx: UnitOfWork, event: UnitMerged, envelope: Envelope, *, deps: WorkflowDeps) -> None:
    """A unit was merged into another: keep its end, and hand every open case of it over to the successor (paused
    and late ones too) with its code, history and deadlines, each with ``case.handed_over``. A case already moved is
    not moved again."""
    await lawstore.apply_unit_merged(tx, event, deps.law)
    open_statuses = [s.value for s in CaseStatus if s not in domain.FINAL]
    for code in await store.open_codes_of_unit(session=tx.session, unit=event.code, open_statuses=open_statuses):
        found = await _locked(tx, code)
        if found is not None:
            await _apply(tx, found[0], domain.hand_over_unit(found[1], into=event.into, now=tx.now))


def subscriptions(deps: WorkflowDeps) -> Subscription:
    """What the workflow listens to."""
    return Subscription(
        producers=(INTAKE, DIGITIZATION, PAYMENTS),
        handlers={
            DossierReceived: partial(on_dossier_received, deps=deps),
            DossierImported: on_dossier_imported,
            DossierSupplemented: partial(on_dossier_supplemented, deps=deps),
            DossierWithdrawn: on_dossier_withdrawn,
            DocumentSigned: on_document_signed,
            PaymentRequested: on_payment_requested,
            PaymentConfirmed: on_payment_confirmed,
            PaymentRefunded: on_payment_refunded,
            CalendarDayDeclared: on_calendar_day_declared,
            CalendarDayForgotten: on_calendar_day_forgotten,
            RulesPublished: partial(on_rules_published, deps=deps),
            UnitsDeclared: partial(on_units_declared, deps=deps),
            UnitMerged: partial(on_unit_merged, deps=deps),
        },
    )
