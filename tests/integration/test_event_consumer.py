"""The event consumer's three outcomes against a real Postgres and a real broker: applied, retried, dead-lettered.

The handler here is a stand-in whose effect is a row in a table of its own, so
what was applied (and how often) is read back from the database itself.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from services.workflow.settings import WorkflowSettings
from shared.consumer import EventConsumer, PermanentError, Subscription, TransientError
from shared.db import Database, UnitOfWork
from shared.envelope import Envelope
from shared.events import INTAKE, DossierReceived
from shared.kafka import ensure_topics
from tests.support.events import dossier_code, dossier_received, envelope, raw_producer
from tests.support.platform import namespace, rows, running, scalar, service_database
from tests.support.stack import eventually


class StandInHandler:
    """Opens a 'case' (a row in ``applied``), after failing as scripted for some dossiers."""

    def __init__(self, failures: dict[str, Iterator[Exception]]) -> None:
        self.failures = failures
        self.calls: Counter[str] = Counter()

    async def __call__(self, tx: UnitOfWork, event: DossierReceived, env: Envelope) -> None:
        self.calls[event.dossier_code] += 1
        await tx.session.execute(
            text("INSERT INTO applied (event_id, dossier_code) VALUES (:id, :code)"),
            {"id": env.id, "code": event.dossier_code},
        )
        failure = next(self.failures.get(event.dossier_code, iter(())), None)
        if failure is not None:
            raise failure  # after the write: a failed attempt must leave nothing behind


@pytest.fixture
async def workflow_db(postgres: EmbeddedPostgres) -> AsyncIterator[Database]:
    """A fresh workflow database with the stand-in handler's table."""
    db = await service_database(postgres, "workflow", namespace())
    async with db.unit_of_work() as tx:
        await tx.session.execute(text("CREATE TABLE applied (event_id text PRIMARY KEY, dossier_code text NOT NULL)"))
    yield db
    await db.dispose()


def _settings(db: Database, broker: EmbeddedBroker) -> WorkflowSettings:
    return WorkflowSettings(
        database_url=db.url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_topic_namespace=db.namespace,
        kafka_topic_partitions=1,  # every dossier on one partition: a stuck event would block the next one
        consumer_max_attempts=3,
        consumer_backoff_initial_seconds=0.01,
        consumer_backoff_max_seconds=0.05,
    )


async def _consume(
    db: Database, broker: EmbeddedBroker, handler: StandInHandler, *codes: str
) -> dict[str, Envelope]:
    """Publish one ``dossier.received`` per dossier, in order, and run a consumer until the last one is applied."""
    settings = _settings(db, broker)
    await ensure_topics(settings, [settings.topic(INTAKE)])
    sent = {code: envelope(dossier_received(code)) for code in codes}
    async with raw_producer(broker.bootstrap_servers) as producer:
        for env in sent.values():
            await producer.send_envelope(settings.topic(INTAKE), env)
    consumer = EventConsumer(settings, db, Subscription(producers=(INTAKE,), handlers={DossierReceived: handler}))
    async with running(consumer):
        await eventually(lambda: _applied(db, codes[-1]))
    return sent


async def _applied(db: Database, code: str) -> int:
    return await scalar(db, "SELECT count(*) FROM applied WHERE dossier_code = :code", code=code)  # type: ignore[return-value]


async def _dead_letters(db: Database) -> list:
    return list(await rows(db, 'SELECT event_id, type, subject, error, attempts, "offset" FROM dead_letters ORDER BY id'))


async def _in_inbox(db: Database, event_id: str) -> bool:
    return await scalar(db, "SELECT count(*) FROM inbox WHERE event_id = :id", id=event_id) == 1


async def test_a_transient_handler_failure_is_retried_and_then_applied(
    workflow_db: Database, broker: EmbeddedBroker
) -> None:
    flaky, after = dossier_code(), dossier_code()
    handler = StandInHandler({flaky: iter([RuntimeError("could not serialize access"), RuntimeError("deadlock detected")])})

    sent = await _consume(workflow_db, broker, handler, flaky, after)

    assert handler.calls[flaky] == 3
    assert await _applied(workflow_db, flaky) == 1  # the two failed attempts left nothing behind
    assert await _in_inbox(workflow_db, sent[flaky].id)
    assert await _dead_letters(workflow_db) == []


async def test_a_transient_error_verdict_is_retried_beyond_the_attempt_limit(
    workflow_db: Database, broker: EmbeddedBroker
) -> None:
    waiting = dossier_code()
    handler = StandInHandler({waiting: iter([TransientError("the catalog is reloading")] * 5)})

    await _consume(workflow_db, broker, handler, waiting)

    assert handler.calls[waiting] == 6  # five waits, more than consumer_max_attempts=3, none spent
    assert await _dead_letters(workflow_db) == []


async def test_a_handler_that_always_fails_ends_in_dead_letters_after_its_attempts(
    workflow_db: Database, broker: EmbeddedBroker
) -> None:
    doomed, after = dossier_code(), dossier_code()
    handler = StandInHandler({doomed: itertools.repeat(ValueError("procedure 9.999999 is not in the catalog"))})

    sent = await _consume(workflow_db, broker, handler, doomed, after)

    assert handler.calls[doomed] == 3
    assert await _applied(workflow_db, doomed) == 0
    assert not await _in_inbox(workflow_db, sent[doomed].id)
    [letter] = await _dead_letters(workflow_db)
    assert letter["event_id"] == sent[doomed].id and letter["subject"] == doomed
    assert letter["type"] == "vn.motcua.dossier.received.v1"
    assert letter["attempts"] == 3
    assert letter["error"] == "ValueError: procedure 9.999999 is not in the catalog"
    assert await _applied(workflow_db, after) == 1  # the partition moved on


async def test_a_permanent_error_goes_straight_to_dead_letters(workflow_db: Database, broker: EmbeddedBroker) -> None:
    refused, after = dossier_code(), dossier_code()
    handler = StandInHandler({refused: iter([PermanentError("the receiving unit is dissolved")])})

    sent = await _consume(workflow_db, broker, handler, refused, after)

    assert handler.calls[refused] == 1
    assert await _applied(workflow_db, refused) == 0
    [letter] = await _dead_letters(workflow_db)
    assert letter["event_id"] == sent[refused].id
    assert letter["attempts"] == 1
    assert letter["error"] == "PermanentError: the receiving unit is dissolved"
    assert await _applied(workflow_db, after) == 1
