"""Provincial working calendars: the national calendar plus the days a province declared, read in the caller's transaction.

Read per use from a small table instead of cached: the consumer that applies intake's calendar events and the
officers' commands share this process, and a read in the same transaction can never be stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from services.workflow import store
from shared.calendar import WorkingCalendar, province_of
from shared.db import UnitOfWork


def _declared(days: Iterable[store.CalendarDay]) -> list[tuple[date, bool, str | None]]:
    return [(d.day, d.working, d.reason) for d in days]


async def of_unit(tx: UnitOfWork, national: WorkingCalendar, unit: str) -> WorkingCalendar:
    """The working calendar of the unit's province."""
    days = await store.calendar_days(session=tx.session, province=province_of(unit))
    return national.with_declared_days(_declared(days))


async def by_province(tx: UnitOfWork, national: WorkingCalendar) -> dict[str, WorkingCalendar]:
    """Every province with declared days and its calendar (the others use ``national``)."""
    grouped: dict[str, list[store.CalendarDay]] = {}
    for day in await store.calendar_days(session=tx.session):
        grouped.setdefault(day.province, []).append(day)
    return {province: national.with_declared_days(_declared(days)) for province, days in grouped.items()}
