"""Workflow routes: validate, open the transaction, call one handler, map the result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from services.workflow import domain, handlers, notifications, printing, store
from services.workflow.deps import Deps
from services.workflow.domain import CaseState, CaseStatus
from services.workflow.models import (
    AnswerFeedback,
    Approve,
    AssignCase,
    AttemptPublic,
    CasePublic,
    CasesPublic,
    ExplainDelay,
    FeedbackListPublic,
    FeedbackPublic,
    IssueApology,
    NotificationPublic,
    NotificationsPublic,
    OnTheSpot,
    PublicCaseView,
    PublicLinks,
    RateCase,
    RatingPublic,
    Reason,
    RequestSupplement,
    ResultGate,
    ReturnResult,
    ReturnTransfer,
    StepPublic,
    SubmitFeedback,
    TemplateBody,
    TemplatePublic,
    TemplatesPublic,
    TrackingSlipPublic,
    TransferCase,
)
from shared import forms
from shared.auth import Principal, require_roles
from shared.calendar import WorkingCalendar
from shared.errors import Problem, problem_response
from shared.ratelimit import Policy, rate_limited
from shared.roles import CASE_WORKERS, OFFICIALS, Role
from shared.status import STATUS_NAMES

router = APIRouter(prefix="/api/v1", tags=["cases"])
public_router = APIRouter(prefix="/api/v1/public", tags=["public"], dependencies=[rate_limited(Policy.PUBLIC)])

Official = Annotated[Principal, require_roles(*OFFICIALS)]
Clerk = Annotated[Principal, require_roles(Role.CLERK)]
# The officers who process a case: the specialist it is given to, and the unit's leader.
CaseOfficer = Annotated[Principal, require_roles(Role.SPECIALIST, Role.LEADER)]
Leader = Annotated[Principal, require_roles(Role.LEADER)]
CaseWorker = Annotated[Principal, require_roles(*CASE_WORKERS)]
CounterOfficer = Annotated[Principal, require_roles(Role.CLERK, Role.LEADER)]
Signature = Annotated[str, Query(alias="sig", min_length=1, max_length=128, description="the link's signature")]
Admin = Annotated[Principal, require_roles(Role.ADMIN)]


# ---- results and refusals as documents ----------------------------------------------------------------


def case_public(case: store.Case, state: CaseState, calendar: WorkingCalendar) -> CasePublic:
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
        "national_status_name": STATUS_NAMES[national],
        "allowed_actions": domain.allowed_actions(state),
        "on_the_spot": domain.on_the_spot_eligible(state, calendar),
        "result_gate": gate,
    }
    return CasePublic(**values)


def _feedback_public(feedback: store.Feedback) -> FeedbackPublic:
    return FeedbackPublic(dossier_code=feedback.case_code, **feedback.model_dump(exclude={"case_code", "contact"}))


def _template_public(row: store.NotificationTemplate, sample: notifications.Rendered) -> TemplatePublic:
    kind, channel = notifications.Kind(row.kind), notifications.Channel(row.channel)
    return TemplatePublic(
        kind=kind,
        channel=channel,
        subject=row.subject,
        body=row.body,
        fields=sorted(notifications.COMMON_FIELDS | notifications.KIND_FIELDS[kind]),
        sample=sample.body,
        sample_segments=sample.segments if channel is notifications.Channel.SMS else None,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def domain_problem(request: Request, exc: domain.DomainError) -> JSONResponse:
    """Domain refusals as problem documents: 409 for the state, 422 naming the field."""
    if isinstance(exc, domain.InvalidInput):
        errors = [{"location": ["body", exc.field], "message": exc.message, "type": "value_error"}]
        problem = Problem(422, exc.slug, "The request is not valid", exc.message, errors=errors)
    elif isinstance(exc, domain.ActionNotAllowed):
        problem = Problem(
            409,
            exc.slug,
            "Action not allowed in this state",
            exc.message,
            case_status=exc.status.value,
            action=exc.action.value,
            allowed_actions=[a.value for a in exc.allowed],
        )
    else:
        details = exc.details if isinstance(exc, domain.RuleViolation) else {}
        problem = Problem(409, exc.slug, "Refused by the rules", exc.message, **details)
    return problem_response(problem, request)


# ---- reading ----------------------------------------------------------------------------------------


@router.get("/cases", response_model=CasesPublic, summary="An officer's worklist, soonest deadline first")
async def list_cases(
    deps: Deps,
    user: Official,
    assignee: Annotated[str | None, Query(max_length=200, description="'me', an officer id, or none for all")] = None,
    due: Annotated[Literal["soon", "overdue"] | None, Query(description="near the deadline, or past it")] = None,
    status: Annotated[list[CaseStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasesPublic:
    async with deps.db.reading() as tx:
        views, total = await handlers.worklist(
            tx, deps=deps, user=user, assignee=assignee, due=due, statuses=status, limit=limit, offset=offset
        )
        return CasesPublic(data=[case_public(*v, deps.calendar) for v in views], count=total)


@router.get("/cases/{code}", response_model=CasePublic, summary="A case, its clock and its allowed actions")
async def get_case(code: str, deps: Deps, user: Official) -> CasePublic:
    async with deps.db.reading() as tx:
        return case_public(*await handlers.get_case(tx, code, user=user), deps.calendar)


@router.get("/cases/{code}/steps", response_model=TrackingSlipPublic, summary="The tracking slip (Form 05) as data")
async def get_steps(code: str, deps: Deps, user: Official) -> TrackingSlipPublic:
    async with deps.db.reading() as tx:
        _, rows = await handlers.tracking_slip(tx, code, user=user)
        data = [StepPublic.model_validate(r, from_attributes=True) for r in rows]
        return TrackingSlipPublic(dossier_code=code, data=data, count=len(data))


@router.get(
    "/cases/{code}/notifications",
    response_model=NotificationsPublic,
    tags=["notifications"],
    summary="What the applicant was told, by e-mail or SMS, and every delivery attempt",
)
async def get_notifications(code: str, deps: Deps, user: Official) -> NotificationsPublic:
    async with deps.db.reading() as tx:
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


@router.get("/notification-templates", response_model=TemplatesPublic, tags=["notifications"], summary="Notification templates")
async def list_templates(deps: Deps, user: Official) -> TemplatesPublic:
    async with deps.db.reading() as tx:
        rows = await handlers.list_templates(tx, deps=deps)
        return TemplatesPublic(data=[_template_public(*r) for r in rows], count=len(rows))


@router.put(
    "/notification-templates/{kind}/{channel}",
    response_model=TemplatePublic,
    tags=["notifications"],
    summary="Change the words of a notification (admin); {field} placeholders of its kind only",
)
async def put_template(
    kind: notifications.Kind,
    channel: notifications.Channel,
    body: TemplateBody,
    deps: Deps,
    user: Admin,
) -> TemplatePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        row, sample = await handlers.put_template(tx, kind, channel, body, deps=deps, user=user)
    return _template_public(row, sample)


# ---- commands -----------------------------------------------------------------------------------------

_CONFLICT = {409: {"description": "the state does not allow it, or another officer acted first (allowed_actions listed)"}}


@router.post("/cases/{code}/assign", response_model=CasePublic, responses=_CONFLICT, summary="Hand to a department / officer")
async def assign(code: str, body: AssignCase, deps: Deps, user: CaseWorker) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.assign(tx, code, body, user=user)
    return case_public(*result, deps.calendar)


@router.post(
    "/cases/{code}/supplement-request",
    response_model=CasePublic,
    responses=_CONFLICT,
    summary="Request additions (Form 02); the clock pauses",
)
async def request_supplement(code: str, body: RequestSupplement, deps: Deps, user: CaseOfficer) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.request_supplement(tx, code, body, deps=deps, user=user)
    return case_public(*result, deps.calendar)


@router.post("/cases/{code}/transfer", response_model=CasePublic, responses=_CONFLICT, summary="Send to another agency")
async def transfer(code: str, body: TransferCase, deps: Deps, user: CaseOfficer) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.transfer(tx, code, body, deps=deps, user=user)
    return case_public(*result, deps.calendar)


@router.post(
    "/cases/{code}/transfer-return", response_model=CasePublic, responses=_CONFLICT, summary="The agency handed it back"
)
async def return_transfer(code: str, body: ReturnTransfer, deps: Deps, user: CaseWorker) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.return_transfer(tx, code, body, user=user)
    return case_public(*result, deps.calendar)


@router.post("/cases/{code}/approve", response_model=CasePublic, responses=_CONFLICT, summary="Approve the result")
async def approve(code: str, deps: Deps, user: Leader, body: Approve | None = None) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.approve(tx, code, body or Approve(), user=user)
    return case_public(*result, deps.calendar)


@router.post("/cases/{code}/reject", response_model=CasePublic, responses=_CONFLICT, summary="Refuse, with a reason")
async def reject(code: str, body: Reason, deps: Deps, user: Leader) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.reject(tx, code, body, user=user)
    return case_public(*result, deps.calendar)


@router.post("/cases/{code}/stop", response_model=CasePublic, responses=_CONFLICT, summary="Stop processing")
async def stop(code: str, body: Reason, deps: Deps, user: Leader) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.stop(tx, code, body, user=user)
    return case_public(*result, deps.calendar)


@router.post(
    "/cases/{code}/apology", response_model=CasePublic, responses=_CONFLICT, summary="Apology (Form 04) and a new date, once"
)
async def issue_apology(code: str, body: IssueApology, deps: Deps, user: CaseOfficer) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.issue_apology(tx, code, body, deps=deps, user=user)
    return case_public(*result, deps.calendar)


@router.post(
    "/cases/{code}/explanation",
    response_model=CasePublic,
    responses=_CONFLICT,
    summary="Explain a late dossier to the head of the unit",
)
async def explain_delay(code: str, body: ExplainDelay, deps: Deps, user: CaseOfficer) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.explain_delay(tx, code, body, user=user)
    return case_public(*result, deps.calendar)


@router.post("/cases/{code}/return", response_model=CasePublic, responses=_CONFLICT, summary="Return the result")
async def return_result(code: str, body: ReturnResult, deps: Deps, user: Clerk) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.return_result(tx, code, body, user=user)
    return case_public(*result, deps.calendar)


@router.post(
    "/cases/{code}/on-the-spot",
    response_model=CasePublic,
    responses=_CONFLICT,
    summary="4 tại chỗ: decide and return in one sitting",
)
async def on_the_spot(code: str, deps: Deps, user: CounterOfficer, body: OnTheSpot | None = None) -> CasePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        result = await handlers.on_the_spot(tx, code, body or OnTheSpot(), deps=deps, user=user)
    return case_public(*result, deps.calendar)


# ---- the applicant's signed links ------------------------------------------------------------------------


@router.get("/cases/{code}/public-links", response_model=PublicLinks, summary="The applicant's signed links")
async def public_links(code: str, deps: Deps, user: Official) -> PublicLinks:
    async with deps.db.reading() as tx:
        links = await handlers.public_links(tx, code, deps=deps, user=user)
    return PublicLinks(
        dossier_code=code,
        signature=links.signature,
        status_url=links.status_url,
        rating_url=links.rating_url,
        feedback_url=links.feedback_url,
    )


@public_router.get("/cases/{code}", response_model=PublicCaseView, summary="The applicant's view of the dossier")
async def public_case(code: str, sig: Signature, deps: Deps) -> PublicCaseView:
    async with deps.db.reading() as tx:
        case, state = await handlers.public_case(tx, code, signature=sig, deps=deps)
        national = domain.NATIONAL_STATUS[state.status]
        return PublicCaseView(
            code=code,
            procedure_name=case.procedure_name,
            status=state.status,
            national_status=national,
            national_status_name=STATUS_NAMES[national],
            appointment_at=case.appointment_at,
            due_at_rescheduled=case.due_at_rescheduled,
            returned_at=case.returned_at,
            can_rate=domain.can_rate(state),
            rated=case.rated_at is not None,
        )


@public_router.post(
    "/cases/{code}/rating",
    status_code=201,
    response_model=RatingPublic,
    responses={403: {"description": "the link is not valid"}, 409: {"description": "not returned yet, or rated already"}},
    summary="Rate the dossier (once, after return)",
)
async def rate(code: str, sig: Signature, body: RateCase, deps: Deps) -> RatingPublic:
    async with deps.db.unit_of_work(actor="applicant") as tx:
        rating = await handlers.rate(tx, code, body, signature=sig, deps=deps)
    return RatingPublic(dossier_code=code, **rating.model_dump(exclude={"case_code", "unit"}))


@public_router.post(
    "/cases/{code}/feedback", status_code=201, response_model=FeedbackPublic, summary="Send feedback about the dossier"
)
async def public_feedback(code: str, sig: Signature, body: SubmitFeedback, deps: Deps) -> FeedbackPublic:
    async with deps.db.unit_of_work(actor="applicant") as tx:
        feedback = await handlers.public_feedback(tx, code, body, signature=sig, deps=deps)
    return _feedback_public(feedback)


# ---- feedback, as officials see it -------------------------------------------------------------------------


@router.post(
    "/cases/{code}/feedback",
    status_code=201,
    response_model=FeedbackPublic,
    tags=["feedback"],
    summary="Record feedback received at the counter, by phone or by mail",
)
async def record_feedback(code: str, body: SubmitFeedback, deps: Deps, user: CaseWorker) -> FeedbackPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        feedback = await handlers.record_feedback(tx, code, body, deps=deps, user=user)
    return _feedback_public(feedback)


@router.get("/feedback", response_model=FeedbackListPublic, tags=["feedback"], summary="Feedback, soonest deadline first")
async def list_feedback(
    deps: Deps,
    user: Official,
    state: Annotated[Literal["open", "overdue", "answered"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FeedbackListPublic:
    async with deps.db.reading() as tx:
        rows, total = await handlers.list_feedback(tx, user=user, state=state, limit=limit, offset=offset)
        return FeedbackListPublic(data=[_feedback_public(f) for f in rows], count=total)


@router.post(
    "/feedback/{feedback_id}/answer", response_model=FeedbackPublic, tags=["feedback"], summary="Answer feedback, once"
)
async def answer_feedback(feedback_id: str, body: AnswerFeedback, deps: Deps, user: CaseOfficer) -> FeedbackPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        feedback = await handlers.answer_feedback(tx, feedback_id, body, user=user)
    return _feedback_public(feedback)


# ---- printable forms ----------------------------------------------------------------------------------------

_PDF = {200: {"content": {"application/pdf": {}}, "description": "the form as PDF"}}


async def _pdf(render: Callable[[Any], bytes], form: Any, name: str) -> Response:
    # Rendering is CPU-bound (font subsetting): off the event loop, after the transaction.
    content = await asyncio.to_thread(render, form)
    return Response(content, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})


@router.get(
    "/cases/{code}/forms/02",
    response_class=Response,
    responses=_PDF,
    tags=["forms"],
    summary="Form 02: supplement request from appraisal (PDF)",
)
async def form_02(code: str, deps: Deps, user: Official) -> Response:
    async with deps.db.reading() as tx:
        form = await handlers.supplement_request_form(tx, code, deps=deps, user=user)
    return await _pdf(forms.render_supplement_request, form, f"{code}-mau-02.pdf")


@router.get(
    "/cases/{code}/forms/04",
    response_class=Response,
    responses=_PDF,
    tags=["forms"],
    summary="Form 04: the apology and the new date, in the dossier's version (PDF)",
)
async def form_04(code: str, deps: Deps, user: Official) -> Response:
    async with deps.db.reading() as tx:
        form = await handlers.apology_form(tx, code, deps=deps, user=user)
    return await _pdf(printing.render_apology, form, f"{code}-mau-{form.number}.pdf")


@router.get(
    "/cases/{code}/forms/05",
    response_class=Response,
    responses=_PDF,
    tags=["forms"],
    summary="The control slip of every hand-over (PDF): Form 05, or 06 under Circular 03/2025",
)
async def form_05(code: str, deps: Deps, user: Official) -> Response:
    async with deps.db.reading() as tx:
        form = await handlers.control_slip_form(tx, code, deps=deps, user=user)
    return await _pdf(printing.render_control_slip, form, f"{code}-mau-{form.number}.pdf")


@router.get(
    "/cases/{code}/forms/stop-notice",
    response_class=Response,
    responses={
        **_PDF,
        404: {"description": "the case was not stopped, or its rules (before Circular 03/2025) have no stop notice"},
    },
    tags=["forms"],
    summary="The stop notice of a stopped case (PDF): Form 05 of Circular 03/2025",
)
async def stop_notice(code: str, deps: Deps, user: Official) -> Response:
    async with deps.db.reading() as tx:
        form = await handlers.stop_notice_form(tx, code, deps=deps, user=user)
    return await _pdf(printing.render_stop_notice, form, f"{code}-mau-{form.number}.pdf")
