"""Reporting tables and queries: written only by the event handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, fields
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import Column, DateTime, Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reporting import domain


class EventRecord(SQLModel, table=True):
    """One event of one dossier's stream, hash-chained to the one before."""

    __tablename__ = "event_log"
    __table_args__ = (sa.UniqueConstraint("dossier_code", "sequence", name="event_log_sequence"),)

    id: int | None = Field(default=None, primary_key=True)
    dossier_code: str = Field(max_length=64)
    sequence: int
    event_id: str = Field(unique=True)
    type: str
    source: str
    unit: str = Field(max_length=64)
    time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str | None = None
    trace_id: str | None = None
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    prev_hash: str
    hash: str


class ChainHead(SQLModel, table=True):
    """The last link of a dossier's chain; its row lock orders concurrent appends."""

    __tablename__ = "chain_heads"

    dossier_code: str = Field(primary_key=True, max_length=64)
    sequence: int
    hash: str


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class DossierFact(SQLModel, table=True):
    """One row per dossier: what the reports count (the columns of ``domain.Fact``)."""

    __tablename__ = "dossier_facts"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    province: str = ""
    procedure_code: str | None = None
    procedure_name: str | None = None
    field: str = ""
    channel: str | None = None
    received_at: datetime | None = _ts()
    received_day: date | None = None
    receiving_unit: str | None = None
    received_by: str | None = None
    due_at_original: datetime | None = _ts()
    due_at: datetime | None = _ts()
    paused: bool = False
    fee_due: int = 0
    reused_components: int = 0
    department: str | None = None
    assignee: str | None = None
    holder_unit: str | None = None
    holder_officer: str | None = None
    closed_at: datetime | None = _ts()
    close_kind: str | None = None
    close_timeliness: str | None = None
    result_at: datetime | None = _ts()
    returned_at: datetime | None = _ts()
    return_channel: str | None = None
    supplement_count: int = 0
    late_at: datetime | None = _ts()
    late_reason: str | None = None
    late_holder_unit: str | None = None
    late_holder_officer: str | None = None
    apology_at: datetime | None = _ts()
    apology_timely: bool | None = None
    new_appointment_at: datetime | None = _ts()
    explained_at: datetime | None = _ts()
    digitized_at: datetime | None = _ts()
    result_signed_at: datetime | None = _ts()
    owner_filed_at: datetime | None = _ts()
    reused_at: datetime | None = _ts()
    fee_requested: int = 0
    paid_at: datetime | None = _ts()
    paid_online_at: datetime | None = _ts()
    refunded_at: datetime | None = _ts()
    rated_at: datetime | None = _ts()
    rating: str | None = None
    feedback_at: datetime | None = _ts()
    last_activity_at: datetime | None = _ts()
    clock_since: datetime | None = _ts()
    scope_key: str = ""


class DossierDeadline(SQLModel, table=True):
    """The dossier's clock over time: from ``since`` on it runs towards ``due_at``, or is paused."""

    __tablename__ = "dossier_deadlines"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64)
    since: datetime = _ts(nullable=False)
    due_at: datetime | None = _ts()
    paused: bool


class FeedbackFact(SQLModel, table=True):
    """A piece of citizen feedback (PAKN) about a dossier: when it came, its deadline, when it was answered."""

    __tablename__ = "feedback_facts"

    feedback_id: str = Field(primary_key=True, max_length=128)
    code: str = Field(max_length=64)
    unit: str = Field(max_length=64)
    province: str = Field(max_length=64)
    scope_key: str = Field(max_length=64)
    received_at: datetime | None = _ts()
    due_at: datetime | None = _ts()
    answered_at: datetime | None = _ts()
    timeliness: str | None = None


PROJECTIONS = ("dossier_facts", "dossier_deadlines", "feedback_facts")
_FACT_FIELDS = tuple(f.name for f in fields(domain.Fact))


async def lock_head(*, session: AsyncSession, dossier_code: str, genesis: str) -> ChainHead:
    """The dossier's chain head, locked for this transaction (created at sequence 0 if new)."""
    await session.execute(
        insert(ChainHead).values(dossier_code=dossier_code, sequence=0, hash=genesis).on_conflict_do_nothing()
    )
    result = await session.exec(select(ChainHead).where(ChainHead.dossier_code == dossier_code).with_for_update())
    return result.one()


