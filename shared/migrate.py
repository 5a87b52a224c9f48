"""Alembic, the platform part: the env.py body and the platform tables of every service's database.

Migrating a service by name (which service has which migrations) is ``motcua.migrate``.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import sqlalchemy_url


def create_platform_tables() -> None:
    """outbox, inbox and dead_letters: the same three tables in every service's database."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Text),
        sa.Column("type", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("key", sa.Text),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("topic", "partition", "offset", name="dead_letters_record"),
    )



def create_recovery_tables() -> None:
    """The platform tables of issue #20, the same in every service's database.

    consumer_positions: where each consumer stands in each partition, written in the transaction of the effects
    (shared/consumer.py). Filled in by the recovery work; each service's ``*_recovery`` migration calls this.
    """


def drop_recovery_tables() -> None:
    """Undo ``create_recovery_tables``."""


def run_env(target_metadata: sa.MetaData | None = None) -> None:
    """Body of every service's ``migrations/env.py`` (online mode, asyncpg)."""
    url = context.config.get_main_option("sqlalchemy.url")

    def _migrate(connection: sa.Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def _run() -> None:
        engine = create_async_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run())

