"""Intake tables and queries. Store functions never commit: the caller's unit of work does."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import Column, DateTime, Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.counters import UnitCounter
from shared.status import NationalStatus


class ProcedureVersion(SQLModel, table=True):
    """One published version of a procedure; a dossier keeps the version it was received under."""

    __tablename__ = "procedure_versions"

    code: str = Field(primary_key=True, max_length=32)
    version: int = Field(primary_key=True)
    effective_from: date
    name: str
    field: str
    document: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    published_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    published_by: str


class CalendarDay(SQLModel, table=True):
    """A day an admin declared working or off for a province, on top of the national calendar."""

    __tablename__ = "calendar_days"

    province: str = Field(primary_key=True, max_length=16)
    day: date = Field(primary_key=True)
    working: bool
    note: str
    changed_by: str
    changed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Dossier(SQLModel, table=True):
    """A dossier accepted at a one-stop unit (Form 01 issued)."""

    __tablename__ = "dossiers"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64, description="the unit competent to decide (processing unit)")
    receiving_unit: str = Field(max_length=64)
    procedure_code: str = Field(max_length=32)
    procedure_version: int
    procedure_name: str
    channel: str = Field(max_length=16)
    applicant_kind: str = Field(max_length=16)
    applicant_name: str = Field(max_length=200)
    applicant_id_number: str | None = Field(default=None, max_length=12)
    applicant_tax_code: str | None = Field(default=None, max_length=14)
    applicant_address: str | None = None
    applicant_phone: str | None = Field(default=None, max_length=20)
    applicant_email: str | None = Field(default=None, max_length=254)
    components: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    sets: int = 1
    return_channel: str = Field(max_length=16)
    postal_tracking_number: str | None = Field(default=None, max_length=64)
    portal_dossier_id: str | None = Field(default=None, max_length=128)
    submitted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    appointment_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    legal_due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    fee: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    status: int = NationalStatus.ACCEPTED
    received_by: str
    idempotency_key: str | None = Field(default=None, max_length=128)
    identification: str = Field(default="none", max_length=16, description="vneid_level2, chip_card or none (revision 0003)")
    population_data_reused: bool = False
    rules: str | None = Field(default=None, max_length=64, description="the rule set ref in force at reception (revision 0005)")


class IntakeRecord(SQLModel, table=True):
    """A dossier not accepted: guided elsewhere, asked to complete (Form 02) or refused (Form 03)."""

    __tablename__ = "intake_records"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True, max_length=80)
    outcome: str = Field(max_length=16)
    unit: str = Field(index=True, max_length=64)
    procedure_code: str | None = Field(default=None, max_length=32)
    procedure_name: str | None = None
    channel: str = Field(max_length=16)
    applicant_name: str = Field(max_length=200)
    details: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str


class PortalPush(SQLModel, table=True):
    """A status change of an online dossier, owed to the portal (pushed in id order per dossier)."""

    __tablename__ = "portal_pushes"

    id: int | None = Field(default=None, primary_key=True)
    dossier_code: str = Field(index=True, max_length=64)
    portal_dossier_id: str = Field(max_length=128)
    status: int
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_error: str | None = None


class NationalImport(SQLModel, table=True):
    """A look at the national procedure list (LayDanhSachTTHC, LayThuTuc) against the catalog: what importing it would
    add and change, kept until an admin applies it (revision 0004)."""

    __tablename__ = "national_catalog_imports"

    id: int | None = Field(default=None, primary_key=True)
    fetched_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    fetched_by: str
    unit: str | None = Field(default=None, max_length=64, description="madonvi of the LGSP calls")
    effective_from: date
    diff: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    base_versions: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False), description="code → latest version then (0: none)")
    applied_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    applied_by: str | None = None
    applied: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))


# ---- procedures -------------------------------------------------------------


async def procedure_at(*, session: AsyncSession, code: str, day: date) -> ProcedureVersion | None:
    """The version of a procedure in force on a day."""
    result = await session.exec(
        select(ProcedureVersion)
        .where(ProcedureVersion.code == code, ProcedureVersion.effective_from <= day)
        .order_by(col(ProcedureVersion.effective_from).desc(), col(ProcedureVersion.version).desc())
        .limit(1)
    )
    return result.first()


async def procedure_version(*, session: AsyncSession, code: str, version: int) -> ProcedureVersion | None:
    """One exact version."""
    return await session.get(ProcedureVersion, (code, version))


async def procedures_at(*, session: AsyncSession, day: date, field: str | None, text: str | None) -> list[ProcedureVersion]:
    """The version in force on a day of every procedure, optionally of one field or matching a text."""
    ranked = (
        select(
            ProcedureVersion,
            sa.func.row_number()
            .over(
                partition_by=ProcedureVersion.code,
                order_by=(col(ProcedureVersion.effective_from).desc(), col(ProcedureVersion.version).desc()),
            )
            .label("rank"),
        )
        .where(ProcedureVersion.effective_from <= day)
        .subquery()
    )
    current = sa.orm.aliased(ProcedureVersion, ranked)
    query = select(current).where(ranked.c.rank == 1)
    if field:
        query = query.where(current.field == field)
    if text:
        query = query.where(sa.or_(current.name.ilike(f"%{text}%"), current.code.ilike(f"%{text}%")))
    result = await session.exec(query.order_by(current.field, current.code))
    return list(result.all())


async def versions(*, session: AsyncSession, code: str | None = None) -> list[ProcedureVersion]:
    """Every version (of one procedure, or of all), oldest first."""
    query = select(ProcedureVersion)
    if code:
        query = query.where(ProcedureVersion.code == code)
    result = await session.exec(query.order_by(ProcedureVersion.code, ProcedureVersion.version))
    return list(result.all())


async def latest_version_number(*, session: AsyncSession, code: str) -> int:
    """The highest version number of a procedure (0 when new); locks nothing, the primary key decides races."""
    result = await session.execute(sa.select(sa.func.max(ProcedureVersion.version)).where(ProcedureVersion.code == code))
    return result.scalar_one() or 0


def add(*, session: AsyncSession, row: SQLModel) -> None:
    """Stage a new row."""
    session.add(row)


async def latest_documents(*, session: AsyncSession) -> dict[str, ProcedureVersion]:
    """The highest version of every procedure, by code."""
    result = await session.exec(
        select(ProcedureVersion).distinct(ProcedureVersion.code).order_by(ProcedureVersion.code, col(ProcedureVersion.version).desc())
    )
    return {row.code: row for row in result.all()}


async def insert_import(*, session: AsyncSession, row: NationalImport) -> NationalImport:
    """Store a look at the national list now (its id is known on return)."""
    session.add(row)
    await session.flush()
    return row


async def national_import(*, session: AsyncSession, import_id: int, lock: bool = False) -> NationalImport | None:
    """A stored look at the national list (row-locked for the transaction when asked)."""
    return await session.get(NationalImport, import_id, with_for_update=lock)


# ---- calendar ---------------------------------------------------------------


async def calendar_days(*, session: AsyncSession, province: str) -> list[CalendarDay]:
    """Every admin-declared day of a province."""
    result = await session.exec(select(CalendarDay).where(CalendarDay.province == province).order_by(CalendarDay.day))
    return list(result.all())


async def put_calendar_day(*, session: AsyncSession, day: CalendarDay) -> None:
    """Declare (or re-declare) a day."""
    values = day.model_dump()
    await session.execute(
        insert(CalendarDay).values(**values).on_conflict_do_update(index_elements=["province", "day"], set_=values)
    )


async def delete_calendar_day(*, session: AsyncSession, province: str, day: date) -> bool:
    """Forget a declared day; True when there was one."""
    result = await session.execute(sa.delete(CalendarDay).where(CalendarDay.province == province, CalendarDay.day == day))
    return result.rowcount == 1


# ---- dossiers ---------------------------------------------------------------


# The unit's dossier numbers per day; not-accepted records count in the same table under a ``#R`` marker.
DOSSIER_NUMBERS = UnitCounter("dossier_sequences", period="day")
# A core INSERT: a reception writes one dossier and never reads it back in the same transaction, so the ORM's
# object construction and unit-of-work flush (about a tenth of intake's CPU per reception, profiled) buy nothing.
_INSERT_DOSSIER = sa.insert(Dossier.__table__)  # type: ignore[attr-defined]


async def lock_law(*, session: AsyncSession) -> None:
    """Serialise changes of the rule book and the unit registry across replicas until the transaction ends (a version
    number or a merge is decided on what the previous change left)."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('motcua.intake.law'))"))


