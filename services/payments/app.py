"""Payments: Thu phí: fees, VietQR, confirmed payments, reconciliation and receipts."""

from __future__ import annotations


from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import Gauge

from services.payments import handlers, store
from services.payments.api import router
from services.payments.settings import PaymentsSettings
from shared.clock import Clock
from shared.db import Database
from shared.sweep import PeriodicSweep
from shared.service import BackgroundLoop, build_app


PENDING = Gauge("motcua_payments_pending", "Payment requests waiting to be paid")
HELD = Gauge("motcua_payment_transfers_held", "Transfers held for a person: unknown reference, wrong amount, not payable")


class ExpirySweeper(PeriodicSweep):
    """Pending requests past their time expire, each once across all replicas
    (claimed with ``FOR UPDATE SKIP LOCKED``; the status, the event and the audit line commit together)."""

    name = "expiry sweep"

    def __init__(self, db: Database, *, interval: float, batch: int) -> None:
        super().__init__(interval=interval, batch=batch)
        self.db = db

    async def sweep_once(self) -> int:
        """One round in one transaction; the number of requests expired. Then the backlog gauges."""
        async with self.db.unit_of_work(actor="payments-sweep") as tx:
            expired = await handlers.expire_due(tx, limit=self.batch)
        async with self.db.sessions() as session:
            pending, held = await store.backlog(session=session)
        PENDING.set(pending)
        HELD.set(held)
        return expired


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
