"""Workflow tables and queries. Store functions never commit: the caller's unit of work does."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, DateTime, Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


class Case(SQLModel, table=True):
    """A dossier being processed."""

    __tablename__ = "cases"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    procedure_code: str = Field(max_length=32)
    procedure_name: str
    applicant_name: str = Field(max_length=200)
    channel: str = Field(max_length=16)
    status: str = Field(max_length=32)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    due_at_original: datetime | None = Field(sa_column=Column(DateTime(timezone=True)))
    appointment_at: datetime | None = Field(sa_column=Column(DateTime(timezone=True)))
    version: int = 1


async def get(*, session: AsyncSession, code: str) -> Case | None:
    """The case with this dossier code."""
    return await session.get(Case, code)


async def insert_if_new(*, session: AsyncSession, case: Case) -> bool:
    """Insert the case unless one with its code exists; True when inserted."""
    values = case.model_dump()
    result = await session.execute(
        sa.dialects.postgresql.insert(Case).values(**values).on_conflict_do_nothing(index_elements=["code"])
    )
    return result.rowcount == 1
