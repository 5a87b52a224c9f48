"""The idempotent consumer: inbox row and position in the effect's transaction, Kafka offsets committed after it.

Three outcomes, all visible: success; transient failure retried in place with
capped backoff and jitter (a database or broker outage is waited out, never
dead-lettered); permanent failure (undecodable, unknown type, a PermanentError,
or retries spent) written to ``dead_letters`` and counted.

Where the consumer stands in each partition lives in its own database
(``consumer_positions``), written once per batch in the batch's transaction. On
start and after each rebalance it seeks there; Kafka's committed offset (still
committed, for lag tools) is used only for a partition with no stored position.
A database restored from a backup therefore reads again, and applies once,
everything after its backup point that the broker still holds; a broker that
lost data (a stored position beyond its log, or a group it forgot) is read
again from its log start, the inbox skipping what was applied.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import (
    AIOKafkaConsumer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, IllegalStateError
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import text

from shared.db import Database, UnitOfWork, is_connection_error
from shared.envelope import DecodeError, Envelope, UnknownEventType
from shared.events import Event
from shared.faults import failpoint
from shared.kafka import ensure_topics, make_consumer
from shared.metrics import (
    CONSUMER_LAG,
    CONSUMER_REWINDS,
    DEAD_LETTERS,
    EVENT_LAG,
    EVENT_RETRIES,
    EVENTS_CONSUMED,
    zero_consumer_series,
)
from shared.settings import ServiceSettings
from shared.telemetry import context_from_traceparent, tracer

log = logging.getLogger("motcua.consumer")

Handler = Callable[[UnitOfWork, Event, Envelope], Awaitable[None]]


class PermanentError(Exception):
    """A handler's verdict that this event can never succeed; it goes to dead letters at once."""


class TransientError(Exception):
    """A handler's verdict that this event may succeed later; retried without spending attempts."""


@dataclass(frozen=True)
class Subscription:
    """What a service listens to: topics (by producer) and a handler per event type."""

    producers: tuple[str, ...]
    handlers: dict[type[Event], Handler]


