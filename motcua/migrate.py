"""Migrate a service's database by name: Alembic with the service's script directory from the registry.

The platform part every service's ``migrations/env.py`` uses (``run_env``, ``create_platform_tables``)
is in ``shared.migrate``.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from motcua.registry import service as registered


def alembic_config(service: str, database_url: str) -> Config:
    """Alembic configuration of one service."""
    cfg = Config()
    cfg.set_main_option("script_location", str(registered(service).migrations_path))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Migrate one service's database (call from a thread when an event loop runs)."""
    command.upgrade(alembic_config(service, database_url), revision)


def head_revisions(service: str) -> set[str]:
    """The revisions the code expects: the heads of the service's migration scripts."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config(service, "postgresql://unused")).get_heads())


async def database_revisions(database_url: str) -> set[str]:
    """The revisions a database is at (``alembic_version``); empty when it was never migrated."""
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(database_url, poolclass=NullPool, connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            try:
                rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            except ProgrammingError:  # no alembic_version table yet: the migration has not run
                return set()
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def wait_for_head(service: str, database_url: str, *, timeout: float, interval: float = 2.0) -> float:
    """Until the database is at the code's head revision, migrating nothing; the seconds waited.

    TimeoutError after ``timeout`` seconds, saying which revision the database is at (or why it could not be read)
    and which the code needs. An init container runs this so a pod never starts before its schema.
    """
    import asyncio
    import time

    wanted = head_revisions(service)
    started = time.monotonic()
    while True:
        try:
            found = await database_revisions(database_url)
            state = f"at {', '.join(sorted(found))}" if found else "not migrated (no alembic_version)"
        except Exception as exc:  # noqa: BLE001 - the database may not accept connections yet: keep waiting
            found, state = set(), f"unreachable ({type(exc).__name__}: {exc})"
        if found == wanted:
            return time.monotonic() - started
        if time.monotonic() - started >= timeout:
            raise TimeoutError(
                f"{service}: the database is {state}, the code needs {', '.join(sorted(wanted))}; "
                f"gave up after {timeout:g}s (has the migration Job run?)"
            )
        await asyncio.sleep(interval)
