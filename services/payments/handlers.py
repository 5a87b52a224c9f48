"""Payments use cases: one async function per command or consumed event."""

from __future__ import annotations

from services.payments import store
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.events import INTAKE, DossierReceived


async def note_dossier(tx: UnitOfWork, event: DossierReceived, envelope: Envelope) -> None:
    """Know the dossier and its channel, for the fee assessment (online dossiers may pay less)."""
    dossier = store.FeeDossier(
        code=event.dossier_code,
        unit=event.unit,
        procedure_code=event.procedure_code,
        channel=event.channel,
        received_at=event.received_at,
    )
    await store.remember(session=tx.session, dossier=dossier)


SUBSCRIPTIONS = Subscription(producers=(INTAKE,), handlers={DossierReceived: note_dossier})
