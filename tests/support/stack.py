"""Test helpers around the local stack."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.localstack import ServiceProcess, Stack

__all__ = ["ServiceProcess", "Stack", "eventually", "random_unit"]

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
