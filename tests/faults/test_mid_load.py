"""Faults under load: Postgres restarted, every service SIGKILLed, the broker restarted, consumer groups rebalanced.

Each test keeps a counter receiving dossiers and a bank confirming payments
(``tests/faults/load.py``) while it breaks something, then lets the load stop
and checks, against the ledger of what the clients were told, that every
accepted dossier is in every service exactly once, every confirmed payment is
counted once, and the reporting figures equal the hand count.

The module runs its own Postgres and its own broker, so that restarting them
disturbs no other test. The broker keeps its log in memory: a restart loses the
records nobody has consumed yet (real Kafka keeps them), so the broker is only
stopped at a moment when everything sent has been consumed; dossiers keep
arriving while it is away and while it comes back.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.digitization.handlers import subscriptions as digitization_subscription
from services.intake.handlers import subscriptions as intake_subscription
from services.payments.handlers import subscriptions as payments_subscription
from services.reporting.handlers import subscriptions as reporting_subscription
from services.workflow.handlers import subscriptions as workflow_subscription
from shared.consumer import Subscription
from tests.faults.load import FEE, Ledger, LoadDriver, own_shop
from tests.support import api
from tests.support.stack import ServiceProcess, Stack, eventually

SERVICES = ("intake", "workflow", "digitization", "payments", "reporting")
RECEIVED, REQUESTED, CONFIRMED = (
    "vn.motcua.dossier.received.v1",
    "vn.motcua.payment.requested.v1",
    "vn.motcua.payment.confirmed.v1",
)
# Die (exit 137, as abruptly as SIGKILL) right after the third batch's database commit, before its offset commit.
DIE_AFTER_A_BATCH_COMMIT = {"MOTCUA_FAILPOINT": "consumer.after_db_commit:3"}
_units = itertools.count(random.randrange(10_000))


def fault_unit() -> str:
    """A unit of QCVN 102 length (its dossier codes fit a VietQR bill number), new to this module's stack."""
    n = next(_units)
    return f"000.00.{n % 100:02d}.F{n // 100 % 100:02d}"


def _declared(subscriptions: Callable[..., Subscription]) -> Subscription:
    """A service's subscription from its factory; what it listens to does not depend on the factory's arguments."""
    return subscriptions(*(None for _ in inspect.signature(subscriptions).parameters))


def _subscriptions() -> dict[str, Subscription]:
    """What each service consumes, as the services themselves declare it."""
    return {
        "intake": _declared(intake_subscription),
        "workflow": _declared(workflow_subscription),
        "digitization": _declared(digitization_subscription),
        "payments": _declared(payments_subscription),
        "reporting": _declared(reporting_subscription),
    }


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The five services on a Postgres and a broker of this module's own (they get stopped and started)."""
    async with own_shop(tmp_path_factory.mktemp("mid-load")) as stack:
        yield stack


@asynccontextmanager
async def load(stack: Stack) -> AsyncIterator[LoadDriver]:
    """A running load driver on a new unit; abandoned if the block fails."""
    await _heal(stack)
    driver = LoadDriver(stack, fault_unit())
    driver.start()
    try:
        yield driver
    except BaseException:
        await driver.cancel()
        raise


async def _heal(stack: Stack) -> None:
    """Whatever an earlier test left stopped (it failed mid-fault) runs again, so one failure does not fail them all."""
    await asyncio.to_thread(stack.postgres.start)  # no-op when running
    await asyncio.to_thread(stack.broker.start)
    for process in stack.services.values():
        if process.exited() is not None:
            process.start()
    await asyncio.gather(*(p.wait_ready() for p in stack.services.values()))


# ---- the faults --------------------------------------------------------------------------------------------------


async def test_postgres_restarted_mid_load(shop: Stack) -> None:
    async with load(shop) as driver:
        await driver.accepted_at_least(15)
        await driver.paid_at_least(3)
        await asyncio.to_thread(shop.postgres.stop)  # fast shutdown: every session of every service is cut
        await asyncio.sleep(2)  # the counter and the bank keep trying meanwhile
        await asyncio.to_thread(shop.postgres.start)  # same data, same port
        await driver.accepted_at_least(len(driver.ledger.accepted) + 15)
        ledger = await driver.stop()
    assert any(k.startswith("intake ") and not k.endswith(("200", "201")) for k in ledger.answers), ledger.answers
    await everything_exactly_once(shop, ledger)


