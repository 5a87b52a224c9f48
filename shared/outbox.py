"""The outbox relay: publishes committed outbox rows to Kafka, in order, from one active relay per database."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from shared.db import OUTBOX_CHANNEL, Database, asyncpg_dsn
from shared.kafka import ensure_topics, make_producer
from shared.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    RELAY_ERRORS,
    zero_relay_series,
)
from shared.settings import ServiceSettings

log = logging.getLogger("motcua.outbox")

# Any constant works as long as every relay of one database uses the same one.
RELAY_LOCK_KEY = 0x6D6F7463_7561  # "motcua"

_CLAIM = text(
    """
    SELECT id, event_id::text AS event_id, topic, key, type, payload::text AS payload, headers
    FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
    """
)
_MARK_SENT = text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)")
_BACKLOG = text(
    "SELECT count(*), EXTRACT(EPOCH FROM (now() - min(created_at))) FROM outbox WHERE sent_at IS NULL"
)
_PURGE = text("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < now() - CAST(:keep AS interval)")


class OutboxRelay:
    """Background loop owned by a service's lifespan."""

    def __init__(self, settings: ServiceSettings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.is_leader = False
        self.connected = False
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        zero_relay_series(settings.service)

    async def run(self) -> None:
        """Hold the relay lock and publish until stopped; survive database and broker outages."""
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._lead()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is retried, none is fatal
                RELAY_ERRORS.labels(self.settings.service).inc()
                log.warning("relay round failed, retrying in %.1fs: %s", backoff, exc)
                self.is_leader = False
                await self._pause(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, self.settings.consumer_backoff_max_seconds)
        await self._close_producer()

    async def stop(self) -> None:
        """Ask the loop to finish its round and exit."""
        self._stopping.set()
        self._wake.set()

    async def _lead(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.db.url))
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK_KEY):
                self.is_leader = False
                await self._sleep(self.settings.relay_poll_seconds)
                if self._stopping.is_set():
                    return
            self.is_leader = True
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
            log.info("relay holds the outbox lock")
            last_housekeeping = 0.0
            loop = asyncio.get_running_loop()
            while not self._stopping.is_set():
                if conn.is_closed():
                    raise ConnectionError("lock connection lost")
                self._wake.clear()
                sent = await self._publish_batch()
                if loop.time() - last_housekeeping > 1.0:
                    await self._housekeeping()
                    last_housekeeping = loop.time()
                if sent < self.settings.relay_batch_size:
                    await self._sleep(self.settings.relay_poll_seconds)
        finally:
            self.is_leader = False
            if not conn.is_closed():
                await conn.close()

    async def _producer_ready(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self.settings)
            try:
                await producer.start()
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
            self.connected = True
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        if producer is not None:
            try:
                await producer.stop()
            except Exception:  # noqa: BLE001 - closing a broken producer may fail; nothing to keep
                pass

    async def _publish_batch(self) -> int:
        async with self.db.sessions() as session, session.begin():
            rows = (await session.execute(_CLAIM, {"limit": self.settings.relay_batch_size})).mappings().all()
            if not rows:
                return 0
            producer = await self._producer_ready()
            try:
                # A restarted in-memory broker (Tansu) has lost its topics, yet it acknowledges writes to them and
                # drops them. So no batch goes out on metadata from before an outage: fresh metadata first (it fails
                # while the broker is away; on Tansu it re-creates the topics we write to).
                if not await producer.client.force_metadata_update():
                    raise ConnectionError("the broker does not answer metadata requests")
                await self._send_all(producer, rows)
            except Exception:
                await self._close_producer()
                await ensure_topics(self.settings, sorted({r["topic"] for r in rows}))
                raise
            await session.execute(_MARK_SENT, {"ids": [r["id"] for r in rows]})
        for row in rows:
            EVENTS_PUBLISHED.labels(self.settings.service, row["topic"]).inc()
        return len(rows)

    async def _send_all(self, producer: AIOKafkaProducer, rows: list) -> None:
        """Send in id order; aiokafka keeps one request in flight per partition, so order holds."""
        futures = []
        for row in rows:
            h = row["headers"]
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", row["event_id"].encode()),
                ("ce_type", row["type"].encode()),
                ("ce_source", h["source"].encode()),
                ("ce_subject", h["subject"].encode()),
                ("ce_time", h["time"].encode()),
                ("content-type", b"application/json; charset=utf-8"),
            ]
            if h.get("traceparent"):
                headers.append(("traceparent", h["traceparent"].encode()))
            if h.get("actor"):
                headers.append(("ce_actor", h["actor"].encode()))
            futures.append(
                await producer.send(row["topic"], value=row["payload"].encode(), key=row["key"].encode(), headers=headers)
            )
        await asyncio.gather(*futures)

    async def _housekeeping(self) -> None:
        """Backlog metrics and purging of old sent rows; a failure here never stops publishing."""
        try:
            async with self.db.sessions() as session, session.begin():
                count, age = (await session.execute(_BACKLOG)).one()
                await session.execute(_PURGE, {"keep": timedelta(hours=self.settings.outbox_retention_hours)})
        except Exception as exc:  # noqa: BLE001 - reported; the next round tries again
            log.warning("outbox housekeeping failed: %s", exc)
            return
        OUTBOX_BACKLOG.labels(self.settings.service).set(count or 0)
        OUTBOX_OLDEST_AGE.labels(self.settings.service).set(float(age or 0))

    async def _pause(self, seconds: float) -> None:
        """Back off, waking early only to stop."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
