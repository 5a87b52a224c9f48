"""Reporting's HTTP shapes: the reports, the 766 index, the accountability list and the timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from services.reporting import domain

ReportCounts = create_model(  # type: ignore[call-overload]
    "ReportCounts", **{name: (int, Field(description=label)) for name, label in domain.COUNTS.items()}
)


class RatePublic(BaseModel):
    """A plan indicator (DOMAIN §4.4): numerator / denominator, as a percent (null when the denominator is 0)."""

    indicator: str
    label: str
    numerator: int
    denominator: int
    percent: float | None
    target: float | None
    met: bool | None


class SummaryPublic(ReportCounts):  # type: ignore[misc, valid-type]
    """The standard report's counts for one unit (or roll-up) and period, and the plan's rates."""

    unit: str
    scope: str = Field(description="the unit code as a roll-up (zero groups cover every unit below)")
    from_: date = Field(serialization_alias="from")
    to: date
    field: str | None
    procedure: str | None
    rates: dict[str, RatePublic]


class BreakdownRow(ReportCounts):  # type: ignore[misc, valid-type]
    """One row of a breakdown: a field, a procedure or an officer."""

    key: str
    name: str
    rates: dict[str, RatePublic]


class AgencyLateSteps(BaseModel):
    """The inter-agency steps an agency returned after their own deadline in the period (blamed on it), and their dossiers."""

    agency: str
    late_steps: int
    dossiers: int


class BreakdownPeriod(BaseModel):
    """One period of a breakdown."""

    label: str
    from_: date = Field(serialization_alias="from")
    to: date
    rows: list[BreakdownRow]
    total: BreakdownRow
    late_steps: list[AgencyLateSteps] = Field(default_factory=list, description="late inter-agency steps per agency")


class BreakdownPublic(BaseModel):
    """The standard table by field, procedure or officer, per week, month, quarter or year."""

    unit: str
    scope: str
    by: str
    period: str
    data: list[BreakdownPeriod]


class LateDossier(BaseModel):
    """A late dossier, who held it when it went late, and the apology (DOMAIN §8.3)."""

    code: str
    unit: str
    procedure_code: str | None
    procedure_name: str | None
    field: str
    received_at: datetime
    due_at_original: datetime | None
    due_at: datetime | None
    late_at: datetime | None
    late_reason: str
    state: Literal["resolved_late", "withdrawn_late", "pending_overdue"]
    closed_at: datetime | None
    holder_unit: str | None
    holder_officer: str | None
    apology_issued: bool
    apology_at: datetime | None
    apology_timely: bool | None
    new_appointment_at: datetime | None
    explained: bool
    late_step_agencies: list[str] = Field(default_factory=list, description="the agencies its late inter-agency steps are blamed on")


class LatePublic(BaseModel):
    """The accountability list of one unit and period."""

    unit: str
    scope: str
    from_: date = Field(serialization_alias="from")
    to: date
    data: list[LateDossier]
    count: int
    late_steps: list[AgencyLateSteps] = Field(default_factory=list, description="late inter-agency steps per agency in the period")


class IndicatorPublic(BaseModel):
    """One 766 indicator."""

    code: str
    name: str
    numerator: int
    denominator: int
    percent: float | None
    max_points: float
    full_at_percent: float
    points: float | None


class NotComputable(BaseModel):
    """An indicator not computed here, its points, and why (its facts are the national system's, or missing)."""

    code: str
    name: str
    max_points: float
    reason: str


class IndexScore(BaseModel):
    """The points earned out of one maximum, as a score out of 100 with its band."""

    basis: Literal["computable", "all"] = Field(
        description="`computable`: of the points of the indicators computed here; `all`: of every indicator's (100)"
    )
    points: float = Field(description="the points earned (the indicators computed here)")
    max_points: float
    score: float | None = Field(description="points × 100 / max_points")
    band: str | None


class ProcessingTime(BaseModel):
    """766 indicator 2.2 (monitoring): average working days to process, per procedure."""

    procedure_code: str
    procedure_name: str
    dossiers: int
    average_working_days: float | None


class Index766Public(BaseModel):
    """The 766 index of one unit and month (DOMAIN §4.2-§4.3)."""

    unit: str
    scope: str
    month: str
    rules: str | None = Field(default=None, description="the rule set whose points score it: in force on the month's last day")
    indicators: list[IndicatorPublic] = Field(description="the indicators computed here")
    not_computable: list[NotComputable] = Field(description="the others, with the reason")
    total: float = Field(description="the points earned")
    max_points: float = Field(description="the points of the indicators computed here")
    index_max_points: float = Field(description="the points of every indicator (100)")
    of_computable: IndexScore = Field(description="the points earned of the points computable, rescaled to 100")
    of_100: IndexScore = Field(description="the points earned of 100: what is not computed here counts 0")
    band: str | None = Field(description="the band of the score `band_basis` names")
    band_basis: Literal["computable", "all"] = Field(description="which score the band rests on (REPORTING_INDEX766_BAND_BASIS)")
    average_processing: list[ProcessingTime]


class TimelineEntry(BaseModel):
    """One event of a dossier's stream."""

    sequence: int
    event_id: str
    type: str
    source: str
    time: datetime
    recorded_at: datetime
    actor: str | None
    trace_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


class TimelinePublic(BaseModel):
    """A dossier's events in order."""

    dossier_code: str
    data: list[TimelineEntry]
    count: int


class ChainVerdict(BaseModel):
    """Whether a dossier's hash chain is intact."""

    dossier_code: str
    intact: bool
    events: int
    first_broken_sequence: int | None
    head_hash: str | None


# ---- the DVCQG sync -----------------------------------------------------------------------------------------------------


class DvcqgSyncAttemptPublic(BaseModel):
    """One attempt at a sync: what was posted to the LGSP (sessions masked) and what it answered."""

    number: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str = Field(description="sending, accepted, refused (error_code not 0), unavailable, interrupted, superseded")
    service: str | None = Field(description="the push's service (DongBoHoSoMC, CapNhatTienDoHoSoMC)")
    request: list[dict[str, Any]] | None = Field(description="every request of the attempt in order: the lookup (TraCuuHoSo), the push")
    answer: list[dict[str, Any]] | None = Field(description="the LGSP's answers, in the same order")
    error_code: str | None
    error: str | None


class DvcqgSyncPublic(BaseModel):
    """A sync owed to the national portal: a status push or a processing step, its state and its attempts."""

    id: int
    dossier_code: str
    unit: str
    kind: Literal["status", "progress"]
    status: int = Field(description="national status (TrangThaiHoSo) the sync reports")
    step: str = Field(description="a progress step: the event type; empty for a status push")
    event_id: str = Field(description="the event that owed the sync")
    changed_at: datetime = Field(description="the status change (or step); the on-time window counts from it")
    idempotency_key: str = Field(description="dossier code, status and time")
    state: Literal["pending", "accepted", "given_up", "superseded"]
    attempts: int
    refusals: int
    next_attempt_at: datetime
    created_at: datetime
    accepted_at: datetime | None
    last_code: str | None
    last_error: str | None
    replayed_at: datetime | None
    replayed_by: str | None
    on_time: bool | None = Field(description="accepted within REPORTING_DVCQG_ON_TIME_SECONDS of the change; null while it may still be")
    history: list[DvcqgSyncAttemptPublic] = Field(default_factory=list)


class DvcqgSyncsPublic(BaseModel):
    """Syncs to the national portal, in the order they are sent."""

    data: list[DvcqgSyncPublic]
    count: int