def append(*, session: AsyncSession, record: EventRecord, head: ChainHead) -> None:
    """Stage a record and move the head to it."""
    session.add(record)
    head.sequence, head.hash = record.sequence, record.hash
    session.add(head)


async def timeline(*, session: AsyncSession, dossier_code: str) -> list[EventRecord]:
    """A dossier's events in chain order."""
    result = await session.exec(
        select(EventRecord).where(EventRecord.dossier_code == dossier_code).order_by(EventRecord.sequence)
    )
    return list(result.all())



# ---- projections: written only by the event handlers (and the rebuild, which replays them) ----------------------


async def get_fact(*, session: AsyncSession, code: str) -> domain.Fact | None:
    """The dossier's facts, or None when no event has told about it yet."""
    table = DossierFact.__table__
    row = (await session.execute(sa.select(table).where(table.c.code == code))).mappings().first()
    return domain.Fact(**{name: row[name] for name in _FACT_FIELDS}) if row else None


async def save_fact(*, session: AsyncSession, fact: domain.Fact) -> None:
    """Write the dossier's facts (insert or replace)."""
    values = asdict(fact) | {"scope_key": domain.scope_key(fact.unit)}
    statement = insert(DossierFact).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["code"], set_={k: statement.excluded[k] for k in values if k != "code"}
        )
    )


async def add_deadlines(*, session: AsyncSession, code: str, changes: Iterable[domain.DeadlineChange]) -> None:
    """Append to the dossier's deadline history."""
    rows = [{"code": code, "since": c.since, "due_at": c.due_at, "paused": c.paused} for c in changes]
    if rows:
        await session.execute(insert(DossierDeadline).values(rows))


async def apply_feedback(
    *, session: AsyncSession, code: str, unit: str, changes: Iterable[domain.FeedbackChange]
) -> None:
    """Record feedback received or answered (each column keeps the first value it was given)."""
    table = FeedbackFact.__table__
    for change in changes:
        values = {
            "feedback_id": change.feedback_id, "code": code, "unit": unit, "province": domain.province_of(unit),
            "scope_key": domain.scope_key(unit),
            "received_at": change.received_at, "due_at": change.due_at, "answered_at": change.answered_at,
            "timeliness": change.timeliness,
        }  # fmt: skip
        statement = insert(FeedbackFact).values(**values)
        keep = {c: sa.func.coalesce(table.c[c], statement.excluded[c]) for c in ("received_at", "due_at", "answered_at", "timeliness")}
        await session.execute(statement.on_conflict_do_update(index_elements=["feedback_id"], set_=keep))


# ---- the rebuild -------------------------------------------------------------------------------------------------------


async def lock_log(*, session: AsyncSession) -> None:
    """Hold every appender off (readers go on) until this transaction ends."""
    await session.execute(sa.text("LOCK TABLE chain_heads, event_log IN EXCLUSIVE MODE"))


async def truncate_projections(*, session: AsyncSession) -> None:
    """Empty every projection (inside the caller's transaction)."""
    await session.execute(sa.text(f"TRUNCATE {', '.join(PROJECTIONS)} RESTART IDENTITY"))


async def log_in_order(*, session: AsyncSession, batch: int = 1000) -> AsyncIterator[EventRecord]:
    """Every stored event in the order reporting applied it (``event_log.id``), fetched in batches."""
    last = 0
    while True:
        result = await session.exec(select(EventRecord).where(EventRecord.id > last).order_by(EventRecord.id).limit(batch))
        rows = list(result.all())
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].id or last
        session.expunge_all()


# ---- reports ---------------------------------------------------------------------------------------------------------

Dimension = Literal["none", "field", "procedure", "officer"]
# Every instant a report counts of a closed dossier lies in [received_at, last_activity_at] (an index expression).
ACTIVE_SPAN = "tstzrange(f.received_at, greatest(f.last_activity_at, f.received_at), '[]')"
_DIMENSIONS: dict[str, tuple[str, str]] = {
    # key expression, display name expression
    "none": ("''", "''"),
    "field": ("f.field", "f.field"),
    "procedure": ("coalesce(f.procedure_code, '')", "coalesce(f.procedure_name, '')"),
    "officer": ("coalesce(f.assignee, f.received_by, '')", "coalesce(f.assignee, f.received_by, '')"),
}