async def test_each_service_killed_mid_batch_and_restarted(shop: Stack) -> None:
    """Each service is SIGKILLed while it works; each consumer, restarted, then dies once more exactly mid-batch.

    A SIGKILL lands wherever the process happens to be (often between two polls); the fail point makes sure the
    worst moment is hit too: the batch's database commit done, its offset commit not, under load.
    """
    consumers = SERVICES[1:]  # intake consumes only workflow's events, and none flow here
    ahead: dict[str, list[str]] = {}
    async with load(shop) as driver:
        await driver.accepted_at_least(10)
        for service in SERVICES:  # one after the other, each while the one before may still be starting
            await at_work(shop, driver, service)
            process = shop.services[service]
            process.kill()  # SIGKILL: no shutdown, no offset commit, no goodbye to the group
            assert process.exited() == -9
            process.start(DIE_AFTER_A_BATCH_COMMIT if service in consumers else None)
        for service in consumers:
            process = shop.services[service]
            await eventually(lambda p=process: _exited(p), timeout=120, interval=0.2)
            assert process.exited() == 137 and "failpoint consumer.after_db_commit reached" in process.log_text()
            ahead[service] = await _stored_ahead_of_kafka(shop, service)
            process.start()  # as configured, without the fail point
        await asyncio.gather(*(p.wait_ready() for p in shop.services.values()))
        await driver.accepted_at_least(len(driver.ledger.accepted) + 10)
        ledger = await driver.stop()
    await everything_exactly_once(shop, ledger)
    # Each died with a batch applied and its offset not yet in Kafka: the position stored with the batch was ahead,
    # and the restarted consumer went on from there (everything exactly once above), not from Kafka's offset.
    assert all(ahead.values()), f"no consumer died between its database commit and its offset commit: {ahead}"


async def _stored_ahead_of_kafka(stack: Stack, service: str) -> list[str]:
    """The partitions whose position stored in the service's database is ahead of its group's offset in Kafka."""
    stored = await query(stack, service, "SELECT topic, partition, next_offset FROM consumer_positions")
    group = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap_servers, group_id=f"{stack.namespace}.{service}",
                             enable_auto_commit=False)  # fmt: skip
    await group.start()  # subscribes to nothing: it only asks the group's offsets
    try:
        ahead = []
        for row in stored:
            committed = await group.committed(TopicPartition(row["topic"], row["partition"]))
            if committed is None or row["next_offset"] > committed:
                ahead.append(f"{row['topic']}/{row['partition']}")
        return ahead
    finally:
        await group.stop()


async def test_broker_stopped_and_started_mid_load(shop: Stack) -> None:
    async with load(shop) as driver:
        await driver.accepted_at_least(15)
        await driver.paid_at_least(3)
        # The in-memory broker forgets unconsumed records when it stops: stop it when nothing is in flight.
        driver.pause()
        await driver.quiet()
        await eventually(lambda: _settled(shop, driver.ledger.codes), timeout=120, interval=0.5)
        await asyncio.to_thread(shop.broker.stop)
        driver.resume()
        await driver.accepted_at_least(len(driver.ledger.accepted) + 20)  # received while the broker is away
        await asyncio.to_thread(shop.broker.start)  # same port, empty: no topics, no offsets
        await driver.accepted_at_least(len(driver.ledger.accepted) + 15)
        ledger = await driver.stop()
    await everything_exactly_once(shop, ledger)


async def test_consumer_groups_rebalanced_mid_load(shop: Stack) -> None:
    """A second replica of each consumer joins (the group rebalances), takes partitions, then leaves (again)."""
    replica_logs = shop.workdir / "replicas"
    replica_logs.mkdir(exist_ok=True)
    replicas = [ServiceProcess(s, shop.env, replica_logs) for s in ("workflow", "payments", "reporting")]
    async with load(shop) as driver:
        try:
            await driver.accepted_at_least(10)
            for replica in replicas:
                replica.start()
            await asyncio.gather(*(r.wait_ready() for r in replicas))
            for replica in replicas:  # each was given partitions of its own and applied events from them
                await eventually(lambda r=replica: _consumed(r, "applied"), timeout=120, interval=0.5)
            await driver.accepted_at_least(len(driver.ledger.accepted) + 10)
            for replica in replicas:
                applied = await _consumed(replica, "applied")
                await asyncio.to_thread(replica.stop)  # SIGTERM: finishes its batch and leaves the group
                assert f"{replica.service} stopped" in replica.log_text(), replica.log_tail()  # a clean shutdown
                print(f"{replica.service} replica applied {applied:.0f} events")
            await driver.accepted_at_least(len(driver.ledger.accepted) + 10)
            ledger = await driver.stop()
        finally:
            for replica in replicas:
                await asyncio.to_thread(replica.kill)
    await everything_exactly_once(shop, ledger)


# ---- when to strike ------------------------------------------------------------------------------------------------


