"""Reporting routes: the summary report and the auditable dossier timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, model_validator

from services.reporting import domain, store
from shared.auth import CurrentUser, Principal, Role, require_roles
from shared.errors import NotFound, Problem
from shared.service import DbDep

router = APIRouter(prefix="/api/v1", tags=["reports"])

OFFICIALS = (Role.CLERK, Role.SPECIALIST, Role.LEADER, Role.ADMIN, Role.AUDITOR)


class SummaryQuery(BaseModel):
    """Which unit and which days (Vietnamese calendar, inclusive)."""

    unit: str = Field(min_length=1, max_length=64)
    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _ordered(self) -> SummaryQuery:
        if self.to < self.from_:
            raise ValueError("'to' is before 'from'")
        return self


class SummaryPublic(BaseModel):
    """The standard report's counts for one unit and period."""

    unit: str
    from_: date = Field(serialization_alias="from")
    to: date
    received_total: int
    received_online: int
    received_counter: int
    received_postal: int


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


@router.get("/reports/summary", response_model=SummaryPublic, response_model_by_alias=True, summary="Standard report")
async def summary(
    query: Annotated[SummaryQuery, Query()],
    db: DbDep,
    user: Annotated[Principal, require_roles(Role.LEADER, Role.ADMIN, Role.AUDITOR, Role.CLERK, Role.SPECIALIST)],
) -> SummaryPublic:
    user.require_unit(query.unit)
    async with db.sessions() as session:
        counts = await store.received_counts(session=session, unit=query.unit, first=query.from_, last=query.to)
    return SummaryPublic(
        unit=query.unit,
        from_=query.from_,
        to=query.to,
        received_total=sum(counts.values()),
        received_online=counts.get("online", 0),
        received_counter=counts.get("counter", 0),
        received_postal=counts.get("postal", 0),
    )


async def _visible_timeline(db: DbDep, user: Principal, code: str) -> list[store.EventRecord]:
    if not user.roles & set(OFFICIALS):
        raise Problem(403, "role-forbidden", "Role not allowed", "Only officials and auditors read timelines.")
    async with db.sessions() as session:
        records = await store.timeline(session=session, dossier_code=code)
    if not records or not user.can_see(records[0].unit):
        raise NotFound("dossier timeline", code)
    return records


@router.get("/dossiers/{code}/timeline", response_model=TimelinePublic, summary="A dossier's events in order")
async def timeline(code: str, db: DbDep, user: CurrentUser) -> TimelinePublic:
    records = await _visible_timeline(db, user, code)
    entries = [TimelineEntry.model_validate(r, from_attributes=True) for r in records]
    return TimelinePublic(dossier_code=code, data=entries, count=len(entries))


@router.get("/dossiers/{code}/timeline/verify", response_model=ChainVerdict, summary="Check the hash chain")
async def verify(code: str, db: DbDep, user: CurrentUser) -> ChainVerdict:
    records = await _visible_timeline(db, user, code)
    links = [
        (
            domain.ChainLink(
                sequence=r.sequence,
                event_id=r.event_id,
                type=r.type,
                source=r.source,
                time=domain.canonical_time(r.time),
                data=r.data,
                prev_hash=r.prev_hash,
            ),
            r.hash,
        )
        for r in records
    ]
    broken = domain.first_break(links)
    return ChainVerdict(
        dossier_code=code,
        intact=broken is None,
        events=len(records),
        first_broken_sequence=broken,
        head_hash=records[-1].hash if records else None,
    )
