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


class BreakdownPeriod(BaseModel):
    """One period of a breakdown."""

    label: str
    from_: date = Field(serialization_alias="from")
    to: date
    rows: list[BreakdownRow]
    total: BreakdownRow


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


class LatePublic(BaseModel):
    """The accountability list of one unit and period."""

    unit: str
    scope: str
    from_: date = Field(serialization_alias="from")
    to: date
    data: list[LateDossier]
    count: int


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
    """An indicator only the national system computes."""

    code: str
    reason: str


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
    indicators: list[IndicatorPublic]
    total: float
    max_points: float
    scaled: float | None = Field(description="total × 100 / the maximum of the indicators computed here")
    band: str | None
    not_computable: list[NotComputable]
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
