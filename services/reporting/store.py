"""Reporting tables and queries: written only by the event handlers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import Column, DateTime, Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reporting import domain, dvcqg


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
    identification: str | None = Field(default=None, max_length=16)
    population_data_reused: bool = False
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
    rules: str | None = Field(default=None, max_length=64)
    applicant_name: str | None = None
    scope_key: str = ""
    receiving_scope_key: str = ""


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


class LateStepRow(SQLModel, table=True):
    """An inter-agency step of a dossier that came back after its own deadline, blamed on the agency that held it."""

    __tablename__ = "dossier_late_steps"

    code: str = Field(primary_key=True, max_length=64)
    agency: str = Field(primary_key=True, max_length=300)
    returned_at: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    step_no: int | None = None
    due_at: datetime | None = _ts()


PROJECTIONS = ("dossier_facts", "dossier_deadlines", "feedback_facts", "report_rollup", "report_rollup_groups", "report_rollup_months",
               "dossier_late_steps")  # fmt: skip
_FACT_FIELDS = tuple(f.name for f in fields(domain.Fact))


# The handlers' per-event statements, built once: a statement built per call costs SQLAlchemy a cache key and, for
# ``insert().values(...)``, a compile each time (profiled at ~12 % of reporting's CPU); these bind their values.
# The head locked and read in one statement: a new dossier's head is created at sequence 0; an existing one is
# "updated" to itself, which takes its row lock as SELECT ... FOR UPDATE would (a concurrent appender waits, then
# reads the head it left) and returns it.
_HEAD_LOCK = (
    insert(ChainHead.__table__)
    .values(dossier_code=sa.bindparam("code"), sequence=0, hash=sa.bindparam("genesis"))
    .on_conflict_do_update(index_elements=["dossier_code"], set_={"dossier_code": sa.literal_column("excluded.dossier_code")})
    .returning(ChainHead.__table__.c.sequence, ChainHead.__table__.c.hash)
)
# The record and the head's move to it in one statement.
_event_log = EventRecord.__table__
_APPEND = (
    sa.update(ChainHead.__table__)
    .where(ChainHead.__table__.c.dossier_code == sa.bindparam("b_dossier_code"))
    .values(sequence=sa.bindparam("b_sequence"), hash=sa.bindparam("b_hash"))
    .add_cte(
        insert(_event_log)
        .values({c.name: sa.bindparam(f"b_{c.name}", type_=c.type) for c in _event_log.columns if c.name != "id"})
        .cte("logged")
    )
)


@dataclass(frozen=True, slots=True)
class Head:
    """The last link of a dossier's chain, as this transaction holds it locked."""

    sequence: int
    hash: str


async def lock_head(*, session: AsyncSession, dossier_code: str, genesis: str) -> Head:
    """The dossier's chain head, locked for this transaction (created at sequence 0 if new)."""
    row = (await session.execute(_HEAD_LOCK, {"code": dossier_code, "genesis": genesis})).one()
    return Head(row.sequence, row.hash)


async def append(*, session: AsyncSession, record: EventRecord) -> None:
    """Write the record and move its dossier's head to it (the head locked by ``lock_head``)."""
    await session.execute(_APPEND, {f"b_{c.name}": getattr(record, c.name) for c in _event_log.columns if c.name != "id"})


async def timeline(*, session: AsyncSession, dossier_code: str, by_time: bool = False) -> list[EventRecord]:
    """A dossier's events in chain order, or in the order their producers stamped them (chain order breaks ties)."""
    order = (EventRecord.time, EventRecord.sequence) if by_time else (EventRecord.sequence,)
    result = await session.exec(select(EventRecord).where(EventRecord.dossier_code == dossier_code).order_by(*order))
    return list(result.all())



# ---- projections: written only by the event handlers (and the rebuild, which replays them) ----------------------


_GET_FACT = sa.select(DossierFact.__table__).where(DossierFact.__table__.c.code == sa.bindparam("code"))
_SAVED_COLUMNS = (*_FACT_FIELDS, "scope_key", "receiving_scope_key")
_FEEDBACK_COLUMNS = ("feedback_id", "code", "unit", "province", "scope_key", "received_at", "due_at", "answered_at", "timeliness")


def _save_fact_statement() -> Any:
    """Insert the dossier's row or replace every column of it."""
    statement = insert(DossierFact.__table__).values({k: sa.bindparam(k) for k in _SAVED_COLUMNS})
    return statement.on_conflict_do_update(
        index_elements=["code"], set_={k: statement.excluded[k] for k in _SAVED_COLUMNS if k != "code"}
    )


def _apply_feedback_statement() -> Any:
    """Insert the feedback's row, or fill in the columns it did not have yet (each keeps the first value given)."""
    table = FeedbackFact.__table__
    statement = insert(table).values({k: sa.bindparam(k) for k in _FEEDBACK_COLUMNS})
    keep = {c: sa.func.coalesce(table.c[c], statement.excluded[c]) for c in ("received_at", "due_at", "answered_at", "timeliness")}
    return statement.on_conflict_do_update(index_elements=["feedback_id"], set_=keep)


_SAVE_FACT = _save_fact_statement()
_APPLY_FEEDBACK = _apply_feedback_statement()
_ADD_DEADLINE = insert(DossierDeadline.__table__).values(
    code=sa.bindparam("code"), since=sa.bindparam("since"), due_at=sa.bindparam("due_at"), paused=sa.bindparam("paused")
)


async def get_fact(*, session: AsyncSession, code: str) -> domain.Fact | None:
    """The dossier's facts, or None when no event has told about it yet."""
    row = (await session.execute(_GET_FACT, {"code": code})).mappings().first()
    return domain.Fact(**{name: row[name] for name in _FACT_FIELDS}) if row else None


async def save_fact(*, session: AsyncSession, fact: domain.Fact) -> None:
    """Write the dossier's facts (insert or replace)."""
    keys = {"scope_key": domain.scope_key(fact.unit), "receiving_scope_key": domain.scope_key(fact.one_stop)}
    await session.execute(_SAVE_FACT, asdict(fact) | keys)