async def next_sequence(*, session: AsyncSession, unit: str, day: date) -> int:
    """The unit's next dossier number for the day; the row lock serialises concurrent receptions across replicas."""
    return await DOSSIER_NUMBERS.next(session=session, unit=unit, period=day)


async def insert_dossier(*, session: AsyncSession, values: dict[str, Any]) -> Dossier:
    """Insert a new dossier now (not at flush) and return it as a detached row for the caller to read.

    ``values`` are already checked by the handler, so the row is built without validation
    (``model_construct``: a tenth of the cost); columns left out take the model's defaults in both.
    """
    sa.orm.configure_mappers()  # a constructed row reads its attributes through the mapper (a no-op once set up)
    dossier = Dossier.model_construct(**values)
    await session.execute(_INSERT_DOSSIER, dossier.model_dump())
    return dossier


async def get(*, session: AsyncSession, code: str, lock: bool = False) -> Dossier | None:
    """The dossier with this code (row-locked for the transaction when asked)."""
    return await session.get(Dossier, code, with_for_update=lock)


async def by_idempotency_key(*, session: AsyncSession, unit: str, key: str) -> Dossier | None:
    """The dossier a repeated counter request already created."""
    result = await session.exec(select(Dossier).where(Dossier.receiving_unit == unit, Dossier.idempotency_key == key))
    return result.first()


