"""In-process pieces of the platform (relay, consumer) on a database and topics of the test's own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from sqlalchemy import text

from motcua.devstack import EmbeddedPostgres
from motcua.migrate import upgrade
from shared.clock import SystemClock
from shared.db import Database


class Loop(Protocol):
    """What the lifespan runs: the relay, the consumer."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


def namespace() -> str:
    """A topic namespace (and consumer-group prefix) no other test uses."""
    return f"it{uuid.uuid4().hex[:10]}"


async def service_database(postgres: EmbeddedPostgres, service: str, ns: str) -> Database:
    """A fresh, migrated database of a service, named after the namespace; dispose it when done."""
    name = f"motcua_{service}_{ns}"
    await asyncio.to_thread(postgres.ensure_database, name)
    url = postgres.dsn(name)
    await asyncio.to_thread(upgrade, service, url)
    return Database(url, service=service, namespace=ns, clock=SystemClock(), pool_size=4)


@asynccontextmanager
async def running(*loops: Loop) -> AsyncIterator[None]:
    """Run background loops for the block, then stop them and wait until they have finished."""
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        yield
    finally:
        for loop in loops:
            await loop.stop()
        done, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


async def rows(db: Database, sql: str, **params: object) -> Sequence:
    """Rows of one query, as mappings."""
    async with db.sessions() as session:
        return (await session.execute(text(sql), params)).mappings().all()


async def scalar(db: Database, sql: str, **params: object) -> object:
    """The single value of one query."""
    async with db.sessions() as session:
        return (await session.execute(text(sql), params)).scalar_one()
