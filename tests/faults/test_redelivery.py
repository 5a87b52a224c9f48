"""An event that arrives twice has one effect: the inbox remembers every event id it applied.

Kafka delivers at least once. The same record comes again when a producer
retries, when someone replays a topic, or when a consumer dies between its
database commit and its offset commit; none of these may count a dossier twice
or put a second link into its hash chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from tests.support import api
from tests.support.events import (
    dossier_code,
    dossier_received,
    dossier_supplemented,
    envelope,
    raw_producer,
    unit_of,
)
from tests.support.stack import ServiceProcess, Stack, eventually, random_unit

RECEIVED = "vn.motcua.dossier.received.v1"
KILL_AFTER_FIRST_DB_COMMIT = {"MOTCUA_FAILPOINT": "consumer.after_db_commit:1"}


async def _inbox_rows(stack: Stack, service: str, event_id: str) -> int:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database(service)))
    try:
        return await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event_id)
    finally:
        await conn.close()


async def _consumed(stack: Stack, service: str, outcome: str) -> float:
    """How many ``dossier.received`` events the service's process handled with that outcome."""
    async with stack.client(service, units=[]) as client:
        return await api.metric(client, "motcua_events_consumed_total", service=service, type=RECEIVED, outcome=outcome)


async def _duplicates_above(stack: Stack, service: str, floor: float) -> bool:
    return await _consumed(stack, service, "duplicate") > floor


def _intake_types(entries: list[dict]) -> list[str]:
    return [e["type"] for e in entries if e["source"] == "/motcua/intake"]


async def test_the_same_event_delivered_twice_has_one_effect(stack: Stack) -> None:
    code = dossier_code(random_unit())
    unit = unit_of(code)
    received = envelope(dossier_received(code))
    duplicates_before = {s: await _consumed(stack, s, "duplicate") for s in ("workflow", "reporting")}

    async with raw_producer(stack.broker.bootstrap_servers) as producer:
        await producer.send_envelope(stack.topic("intake"), received)
        await producer.send_envelope(stack.topic("intake"), received)  # byte for byte the same record again
        # A later event of the same dossier (same key, same partition): once it is in, both copies were handled.
        await producer.send_envelope(stack.topic("intake"), envelope(dossier_supplemented(code)))

    for service in ("workflow", "reporting"):
        await eventually(lambda s=service: _duplicates_above(stack, s, duplicates_before[s]))
        assert await _inbox_rows(stack, service, received.id) == 1
    async with stack.client("reporting", "auditor", units=[unit]) as reporting, stack.client(
        "workflow", "specialist", units=[unit]
    ) as workflow:
        entries = await eventually(lambda: _timeline_with(reporting, code, 2))
        assert _intake_types(entries) == [RECEIVED, "vn.motcua.dossier.supplemented.v1"]
        assert sorted(e["sequence"] for e in entries) == list(range(1, len(entries) + 1))
        assert (await api.chain_verdict(reporting, code))["intact"]
        assert await api.received_total(reporting, unit, api.vn_day(received.data["received_at"])) == 1
        assert (await api.case(workflow, code))["code"] == code


async def _exited(process: ServiceProcess) -> bool:
    return process.exited() is not None


async def _timeline_with(reporting: httpx.AsyncClient, code: str, intake_events: int) -> list[dict] | None:
    entries = await api.timeline(reporting, code)
    return entries if len(_intake_types(entries)) >= intake_events else None


@pytest.fixture
async def fragile_stack(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Stack]:
    """Intake as usual; workflow and reporting die right after their first database commit of an event."""
    stack = Stack.isolated(postgres, broker, tmp_path, services=("intake", "workflow", "reporting"))
    await stack.start(extra_env={"workflow": KILL_AFTER_FIRST_DB_COMMIT, "reporting": KILL_AFTER_FIRST_DB_COMMIT})
    yield stack
    await asyncio.to_thread(stack.stop)


async def test_a_consumer_killed_between_its_commit_and_its_offset_commit_applies_nothing_twice(
    fragile_stack: Stack,
) -> None:
    stack = fragile_stack
    unit = random_unit()
    async with stack.client("intake", "clerk", units=[unit]) as intake:
        receipt = await api.receive_dossier(intake)
    code = receipt["code"]

    consumers = [stack.services["workflow"], stack.services["reporting"]]
    for process in consumers:
        await eventually(lambda p=process: _exited(p), timeout=60)
        assert process.exited() == 137, process.log_tail()
        assert "failpoint consumer.after_db_commit reached" in process.log_text()
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database("reporting")))
    try:  # the effect was committed before the process died; its offset was not
        assert await conn.fetchval("SELECT count(*) FROM event_log WHERE dossier_code = $1", code) == 1
    finally:
        await conn.close()

    for process in consumers:
        process.start()  # same environment, without the fail point
    await asyncio.gather(*(p.wait_ready() for p in consumers))
    for service in ("workflow", "reporting"):  # the record came again, and the inbox knew it
        await eventually(lambda s=service: _duplicates_above(stack, s, 0), timeout=90)
        assert await _consumed(stack, service, "applied") == 0  # this process applied nothing anew

    async with stack.client("reporting", "leader", units=[unit]) as reporting, stack.client(
        "workflow", "specialist", units=[unit]
    ) as workflow:
        entries = await api.timeline(reporting, code)
        assert _intake_types(entries) == [RECEIVED]
        assert (await api.chain_verdict(reporting, code))["intact"]
        assert await api.received_total(reporting, unit, api.vn_day(receipt["received_at"])) == 1
        assert await api.case(workflow, code) is not None
