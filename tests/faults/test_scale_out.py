"""Two replicas each of workflow and reporting share one consumer group; one of each is killed mid-stream.

This is how motcua scales out on Kubernetes: more pods of a service, same database, same consumer group, the
broker splitting the partitions between them. The test proves here, against the real broker and Postgres,
what the production overlay relies on:

* both replicas consume (the partitions are split), and when one dies with SIGKILL while dossiers keep
  arriving, the survivor takes over its partitions: every dossier becomes exactly one case in workflow and
  is counted exactly once in reporting, whatever the dead replica had applied without committing its offset;
* replicas' transactions that take shared rows (reporting's roll-up) in different orders may deadlock; Postgres
  fails one, and the consumer retries it: nothing ends up in dead letters;
* with both workflow replicas sweeping the same database at once, each case gets exactly one deadline
  warning and exactly one overdue notice. Both sweepers run rounds with their clocks past the deadlines
  (their own sweep counters show it); which one wins a case is a race. The two replicas' clocks are set an
  hour apart, so each notice carries, in its time, which replica sent it: every one came from one of them.

The stack is the test's own (it kills processes); its services share the session's Postgres and broker
under a namespace of their own.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from services.workflow import domain
from services.workflow.settings import WorkflowSettings
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.rules import shipped_book
from tests.support import api
from tests.support.stack import ServiceProcess, Stack, eventually, random_unit

DOSSIERS = 160
BATCH = 10  # dossiers received at once
PAUSE_AT = 100  # the stream waits here until the kill, so at least DOSSIERS - PAUSE_AT arrive after it
UNITS = 4
SWEEP_INTERVAL = 1.0
SWEEP_BATCH = 5  # small rounds: the two sweepers interleave instead of one taking everything at once
REPLICA_B_AHEAD = timedelta(hours=1)  # replica B's clock runs this far ahead of A's

RECEIVED = "vn.motcua.dossier.received.v1"
WARNING = "vn.motcua.case.deadline_warning.v1"
OVERDUE = "vn.motcua.case.overdue.v1"


@dataclass
class ScaledStack:
    """Intake once; workflow and reporting twice each (``a`` is the stack's process, ``b`` the extra replica)."""

    stack: Stack
    b: dict[str, ServiceProcess]

    def replicas(self, service: str) -> tuple[ServiceProcess, ServiceProcess]:
        """(a, b) of a service."""
        return self.stack.services[service], self.b[service]


@pytest.fixture
async def scaled(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[ScaledStack]:
    """Intake, two workflow and two reporting processes; B replicas: same env, database and group, own port and log."""
    stack = Stack.isolated(
        postgres,
        broker,
        tmp_path / "stack",
        services=("intake", "workflow", "reporting"),
        env={"WORKFLOW_SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL), "WORKFLOW_SWEEP_BATCH_SIZE": str(SWEEP_BATCH)},
    )
    (tmp_path / "stack" / "logs-b").mkdir()
    extra = {s: ServiceProcess(s, stack.env, tmp_path / "stack" / "logs-b") for s in ("workflow", "reporting")}
    processes = [*stack.services.values(), *extra.values()]
    try:
        await asyncio.to_thread(stack.prepare)
        for process in processes:
            process.start()
        await asyncio.gather(*(p.wait_ready(90) for p in processes))
        yield ScaledStack(stack, extra)
    finally:
        for process in extra.values():
            await asyncio.to_thread(process.stop)
        await asyncio.to_thread(stack.stop)


# ---- probes -----------------------------------------------------------------------------------------


async def _applied(process: ServiceProcess, event_type: str) -> float:
    """How many events of this type this process applied anew (its own /metrics; gone with the process)."""
    async with httpx.AsyncClient(base_url=process.url, timeout=10) as client:
        return await api.metric(
            client, "motcua_events_consumed_total", service=process.service, type=event_type, outcome="applied"
        )


async def _sweep_rounds(process: ServiceProcess) -> float:
    """How many deadline-sweep rounds this workflow process has completed (its own /metrics)."""
    async with httpx.AsyncClient(base_url=process.url, timeout=10) as client:
        return await api.metric(client, "motcua_sweep_rounds_total", sweep="deadline sweep")


async def _both_sweep(*processes: ServiceProcess, rounds: int = 2) -> None:
    """Wait until each process has completed ``rounds`` more sweep rounds: both sweepers ran with their clocks set."""
    start = [await _sweep_rounds(p) for p in processes]

    async def swept() -> bool:
        return all([await _sweep_rounds(p) >= s + rounds for p, s in zip(processes, start, strict=True)])

    await eventually(swept, timeout=60, interval=0.5)


async def _connect(stack: Stack, service: str) -> asyncpg.Connection:
    return await asyncpg.connect(stack.postgres.dsn(stack.database(service)))


async def _fetch(stack: Stack, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await _connect(stack, service)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _count(stack: Stack, service: str, sql: str, *args: object) -> int:
    return (await _fetch(stack, service, sql, *args))[0][0]


def _per_code(rows: list[asyncpg.Record]) -> dict[str, Counter[str]]:
    """(code, type) rows as a Counter of types per code."""
    counted: dict[str, Counter[str]] = {}
    for row in rows:
        counted.setdefault(row[0], Counter())[row[1]] += 1
    return counted


async def _outbox_of_workflow(stack: Stack, codes: list[str]) -> dict[str, Counter[str]]:
    """The events workflow emitted, per dossier."""
    return _per_code(await _fetch(stack, "workflow", "SELECT key, type FROM outbox WHERE key = ANY($1)", codes))


async def _event_log_of_reporting(stack: Stack, codes: list[str]) -> dict[str, Counter[str]]:
    """The events reporting recorded, per dossier."""
    sql = "SELECT dossier_code, type FROM event_log WHERE dossier_code = ANY($1)"
    return _per_code(await _fetch(stack, "reporting", sql, codes))


# ---- driving --------------------------------------------------------------------------------------------


async def _stream(stack: Stack, units: list[str], resume: asyncio.Event) -> list[dict]:
    """Receive DOSSIERS dossiers over HTTP, BATCH at a time, waiting at PAUSE_AT until ``resume`` is set."""
    clients = [stack.client("intake", "clerk", units=[u]) for u in units]
    receipts: list[dict] = []
    try:
        for start in range(0, DOSSIERS, BATCH):
            if start >= PAUSE_AT:
                await resume.wait()
            batch = range(start, min(start + BATCH, DOSSIERS))
            receipts += await asyncio.gather(
                *(api.receive_dossier(clients[i % len(clients)], f"Người nộp số {i}") for i in batch)
            )
    finally:
        for client in clients:
            await client.aclose()
    return receipts


async def _set_clock(process: ServiceProcess, stack: Stack, to: datetime) -> None:
    token = stack.token("admin", units=["*"], subject="ops")
    async with httpx.AsyncClient(base_url=process.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as admin:
        response = await admin.put("/api/v1/admin/clock", json={"now": to.isoformat()})
    assert response.status_code == 200, response.text


def _calendar() -> WorkingCalendar:
    """The workflow's working calendar in the office hours of the shipped rules in force (what the processes run with)."""
    office = shipped_book().in_force(datetime.now(VN_TZ)).office
    return WorkingCalendar(start_of_day=office.opens, end_of_day=office.closes, cutoff=office.cutoff)


def _horizon(now: datetime) -> datetime:
    threshold = WorkflowSettings.model_fields["warning_threshold_working_hours"].default
    return domain.warning_horizon(now, threshold, _calendar())


def _sender(occurred_at: datetime, clock_a: datetime, clock_b: datetime) -> str:
    """Which replica's sweep emitted an event, from its time (B's clock is REPLICA_B_AHEAD ahead of A's)."""
    return "b" if occurred_at >= clock_b else "a" if occurred_at >= clock_a else "?"


async def _sweep_senders(stack: Stack, codes: list[str], event_type: str, clock_a: datetime, clock_b: datetime) -> Counter[str]:
    rows = await _fetch(
        stack, "workflow", "SELECT (payload->>'occurred_at')::timestamptz FROM outbox WHERE key = ANY($1) AND type = $2",
        codes, event_type,
    )
    return Counter(_sender(r[0], clock_a, clock_b) for r in rows)


# ---- the test ---------------------------------------------------------------------------------------------


async def test_two_replicas_share_the_stream_survive_a_kill_and_sweep_each_deadline_once(scaled: ScaledStack) -> None:
    stack = scaled.stack
    workflow_a, workflow_b = scaled.replicas("workflow")
    reporting_a, reporting_b = scaled.replicas("reporting")
    units = [random_unit() for _ in range(UNITS)]

    # 1. Dossiers flow; once every replica has applied some, B of each service dies with SIGKILL mid-stream.
    resume = asyncio.Event()
    streaming = asyncio.create_task(_stream(stack, units, resume))
    try:

        async def every_replica_consumes() -> bool:
            replicas = (workflow_a, workflow_b, reporting_a, reporting_b)
            return all([await _applied(p, RECEIVED) > 0 for p in replicas])

        await eventually(every_replica_consumes, timeout=60, interval=0.2)
        applied_by_b = {p.service: await _applied(p, RECEIVED) for p in (workflow_b, reporting_b)}
        workflow_b.kill()
        reporting_b.kill()
        killed_at = (await _fetch(stack, "workflow", "SELECT now()"))[0][0]
    finally:
        resume.set()
    receipts = await asyncio.wait_for(streaming, timeout=120)
    codes = [r["code"] for r in receipts]
    assert len(set(codes)) == DOSSIERS
    assert workflow_b.exited() == -9 and reporting_b.exited() == -9

    # 2. The survivors take the dead replicas' partitions: every dossier arrives, once.
    async def all_cases_opened() -> bool:
        return await _count(stack, "workflow", "SELECT count(*) FROM cases WHERE code = ANY($1)", codes) == DOSSIERS

    async def all_dossiers_recorded() -> bool:
        sql = "SELECT count(*) FROM event_log WHERE dossier_code = ANY($1) AND type = $2"
        return await _count(stack, "reporting", sql, codes, RECEIVED) == DOSSIERS

    await eventually(all_cases_opened, timeout=90, interval=0.5)
    await eventually(all_dossiers_recorded, timeout=90, interval=0.5)

    for service, survivor in (("workflow", workflow_a), ("reporting", reporting_a)):
        # B held partitions of the intake topic (it applied dossier.received); after its death every one of the
        # topic's partitions was applied from by someone alive, which is the survivor alone.
        sql = 'SELECT DISTINCT "partition" FROM inbox WHERE topic = $1 AND type = $2 AND processed_at > $3'
        after_kill = {r[0] for r in await _fetch(stack, service, sql, stack.topic("intake"), RECEIVED, killed_at)}
        sql = 'SELECT DISTINCT "partition" FROM inbox WHERE topic = $1 AND type = $2'
        partitions = {r[0] for r in await _fetch(stack, service, sql, stack.topic("intake"), RECEIVED)}
        assert after_kill == partitions and len(partitions) > 1, (service, after_kill, partitions)
        # nothing was applied twice: the survivor's fresh applications plus what B had applied by its last scrape
        # never exceed the dossiers (a redelivered record counts as a duplicate, not as applied)
        assert await _applied(survivor, RECEIVED) + applied_by_b[service] <= DOSSIERS
        assert await _count(stack, service, "SELECT count(*) FROM inbox WHERE subject = ANY($1)", codes) == DOSSIERS
        assert await _count(stack, service, "SELECT count(*) FROM dead_letters") == 0

    cases = await _fetch(stack, "workflow", "SELECT code, status, version, due_at FROM cases WHERE code = ANY($1)", codes)
    assert sorted(c["code"] for c in cases) == sorted(codes)
    assert {(c["status"], c["version"]) for c in cases} == {("accepted", 1)}
    assert await _outbox_of_workflow(stack, codes) == {}  # opening a case emits nothing: any event here is extra
    recorded = await _event_log_of_reporting(stack, codes)
    assert {code: dict(types) for code, types in recorded.items()} == {code: {RECEIVED: 1} for code in codes}
    async with stack.client("reporting", "leader", units=units) as reporting:
        counted = 0
        for unit in units:
            for day in sorted({api.vn_day(r["received_at"]) for r in receipts}):
                counted += await api.received_total(reporting, unit, day)
        assert counted == DOSSIERS

    # 3. Both B replicas come back (same port, same group) for the sweep: two workflow replicas sweeping.
    for process in (workflow_b, reporting_b):
        process.start()
    await asyncio.gather(workflow_b.wait_ready(90), reporting_b.wait_ready(90))

    dues = sorted({c["due_at"] for c in cases})
    first_due, last_due = dues[0], dues[-1]
    clock_a = first_due - 2 * REPLICA_B_AHEAD  # both replicas before every deadline, B an hour closer to it
    clock_b = clock_a + REPLICA_B_AHEAD
    # A case is warned when its deadline is within either replica's horizon; those beyond both are not.
    surely_warned = {c["code"] for c in cases if c["due_at"] <= _horizon(clock_a)}
    never_warned = {c["code"] for c in cases if c["due_at"] > _horizon(clock_b + timedelta(minutes=10))}
    assert surely_warned, f"no deadline within the warning horizon of {clock_a}: {dues}"
    await asyncio.gather(_set_clock(workflow_a, stack, clock_a), _set_clock(workflow_b, stack, clock_b))

    async def warnings_sent() -> bool:
        sql = "SELECT code FROM cases WHERE code = ANY($1) AND warning_sent_at IS NOT NULL"
        return surely_warned <= {r[0] for r in await _fetch(stack, "workflow", sql, codes)}

    await eventually(warnings_sent, timeout=60, interval=0.5)
    await _both_sweep(workflow_a, workflow_b)
    overdue_a = last_due + timedelta(minutes=1)
    overdue_b = overdue_a + REPLICA_B_AHEAD
    await asyncio.gather(_set_clock(workflow_a, stack, overdue_a), _set_clock(workflow_b, stack, overdue_b))

    async def overdue_sent() -> bool:
        sql = "SELECT count(*) FROM cases WHERE code = ANY($1) AND overdue_sent_at IS NOT NULL"
        return await _count(stack, "workflow", sql, codes) == DOSSIERS

    await eventually(overdue_sent, timeout=60, interval=0.5)
    # Both sweepers keep going for a few more rounds each, their clocks past every deadline: whatever they
    # would send twice, they send now.
    await _both_sweep(workflow_a, workflow_b, rounds=3)

    # 4. One warning (where due) and one overdue notice per case, though both swept, recorded once by reporting.
    emitted = await _outbox_of_workflow(stack, codes)
    assert set(emitted) == set(codes)
    for code in codes:
        assert emitted[code][OVERDUE] == 1, (code, emitted[code])
        warnings = emitted[code][WARNING]
        assert warnings == 1 if code in surely_warned else warnings == 0 if code in never_warned else warnings <= 1, (
            code, emitted[code]
        )
        assert set(emitted[code]) <= {OVERDUE, WARNING}, emitted[code]
    warning_senders = await _sweep_senders(stack, codes, WARNING, clock_a, clock_b)
    overdue_senders = await _sweep_senders(stack, codes, OVERDUE, overdue_a, overdue_b)
    # Who sent which notice is a race (SKIP LOCKED: the first round to claim a case wins); that both sweepers
    # swept the same due cases at the same time is what _both_sweep showed. Every notice came from one of them:
    assert sum(warning_senders.values()) == sum(e[WARNING] for e in emitted.values()) and not warning_senders["?"], warning_senders
    assert sum(overdue_senders.values()) == DOSSIERS and not overdue_senders["?"], overdue_senders

    async def reporting_has_the_notices() -> bool:
        sql = "SELECT count(*) FROM event_log WHERE dossier_code = ANY($1) AND type IN ($2, $3)"
        return await _count(stack, "reporting", sql, codes, WARNING, OVERDUE) >= sum(
            e[WARNING] + e[OVERDUE] for e in emitted.values()
        )

    await eventually(reporting_has_the_notices, timeout=60, interval=0.5)
    recorded = await _event_log_of_reporting(stack, codes)
    assert {code: dict(types) for code, types in recorded.items()} == {
        code: {RECEIVED: 1, **dict(emitted[code])} for code in codes
    }
    async with stack.client("reporting", "auditor", units=units) as reporting:
        for code in codes[:: DOSSIERS // 10]:
            verdict = await api.chain_verdict(reporting, code)
            assert verdict["intact"] and verdict["events"] == sum(recorded[code].values()), verdict
    for service in ("workflow", "reporting"):  # replicas' transactions may deadlock: retried, never filed away
        assert await _count(stack, service, "SELECT count(*) FROM dead_letters") == 0
    for process in (*scaled.replicas("workflow"), *scaled.replicas("reporting"), stack.services["intake"]):
        assert process.exited() is None, f"{process.service} died:\n{process.log_tail()}"