_ADD_LATE_STEP = insert(LateStepRow.__table__).values(
    code=sa.bindparam("code"), agency=sa.bindparam("agency"), returned_at=sa.bindparam("returned_at"),
    step_no=sa.bindparam("step_no"), due_at=sa.bindparam("due_at"),
).on_conflict_do_nothing()  # fmt: skip


async def add_late_steps(*, session: AsyncSession, code: str, steps: Iterable[domain.LateStep]) -> None:
    """Record the dossier's late inter-agency steps (a redelivered one changes nothing)."""
    rows = [{"code": code, "agency": s.agency, "returned_at": s.returned_at, "step_no": s.step_no, "due_at": s.due_at} for s in steps]
    if rows:
        await session.execute(_ADD_LATE_STEP, rows)


async def add_deadlines(*, session: AsyncSession, code: str, changes: Iterable[domain.DeadlineChange]) -> None:
    """Append to the dossier's deadline history (in order: ``id`` breaks ties of ``since``)."""
    rows = [{"code": code, "since": c.since, "due_at": c.due_at, "paused": c.paused} for c in changes]
    if rows:
        await session.execute(_ADD_DEADLINE, rows)


async def apply_feedback(
    *, session: AsyncSession, code: str, unit: str, changes: Iterable[domain.FeedbackChange]
) -> None:
    """Record feedback received or answered (each column keeps the first value it was given)."""
    for change in changes:
        values = {
            "feedback_id": change.feedback_id, "code": code, "unit": unit, "province": domain.province_of(unit),
            "scope_key": domain.scope_key(unit),
            "received_at": change.received_at, "due_at": change.due_at, "answered_at": change.answered_at,
            "timeliness": change.timeliness,
        }  # fmt: skip
        await session.execute(_APPLY_FEEDBACK, values)


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
    """The rows of a scope. By the receiving unit only on ``dossier_facts`` (alias ``f``); every other table (the
    roll-up, feedback, syncs) knows the processing unit only."""
    receiving = scope.attribution == "receiving" and alias == "f"
    if scope.units is not None:  # the registry's units: the province index stays usable, the unit is in the set
        provinces, units = sorted(scope.provinces or {scope.province}), sorted(scope.units)
        if len(provinces) == 1:  # one value: an equality, the plan of a code pattern's scope
            clause, params = f"{alias}.province = :province", {"province": provinces[0]}
        else:
            clause, params = f"{alias}.province = ANY(:provinces)", {"provinces": provinces}
        column = "receiving_scope_key" if receiving else "unit"
        values = [domain.scope_key(u) for u in units] if receiving else units
        if len(values) == 1:
            return f"{clause} AND {alias}.{column} = :units", params | {"units": values[0]}
        return f"{clause} AND {alias}.{column} = ANY(:units)", params | {"units": values}
    clause, params = f"{alias}.province = :province", {"province": scope.province}
    key = "receiving_scope_key" if receiving else "scope_key"
    if scope.unit is not None:
        if receiving:
            clause, params["unit_key"] = clause + f" AND {alias}.{key} = :unit_key", domain.scope_key(scope.unit)
        else:
            clause, params["unit"] = clause + f" AND {alias}.unit = :unit", scope.unit
    elif scope.pattern is not None:
        clause, params["pattern"] = clause + f" AND {alias}.{key} LIKE :pattern", scope.pattern
    return clause, params


def _filters(
    scope: domain.Scope, field: str | None, procedure: str | None, alias: str = "f"
) -> tuple[str, dict[str, Any]]:
    """The rows of a scope, field and procedure (``dossier_facts`` or ``report_rollup``: same column names)."""
    where, params = _scope(scope, alias)
    if field is not None:
        where, params["field"] = where + f" AND {alias}.field = :field", field
    if procedure is not None:
        where, params["procedure"] = where + f" AND {alias}.procedure_code = :procedure", procedure
    return where, params


def _flags(
    scope: domain.Scope, period: domain.Period, dim: Dimension, field: str | None, procedure: str | None
) -> tuple[str, dict[str, Any]]:
    """Every dossier a report of the scope and period may count, with its state at the period's bounds."""
    where, params = _filters(scope, field, procedure)
    return _flags_where(where, params, period, dim)


def _flags_where(where: str, params: dict[str, Any], period: domain.Period, dim: Dimension) -> tuple[str, dict[str, Any]]:
    """The flags CTE over the dossiers ``where`` selects: the one definition reports and the roll-up both count with."""
    key, name = _DIMENSIONS[dim]
    params = params | {"start": period.start, "end": period.end}
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
  count(*) FILTER (WHERE is_new AND identification = 'vneid_level2') AS identified_vneid,
  count(*) FILTER (WHERE is_new AND identification = 'chip_card') AS identified_chip_card,
  count(*) FILTER (WHERE is_new AND channel = 'online' AND identification IN ('vneid_level2', 'chip_card')) AS online_identified,
  count(*) FILTER (WHERE is_new AND (identification = 'vneid_level2' OR population_data_reused)) AS population_data_used,
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
    rollup: bool = True,
) -> list[dict[str, Any]]:
    """The standard table's counts of a scope and period, one row per group (``key``, ``name``, counts).

    A calendar month whose roll-up was counted with this near-due horizon reads the roll-up rows of the scope plus
    the open dossiers idle since before the month; any other period counts the dossiers' own rows.
    """
    month = domain.whole_month(period)
    rollup = rollup and scope.attribution == "processing"  # the roll-up is kept by processing unit
    if rollup and month is not None and await rollup_usable(session=session, month=month, horizon=horizon):
        rolled = await rolled_through(session=session)
        return await _rollup_counts(
            session=session, scope=scope, period=period, month=month, horizon=horizon, by=by, field=field, procedure=procedure,
            idle=rolled is None or month > rolled,
        )  # fmt: skip
    flags, params = _flags(scope, period, by, field, procedure)
    sql = f"{flags}\nSELECT grp AS key, max(grp_name) AS name, {_COUNT_SQL}\nFROM flags GROUP BY grp ORDER BY grp"
    rows = (await session.execute(sa.text(sql), {**params, "horizon": horizon})).mappings().all()
    return [dict(r) for r in rows]


