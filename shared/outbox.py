"""The outbox relay: publishes committed outbox rows to Kafka, in order, from one active relay per database.

Sent rows stay ``OUTBOX_RETENTION_HOURS``, so they can be published again (``replay``): asked for by an operator
(``motcua outbox replay``, ``POST /api/v1/admin/outbox/replay``), or started by the relay itself when the broker
lost records it had acknowledged (``RELAY_AUTO_REPLAY``). Consumers' inboxes make a second delivery harmless.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from datetime import datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.structs import RecordMetadata
from sqlalchemy import text

from shared.db import OUTBOX_CHANNEL, Database, asyncpg_dsn
from shared.kafka import ensure_topics, make_producer
from shared.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    OUTBOX_REPLAYED_ROWS,
    OUTBOX_REPLAYS,
    RELAY_BROKER_DATA_LOST,
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
# Per partition, the first offset the broker acknowledged in the newest relay batch that wrote there (not the last one:
# Tansu reports a partition's end as its last record batch's base offset + 1, so the last offset would look lost).
# The cluster id is the one of the first acknowledgement since the last replay, so a cluster that changed stays
# visible until a replay resets the table; ``lost`` marks a partition whose log was seen going backwards (a batch
# acknowledged at or below an earlier one: the broker lost the records in between), also until a replay.
_ACK = text(
    """
    INSERT INTO relay_acks (topic, partition, acked_offset, cluster_id, updated_at)
    SELECT a.topic, a.partition, a.acked, :cluster_id, now()
    FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]), CAST(:offsets AS bigint[])) AS a(topic, partition, acked)
    ON CONFLICT (topic, partition) DO UPDATE
    SET lost = relay_acks.lost OR EXCLUDED.acked_offset <= relay_acks.acked_offset,
        acked_offset = GREATEST(relay_acks.acked_offset, EXCLUDED.acked_offset), updated_at = EXCLUDED.updated_at
    RETURNING lost
    """
)
_ACKS = text("SELECT topic, partition, acked_offset, cluster_id, lost FROM relay_acks")
_REQUEUE = text("UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL AND sent_at >= :since")
_REQUEUE_ALL = text("UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL")
_FORGET_ACKS = text("DELETE FROM relay_acks")
_LATEST = -1  # ListOffsets timestamp meaning "the end of the log"


class ReplayRefused(ValueError):
    """A replay window that cannot be honoured (what is wrong is the message)."""


def _acked(results: list[RecordMetadata]) -> dict[tuple[str, int], int]:
    """The first acknowledged offset per partition of one relay batch's send results."""
    first: dict[tuple[str, int], int] = {}
    for meta in results:
        key = (meta.topic, meta.partition)
        first[key] = min(first.get(key, meta.offset), meta.offset)
    return first


async def replay(
    db: Database, service: str, since: datetime | None, *, retention_hours: float, reason: str = "requested"
) -> int:
    """Queue the rows sent since ``since`` (all kept rows when None) to be published again, in id order; how many.

    The relay's normal path sends them again (``sent_at`` back to NULL), in id order with anything not yet sent,
    so each dossier's events keep their order. ``relay_acks`` starts afresh: what the broker acknowledges from now
    on is what the next check compares with. Raises ReplayRefused for a window in the future or older than what
    the outbox keeps (rows sent before then are purged: the replay could not be complete).
    """
    async with db.sessions() as session, session.begin():
        if since is not None:
            if since.tzinfo is None:
                raise ReplayRefused("since: needs a UTC offset, e.g. 2026-12-01T09:00:00+07:00")
            now = (await session.execute(text("SELECT now()"))).scalar_one()
            if since > now:
                raise ReplayRefused(f"since: {since.isoformat()} is in the future (the database's time is {now.isoformat()})")
            kept_from = now - timedelta(hours=retention_hours)
            if since < kept_from:
                raise ReplayRefused(
                    f"since: {since.isoformat()} is before {kept_from.isoformat()}: sent rows are kept "
                    f"OUTBOX_RETENTION_HOURS={retention_hours:g} hours, so older ones are gone and could not be replayed"
                )
            queued = (await session.execute(_REQUEUE, {"since": since})).rowcount
        else:
            queued = (await session.execute(_REQUEUE_ALL)).rowcount
        await session.execute(_FORGET_ACKS)
        await session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
    OUTBOX_REPLAYS.labels(service, reason).inc()
    OUTBOX_REPLAYED_ROWS.labels(service, reason).inc(queued)
    RELAY_BROKER_DATA_LOST.labels(service).set(0)
    log.warning("outbox replay (%s): %d sent rows since %s queued to be published again",
                reason, queued, since.isoformat() if since else "the oldest kept row")  # fmt: skip
    return queued


async def broker_state(producer: AIOKafkaProducer, topics: list[str]) -> tuple[str | None, dict[tuple[str, int], int]]:
    """The cluster id (None when the broker's metadata version has none) and the end offset of every partition.

    Asked of the broker directly: aiokafka's cached metadata keeps neither the cluster id nor end offsets. A topic
    the broker does not have is not created by the question (it ends at 0 for the comparison). Topic ids, which
    would tell a recreated topic apart, need Metadata v10, beyond what aiokafka speaks (v5): a recreated topic is
    seen by its end offset falling below what was acknowledged.
    """
    client = producer.client
    node = client.get_random_node()
    if node is None:
        raise ConnectionError("no broker known")
    metadata = await client.send(node, MetadataRequest(topics, allow_auto_topic_creation=False))
    cluster_id = getattr(metadata, "cluster_id", None)
    by_leader: dict[int, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for error_code, topic, _internal, partitions, *_ in metadata.topics:
        if error_code != 0:
            continue  # no such topic (any more)
        for _error, partition, leader, *_ in partitions:
            by_leader[leader][topic].append((partition, _LATEST))
    ends: dict[tuple[str, int], int] = {}
    for leader, wanted in by_leader.items():
        response = await client.send(leader, OffsetRequest(-1, 0, list(wanted.items())))
        for topic, partitions in response.topics:
            for partition, error_code, *info in partitions:
                if error_code != 0:
                    raise ConnectionError(f"the broker did not give the end of {topic}/{partition} (error {error_code})")
                ends[(topic, partition)] = info[-1] if response.API_VERSION else info[0][0]
    return cluster_id, ends


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
        self._cluster_id: str | None = None
        self._check_now = True  # the broker is checked before anything is sent on a new producer, and periodically
        self._last_check = 0.0
        self._reported: str | None = None  # the loss last logged while automatic replay is off (logged once)
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
                if self._check_now or loop.time() - self._last_check >= self.settings.relay_check_seconds:
                    await self._check_broker()
                    self._last_check = loop.time()
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
                cluster_id, _ = await broker_state(producer, [])  # what the acknowledgements are recorded under
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
            self._cluster_id = cluster_id
            self.connected = True
            self._check_now = True
        return self._producer

    async def _check_broker(self) -> None:
        """Compare the broker with what it acknowledged; replay every kept row if it lost any of it.

        Lost: another cluster id than the one that acknowledged; a partition (or its whole topic) whose end offset
        is at or below the first offset acknowledged in it by the newest relay batch that wrote there (a loss of only
        that batch's later records in a partition is not seen here; the drift check sees it); or a partition whose
        log was seen going backwards when a batch was acknowledged (``lost``: seen even when the new log has grown
        past the old acknowledgements before this check ran). Runs before anything is sent on a new producer (a
        reconnection), then every ``RELAY_CHECK_SECONDS``. With ``RELAY_AUTO_REPLAY=false`` the loss is reported
        (log, ``motcua_relay_broker_data_lost``) and left for an operator's replay.
        """
        async with self.db.sessions() as session:
            acks = (await session.execute(_ACKS)).all()
        if not acks:  # nothing acknowledged since the last replay: nothing to lose (the first send is checked after it)
            RELAY_BROKER_DATA_LOST.labels(self.settings.service).set(0)
            self._check_now = False
            return
        producer = await self._producer_ready()
        cluster_id, ends = await broker_state(producer, sorted({a.topic for a in acks}))
        self._cluster_id = cluster_id
        self._check_now = False
        reason, detail = None, ""
        if cluster_id is not None and any(a.cluster_id is not None and a.cluster_id != cluster_id for a in acks):
            reason, detail = "cluster_changed", f"cluster {cluster_id}, acknowledged by {sorted({a.cluster_id for a in acks})}"
        else:
            lost = [(a.topic, a.partition, a.acked_offset, ends.get((a.topic, a.partition))) for a in acks
                    if a.lost or ends.get((a.topic, a.partition), 0) <= a.acked_offset]  # fmt: skip
            if lost:
                reason = "log_truncated"
                detail = ", ".join(f"{t}/{p} acknowledged up to {o}, ends at {e}" for t, p, o, e in lost[:8])
        if reason is None:
            RELAY_BROKER_DATA_LOST.labels(self.settings.service).set(0)
            return
        RELAY_BROKER_DATA_LOST.labels(self.settings.service).set(1)
        if not self.settings.relay_auto_replay:
            if self._reported != detail:
                log.error("the broker lost acknowledged records (%s: %s); RELAY_AUTO_REPLAY is off: replay with "
                          "'motcua outbox replay' or POST /api/v1/admin/outbox/replay", reason, detail)  # fmt: skip
                self._reported = detail
            return
        log.error("the broker lost acknowledged records (%s: %s): replaying the outbox", reason, detail)
        await replay(self.db, self.settings.service, None, retention_hours=self.settings.outbox_retention_hours,
                     reason=reason)  # fmt: skip

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        self._check_now = True  # whatever the next producer connects to is checked before anything is sent
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
                results = await self._send_all(producer, rows)
            except Exception:
                await self._close_producer()
                await ensure_topics(self.settings, sorted({r["topic"] for r in rows}))
                raise
            await session.execute(_MARK_SENT, {"ids": [r["id"] for r in rows]})
            acked = _acked(results)
            marks = await session.execute(_ACK, {"topics": [t for t, _ in acked], "partitions": [p for _, p in acked],
                                                 "offsets": list(acked.values()), "cluster_id": self._cluster_id})  # fmt: skip
            if any(marks.scalars()):
                self._check_now = True  # the log went backwards: the next round checks (and replays) before sending
        for row in rows:
            EVENTS_PUBLISHED.labels(self.settings.service, row["topic"]).inc()
        return len(rows)

    async def _send_all(self, producer: AIOKafkaProducer, rows: list) -> list[RecordMetadata]:
        """Send in id order (aiokafka keeps one request in flight per partition, so order holds); the acknowledgements."""
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
        return list(await asyncio.gather(*futures))

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
