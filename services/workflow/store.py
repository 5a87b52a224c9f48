"""Workflow tables and queries. Store functions never commit: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlmodel import Column, DateTime, Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession


def _ts(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Case(SQLModel, table=True):
    """A dossier being processed: its state, its clock, who holds it, and how it ended."""

    __tablename__ = "cases"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    receiving_unit: str | None = Field(default=None, max_length=64)
    procedure_code: str = Field(max_length=32)
    procedure_name: str
    procedure_version: int = 1
    applicant_name: str = Field(max_length=200)
    applicant_email: str | None = Field(default=None, max_length=254)
    applicant_phone: str | None = Field(default=None, max_length=20)
    notify_by: str | None = Field(default=None, max_length=8)
    channel: str = Field(max_length=16)
    requested_return_channel: str | None = Field(default=None, max_length=16)
    status: str = Field(max_length=32)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    received_by: str | None = None
    on_the_spot: bool | None = None
    fee_due_amount: int = 0
    fee_pending: bool = False
    # the clock
    appointment_at: datetime | None = _ts()
    due_at_original: datetime | None = _ts()
    legal_due_at: datetime | None = _ts()
    due_at: datetime | None = _ts()
    due_at_rescheduled: datetime | None = _ts()
    supplement_count: int = 0
    supplement_requested_at: datetime | None = _ts()
    supplement_received_at: datetime | None = _ts()
    supplement_reason: str | None = None
    supplement_requested_by: str | None = None
    supplement_items: list[str] | None = Field(default=None, sa_column=Column(JSONB))
    paused_at: datetime | None = _ts()
    remaining_working_days: int | None = None
    # who holds it
    department: str | None = None
    assignee: str | None = None
    assigned_at: datetime | None = _ts()
    holder_unit: str | None = None
    holder_officer: str | None = None
    transfer_agency: str | None = Field(default=None, max_length=300)
    transfer_step_due_at: datetime | None = _ts()
    transfer_step_no: int | None = None
    # the law in force at reception (shared.rules ref, e.g. VN.2+H56.1) and the catalog's inter-agency step plan
    rules: str | None = Field(default=None, max_length=64)
    step_plan: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB))
    planned_steps_sent: int = 0
    # lateness and its paperwork
    is_late: bool = False
    late_reason: str | None = None
    late_at: datetime | None = _ts()
    late_holder_unit: str | None = None
    late_holder_officer: str | None = None
    late_step_agency: str | None = Field(default=None, max_length=300)
    apology_count: int = 0
    apology_issued_at: datetime | None = _ts()
    apology_reason: str | None = None
    apology_timely: bool | None = None
    apology_by: str | None = None
    explanation: str | None = None
    explained_at: datetime | None = _ts()
    explained_by: str | None = None
    # decision, result, return
    approved_at: datetime | None = _ts()
    approved_by: str | None = None
    decision_note: str | None = None
    finished_at: datetime | None = _ts()
    timeliness: str | None = Field(default=None, max_length=16)
    returned_at: datetime | None = _ts()
    return_channel: str | None = Field(default=None, max_length=16)
    tracking_number: str | None = None
    returned_by: str | None = None
    returned_on_the_spot: bool = False
    closed_at: datetime | None = _ts()
    closed_reason: str | None = None
    closed_by: str | None = None
    # the sweep's flags
    warning_sent_at: datetime | None = _ts()
    overdue_sent_at: datetime | None = _ts()
    rated_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    version: int = 1


class CaseStep(SQLModel, table=True):
    """One row of the tracking slip (Phiếu kiểm soát, Form 05): a hand-over and its step deadline."""

    __tablename__ = "case_steps"
    __table_args__ = (sa.UniqueConstraint("case_code", "seq", name="case_steps_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    case_code: str = Field(max_length=64, index=True)
    seq: int
    kind: str = Field(max_length=32)
    from_unit: str | None = None
    from_officer: str | None = None
    to_unit: str | None = None
    to_officer: str | None = None
    handed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    step_due_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    late: bool | None = None
    note: str | None = None
    # an inter-agency step: its place in the catalog's plan, the planned share of time, why the officer changed it
    step_no: int | None = None
    planned_days: int | None = None
    adjusted_reason: str | None = None


class ResultSignature(SQLModel, table=True):
    """A signed result of the dossier (``document.signed``), kept even if it arrives before the case."""

    __tablename__ = "result_signatures"

    case_code: str = Field(primary_key=True, max_length=64)
    document_id: str = Field(primary_key=True)
    signer: str
    certificate_serial: str
    signed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class CasePayment(SQLModel, table=True):
    """A fee of the dossier (``payment.requested`` / ``payment.confirmed``), in whatever order they come."""

    __tablename__ = "case_payments"

    case_code: str = Field(primary_key=True, max_length=64)
    payment_id: str = Field(primary_key=True)
    amount: int | None = None
    requested_at: datetime | None = _ts()
    confirmed_at: datetime | None = _ts()
    refunded_at: datetime | None = _ts()
    replaced_at: datetime | None = _ts()


class Rating(SQLModel, table=True):
    """The applicant's rating of a returned dossier: one per dossier."""

    __tablename__ = "ratings"

    case_code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(max_length=64, index=True)
    rating: str = Field(max_length=32)
    criteria: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    derived: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    comment: str | None = None
    rated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Feedback(SQLModel, table=True):
    """Citizen feedback (phản ánh, kiến nghị) about a dossier and its answer."""

    __tablename__ = "feedback"

    id: str = Field(primary_key=True, max_length=36)
    case_code: str = Field(max_length=64, index=True)
    unit: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=32)
    content: str
    contact: str | None = None
    submitted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    answered_at: datetime | None = _ts()
    answer: str | None = None
    answered_by: str | None = None
    timeliness: str | None = Field(default=None, max_length=16)