_INBOX = text(
    """
    INSERT INTO inbox (event_id, type, subject, topic, partition, "offset")
    VALUES (:event_id, :type, :subject, :topic, :partition, :offset)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)
_DEAD = text(
    """
    INSERT INTO dead_letters (event_id, type, subject, topic, partition, "offset", key, headers, payload, error, attempts)
    VALUES (:event_id, :type, :subject, :topic, :partition, :offset, :key, CAST(:headers AS jsonb), :payload, :error, :attempts)
    ON CONFLICT (topic, partition, "offset") DO NOTHING
    """
)


_POSITION = text(
    """
    INSERT INTO consumer_positions (topic, partition, next_offset, updated_at)
    VALUES (:topic, :partition, :next_offset, now())
    ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at
    """
)
_POSITIONS = text("SELECT topic, partition, next_offset FROM consumer_positions WHERE topic = ANY(:topics)")


def _position_of(stored: dict[TopicPartition, int], tp: TopicPartition) -> int | None:
    """Where to start a partition: its stored position; None (Kafka's committed offset) only while none is stored.

    Every batch stores its partition's position, so once this database holds any, a partition without one had
    nothing applied from it when the database was written (a restored backup, taken before the partition's first
    record): it starts at the log start. Only a database that never stored a position (a service upgraded to
    positions) takes over Kafka's committed offsets.
    """
    if tp in stored:
        return stored[tp]
    return 0 if stored else None


def _after(record: ConsumerRecord) -> dict[str, object]:
    """The position row that says ``record`` is settled: its partition's next offset is the one after it."""
    return {"topic": record.topic, "partition": record.partition, "next_offset": record.offset + 1}


class _StoredPositions(ConsumerRebalanceListener):
    """Seeks each partition this consumer is given to the position stored beside the effects."""

    def __init__(self, owner: EventConsumer, consumer: AIOKafkaConsumer) -> None:
        self.owner = owner
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.owner._forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.owner._seek_stored(self.consumer, assigned)


class _FailedAt(Exception):
    """A batch stopped at one record."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"record {index}: {error!r}")
        self.index = index
        self.error = error


def _decode(record: ConsumerRecord) -> tuple[Envelope, Event]:
    """The envelope and typed event of a record; raises DecodeError (or UnknownEventType)."""
    envelope = Envelope.from_kafka(record.value, record.headers)
    return envelope, envelope.event()


def _no_nul(text: str) -> str:
    """Text Postgres can store: a NUL (valid in UTF-8, refused by ``text``) would keep a dead letter from being filed."""
    return text.replace("\x00", "\\x00")


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for failures of the database connection itself (and a handler's TransientError): waited out, not counted.

    A deadlock or serialization failure (SQLSTATE class 40) is Postgres breaking a lock cycle between replicas'
    transactions, not a fault of the event: the same transaction a moment later succeeds, so it is waited out too.
    """
    if isinstance(exc, TransientError | asyncpg.exceptions.TransactionRollbackError) or is_connection_error(exc):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_infrastructure_error(cause)


class EventConsumer:
    """Background loop owned by a service's lifespan."""

    def __init__(self, settings: ServiceSettings, db: Database, subscription: Subscription) -> None:
        self.settings = settings
        self.db = db
        self.subscription = subscription
        self.topics = [settings.topic(p) for p in subscription.producers]
        self.handlers = {model.type: handler for model, handler in subscription.handlers.items()}
        self.connected = False
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._lag_partitions: set[TopicPartition] = set()  # the partitions whose lag gauge this consumer set
        # Per assigned partition: the stored position (None: none stored), loaded on assignment, moved with each batch.
        self._positions: dict[TopicPartition, int | None] = {}
        self._committed_here: dict[TopicPartition, int] = {}  # the last offset this consumer committed to Kafka
        self._rewound: set[TopicPartition] = set()  # read again from the log start, not yet committed to Kafka since
        self._sought: dict[TopicPartition, int] = {}  # where this consumer sought a partition, until its next batch
        self._unverified: set[TopicPartition] = set()  # sought to a stored position; does the broker know the group?
        zero_consumer_series(settings.service, self.handlers)

    async def run(self) -> None:
        """Consume until stopped; reconnect after broker outages."""
        backoff = 0.2
        while not self._stopping.is_set():
            consumer = make_consumer(self.settings, self.topics)
            consumer.subscribe(topics=self.topics, listener=_StoredPositions(self, consumer))
            try:
                await ensure_topics(self.settings, self.topics)
                await consumer.start()
                self._consumer = consumer
                self.connected = True
                backoff = 0.2
                await self._poll(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect on any client failure
                log.warning("consumer failed, reconnecting in %.1fs: %s", backoff, exc)
                await self._pause(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, self.settings.consumer_backoff_max_seconds)
            finally:
                self.connected = False
                self._consumer = None
                try:
                    await consumer.stop()
                except Exception:  # noqa: BLE001 - a broken client may fail to close
                    pass

    async def stop(self) -> None:
        """Ask the loop to finish the record in hand and exit."""
        self._stopping.set()

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        self._sought.clear()
        while not self._stopping.is_set():
            if self._unverified:
                await self._verify_assigned(consumer)
            batches = await consumer.getmany(timeout_ms=500, max_records=self.settings.relay_batch_size)
            for tp, records in batches.items():
                if tp not in consumer.assignment():
                    continue  # revoked since the fetch (a rebalance): its new owner reads it from the group's offset
                if not await self._where_the_group_stands(consumer, tp, records[0].offset):
                    continue
                if not await self._settle(records):
                    return
                if tp in consumer.assignment():
                    self._positions[tp] = records[-1].offset + 1
                if await self._commit(consumer, tp, records[-1].offset + 1):
                    failpoint("consumer.after_offset_commit")
            await self._observe_lag(consumer)

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> bool:
        """Commit a partition's offset; False when a rebalance took the partition away while its batch was applied.

        The batch's effects are committed with their inbox rows, so whoever reads the partition next skips them.
        Treating this as a client failure (reconnecting) would leave and rejoin the group: one more rebalance for
        every member, on top of the one under way. The client rejoins by itself on its next poll.
        """
        try:
            await consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError) as exc:
            log.info("%s: offset %s not committed, the group rebalanced meanwhile: %s", tp, offset, exc)
            return False
        self._committed_here[tp] = offset
        self._rewound.discard(tp)
        return True

    def _forget(self, partitions: set[TopicPartition]) -> None:
        """What this consumer knew of partitions taken away: whoever has them next moves their positions."""
        for tp in partitions:
            self._positions.pop(tp, None)
            self._committed_here.pop(tp, None)
            self._rewound.discard(tp)
            self._sought.pop(tp, None)  # a seek before the rebalance says nothing of the position after it
            self._unverified.discard(tp)

    async def _stored_positions(self) -> dict[TopicPartition, int]:
        """The positions stored in this service's database for its topics; waits for the database (never gives up)."""
        backoff = self.settings.consumer_backoff_initial_seconds
        while True:
            try:
                async with self.db.reading() as tx:
                    found = await tx.session.execute(_POSITIONS, {"topics": self.topics})
                    return {TopicPartition(r.topic, r.partition): r.next_offset for r in found}
            except Exception as exc:  # wait for the database
                if self._stopping.is_set():
                    raise
                log.warning("cannot read the stored positions yet: %s", exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, self.settings.consumer_backoff_max_seconds)

    async def _seek_stored(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        """After a (re)balance: seek each assigned partition to its stored position; the others start where Kafka says.

        Runs inside aiokafka's rebalance. If the database does not answer, nothing is sought here: the first batch of
        each partition is then checked against the stored position (``_where_the_group_stands``) and sought there.
        """
        self._forget(assigned)
        try:
            async with asyncio.timeout(5):
                stored = await self._stored_positions()
        except Exception as exc:  # noqa: BLE001 - checked again batch by batch
            log.warning("positions not sought on assignment (checked at the first batch instead): %r", exc)
            return
        for tp in assigned:
            self._positions[tp] = position = _position_of(stored, tp)
            if position is not None:
                consumer.seek(tp, position)
            if position:
                self._unverified.add(tp)
        log.info("assigned %s; stored positions %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned),
                 {f"{tp.topic}/{tp.partition}": o for tp, o in stored.items() if tp in assigned})  # fmt: skip

    async def _verify_assigned(self, consumer: AIOKafkaConsumer) -> None:
        """Partitions sought to a stored position on assignment, checked once against the group's offsets in Kafka.

        A broker that forgot this group (Tansu restarts empty) may not answer a fetch beyond its new log's end with
        "offset out of range": the consumer would wait at its old position, past records of the new log that never
        come to a batch check. So a stored position the broker knows no committed offset for is read again from the
        log start, as in ``_where_the_group_stands``. Runs in the poll loop, not inside the rebalance callback.
        """
        for tp in list(self._unverified):
            self._unverified.discard(tp)
            if tp not in consumer.assignment() or tp in self._rewound:
                continue
            if await consumer.committed(tp) is not None:
                continue
            start = (await consumer.beginning_offsets([tp]))[tp]
            log.warning("%s: the broker knows no offset of this group but this consumer stood at %s (broker lost "
                        "data?): reading again from %s", tp, self._positions.get(tp), start)  # fmt: skip
            CONSUMER_REWINDS.labels(self.settings.service, "group_forgotten").inc()
            self._rewound.add(tp)
            self._positions[tp] = start
            consumer.seek(tp, start)
            self._sought[tp] = start

    async def _observe_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Set the lag gauge of every assigned partition: its high watermark minus this consumer's position.

        Messages, not seconds (``motcua_event_lag_seconds`` is the time): a backlog that grows while the
        consumer is connected means it cannot keep up. Each fetch response carries the high watermark, so the
        figure is at most one poll (500 ms) old; partitions given to another replica stop being reported here.
        """
        assigned = consumer.assignment()
        for tp in self._lag_partitions - assigned:
            CONSUMER_LAG.remove(self.settings.service, tp.topic, str(tp.partition))
        self._lag_partitions &= assigned
        for tp in assigned:
            try:
                highwater = consumer.highwater(tp)
                # A position being reset (offset out of range) is waited for, but never longer than a poll.
                position = await asyncio.wait_for(consumer.position(tp), 0.5) if highwater is not None else None
            except Exception:  # noqa: BLE001, S112 - a partition being revoked or reset now: the next poll reports it
                continue
            if position is not None:
                CONSUMER_LAG.labels(self.settings.service, tp.topic, str(tp.partition)).set(max(0, highwater - position))
                self._lag_partitions.add(tp)

    async def _settle(self, records: list[ConsumerRecord]) -> bool:
        """Apply one partition's batch in order; False when stopping cut it short (its offset is then not committed).

        Fast path: consecutive well-formed records whose handlers succeed commit together in one transaction
        (one commit instead of one per event). The record that fails, or cannot be decoded, is then settled on
        its own, with its own retries and dead letter, and the rest of the batch goes on after it.
        """
        pending = list(records)
        while pending:
            if self._stopping.is_set():
                return False
            applied, failure = await self._apply_batch(pending) if len(pending) > 1 else (0, None)
            if applied:
                failpoint("consumer.after_db_commit")
                pending = pending[applied:]
            if pending and (failure is not None or not applied):
                await self.handle_record(pending[0], failed_once=failure)
                failpoint("consumer.after_db_commit")
                pending = pending[1:]
        return True

    async def _apply_batch(self, records: list[ConsumerRecord]) -> tuple[int, Exception | None]:
        """Apply the leading records in one transaction; (how many were committed, why the next one was not)."""
        decoded: list[tuple[ConsumerRecord, Envelope, Event]] = []
        failure: Exception | None = None
        for record in records:
            try:
                decoded.append((record, *_decode(record)))
            except DecodeError as exc:
                failure = exc
                break
        while decoded:
            outcomes: list[tuple[Envelope, str]] = []
            try:
                async with self.db.unit_of_work() as tx:
                    for index, (record, envelope, event) in enumerate(decoded):
                        handler = self.handlers.get(envelope.type)
                        if handler is None:
                            outcomes.append((envelope, "ignored"))
                            continue
                        tx.actor = envelope.actor
                        try:
                            outcomes.append((envelope, await self._apply_in(tx, record, envelope, event, handler)))
                        except Exception as exc:
                            raise _FailedAt(index, exc) from exc
                    await tx.session.execute(_POSITION, _after(decoded[-1][0]))  # once per batch, with its effects
            except _FailedAt as failed:
                if self._stopping.is_set():
                    raise failed.error from None
                failure, decoded = failed.error, decoded[: failed.index]  # apply those before it, without it
                continue
            except Exception as exc:  # e.g. the commit itself failed: settle record by record instead
                if self._stopping.is_set():
                    raise
                log.warning("batch of %d records failed (%r): settling them one by one", len(decoded), exc)
                return 0, None
            now = self.db.clock.now()
            for envelope, outcome in outcomes:
                EVENTS_CONSUMED.labels(self.settings.service, envelope.type, outcome).inc()
                if outcome == "applied":
                    EVENT_LAG.labels(self.settings.service, envelope.type).observe(max(0.0, (now - envelope.time).total_seconds()))
            return len(decoded), failure
        return 0, failure

    async def _where_the_group_stands(self, consumer: AIOKafkaConsumer, tp: TopicPartition, first: int) -> bool:
        """Whether a fetched batch starts where this consumer stands; if not, seek there and drop the batch.

        Where it stands: the position stored beside the effects, else the group's committed offset in Kafka, else the
        log start. A broker that lost data is read again from its log start (the inbox skips what was applied), and
        counted: a stored position beyond the partition's end (unclean leader election, a topic recreated, an
        in-memory broker restarted), or a broker that forgot the offsets this group committed (Tansu restarts without
        topics, records or groups). Until a heartbeat tells the client that its group is gone, the client keeps
        fetching from its old position N in the new log: records 0..N-1 would be skipped; hence the check of every
        batch before anything is applied.
        """
        sought = self._sought.pop(tp, None)
        if sought is not None and first >= sought:
            return True  # fetched from where we sought: a later first offset is a gap in the log, not a skip
        if tp not in self._positions:  # not loaded on assignment (the database did not answer then)
            self._positions[tp] = _position_of(await self._stored_positions(), tp)
        stored = self._positions[tp]
        committed = await consumer.committed(tp)
        ours = self._committed_here.get(tp)
        if ours is not None:  # this consumer committed here: the broker must remember it
            forgotten = committed is None or committed < ours
        else:  # a stored position, yet the broker knows no offset of this group (and we did not rewind it already)
            forgotten = bool(stored) and committed is None and tp not in self._rewound
        expected = stored if stored is not None else committed
        if first == expected and not forgotten:
            return True
        start = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if forgotten or (expected is not None and expected > end):
            reason = "group_forgotten" if forgotten else "log_truncated"
            log.warning("%s: the broker lost data (%s: stood at %s, committed %s, log %s..%s): reading again from %s",
                        tp, reason, expected, committed, start, end, start)  # fmt: skip
            CONSUMER_REWINDS.labels(self.settings.service, reason).inc()
            self._rewound.add(tp)
            self._committed_here.pop(tp, None)
            expected = start
        expected = start if expected is None else max(expected, start)
        self._positions[tp] = expected
        if first == expected:
            return True
        log.warning("%s: fetched from offset %s but this consumer stands at %s: seeking there", tp, first, expected)
        consumer.seek(tp, expected)
        self._sought[tp] = expected
        return False

    async def handle_record(self, record: ConsumerRecord, *, failed_once: Exception | None = None) -> None:
        """Apply one record exactly once, or dead-letter it; returns only when it is settled.

        ``failed_once`` is how a batch attempt already failed on this record: it counts as the first attempt.
        """
        try:
            envelope, event = _decode(record)
        except UnknownEventType as exc:
            await self._dead_letter(record, None, exc, attempts=1, reason="unknown_type")
            return
        except DecodeError as exc:
            await self._dead_letter(record, None, exc, attempts=1, reason="undecodable")
            return
        handler = self.handlers.get(envelope.type)
        if handler is None:
            EVENTS_CONSUMED.labels(self.settings.service, envelope.type, "ignored").inc()
            return
        attempts, backoff = 0, self.settings.consumer_backoff_initial_seconds
        if isinstance(failed_once, PermanentError):
            await self._dead_letter(record, envelope, failed_once, attempts=1, reason="permanent")
            return
        if failed_once is not None and not is_infrastructure_error(failed_once):
            attempts = 1
            EVENT_RETRIES.labels(self.settings.service, envelope.type).inc()
            if attempts >= self.settings.consumer_max_attempts:
                await self._dead_letter(record, envelope, failed_once, attempts=attempts, reason="retries_spent")
                return
        while True:
            try:
                outcome = await self._apply(record, envelope, event, handler)
                EVENTS_CONSUMED.labels(self.settings.service, envelope.type, outcome).inc()
                return
            except PermanentError as exc:
                await self._dead_letter(record, envelope, exc, attempts=attempts + 1, reason="permanent")
                return
            except Exception as exc:  # noqa: BLE001 - classified below
                if self._stopping.is_set():
                    raise
                infrastructure = is_infrastructure_error(exc)
                if not infrastructure:
                    attempts += 1
                    if attempts >= self.settings.consumer_max_attempts:
                        await self._dead_letter(record, envelope, exc, attempts=attempts, reason="retries_spent")
                        return
                EVENT_RETRIES.labels(self.settings.service, envelope.type).inc()
                log.warning("event %s (%s) failed, retrying in %.2fs: %r", envelope.id, envelope.type, backoff, exc)
                await self._pause(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, self.settings.consumer_backoff_max_seconds)

    async def _apply(self, record: ConsumerRecord, envelope: Envelope, event: Event, handler: Handler) -> str:
        """One record in its own transaction."""
        async with self.db.unit_of_work(actor=envelope.actor) as tx:
            outcome = await self._apply_in(tx, record, envelope, event, handler)
            await tx.session.execute(_POSITION, _after(record))
        if outcome == "applied":
            EVENT_LAG.labels(self.settings.service, envelope.type).observe(
                max(0.0, (self.db.clock.now() - envelope.time).total_seconds())
            )
        return outcome

    async def _apply_in(self, tx: UnitOfWork, record: ConsumerRecord, envelope: Envelope, event: Event, handler: Handler) -> str:
        """Inbox row, then the effect, inside the caller's transaction, under a consumer span continuing the producer's trace."""
        parent = context_from_traceparent(envelope.traceparent)
        with tracer().start_as_current_span(
            f"{envelope.type} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.message.id": envelope.id,
                "messaging.kafka.message.key": envelope.subject,
                "messaging.consumer.group.name": self.settings.consumer_group,
                "motcua.service": self.settings.service,
            },
        ) as span:
            try:
                fresh = await tx.session.execute(
                    _INBOX,
                    {
                        "event_id": envelope.id,
                        "type": envelope.type,
                        "subject": envelope.subject,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                    },
                )
                if fresh.first() is None:
                    return "duplicate"
                await handler(tx, event, envelope)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR))
                raise
        return "applied"

    async def _dead_letter(
        self, record: ConsumerRecord, envelope: Envelope | None, exc: BaseException, *, attempts: int, reason: str
    ) -> None:
        """Record the poison event; retried until the database takes it."""
        headers = {k: base64.b64encode(v).decode() for k, v in (record.headers or ())}
        try:
            payload = (record.value or b"").decode()
            if "\x00" in payload:  # valid UTF-8, but Postgres text cannot hold NUL
                raise UnicodeDecodeError("utf-8", b"\x00", 0, 1, "NUL")
        except UnicodeDecodeError:
            payload = "base64:" + base64.b64encode(record.value or b"").decode()
        values = {
            "event_id": _no_nul(envelope.id) if envelope else None,
            "type": _no_nul(envelope.type) if envelope else None,
            "subject": _no_nul(envelope.subject if envelope else (record.key or b"").decode(errors="replace")),
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": _no_nul((record.key or b"").decode(errors="replace")),
            "headers": json.dumps(headers),
            "payload": payload[:1_000_000],
            "error": _no_nul(f"{type(exc).__name__}: {exc}")[:4000],
            "attempts": attempts,
        }
        backoff = self.settings.consumer_backoff_initial_seconds
        while True:
            try:
                async with self.db.unit_of_work() as tx:
                    await tx.session.execute(_DEAD, values)
                    await tx.session.execute(_POSITION, _after(record))
                break
            except Exception as db_exc:  # noqa: BLE001 - wait for the database
                if self._stopping.is_set():
                    raise
                log.warning("cannot write dead letter yet: %s", db_exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, self.settings.consumer_backoff_max_seconds)
        DEAD_LETTERS.labels(self.settings.service, reason).inc()
        log.error("dead letter %s/%s@%s: %s", record.topic, record.partition, record.offset, values["error"])

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass
