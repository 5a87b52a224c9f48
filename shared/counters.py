"""The per-unit gapless counter behind dossier codes, receipt numbers and certified-copy numbers."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class UnitCounter:
    """Numbers per unit and period from a table ``(unit, <period>, last)`` whose primary key is the pair.

    Gapless: the row stays locked until the caller's transaction ends and a rolled-back transaction gives its
    number back, so replicas never hand out one number twice and none is skipped. A service declares one per
    table in its store: ``RECEIPT_NUMBERS = UnitCounter("receipt_sequences", period="year")``.
    """

    def __init__(self, table: str, *, period: str) -> None:
        if not (_IDENTIFIER.fullmatch(table) and _IDENTIFIER.fullmatch(period)):
            raise ValueError(f"not a plain SQL name: {table!r}, {period!r}")
        self._next = text(
            f"INSERT INTO {table} (unit, {period}, last) VALUES (:unit, :period, 1) "
            f"ON CONFLICT (unit, {period}) DO UPDATE SET last = {table}.last + 1 RETURNING last"
        )

    async def next(self, *, session: AsyncSession, unit: str, period: date | int) -> int:
        """The unit's next number in the period, taken in the caller's transaction."""
        return (await session.execute(self._next, {"unit": unit, "period": period})).scalar_one()
