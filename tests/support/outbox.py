"""The outbox tests' shared pieces: one dossier's intake events, emitted each in its own transaction, and a relay's settings."""

from __future__ import annotations

from typing import Any

from motcua.devstack import EmbeddedBroker
from services.intake.settings import IntakeSettings
from shared.db import Database
from shared.events import Event
from tests.support.events import (
    dossier_received,
    dossier_supplemented,
    dossier_withdrawn,
)


def life_of(code: str) -> list[Event]:
    """One dossier's intake events, in the order they happen."""
    return [dossier_received(code), dossier_supplemented(code), dossier_supplemented(code), dossier_withdrawn(code)]


async def emit_each(db: Database, events: list[Event]) -> list[str]:
    """Each event in its own transaction, as separate requests would write them; their ids in order."""
    ids = []
    for event in events:
        async with db.unit_of_work(actor="clerk-it") as tx:
            ids.append((await tx.emit(event)).id)
    return ids


def relay_settings(db: Database, broker: EmbeddedBroker, **overrides: Any) -> IntakeSettings:
    """Intake's settings on this database and broker, the relay polling every 0.2 s unless ``overrides`` say else."""
    return IntakeSettings(
        database_url=db.url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_topic_namespace=db.namespace,
        **{"relay_poll_seconds": 0.2, **overrides},
    )
