"""Per-process caches of reference data: the procedures in force and each province's working calendar."""

from __future__ import annotations

import asyncio
import time as _time
from datetime import date, time

from services.intake import domain, store
from services.intake.settings import IntakeSettings
from shared.calendar import WorkingCalendar
from shared.db import UnitOfWork
from shared.errors import Problem
from shared.rules import OfficeHours


def procedure_of(row: store.ProcedureVersion) -> domain.Procedure:
    """The domain procedure of a catalog row."""
    return domain.procedure_from_json(row.document, version=row.version, effective_from=row.effective_from)


async def procedure_in_force(tx: UnitOfWork, code: str, day: date) -> store.ProcedureVersion:
    """The catalog row in force, or a 422 problem naming the code."""
    row = await store.procedure_at(session=tx.session, code=code, day=day)
    if row is None:
        raise Problem(422, "unknown-procedure", "Unknown procedure", f"procedure_code: no procedure {code!r} in the catalog.")
    return row


class CatalogCache:
    """Procedure versions in force, per (code, day), kept a few seconds: a reception need not read the catalog.

    A version published here is seen at once; one published through another replica within the cache time.
    """

    def __init__(self, settings: IntakeSettings) -> None:
        self.settings = settings
        self._cached: dict[tuple[str, date], tuple[float, store.ProcedureVersion, domain.Procedure]] = {}

    async def procedure(self, tx: UnitOfWork, code: str, day: date) -> tuple[store.ProcedureVersion, domain.Procedure]:
        """The row in force on the day and its parsed procedure, parsed once per cache period, not per reception."""
        hit = self._cached.get((code, day))
        if hit and _time.monotonic() - hit[0] < self.settings.calendar_cache_seconds:
            return hit[1], hit[2]
        row = await procedure_in_force(tx, code, day)
        tx.session.expunge(row)  # kept beyond this transaction: its rollback must not expire the cached row
        procedure = procedure_of(row)
        self._cached[(code, day)] = (_time.monotonic(), row, procedure)
        return row, procedure

    def forget(self) -> None:
        """Drop everything after the catalog changed here."""
        self._cached.clear()


class CalendarCache:
    """Working calendars per province and office hours: the national calendar plus the admin's days, with the hours of
    the rules in force (shared/rules.py), reloaded every few seconds."""

    def __init__(self, settings: IntakeSettings) -> None:
        self.settings = settings
        self._cached: dict[tuple[str, time, time, time], tuple[float, WorkingCalendar]] = {}
        self._loading = asyncio.Lock()

    async def get(self, tx: UnitOfWork, province: str, office: OfficeHours) -> WorkingCalendar:
        """The province's calendar with these office hours (read in the caller's transaction when not cached)."""
        key = (province, office.opens, office.closes, office.cutoff)
        hit = self._cached.get(key)
        if hit and _time.monotonic() - hit[0] < self.settings.calendar_cache_seconds:
            return hit[1]
        async with self._loading:
            hit = self._cached.get(key)
            if hit and _time.monotonic() - hit[0] < self.settings.calendar_cache_seconds:
                return hit[1]
            days = await store.calendar_days(session=tx.session, province=province)
            national = WorkingCalendar(start_of_day=office.opens, end_of_day=office.closes, cutoff=office.cutoff)
            calendar = national.with_declared_days((d.day, d.working, d.note) for d in days)
            self._cached[key] = (_time.monotonic(), calendar)
            return calendar

    def forget(self, province: str) -> None:
        """Drop a province after its days changed here."""
        for key in [k for k in self._cached if k[0] == province]:
            self._cached.pop(key, None)
