"""Workflow's pages for people: the applicant's signed page of a dossier, with its rating and feedback forms.

Every link the applicant is given (e-mail, SMS, Forms 02/04/05, ``GET /api/v1/cases/{code}/public-links``) opens
``/trang/theo-doi/{code}?sig=…``: the status in words, the appointment, the public steps so far (what happened and
when: no officer, no internal note), after return the rating form (once), and the feedback form (phản ánh, kiến
nghị). The forms post to ``…/danh-gia`` and ``…/phan-anh`` through the same handlers as the JSON API
(``POST /api/v1/public/cases/{code}/rating`` and ``…/feedback``), carry a signed token (``deps.forms``), and answer
with a redirect to the page (post, redirect, get: reloading it sends nothing twice).

The page shows no more than ``GET /api/v1/public/cases/{code}``: neither the applicant's name nor contact. A link
that this service did not sign for the code is the Vietnamese 403 page before anything is read, so the page does
not tell whether a dossier exists; a signed link to a code workflow does not know is the 404 page.

Links sent before these pages existed (``/api/v1/public/cases/{code}/rating?sig=…``, ``…/feedback?sig=…``, POST
only) now also answer a GET: a redirect to the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from services.workflow import domain, handlers, store
from services.workflow.deps import Deps, WorkflowDeps
from services.workflow.domain import CaseState, CaseStatus
from services.workflow.models import RateCase, RatingCriteria, SubmitFeedback
from services.workflow.notifications import (
    CASE_PAGE,
    FEEDBACK_PART,
    RATING_PART,
    case_page_path,
    format_time,
)
from shared.pages import CsrfToken, PageRouter
from shared.rules import Rules, shipped_book
from shared.ratelimit import Policy, rate_limited
from shared.status import STATUS_NAMES, NationalStatus

router = PageRouter(prefix=CASE_PAGE, dependencies=[rate_limited(Policy.PUBLIC)])
# GET on the links of notifications sent before the pages: the JSON routes of these paths take POST only.
earlier_links = PageRouter(prefix="/api/v1/public/cases", dependencies=[rate_limited(Policy.PUBLIC)])

# The link's signature. Missing or wrong, it is the 403 page (the handler checks it), never a 422.
Signature = Annotated[str, Query(alias="sig", description="the link's signature")]
# After a form was taken, the redirect says which (a notice on the page): "danh-gia" or "phan-anh".
Sent = Annotated[str, Query(alias="da-gui")]

M = TypeVar("M", bound=BaseModel)

# ---- what the page shows ------------------------------------------------------------------------------------------

# The tracking slip's rows a person is told about, in words. Assignments inside the unit follow each other
# (a leader gives the case to a specialist): one line says it.
STEP_NAMES: Mapping[str, str] = {
    "assign": "Chuyển bộ phận chuyên môn giải quyết",
    "supplement": "Yêu cầu bổ sung hồ sơ",
    "resume": "Nhận hồ sơ bổ sung, tiếp tục giải quyết",
    "transfer": "Chuyển cơ quan phối hợp giải quyết",
    "transfer_return": "Cơ quan phối hợp chuyển trả kết quả phối hợp",
    "result": "Có kết quả giải quyết",
    "return": "Trả kết quả cho người nộp hồ sơ",
}
CLOSING_NAMES: Mapping[CaseStatus, str] = {
    CaseStatus.WITHDRAWN: "Rút hồ sơ theo đề nghị của người nộp",
    CaseStatus.STOPPED: "Dừng giải quyết hồ sơ",
    CaseStatus.REJECTED: "Từ chối giải quyết hồ sơ",
}
RECEIVED = "Tiếp nhận hồ sơ"
# The apology line names the form of the dossier's rules: "Gửi phiếu xin lỗi và hẹn lại ngày trả kết quả" (Circular
# 01/2018), "Gửi văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết" (Circular 03/2025).
APOLOGY = "Gửi thư xin lỗi và hẹn lại ngày trả kết quả"


def apology_line(rules: Rules | None) -> str:
    """The public step of an apology, named after the dossier's Form 04."""
    spec = rules.form("apology") if rules is not None else None
    return f"Gửi {spec.title[:1].lower()}{spec.title[1:]}" if spec is not None else APOLOGY

