"""The unit of work's hooks and reading transactions, against the real Postgres.

Every service's routes own their transaction; what a use case must do beside it (drop a cached row once the
change is committed, delete a blob the failed transaction created) rides on these hooks.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from services.intake.store import CalendarDay

from motcua.devstack import EmbeddedPostgres
from shared.events import CalendarDayForgotten
from tests.support.platform import namespace, service_database


class Boom(Exception):
    """The use case failed."""


async def test_hooks_follow_the_outcome_of_the_transaction(postgres: EmbeddedPostgres) -> None:
    db = await service_database(postgres, "intake", namespace())
    seen: list[str] = []

    async def undo() -> None:
        seen.append("undone")

    try:
        async with db.unit_of_work() as tx:
            await tx.session.execute(text("CREATE TABLE kept (id int PRIMARY KEY)"))
            tx.after_commit(lambda: seen.append("committed"))
            tx.after_rollback(undo)
        assert seen == ["committed"]

        seen.clear()
        with pytest.raises(Boom):
            async with db.unit_of_work() as tx:
                await tx.session.execute(text("INSERT INTO kept VALUES (1)"))
                tx.after_commit(lambda: seen.append("committed"))
                tx.after_rollback(undo)
                raise Boom
        assert seen == ["undone"]
        async with db.reading() as tx:
            assert (await tx.session.execute(text("SELECT count(*) FROM kept"))).scalar_one() == 0
    finally:
        await db.dispose()


async def test_a_failing_undo_does_not_hide_the_use_cases_error(postgres: EmbeddedPostgres) -> None:
    db = await service_database(postgres, "intake", namespace())
    seen: list[str] = []

    async def broken() -> None:
        raise RuntimeError("file store away")

    async def second() -> None:
        seen.append("second undo ran")

    try:
        with pytest.raises(Boom):
            async with db.unit_of_work() as tx:
                tx.after_rollback(broken)
                tx.after_rollback(second)
                raise Boom
    finally:
        await db.dispose()
    assert seen == ["second undo ran"]


async def test_a_reading_transaction_writes_nothing_and_its_rows_stay_readable(postgres: EmbeddedPostgres) -> None:
    db = await service_database(postgres, "intake", namespace())
    day = date(2026, 12, 31)
    try:
        async with db.unit_of_work() as tx:
            await tx.session.execute(text("CREATE TABLE notes (id int PRIMARY KEY, body text)"))
            await tx.session.execute(text("INSERT INTO notes VALUES (1, 'Đã tiếp nhận')"))
            tx.session.add(CalendarDay(province="H56", day=day, working=False, note="Nghỉ bù", changed_by="a", changed_at=tx.now))
        async with db.reading() as tx:
            declared = await tx.session.get(CalendarDay, ("H56", day))
        assert declared is not None and declared.note == "Nghỉ bù"  # an ORM row, read after its transaction ended
        async with db.reading() as tx:
            await tx.session.execute(text("UPDATE notes SET body = 'changed'"))
            row = (await tx.session.execute(text("SELECT body FROM notes"))).one()
        assert row.body == "changed"  # seen inside its own transaction ...
        async with db.reading() as tx:
            assert (await tx.session.execute(text("SELECT body FROM notes"))).scalar_one() == "Đã tiếp nhận"  # ... never kept
            with pytest.raises(RuntimeError, match="emits no event"):
                await tx.emit(CalendarDayForgotten(province="H56", day=tx.now.date(), occurred_at=tx.now, forgotten_by="a"))
            assert (await tx.session.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 0
    finally:
        await db.dispose()
