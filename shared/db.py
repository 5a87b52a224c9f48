"""Async engine and the unit of work: a state change and its outbox rows commit together."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.clock import Clock
from shared.envelope import Envelope
from shared.events import Fact
from shared.telemetry import current_traceparent

log = logging.getLogger("motcua.db")

OUTBOX_CHANNEL = "motcua_outbox"

# The row and the relay's wake-up in one statement (one round trip fewer per transaction than a NOTIFY before the
# commit). Postgres delivers a transaction's notifications at its commit, none after a rollback, and one of each
# channel and payload however many rows signalled it.
_INSERT_OUTBOX = text(
    f"""
    WITH written AS (
        INSERT INTO outbox (event_id, topic, key, type, payload, headers, created_at)
        VALUES (CAST(:event_id AS uuid), :topic, :key, :type, CAST(:payload AS jsonb), CAST(:headers AS jsonb), :created_at)
        RETURNING 1
    )
    SELECT pg_notify('{OUTBOX_CHANNEL}', '') FROM written
    """
)


# What asyncpg raises when the server refuses or drops the connection itself (a restart, a shutdown, a failover):
# the same statement a moment later may well succeed, so callers wait (consumers) or answer 503 (HTTP).
_SERVER_GOING_AWAY = (
    asyncpg.PostgresConnectionError,  # the connection broke or was refused (08xxx)
    asyncpg.exceptions.CannotConnectNowError,  # "the database system is starting up / shutting down" (57P03)
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


def is_connection_error(exc: BaseException) -> bool:
    """True when the database connection failed, not the statement: the server is away, restarting or cut us off.

    SQLAlchemy wraps asyncpg's errors; a refused connection during a restart ("the database system is shutting
    down") arrives as a plain ``DBAPIError`` that is neither an ``OperationalError`` nor marked invalidated, so
    the whole cause chain is looked at.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, ConnectionError, InterfaceError, *_SERVER_GOING_AWAY)):
            return True
        if isinstance(current, DBAPIError) and (current.connection_invalidated or isinstance(current, OperationalError)):
            return True
        current = current.__cause__ or current.__context__
    return False


def asyncpg_dsn(url: str) -> str:
    """The same URL as asyncpg itself takes it (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    """The same URL with the asyncpg driver named for SQLAlchemy."""
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+asyncpg://", 1)
    if url.startswith("postgres://"):
        return url.replace("postgres://", "postgresql+asyncpg://", 1)
    return url


class Database:
    """One service's database: engine, sessions and units of work."""

    def __init__(self, url: str, *, service: str, namespace: str, clock: Clock, pool_size: int = 10) -> None:
        self.url = sqlalchemy_url(url)
        self.service = service
        self.namespace = namespace
        self.clock = clock
        # No pre-ping: it costs a round trip per checkout. After a database restart the pool is invalidated on the
        # first disconnect error; that request gets a 503 problem and the consumer retries (see errors.py, consumer.py).
        self.engine: AsyncEngine = create_async_engine(
            self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False, pool_recycle=1800
        )
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    def unit_of_work(self, *, actor: str | None = None) -> UnitOfWork:
        """A new transaction for one command or one consumed event."""
        return UnitOfWork(self, actor=actor)

    def reading(self) -> UnitOfWork:
        """A transaction for a query: it writes nothing and emits nothing, and ends with a rollback."""
        return UnitOfWork(self, actor=None, read_only=True)

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


class UnitOfWork:
    """``async with db.unit_of_work() as tx``: commits on success, rolls back on error."""

    def __init__(self, db: Database, *, actor: str | None, read_only: bool = False) -> None:
        self.db = db
        self.actor = actor
        self.read_only = read_only
        self.session: AsyncSession = db.sessions()
        self.emitted: list[Envelope] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self._after_rollback: list[Callable[[], Awaitable[None]]] = []
        self._after_commit: list[Callable[[], None]] = []

    def before_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` once, in this transaction, just before it commits (not when it rolls back).

        For writes a handler accumulates over every event of a consumer's batch and makes once at the end, in an order
        of its choosing (reporting's roll-up: one lock order for every replica, one statement per table).
        """
        self._before_commit.append(hook)

    def after_rollback(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` once after this transaction rolled back (not when it commits), outside it.

        For side effects outside the database that the transaction's rows would have owned, such as the blobs
        digitization puts into its file store: a failed request deletes what it created. Hooks run in the order
        registered; each runs even when an earlier one raised, and the transaction's own error is what propagates.
        """
        self._after_rollback.append(hook)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once this transaction has committed (not when it rolls back).

        For what must follow the commit and never precede it: a per-process cache dropping what the transaction
        changed, so no other request caches the old rows again between the drop and the commit.
        """
        self._after_commit.append(hook)

    @property
    def now(self) -> datetime:
        """The service clock's now: one source of time for every row and event of a use case."""
        return self.db.clock.now()

    async def __aenter__(self) -> UnitOfWork:
        await self.session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        committed = False
        try:
            if exc_type is None and not self.read_only:
                for hook in self._before_commit:
                    await hook()
                await self.session.commit()
                committed = True
            else:
                if self.read_only:
                    self.session.expunge_all()  # what a query loaded stays readable after its transaction ends
                await self.session.rollback()
        finally:
            await self.session.close()
            if committed:
                for hook in self._after_commit:
                    hook()
            else:
                for undo in self._after_rollback:
                    try:
                        await undo()
                    except Exception:  # noqa: BLE001 - an undo's failure must not hide the transaction's own error
                        log.exception("after-rollback hook failed")

    async def emit(self, event: Fact) -> Envelope:
        """Write the event to the outbox inside this transaction."""
        if self.read_only:
            raise RuntimeError("a reading transaction emits no event")
        envelope, row = self._outbox_row(event)
        await self.session.execute(_INSERT_OUTBOX, row)
        self.emitted.append(envelope)
        return envelope

    async def emit_many(self, events: list[Fact], *, batch: int = 2_000) -> list[Envelope]:
        """Write the events to the outbox inside this transaction, a batch per statement (a register import's
        thousands of ``dossier.imported``), in order."""
        if self.read_only:
            raise RuntimeError("a reading transaction emits no event")
        rows, envelopes = [], []
        for event in events:
            envelope, row = self._outbox_row(event)
            rows.append(row)
            envelopes.append(envelope)
        for start in range(0, len(rows), batch):
            await self.session.execute(_INSERT_OUTBOX, rows[start:start + batch])
        self.emitted.extend(envelopes)
        return envelopes

    def _outbox_row(self, event: Fact) -> tuple[Envelope, dict[str, Any]]:
        envelope = Envelope.wrap(
            event,
            source=f"/motcua/{self.db.service}",
            time=self.db.clock.now(),
            traceparent=current_traceparent(),
            actor=self.actor,
        )
        headers: dict[str, Any] = {"source": envelope.source, "subject": envelope.subject, "time": envelope.time.isoformat()}
        if envelope.traceparent:
            headers["traceparent"] = envelope.traceparent
        if envelope.actor:
            headers["actor"] = envelope.actor
        return envelope, {
            "event_id": envelope.id,
            "topic": f"{self.db.namespace}.{event.producer}",
            "key": envelope.subject,
            "type": envelope.type,
            "payload": json.dumps(envelope.data, ensure_ascii=False),
            "headers": json.dumps(headers, ensure_ascii=False),
            "created_at": envelope.time,
        }
