"""Workflow's background loop of deadlines: warnings and overdue notices."""

from __future__ import annotations

from services.workflow import handlers
from services.workflow.deps import WorkflowDeps
from shared.sweep import PeriodicSweep


class DeadlineSweeper(PeriodicSweep):
    """Warnings and overdue notices, each exactly once across all replicas.

    Every round claims due cases with ``FOR UPDATE SKIP LOCKED`` and sets each flag in the same
    transaction as its outbox event, so two replicas never announce the same deadline twice.
    """

    name = "deadline sweep"

    def __init__(self, deps: WorkflowDeps, *, interval: float, batch: int) -> None:
        super().__init__(interval=interval, batch=batch)
        self.deps = deps

    async def sweep_once(self) -> int:
        """One round in one transaction; the number of cases claimed."""
        async with self.deps.db.unit_of_work(actor="workflow-sweep") as tx:
            return await handlers.sweep_deadlines(tx, deps=self.deps, limit=self.batch)
