"""Digitization tables and queries. Store functions never commit: the caller's unit of work does."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, DateTime, Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


class DossierRef(SQLModel, table=True):
    """A dossier whose papers and result this service will hold."""

    __tablename__ = "dossier_refs"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    procedure_code: str = Field(max_length=32)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    result_expected_at: datetime | None = Field(sa_column=Column(DateTime(timezone=True)))


async def remember(*, session: AsyncSession, ref: DossierRef) -> None:
    """Record a dossier once."""
    await session.execute(
        sa.dialects.postgresql.insert(DossierRef).values(**ref.model_dump()).on_conflict_do_nothing(index_elements=["code"])
    )


async def expect_result(*, session: AsyncSession, code: str, at: datetime) -> None:
    """Note that a dossier's result is ready to be digitized and signed."""
    await session.execute(sa.update(DossierRef).where(DossierRef.code == code).values(result_expected_at=at))
