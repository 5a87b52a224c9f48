"""Working calendars of a case: the national calendar, the days its province declared, the office hours of its rules.

The declared days are read per use from a small table instead of cached: the consumer that applies intake's calendar
events and the officers' commands share this process, and a read in the same transaction can never be stale. The
office hours and the same-day cut-off come from the case's rules (``shared.rules.Rules.office``), so a province
override of its hours applies only in that province, and a dossier keeps the hours of the rules it was received under.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from services.workflow import store
from shared.calendar import WorkingCalendar, province_of
from shared.db import UnitOfWork
from shared.rules import OfficeHours


def _declared(days: Iterable[store.CalendarDay]) -> list[tuple[date, bool, str | None]]:
    return [(d.day, d.working, d.reason) for d in days]


def with_hours(cal: WorkingCalendar, office: OfficeHours | None) -> WorkingCalendar:
    """``cal``'s days in the office hours and cut-off of a rule set (``cal`` itself when they are its own)."""
    if office is None or (cal.start_of_day, cal.end_of_day, cal.cutoff) == (office.opens, office.closes, office.cutoff):
        return cal
    return WorkingCalendar(
        extra_days_off=cal.extra_days_off,
        extra_working_days=cal.extra_working_days,
        start_of_day=office.opens,
        end_of_day=office.closes,
        cutoff=office.cutoff,
    )


async def of_unit(tx: UnitOfWork, national: WorkingCalendar, unit: str, office: OfficeHours | None = None) -> WorkingCalendar:
    """The working calendar of the unit's province, in the given office hours (a case's rules)."""
    days = await store.calendar_days(session=tx.session, province=province_of(unit))
    return with_hours(national.with_declared_days(_declared(days)), office)


async def by_province(tx: UnitOfWork, national: WorkingCalendar) -> dict[str, WorkingCalendar]:
    """Every province with declared days and its calendar (the others use ``national``)."""
    grouped: dict[str, list[store.CalendarDay]] = {}
    for day in await store.calendar_days(session=tx.session):
        grouped.setdefault(day.province, []).append(day)
    return {province: national.with_declared_days(_declared(days)) for province, days in grouped.items()}