async def at_work(stack: Stack, driver: LoadDriver, service: str, timeout: float = 120) -> None:
    """Return at a moment the service is in the middle of its work: requests in hand, or batches being applied."""
    deadline = asyncio.get_running_loop().time() + timeout
    if service == "intake":
        while not driver.receiving:
            assert asyncio.get_running_loop().time() < deadline, "no request in hand"
            await asyncio.sleep(0.01)
        return
    async with httpx.AsyncClient(base_url=stack.url(service), timeout=5) as client:
        before = await api.metric(client, "motcua_events_consumed_total", service=service)
        while await api.metric(client, "motcua_events_consumed_total", service=service) == before:
            assert asyncio.get_running_loop().time() < deadline, f"{service} consumed nothing for {timeout:g}s"
            await asyncio.sleep(0.02)


async def _exited(process: ServiceProcess) -> bool:
    return process.exited() is not None


async def _consumed(process: ServiceProcess, outcome: str) -> float:
    """How many events this process handled with that outcome (0 while it does not answer)."""
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=5) as client:
            return await api.metric(client, "motcua_events_consumed_total", service=process.service, outcome=outcome)
    except httpx.HTTPError:
        return 0


# ---- what must hold afterwards ----------------------------------------------------------------------------------


async def query(stack: Stack, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """Rows of one query on a service's database."""
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database(service)))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _gaps(stack: Stack, codes: list[str]) -> dict[str, object]:
    """What is not yet (or wrongly) delivered about these dossiers: unsent outbox rows, and per consumer the events
    its producers wrote that it has not applied ("missing") or that it applied and nobody wrote ("extra")."""
    written: dict[str, set[tuple[str, str]]] = {}
    gaps: dict[str, object] = {}
    for service in SERVICES:
        rows = await query(stack, service, "SELECT event_id::text AS id, type, sent_at FROM outbox WHERE key = ANY($1)", codes)
        written[service] = {(r["id"], r["type"]) for r in rows}
        if unsent := sum(r["sent_at"] is None for r in rows):
            gaps[f"{service} outbox unsent"] = unsent
    for service, subscription in _subscriptions().items():
        types = {model.type for model in subscription.handlers}
        expected = {i for p in subscription.producers for i, t in written[p] if t in types}
        applied = [r["event_id"] for r in await query(stack, service, "SELECT event_id FROM inbox WHERE subject = ANY($1)", codes)]
        if len(applied) != len(set(applied)):
            gaps[f"{service} applied twice"] = len(applied) - len(set(applied))
        if missing := expected - set(applied):
            gaps[f"{service} missing"] = len(missing)
        if extra := set(applied) - expected:
            gaps[f"{service} extra"] = sorted(extra)[:5]
    return gaps


async def _settled(stack: Stack, codes: list[str]) -> bool:
    return not await _gaps(stack, codes)


async def everything_exactly_once(stack: Stack, ledger: Ledger) -> None:
    """Every accepted dossier once in every service, every confirmed payment once, figures equal to the hand count."""
    codes = ledger.codes
    assert len(codes) == len(set(codes)) and codes
    print(f"\n{ledger.unit}: {len(codes)} dossiers accepted, {len(ledger.paid)} payments confirmed "
          f"({ledger.fresh_confirmations} on the first answer); answers: {dict(sorted(ledger.answers.items()))}")
    failures = {k: n for k, n in ledger.answers.items() if k.endswith(" 500")}
    assert not failures, f"a fault made a service fail a request instead of answering 503: {failures}"
    settled = None

    async def _no_gaps() -> bool:
        nonlocal settled
        for service in SERVICES:  # a dead letter never heals: no point in waiting for it
            dead = await query(stack, service, "SELECT type, subject, error FROM dead_letters LIMIT 3")
            assert not dead, f"{service} dead-lettered events: {[dict(d) for d in dead]}"
        settled = await _gaps(stack, codes)
        return not settled

    try:
        await eventually(_no_gaps, timeout=180, interval=1)
    except AssertionError:
        raise AssertionError(f"not delivered exactly once: {settled}\n{_logs(stack)}") from None
    for service in SERVICES:
        assert stack.services[service].exited() is None, f"{service} died:\n{stack.services[service].log_tail()}"
    await _workflow_once(stack, ledger)
    await _payments_once(stack, ledger)
    await _digitization_once(stack, ledger)
    await _reporting_once(stack, ledger)
    await _figures_equal_the_hand_count(stack, ledger)