class NotificationTemplate(SQLModel, table=True):
    """The words of one notification kind on one channel, as an admin last set them."""

    __tablename__ = "notification_templates"

    kind: str = Field(primary_key=True, max_length=32)
    channel: str = Field(primary_key=True, max_length=8)
    subject: str | None = None
    body: str
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_by: str | None = None


class Notification(SQLModel, table=True):
    """A message owed to the applicant, written with the fact that caused it; pending until a provider took it."""

    __tablename__ = "notifications"

    id: str = Field(primary_key=True, max_length=36)
    case_code: str = Field(max_length=64, index=True)
    event_id: str = Field(max_length=36, unique=True)
    kind: str = Field(max_length=32)
    channel: str = Field(max_length=8)
    recipient: str = Field(max_length=254)
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    status: str = Field(max_length=16)
    subject: str | None = None
    body: str | None = None
    encoding: str | None = Field(default=None, max_length=8)
    segments: int | None = None
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    sent_at: datetime | None = _ts()
    last_error: str | None = None
    provider_message_id: str | None = None


class NotificationAttempt(SQLModel, table=True):
    """One try at delivering a notification and how it ended (``sending`` while in flight)."""

    __tablename__ = "notification_attempts"
    __table_args__ = (sa.UniqueConstraint("notification_id", "number", name="notification_attempts_number"),)

    id: int | None = Field(default=None, primary_key=True)
    notification_id: str = Field(max_length=36, index=True)
    number: int
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = _ts()
    outcome: str = Field(max_length=16)
    error: str | None = None
    provider_message_id: str | None = None


class CalendarDay(SQLModel, table=True):
    """A day a province declared off or working (from intake's calendar events), on top of the national calendar."""

    __tablename__ = "province_calendar_days"

    province: str = Field(primary_key=True, max_length=16)
    day: date = Field(primary_key=True)
    working: bool
    reason: str
    declared_by: str | None = None
    declared_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


# ---- cases ------------------------------------------------------------------------------------


# The command and read paths' statements, built once: a statement built per call costs SQLAlchemy its cache key on
# every execution (profiled at ~10 % of workflow's CPU); these bind their values.
_GET = select(Case).where(Case.code == sa.bindparam("code")).execution_options(populate_existing=True)
_GET_FOR_UPDATE = _GET.with_for_update()


