"""Payments tables and queries. Store functions never commit: the caller's unit of work does."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import Column, DateTime, Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.counters import UnitCounter

# Receipt numbers: per unit and calendar year, gapless (a rolled-back confirmation gives its number back).
RECEIPT_NUMBERS = UnitCounter("receipt_sequences", period="year")


class FeeDossier(SQLModel, table=True):
    """A received dossier, with what its fee is assessed from (the procedure version's lines and the dossier's counts)."""

    __tablename__ = "fee_dossiers"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    procedure_code: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    receiving_unit: str | None = Field(default=None, max_length=64)
    procedure_name: str = ""
    procedure_version: int = 1
    applicant_name: str = ""
    fee_lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    copies: int = 1
    pages: int | None = None
    exemption: str | None = Field(default=None, max_length=64)
    waiting_lines: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    assessed_total: int = 0
    withdrawn: bool = False


class Payment(SQLModel, table=True):
    """A payment request of a dossier, with its lines, its QR target and its life."""

    __tablename__ = "payments"

    id: str = Field(primary_key=True, max_length=16)
    dossier_code: str = Field(index=True, max_length=64)
    unit: str = Field(max_length=64)
    receiving_unit: str | None = Field(default=None, max_length=64)
    basis: str = Field(max_length=160)
    procedure_code: str = Field(max_length=32)
    procedure_name: str
    applicant_name: str
    dossier_channel: str = Field(max_length=16)
    lines: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    amount: int
    currency: str = "VND"
    status: str = Field(default="pending", max_length=16)
    bank_bin: str | None = Field(default=None, max_length=6)
    account: str | None = Field(default=None, max_length=19)
    card: bool = False
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    replaces_payment_id: str | None = Field(default=None, max_length=16)
    paid_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    channel: str | None = Field(default=None, max_length=16)
    provider: str | None = Field(default=None, max_length=64)
    provider_transaction_id: str | None = Field(default=None, max_length=128)
    confirmed_by: str | None = None
    receipt_year: int | None = None
    receipt_sequence: int | None = None
    receipt_number: str | None = Field(default=None, max_length=64)
    failed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    failure_reason: str | None = None
    refunded_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    refund_reason: str | None = None
    refunded_by: str | None = None


class Transfer(SQLModel, table=True):
    """A money movement reported by a provider, a bank statement or the counter; unique per provider transaction id."""

    __tablename__ = "transfers"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=64)
    provider_transaction_id: str = Field(max_length=128)
    source: str = Field(max_length=16)
    amount: int
    currency: str = Field(default="VND", max_length=3)
    reference: str = ""
    account: str | None = Field(default=None, max_length=19)
    unit: str | None = Field(default=None, max_length=64)
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    outcome: str = Field(max_length=32)
    payment_id: str | None = Field(default=None, max_length=16)
    note: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class Statement(SQLModel, table=True):
    """An uploaded bank statement."""

    __tablename__ = "statements"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=64)
    uploaded_by: str
    uploaded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    lines_total: int
    lines_new: int


class StatementLineRow(SQLModel, table=True):
    """One line of a statement; a line (provider, transaction id) is imported once, whatever is uploaded again."""

    __tablename__ = "statement_lines"

    id: int | None = Field(default=None, primary_key=True)
    statement_id: int
    provider: str = Field(max_length=64)
    line: int
    booked_on: date
    amount: int
    currency: str = Field(default="VND", max_length=3)
    reference: str
    transaction_id: str = Field(max_length=128)
    import_outcome: str = Field(max_length=32)


class PageReport(SQLModel, table=True):
    """A certified copy's page count, kept until (and after) its fee is assessed."""

    __tablename__ = "page_reports"

    dossier_code: str = Field(primary_key=True, max_length=64)
    copy_id: str = Field(primary_key=True, max_length=128)
    pages: int
    copies: int = 1
    reported_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    assessed: bool = False


class AuditLine(SQLModel, table=True):
    """Who changed what about a payment or a transfer, when, and why."""

    __tablename__ = "payment_audit"

    id: int | None = Field(default=None, primary_key=True)
    payment_id: str | None = Field(default=None, index=True, max_length=16)
    transfer_id: int | None = None
    action: str = Field(max_length=48)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    actor: str
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


def add(*, session: AsyncSession, row: SQLModel) -> None:
    """Stage a new row."""
    session.add(row)


# ---- dossiers --------------------------------------------------------------------------------


async def remember(*, session: AsyncSession, dossier: FeeDossier) -> bool:
    """Record a dossier once; True when it is new."""
    result = await session.execute(
        insert(FeeDossier).values(**dossier.model_dump()).on_conflict_do_nothing(index_elements=["code"]).returning(FeeDossier.code)
    )
    return result.first() is not None


