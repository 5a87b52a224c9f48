"""Payments' background loop: the expiry sweep, and the backlog gauges it keeps."""

from __future__ import annotations

from prometheus_client import Gauge

from services.payments import handlers
from services.payments.deps import PaymentsDeps
from shared.sweep import PeriodicSweep

PENDING = Gauge("motcua_payments_pending", "Payment requests waiting to be paid")
HELD = Gauge("motcua_payment_transfers_held", "Transfers held for a person: unknown reference, wrong amount, not payable")


class ExpirySweeper(PeriodicSweep):
    """Pending requests past their time expire, each once across all replicas
    (claimed with ``FOR UPDATE SKIP LOCKED``; the status, the event and the audit line commit together)."""

    name = "expiry sweep"

    def __init__(self, deps: PaymentsDeps, *, interval: float, batch: int) -> None:
        super().__init__(interval=interval, batch=batch)
        self.deps = deps

    async def sweep_once(self) -> int:
        """One round in one transaction; the number of requests expired. Then the backlog gauges."""
        async with self.deps.db.unit_of_work(actor="payments-sweep") as tx:
            expired = await handlers.expire_due(tx, limit=self.batch)
        async with self.deps.db.reading() as tx:
            pending, held = await handlers.backlog(tx)
        PENDING.set(pending)
        HELD.set(held)
        return expired
