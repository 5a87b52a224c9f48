"""Intake rules: the dossier code and the appointment. Pure: no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path

from shared.calendar import TimeLimit, TimeUnit, WorkingCalendar, due_at
from shared.clock import local

SEED_FILE = Path(__file__).with_name("seed_procedures.json")


class UnknownProcedure(Exception):
    """No procedure with that national code in the catalog."""


@dataclass(frozen=True)
class Procedure:
    """A procedure as the walking skeleton needs it (the full catalog comes with its own issue)."""

    code: str
    name: str
    field: str
    limit: TimeLimit


@cache
def seed_procedures() -> dict[str, Procedure]:
    """Procedures of DOMAIN.md §6 that have a national code, by code."""
    rows = json.loads(SEED_FILE.read_text(encoding="utf-8"))
    return {
        row["code"]: Procedure(
            code=row["code"],
            name=row["name"],
            field=row["field"],
            limit=TimeLimit(amount=row["limit"], unit=TimeUnit(row["unit"])),
        )
        for row in rows
    }


def find_procedure(code: str) -> Procedure:
    """The procedure with this national code."""
    try:
        return seed_procedures()[code]
    except KeyError:
        raise UnknownProcedure(code) from None


def dossier_code(unit: str, received_at: datetime, sequence: int) -> str:
    """``<unit>-<yymmdd>-<daily sequence>`` (DOMAIN.md §1.8), the date as in Vietnam."""
    return f"{unit}-{receipt_day(received_at):%y%m%d}-{sequence:04d}"


def receipt_day(received_at: datetime) -> date:
    """The Vietnamese calendar day of a receipt (sequences restart each day)."""
    return local(received_at).date()


def appointment(received_at: datetime, procedure: Procedure, calendar: WorkingCalendar) -> datetime:
    """When the result is promised, by the procedure's legal time limit."""
    return due_at(received_at, procedure.limit, calendar)