async def dossier(*, session: AsyncSession, code: str, lock: bool = False) -> FeeDossier | None:
    """A known dossier (row-locked when asked)."""
    return await session.get(FeeDossier, code, with_for_update=lock)


# ---- payments --------------------------------------------------------------------------------


async def get(*, session: AsyncSession, payment_id: str, lock: bool = False) -> Payment | None:
    """A payment by id (row-locked for the transaction when asked)."""
    return await session.get(Payment, payment_id, with_for_update=lock, populate_existing=lock)


async def by_basis(*, session: AsyncSession, dossier_code: str, basis: str) -> Payment | None:
    """The request already made for this dossier and basis."""
    result = await session.exec(select(Payment).where(Payment.dossier_code == dossier_code, Payment.basis == basis))
    return result.first()


async def of_dossier(*, session: AsyncSession, dossier_code: str) -> list[Payment]:
    """A dossier's payments, oldest first."""
    result = await session.exec(select(Payment).where(Payment.dossier_code == dossier_code).order_by(Payment.created_at, Payment.id))
    return list(result.all())


async def search(
    *, session: AsyncSession, units: list[str] | None, status: str | None, limit: int, offset: int
) -> tuple[list[Payment], int]:
    """Payments of some units (all when None), newest first, and their count."""
    query = select(Payment)
    if units is not None:
        query = query.where(sa.or_(col(Payment.unit).in_(units), col(Payment.receiving_unit).in_(units)))
    if status:
        query = query.where(Payment.status == status)
    total = (await session.execute(sa.select(sa.func.count()).select_from(query.subquery()))).scalar_one()
    result = await session.exec(query.order_by(col(Payment.created_at).desc(), Payment.id).limit(limit).offset(offset))
    return list(result.all()), total


async def pending_of_dossier(*, session: AsyncSession, dossier_code: str, lock: bool = False) -> list[Payment]:
    """A dossier's pending payments."""
    query = select(Payment).where(Payment.dossier_code == dossier_code, Payment.status == "pending").order_by(Payment.id)
    if lock:
        query = query.with_for_update()
    return list((await session.exec(query)).all())


async def due_to_expire(*, session: AsyncSession, now: datetime, limit: int) -> list[Payment]:
    """Pending payments past their expiry, claimed for this sweeper (other replicas skip them)."""
    result = await session.exec(
        select(Payment)
        .where(Payment.status == "pending", Payment.expires_at <= now)
        .order_by(Payment.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(result.all())


async def backlog(*, session: AsyncSession, held_outcomes: list[str]) -> tuple[int, int]:
    """Pending requests, and transfers held for a person (of the outcomes that hold one, not yet resolved)."""
    pending = (await session.execute(sa.select(sa.func.count()).where(Payment.status == "pending"))).scalar_one()
    held = (
        await session.execute(
            sa.select(sa.func.count()).where(col(Transfer.outcome).in_(held_outcomes), col(Transfer.resolved_at).is_(None))
        )
    ).scalar_one()
    return pending, held


# ---- transfers -------------------------------------------------------------------------------


async def insert_transfer(*, session: AsyncSession, transfer: Transfer) -> Transfer | None:
    """Record a transfer; None when its provider transaction id is already recorded (the unique constraint decides races)."""
    values = transfer.model_dump(exclude={"id"})
    result = await session.execute(
        insert(Transfer)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "provider_transaction_id"])
        .returning(Transfer.id)
    )
    new_id = result.scalar_one_or_none()
    if new_id is None:
        return None
    return await session.get(Transfer, new_id)


async def transfer(*, session: AsyncSession, transfer_id: int, lock: bool = False) -> Transfer | None:
    """A transfer by id."""
    return await session.get(Transfer, transfer_id, with_for_update=lock, populate_existing=lock)


async def transfer_by_provider_id(*, session: AsyncSession, provider: str, provider_transaction_id: str) -> Transfer | None:
    """A transfer by its provider's id."""
    result = await session.exec(
        select(Transfer).where(Transfer.provider == provider, Transfer.provider_transaction_id == provider_transaction_id)
    )
    return result.first()


async def transfers_by_provider_ids(*, session: AsyncSession, provider: str, ids: list[str]) -> list[Transfer]:
    """Transfers of a provider by their ids."""
    if not ids:
        return []
    result = await session.exec(
        select(Transfer).where(Transfer.provider == provider, col(Transfer.provider_transaction_id).in_(ids))
    )
    return list(result.all())