async def get(*, session: AsyncSession, code: str, for_update: bool = False) -> Case | None:
    """The case with this dossier code (row-locked when ``for_update``), always read fresh."""
    return (await session.exec(_GET_FOR_UPDATE if for_update else _GET, params={"code": code})).first()


async def insert_if_new(*, session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a case unless one with its code exists; True when inserted."""
    result = await session.execute(insert(Case).values(**values).on_conflict_do_nothing(index_elements=["code"]))
    return result.rowcount == 1


# The changes are bound by execution parameters: SQLAlchemy sets the columns named in them (their names are the
# statement's compiled-cache key along with the statement's own, memoized cache key).
_UPDATE = (
    sa.update(Case)
    .where(Case.code == sa.bindparam("_code"), Case.version == sa.bindparam("_version"))
    .values(updated_at=sa.bindparam("_now"), version=Case.version + 1)
    .returning(Case.version)
    .execution_options(synchronize_session=False)
)
_SETTABLE = frozenset(Case.__table__.columns.keys()) - {"updated_at", "version"}


async def update(*, session: AsyncSession, code: str, version: int, changes: dict[str, Any], now: datetime) -> int | None:
    """Write the changes if the case is still at ``version``; the new version, or None when someone else won."""
    if not changes.keys() <= _SETTABLE:
        raise ValueError(f"not columns a change may set: {sorted(changes.keys() - _SETTABLE)}")
    result = await session.execute(_UPDATE, {**changes, "_code": code, "_version": version, "_now": now})
    return result.scalar_one_or_none()


async def set_flags(*, session: AsyncSession, code: str, changes: dict[str, Any]) -> None:
    """Write the sweep's flags on a row it holds locked; the version stays, officers' commands are not disturbed."""
    await session.execute(
        sa.update(Case).where(Case.code == code).values(**changes).execution_options(synchronize_session=False)
    )


_OPEN_BY_DUE = (Case.due_at.is_(None), Case.due_at)


# The units whose officials see a case: processing, receiving, and the agency of a running transfer.
_SEEN_BY = ("unit", "receiving_unit", "transfer_agency")


def units_seeing(case: Case) -> list[str]:
    """The units whose officials see this case (the rule ``_visible`` applies in SQL)."""
    return [unit for unit in (getattr(case, column) for column in _SEEN_BY) if unit]


def _visible(units: frozenset[str]) -> Any:
    if "*" in units:
        return sa.true()
    wanted = list(units)
    return sa.or_(*(getattr(Case, column).in_(wanted) for column in _SEEN_BY))


async def worklist(
    *,
    session: AsyncSession,
    units: frozenset[str],
    statuses: list[str],
    assignee: str | None,
    due_before: datetime | None,
    due_after: datetime | None,
    limit: int,
    offset: int,
    due_before_in: Mapping[str, datetime] | None = None,
) -> tuple[list[Case], int]:
    """Cases visible to the units, filtered, soonest deadline first; (page, total).

    ``due_before_in`` maps provinces to their own bound (their calendars differ); ``due_before`` bounds the rest.
    """
    conditions = [_visible(units), Case.status.in_(statuses)]
    if assignee is not None:
        conditions.append(Case.assignee == assignee)
    if due_before is not None and due_before_in:
        province = sa.func.substring(Case.unit, r"[^.]*$")  # shared.calendar.province_of in SQL
        conditions.append(Case.due_at <= sa.case(dict(due_before_in), value=province, else_=due_before))
    elif due_before is not None:
        conditions.append(Case.due_at <= due_before)
    if due_after is not None:
        conditions.append(Case.due_at >= due_after)
    total = (await session.exec(select(sa.func.count()).select_from(Case).where(*conditions))).one()
    rows = await session.exec(
        select(Case).where(*conditions).order_by(*_OPEN_BY_DUE, Case.code).limit(limit).offset(offset)
    )
    return list(rows.all()), total


async def claim_for_sweep(
    *, session: AsyncSession, statuses: list[str], now: datetime, horizon: datetime, limit: int
) -> list[Case]:
    """Running cases whose deadline is near or past and not yet announced, locked; rows another sweeper holds are skipped."""
    statement = (
        select(Case)
        .where(
            Case.status.in_(statuses),
            Case.overdue_sent_at.is_(None),
            Case.due_at <= horizon,
            sa.or_(Case.warning_sent_at.is_(None), Case.due_at < now),
        )
        .order_by(Case.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(statement)).all())


async def open_codes_of_unit(*, session: AsyncSession, unit: str, open_statuses: list[str]) -> list[str]:
    """The codes of the unit's cases in an open status (a merged unit hands them over), in code order."""
    statement = select(Case.code).where(Case.unit == unit, Case.status.in_(open_statuses)).order_by(Case.code)
    return list((await session.exec(statement)).all())


# ---- the tracking slip --------------------------------------------------------------------------


# A hand-over's statements, built once (see _GET): close the open row of the slip, read the last row number.
_CLOSE_OPEN_STEP = (
    sa.update(CaseStep)
    .where(CaseStep.case_code == sa.bindparam("_code"), CaseStep.completed_at.is_(None))
    .values(
        completed_at=sa.bindparam("_now"),
        late=sa.case(
            (CaseStep.step_due_at.is_(None), sa.null()),
            else_=CaseStep.step_due_at < sa.bindparam("_now", type_=DateTime(timezone=True)),
        ),
    )
    .execution_options(synchronize_session=False)
)
_LAST_SEQ = select(sa.func.max(CaseStep.seq)).where(CaseStep.case_code == sa.bindparam("code"))


async def hand_over(
    *,
    session: AsyncSession,
    code: str,
    now: datetime,
    kind: str,
    from_unit: str | None,
    from_officer: str | None,
    to_unit: str | None,
    to_officer: str | None,
    step_due_at: datetime | None,
    note: str | None,
    final: bool,
    step_no: int | None = None,
    planned_days: int | None = None,
    adjusted_reason: str | None = None,
) -> None:
    """Close the open row of the slip (time handed over, late against its step deadline) and open the next."""
    await session.execute(_CLOSE_OPEN_STEP, {"_code": code, "_now": now})
    last = (await session.exec(_LAST_SEQ, params={"code": code})).one()
    session.add(
        CaseStep(
            case_code=code,
            seq=(last or 0) + 1,
            kind=kind,
            from_unit=from_unit,
            from_officer=from_officer,
            to_unit=to_unit,
            to_officer=to_officer,
            handed_at=now,
            step_due_at=step_due_at,
            completed_at=now if final else None,
            late=(step_due_at < now) if final and step_due_at else None,
            note=note,
            step_no=step_no,
            planned_days=planned_days,
            adjusted_reason=adjusted_reason,
        )
    )
    await session.flush()


async def steps(*, session: AsyncSession, code: str) -> list[CaseStep]:
    """The tracking slip of a case, in order."""
    return list((await session.exec(select(CaseStep).where(CaseStep.case_code == code).order_by(CaseStep.seq))).all())


# ---- the result gate -----------------------------------------------------------------------------


async def record_signature(
    *, session: AsyncSession, code: str, document_id: str, signer: str, certificate_serial: str, signed_at: datetime
) -> None:
    """Keep a signed result (once per document)."""
    await session.execute(
        insert(ResultSignature)
        .values(
            case_code=code, document_id=document_id, signer=signer, certificate_serial=certificate_serial, signed_at=signed_at
        )
        .on_conflict_do_nothing()
    )


async def record_payment(*, session: AsyncSession, code: str, payment_id: str, **values: Any) -> None:
    """Upsert what is known about one fee payment (requested, confirmed, refunded)."""
    statement = insert(CasePayment).values(case_code=code, payment_id=payment_id, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["case_code", "payment_id"],
            set_={k: sa.func.coalesce(getattr(statement.excluded, k), getattr(CasePayment, k)) for k in values},
        )
    )


