"""The broker loses what was published and not yet consumed: the outbox publishes it again, nothing is lost.

The consumers are stopped while the counter keeps receiving and the bank keeps paying (``tests/faults/load.py``),
so intake's relay publishes events that nobody reads; the broker is then killed and started again empty (what
Tansu does; in production: an unclean leader election, a topic deleted, a cluster rebuilt). Each relay notices
that the broker no longer has what it acknowledged and publishes its kept outbox again; the consumers, started
again, find their stored positions beyond the new logs and read them from the start; their inboxes skip what they
had applied. With ``RELAY_AUTO_REPLAY=false`` the loss stays visible (the relay's gauge, the drift check naming
the missing events) until an operator replays through the admin API.

The module runs its own Postgres, broker and five services.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.faults.load import LoadDriver, own_shop
from tests.faults.test_mid_load import SERVICES, everything_exactly_once, load, query
from tests.support import api
from tests.support.stack import Stack, eventually

CONSUMERS = ("workflow", "digitization", "payments", "reporting")  # all that consume intake's events
QUICK = {
    "RELAY_CHECK_SECONDS": "1",  # the relay compares the broker with its acknowledgements every second
    "DRIFT_MANIFEST_SECONDS": "1",
    "DRIFT_CHECK_SECONDS": "1",
    "DRIFT_GRACE_SECONDS": "5",
}
NO_AUTO_REPLAY = {"RELAY_AUTO_REPLAY": "false"}

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The five services on a Postgres and a broker of this module's own (the broker gets killed)."""
    async with own_shop(tmp_path_factory.mktemp("broker-loss"), QUICK) as stack:
        yield stack


async def _metric(stack: Stack, service: str, name: str, **labels: str) -> float:
    async with httpx.AsyncClient(base_url=stack.url(service), timeout=5) as client:
        return await api.metric(client, name, service=service, **labels)


async def _published_unconsumed(stack: Stack, driver: LoadDriver, more: int) -> None:
    """The consumers stop; ``more`` dossiers are accepted and published (acknowledged by the broker), none consumed."""
    await asyncio.gather(*(asyncio.to_thread(stack.services[s].stop) for s in CONSUMERS))
    await driver.accepted_at_least(len(driver.ledger.accepted) + more)

    async def _intake_outbox_sent() -> bool:  # the counter goes on: a dossier accepted from now on may be in flight
        rows = await query(stack, "intake", "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")
        return rows[0]["n"] == 0

    await eventually(_intake_outbox_sent, timeout=60, interval=0.1)


async def _broker_loses_everything(stack: Stack) -> None:
    await asyncio.to_thread(stack.broker.kill)  # SIGKILL: in memory, so everything it held is gone
    await asyncio.to_thread(stack.broker.start)  # same port, empty: no topics, no records, no group offsets


async def _start(stack: Stack, services: tuple[str, ...], extra_env: dict[str, str] | None = None) -> None:
    for service in services:
        stack.services[service].start(extra_env)
    await asyncio.gather(*(stack.services[s].wait_ready() for s in services))


async def test_the_relay_replays_what_the_broker_lost_and_every_dossier_arrives_once(shop: Stack) -> None:
    replays = await _metric(shop, "intake", "motcua_outbox_replays_total", reason="log_truncated")
    async with load(shop) as driver:
        await driver.accepted_at_least(10)
        await driver.paid_at_least(2)
        await _published_unconsumed(shop, driver, 15)
        await _broker_loses_everything(shop)
        await _start(shop, CONSUMERS)
        await driver.accepted_at_least(len(driver.ledger.accepted) + 10)
        ledger = await driver.stop()
    await everything_exactly_once(shop, ledger)
    assert await _metric(shop, "intake", "motcua_outbox_replays_total", reason="log_truncated") > replays
    assert await _metric(shop, "intake", "motcua_outbox_replayed_rows_total", reason="log_truncated") >= 15
    rewinds = [await _metric(shop, s, "motcua_consumer_rewinds_total") for s in CONSUMERS]
    assert all(rewinds), f"each consumer read the new logs from their start: {dict(zip(CONSUMERS, rewinds, strict=True))}"


async def test_without_automatic_replay_the_drift_check_names_the_gap_until_an_operator_replays(shop: Stack) -> None:
    await asyncio.gather(*(asyncio.to_thread(p.stop) for p in shop.services.values()))
    await _start(shop, SERVICES, NO_AUTO_REPLAY)
    since = datetime.now(UTC)
    admin = {s: shop.client(s, "admin", units=["*"]) for s in SERVICES}
    try:
        async with load(shop) as driver:
            await driver.accepted_at_least(10)
            await _published_unconsumed(shop, driver, 15)
            driver.pause()  # no new dossier until the replay: then every event the drift check names was lost
            while driver.receiving:
                await asyncio.sleep(0.05)
            await _published_unconsumed(shop, driver, 0)  # the last ones in hand published too
            lost = set(driver.ledger.codes)  # published (the last 15 and more not consumed), about to be lost
            await _broker_loses_everything(shop)
            await _start(shop, CONSUMERS, NO_AUTO_REPLAY)
            await eventually(lambda: _loss_reported(shop), timeout=60, interval=0.5)

            for producer in ("intake", "payments"):  # the lost events' manifests were lost too: announce them again
                response = await admin[producer].post("/api/v1/admin/drift/announce")
                assert response.status_code == 200, response.text
            gap = await eventually(lambda: _missing(admin["workflow"], "intake"), timeout=60, interval=1)
            missing_ids = {event_id for row in gap["data"] for event_id in row["missing_event_ids"]}
            received = await query(shop, "intake", "SELECT event_id::text AS id, key FROM outbox WHERE event_id::text = "
                                                   "ANY($1)", list(missing_ids))  # fmt: skip
            assert {r["key"] for r in received} <= lost and received, "the drift check names the lost dossiers' events"

            for service in SERVICES:  # the operator replays every producer's outbox since before the loss
                response = await admin[service].post("/api/v1/admin/outbox/replay", json={"since": since.isoformat()})
                assert response.status_code == 202, response.text
                assert response.json()["queued"] >= 0
            driver.resume()
            await driver.accepted_at_least(len(driver.ledger.accepted) + 5)
            ledger = await driver.stop()
        await everything_exactly_once(shop, ledger)
        for consumer in CONSUMERS:
            await eventually(lambda c=consumer: _no_drift(admin[c]), timeout=90, interval=1)
        assert await _metric(shop, "intake", "motcua_relay_broker_data_lost") == 0
    finally:
        for client in admin.values():
            await client.aclose()
        # The other test of this module (they run in random order) finds the services as the fixture started them.
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in shop.services.values()))
        await _start(shop, SERVICES)


async def _loss_reported(stack: Stack) -> bool:
    return await _metric(stack, "intake", "motcua_relay_broker_data_lost") == 1


async def _missing(client: httpx.AsyncClient, producer: str) -> dict | None:
    """The drift report about one producer, once it names missing events."""
    response = await client.get("/api/v1/admin/drift", params={"producer": producer, "limit": 1000})
    assert response.status_code == 200, response.text
    report = response.json()
    return report if report["missing"] else None


async def _no_drift(client: httpx.AsyncClient) -> bool:
    response = await client.get("/api/v1/admin/drift")
    assert response.status_code == 200, response.text
    report = response.json()
    return report["missing"] == 0 and report["pending"] == 0 and report["announced"] > 0
