"""Reporting tables and queries: written only by the event handlers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import Column, DateTime, Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.clock import VN_TZ


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


class DossierFact(SQLModel, table=True):
    """One row per dossier: what the summary report counts."""

    __tablename__ = "dossier_facts"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    procedure_code: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    received_day: date = Field(index=True)


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


async def add_fact(*, session: AsyncSession, fact: DossierFact) -> None:
    """Record a received dossier once."""
    await session.execute(insert(DossierFact).values(**fact.model_dump()).on_conflict_do_nothing(index_elements=["code"]))


async def received_counts(*, session: AsyncSession, unit: str, first: date, last: date) -> dict[str, int]:
    """Dossiers received by the unit between two Vietnamese calendar days (inclusive), by channel."""
    rows = await session.execute(
        sa.select(DossierFact.channel, sa.func.count())
        .where(DossierFact.unit == unit, DossierFact.received_day.between(first, last))
        .group_by(DossierFact.channel)
    )
    return {channel: count for channel, count in rows.all()}


def vn_day(instant: datetime) -> date:
    """The Vietnamese calendar day of an instant."""
    return instant.astimezone(VN_TZ).date()