SCORES = (("very_satisfied", "Rất hài lòng"), ("satisfied", "Hài lòng"), ("dissatisfied", "Không hài lòng"))
# The criteria of DOMAIN §1.7.2 (RatingCriteria), each optional.
SCORED_CRITERIA = (
    ("ease_of_use", "Mức độ thuận tiện khi thực hiện thủ tục"),
    ("on_time", "Giải quyết và trả kết quả đúng hẹn"),
    ("officer_attitude", "Thái độ của cán bộ, công chức"),
    ("time_taken", "Thời gian giải quyết so với quy định"),
    ("procedure_publicity", "Việc công khai thủ tục hành chính"),
    ("feedback_handling", "Việc tiếp nhận, giải thích phản ánh, kiến nghị"),
)
COUNTED_CRITERIA = (
    ("times_contacted", "Số lần ông/bà phải liên hệ với cơ quan để hoàn thành hồ sơ", 100),
    ("agencies_contacted", "Số cơ quan ông/bà phải liên hệ", 50),
)
ONE_STOP_QUESTION = ("received_and_returned_at_one_stop", "Hồ sơ có được tiếp nhận và trả kết quả tại Bộ phận Một cửa không?")


@dataclass(frozen=True)
class PublicStep:
    """One line of "what happened so far": when, and what, in words."""

    at: datetime
    name: str

    @property
    def when(self) -> str:
        """``08:15 ngày 26/11/2026``, in Vietnam time."""
        return format_time(self.at)


def public_steps(
    case: store.Case, state: CaseState, steps: list[store.CaseStep], rules: Rules | None = None
) -> list[PublicStep]:
    """What the applicant is told happened to the dossier, oldest first: reception, the tracking slip's steps in
    words (no officer, unit code or note), the apology (named as the dossier's rules name it), and how a dossier
    that ended without a result ended."""
    lines = [PublicStep(case.received_at, RECEIVED)]
    lines += [PublicStep(s.handed_at, STEP_NAMES[s.kind]) for s in steps if s.kind in STEP_NAMES]
    if case.apology_issued_at is not None:
        lines.append(PublicStep(case.apology_issued_at, apology_line(rules)))
    if state.status in CLOSING_NAMES and case.closed_at is not None:
        lines.append(PublicStep(case.closed_at, CLOSING_NAMES[state.status]))
    lines.sort(key=lambda line: line.at)  # stable: rows of one instant keep the slip's order
    return [line for i, line in enumerate(lines) if i == 0 or line.name != lines[i - 1].name]


def status_tone(national: NationalStatus) -> str:
    """The status badge's class (shared stylesheet): done, waiting for the applicant, or ended without a result."""
    if national in (NationalStatus.RESOLVED, NationalStatus.RETURNED):
        return "done"
    if national in (NationalStatus.SUPPLEMENT_REQUESTED, NationalStatus.AWAITING_PAYMENT):
        return "warning"
    if national in (NationalStatus.NOT_ACCEPTED, NationalStatus.WITHDRAWN, NationalStatus.STOPPED):
        return "stopped"
    return ""


def page_url(code: str, signature: str, *, sent: str | None = None, part: str | None = None) -> str:
    """The dossier's page as a same-site URL (a redirect's ``Location``, a form's ``action`` is ``form_url``)."""
    query = {"sig": signature} | ({"da-gui": sent} if sent else {})
    return f"{case_page_path(code)}?{urlencode(query)}" + (f"#{part}" if part else "")


def form_path(code: str, part: str) -> str:
    """The path a form of the page posts to: its token is issued for it, its cookie is scoped to it."""
    return f"{case_page_path(code)}/{part}"


def form_url(code: str, part: str, signature: str) -> str:
    """The ``action`` of a form of the page: its path and the link's signature."""
    return f"{form_path(code, part)}?{urlencode({'sig': signature})}"


