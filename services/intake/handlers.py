"""Intake use cases: one async function per command or consumed event."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.intake import domain, store
from shared.auth import Principal
from shared.calendar import WorkingCalendar
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.errors import Problem
from shared.events import DossierReceived


class ReceiveDossier(BaseModel):
    """A clerk accepts a complete dossier at the counter or from the post."""

    procedure_code: str = Field(min_length=1, max_length=32, examples=["1.004194"])
    applicant_name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Thị Hồng Nhung"])
    channel: Literal["counter", "postal"] = "counter"


async def receive_dossier(
    tx: UnitOfWork,
    cmd: ReceiveDossier,
    *,
    user: Principal,
    unit: str,
    calendar: WorkingCalendar,
    idempotency_key: str | None = None,
) -> tuple[store.Dossier, bool]:
    """Accept a dossier: give it a code and an appointment, and emit ``dossier.received``; (dossier, created)."""
    user.require_unit(unit)
    if idempotency_key:
        earlier = await store.by_idempotency_key(session=tx.session, unit=unit, key=idempotency_key)
        if earlier is not None:
            return earlier, False
    try:
        procedure = domain.find_procedure(cmd.procedure_code)
    except domain.UnknownProcedure:
        raise Problem(
            422,
            "unknown-procedure",
            "Unknown procedure",
            f"No procedure with national code {cmd.procedure_code!r} in the catalog.",
        ) from None
    received_at = tx.db.clock.now()
    sequence = await store.next_sequence(session=tx.session, unit=unit, day=domain.receipt_day(received_at))
    dossier = store.Dossier(
        code=domain.dossier_code(unit, received_at, sequence),
        unit=unit,
        procedure_code=procedure.code,
        procedure_name=procedure.name,
        applicant_name=cmd.applicant_name.strip(),
        channel=cmd.channel,
        received_at=received_at,
        appointment_at=domain.appointment(received_at, procedure, calendar),
        received_by=user.subject,
        idempotency_key=idempotency_key,
    )
    store.add(session=tx.session, dossier=dossier)
    await tx.emit(
        DossierReceived(
            dossier_code=dossier.code,
            unit=unit,
            occurred_at=received_at,
            procedure_code=procedure.code,
            procedure_name=procedure.name,
            applicant_name=dossier.applicant_name,
            channel=cmd.channel,
            received_at=received_at,
            appointment_at=dossier.appointment_at,
            due_at_original=dossier.appointment_at,
            received_by=user.subject,
        )
    )
    return dossier, True


SUBSCRIPTIONS = Subscription(producers=(), handlers={})
