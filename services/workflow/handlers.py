"""Workflow use cases: one async function per command or consumed event."""

from __future__ import annotations

from services.workflow import store
from services.workflow.domain import CaseStatus
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.events import INTAKE, DossierReceived


async def open_case(tx: UnitOfWork, event: DossierReceived, envelope: Envelope) -> None:
    """A received dossier becomes a case in status ``accepted`` (national status 2)."""
    await store.insert_if_new(
        session=tx.session,
        case=store.Case(
            code=event.dossier_code,
            unit=event.unit,
            procedure_code=event.procedure_code,
            procedure_name=event.procedure_name,
            applicant_name=event.applicant_name,
            channel=event.channel,
            status=CaseStatus.ACCEPTED,
            received_at=event.received_at,
            due_at_original=event.due_at_original or event.appointment_at,
            appointment_at=event.appointment_at,
        ),
    )


SUBSCRIPTIONS = Subscription(producers=(INTAKE,), handlers={DossierReceived: open_case})