# ---- the monthly roll-up: the same counts, summed ahead per unit, procedure, field and officer -----------------------

# A dossier has roll-up rows for the months from its receipt to its last activity (IN_MONTH), and while open, through
# the month the roll-up was rolled forward to (domain.active_months). In a later month it counts only while open
# (carried over, pending), and reports read those from its own row (IDLE_OPEN).
IN_MONTH = "f.received_at < :end AND greatest(f.last_activity_at, f.received_at) >= :start"
IDLE_OPEN = "f.closed_at IS NULL AND greatest(f.last_activity_at, f.received_at) < :start"
# Handlers hold it shared; rolling the roll-up forward to a new month holds it alone.
_ROLL_LOCK = 7_660_003
ROLLUP_KEY = ("unit", "province", "scope_key", "procedure_code", "procedure_name", "field", "officer")
_ROLLUP_DIMENSIONS: dict[str, tuple[str, str]] = {
    "none": ("''", "''"),
    "field": ("r.field", "r.field"),
    "procedure": ("r.procedure_code", "r.procedure_name"),
    "officer": ("r.officer", "r.officer"),
}
_CONTRIBUTION_SQL = f"""
SELECT unit, province, scope_key, coalesce(procedure_code, '') AS procedure_code,
       coalesce(procedure_name, '') AS procedure_name, field, coalesce(assignee, received_by, '') AS officer,
       count(*) AS dossiers, {_COUNT_SQL}
FROM flags GROUP BY 1, 2, 3, 4, 5, 6, 7"""
_ROLLUP_COLUMNS = ("dossiers", *domain.COMPUTED)
_UPSERT_SQL = f"""
INSERT INTO report_rollup (month, {", ".join(ROLLUP_KEY)}, {", ".join(_ROLLUP_COLUMNS)})
VALUES (:month, {", ".join(":" + k for k in ROLLUP_KEY)}, {", ".join(":" + c for c in _ROLLUP_COLUMNS)})
ON CONFLICT (month, unit, procedure_code, procedure_name, field, officer) DO UPDATE SET
{", ".join(f"{c} = report_rollup.{c} + excluded.{c}" for c in _ROLLUP_COLUMNS)}"""


_UPSERT = sa.text(_UPSERT_SQL)


async def _rollup_counts(
    *,
    session: AsyncSession,
    scope: domain.Scope,
    period: domain.Period,
    month: date,
    horizon: datetime,
    by: Dimension,
    field: str | None,
    procedure: str | None,
    idle: bool,
) -> list[dict[str, Any]]:
    where, params = _filters(scope, field, procedure)
    flags, params = _flags_where(f"{where} AND {IDLE_OPEN}", params, period, by)
    sums = ", ".join(f"sum(r.{c}) AS {c}" for c in _ROLLUP_COLUMNS)
    group = _group_of(by, field, procedure)
    if group is not None:  # one dimension, or a summary of one field or procedure: the per-unit groups
        dim, value = group
        rollup_where, _ = _scope(scope, "r")
        if value is not None:
            rollup_where, params = rollup_where + " AND r.key = :group_key", params | {"group_key": value}
        key, name, table = ("''", "''", "report_rollup_groups r") if value is not None else ("r.key", "r.name", "report_rollup_groups r")
        rollup_where += f" AND r.dim = '{dim}'"
    else:
        rollup_where, _ = _filters(scope, field, procedure, alias="r")
        (key, name), table = _ROLLUP_DIMENSIONS[by], "report_rollup r"
    columns = ", ".join(_ROLLUP_COLUMNS)
    # A month rolled forward holds its open idle dossiers too: nothing to count from the dossiers' rows (nor to plan).
    idle_sql = (
        f"{flags},\n    idle AS (SELECT grp AS key, max(grp_name) AS name, count(*) AS dossiers, {_COUNT_SQL} FROM flags GROUP BY grp),"
        if idle
        else f"WITH idle AS (SELECT ''::text AS key, ''::text AS name, {', '.join(f'0::bigint AS {c}' for c in _ROLLUP_COLUMNS)} WHERE false),"
    )
    sql = f"""{idle_sql}
    rolled AS (SELECT {key} AS key, max({name}) AS name, {sums} FROM {table} WHERE r.month = :month AND {rollup_where} GROUP BY 1),
    every AS (SELECT key, name, {columns} FROM rolled UNION ALL SELECT key, name, {columns} FROM idle)
    SELECT key, max(name) AS name, {", ".join(f"sum({c})::bigint AS {c}" for c in domain.COMPUTED)}
    FROM every GROUP BY key HAVING sum(dossiers) > 0 ORDER BY key"""
    rows = (await session.execute(sa.text(sql), {**params, "horizon": horizon, "month": month})).mappings().all()
    return [dict(r) for r in rows]


def _group_of(by: Dimension, field: str | None, procedure: str | None) -> tuple[str, str | None] | None:
    """Which rows of ``report_rollup_groups`` hold this report: (dimension, only this key), or None for the full rows."""
    if field is None and procedure is None:
        return by, None
    if by == "none" and procedure is None:
        return "field", field
    if by == "none" and field is None:
        return "procedure", procedure
    return None


# (dimension, key column, name column) of report_rollup_groups, from report_rollup's key
_GROUPS = (("none", None, None), ("field", "field", "field"), ("procedure", "procedure_code", "procedure_name"),
           ("officer", "officer", "officer"))  # fmt: skip
_GROUPS_UPSERT_SQL = f"""
INSERT INTO report_rollup_groups (month, unit, province, scope_key, dim, key, name, {", ".join(_ROLLUP_COLUMNS)})
VALUES (:month, :unit, :province, :scope_key, :dim, :key, :name, {", ".join(":" + c for c in _ROLLUP_COLUMNS)})
ON CONFLICT (month, dim, unit, key, name) DO UPDATE SET
{", ".join(f"{c} = report_rollup_groups.{c} + excluded.{c}" for c in _ROLLUP_COLUMNS)}"""


