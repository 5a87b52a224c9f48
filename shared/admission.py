"""Admission control: bounded work in flight per process, and an immediate "busy, retry" for the rest (RFC 9457).

Each request takes a slot of its budget before the app sees it: ``write`` (any method that changes state), ``read``
(GET, HEAD, OPTIONS) and none for the health and metrics endpoints, so operators can still look at a busy process.
A request that finds no free slot waits in its budget's queue only when the queue is expected to drain within
``max_queue_seconds`` (the queue length times the recent service time over the slots); otherwise it is refused at
once with 503, ``Retry-After`` and a problem document, before any handler runs, so nothing is written. The work in
flight is therefore bounded, an accepted request's latency is bounded by the queue time plus its own, and a refused
one learns it in microseconds instead of waiting in a socket backlog.

The slots also bound the database connections the HTTP side can hold, so the relay and the consumer of the same
process always find one (``ServiceSettings`` checks the budgets leave them room in the pool).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import PROBLEM_JSON, TYPE_BASE
from shared.metrics import ADMISSION_IN_FLIGHT, ADMISSION_QUEUE_SECONDS, ADMISSION_SHED

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Overloaded(Exception):
    """No slot now and none expected within the queue budget."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Budget:
    """``slots`` requests at once; a bounded FIFO queue in front, admitted only when it is expected to drain in time."""

    def __init__(
        self,
        name: str,
        *,
        slots: int,
        max_queue_seconds: float,
        max_queue: int,
        initial_service_seconds: float = 0.02,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if slots < 1 or max_queue < 0 or max_queue_seconds < 0:
            raise ValueError("a budget needs at least one slot and a non-negative queue")
        self.name = name
        self.slots = slots
        self.max_queue_seconds = max_queue_seconds
        self.max_queue = max_queue
        self.service_seconds = initial_service_seconds  # moving average of a request's own time
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._monotonic = monotonic

    @property
    def in_flight(self) -> int:
        """Requests holding a slot."""
        return self.slots - self._free

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return sum(1 for w in self._waiters if not w.done())

    def expected_wait(self, position: int) -> float:
        """How long the ``position``-th waiter should wait, at the recent service time."""
        return position * self.service_seconds / self.slots

    def retry_after(self) -> int:
        """Whole seconds after which the queue ahead should have drained (at least 1)."""
        return max(1, min(30, math.ceil(self.expected_wait(self.queued + self.slots))))

    async def enter(self) -> float:
        """Take a slot (waiting in the queue if that is expected to be short); the seconds waited. Raises ``Overloaded``."""
        if self._free > 0 and not self.queued:
            self._free -= 1
            return 0.0
        position = self.queued + 1
        if position > self.max_queue or self.expected_wait(position) > self.max_queue_seconds:
            raise Overloaded(self.retry_after())
        started = self._monotonic()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # the slot was handed over as the caller went away: pass it on
            raise
        return self._monotonic() - started

    def leave(self, service_seconds: float | None = None) -> None:
        """Give the slot back (to the first waiter, if any); ``service_seconds`` updates the moving average."""
        if service_seconds is not None:
            self.service_seconds += 0.1 * (service_seconds - self.service_seconds)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to it
                return
        self._free += 1


class AdmissionControl:
    """Pure ASGI middleware that puts every request through its budget (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        write: Budget,
        read: Budget,
        openapi: Callable[[], Mapping[str, Any]] = dict,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.service = service
        self.budgets = {"write": write, "read": read}
        self.openapi = openapi
        self._templates: list[tuple[re.Pattern[str], frozenset[str], str]] | None = None
        self._monotonic = monotonic
        for name in self.budgets:
            ADMISSION_IN_FLIGHT.labels(service, name).set_function(lambda b=self.budgets[name]: b.in_flight)

    def budget_of(self, scope: Scope) -> Budget | None:
        """The budget a request takes a slot of; None for health and metrics."""
        if scope["path"] in EXEMPT_PATHS:
            return None
        return self.budgets["read" if scope["method"] in READ_METHODS else "write"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        budget = self.budget_of(scope) if scope["type"] == "http" else None
        if budget is None:
            await self.app(scope, receive, send)
            return
        try:
            waited = await budget.enter()
        except Overloaded as exc:
            await self._refuse(scope, send, budget, exc.retry_after)
            return
        ADMISSION_QUEUE_SECONDS.labels(self.service, budget.name).observe(waited)
        started = self._monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            budget.leave(self._monotonic() - started)

    def _route(self, scope: Scope) -> str:
        """The path template of a refused request, from the app's published OpenAPI paths (built on first use)."""
        if self._templates is None:
            self._templates = [
                (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"), frozenset(m.upper() for m in ops), path)
                for path, ops in (self.openapi().get("paths") or {}).items()
            ]
        for pattern, methods, template in self._templates:
            if scope["method"] in methods and pattern.match(scope["path"]):
                return template
        return "other"

    async def _refuse(self, scope: Scope, send: Send, budget: Budget, retry_after: int) -> None:
        ADMISSION_SHED.labels(self.service, self._route(scope), budget.name).inc()
        detail = (
            f"The service is at capacity and did not start this request: nothing was done. Send it again after "
            f"{retry_after} s (Retry-After). Resending is safe: a reception with the same Idempotency-Key, a portal "
            "push and a bank callback are each applied once."
        )
        body = json.dumps(
            {
                "type": TYPE_BASE + "overloaded",
                "title": "Busy: try again shortly",
                "status": 503,
                "detail": detail,
                "instance": scope["path"],
                "retry_after_seconds": retry_after,
                "budget": budget.name,
            },
            ensure_ascii=False,
        ).encode()
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
