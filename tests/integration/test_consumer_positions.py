"""Consumer positions stored beside the effects, against a real Postgres and a real broker.

A database restored from a dump goes back to where it stood at the dump, positions included: the consumer reads
again what came after and applies it once, although Kafka's committed offsets say it had read everything. A broker
that lost its data (Tansu restarts empty) is read again from its log start, even when its new log is already
longer than where the consumer stood.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from services.workflow.settings import WorkflowSettings
from shared.consumer import EventConsumer, Subscription
from shared.db import Database, UnitOfWork
from shared.envelope import Envelope
from shared.events import INTAKE, DossierReceived
from shared.kafka import ensure_topics
from tests.support.events import dossier_code, dossier_received, envelope, raw_producer
from tests.support.platform import namespace, rows, running, scalar, service_database
from tests.support.stack import eventually


class Cases:
    """The stand-in handler: opens a 'case' (a row in ``applied``) and counts how often it was called per dossier."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def __call__(self, tx: UnitOfWork, event: DossierReceived, env: Envelope) -> None:
        self.calls[event.dossier_code] += 1
        await tx.session.execute(
            text("INSERT INTO applied (event_id, dossier_code) VALUES (:id, :code)"), {"id": env.id, "code": event.dossier_code}
        )


async def _with_applied_table(db: Database) -> Database:
    async with db.unit_of_work() as tx:
        await tx.session.execute(text("CREATE TABLE applied (event_id text PRIMARY KEY, dossier_code text NOT NULL)"))
    return db


def _settings(db: Database, broker: EmbeddedBroker) -> WorkflowSettings:
    return WorkflowSettings(
        database_url=db.url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_topic_namespace=db.namespace,
        kafka_topic_partitions=4,  # as many as the broker gives a topic it creates by itself
        kafka_session_timeout_ms=3000,
        consumer_backoff_initial_seconds=0.01,
        consumer_backoff_max_seconds=0.5,
    )


def _consumer(settings: WorkflowSettings, db: Database, handler: Cases) -> EventConsumer:
    return EventConsumer(settings, db, Subscription(producers=(INTAKE,), handlers={DossierReceived: handler}))


async def _publish(broker: EmbeddedBroker, topic: str, codes: list[str]) -> list[str]:
    """One ``dossier.received`` per code, in order; their event ids."""
    ids = []
    async with raw_producer(broker.bootstrap_servers) as producer:
        for code in codes:
            env = envelope(dossier_received(code))
            await producer.send_envelope(topic, env)
            ids.append(env.id)
    return ids


async def _applied_ids(db: Database) -> Counter[str]:
    return Counter(r["event_id"] for r in await rows(db, "SELECT event_id FROM applied"))


async def _applied(db: Database) -> Counter[str]:
    return Counter(r["dossier_code"] for r in await rows(db, "SELECT dossier_code FROM applied"))


async def _positions(db: Database) -> dict[int, int]:
    return {r["partition"]: r["next_offset"] for r in await rows(db, "SELECT partition, next_offset FROM consumer_positions")}


def _pg(postgres: EmbeddedPostgres, program: str, *args: str) -> None:
    result = subprocess.run([str(postgres.bin(program)), "-h", postgres.host, "-p", str(postgres.port), "-U", "postgres",
                             *args], capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert result.returncode == 0, f"{program} failed: {result.stderr}"


async def test_a_database_restored_from_a_dump_reads_again_what_came_after_it_and_applies_it_once(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    db = await _with_applied_table(await service_database(postgres, "workflow", namespace()))
    name, settings = db.url.rsplit("/", 1)[1], _settings(db, broker)
    topic = settings.topic(INTAKE)
    await ensure_topics(settings, [topic])
    handler = Cases()
    before, after = [dossier_code() for _ in range(12)], [dossier_code() for _ in range(9)]
    try:
        await _publish(broker, topic, before)
        async with running(_consumer(settings, db, handler)):
            await eventually(lambda: _has(db, before), timeout=60)
        stood = await _positions(db)
        assert sum(stood.values()) == len(before), f"the positions say where the consumer stands: {stood}"
        dump = tmp_path / "workflow.dump"
        await asyncio.to_thread(_pg, postgres, "pg_dump", "-Fc", "-d", name, "-f", str(dump))

        await _publish(broker, topic, after)
        async with running(_consumer(settings, db, handler)):
            await eventually(lambda: _has(db, before + after), timeout=60)
        assert sum((await _positions(db)).values()) == len(before + after)  # and Kafka's committed offsets say so too

        await db.dispose()
        await asyncio.to_thread(postgres.drop_database, name)
        await asyncio.to_thread(postgres.ensure_database, name)
        await asyncio.to_thread(_pg, postgres, "pg_restore", "--no-owner", "-d", name, str(dump))
        assert await _applied(db) == Counter(before) and await _positions(db) == stood  # back to the dump

        async with running(_consumer(settings, db, handler)):
            await eventually(lambda: _has(db, before + after), timeout=60)
        applied = await _applied(db)
        assert applied == Counter(before + after), "each event applied once in the restored database"
        assert {handler.calls[c] for c in after} == {2}, "the events after the dump were read and applied again"
        assert {handler.calls[c] for c in before} == {1}, "the events before the dump were not read again"
        assert sum((await _positions(db)).values()) == len(before + after)
    finally:
        await db.dispose()


async def _has(db: Database, codes: list[str]) -> bool:
    return set(await _applied(db)) >= set(codes)



def _rewinds(service: str) -> float:
    return sum(
        REGISTRY.get_sample_value("motcua_consumer_rewinds_total", {"service": service, "reason": reason}) or 0
        for reason in ("log_truncated", "group_forgotten")
    )


@pytest.mark.parametrize("after_restart", [3, 10], ids=["shorter-new-log", "longer-new-log"])
async def test_a_broker_that_lost_its_data_is_read_again_from_its_log_start(
    postgres: EmbeddedPostgres, own_broker: EmbeddedBroker, after_restart: int
) -> None:
    """The consumer stood at 6; the new log has 3 records (the broker answers a fetch at 6 with nothing) or 10 (a
    fetch at 6 gives records 6..9: without the check, 0..5 would be skipped).

    Every event is about one dossier, so all of them are in one partition whatever the topic's partition count.
    """
    db = await _with_applied_table(await service_database(postgres, "workflow", namespace()))
    settings = _settings(db, own_broker)
    topic = settings.topic(INTAKE)
    code = dossier_code()
    rewinds = _rewinds("workflow")
    try:
        await ensure_topics(settings, [topic])
        old = await _publish(own_broker, topic, [code] * 6)
        async with running(_consumer(settings, db, Cases())):
            await eventually(lambda: _has_ids(db, old), timeout=60)
            assert list((await _positions(db)).values()) == [len(old)]
            await asyncio.to_thread(own_broker.stop)
            await asyncio.to_thread(own_broker.start)  # empty: no topics, no records, no group offsets
            await ensure_topics(settings, [topic])
            new = await _publish(own_broker, topic, [code] * after_restart)
            await eventually(lambda: _has_ids(db, new), timeout=90)
        assert await _applied_ids(db) == Counter(old + new), "every event once, none of the new log skipped"
        assert list((await _positions(db)).values()) == [len(new)], "the position follows the new log"
        assert _rewinds("workflow") > rewinds, "the broker's loss is counted"
        assert await scalar(db, "SELECT count(*) FROM dead_letters") == 0
    finally:
        await db.dispose()


async def _has_ids(db: Database, ids: list[str]) -> bool:
    return set(await _applied_ids(db)) >= set(ids)