async def by_portal_id(*, session: AsyncSession, portal_dossier_id: str) -> Dossier | None:
    """The dossier a portal submission already created."""
    result = await session.exec(select(Dossier).where(Dossier.portal_dossier_id == portal_dossier_id))
    return result.first()


async def next_record_sequence(*, session: AsyncSession, unit: str, day: date) -> int:
    """Daily number of not-accepted records (shares the dossier sequence table under a marker)."""
    return await next_sequence(session=session, unit=f"{unit}#R", day=day)


async def record(*, session: AsyncSession, reference: str) -> IntakeRecord | None:
    """A not-accepted record by its reference."""
    result = await session.exec(select(IntakeRecord).where(IntakeRecord.reference == reference))
    return result.first()


# ---- portal push-back -------------------------------------------------------


async def due_pushes(*, session: AsyncSession, now: datetime, limit: int) -> list[PortalPush]:
    """The oldest unsent push of each dossier whose retry time has come, locked for this sender."""
    oldest = (
        select(sa.func.min(PortalPush.id)).where(col(PortalPush.sent_at).is_(None)).group_by(PortalPush.dossier_code)
    ).scalar_subquery()
    result = await session.exec(
        select(PortalPush)
        .where(col(PortalPush.id).in_(oldest), PortalPush.next_attempt_at <= now)
        .order_by(PortalPush.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(result.all())


async def push_backlog(*, session: AsyncSession, now: datetime) -> tuple[int, float]:
    """Unsent pushes and the age in seconds of the oldest."""
    count, oldest = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(PortalPush.created_at)).where(col(PortalPush.sent_at).is_(None))
        )
    ).one()
    return count, (now - oldest).total_seconds() if oldest else 0.0


async def pushes(*, session: AsyncSession, dossier_code: str) -> list[PortalPush]:
    """Every push of a dossier in order."""
    result = await session.exec(select(PortalPush).where(PortalPush.dossier_code == dossier_code).order_by(PortalPush.id))
    return list(result.all())


