"""Intake tables and queries. Store functions never commit: the caller's unit of work does."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Column, DateTime, Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession


class DossierBase(SQLModel):
    """Fields a dossier is received with."""

    procedure_code: str = Field(max_length=32)
    applicant_name: str = Field(max_length=200)
    channel: str = Field(max_length=16)


class Dossier(DossierBase, table=True):
    """A dossier accepted at this unit (Form 01 issued)."""

    __tablename__ = "dossiers"
    __table_args__ = (sa.UniqueConstraint("unit", "idempotency_key", name="dossiers_idempotency"),)

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    procedure_name: str
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    appointment_at: datetime | None = Field(sa_column=Column(DateTime(timezone=True)))
    received_by: str
    idempotency_key: str | None = Field(default=None, max_length=128)


async def next_sequence(*, session: AsyncSession, unit: str, day: date) -> int:
    """The unit's next dossier number for the day (the row lock serialises concurrent receipts)."""
    result = await session.execute(
        sa.text(
            """
            INSERT INTO dossier_sequences (unit, day, last) VALUES (:unit, :day, 1)
            ON CONFLICT (unit, day) DO UPDATE SET last = dossier_sequences.last + 1
            RETURNING last
            """
        ),
        {"unit": unit, "day": day},
    )
    return result.scalar_one()


async def get(*, session: AsyncSession, code: str) -> Dossier | None:
    """The dossier with this code."""
    return await session.get(Dossier, code)


async def by_idempotency_key(*, session: AsyncSession, unit: str, key: str) -> Dossier | None:
    """The dossier a repeated request already created."""
    result = await session.exec(select(Dossier).where(Dossier.unit == unit, Dossier.idempotency_key == key))
    return result.first()


def add(*, session: AsyncSession, dossier: Dossier) -> None:
    """Stage a new dossier."""
    session.add(dossier)
