"""Status push-back to the provincial portal: every status change of an online dossier, at least once, in order.

Rows are written by the handlers in the same transaction as the change (``queue_push``, in the
portal's wire format); the loop (``PortalPusher``) sends the oldest unsent row of each dossier, so
a later status never overtakes an earlier one, and backs off per dossier while the portal is down.
Several replicas share the work through ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import datetime, timedelta

import httpx
from prometheus_client import Counter, Gauge

from services.intake import store
from services.intake.settings import IntakeSettings
from shared import webhooks
from shared.db import Database, UnitOfWork
from shared.status import STATUS_NAMES, NationalStatus

log = logging.getLogger("motcua.intake.portal")

PUSHES = Counter("motcua_portal_pushes_total", "Status pushes to the portal, by outcome", ["outcome"])
for _outcome in ("accepted", "failed"):
    PUSHES.labels(_outcome)  # at 0 from the start: rate()/increase() then see the first push (shared/metrics.py)
PUSH_BACKLOG = Gauge("motcua_portal_push_backlog", "Status pushes not yet accepted by the portal")
PUSH_OLDEST_AGE = Gauge("motcua_portal_push_oldest_age_seconds", "Age of the oldest push not yet accepted")
ONLINE_CHANNEL = 2  # KenhThucHien: the dossier came through the portal


def status_payload(dossier: store.Dossier, status: NationalStatus, *, at: datetime) -> dict[str, object]:
    """The portal's document of one status change (DOMAIN.md §7.2–7.4 fields)."""
    return {
        "MaHoSo": dossier.code,
        "MaHoSoCongDVC": dossier.portal_dossier_id,
        "MaTTHC": dossier.procedure_code,
        "TrangThaiHoSo": int(status),
        "TenTrangThai": STATUS_NAMES[status],
        "KenhThucHien": ONLINE_CHANNEL,
        "NgayTiepNhan": dossier.received_at.isoformat(),
        "NgayHenTra": dossier.appointment_at.isoformat(),
        "ThoiDiem": at.isoformat(),
    }


def queue_push(tx: UnitOfWork, dossier: store.Dossier, *, status: NationalStatus) -> None:
    """Owe the portal one status push, in the transaction of the change; sent in order per dossier."""
    now = tx.now
    store.add(
        session=tx.session,
        row=store.PortalPush(
            dossier_code=dossier.code,
            portal_dossier_id=dossier.portal_dossier_id or "",
            status=int(status),
            payload=status_payload(dossier, status, at=now),
            created_at=now,
            next_attempt_at=now,
        ),
    )


class PortalPusher:
    """Background loop owned by intake's lifespan."""

    def __init__(self, settings: IntakeSettings, db: Database, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.db = db
        self._stopping = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=10, transport=transport)

    async def run(self) -> None:
        """Push until stopped."""
        try:
            while not self._stopping.is_set():
                try:
                    sent = await self.push_due()
                    await self._report_backlog()
                except Exception as exc:  # noqa: BLE001 - the database may be away; try again next round
                    log.warning("portal push round failed: %s", exc)
                    sent = 0
                if not sent:
                    try:
                        await asyncio.wait_for(self._stopping.wait(), timeout=self.settings.portal_sync_interval_seconds)
                    except TimeoutError:
                        pass
        finally:
            await self._client.aclose()

    async def stop(self) -> None:
        """Finish the round in hand and exit."""
        self._stopping.set()

    async def push_due(self, limit: int = 50) -> int:
        """Send the oldest due push of each dossier; returns how many the portal accepted."""
        accepted = 0
        async with self.db.unit_of_work() as tx:
            now = tx.db.clock.now()
            for push in await store.due_pushes(session=tx.session, now=now, limit=limit):
                error = await self._send(push)
                push.attempts += 1
                if error is None:
                    push.sent_at, push.last_error = now, None
                    accepted += 1
                    PUSHES.labels("accepted").inc()
                else:
                    delay = min(2.0 ** push.attempts, self.settings.portal_sync_backoff_max_seconds)
                    push.next_attempt_at = now + timedelta(seconds=delay * random.uniform(0.8, 1.2))
                    push.last_error = error[:2000]
                    PUSHES.labels("failed").inc()
                tx.session.add(push)
        return accepted

    async def _send(self, push: store.PortalPush) -> str | None:
        """POST one push; None when the portal accepted it, the reason otherwise."""
        body = json.dumps(push.payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self.db.clock.now().timestamp()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Motcua-Timestamp": timestamp,
                   "Idempotency-Key": f"{push.dossier_code}:{push.status}:{push.id}"}  # fmt: skip
        if self.settings.portal_sync_secret:
            headers["X-Motcua-Signature"] = "sha256=" + webhooks.signature(self.settings.portal_sync_secret, timestamp, body)
        try:
            response = await self._client.post(str(self.settings.portal_sync_url), content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code >= 300:
            return f"HTTP {response.status_code}: {response.text[:500]}"
        return None

    async def _report_backlog(self) -> None:
        async with self.db.reading() as tx:
            count, age = await store.push_backlog(session=tx.session, now=tx.now)
        PUSH_BACKLOG.set(count)
        PUSH_OLDEST_AGE.set(age)