_GROUPS_UPSERT = sa.text(_GROUPS_UPSERT_SQL)


def _group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """report_rollup rows (or deltas) summed per unit and dimension, in key order."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        for dim, key, name in _GROUPS:
            group = (row["month"], dim, row["unit"], row[key] if key else "", row[name] if name else "")
            into = out.setdefault(group, {"month": row["month"], "unit": row["unit"], "province": row["province"],
                                          "scope_key": row["scope_key"], "dim": dim, "key": group[3], "name": group[4],
                                          **dict.fromkeys(_ROLLUP_COLUMNS, 0)})  # fmt: skip
            for c in _ROLLUP_COLUMNS:
                into[c] += row[c]
    return [out[k] for k in sorted(out) if any(out[k][c] for c in _ROLLUP_COLUMNS)]


async def rollup_usable(*, session: AsyncSession, month: date, horizon: datetime) -> bool:
    """Whether the month's roll-up rows were all counted with this near-due horizon (no rows: nothing to count)."""
    row = (
        await session.execute(
            sa.text("SELECT horizon, consistent FROM report_rollup_months WHERE month = :month"), {"month": month}
        )
    ).first()
    return row is None or (row.consistent and row.horizon == horizon)


_MONTHS_KNOWN = sa.text("SELECT month, horizon FROM report_rollup_months WHERE month = ANY(:months)")
_MONTH_NOTE = sa.text(
    "INSERT INTO report_rollup_months (month, horizon, consistent) VALUES (:month, :horizon, true)"
    " ON CONFLICT (month) DO UPDATE SET consistent = report_rollup_months.consistent"
    " AND report_rollup_months.horizon = excluded.horizon"
)
_MONTH_INCONSISTENT = sa.text("UPDATE report_rollup_months SET consistent = false WHERE month = :month")


async def note_rollup_months(*, session: AsyncSession, horizons: dict[date, datetime]) -> None:
    """Record the horizon the months' rows are counted with; a month counted with another one is no longer used."""
    if not horizons:
        return
    known = {r.month: r.horizon for r in (await session.execute(_MONTHS_KNOWN, {"months": list(horizons)})).all()}
    for month, horizon in sorted(horizons.items()):
        if month not in known:
            await session.execute(_MONTH_NOTE, {"month": month, "horizon": horizon})
        elif known[month] != horizon:
            await session.execute(_MONTH_INCONSISTENT, {"month": month})


# One dossier's contribution to one month: the reports' flags over its row alone (the month's bounds are parameters).
_CONTRIBUTION_OF = sa.text(_flags_where("f.code = :code", {}, domain.month_period(date(2000, 1, 1)), "none")[0] + _CONTRIBUTION_SQL)
Contributions = dict[tuple[Any, ...], dict[str, int]]


async def contributions(*, session: AsyncSession, code: str, horizons: dict[date, datetime]) -> Contributions:
    """What one dossier adds to the roll-up of each of these months, as its rows stand: (month, *key) → counts."""
    out: Contributions = {}
    for month, horizon in horizons.items():
        period = domain.month_period(month)
        params = {"code": code, "start": period.start, "end": period.end, "horizon": horizon}
        for row in (await session.execute(_CONTRIBUTION_OF, params)).mappings():
            out[(month, *(row[k] for k in ROLLUP_KEY))] = {c: int(row[c]) for c in _ROLLUP_COLUMNS}
    return out


class RollupDelta:
    """The roll-up's changes of one transaction (a consumer's batch), written once when it commits (``flush``).

    Written per event, two replicas' batches lock the same roll-up rows in different orders (the order their
    events came in) and deadlock; accumulated, each key's changes merge into one row, and the rows are written in
    key order, the same for every transaction. Until then the changes are invisible, which nothing in the
    transaction minds: the handlers count dossiers from their own rows, never from the roll-up, and every write to
    the roll-up (rolling forward too) adds to what is there.
    """

    def __init__(self) -> None:
        self.rows: dict[tuple[Any, ...], dict[str, int]] = {}
        self.months: dict[date, datetime] = {}
        # where the roll-up reaches, once this transaction holds it (hold_rollup): rolling forward waits for the commit
        self.held: date | None = None
        # the contribution each dossier was left with by this transaction's last event of it (and its months)
        self._last: dict[str, tuple[dict[date, datetime], Contributions]] = {}

    def known(self, code: str, months: dict[date, datetime]) -> Contributions | None:
        """The dossier's contribution over these months as this transaction left it, if it counted it already."""
        last = self._last.get(code)
        return last[1] if last is not None and last[0] == months else None

    def add(self, code: str, before: Contributions, after: Contributions, months: dict[date, datetime]) -> None:
        """Move the roll-up from a dossier's old contribution to its new one (over ``months``)."""
        for key in before.keys() | after.keys():
            old, new = before.get(key, {}), after.get(key, {})
            into = self.rows.setdefault(key, dict.fromkeys(_ROLLUP_COLUMNS, 0))
            for c in _ROLLUP_COLUMNS:
                into[c] += new.get(c, 0) - old.get(c, 0)
        for month, horizon in months.items():  # what note_rollup_months records; the latest horizon of a month wins
            self.months[month] = horizon
        self._last[code] = (months, after)

    async def flush(self, session: AsyncSession) -> None:
        """Write the changes: the months, then the rows, then the groups, each in key order, one statement each."""
        months, self.months = self.months, {}
        rows, self.rows = self.rows, {}
        self._last.clear()
        await note_rollup_months(session=session, horizons=months)
        changed = [
            {"month": key[0], **dict(zip(ROLLUP_KEY, key[1:], strict=True)), **delta}
            for key, delta in sorted(rows.items())
            if any(delta.values())
        ]
        if changed:
            await session.execute(_UPSERT, changed)
            groups = _group_rows(changed)
            if groups:
                await session.execute(_GROUPS_UPSERT, groups)