async def held_transfers(
    *, session: AsyncSession, outcomes: list[str], units: list[str] | None, limit: int, offset: int
) -> tuple[list[Transfer], int]:
    """Transfers waiting for a person, oldest first: of some units (all when None), and those no unit claims."""
    query = select(Transfer).where(col(Transfer.outcome).in_(outcomes), col(Transfer.resolved_at).is_(None))
    if units is not None:
        query = query.where(sa.or_(col(Transfer.unit).is_(None), col(Transfer.unit).in_(units)))
    total = (await session.execute(sa.select(sa.func.count()).select_from(query.subquery()))).scalar_one()
    result = await session.exec(query.order_by(Transfer.id).limit(limit).offset(offset))
    return list(result.all()), total


async def transfers_of_payment(*, session: AsyncSession, payment_id: str) -> list[Transfer]:
    """Every transfer recorded against a payment."""
    result = await session.exec(select(Transfer).where(Transfer.payment_id == payment_id).order_by(Transfer.id))
    return list(result.all())


async def confirmed_online(*, session: AsyncSession, provider: str, start: datetime, end: datetime) -> list[Transfer]:
    """Transfers the provider confirmed to the service (callbacks) that paid a request, in [start, end)."""
    result = await session.exec(
        select(Transfer).where(
            Transfer.provider == provider,
            Transfer.source == "callback",
            Transfer.outcome == "confirmed",
            Transfer.occurred_at >= start,
            Transfer.occurred_at < end,
        )
    )
    return list(result.all())


# ---- statements ------------------------------------------------------------------------------


async def insert_statement_line(*, session: AsyncSession, line: StatementLineRow) -> bool:
    """Import a line once per (provider, transaction id); True when it is new."""
    result = await session.execute(
        insert(StatementLineRow)
        .values(**line.model_dump(exclude={"id"}))
        .on_conflict_do_nothing(index_elements=["provider", "transaction_id"])
        .returning(StatementLineRow.id)
    )
    return result.first() is not None


async def set_line_outcome(*, session: AsyncSession, provider: str, transaction_id: str, outcome: str) -> None:
    """What importing a statement line did."""
    await session.execute(
        sa.update(StatementLineRow)
        .where(col(StatementLineRow.provider) == provider, col(StatementLineRow.transaction_id) == transaction_id)
        .values(import_outcome=outcome)
    )


async def statement_lines(*, session: AsyncSession, provider: str, day: date) -> list[StatementLineRow]:
    """A provider's statement lines booked on a day."""
    result = await session.exec(
        select(StatementLineRow)
        .where(StatementLineRow.provider == provider, StatementLineRow.booked_on == day)
        .order_by(StatementLineRow.statement_id, StatementLineRow.line)
    )
    return list(result.all())


async def on_any_statement(*, session: AsyncSession, provider: str, ids: list[str]) -> set[str]:
    """Which of these transaction ids some statement line carries."""
    if not ids:
        return set()
    result = await session.execute(
        sa.select(StatementLineRow.transaction_id).where(
            StatementLineRow.provider == provider, col(StatementLineRow.transaction_id).in_(ids)
        )
    )
    return set(result.scalars().all())


async def payments_by_ids(*, session: AsyncSession, ids: list[str]) -> dict[str, Payment]:
    """Payments by id."""
    if not ids:
        return {}
    result = await session.exec(select(Payment).where(col(Payment.id).in_(ids)))
    return {p.id: p for p in result.all()}


# ---- page reports ----------------------------------------------------------------------------


async def park_page_report(*, session: AsyncSession, report: PageReport) -> bool:
    """Keep a page count once per copy; True when it is new."""
    result = await session.execute(
        insert(PageReport)
        .values(**report.model_dump())
        .on_conflict_do_nothing(index_elements=["dossier_code", "copy_id"])
        .returning(PageReport.copy_id)
    )
    return result.first() is not None


async def unassessed_page_reports(*, session: AsyncSession, dossier_code: str) -> list[PageReport]:
    """Page counts that arrived before their dossier."""
    result = await session.exec(
        select(PageReport)
        .where(PageReport.dossier_code == dossier_code, col(PageReport.assessed).is_(False))
        .order_by(PageReport.reported_at, PageReport.copy_id)
        .with_for_update()
    )
    return list(result.all())


# ---- audit -----------------------------------------------------------------------------------


async def audit_of(*, session: AsyncSession, payment_id: str) -> list[AuditLine]:
    """A payment's audit lines in order."""
    result = await session.exec(select(AuditLine).where(AuditLine.payment_id == payment_id).order_by(AuditLine.id))
    return list(result.all())
