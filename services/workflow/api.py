"""Workflow routes: validate, call one handler, map the result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from services.workflow import domain, handlers, notifications, store
from services.workflow.domain import Action, CaseState, CaseStatus
from shared import forms
from shared.auth import Principal, Role, require_roles
from shared.ratelimit import Policy, rate_limited
from shared.service import DbDep

router = APIRouter(prefix="/api/v1", tags=["cases"])
public_router = APIRouter(prefix="/api/v1/public", tags=["public"], dependencies=[rate_limited(Policy.PUBLIC)])

OFFICIALS = (Role.CLERK, Role.SPECIALIST, Role.LEADER, Role.ADMIN, Role.AUDITOR)
Official = Annotated[Principal, require_roles(*OFFICIALS)]
Clerk = Annotated[Principal, require_roles(Role.CLERK)]
Handler = Annotated[Principal, require_roles(Role.SPECIALIST, Role.LEADER)]
Leader = Annotated[Principal, require_roles(Role.LEADER)]
Assigner = Annotated[Principal, require_roles(Role.CLERK, Role.SPECIALIST, Role.LEADER)]
CounterOfficer = Annotated[Principal, require_roles(Role.CLERK, Role.LEADER)]
Signature = Annotated[str, Query(alias="sig", min_length=1, max_length=128, description="the link's signature")]
Admin = Annotated[Principal, require_roles(Role.ADMIN)]


# ---- responses ----------------------------------------------------------------------------------


class ResultGate(BaseModel):
    """What the result waits for (DOMAIN §1.6): approval, signature and, where due, payment."""

    approved: bool
    signed: bool
    fee_due: bool
    paid: bool
    pending_payments: list[str]
    missing: list[str]


class CasePublic(BaseModel):
    """A case, where it stands, its clock and what may happen next."""

    code: str
    unit: str
    receiving_unit: str | None
    procedure_code: str
    procedure_name: str
    procedure_version: int
    applicant_name: str
    channel: str
    status: CaseStatus
    national_status: int
    national_status_name: str
    version: int
    allowed_actions: list[Action]
    received_at: datetime
    received_by: str | None
    on_the_spot: bool
    fee_due_amount: int
    fee_pending: bool
    appointment_at: datetime | None
    due_at_original: datetime | None
    legal_due_at: datetime | None
    due_at: datetime | None
    due_at_rescheduled: datetime | None
    department: str | None
    assignee: str | None
    holder_unit: str | None
    holder_officer: str | None
    transfer_agency: str | None
    transfer_step_due_at: datetime | None
    supplement_count: int
    paused_at: datetime | None
    remaining_working_days: int | None
    is_late: bool
    late_reason: str | None
    late_at: datetime | None
    late_holder_unit: str | None
    late_holder_officer: str | None
    apology_issued_at: datetime | None
    apology_reason: str | None
    apology_timely: bool | None
    explanation: str | None
    explained_at: datetime | None
    explained_by: str | None
    approved_at: datetime | None
    approved_by: str | None
    finished_at: datetime | None
    timeliness: str | None
    returned_at: datetime | None
    return_channel: str | None
    tracking_number: str | None
    returned_on_the_spot: bool
    closed_at: datetime | None
    closed_reason: str | None
    warning_sent_at: datetime | None
    overdue_sent_at: datetime | None
    rated_at: datetime | None
    result_gate: ResultGate


class CasesPublic(BaseModel):
    """A page of cases, soonest deadline first."""

    data: list[CasePublic]
    count: int


class StepPublic(BaseModel):
    """One row of the tracking slip (Form 05)."""

    seq: int
    kind: str
    from_unit: str | None
    from_officer: str | None
    to_unit: str | None
    to_officer: str | None
    handed_at: datetime
    step_due_at: datetime | None
    completed_at: datetime | None
    late: bool | None
    note: str | None


class TrackingSlipPublic(BaseModel):
    """The tracking slip of a case."""

    dossier_code: str
    data: list[StepPublic]
    count: int


class PublicLinks(BaseModel):
    """The applicant's signed links: status, rating and feedback."""

    dossier_code: str
    signature: str
    status_url: str
    rating_url: str
    feedback_url: str


class PublicCaseView(BaseModel):
    """What the applicant sees through the signed link (no personal data)."""

    code: str
    procedure_name: str
    status: CaseStatus
    national_status: int
    national_status_name: str
    appointment_at: datetime | None
    due_at_rescheduled: datetime | None
    returned_at: datetime | None
    can_rate: bool
    rated: bool