async def rollup_months_of_facts(*, session: AsyncSession, through: date | None = None) -> list[date]:
    """Every month some received dossier has roll-up rows in, open ones rolled ``through`` (domain.active_months)."""
    row = (
        await session.execute(
            sa.text(
                "SELECT min(received_at) AS lo, max(greatest(last_activity_at, received_at)) AS hi"
                " FROM dossier_facts WHERE received_at IS NOT NULL"
            )
        )
    ).one()
    if row.lo is None:
        return []
    return domain.active_months(domain.Fact(code="", unit="", received_at=row.lo, last_activity_at=row.hi), through)


_ROLLED_THROUGH = sa.text("SELECT rolled_through FROM report_rollup_state WHERE id = 1")
_HOLD_SHARED = sa.text("SELECT pg_advisory_xact_lock_shared(:k)")
_HOLD_ALONE = sa.text("SELECT pg_advisory_xact_lock(:k)")


async def rolled_through(*, session: AsyncSession) -> date | None:
    """The month every open dossier's roll-up rows reach (None: not rolled yet)."""
    return await session.scalar(_ROLLED_THROUGH)


async def hold_rollup(*, session: AsyncSession, month: date, horizons: Callable[[date], datetime]) -> date:
    """Hold the roll-up for one handler's transaction, rolled forward through ``month`` first if it is not yet.

    Rolling forward adds to each new month the open dossiers idle since before it, with no handler running (the
    lock), so a handler's idea of where its open dossier's rows reach never changes under it.
    """
    current = await rolled_through(session=session)
    if current is not None and current >= month:
        await session.execute(_HOLD_SHARED, {"k": _ROLL_LOCK})
        return await rolled_through(session=session) or month
    await session.execute(_HOLD_ALONE, {"k": _ROLL_LOCK})
    current = await rolled_through(session=session)
    if current is not None and current >= month:
        return current
    after = domain.month_of(domain.month_period(current).end) if current else None
    months = [m for m in await rollup_months_of_facts(session=session, through=month) if (after is None or m >= after) and m <= month]
    for m in months:
        await count_rollup_month(session=session, month=m, horizon=horizons(m), where=f"f.received_at < :end AND {IDLE_OPEN}")
    await session.execute(sa.text("UPDATE report_rollup_state SET rolled_through = :month WHERE id = 1"), {"month": month})
    return month


async def set_rolled_through(*, session: AsyncSession, month: date | None) -> None:
    """Where the roll-up's open dossiers reach (the rebuild, which counts every month through it)."""
    await session.execute(sa.text("UPDATE report_rollup_state SET rolled_through = :month WHERE id = 1"), {"month": month})


async def count_rollup_month(
    *, session: AsyncSession, month: date, horizon: datetime, where: str = IN_MONTH
) -> None:
    """Add the contribution of every dossier ``where`` selects to one month's roll-up, in one statement per table
    (the rebuild, rolling forward, the benchmark's load)."""
    flags, params = _flags_where(where, {}, domain.month_period(month), "none")
    columns = ", ".join((*ROLLUP_KEY, *_ROLLUP_COLUMNS))
    sql = f"""{flags},
    contribution AS ({_CONTRIBUTION_SQL})
    INSERT INTO report_rollup (month, {columns})
    SELECT :month, {columns} FROM contribution
    ON CONFLICT (month, unit, procedure_code, procedure_name, field, officer) DO UPDATE SET
    {", ".join(f"{c} = report_rollup.{c} + excluded.{c}" for c in _ROLLUP_COLUMNS)}"""
    await session.execute(sa.text(sql), {**params, "horizon": horizon, "month": month})
    sums = ", ".join(f"sum({c})" for c in _ROLLUP_COLUMNS)
    await session.execute(sa.text("DELETE FROM report_rollup_groups WHERE month = :month"), {"month": month})
    for dim, key, name in _GROUPS:
        await session.execute(
            sa.text(f"""
            INSERT INTO report_rollup_groups (month, unit, province, scope_key, dim, key, name, {", ".join(_ROLLUP_COLUMNS)})
            SELECT month, unit, province, scope_key, '{dim}', {key or "''"}, {name or "''"}, {sums}
            FROM report_rollup WHERE month = :month GROUP BY 1, 2, 3, 4, 6, 7"""),
            {"month": month},
        )
    await note_rollup_months(session=session, horizons={month: horizon})


async def unit_known(*, session: AsyncSession, scope: domain.Scope) -> bool:
    """Whether any dossier was ever received by a unit of the scope (a unit reporting has heard of)."""
    where, params = _scope(scope, "f")
    sql = f"SELECT EXISTS (SELECT 1 FROM dossier_facts f WHERE {where})"
    return bool((await session.execute(sa.text(sql), params)).scalar())


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
) -> list[tuple[str, str, datetime, datetime, str | None, str]]:
    """(procedure code, name, received, result ready, rules ref, province) of dossiers received in the period with a
    result by its end."""
    where, params = _scope(scope, "f")
    sql = f"""
    SELECT coalesce(f.procedure_code, ''), coalesce(f.procedure_name, ''), f.received_at, f.result_at, f.rules, f.province
    FROM dossier_facts f
    WHERE {where} AND f.received_at >= :start AND f.received_at < :end AND f.result_at < :end
    ORDER BY f.procedure_code"""
    rows = await session.execute(sa.text(sql), {**params, "start": period.start, "end": period.end})
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


# ---- the DVCQG sync: what is owed to the national portal, each attempt, and the outcomes ---------------------------------


class DvcqgSync(SQLModel, table=True):
    """One sync owed to the national portal (a status push or a progress step), queued with the event that caused it."""

    __tablename__ = "dvcqg_syncs"

    id: int | None = Field(default=None, primary_key=True)
    dossier_code: str = Field(max_length=64)
    unit: str = Field(max_length=64)
    province: str = Field(max_length=64)
    scope_key: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # status | progress
    status: int
    step: str = ""  # a progress step: the event type
    event_id: str
    changed_at: datetime = _ts(nullable=False)  # the status change (the idempotency key's time)
    idempotency_key: str = Field(unique=True, max_length=200)
    state: str = Field(default="pending", max_length=16)  # pending | accepted | given_up | superseded
    attempts: int = 0
    refusals: int = 0
    next_attempt_at: datetime = _ts(nullable=False)
    created_at: datetime = _ts(nullable=False)
    accepted_at: datetime | None = _ts()
    last_code: str | None = None
    last_error: str | None = None
    replayed_at: datetime | None = _ts()
    replayed_by: str | None = None


