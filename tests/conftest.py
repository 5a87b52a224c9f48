"""Session fixtures: one real Postgres and one real Kafka-protocol broker, started here and stopped at the end."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from tests.support.stack import Stack

# The service processes the tests start let a request queue for up to 10 s instead of production's 0.25 s: tests
# that fire a burst at once (concurrent receptions, callbacks, approvals) check what the burst does, and on a busy CI
# machine a time-based queue bound would refuse some of it by chance. Admission control itself is tested with its own
# tight settings (tests/e2e/test_admission.py, tests/unit/test_admission.py); the benchmarks run the shipped defaults.
os.environ.setdefault("ADMISSION_MAX_QUEUE_SECONDS", "10")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of the test session's own (never the one under .motcua/)."""
    data = tmp_path_factory.mktemp("pgdata")
    server = EmbeddedPostgres(data, port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A Tansu broker of the test session's own."""
    server = EmbeddedBroker(port=free_port(), log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """A broker only the test uses, so it may stop it or restart it (empty)."""
    broker = EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log")
    await asyncio.to_thread(broker.start)
    yield broker
    await asyncio.to_thread(broker.stop)


@pytest.fixture(scope="session")
async def stack(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """All five services as real processes, shared by the end-to-end tests (each test uses its own unit)."""
    running = Stack.isolated(postgres, broker, Path(tmp_path_factory.mktemp("stack")))
    await running.start()
    yield running
    running.stop()
