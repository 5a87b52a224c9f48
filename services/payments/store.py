"""Payments tables and queries. Store functions never commit: the caller's unit of work does."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, DateTime, Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


class FeeDossier(SQLModel, table=True):
    """A received dossier whose fee is to be assessed."""

    __tablename__ = "fee_dossiers"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    procedure_code: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


async def remember(*, session: AsyncSession, dossier: FeeDossier) -> None:
    """Record a dossier once."""
    await session.execute(
        sa.dialects.postgresql.insert(FeeDossier)
        .values(**dossier.model_dump())
        .on_conflict_do_nothing(index_elements=["code"])
    )