def _gate_facts_statement() -> Any:
    """Each asked code with its first signature time and one row per payment (one row of NULLs when it has none)."""
    codes = sa.func.unnest(sa.cast(sa.bindparam("codes"), ARRAY(sa.String))).table_valued("code").render_derived()
    first_signed = (
        select(sa.func.min(ResultSignature.signed_at)).where(ResultSignature.case_code == codes.c.code).scalar_subquery()
    )
    return (
        select(codes.c.code, first_signed, CasePayment)
        .select_from(codes)
        .outerjoin(CasePayment, CasePayment.case_code == codes.c.code)
    )


_GATE_FACTS = _gate_facts_statement()


async def gate_facts(*, session: AsyncSession, code: str) -> tuple[datetime | None, list[CasePayment]]:
    """(first signature time, the dossier's payments)."""
    return (await gate_facts_of(session=session, codes=[code]))[code]


async def gate_facts_of(
    *, session: AsyncSession, codes: list[str]
) -> dict[str, tuple[datetime | None, list[CasePayment]]]:
    """The result-gate facts of several dossiers in one query."""
    facts: dict[str, tuple[datetime | None, list[CasePayment]]] = {code: (None, []) for code in codes}
    if not facts:
        return facts
    for code, signed_at, payment in (await session.exec(_GATE_FACTS, params={"codes": list(facts)})).all():
        payments = facts[code][1]
        if payment is not None:
            payments.append(payment)
        facts[code] = (signed_at, payments)
    return facts


