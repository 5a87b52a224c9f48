"""Digitization use cases: one async function per command or consumed event."""

from __future__ import annotations

from services.digitization import store
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.events import INTAKE, WORKFLOW, CaseResultReady, DossierReceived


async def note_dossier(tx: UnitOfWork, event: DossierReceived, envelope: Envelope) -> None:
    """Know the dossier, so its papers can be digitized against it."""
    ref = store.DossierRef(
        code=event.dossier_code, unit=event.unit, procedure_code=event.procedure_code, received_at=event.received_at
    )
    await store.remember(session=tx.session, ref=ref)


async def note_result_ready(tx: UnitOfWork, event: CaseResultReady, envelope: Envelope) -> None:
    """The result is ready: it will be digitized and signed."""
    await store.expect_result(session=tx.session, code=event.dossier_code, at=event.finished_at)


SUBSCRIPTIONS = Subscription(
    producers=(INTAKE, WORKFLOW),
    handlers={DossierReceived: note_dossier, CaseResultReady: note_result_ready},
)