def _scope(scope: domain.Scope, alias: str) -> tuple[str, dict[str, Any]]:
    clause, params = f"{alias}.province = :province", {"province": scope.province}
    if scope.unit is not None:
        clause, params["unit"] = clause + f" AND {alias}.unit = :unit", scope.unit
    elif scope.pattern is not None:
        clause, params["pattern"] = clause + f" AND {alias}.scope_key LIKE :pattern", scope.pattern
    return clause, params


def _flags(
    scope: domain.Scope, period: domain.Period, dim: Dimension, field: str | None, procedure: str | None
) -> tuple[str, dict[str, Any]]:
    """Every dossier a report of the scope and period may count, with its state at the period's bounds."""
    where, params = _scope(scope, "f")
    if field is not None:
        where, params["field"] = where + " AND f.field = :field", field
    if procedure is not None:
        where, params["procedure"] = where + " AND f.procedure_code = :procedure", procedure
    key, name = _DIMENSIONS[dim]
    params |= {"start": period.start, "end": period.end}
    sql = f"""
    WITH base AS (
      SELECT f.*, {key} AS grp, {name} AS grp_name,
             CASE WHEN f.clock_since < :end THEN f.due_at ELSE dl.due_at END AS due_end,
             CASE WHEN f.clock_since < :end THEN f.paused ELSE coalesce(dl.paused, false) END AS paused_end,
             CASE WHEN f.clock_since <= f.closed_at THEN f.due_at ELSE dw.due_at END AS due_closed,
             CASE WHEN f.clock_since <= f.closed_at THEN f.paused ELSE coalesce(dw.paused, false) END AS paused_closed
      FROM dossier_facts f
      LEFT JOIN LATERAL (  -- the deadline in force at the end, from the history only when it changed since
        SELECT d.due_at, d.paused FROM dossier_deadlines d
        WHERE (f.closed_at IS NULL OR f.closed_at >= :end) AND f.clock_since >= :end AND d.code = f.code AND d.since < :end
        ORDER BY d.since DESC, d.id DESC LIMIT 1
      ) dl ON true
      LEFT JOIN LATERAL (
        SELECT d.due_at, d.paused FROM dossier_deadlines d
        WHERE f.close_kind = 'withdrawn' AND f.clock_since > f.closed_at AND d.code = f.code AND d.since <= f.closed_at
        ORDER BY d.since DESC, d.id DESC LIMIT 1
      ) dw ON true
      WHERE {where} AND f.received_at IS NOT NULL AND (
        (f.closed_at IS NULL AND f.received_at < :end)
        OR (f.closed_at IS NOT NULL AND {ACTIVE_SPAN} && tstzrange(:start, :end, '[)'))
      )
    ),
    flags AS (
      SELECT b.*,
        b.received_at >= :start AS is_new,
        b.received_at < :start AND (b.closed_at IS NULL OR b.closed_at >= :start) AS is_carried,
        coalesce(b.closed_at >= :start AND b.closed_at < :end, false) AS closed_in,
        (b.closed_at IS NULL OR b.closed_at >= :end) AS is_pending,
        (coalesce(b.late_at < :end, false) OR (NOT b.paused_end AND coalesce(b.due_end < :end, false))) AS overdue_end,
        (b.close_kind = 'withdrawn' AND (coalesce(b.late_at <= b.closed_at, false)
          OR (NOT b.paused_closed AND coalesce(b.due_closed < b.closed_at, false)))) AS w_late,
        (b.supplement_count > 0 AND EXISTS (SELECT 1 FROM dossier_deadlines d
                WHERE d.code = b.code AND d.paused AND d.since >= :start AND d.since < :end)) AS supplemented_in
      FROM base b
    )"""
    return sql, params


