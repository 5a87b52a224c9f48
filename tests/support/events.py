"""Builders for events and raw Kafka records, and a plain producer/reader for tests that talk to the broker directly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.envelope import Envelope
from shared.events import DossierReceived, DossierSupplemented, DossierWithdrawn, Event

Headers = list[tuple[str, bytes]]


def dossier_code(unit: str | None = None) -> str:
    """A dossier code nobody else uses, in the ``<unit>-<yymmdd>-<nnnn>`` shape."""
    unit = unit or f"000.00.{uuid.uuid4().int % 100:02d}.T{uuid.uuid4().hex[:6].upper()}"
    return f"{unit}-{datetime.now(UTC):%y%m%d}-{uuid.uuid4().int % 10_000:04d}"


def unit_of(code: str) -> str:
    """The unit part of a dossier code."""
    return code.rsplit("-", 2)[0]


def dossier_received(code: str, **overrides: Any) -> DossierReceived:
    """A ``dossier.received`` fact for the dossier, at the counter, due in five days."""
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "dossier_code": code,
        "unit": unit_of(code),
        "occurred_at": now,
        "procedure_code": "1.004194",
        "procedure_name": "Đăng ký khai sinh",
        "applicant_name": "Trần Văn Bình",
        "channel": "counter",
        "received_at": now,
        "appointment_at": now + timedelta(days=5),
        "received_by": "clerk-test",
    }
    return DossierReceived(**{**fields, **overrides})


def dossier_supplemented(code: str) -> DossierSupplemented:
    """The applicant handed in additions."""
    now = datetime.now(UTC)
    return DossierSupplemented(dossier_code=code, unit=unit_of(code), occurred_at=now, supplemented_at=now)


def dossier_withdrawn(code: str, reason: str = "người nộp rút hồ sơ") -> DossierWithdrawn:
    """The applicant withdrew the dossier."""
    return DossierWithdrawn(dossier_code=code, unit=unit_of(code), occurred_at=datetime.now(UTC), reason=reason)


def envelope(event: Event, *, source: str | None = None) -> Envelope:
    """The event wrapped as its producer would publish it (fresh id)."""
    return Envelope.wrap(
        event, source=source or f"/motcua/{event.producer}", time=datetime.now(UTC), traceparent=None, actor=None
    )


class RawProducer:
    """A plain aiokafka producer (no idempotence: Tansu refuses it) that sends what it is given, byte for byte."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=False, acks="all")

    async def send(self, topic: str, *, key: str, value: bytes | None, headers: Headers | None = None) -> None:
        """One record, acknowledged by the broker before this returns."""
        await self._producer.send_and_wait(topic, value=value, key=key.encode(), headers=headers or [])

    async def send_envelope(self, topic: str, env: Envelope) -> None:
        """One CloudEvent in binary mode, keyed by its dossier."""
        await self.send(topic, key=env.subject, value=env.kafka_value(), headers=env.kafka_headers())


@asynccontextmanager
async def raw_producer(bootstrap_servers: str) -> AsyncIterator[RawProducer]:
    """A started RawProducer, stopped on exit."""
    producer = RawProducer(bootstrap_servers)
    await producer._producer.start()
    try:
        yield producer
    finally:
        await producer._producer.stop()


async def read_topic(bootstrap_servers: str, topic: str, *, until: int, timeout_ms: int = 20_000) -> list[ConsumerRecord]:
    """Every record of a topic from the beginning (no consumer group), once ``until`` records are there or time is up."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest")
    await reader.start()
    try:
        partitions = await _partitions(reader, topic)
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        waited = 0
        while len(records) < until and waited < timeout_ms:
            batches = await reader.getmany(timeout_ms=200)
            waited += 200 if not batches else 0
            for batch in batches.values():
                records.extend(batch)
        # whatever is there beyond ``until`` counts too (a duplicate must not hide)
        for batch in (await reader.getmany(timeout_ms=500)).values():
            records.extend(batch)
        return records
    finally:
        await reader.stop()


async def _partitions(reader: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(50):
        await reader.topics()  # a fresh metadata request: the topic may have been created a moment ago
        found = reader.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} has no partitions")


def header(record: ConsumerRecord, name: str) -> str | None:
    """A record header as text."""
    for key, value in record.headers or ():
        if key == name:
            return value.decode()
    return None
