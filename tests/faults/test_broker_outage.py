"""The broker goes away while the counter keeps receiving: events wait in the outbox, none is lost, none overtakes.

These tests run a broker of their own, so that stopping it disturbs no other
test. The broker keeps everything in memory: when it comes back it is empty (no
topics, no records, no consumer-group offsets), which is the harder case: a
producer may still believe in topics that are gone, and a consumer may still
hold a position in a log that no longer exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from services.intake.settings import IntakeSettings
from shared.clock import SystemClock
from shared.db import Database
from shared.outbox import OutboxRelay
from tests.support import api
from tests.support.events import (
    dossier_code,
    dossier_received,
    dossier_supplemented,
    dossier_withdrawn,
    header,
    read_topic,
)
from tests.support.platform import namespace, running, scalar, service_database
from tests.support.stack import Stack, eventually, random_unit

DOSSIERS_DURING_OUTAGE = 100
RECEIVED, SUPPLEMENTED, WITHDRAWN = (
    "vn.motcua.dossier.received.v1",
    "vn.motcua.dossier.supplemented.v1",
    "vn.motcua.dossier.withdrawn.v1",
)



@pytest.fixture
async def outage_stack(postgres: EmbeddedPostgres, own_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Stack]:
    """Intake, workflow and reporting on the test's own broker.

    Intake's relay retries at most every half second, so once the broker is back it publishes before the
    consumers' next heartbeat tells them that the broker forgot their group: the race an empty broker invites.
    """
    stack = Stack.isolated(postgres, own_broker, tmp_path / "stack", services=("intake", "workflow", "reporting"))
    await stack.start(extra_env={"intake": {"INTAKE_CONSUMER_BACKOFF_MAX_SECONDS": "0.5"}})
    yield stack
    await asyncio.to_thread(stack.stop)


async def _emit_follow_ups(stack: Stack, codes: list[str]) -> None:
    """Two supplements and a withdrawal per dossier, written to intake's outbox as intake itself would."""
    db = Database(stack.database_url("intake"), service="intake", namespace=stack.namespace, clock=SystemClock())
    try:
        for code in codes:
            for event in (dossier_supplemented(code), dossier_supplemented(code), dossier_withdrawn(code)):
                async with db.unit_of_work(actor="clerk-outage") as tx:
                    await tx.emit(event)
    finally:
        await db.dispose()


async def _receive_many(stack: Stack, unit: str, count: int) -> list[dict]:
    async with stack.client("intake", "clerk", units=[unit]) as intake:
        receipts = []
        for start in range(0, count, 10):
            batch = range(start, min(start + 10, count))
            receipts += await asyncio.gather(*(api.receive_dossier(intake, f"Người nộp số {i}") for i in batch))
    return receipts


def _intake_types(entries: list[dict]) -> list[str]:
    """The intake events of a timeline, in timeline order (workflow's own reactions interleave freely)."""
    return [e["type"] for e in entries if e["source"] == "/motcua/intake"]


async def _all_delivered(stack: Stack, unit: str, codes: list[str], types: list[str]) -> None:
    """Wait until workflow has every case and reporting every intake event, then check each dossier's stream."""
    async with stack.client("workflow", "specialist", units=[unit]) as workflow, stack.client(
        "reporting", "auditor", units=[unit]
    ) as reporting:
        missing = set(codes)

        async def _cases_arrived() -> bool:
            for code in sorted(missing):
                if await api.case(workflow, code) is not None:
                    missing.discard(code)
            return not missing

        await eventually(_cases_arrived, timeout=90, interval=0.5)
        incomplete = set(codes)

        async def _timelines_complete() -> bool:
            for code in sorted(incomplete):
                if len(_intake_types(await api.timeline(reporting, code))) >= len(types):
                    incomplete.discard(code)
            return not incomplete

        await eventually(_timelines_complete, timeout=90, interval=0.5)
        for code in codes:
            entries = await api.timeline(reporting, code)
            assert _intake_types(entries) == types, f"{code}: events out of order, lost or duplicated"
            assert sorted(e["sequence"] for e in entries) == list(range(1, len(entries) + 1))
            verdict = await api.chain_verdict(reporting, code)
            assert verdict["intact"] and verdict["events"] == len(entries), verdict


async def test_broker_outage_delays_events_but_loses_none(outage_stack: Stack, own_broker: EmbeddedBroker) -> None:
    stack = outage_stack
    life = [RECEIVED, SUPPLEMENTED, SUPPLEMENTED, WITHDRAWN]

    # Before the outage: traffic flows, so every consumer holds a position past the start of its partitions.
    earlier_unit = random_unit()
    earlier = [r["code"] for r in await _receive_many(stack, earlier_unit, 8)]
    await _emit_follow_ups(stack, earlier)
    await _all_delivered(stack, earlier_unit, earlier, life)

    await asyncio.to_thread(own_broker.stop)
    unit = random_unit()
    receipts = await _receive_many(stack, unit, DOSSIERS_DURING_OUTAGE)  # the counter does not notice
    codes = [r["code"] for r in receipts]
    await _emit_follow_ups(stack, codes[:20])  # a fifth of them get more events, each must keep its place
    assert len(set(codes)) == DOSSIERS_DURING_OUTAGE
    await asyncio.to_thread(own_broker.start)  # same port, empty

    await _all_delivered(stack, unit, codes[:20], life)
    await _all_delivered(stack, unit, codes[20:], [RECEIVED])
    days = {api.vn_day(r["received_at"]) for r in receipts}
    async with stack.client("reporting", "leader", units=[unit]) as reporting:
        assert sum([await api.received_total(reporting, unit, day) for day in days]) == DOSSIERS_DURING_OUTAGE
    for service in stack.services.values():
        assert service.exited() is None, f"{service.service} died:\n{service.log_tail()}"


async def test_the_relay_does_not_trust_a_restarted_broker_with_stale_topics(
    postgres: EmbeddedPostgres, own_broker: EmbeddedBroker
) -> None:
    """An empty broker acknowledges writes to topics it no longer has, and drops them: they must be sent again."""
    db = await service_database(postgres, "intake", namespace())
    settings = IntakeSettings(
        database_url=db.url,
        kafka_bootstrap_servers=own_broker.bootstrap_servers,
        kafka_topic_namespace=db.namespace,
        relay_poll_seconds=0.2,
        consumer_backoff_max_seconds=0.5,  # the relay's retry cap
    )
    topic = settings.topic("intake")
    try:
        async with running(OutboxRelay(settings, db)):
            before = await _emit_each(db, [dossier_received(dossier_code())])  # the producer now knows the topic
            await eventually(lambda: _outbox_empty(db))
            await asyncio.to_thread(own_broker.stop)
            during = await _emit_each(db, [dossier_received(dossier_code()) for _ in range(10)])
            await asyncio.to_thread(own_broker.start)
            await eventually(lambda: _outbox_empty(db))
        records = await read_topic(own_broker.bootstrap_servers, topic, until=len(before + during))
    finally:
        await db.dispose()
    # The broker lost the event published before it stopped; the relay noticed and published it again (issue #20).
    assert sorted(header(r, "ce_id") for r in records) == sorted(before + during)


async def _emit_each(db: Database, events: list) -> list[str]:
    ids = []
    for event in events:
        async with db.unit_of_work() as tx:
            ids.append((await tx.emit(event)).id)
    return ids


async def _outbox_empty(db: Database) -> bool:
    return await scalar(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