# ---- ratings and feedback -----------------------------------------------------------------------


def add_rating(*, session: AsyncSession, rating: Rating) -> None:
    """Stage a rating (the primary key refuses a second one)."""
    session.add(rating)


async def get_rating(*, session: AsyncSession, code: str) -> Rating | None:
    """The dossier's rating."""
    return await session.get(Rating, code)


def add_feedback(*, session: AsyncSession, feedback: Feedback) -> None:
    """Stage a piece of feedback."""
    session.add(feedback)


async def get_feedback(*, session: AsyncSession, feedback_id: str, for_update: bool = False) -> Feedback | None:
    """One piece of feedback."""
    statement = select(Feedback).where(Feedback.id == feedback_id).execution_options(populate_existing=True)
    if for_update:
        statement = statement.with_for_update()
    return (await session.exec(statement)).first()


async def list_feedback(
    *,
    session: AsyncSession,
    units: frozenset[str],
    answered: bool | None,
    due_before: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[Feedback], int]:
    """Feedback of the units, soonest answer deadline first; (page, total)."""
    conditions: list[Any] = [sa.true() if "*" in units else Feedback.unit.in_(list(units))]
    if answered is not None:
        conditions.append(Feedback.answered_at.is_not(None) if answered else Feedback.answered_at.is_(None))
    if due_before is not None:
        conditions.append(Feedback.due_at <= due_before)
    total = (await session.exec(select(sa.func.count()).select_from(Feedback).where(*conditions))).one()
    rows = await session.exec(select(Feedback).where(*conditions).order_by(Feedback.due_at).limit(limit).offset(offset))
    return list(rows.all()), total


# ---- applicant notifications -------------------------------------------------------------------


async def add_notification(*, session: AsyncSession, values: dict[str, Any]) -> bool:
    """Owe a notification unless one exists for its event; True when written."""
    result = await session.execute(
        insert(Notification).values(**values).on_conflict_do_nothing(index_elements=["event_id"])
    )
    return result.rowcount == 1


async def notifications_of(*, session: AsyncSession, code: str) -> list[tuple[Notification, list[NotificationAttempt]]]:
    """A dossier's notifications, oldest first, each with its attempts in order."""
    rows = list(
        (await session.exec(select(Notification).where(Notification.case_code == code).order_by(Notification.created_at, Notification.id))).all()
    )
    attempts: dict[str, list[NotificationAttempt]] = {n.id: [] for n in rows}
    if rows:
        found = await session.exec(
            select(NotificationAttempt)
            .where(NotificationAttempt.notification_id.in_(list(attempts)))
            .order_by(NotificationAttempt.notification_id, NotificationAttempt.number)
        )
        for attempt in found.all():
            attempts[attempt.notification_id].append(attempt)
    return [(n, attempts[n.id]) for n in rows]