class RatingPublic(BaseModel):
    """A recorded rating."""

    dossier_code: str
    rating: str
    criteria: dict[str, Any]
    derived: dict[str, Any]
    comment: str | None
    rated_at: datetime


class FeedbackPublic(BaseModel):
    """A piece of citizen feedback and its answer."""

    id: str
    dossier_code: str
    unit: str
    channel: str
    content: str
    submitted_at: datetime
    due_at: datetime
    answered_at: datetime | None
    answer: str | None
    answered_by: str | None
    timeliness: str | None


class FeedbackListPublic(BaseModel):
    """A page of feedback."""

    data: list[FeedbackPublic]
    count: int


def case_public(case: store.Case, state: CaseState, rules: handlers.Rules) -> CasePublic:
    """The public shape of a case."""
    national = domain.NATIONAL_STATUS[state.status]
    gate = ResultGate(
        approved=state.approved_at is not None,
        signed=state.signed_at is not None,
        fee_due=state.fee_due,
        paid=state.paid_at is not None,
        pending_payments=list(state.pending_payments),
        missing=domain.gate_missing(state),
    )
    values = {name: getattr(case, name) for name in CasePublic.model_fields if hasattr(case, name)}
    values |= {
        "status": state.status,
        "national_status": national,
        "national_status_name": domain.NATIONAL_STATUS_NAME[national],
        "allowed_actions": domain.allowed_actions(state),
        "on_the_spot": domain.on_the_spot_eligible(state, rules.calendar),
        "result_gate": gate,
    }
    return CasePublic(**values)


def _feedback_public(feedback: store.Feedback) -> FeedbackPublic:
    return FeedbackPublic(dossier_code=feedback.case_code, **feedback.model_dump(exclude={"case_code", "contact"}))


def _rules(request: Request) -> handlers.Rules:
    return request.app.state.rules


# ---- reading ----------------------------------------------------------------------------------------


