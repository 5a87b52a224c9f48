"""A deadlock between two replicas' transactions is retried, never counted toward a dead letter.

Two replicas of a consumer apply different dossiers' events at the same time; when their transactions take
shared rows (a roll-up, a counter) in different orders, Postgres breaks the cycle by failing one of them with
``deadlock detected`` (40P01). That failure says nothing about the event, and the same transaction a moment
later succeeds, so the consumer must wait it out like a lost connection: counted as an attempt, a few
deadlocks in a row would file a valid event as a dead letter.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from motcua.devstack import EmbeddedPostgres
from shared.consumer import is_infrastructure_error
from shared.db import Database
from tests.support.platform import namespace, service_database


async def _deadlock(db: Database) -> BaseException:
    """Two transactions that update rows 1 and 2 in opposite orders; the error Postgres gives the loser."""
    async with db.unit_of_work() as tx:
        await tx.session.execute(text("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)"))
        await tx.session.execute(text("INSERT INTO counters VALUES (1, 0), (2, 0)"))
    both_hold_one = asyncio.Barrier(2)

    async def replica(first: int, second: int) -> None:
        async with db.unit_of_work() as tx:
            await tx.session.execute(text("UPDATE counters SET n = n + 1 WHERE id = :id"), {"id": first})
            await both_hold_one.wait()
            await tx.session.execute(text("UPDATE counters SET n = n + 1 WHERE id = :id"), {"id": second})

    outcomes = await asyncio.gather(replica(1, 2), replica(2, 1), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1, outcomes  # one transaction lost, the other committed
    return failures[0]


async def test_a_deadlock_is_waited_out_not_counted(postgres: EmbeddedPostgres) -> None:
    db = await service_database(postgres, "workflow", namespace())
    try:
        error = await _deadlock(db)
    finally:
        await db.dispose()
    assert isinstance(error, DBAPIError) and "deadlock detected" in str(error), repr(error)
    assert is_infrastructure_error(error)


@pytest.mark.parametrize("message", ["duplicate key value violates unique constraint"])
async def test_a_constraint_violation_still_counts(postgres: EmbeddedPostgres, message: str) -> None:
    """The other side: a statement that fails on its own data is the event's fault and spends an attempt."""
    db = await service_database(postgres, "workflow", namespace())
    try:
        async with db.unit_of_work() as tx:
            await tx.session.execute(text("CREATE TABLE once (id int PRIMARY KEY)"))
        with pytest.raises(DBAPIError) as raised:
            async with db.unit_of_work() as tx:
                await tx.session.execute(text("INSERT INTO once VALUES (1), (1)"))
    finally:
        await db.dispose()
    assert message in str(raised.value)
    assert not is_infrastructure_error(raised.value)