async def claim_notifications(*, session: AsyncSession, now: datetime, limit: int, channel: str) -> list[Notification]:
    """A channel's pending notifications that are due, locked; rows another sender holds are skipped."""
    statement = (
        select(Notification)
        .where(Notification.status == "pending", Notification.channel == channel, Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(statement)).all())


async def interrupt_attempts(*, session: AsyncSession, notification_id: str, now: datetime) -> None:
    """Attempts still ``sending`` when their notification is claimed again: their sender died; the outcome is unknown."""
    await session.execute(
        sa.update(NotificationAttempt)
        .where(NotificationAttempt.notification_id == notification_id, NotificationAttempt.outcome == "sending")
        .values(outcome="interrupted", finished_at=now, error="the sender stopped before the provider answered")
        .execution_options(synchronize_session=False)
    )


async def finish_attempt(
    *, session: AsyncSession, notification_id: str, number: int, now: datetime, outcome: str, error: str | None, provider_id: str | None
) -> None:
    """Write how one attempt ended."""
    await session.execute(
        sa.update(NotificationAttempt)
        .where(NotificationAttempt.notification_id == notification_id, NotificationAttempt.number == number)
        .values(outcome=outcome, finished_at=now, error=error, provider_message_id=provider_id)
        .execution_options(synchronize_session=False)
    )


async def get_notification(*, session: AsyncSession, notification_id: str) -> Notification | None:
    """One notification, row-locked, read fresh."""
    statement = (
        select(Notification).where(Notification.id == notification_id).with_for_update().execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).first()


async def notification_backlog(*, session: AsyncSession, now: datetime) -> tuple[dict[str, int], float]:
    """Pending notifications per channel and the age of the oldest, in seconds."""
    rows = await session.exec(
        select(Notification.channel, sa.func.count(), sa.func.min(Notification.created_at))
        .where(Notification.status == "pending")
        .group_by(Notification.channel)
    )
    counts: dict[str, int] = {}
    oldest: datetime | None = None
    for channel, count, first in rows.all():
        counts[channel] = count
        oldest = first if oldest is None or first < oldest else oldest
    return counts, max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


async def templates(*, session: AsyncSession) -> list[NotificationTemplate]:
    """Every notification template."""
    return list((await session.exec(select(NotificationTemplate).order_by(NotificationTemplate.kind, NotificationTemplate.channel))).all())


async def get_template(*, session: AsyncSession, kind: str, channel: str) -> NotificationTemplate | None:
    """One template."""
    return await session.get(NotificationTemplate, (kind, channel))


# ---- provincial calendars -------------------------------------------------------------------------


async def declare_day(*, session: AsyncSession, day: CalendarDay) -> None:
    """Upsert a declared day; an older declaration than the one stored changes nothing (the later fact wins)."""
    values = day.model_dump()
    statement = insert(CalendarDay).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["province", "day"],
            set_={k: statement.excluded[k] for k in ("working", "reason", "declared_by", "declared_at")},
            where=CalendarDay.declared_at <= statement.excluded.declared_at,
        )
    )


async def forget_day(*, session: AsyncSession, province: str, day: date, at: datetime) -> bool:
    """Drop a declared day unless it was declared after the retraction; True when a row went."""
    result = await session.execute(
        sa.delete(CalendarDay).where(CalendarDay.province == province, CalendarDay.day == day, CalendarDay.declared_at <= at)
    )
    return bool(result.rowcount)


async def calendar_days(*, session: AsyncSession, province: str | None = None) -> list[CalendarDay]:
    """The declared days of one province (or of all), in day order."""
    statement = select(CalendarDay).order_by(CalendarDay.province, CalendarDay.day)
    if province is not None:
        statement = statement.where(CalendarDay.province == province)
    return list((await session.exec(statement)).all())
