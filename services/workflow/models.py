"""Workflow's HTTP shapes: the commands officers and applicants send, and the ``*Public`` documents they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from services.workflow import domain, notifications
from services.workflow.domain import Action, CaseStatus

# ---- requests -------------------------------------------------------------------------------------


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
    """Send the case to another agency (liên thông) with its share of the time.

    With the procedure's step plan (the catalog's ``lien_thong_steps``), leave ``to_agency`` and ``step_days`` out to
    take the next planned step; naming another agency or time needs ``adjusted_reason``. Without a plan, name both.
    """

    to_agency: str | None = Field(
        default=None, min_length=1, max_length=300, examples=["000.00.01.H56"], description="null: the planned step's agency"
    )
    step_days: int | None = Field(default=None, ge=1, le=365, examples=[2], description="working days; null: the planned step's time")
    adjusted_reason: str | None = Field(
        default=None, min_length=1, max_length=500, description="why the step differs from the plan (required when it does)"
    )
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
    new_appointment_at: AwareDatetime = Field(examples=["2026-12-10T17:00:00+07:00"])


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


# ---- responses ------------------------------------------------------------------------------------


class ResultGate(BaseModel):
    """What the result waits for (DOMAIN §1.6): approval, signature and, where due, payment."""

    approved: bool
    signed: bool
    fee_due: bool
    paid: bool
    pending_payments: list[str]
    missing: list[str]


class PlannedStepPublic(BaseModel):
    """One step of the procedure's inter-agency plan."""

    agency: str
    amount: int
    unit: str


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
    transfer_step_no: int | None = Field(description="the running step's place in the plan, when planned")
    rules: str | None = Field(description="the rule set recorded at reception (e.g. VN.2+H56.1); null: from before refs")
    step_plan: list[PlannedStepPublic] | None = Field(description="the procedure's inter-agency step plan from the catalog")
    planned_steps_sent: int = Field(description="how many planned steps went out")
    supplement_count: int
    paused_at: datetime | None
    remaining_working_days: int | None
    is_late: bool
    late_reason: str | None
    late_at: datetime | None
    late_holder_unit: str | None
    late_holder_officer: str | None
    late_step_agency: str | None = Field(description="the agency whose step came back late; it answers for the dossier going late")
    apology_count: int
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
    step_no: int | None = Field(default=None, description="an inter-agency step's place in the catalog's plan")
    planned_days: int | None = Field(default=None, description="the planned share of time of that step")
    adjusted_reason: str | None = Field(default=None, description="why the officer changed the planned agency or time")


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
