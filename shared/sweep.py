"""Periodic sweeps (deadlines, expiries): one loop shape for every service."""

from __future__ import annotations

import asyncio
import logging
import random

from shared.metrics import SWEEP_CLAIMED, SWEEP_ROUNDS

log = logging.getLogger("motcua.sweep")


class PeriodicSweep:
    """Runs ``sweep_once()`` every ``interval`` seconds (jittered, so replicas do not sweep in lockstep).

    A round that claims a full batch is followed at once by another; a failed round (a database outage)
    is logged and retried next round. Subclasses claim their rows with ``FOR UPDATE SKIP LOCKED`` and
    commit each change with its event, so several replicas never act twice on one row.
    """

    name = "sweep"

    def __init__(self, *, interval: float, batch: int) -> None:
        self.interval = interval
        self.batch = batch
        self._stopping = asyncio.Event()

    async def sweep_once(self) -> int:
        """One round; the number of rows claimed."""
        raise NotImplementedError

    async def run(self) -> None:
        """Sweep until stopped."""
        while not self._stopping.is_set():
            try:
                while await self._round() >= self.batch and not self._stopping.is_set():
                    pass  # a full batch: more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("%s failed: %s", self.name, exc)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval * random.uniform(0.8, 1.2))
            except TimeoutError:
                pass

    async def _round(self) -> int:
        claimed = await self.sweep_once()
        SWEEP_ROUNDS.labels(self.name).inc()
        SWEEP_CLAIMED.labels(self.name).inc(claimed)
        return claimed

    async def stop(self) -> None:
        """Finish the round in hand and exit."""
        self._stopping.set()
