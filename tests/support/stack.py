"""Test helpers around the local stack."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import httpx
from aiokafka import AIOKafkaProducer

from motcua.localstack import ServiceProcess, Stack
from shared.envelope import Envelope
from shared.events import Fact

__all__ = ["ServiceProcess", "Stack", "eventually", "official", "produce", "random_unit"]

T = TypeVar("T")


def random_unit() -> str:
    """A unit code no other test uses (QCVN 102 shape)."""
    return f"000.00.{uuid.uuid4().int % 100:02d}.T{uuid.uuid4().hex[:6].upper()}"


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30, interval: float = 0.1) -> T:
    """Poll until the probe returns something truthy; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
        await asyncio.sleep(interval)


def official(stack: Stack, service: str, role: str, unit: str, subject: str | None = None) -> httpx.AsyncClient:
    """A client for one official of one unit (a stable subject, so 'assignee: me' means this person)."""
    return stack.client(service, role, units=[unit], subject=subject, timeout=20)


async def produce(stack: Stack, *events: Fact) -> None:
    """Publish events on their producers' topics as the services would (CloudEvents binary mode, keyed by subject)."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for event in events:
            env = Envelope.wrap(event, source=f"/motcua/{event.producer}", time=datetime.now(UTC), traceparent=None, actor="e2e")
            await producer.send_and_wait(
                stack.topic(event.producer), key=env.subject.encode(), value=env.kafka_value(), headers=env.kafka_headers()
            )
    finally:
        await producer.stop()
