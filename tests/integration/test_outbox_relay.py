"""The outbox relay against a real Postgres and a real broker: ordered, marked, one leader, woken by NOTIFY."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from motcua.devstack import EmbeddedBroker
from shared.db import Database
from shared.outbox import OutboxRelay
from tests.support.events import (
    dossier_code,
    dossier_received,
    header,
    read_topic,
)
from tests.support.outbox import emit_each, life_of, relay_settings
from tests.support.platform import rows, running, scalar
from tests.support.stack import eventually


async def _unsent(db: Database) -> int:
    return await scalar(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")  # type: ignore[return-value]


async def _all_sent(db: Database) -> bool:
    return await _unsent(db) == 0


async def test_the_relay_publishes_each_dossiers_events_in_order_and_marks_them_sent(
    intake_db: Database, broker: EmbeddedBroker
) -> None:
    codes = [dossier_code() for _ in range(6)]
    lives = {code: life_of(code) for code in codes}
    interleaved = [lives[code][step] for step in range(4) for code in codes]  # dossiers take turns
    relay = OutboxRelay(relay_settings(intake_db, broker, relay_batch_size=7), intake_db)

    emitted = await emit_each(intake_db, interleaved[:12])  # a backlog before the relay starts
    async with running(relay):
        emitted += await emit_each(intake_db, interleaved[12:])
        await eventually(lambda: _all_sent(intake_db))

    records = await read_topic(broker.bootstrap_servers, f"{intake_db.namespace}.intake", until=len(emitted))
    ids = [header(r, "ce_id") for r in records]
    assert sorted(ids) == sorted(emitted), "every event published, none twice"
    by_dossier: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for record in records:
        assert record.key.decode() == header(record, "ce_subject")
        by_dossier[record.key.decode()].append((record.partition, header(record, "ce_type")))
    for code in codes:
        partitions = {p for p, _ in by_dossier[code]}
        assert len(partitions) == 1, f"{code} spread over partitions {partitions}"
        assert [t for _, t in by_dossier[code]] == [e.type for e in lives[code]]
    sent = await rows(intake_db, "SELECT event_id::text AS event_id, sent_at FROM outbox ORDER BY outbox.id")
    assert [r["event_id"] for r in sent] == emitted and all(r["sent_at"] is not None for r in sent)


async def test_of_two_relays_on_one_database_one_leads_and_no_event_is_published_twice(
    intake_db: Database, broker: EmbeddedBroker
) -> None:
    twin = Database(intake_db.url, service="intake", namespace=intake_db.namespace, clock=intake_db.clock, pool_size=4)
    first = OutboxRelay(relay_settings(intake_db, broker), intake_db)
    second = OutboxRelay(relay_settings(twin, broker), twin)

    async def _one_leader() -> bool:
        assert not (first.is_leader and second.is_leader), "two relays lead at once"
        return first.is_leader or second.is_leader

    async def _sent_under_one_leader() -> bool:
        await _one_leader()
        return await _all_sent(intake_db)

    first_run = asyncio.create_task(first.run())
    try:
        await eventually(lambda: _leads(first))
        async with running(second):
            assert not second.is_leader  # it keeps trying every poll, and keeps failing, while the first leads
            assert await _advisory_locks(intake_db) == 1
            emitted = await emit_each(intake_db, [e for _ in range(10) for e in life_of(dossier_code())])
            emitted += await emit_each(twin, life_of(dossier_code()))  # written through the standby's process
            await eventually(_sent_under_one_leader)

            await first.stop()  # the leader's process goes away; the standby takes over
            await first_run
            await eventually(lambda: _leads(second))
            emitted += await emit_each(twin, life_of(dossier_code()))
            await eventually(_sent_under_one_leader)
    finally:
        await first.stop()
        await asyncio.gather(first_run, return_exceptions=True)
        await twin.dispose()

    topic = f"{intake_db.namespace}.intake"
    ids = [header(r, "ce_id") for r in await read_topic(broker.bootstrap_servers, topic, until=len(emitted))]
    assert sorted(ids) == sorted(emitted), "every event published, none twice"


async def _advisory_locks(db: Database) -> int:
    return await scalar(  # type: ignore[return-value]
        db,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )


async def _leads(relay: OutboxRelay) -> bool:
    return relay.is_leader


async def test_a_commit_wakes_the_relay_long_before_its_next_poll(intake_db: Database, broker: EmbeddedBroker) -> None:
    relay = OutboxRelay(relay_settings(intake_db, broker, relay_poll_seconds=3600), intake_db)
    async with running(relay):
        await eventually(lambda: _leads(relay))
        for _ in range(3):  # each one after the relay went back to its hour-long sleep
            await emit_each(intake_db, [dossier_received(dossier_code())])
            await eventually(lambda: _all_sent(intake_db), timeout=20)
    assert await scalar(intake_db, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == 3


async def test_a_batch_of_events_wakes_the_relay_and_a_rolled_back_one_leaves_nothing_to_send(
    intake_db: Database, broker: EmbeddedBroker
) -> None:
    """``emit_many`` (a register import's thousands) wakes it as one emit does; a rollback writes and wakes nothing."""
    relay = OutboxRelay(relay_settings(intake_db, broker, relay_poll_seconds=3600), intake_db)
    async with running(relay):
        await eventually(lambda: _leads(relay))
        async with intake_db.unit_of_work(actor="clerk-it") as tx:
            await tx.emit_many([dossier_received(dossier_code()) for _ in range(5)], batch=2)
        await eventually(lambda: _all_sent(intake_db), timeout=20)

        class Undone(Exception):
            pass

        try:
            async with intake_db.unit_of_work(actor="clerk-it") as tx:
                await tx.emit(dossier_received(dossier_code()))
                raise Undone
        except Undone:
            pass
    assert await scalar(intake_db, "SELECT count(*) FROM outbox") == 5
    assert await scalar(intake_db, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == 5
