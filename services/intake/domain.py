"""Intake rules: procedures and their versions, appointments, dossier codes, fees, the webhook signature.

Pure: no I/O, no clock (times come in as arguments).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from shared.calendar import TimeLimit, TimeUnit, WorkingCalendar, due_at
from shared.calendar import province_of as calendar_province_of
from shared.clock import local
from shared.fees import FeeItem, FeeLine, FeeUnit, PagesNeeded, assess
from shared.status import NationalStatus

SEED_FILE = Path(__file__).with_name("seed") / "procedures.json"
SEED_EFFECTIVE_FROM = date(2000, 1, 1)
DEFAULT_CODE_FORMAT = "{unit}-{day:%y%m%d}-{sequence:04d}"


class OnlineLevel(StrEnum):
    """How far a procedure can be done online (Decree 42/2022)."""

    FULL = "full"
    PARTIAL = "partial"
    IN_PERSON = "in_person"


# What each workflow event means for the status shown to the citizen and pushed to the portal.
STATUS_BY_EVENT: dict[str, NationalStatus] = {
    "vn.motcua.case.assigned.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.supplement_requested.v1": NationalStatus.SUPPLEMENT_REQUESTED,
    "vn.motcua.case.transferred.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.transfer_returned.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.approved.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.rejected.v1": NationalStatus.NOT_ACCEPTED,
    "vn.motcua.case.payment_awaited.v1": NationalStatus.AWAITING_PAYMENT,
    "vn.motcua.case.clock_resumed.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.stopped.v1": NationalStatus.STOPPED,
    "vn.motcua.case.result_ready.v1": NationalStatus.RESOLVED,
    "vn.motcua.case.returned.v1": NationalStatus.RETURNED,
}

# The form a not-accepted record is issued on, by outcome; out-of-scope guidance has none.
NOT_ACCEPTED_FORMS: dict[str, str] = {"incomplete": "02", "refused": "03"}


@dataclass(frozen=True)
class Component:
    """A paper a procedure asks for."""

    name: str
    mandatory: bool = True
    form: str = "original"
    digitize: bool = True


@dataclass(frozen=True)
class LienThongStep:
    """One agency's share of an inter-agency procedure's time."""

    agency: str
    amount: int
    unit: TimeUnit


@dataclass(frozen=True)
class Procedure:
    """One version of a procedure of the catalog."""

    code: str
    name: str
    field: str
    time_limit: TimeLimit
    online_level: OnlineLevel
    version: int = 1
    effective_from: date = SEED_EFFECTIVE_FROM
    code_verified: bool = True
    committed_limit: TimeLimit | None = None
    fee_lines: tuple[FeeLine, ...] = ()
    components: tuple[Component, ...] = ()
    on_the_spot: bool = False
    lien_thong_steps: tuple[LienThongStep, ...] = ()
    evidence: str = ""

    @property
    def has_fee(self) -> bool:
        """Whether any line can charge something."""
        return any(line.amount > 0 or (line.online_amount or 0) > 0 for line in self.fee_lines)


def _limit(data: dict[str, Any]) -> TimeLimit:
    return TimeLimit(
        amount=int(data["amount"]),
        unit=TimeUnit(data["unit"]),
        cutoff_rule=bool(data.get("cutoff_rule", True)),
        verification_extra=int(data.get("verification_extra", 0)),
    )


def _limit_json(limit: TimeLimit) -> dict[str, Any]:
    return {
        "amount": limit.amount,
        "unit": limit.unit.value,
        "cutoff_rule": limit.cutoff_rule,
        "verification_extra": limit.verification_extra,
    }


def procedure_from_json(data: dict[str, Any], *, version: int = 1, effective_from: date = SEED_EFFECTIVE_FROM) -> Procedure:
    """A procedure from its catalog document."""
    return Procedure(
        code=data["code"],
        name=data["name"],
        field=data["field"],
        time_limit=_limit(data["time_limit"]),
        online_level=OnlineLevel(data["online_level"]),
        version=version,
        effective_from=effective_from,
        code_verified=bool(data.get("code_verified", True)),
        committed_limit=_limit(data["committed_limit"]) if data.get("committed_limit") else None,
        fee_lines=tuple(
            FeeLine(
                code=f["code"],
                name=f["name"],
                amount=int(f["amount"]),
                unit=FeeUnit(f.get("unit", "per_case")),
                online_amount=f.get("online_amount"),
                reduced_from_page=f.get("reduced_from_page"),
                reduced_amount=f.get("reduced_amount"),
                cap_per_copy=f.get("cap_per_copy"),
                exemptions=tuple(f.get("exemptions", ())),
            )
            for f in data.get("fee_lines", ())
        ),
        components=tuple(Component(**c) for c in data.get("components", ())),
        on_the_spot=bool(data.get("on_the_spot", False)),
        lien_thong_steps=tuple(
            LienThongStep(agency=s["agency"], amount=int(s["amount"]), unit=TimeUnit(s["unit"]))
            for s in data.get("lien_thong_steps", ())
        ),
        evidence=data.get("evidence", ""),
    )


def procedure_to_json(p: Procedure) -> dict[str, Any]:
    """The catalog document of a procedure version (without version and date, which are the catalog's)."""
    return {
        "code": p.code,
        "code_verified": p.code_verified,
        "name": p.name,
        "field": p.field,
        "time_limit": _limit_json(p.time_limit),
        "committed_limit": _limit_json(p.committed_limit) if p.committed_limit else None,
        "fee_lines": [
            {
                "code": f.code,
                "name": f.name,
                "amount": f.amount,
                "unit": f.unit.value,
                "online_amount": f.online_amount,
                "reduced_from_page": f.reduced_from_page,
                "reduced_amount": f.reduced_amount,
                "cap_per_copy": f.cap_per_copy,
                "exemptions": list(f.exemptions),
            }
            for f in p.fee_lines
        ],
        "online_level": p.online_level.value,
        "components": [c.__dict__ for c in p.components],
        "on_the_spot": p.on_the_spot,
        "lien_thong_steps": [{"agency": s.agency, "amount": s.amount, "unit": s.unit.value} for s in p.lien_thong_steps],
        "evidence": p.evidence,
    }


@cache
def seed_documents() -> tuple[dict[str, Any], ...]:
    """The procedures of DOMAIN.md §6 as catalog documents (version 1 of each)."""
    return tuple(json.loads(SEED_FILE.read_text(encoding="utf-8")))


# ---- appointments -----------------------------------------------------------


@dataclass(frozen=True)
class Appointment:
    """When the result is promised, and when the law says it is due."""

    appointment_at: datetime
    legal_due_at: datetime


def appointment(received_at: datetime, procedure: Procedure, calendar: WorkingCalendar, *, verification: bool = False) -> Appointment:
    """The appointment follows the unit's committed time when it publishes one; the legal limit stays on record."""
    legal = due_at(received_at, procedure.time_limit, calendar, verification=verification)
    committed = (
        due_at(received_at, procedure.committed_limit, calendar, verification=verification)
        if procedure.committed_limit
        else legal
    )
    return Appointment(appointment_at=min(committed, legal), legal_due_at=legal)


# ---- dossier codes ----------------------------------------------------------


def receipt_day(received_at: datetime) -> date:
    """The Vietnamese calendar day of a receipt (sequences restart each day)."""
    return local(received_at).date()


def dossier_code(unit: str, received_at: datetime, sequence: int, code_format: str = DEFAULT_CODE_FORMAT) -> str:
    """``<unit>-<yymmdd>-<daily sequence>`` by default (DOMAIN.md §1.8); the format is a setting."""
    return code_format.format(unit=unit, day=receipt_day(received_at), sequence=sequence)


def province_of(unit: str) -> str:
    """The province part of a QCVN 102:2016 unit code (``000.00.12.H56`` → ``H56``); workflow uses the same rule."""
    return calendar_province_of(unit)


# ---- fees -------------------------------------------------------------------


@dataclass(frozen=True)
class FeeAssessment:
    """The fee assessed at reception; per-page lines wait for the page count."""

    items: tuple[FeeItem, ...] = ()
    total: int = 0
    pending: tuple[str, ...] = field(default_factory=tuple)


def assess_fee(procedure: Procedure, *, online: bool, pages: int | None, copies: int, exemption: str | None) -> FeeAssessment:
    """Assess every line that can be assessed now."""
    items, pending = [], []
    for line in procedure.fee_lines:
        try:
            items.extend(assess([line], online=online, pages=pages, copies=copies, exemption=exemption))
        except PagesNeeded:
            pending.append(line.code)
    return FeeAssessment(items=tuple(items), total=sum(i.amount for i in items), pending=tuple(pending))