_COUNT_SQL = """
  count(*) FILTER (WHERE is_carried) AS carried_over,
  count(*) FILTER (WHERE is_new) AS received_total,
  count(*) FILTER (WHERE is_new AND channel = 'online') AS received_online,
  count(*) FILTER (WHERE is_new AND channel = 'counter') AS received_counter,
  count(*) FILTER (WHERE is_new AND channel = 'postal') AS received_postal,
  count(*) FILTER (WHERE closed_in AND close_kind <> 'withdrawn') AS resolved_total,
  count(*) FILTER (WHERE closed_in AND close_kind <> 'withdrawn' AND close_timeliness = 'early') AS resolved_early,
  count(*) FILTER (WHERE closed_in AND close_kind <> 'withdrawn' AND coalesce(close_timeliness, 'on_time') = 'on_time') AS resolved_on_time,
  count(*) FILTER (WHERE closed_in AND close_kind <> 'withdrawn' AND close_timeliness = 'late') AS resolved_late,
  count(*) FILTER (WHERE closed_in AND close_kind = 'result') AS resolved_with_result,
  count(*) FILTER (WHERE closed_in AND close_kind = 'result' AND (returned_at IS NULL OR returned_at >= :end)) AS resolved_not_returned,
  count(*) FILTER (WHERE closed_in AND close_kind = 'rejected') AS rejected,
  count(*) FILTER (WHERE closed_in AND close_kind = 'stopped') AS stopped,
  count(*) FILTER (WHERE closed_in AND close_kind = 'withdrawn') AS withdrawn,
  count(*) FILTER (WHERE closed_in AND w_late) AS withdrawn_late,
  count(*) FILTER (WHERE is_pending) AS pending_total,
  count(*) FILTER (WHERE is_pending AND NOT overdue_end AND (paused_end OR due_end IS NULL OR due_end > :horizon)) AS pending_not_due,
  count(*) FILTER (WHERE is_pending AND NOT overdue_end AND NOT paused_end AND due_end <= :horizon) AS pending_near_due,
  count(*) FILTER (WHERE is_pending AND overdue_end) AS pending_overdue,
  count(*) FILTER (WHERE is_pending AND NOT overdue_end AND paused_end) AS pending_paused,
  count(*) FILTER (WHERE supplemented_in) AS supplement_requested,
  count(*) FILTER (WHERE is_new AND CASE
      WHEN closed_at < :end THEN CASE WHEN close_kind = 'withdrawn' THEN NOT w_late ELSE coalesce(close_timeliness, 'on_time') <> 'late' END
      ELSE NOT overdue_end END) AS received_within_time,
  count(*) FILTER (WHERE is_new AND digitized_at IS NOT NULL) AS digitized_at_intake,
  count(*) FILTER (WHERE is_new AND digitized_at IS NOT NULL AND (result_at IS NULL OR result_signed_at IS NOT NULL)) AS digitization_complete,
  count(*) FILTER (WHERE closed_in AND close_kind = 'result' AND result_signed_at IS NOT NULL) AS results_signed,
  count(*) FILTER (WHERE is_new AND (fee_due > 0 OR fee_requested > 0)) AS fee_dossiers,
  count(*) FILTER (WHERE is_new AND (fee_due > 0 OR fee_requested > 0) AND paid_online_at IS NOT NULL) AS paid_online,
  count(*) FILTER (WHERE returned_at >= :start AND returned_at < :end AND return_channel = 'postal') AS postal_returned,
  count(*) FILTER (WHERE is_new AND (reused_components > 0 OR reused_at IS NOT NULL)) AS reused_components_dossiers,
  count(*) FILTER (WHERE is_new AND (reused_components > 0 OR reused_at IS NOT NULL OR owner_filed_at IS NOT NULL)) AS shared_with_store,
  count(*) FILTER (WHERE rated_at >= :start AND rated_at < :end) AS ratings_total,
  count(*) FILTER (WHERE rated_at >= :start AND rated_at < :end AND rating IN ('very_satisfied', 'satisfied')) AS ratings_satisfied,
  count(*) FILTER (WHERE rated_at >= :start AND rated_at < :end AND rating = 'dissatisfied') AS ratings_dissatisfied,
  count(*) FILTER (WHERE feedback_at >= :start AND feedback_at < :end) AS feedback_dossiers,
  count(*) FILTER (WHERE (feedback_at >= :start AND feedback_at < :end)
                      OR (rated_at >= :start AND rated_at < :end AND rating = 'dissatisfied')) AS complaint_dossiers,
  count(*) FILTER (WHERE apology_at >= :start AND apology_at < :end) AS apologies_issued
"""