# ---- paper registers brought in (issue #22) -----------------------------------------------------------------------


class RegisterImport(SQLModel, table=True):
    """One committed import of a unit's paper register (revision 0007)."""

    __tablename__ = "register_imports"

    id: int | None = Field(default=None, primary_key=True)
    unit: str = Field(index=True, max_length=64)
    filename: str | None = Field(default=None, max_length=300)
    sha256: str = Field(max_length=64)
    lines: int
    added: int
    skipped: int
    counts: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    imported_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    imported_by: str


class ImportedDossier(SQLModel, table=True):
    """What a register row said of a dossier it brought in, beyond the dossier's own columns (revision 0007)."""

    __tablename__ = "imported_dossiers"

    code: str = Field(primary_key=True, max_length=64)
    import_id: int = Field(foreign_key="register_imports.id", index=True)
    line: int
    digest: str = Field(max_length=64, description="the row's content (registers.digest): the key of a repeated import")
    outcome: str = Field(max_length=16)
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    paused_days: int = 0
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    returned_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    officer: str | None = Field(default=None, max_length=200)
    notes: str | None = None


_INSERT_IMPORTED = sa.insert(ImportedDossier.__table__)  # type: ignore[attr-defined]
_RAISE_SEQUENCES = sa.text(
    "INSERT INTO dossier_sequences (unit, day, last) SELECT :unit, d, s FROM unnest(CAST(:days AS date[]), CAST(:lasts AS int[])) AS t(d, s) "
    "ON CONFLICT (unit, day) DO UPDATE SET last = GREATEST(dossier_sequences.last, EXCLUDED.last)"
)


async def lock_register(*, session: AsyncSession, unit: str) -> None:
    """Serialise the register imports of one unit until the transaction ends (two imports of one file add it once)."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('motcua.intake.register:' || :unit))"), {"unit": unit})


async def existing_codes(*, session: AsyncSession, codes: list[str]) -> dict[str, str | None]:
    """Of these codes, those the system knows: code → the digest it was imported with, None for one received here."""
    found: dict[str, str | None] = {}
    for start in range(0, len(codes), 10_000):
        chunk = codes[start:start + 10_000]
        result = await session.execute(
            sa.select(Dossier.code, ImportedDossier.digest)
            .select_from(Dossier.__table__.outerjoin(ImportedDossier.__table__, ImportedDossier.code == Dossier.code))  # type: ignore[attr-defined]
            .where(col(Dossier.code).in_(chunk))
        )
        found.update({code: digest for code, digest in result.all()})
    return found


async def insert_register_import(*, session: AsyncSession, row: RegisterImport) -> RegisterImport:
    """Keep an import (its id is known on return)."""
    session.add(row)
    await session.flush()
    return row


async def insert_imported(*, session: AsyncSession, dossiers: list[dict[str, Any]], imported: list[dict[str, Any]]) -> None:
    """The dossiers of an import and what their rows said, in batches (set-based: one statement per few thousand)."""
    for start in range(0, len(dossiers), 2_000):
        await session.execute(_INSERT_DOSSIER, dossiers[start:start + 2_000])
        await session.execute(_INSERT_IMPORTED, imported[start:start + 2_000])


async def raise_sequences(*, session: AsyncSession, unit: str, last_by_day: dict[date, int]) -> None:
    """Keep the unit's daily dossier numbers above the imported codes (a dossier received today goes on after them)."""
    if last_by_day:
        days = sorted(last_by_day)
        await session.execute(_RAISE_SEQUENCES, {"unit": unit, "days": days, "lasts": [last_by_day[d] for d in days]})


async def register_imports(*, session: AsyncSession, unit: str) -> list[RegisterImport]:
    """A unit's imports, newest first."""
    result = await session.exec(select(RegisterImport).where(RegisterImport.unit == unit).order_by(col(RegisterImport.id).desc()))
    return list(result.all())
