"""Payments: Thu phí: fees, VietQR, confirmed payments, reconciliation and receipts."""

from __future__ import annotations

import asyncio
import logging
import random

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import Gauge

from services.payments import handlers, store
from services.payments.api import router
from services.payments.settings import PaymentsSettings
from shared.clock import Clock
from shared.db import Database
from shared.service import BackgroundLoop, build_app

log = logging.getLogger("motcua.payments.sweep")

PENDING = Gauge("motcua_payments_pending", "Payment requests waiting to be paid")
HELD = Gauge("motcua_payment_transfers_held", "Transfers held for a person: unknown reference, wrong amount, not payable")


class ExpirySweeper:
    """Background loop: pending requests past their time expire, each once across all replicas
    (claimed with ``FOR UPDATE SKIP LOCKED``; the status, the event and the audit line commit together)."""

    def __init__(self, db: Database, *, interval: float, batch: int) -> None:
        self.db = db
        self.interval = interval
        self.batch = batch
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Sweep until stopped; a failed round (database outage) is retried next round."""
        while not self._stopping.is_set():
            try:
                while await self.sweep_once() >= self.batch and not self._stopping.is_set():
                    pass  # a full batch: more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("expiry sweep failed: %s", exc)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval * random.uniform(0.8, 1.2))
            except TimeoutError:
                pass

    async def sweep_once(self) -> int:
        """One round in one transaction; the number of requests expired. Then the backlog gauges."""
        async with self.db.unit_of_work(actor="payments-sweep") as tx:
            expired = await handlers.expire_due(tx, limit=self.batch)
        async with self.db.sessions() as session:
            pending, held = await store.backlog(session=session)
        PENDING.set(pending)
        HELD.set(held)
        return expired

    async def stop(self) -> None:
        """Finish the round in hand and exit."""
        self._stopping.set()


def create_app(settings: PaymentsSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The payments service."""
    settings = settings or PaymentsSettings()

    def loops(app: FastAPI) -> list[BackgroundLoop]:
        if not settings.run_sweep:
            return []
        return [ExpirySweeper(app.state.db, interval=settings.sweep_interval_seconds, batch=settings.sweep_batch_size)]

    return build_app(
        settings,
        title="motcua payments",
        description="Thu phí: fees, VietQR, confirmed payments, reconciliation and receipts.",
        routers=[router],
        subscription=handlers.subscriptions(settings),
        clock=clock,
        span_exporter=span_exporter,
        loops=loops,
    )