@router.get("/cases", response_model=CasesPublic, summary="An officer's worklist, soonest deadline first")
async def list_cases(
    request: Request,
    db: DbDep,
    user: Official,
    assignee: Annotated[str | None, Query(max_length=200, description="'me', an officer id, or none for all")] = None,
    due: Annotated[Literal["soon", "overdue"] | None, Query(description="near the deadline, or past it")] = None,
    status: Annotated[list[CaseStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasesPublic:
    async with db.unit_of_work() as tx:
        views, total = await handlers.inbox(
            tx, user=user, rules=_rules(request), assignee=assignee, due=due, statuses=status, limit=limit, offset=offset
        )
    return CasesPublic(data=[case_public(*v, _rules(request)) for v in views], count=total)


@router.get("/cases/{code}", response_model=CasePublic, summary="A case, its clock and its allowed actions")
async def get_case(code: str, request: Request, db: DbDep, user: Official) -> CasePublic:
    async with db.unit_of_work() as tx:
        result = await handlers.get_case(tx, code, user=user)
    return case_public(*result, _rules(request))


@router.get("/cases/{code}/steps", response_model=TrackingSlipPublic, summary="The tracking slip (Form 05) as data")
async def get_steps(code: str, db: DbDep, user: Official) -> TrackingSlipPublic:
    async with db.unit_of_work() as tx:
        _, rows = await handlers.tracking_slip(tx, code, user=user)
    data = [StepPublic.model_validate(r, from_attributes=True) for r in rows]
    return TrackingSlipPublic(dossier_code=code, data=data, count=len(data))


class AttemptPublic(BaseModel):
    """One try at delivering a notification: ``sending`` while in flight, ``interrupted`` when its sender died."""

    number: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: str | None
    provider_message_id: str | None


class NotificationPublic(BaseModel):
    """A message owed to the applicant, its words once rendered, and every attempt to deliver it."""

    id: str
    kind: notifications.Kind
    channel: notifications.Channel
    recipient: str
    status: notifications.Status
    subject: str | None
    body: str | None
    encoding: str | None
    segments: int | None
    attempts: list[AttemptPublic]
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


class NotificationsPublic(BaseModel):
    """A dossier's notifications, oldest first."""

    dossier_code: str
    data: list[NotificationPublic]
    count: int


class TemplatePublic(BaseModel):
    """A notification template, its fields and, for SMS, how long the sample dossier's message would be."""

    kind: notifications.Kind
    channel: notifications.Channel
    subject: str | None
    body: str
    fields: list[str]
    sample: str
    sample_segments: int | None
    updated_at: datetime
    updated_by: str | None


class TemplatesPublic(BaseModel):
    """Every notification template."""

    data: list[TemplatePublic]
    count: int


@router.get(
    "/cases/{code}/notifications",
    response_model=NotificationsPublic,
    tags=["notifications"],
    summary="What the applicant was told, by e-mail or SMS, and every delivery attempt",
)
async def get_notifications(code: str, db: DbDep, user: Official) -> NotificationsPublic:
    async with db.unit_of_work() as tx:
        rows = await handlers.case_notifications(tx, code, user=user)
    data = [
        NotificationPublic(
            **n.model_dump(exclude={"case_code", "event_id", "facts", "attempts", "next_attempt_at", "provider_message_id"}),
            next_attempt_at=n.next_attempt_at if n.status == notifications.Status.PENDING else None,
            attempts=[AttemptPublic.model_validate(a, from_attributes=True) for a in attempts],
        )
        for n, attempts in rows
    ]
    return NotificationsPublic(dossier_code=code, data=data, count=len(data))


def _template_public(row: store.NotificationTemplate, request: Request) -> TemplatePublic:
    kind, channel = notifications.Kind(row.kind), notifications.Channel(row.channel)
    template = notifications.Template(kind, channel, row.body, row.subject)
    rendered = notifications.render(template, notifications.SAMPLE_FACTS, request.app.state.render_context)
    return TemplatePublic(
        kind=kind,
        channel=channel,
        subject=row.subject,
        body=row.body,
        fields=sorted(notifications.COMMON_FIELDS | notifications.KIND_FIELDS[kind]),
        sample=rendered.body,
        sample_segments=rendered.segments if channel is notifications.Channel.SMS else None,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


@router.get("/notification-templates", response_model=TemplatesPublic, tags=["notifications"], summary="Notification templates")
async def list_templates(request: Request, db: DbDep, user: Official) -> TemplatesPublic:
    async with db.unit_of_work() as tx:
        rows = await store.templates(session=tx.session)
    return TemplatesPublic(data=[_template_public(r, request) for r in rows], count=len(rows))


@router.put(
    "/notification-templates/{kind}/{channel}",
    response_model=TemplatePublic,
    tags=["notifications"],
    summary="Change the words of a notification (admin); {field} placeholders of its kind only",
)
async def put_template(
    kind: notifications.Kind,
    channel: notifications.Channel,
    body: handlers.TemplateBody,
    request: Request,
    db: DbDep,
    user: Admin,
) -> TemplatePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.put_template(tx, kind, channel, body, user=user)
    return _template_public(row, request)


# ---- commands -----------------------------------------------------------------------------------------

_CONFLICT = {409: {"description": "the state does not allow it, or another officer acted first (allowed_actions listed)"}}


@router.post("/cases/{code}/assign", response_model=CasePublic, responses=_CONFLICT, summary="Hand to a department / officer")
async def assign(code: str, body: handlers.AssignCase, request: Request, db: DbDep, user: Assigner) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.assign(tx, code, body, user=user)
    return case_public(*result, _rules(request))


@router.post(
    "/cases/{code}/supplement-request",
    response_model=CasePublic,
    responses=_CONFLICT,
    summary="Request additions (Form 02); the clock pauses",
)
async def request_supplement(
    code: str, body: handlers.RequestSupplement, request: Request, db: DbDep, user: Handler
) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.request_supplement(tx, code, body, user=user, rules=_rules(request))
    return case_public(*result, _rules(request))


@router.post("/cases/{code}/transfer", response_model=CasePublic, responses=_CONFLICT, summary="Send to another agency")
async def transfer(code: str, body: handlers.TransferCase, request: Request, db: DbDep, user: Handler) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.transfer(tx, code, body, user=user, rules=_rules(request))
    return case_public(*result, _rules(request))


@router.post(
    "/cases/{code}/transfer-return", response_model=CasePublic, responses=_CONFLICT, summary="The agency handed it back"
)
async def return_transfer(
    code: str, body: handlers.ReturnTransfer, request: Request, db: DbDep, user: Assigner
) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.return_transfer(tx, code, body, user=user)
    return case_public(*result, _rules(request))


@router.post("/cases/{code}/approve", response_model=CasePublic, responses=_CONFLICT, summary="Approve the result")
async def approve(code: str, request: Request, db: DbDep, user: Leader, body: handlers.Approve | None = None) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.approve(tx, code, body or handlers.Approve(), user=user)
    return case_public(*result, _rules(request))


@router.post("/cases/{code}/reject", response_model=CasePublic, responses=_CONFLICT, summary="Refuse, with a reason")
async def reject(code: str, body: handlers.Reason, request: Request, db: DbDep, user: Leader) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.reject(tx, code, body, user=user)
    return case_public(*result, _rules(request))


@router.post("/cases/{code}/stop", response_model=CasePublic, responses=_CONFLICT, summary="Stop processing")
async def stop(code: str, body: handlers.Reason, request: Request, db: DbDep, user: Leader) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.stop(tx, code, body, user=user)
    return case_public(*result, _rules(request))


@router.post(
    "/cases/{code}/apology", response_model=CasePublic, responses=_CONFLICT, summary="Apology (Form 04) and a new date, once"
)
async def issue_apology(code: str, body: handlers.IssueApology, request: Request, db: DbDep, user: Handler) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.issue_apology(tx, code, body, user=user, rules=_rules(request))
    return case_public(*result, _rules(request))


@router.post(
    "/cases/{code}/explanation",
    response_model=CasePublic,
    responses=_CONFLICT,
    summary="Explain a late dossier to the head of the unit",
)
async def explain_delay(code: str, body: handlers.ExplainDelay, request: Request, db: DbDep, user: Handler) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.explain_delay(tx, code, body, user=user)
    return case_public(*result, _rules(request))


@router.post("/cases/{code}/return", response_model=CasePublic, responses=_CONFLICT, summary="Return the result")
async def return_result(code: str, body: handlers.ReturnResult, request: Request, db: DbDep, user: Clerk) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.return_result(tx, code, body, user=user)
    return case_public(*result, _rules(request))


@router.post(
    "/cases/{code}/on-the-spot",
    response_model=CasePublic,
    responses=_CONFLICT,
    summary="4 tại chỗ: decide and return in one sitting",
)
async def on_the_spot(
    code: str, request: Request, db: DbDep, user: CounterOfficer, body: handlers.OnTheSpot | None = None
) -> CasePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.on_the_spot(tx, code, body or handlers.OnTheSpot(), user=user, rules=_rules(request))
    return case_public(*result, _rules(request))


# ---- the applicant's signed links ------------------------------------------------------------------------


def _links(request: Request, code: str) -> PublicLinks:
    rules = _rules(request)
    signature = domain.rating_signature(rules.rating_link_secret, code)
    base = request.app.state.settings.public_base_url.rstrip("/") + f"/api/v1/public/cases/{code}"
    return PublicLinks(
        dossier_code=code,
        signature=signature,
        status_url=f"{base}?sig={signature}",
        rating_url=f"{base}/rating?sig={signature}",
        feedback_url=f"{base}/feedback?sig={signature}",
    )


@router.get("/cases/{code}/public-links", response_model=PublicLinks, summary="The applicant's signed links")
async def public_links(code: str, request: Request, db: DbDep, user: Official) -> PublicLinks:
    async with db.unit_of_work() as tx:
        await handlers.get_case(tx, code, user=user)
    return _links(request, code)


@public_router.get("/cases/{code}", response_model=PublicCaseView, summary="The applicant's view of the dossier")
async def public_case(code: str, sig: Signature, request: Request, db: DbDep) -> PublicCaseView:
    handlers.check_link(_rules(request), code, sig)
    async with db.unit_of_work() as tx:
        case, state = await handlers.load(tx, code)
    national = domain.NATIONAL_STATUS[state.status]
    return PublicCaseView(
        code=code,
        procedure_name=case.procedure_name,
        status=state.status,
        national_status=national,
        national_status_name=domain.NATIONAL_STATUS_NAME[national],
        appointment_at=case.appointment_at,
        due_at_rescheduled=case.due_at_rescheduled,
        returned_at=case.returned_at,
        can_rate=Action.RATE in domain.ALLOWED[state.status] and case.rated_at is None,
        rated=case.rated_at is not None,
    )


@public_router.post(
    "/cases/{code}/rating",
    status_code=201,
    response_model=RatingPublic,
    responses={403: {"description": "the link is not valid"}, 409: {"description": "not returned yet, or rated already"}},
    summary="Rate the dossier (once, after return)",
)
async def rate(code: str, sig: Signature, body: handlers.RateCase, request: Request, db: DbDep) -> RatingPublic:
    async with db.unit_of_work(actor="applicant") as tx:
        rating = await handlers.rate(tx, code, body, signature=sig, rules=_rules(request))
    return RatingPublic(dossier_code=code, **rating.model_dump(exclude={"case_code", "unit"}))


@public_router.post(
    "/cases/{code}/feedback", status_code=201, response_model=FeedbackPublic, summary="Send feedback about the dossier"
)
async def public_feedback(
    code: str, sig: Signature, body: handlers.SubmitFeedback, request: Request, db: DbDep
) -> FeedbackPublic:
    handlers.check_link(_rules(request), code, sig)
    async with db.unit_of_work(actor="applicant") as tx:
        feedback = await handlers.submit_feedback(tx, code, body, rules=_rules(request))
    return _feedback_public(feedback)


# ---- feedback, as officials see it -------------------------------------------------------------------------


@router.post(
    "/cases/{code}/feedback",
    status_code=201,
    response_model=FeedbackPublic,
    tags=["feedback"],
    summary="Record feedback received at the counter, by phone or by mail",
)
async def record_feedback(
    code: str, body: handlers.SubmitFeedback, request: Request, db: DbDep, user: Assigner
) -> FeedbackPublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        feedback = await handlers.submit_feedback(tx, code, body, rules=_rules(request), user=user)
    return _feedback_public(feedback)


@router.get("/feedback", response_model=FeedbackListPublic, tags=["feedback"], summary="Feedback, soonest deadline first")
async def list_feedback(
    db: DbDep,
    user: Official,
    state: Annotated[Literal["open", "overdue", "answered"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FeedbackListPublic:
    async with db.unit_of_work() as tx:
        rows, total = await handlers.list_feedback(tx, user=user, state=state, limit=limit, offset=offset)
    return FeedbackListPublic(data=[_feedback_public(f) for f in rows], count=total)


@router.post(
    "/feedback/{feedback_id}/answer", response_model=FeedbackPublic, tags=["feedback"], summary="Answer feedback, once"
)
async def answer_feedback(feedback_id: str, body: handlers.AnswerFeedback, db: DbDep, user: Handler) -> FeedbackPublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        feedback = await handlers.answer_feedback(tx, feedback_id, body, user=user)
    return _feedback_public(feedback)


# ---- printable forms ----------------------------------------------------------------------------------------

_PDF = {200: {"content": {"application/pdf": {}}, "description": "the form as PDF"}}


def _form_context(request: Request, code: str) -> handlers.FormContext:
    settings = request.app.state.settings
    return handlers.FormContext(
        one_stop_name=settings.one_stop_name, unit_names=settings.unit_names, lookup_url=_links(request, code).status_url
    )


async def _pdf(render: Callable[[Any], bytes], form: Any, name: str) -> Response:
    # Rendering is CPU-bound (font subsetting): off the event loop.
    content = await asyncio.to_thread(render, form)
    return Response(content, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})


@router.get(
    "/cases/{code}/forms/02",
    response_class=Response,
    responses=_PDF,
    tags=["forms"],
    summary="Form 02: supplement request from appraisal (PDF)",
)
async def form_02(code: str, request: Request, db: DbDep, user: Official) -> Response:
    async with db.unit_of_work() as tx:
        form = await handlers.supplement_request_form(tx, code, user=user, ctx=_form_context(request, code))
    return await _pdf(forms.render_supplement_request, form, f"{code}-mau-02.pdf")


@router.get(
    "/cases/{code}/forms/04",
    response_class=Response,
    responses=_PDF,
    tags=["forms"],
    summary="Form 04: apology and new appointment (PDF)",
)
async def form_04(code: str, request: Request, db: DbDep, user: Official) -> Response:
    async with db.unit_of_work() as tx:
        form = await handlers.apology_form(tx, code, user=user, ctx=_form_context(request, code))
    return await _pdf(forms.render_apology, form, f"{code}-mau-04.pdf")


@router.get(
    "/cases/{code}/forms/05",
    response_class=Response,
    responses=_PDF,
    tags=["forms"],
    summary="Form 05: the tracking slip of every hand-over (PDF)",
)
async def form_05(code: str, request: Request, db: DbDep, user: Official) -> Response:
    async with db.unit_of_work() as tx:
        form = await handlers.control_slip_form(tx, code, user=user, ctx=_form_context(request, code))
    return await _pdf(forms.render_control_slip, form, f"{code}-mau-05.pdf")