async def report_counts(
    *,
    session: AsyncSession,
    scope: domain.Scope,
    period: domain.Period,
    horizon: datetime,
    by: Dimension = "none",
    field: str | None = None,
    procedure: str | None = None,
) -> list[dict[str, Any]]:
    """The standard table's counts of a scope and period, one row per group (``key``, ``name``, counts)."""
    flags, params = _flags(scope, period, by, field, procedure)
    sql = f"{flags}\nSELECT grp AS key, max(grp_name) AS name, {_COUNT_SQL}\nFROM flags GROUP BY grp ORDER BY grp"
    rows = (await session.execute(sa.text(sql), {**params, "horizon": horizon})).mappings().all()
    return [dict(r) for r in rows]


async def late_dossiers(
    *,
    session: AsyncSession,
    scope: domain.Scope,
    period: domain.Period,
    field: str | None = None,
    procedure: str | None = None,
) -> list[dict[str, Any]]:
    """Every dossier the summary counts late: resolved late or withdrawn late in the period, or open past its deadline at its end."""
    flags, params = _flags(scope, period, "none", field, procedure)
    sql = f"""{flags}
    SELECT code, unit, procedure_code, procedure_name, field, received_at, due_at_original,
           CASE WHEN is_pending THEN due_end ELSE due_at END AS due_at,
           coalesce(late_at, CASE WHEN is_pending THEN due_end ELSE due_closed END) AS late_at,
           coalesce(late_reason, 'overdue') AS late_reason,
           CASE WHEN is_pending THEN 'pending_overdue' WHEN close_kind = 'withdrawn' THEN 'withdrawn_late' ELSE 'resolved_late' END AS state,
           CASE WHEN is_pending THEN NULL ELSE closed_at END AS closed_at,
           coalesce(late_holder_unit, holder_unit, unit) AS holder_unit,
           CASE WHEN late_holder_unit IS NOT NULL THEN late_holder_officer ELSE holder_officer END AS holder_officer,
           apology_at IS NOT NULL AND apology_at < :end AS apology_issued,
           CASE WHEN apology_at < :end THEN apology_at END AS apology_at,
           CASE WHEN apology_at < :end THEN apology_timely END AS apology_timely,
           CASE WHEN apology_at < :end THEN new_appointment_at END AS new_appointment_at,
           explained_at IS NOT NULL AND explained_at < :end AS explained
    FROM flags
    WHERE (closed_in AND close_kind <> 'withdrawn' AND close_timeliness = 'late')
       OR (closed_in AND w_late)
       OR (is_pending AND overdue_end)
    ORDER BY late_at NULLS LAST, code"""
    return [dict(r) for r in (await session.execute(sa.text(sql), params)).mappings().all()]


async def feedback_counts(*, session: AsyncSession, scope: domain.Scope, period: domain.Period) -> tuple[int, int]:
    """Feedback received in the period: (answered on time or still within time at its end, all)."""
    where, params = _scope(scope, "ff")
    sql = f"""
    SELECT count(*) FILTER (WHERE (answered_at < :end AND coalesce(timeliness, 'on_time') <> 'late')
                               OR ((answered_at IS NULL OR answered_at >= :end) AND due_at >= :end)) AS on_time,
           count(*) AS total
    FROM feedback_facts ff WHERE {where} AND ff.received_at >= :start AND ff.received_at < :end"""
    row = (await session.execute(sa.text(sql), {**params, "start": period.start, "end": period.end})).one()
    return int(row.on_time), int(row.total)


async def processing_times(
    *, session: AsyncSession, scope: domain.Scope, period: domain.Period
) -> list[tuple[str, str, datetime, datetime]]:
    """(procedure code, name, received, result ready) of dossiers received in the period with a result by its end."""
    where, params = _scope(scope, "f")
    sql = f"""
    SELECT coalesce(f.procedure_code, ''), coalesce(f.procedure_name, ''), f.received_at, f.result_at FROM dossier_facts f
    WHERE {where} AND f.received_at >= :start AND f.received_at < :end AND f.result_at < :end
    ORDER BY f.procedure_code"""
    rows = await session.execute(sa.text(sql), {**params, "start": period.start, "end": period.end})
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]