class DvcqgSyncAttempt(SQLModel, table=True):
    """One attempt at a sync: what was sent (the lookup and the push) and what the LGSP answered."""

    __tablename__ = "dvcqg_sync_attempts"
    __table_args__ = (sa.UniqueConstraint("sync_id", "number", name="dvcqg_sync_attempts_number"),)

    id: int | None = Field(default=None, primary_key=True)
    sync_id: int = Field(foreign_key="dvcqg_syncs.id")
    number: int
    started_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    outcome: str = Field(max_length=16)  # sending | accepted | refused | unavailable | interrupted | superseded
    service: str | None = None
    request: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB))
    answer: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB))
    error_code: str | None = None
    error: str | None = None


class DvcqgDossier(SQLModel, table=True):
    """What the national portal has of a dossier: whether it exists there, and the last status it accepted."""

    __tablename__ = "dvcqg_dossiers"

    dossier_code: str = Field(primary_key=True, max_length=64)
    on_portal: bool | None = None  # None: not looked up yet (TraCuuHoSo goes before the first push)
    looked_up_at: datetime | None = _ts()
    pushed_status: int | None = None
    pushed_changed_at: datetime | None = _ts()
    pushes: int = 0


_SYNC_COLUMNS = ("dossier_code", "unit", "province", "scope_key", "kind", "status", "step", "event_id", "changed_at",
                 "idempotency_key", "next_attempt_at", "created_at")  # fmt: skip
_QUEUE_SYNC = (
    insert(DvcqgSync.__table__)
    .values({k: sa.bindparam(k) for k in _SYNC_COLUMNS})
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
)
_STATUS_BEFORE = sa.text(
    """SELECT status FROM dvcqg_syncs WHERE dossier_code = :code AND kind = 'status' AND changed_at <= :at
       ORDER BY changed_at DESC, id DESC LIMIT 1"""
)


async def sync_status_before(*, session: AsyncSession, dossier_code: str, at: datetime) -> int | None:
    """The national status the dossier's syncs queued so far put it in at ``at`` (None: none queued)."""
    return (await session.execute(_STATUS_BEFORE, {"code": dossier_code, "at": at})).scalar()


async def queue_syncs(*, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Owe the portal these syncs (``_SYNC_COLUMNS``); a row whose idempotency key is queued already is left out."""
    if rows:
        await session.execute(_QUEUE_SYNC, rows)


# The sender's statements, built once (a statement built per call costs SQLAlchemy a cache key and a compile).
_CLAIM_SYNCS = sa.text(
    """
    WITH due AS (
      SELECT s.id, s.attempts + 1 AS number FROM dvcqg_syncs s
      WHERE s.state = 'pending' AND s.next_attempt_at <= :now AND s.created_at <= :settled
        AND EXISTS (SELECT 1 FROM dossier_facts f WHERE f.code = s.dossier_code AND f.received_at IS NOT NULL)
        AND NOT EXISTS (SELECT 1 FROM dvcqg_syncs e WHERE e.dossier_code = s.dossier_code
                        AND e.state IN ('pending', 'given_up') AND (e.changed_at, e.id) < (s.changed_at, s.id))
      ORDER BY s.next_attempt_at, s.id
      LIMIT :limit
      FOR UPDATE OF s SKIP LOCKED
    ),
    interrupted AS (  -- attempts still 'sending' when their sync is claimed again: their sender died
      UPDATE dvcqg_sync_attempts a SET outcome = 'interrupted', finished_at = :now,
             error = 'the sender stopped before the LGSP answered'
      FROM due WHERE a.sync_id = due.id AND a.outcome = 'sending'
    ),
    opened AS (
      INSERT INTO dvcqg_sync_attempts (sync_id, number, started_at, outcome) SELECT id, number, :now, 'sending' FROM due
    )
    UPDATE dvcqg_syncs s SET attempts = due.number, next_attempt_at = :lease_until
    FROM due WHERE s.id = due.id
    RETURNING s.id, s.attempts, s.dossier_code, s.unit, s.kind, s.status, s.step, s.event_id, s.changed_at, s.idempotency_key"""
)
_SYNC_EVENTS = sa.text(
    "SELECT type, data, actor, event_id FROM event_log WHERE dossier_code = :code ORDER BY time, sequence"
).columns(type=sa.String, data=JSONB, actor=sa.String, event_id=sa.String)
_PORTAL_STATE = sa.text("SELECT on_portal, pushed_changed_at FROM dvcqg_dossiers WHERE dossier_code = :code")
_FINISH_ATTEMPT = sa.text(
    """UPDATE dvcqg_sync_attempts SET outcome = :outcome, finished_at = :now, service = :service,
              request = CAST(:request AS jsonb), answer = CAST(:answer AS jsonb), error_code = :error_code, error = :error
       WHERE sync_id = :sync_id AND number = :number"""
)
_LOCK_SYNC = sa.text("SELECT state, attempts, refusals FROM dvcqg_syncs WHERE id = :id FOR UPDATE")
_SETTLE_SYNC = sa.text(
    """UPDATE dvcqg_syncs SET state = :state, accepted_at = :accepted_at, refusals = :refusals,
              next_attempt_at = coalesce(:next_attempt_at, next_attempt_at), last_code = :last_code, last_error = :last_error
       WHERE id = :id"""
)
_NOTE_PORTAL = sa.text(
    """
    INSERT INTO dvcqg_dossiers AS d (dossier_code, on_portal, looked_up_at, pushed_status, pushed_changed_at, pushes)
    VALUES (:code, :on_portal, :looked_up_at, :pushed_status, :pushed_changed_at, :pushes)
    ON CONFLICT (dossier_code) DO UPDATE SET
      on_portal = excluded.on_portal,
      looked_up_at = coalesce(excluded.looked_up_at, d.looked_up_at),
      pushes = d.pushes + excluded.pushes,
      pushed_status = CASE WHEN excluded.pushed_changed_at >= coalesce(d.pushed_changed_at, excluded.pushed_changed_at)
                           THEN excluded.pushed_status ELSE d.pushed_status END,
      pushed_changed_at = greatest(d.pushed_changed_at, excluded.pushed_changed_at)"""
)


async def claim_syncs(
    *, session: AsyncSession, now: datetime, settled: datetime, lease_until: datetime, limit: int
) -> list[Any]:
    """Lease the first unsent sync of each dossier that is due and open an attempt for it (one statement); the rows.

    Rows another sender holds are skipped. A dossier's later syncs wait while an earlier one is unsent (backing off,
    or given up until an admin replays it); every sync waits until the dossier's reception is known (its events may
    arrive in either order) and, to let other producers' events with earlier times arrive, until it is ``settled``
    old. An attempt still ``sending`` from an earlier claim is ``interrupted`` (its sender died).
    """
    params = {"now": now, "settled": settled, "lease_until": lease_until, "limit": limit}
    return list((await session.execute(_CLAIM_SYNCS, params)).all())


async def sync_events(*, session: AsyncSession, dossier_code: str) -> list[Any]:
    """The dossier's events (``type``, ``data``, ``actor``, ``event_id``) in the order they happened (a push's source)."""
    return list((await session.execute(_SYNC_EVENTS, {"code": dossier_code})).all())


async def portal_state(*, session: AsyncSession, dossier_code: str) -> tuple[bool | None, datetime | None]:
    """What the portal has of the dossier: (on the portal: None when never looked up, the last status change it accepted)."""
    row = (await session.execute(_PORTAL_STATE, {"code": dossier_code})).first()
    return (row.on_portal, row.pushed_changed_at) if row else (None, None)


async def finish_sync_attempt(
    *, session: AsyncSession, sync_id: int, number: int, now: datetime, outcome: str, service: str | None,
    request: list[dict[str, Any]] | None, answer: list[dict[str, Any]] | None, error_code: str | None, error: str | None,
) -> None:  # fmt: skip
    """Write how one attempt ended, with what was sent and answered."""
    as_json = lambda value: None if value is None else json.dumps(value, ensure_ascii=False, default=str)  # noqa: E731
    await session.execute(_FINISH_ATTEMPT, {
        "sync_id": sync_id, "number": number, "now": now, "outcome": outcome, "service": service,
        "request": as_json(request), "answer": as_json(answer), "error_code": error_code, "error": error,
    })  # fmt: skip


async def lock_sync(*, session: AsyncSession, sync_id: int) -> Any | None:
    """The sync's (state, attempts, refusals), row-locked for this transaction; None when there is no such sync."""
    return (await session.execute(_LOCK_SYNC, {"id": sync_id})).first()