async def _workflow_once(stack: Stack, ledger: Ledger) -> None:
    cases = await query(stack, "workflow", "SELECT code FROM cases WHERE unit = $1", ledger.unit)
    assert sorted(c["code"] for c in cases) == sorted(ledger.codes)
    fees = await query(stack, "workflow", "SELECT case_code, payment_id, amount, confirmed_at FROM case_payments "
                                          "WHERE case_code = ANY($1)", ledger.codes)  # fmt: skip
    assert sorted(f["case_code"] for f in fees) == sorted(ledger.codes), "one fee per case"
    assert {f["payment_id"] for f in fees if f["confirmed_at"] is not None} == set(ledger.paid)
    assert {f["amount"] for f in fees} == {FEE}


async def _payments_once(stack: Stack, ledger: Ledger) -> None:
    requests = await query(stack, "payments", "SELECT id, dossier_code, status FROM payments WHERE unit = $1", ledger.unit)
    assert sorted(r["dossier_code"] for r in requests) == sorted(ledger.codes), "one payment request per dossier"
    assert {r["id"]: r["dossier_code"] for r in requests if r["status"] == "paid"} == ledger.paid
    assert {r["status"] for r in requests if r["id"] not in ledger.paid} <= {"pending"}
    confirmed = await query(
        stack, "payments", "SELECT payment_id, count(*) AS n FROM payment_audit WHERE action = 'confirmed' AND "
                           "payment_id = ANY($1) GROUP BY payment_id", list(ledger.paid),
    )  # fmt: skip
    assert {r["payment_id"]: r["n"] for r in confirmed} == dict.fromkeys(ledger.paid, 1)
    transfers = await query(stack, "payments", "SELECT payment_id, count(*) AS n FROM transfers WHERE payment_id = ANY($1) "
                                               "GROUP BY payment_id", list(ledger.paid))  # fmt: skip
    assert {r["payment_id"]: r["n"] for r in transfers} == dict.fromkeys(ledger.paid, 1), "one transfer per payment"


async def _digitization_once(stack: Stack, ledger: Ledger) -> None:
    refs = await query(stack, "digitization", "SELECT code FROM dossier_refs WHERE unit = $1", ledger.unit)
    assert sorted(r["code"] for r in refs) == sorted(ledger.codes)


async def _reporting_once(stack: Stack, ledger: Ledger) -> None:
    facts = await query(stack, "reporting", "SELECT code FROM dossier_facts WHERE unit = $1", ledger.unit)
    assert sorted(f["code"] for f in facts) == sorted(ledger.codes)
    log = await query(stack, "reporting", "SELECT dossier_code, sequence, event_id, type, data FROM event_log "
                                          "WHERE dossier_code = ANY($1) ORDER BY dossier_code, sequence", ledger.codes)  # fmt: skip
    assert len({e["event_id"] for e in log}) == len(log), "an event twice in a timeline"
    by_code: dict[str, list[asyncpg.Record]] = {}
    for entry in log:
        by_code.setdefault(entry["dossier_code"], []).append(entry)
    paid_codes = set(ledger.paid.values())
    for code in ledger.codes:
        entries = by_code.get(code, [])
        assert [e["sequence"] for e in entries] == list(range(1, len(entries) + 1)), code
        types = [e["type"] for e in entries]
        assert (types.count(RECEIVED), types.count(REQUESTED)) == (1, 1), (code, types)
        assert types.count(CONFIRMED) == (code in paid_codes), (code, types)
    async with stack.client("reporting", "auditor", units=[ledger.unit]) as reporting:
        for start in range(0, len(ledger.codes), 10):
            chunk = ledger.codes[start : start + 10]
            for code, verdict in zip(chunk, await asyncio.gather(*(api.chain_verdict(reporting, c) for c in chunk)), strict=True):
                assert verdict["intact"] and verdict["events"] == len(by_code[code]), verdict


async def _figures_equal_the_hand_count(stack: Stack, ledger: Ledger) -> None:
    days = sorted({api.vn_day(r["received_at"]) for r in ledger.accepted.values()})
    async with stack.client("reporting", "leader", units=[ledger.unit]) as reporting:
        response = await reporting.get("/api/v1/reports/summary", params={"unit": ledger.unit, "from": days[0], "to": days[-1]})
    assert response.status_code == 200, response.text
    summary = response.json()
    accepted, paid = len(ledger.accepted), len(ledger.paid)
    hand = {"received_total": accepted, "received_counter": accepted, "received_online": 0, "received_postal": 0,
            "to_process": accepted, "pending_total": accepted, "resolved_total": 0, "withdrawn": 0,
            "fee_dossiers": accepted, "paid_online": paid}  # fmt: skip
    assert {k: summary[k] for k in hand} == hand, summary


def _logs(stack: Stack) -> str:
    return "\n".join(f"--- {s}\n{p.log_tail(15)}" for s, p in stack.services.items())