def _case_page(
    request: Request,
    deps: WorkflowDeps,
    case: store.Case,
    state: CaseState,
    steps: list[store.CaseStep],
    *,
    signature: str,
    sent: str,
    rules: Rules | None = None,
) -> HTMLResponse:
    """The page of a dossier, with a fresh token for each form it shows (their cookies set on the response).

    ``rules``: the dossier's (its feedback deadline, its form names); without them, the shipped rules in force at its
    reception."""
    if rules is None:
        rules = handlers.rules_of(shipped_book(), case)
    national = domain.NATIONAL_STATUS[state.status]
    can_rate = domain.can_rate(state)
    tokens: dict[str, CsrfToken] = {FEEDBACK_PART: deps.forms.issue(form_path(case.code, FEEDBACK_PART))}
    if can_rate:
        tokens[RATING_PART] = deps.forms.issue(form_path(case.code, RATING_PART))
    one_stop = case.receiving_unit or case.unit
    context: dict[str, Any] = {
        "page_title": f"Hồ sơ {case.code}",
        "unit_name": deps.settings.unit_names.get(one_stop),
        "code": case.code,
        "procedure_name": case.procedure_name,
        "status_name": STATUS_NAMES[national],
        "status_tone": status_tone(national),
        "appointment_at": format_time(case.appointment_at),
        "rescheduled_at": format_time(case.due_at_rescheduled),
        "returned_at": format_time(case.returned_at),
        "steps": public_steps(case, state, steps, rules),
        "open": state.status not in domain.FINAL,
        "returned": state.status == CaseStatus.RETURNED,
        "can_rate": can_rate,
        "rated": case.rated_at is not None,
        "sent": sent if sent in (RATING_PART, FEEDBACK_PART) else "",
        "feedback_days": rules.deadlines.feedback_working_days,
        "rating_action": form_url(case.code, RATING_PART, signature),
        "feedback_action": form_url(case.code, FEEDBACK_PART, signature),
        "rating_csrf": tokens.get(RATING_PART),
        "feedback_csrf": tokens[FEEDBACK_PART],
        "scores": SCORES,
        "scored_criteria": SCORED_CRITERIA,
        "counted_criteria": COUNTED_CRITERIA,
        "one_stop_question": ONE_STOP_QUESTION,
    }
    response = deps.pages.render(request, "case.html", context)
    for token in tokens.values():  # two forms, two tokens: Pages.render sets the cookie of one
        token.set_cookie(response)
    return response


# ---- what a form sent ---------------------------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _valid(model: type[M], values: dict[str, Any]) -> M:
    """The command, or the 422 page (through the app's handler of request validation errors)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        raise RequestValidationError(errors) from None


def rating_command(form: FormData) -> RateCase:
    """The rating form as the JSON API's command: the criteria left blank are left out."""
    criteria = {name: value for name in RatingCriteria.model_fields if (value := _text(form, name))}
    return _valid(RateCase, {"rating": _text(form, "rating") or None, "criteria": criteria, "comment": _text(form, "comment") or None})


def feedback_command(form: FormData) -> SubmitFeedback:
    """The feedback form as the JSON API's command (the channel is the signed link's, whatever is sent)."""
    return _valid(
        SubmitFeedback,
        {"content": _text(form, "content"), "contact": _text(form, "contact") or None, "channel": "public_link"},
    )


# ---- routes -------------------------------------------------------------------------------------------------------


@router.get("/{code}", name="workflow_case_page")
async def case_page(request: Request, code: str, deps: Deps, sig: Signature = "", sent: Sent = "") -> HTMLResponse:
    async with deps.db.reading() as tx:
        case, state, steps, rules = await handlers.public_case_page(tx, code, signature=sig, deps=deps)
    return _case_page(request, deps, case, state, steps, signature=sig, sent=sent, rules=rules)


@router.post(f"/{{code}}/{RATING_PART}", name="workflow_case_rating")
async def rate(request: Request, code: str, deps: Deps, sig: Signature = "") -> Response:
    await deps.forms.verify(request)
    command = rating_command(await request.form())
    try:
        async with deps.db.unit_of_work(actor="applicant") as tx:
            await handlers.rate(tx, code, command, signature=sig, deps=deps)
    except domain.RuleViolation as refused:
        if refused.slug != "already-rated":
            raise
        context = {"page_title": "Hồ sơ đã được đánh giá", "code": code, "back": page_url(code, sig)}
        return deps.pages.render(request, "already_rated.html", context, status_code=409)
    return RedirectResponse(page_url(code, sig, sent=RATING_PART, part=RATING_PART), status_code=303)


@router.post(f"/{{code}}/{FEEDBACK_PART}", name="workflow_case_feedback")
async def send_feedback(request: Request, code: str, deps: Deps, sig: Signature = "") -> Response:
    await deps.forms.verify(request)
    command = feedback_command(await request.form())
    async with deps.db.unit_of_work(actor="applicant") as tx:
        await handlers.public_feedback(tx, code, command, signature=sig, deps=deps)
    return RedirectResponse(page_url(code, sig, sent=FEEDBACK_PART, part=FEEDBACK_PART), status_code=303)


@earlier_links.get("/{code}/rating", name="workflow_earlier_rating_link")
async def earlier_rating_link(code: str, sig: Signature = "") -> Response:
    return RedirectResponse(page_url(code, sig, part=RATING_PART), status_code=301)


@earlier_links.get("/{code}/feedback", name="workflow_earlier_feedback_link")
async def earlier_feedback_link(code: str, sig: Signature = "") -> Response:
    return RedirectResponse(page_url(code, sig, part=FEEDBACK_PART), status_code=301)