async def settle_sync(
    *, session: AsyncSession, sync_id: int, state: str, accepted_at: datetime | None, refusals: int,
    next_attempt_at: datetime | None, last_code: str | None, last_error: str | None,
) -> None:  # fmt: skip
    """Write a sync's state after an attempt (``next_attempt_at`` None: unchanged)."""
    await session.execute(_SETTLE_SYNC, {
        "id": sync_id, "state": state, "accepted_at": accepted_at, "refusals": refusals, "next_attempt_at": next_attempt_at,
        "last_code": last_code, "last_error": last_error,
    })  # fmt: skip


async def note_portal(
    *, session: AsyncSession, dossier_code: str, on_portal: bool | None, looked_up_at: datetime | None,
    pushed_status: int | None, pushed_changed_at: datetime | None,
) -> None:  # fmt: skip
    """Record what the portal now has of the dossier (a lookup's answer, an accepted status push)."""
    await session.execute(_NOTE_PORTAL, {
        "code": dossier_code, "on_portal": on_portal, "looked_up_at": looked_up_at, "pushed_status": pushed_status,
        "pushed_changed_at": pushed_changed_at, "pushes": 1 if pushed_changed_at is not None else 0,
    })  # fmt: skip


async def get_sync(*, session: AsyncSession, sync_id: int, lock: bool = False) -> DvcqgSync | None:
    """One sync, read fresh (row-locked when asked)."""
    statement = select(DvcqgSync).where(DvcqgSync.id == sync_id).execution_options(populate_existing=True)
    if lock:
        statement = statement.with_for_update()
    return (await session.exec(statement)).first()


async def sync_history(*, session: AsyncSession, dossier_code: str) -> list[tuple[DvcqgSync, list[DvcqgSyncAttempt]]]:
    """A dossier's syncs in the order they are sent, each with its attempts."""
    syncs = list((await session.exec(
        select(DvcqgSync).where(DvcqgSync.dossier_code == dossier_code).order_by(DvcqgSync.changed_at, DvcqgSync.id)  # type: ignore[arg-type]
    )).all())  # fmt: skip
    if not syncs:
        return []
    attempts = list((await session.exec(
        select(DvcqgSyncAttempt).where(DvcqgSyncAttempt.sync_id.in_([s.id for s in syncs]))  # type: ignore[union-attr]
        .order_by(DvcqgSyncAttempt.sync_id, DvcqgSyncAttempt.number)
    )).all())  # fmt: skip
    by_sync: dict[int, list[DvcqgSyncAttempt]] = {}
    for attempt in attempts:
        by_sync.setdefault(attempt.sync_id, []).append(attempt)
    return [(s, by_sync.get(s.id or 0, [])) for s in syncs]


async def list_syncs(*, session: AsyncSession, scope: domain.Scope, state: str, limit: int) -> list[DvcqgSync]:
    """The syncs of a scope in a state (oldest status change first), at most ``limit``."""
    where, params = _scope(scope, "s")
    ids = (await session.execute(sa.text(
        f"SELECT s.id FROM dvcqg_syncs s WHERE {where} AND s.state = :state ORDER BY s.changed_at, s.id LIMIT :limit"
    ), {**params, "state": state, "limit": limit})).scalars().all()  # fmt: skip
    if not ids:
        return []
    statement = select(DvcqgSync).where(DvcqgSync.id.in_(ids)).order_by(DvcqgSync.changed_at, DvcqgSync.id)  # type: ignore[union-attr,arg-type]
    return list((await session.exec(statement)).all())


