"""Reporting handlers: every event appends to its dossier's hash chain and updates the projections."""

from __future__ import annotations

from services.reporting import domain, store
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.events import PRODUCERS, REGISTRY, DossierReceived, Event
from shared.telemetry import current_trace_id


async def record(tx: UnitOfWork, event: Event, envelope: Envelope) -> None:
    """Append the event to its dossier's stream, then project it."""
    head = await store.lock_head(session=tx.session, dossier_code=envelope.subject, genesis=domain.GENESIS)
    link = domain.ChainLink(
        sequence=head.sequence + 1,
        event_id=envelope.id,
        type=envelope.type,
        source=envelope.source,
        time=domain.canonical_time(envelope.time),
        data=envelope.data,
        prev_hash=head.hash,
    )
    store.append(
        session=tx.session,
        head=head,
        record=store.EventRecord(
            dossier_code=envelope.subject,
            sequence=link.sequence,
            event_id=link.event_id,
            type=link.type,
            source=link.source,
            unit=event.unit,
            time=envelope.time,
            recorded_at=tx.db.clock.now(),
            actor=envelope.actor,
            trace_id=current_trace_id(),
            data=link.data,
            prev_hash=link.prev_hash,
            hash=domain.link_hash(link),
        ),
    )
    await PROJECTORS.get(type(event), _no_projection)(tx, event)


async def _project_received(tx: UnitOfWork, event: DossierReceived) -> None:
    fact = store.DossierFact(
        code=event.dossier_code,
        unit=event.unit,
        procedure_code=event.procedure_code,
        channel=event.channel,
        received_at=event.received_at,
        received_day=store.vn_day(event.received_at),
    )
    await store.add_fact(session=tx.session, fact=fact)


async def _no_projection(tx: UnitOfWork, event: Event) -> None:
    """Kept in the stream; no report counts it yet."""


PROJECTORS = {DossierReceived: _project_received}

SUBSCRIPTIONS = Subscription(producers=PRODUCERS, handlers={model: record for model in REGISTRY.values()})
