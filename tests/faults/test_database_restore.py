"""A service's database restored from a dump mid-load catches up from Kafka by itself; a replay changes nothing.

The dump is taken while the counter keeps receiving and the bank keeps paying (``tests/faults/load.py``); the
load goes on; then the service is stopped, its database dropped and restored from the dump (``pg_dump -Fc`` and
``pg_restore`` of the embedded PostgreSQL), and the service started again. Its consumer positions came back with
the dump, so it reads again, from Kafka, everything after the dump, and applies it once. Kafka's committed offsets
of its group stand at the latest: without positions kept beside the effects it would skip all of that.

The module runs its own Postgres, broker and five services.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from motcua.devstack import EmbeddedPostgres
from tests.faults.load import Ledger, own_shop
from tests.faults.test_mid_load import (
    SERVICES,
    _subscriptions,
    everything_exactly_once,
    load,
    query,
)
from tests.support import api
from tests.support.stack import Stack, eventually

pytestmark = pytest.mark.timeout(900)  # five services, a load, a dump and a restore on a shared 2-core machine


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The five services on a Postgres and a broker of this module's own."""
    async with own_shop(tmp_path_factory.mktemp("restore")) as stack:
        yield stack


def _pg(postgres: EmbeddedPostgres, program: str, *args: str) -> None:
    """One of the embedded PostgreSQL's client programs, as the superuser over TCP."""
    result = subprocess.run([str(postgres.bin(program)), "-h", postgres.host, "-p", str(postgres.port), "-U", "postgres",
                             *args], capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert result.returncode == 0, f"{program} failed: {result.stderr}"


async def dump(stack: Stack, service: str, path: Path) -> None:
    """``pg_dump -Fc`` of the service's database while it runs (a consistent snapshot)."""
    await asyncio.to_thread(_pg, stack.postgres, "pg_dump", "-Fc", "-d", stack.database(service), "-f", str(path))


async def restore(stack: Stack, service: str, path: Path) -> None:
    """The local restore procedure: stop the service, recreate its database from the dump, start the service."""
    process = stack.services[service]
    await asyncio.to_thread(process.stop)
    assert process.exited() is not None
    name = stack.database(service)
    await asyncio.to_thread(stack.postgres.drop_database, name)
    await asyncio.to_thread(stack.postgres.ensure_database, name)
    await asyncio.to_thread(_pg, stack.postgres, "pg_restore", "--no-owner", "--exit-on-error", "-d", name, str(path))


async def _inbox_count(stack: Stack, service: str, codes: list[str]) -> int:
    return (await query(stack, service, "SELECT count(*) AS n FROM inbox WHERE subject = ANY($1)", codes))[0]["n"]


@pytest.mark.parametrize("service", ["workflow", "reporting"])
async def test_a_database_restored_from_a_dump_mid_load_catches_up_by_itself(shop: Stack, service: str, tmp_path: Path) -> None:
    backup = tmp_path / f"{service}.dump"
    async with load(shop) as driver:
        await driver.accepted_at_least(10)
        await driver.paid_at_least(2)
        await dump(shop, service, backup)
        await driver.accepted_at_least(len(driver.ledger.accepted) + 15)  # all of this is after the dump
        await driver.paid_at_least(len(driver.ledger.paid) + 3)
        applied_before = await _inbox_count(shop, service, driver.ledger.codes)
        await restore(shop, service, backup)
        restored = await _inbox_count(shop, service, driver.ledger.codes)
        assert restored < applied_before, f"the restore went back in time: {restored} events applied, {applied_before} before"
        shop.services[service].start()  # as configured: nothing tells it that it was restored
        await shop.services[service].wait_ready()
        await driver.accepted_at_least(len(driver.ledger.accepted) + 10)
        ledger = await driver.stop()
    await everything_exactly_once(shop, ledger)


async def test_a_replay_of_a_window_already_consumed_changes_nothing(shop: Stack) -> None:
    since = datetime.now(UTC)
    async with load(shop) as driver:
        await driver.accepted_at_least(15)
        await driver.paid_at_least(4)
        ledger = await driver.stop()
    await everything_exactly_once(shop, ledger)
    before = await _projections(shop, ledger)
    duplicates = {s: await _duplicates(shop, s) for s in SERVICES}

    replayed = {}
    for producer in ("intake", "payments"):
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "motcua.cli", "outbox", "replay", "--service", producer,
                             "--since", since.isoformat()], env={**os.environ, **shop.env}, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        queued = int(re.match(rf"{producer}: (\d+) outbox rows sent since", result.stdout).group(1))  # type: ignore[union-attr]
        replayed[producer] = await query(shop, producer, "SELECT type FROM outbox WHERE key = ANY($1)", ledger.codes)
        assert queued >= len(replayed[producer]) > 0, (result.stdout, len(replayed[producer]))
    expected = {
        consumer: sum(1 for p in subscription.producers for r in replayed.get(p, ())
                      if r["type"] in {m.type for m in subscription.handlers})
        for consumer, subscription in _subscriptions().items()
    }  # fmt: skip
    assert expected["workflow"] > 0 and expected["reporting"] > 0

    async def _all_seen_again() -> bool:
        return all([await _duplicates(shop, s) - duplicates[s] >= n for s, n in expected.items()])

    await eventually(_all_seen_again, timeout=120, interval=1)
    await everything_exactly_once(shop, ledger)
    assert await _projections(shop, ledger) == before, "a replay of what was consumed changed a projection"


async def _duplicates(stack: Stack, service: str) -> float:
    async with httpx.AsyncClient(base_url=stack.url(service), timeout=5) as client:
        return await api.metric(client, "motcua_events_consumed_total", service=service, outcome="duplicate")


async def _projections(stack: Stack, ledger: Ledger) -> dict[str, object]:
    """What each service shows of the ledger's dossiers, row by row."""
    codes = ledger.codes
    tables = {
        "cases": ("workflow", "SELECT * FROM cases WHERE code = ANY($1) ORDER BY code"),
        "fees": ("workflow", "SELECT * FROM case_payments WHERE case_code = ANY($1) ORDER BY case_code"),
        "payments": ("payments", "SELECT * FROM payments WHERE dossier_code = ANY($1) ORDER BY id"),
        "refs": ("digitization", "SELECT * FROM dossier_refs WHERE code = ANY($1) ORDER BY code"),
        "facts": ("reporting", "SELECT * FROM dossier_facts WHERE code = ANY($1) ORDER BY code"),
        "log": ("reporting", "SELECT * FROM event_log WHERE dossier_code = ANY($1) ORDER BY dossier_code, sequence"),
    }
    return {name: [dict(r) for r in await query(stack, service, sql, codes)] for name, (service, sql) in tables.items()}