async def sync_backlog(*, session: AsyncSession, now: datetime) -> dict[str, float]:
    """Syncs not yet accepted (pending), the age of the oldest status change among them, and the given-up ones."""
    row = (await session.execute(sa.text(
        """SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
                  min(changed_at) FILTER (WHERE state = 'pending') AS oldest,
                  count(*) FILTER (WHERE state = 'given_up') AS given_up
           FROM dvcqg_syncs WHERE state IN ('pending', 'given_up')"""
    ))).one()  # fmt: skip
    oldest = max((now - row.oldest).total_seconds(), 0.0) if row.oldest is not None else 0.0
    return {"pending": int(row.pending), "oldest_age_seconds": oldest, "given_up": int(row.given_up)}


async def sync_outcomes(
    *, session: AsyncSession, scope: domain.Scope, period: domain.Period, window_seconds: float, now: datetime
) -> dvcqg.SyncOutcomes:
    """The DVCQG sync indicator's facts (766 1.4 / DOSSIER_SYNC, DOMAIN §4.3.1) of a unit (or roll-up) and period.

    Counts the **status** syncs (``DongBoHoSoMC``; progress steps are not counted) whose status changed in the
    period, by the status change's time (``changed_at``, Vietnamese calendar days): ``due`` all of them;
    ``on_time`` those the LGSP accepted within ``window_seconds`` after the change (REPORTING_DVCQG_ON_TIME_SECONDS);
    ``late`` those accepted later, given up, superseded, or still unsent with the window past at ``now``;
    ``pending`` the rest (unsent, window still open). The index's sync rate is ``on_time / due`` (engineer B's
    handler computes the points; a month still in progress has ``pending`` > 0 for its last minutes).
    """
    where, params = _scope(scope, "s")
    sql = f"""
    SELECT count(*) AS due,
           count(*) FILTER (WHERE s.state = 'accepted' AND s.accepted_at <= s.changed_at + make_interval(secs => :window)) AS on_time,
           count(*) FILTER (WHERE s.state <> 'accepted' AND :now < s.changed_at + make_interval(secs => :window)
                                  AND s.state = 'pending') AS pending
    FROM dvcqg_syncs s
    WHERE {where} AND s.kind = 'status' AND s.changed_at >= :start AND s.changed_at < :end"""
    row = (await session.execute(sa.text(sql), {
        **params, "start": period.start, "end": period.end, "window": float(window_seconds), "now": now,
    })).one()  # fmt: skip
    due, on_time, pending = int(row.due), int(row.on_time), int(row.pending)
    return dvcqg.SyncOutcomes(due=due, on_time=on_time, late=due - on_time - pending, pending=pending, window_seconds=float(window_seconds))


async def replay_sync(*, session: AsyncSession, sync_id: int, now: datetime, actor: str) -> DvcqgSync | None:
    """Put a given-up sync back in the queue (its dossier's later syncs follow it); None when there is no such sync."""
    row = await get_sync(session=session, sync_id=sync_id, lock=True)
    if row is None:
        return None
    if row.state == dvcqg.GIVEN_UP:
        row.state, row.refusals, row.next_attempt_at = dvcqg.PENDING, 0, now
        row.replayed_at, row.replayed_by = now, actor
        session.add(row)
    return row


# ---- late inter-agency steps and the register ----------------------------------------------------------------------


async def late_steps_by_agency(
    *, session: AsyncSession, scope: domain.Scope, period: domain.Period, field: str | None = None, procedure: str | None = None
) -> list[dict[str, Any]]:
    """Per agency, the late inter-agency steps that came back in the period of the scope's dossiers, and their dossiers."""
    where, params = _filters(scope, field, procedure)
    sql = f"""
    SELECT s.agency, count(*) AS late_steps, count(DISTINCT s.code) AS dossiers
    FROM dossier_late_steps s JOIN dossier_facts f ON f.code = s.code
    WHERE {where} AND s.returned_at >= :start AND s.returned_at < :end
    GROUP BY s.agency ORDER BY count(*) DESC, s.agency"""
    rows = await session.execute(sa.text(sql), {**params, "start": period.start, "end": period.end})
    return [dict(r) for r in rows.mappings().all()]


async def late_step_agencies(*, session: AsyncSession, codes: list[str], end: datetime) -> dict[str, list[str]]:
    """The agencies each dossier's late steps were blamed on (returned before ``end``), in the order they came back."""
    if not codes:
        return {}
    sql = sa.text(
        "SELECT code, agency FROM dossier_late_steps WHERE code = ANY(:codes) AND returned_at < :end ORDER BY code, returned_at"
    )
    out: dict[str, list[str]] = {}
    for code, agency in (await session.execute(sql, {"codes": codes, "end": end})).all():
        out.setdefault(code, []).append(agency)
    return out


async def register_rows(*, session: AsyncSession, scope: domain.Scope, period: domain.Period) -> list[dict[str, Any]]:
    """Every dossier of the scope received or returned in the period (the register, Form 07), by reception."""
    where, params = _scope(scope, "f")
    sql = f"""
    SELECT f.code, f.unit, f.receiving_unit, f.procedure_code, f.procedure_name, f.applicant_name, f.received_at,
           f.due_at_original, f.due_at, f.paused, f.result_at, f.closed_at, f.close_kind, f.close_timeliness, f.returned_at,
           f.return_channel, f.late_at, f.rules, f.province, f.supplement_count,
           EXISTS (SELECT 1 FROM dossier_late_steps s WHERE s.code = f.code AND s.returned_at < :end) AS late_step
    FROM dossier_facts f
    WHERE {where} AND f.received_at IS NOT NULL
      AND ((f.received_at >= :start AND f.received_at < :end) OR (f.returned_at >= :start AND f.returned_at < :end))
    ORDER BY f.received_at, f.code"""
    rows = await session.execute(sa.text(sql), {**params, "start": period.start, "end": period.end})
    return [dict(r) for r in rows.mappings().all()]
