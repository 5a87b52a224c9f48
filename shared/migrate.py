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



def create_replay_table() -> None:
    """The table of signed callbacks already seen (``shared.webhooks``), in a service that takes callbacks."""
    op.create_table(
        "webhook_replays",
        sa.Column("signature", sa.String(128), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def create_recovery_tables() -> None:
    """The platform tables of issue #20, the same in every service's database.

    consumer_positions: where each consumer stands in each partition, written in the transaction of the effects
    (shared/consumer.py). Filled in by the recovery work; each service's ``*_recovery`` migration calls this.
    """
    create_position_tables()
    create_drift_tables()


def drop_recovery_tables() -> None:
    """Undo ``create_recovery_tables``."""
    drop_drift_tables()
    drop_position_tables()


def create_position_tables() -> None:
    """consumer_positions and relay_acks: where a consumer stands, and what the broker acknowledged to the relay.

    consumer_positions: the next offset to apply per partition, upserted once per batch in the transaction of the
    batch's inbox rows and effects, so a database restored from a backup knows where it stood at the backup.
    relay_acks: the highest offset the broker acknowledged per partition (and the cluster that did), so the relay
    notices a broker that lost acknowledged records (shared/outbox.py).
    """
    op.create_table(
        "consumer_positions",
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "relay_acks",
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("acked_offset", sa.BigInteger, nullable=False),
        sa.Column("cluster_id", sa.Text),
        sa.Column("lost", sa.Boolean, nullable=False, server_default=sa.false()),  # the log was seen going backwards
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def drop_position_tables() -> None:
    """Undo ``create_position_tables``."""
    op.drop_table("relay_acks")
    op.drop_table("consumer_positions")


def create_drift_tables() -> None:
    """The drift check's tables (shared/drift.py).

    drift_manifest_cursor: the producer side, one row: the last outbox row announced and when the recent days were
    last announced again. drift_expected: the consumer side, what the producers' manifests announced of the types this
    service handles, compared with ``inbox`` and ``dead_letters`` (found by event id, hence that index).
    """
    op.create_table(
        "drift_manifest_cursor",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("last_outbox_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reannounced_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("id = 1", name="drift_manifest_cursor_one_row"),
    )
    op.create_table(
        "drift_expected",
        sa.Column("producer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("outbox_id", sa.BigInteger, nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # Found in the inbox once (it stays there): later checks look up only the events not yet seen applied.
        sa.Column("applied", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("drift_expected_day", "drift_expected", ["producer", "day"])
    op.create_index("drift_expected_open", "drift_expected", ["event_id"], postgresql_where=sa.text("NOT applied"))
    op.create_index("drift_expected_announced", "drift_expected", ["announced_at"])
    op.create_index("dead_letters_event_id", "dead_letters", ["event_id"])


def drop_drift_tables() -> None:
    """Undo ``create_drift_tables``."""
    op.drop_index("dead_letters_event_id", table_name="dead_letters")
    op.drop_table("drift_expected")
    op.drop_table("drift_manifest_cursor")


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

