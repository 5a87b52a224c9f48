"""``motcua migrate <service> --wait`` (the init container): waits for the schema, never migrates, says why it gave up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

from motcua.devstack import EmbeddedPostgres
from motcua.migrate import database_revisions, head_revisions, upgrade


def _wait(database_url: str, timeout: float) -> subprocess.Popen[str]:
    env = {**os.environ, "ENVIRONMENT": "test", "INTAKE_DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "motcua.cli", "migrate", "intake", "--wait", "--timeout", str(timeout)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _database(postgres: EmbeddedPostgres) -> str:
    name = f"motcua_intake_wait_{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(name)
    return postgres.dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)


async def test_it_gives_up_with_the_reason_and_migrates_nothing(postgres: EmbeddedPostgres) -> None:
    url = _database(postgres)
    process = _wait(url, timeout=3)
    out, err = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 1, (out, err)
    (head,) = head_revisions("intake")
    assert "intake: the database is not migrated (no alembic_version)" in err and head in err, err
    assert await database_revisions(url) == set(), "--wait migrated nothing"


async def test_it_returns_once_the_migration_has_run(postgres: EmbeddedPostgres) -> None:
    url = _database(postgres)
    process = _wait(url, timeout=120)
    await asyncio.sleep(3)
    assert process.poll() is None, "still waiting while the database has no schema"
    await asyncio.to_thread(upgrade, "intake", url)  # the migration Job
    out, err = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 0, (out, err)
    assert "intake: schema at the code's head" in out
    assert await database_revisions(url) == head_revisions("intake")


async def test_an_older_schema_is_not_enough(postgres: EmbeddedPostgres) -> None:
    url = _database(postgres)
    first = await asyncio.to_thread(_first_revision)
    await asyncio.to_thread(upgrade, "intake", url, first)
    process = _wait(url, timeout=3)
    out, err = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 1, (out, err)
    assert f"the database is at {first}" in err, err
    assert await database_revisions(url) == {first}


def _first_revision() -> str:
    from alembic.script import ScriptDirectory

    from motcua.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("intake", "postgresql://unused"))
    (base,) = script.get_bases()
    return base
