"""Sending the DVCQG syncs through the provincial LGSP: at least once, in order per dossier (DOMAIN.md §7).

The syncs are queued by the event handlers, in the transaction of the event that owes them (``handlers.py``:
an outbox, never a dual write). This loop, in every reporting replica, claims the first unsent sync of each dossier
with ``FOR UPDATE SKIP LOCKED``, opens an attempt (``sending``) and leases the row, then talks to the LGSP outside
any transaction, several dossiers at once:

1. before a dossier's first push, ``TraCuuHoSo`` (is it on the portal already?);
2. a status push: ``DongBoHoSoMC`` with ``isUpdating`` "False" the first time, "True" after; a processing step:
   ``CapNhatTienDoHoSoMC``. The payload is built from the dossier's events as reporting recorded them
   (``dvcqg.dossier_payload``) and kept with the attempt, with the LGSP's answer.

The outcome is written in a second transaction. Accepted: the dossier's next sync becomes sendable. Refused
(``error_code`` not 0 about the dossier): recorded with its code and message, retried after a doubling, jittered
backoff that holds up only that dossier; after ``REPORTING_DVCQG_MAX_REFUSALS`` the sync is given up (visible; an admin replays it) and
the dossier's later syncs wait behind it. Unavailable (the LGSP is down, slow, answers no JSON, or refuses the
login or the session even after a new login): retried with the same backoff but never given up: an outage is waited
out. A status push older than one the portal already accepted
(its event arrived late) is not sent: it would set the portal's status back (``superseded``).

At least once: a sender killed after the LGSP took a push and before the outcome was written leaves the attempt
``sending``; when the lease expires the sync is claimed again, that attempt becomes ``interrupted`` and the push is
sent again (``DongBoHoSoMC`` is an upsert by ``MaHoSo``; the idempotency key travels in the history).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from services.reporting import dvcqg, store
from services.reporting.dvcqg import SyncMapping
from services.reporting.settings import ReportingSettings
from shared.db import Database
from shared.lgsp import LgspAnswer, LgspAuthFailed, LgspClient, LgspConfig, LgspError, LgspRefused

log = logging.getLogger("motcua.reporting.dvcqg")

OUTCOMES = ("accepted", "refused", "unavailable", "given_up", "superseded")
SYNCS = Counter("motcua_dvcqg_syncs_total", "DVCQG sync attempts by kind (status, progress) and outcome", ["kind", "outcome"])
for _kind in (dvcqg.STATUS, dvcqg.PROGRESS):
    for _outcome in OUTCOMES:
        SYNCS.labels(_kind, _outcome)  # at 0 from the start: increase() sees the first refusal (shared/metrics.py)
SYNC_LAG = Histogram(
    "motcua_dvcqg_sync_lag_seconds",
    "From a dossier's status change (or processing step) to the LGSP accepting its sync",
    ["kind"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400),
)
for _kind in (dvcqg.STATUS, dvcqg.PROGRESS):
    SYNC_LAG.labels(_kind)  # the buckets exist (at 0) before the first sync: the lag panel shows a quiet LGSP, not "no data"
BACKLOG = Gauge("motcua_dvcqg_sync_backlog", "DVCQG syncs owed and not yet accepted (given-up ones not counted)")
OLDEST_AGE = Gauge("motcua_dvcqg_sync_oldest_age_seconds", "Age of the oldest status change whose sync is not yet accepted")
GIVEN_UP = Gauge("motcua_dvcqg_syncs_given_up", "DVCQG syncs given up after their last refusal, waiting for an admin's replay")
LOGINS = Counter("motcua_dvcqg_lgsp_logins_total", "Sessions the LGSP gave this process (a login after expiry or refusal counts)")


def lgsp_config(settings: ReportingSettings) -> LgspConfig:
    """The LGSP client's configuration from reporting's settings."""
    return LgspConfig(
        base_url=settings.dvcqg_lgsp_url or "",
        username=settings.dvcqg_username,
        password=settings.dvcqg_password,
        dstcode=settings.dvcqg_dstcode,
        madonvi=settings.dvcqg_madonvi,
        auth_endpoint=settings.dvcqg_auth_endpoint,
        integration_endpoint=settings.dvcqg_integration_endpoint,
        session_invalid_codes=tuple(settings.dvcqg_session_invalid_codes),
        session_ttl_seconds=settings.dvcqg_session_ttl_seconds or None,
        timeout_seconds=settings.dvcqg_timeout_seconds,
    )


@dataclass(frozen=True)
class Claimed:
    """A sync this sender holds the lease of."""

    id: int
    number: int
    dossier_code: str
    unit: str
    kind: str
    status: int
    step: str
    event_id: str
    changed_at: datetime
    key: str


@dataclass
class Exchange:
    """What one attempt sent and was answered, for the history."""

    requests: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    service: str | None = None

    def add(self, request: Any, answer: dict[str, Any] | None) -> None:
        if request is not None:
            self.requests.append({"service": request.service, "url": request.url, "body": request.body})
        if answer is not None:
            self.answers.append(answer)


class DvcqgSender:
    """Background loop owned by reporting's lifespan: claims, sends (several dossiers at once), records."""

    name = "dvcqg sender"

    def __init__(self, db: Database, settings: ReportingSettings, mapping: SyncMapping, *, client: LgspClient | None = None) -> None:
        self.db = db
        self.settings = settings
        self.mapping = mapping
        self.sending = bool(settings.dvcqg_lgsp_url) and settings.dvcqg_run_sender
        self.client = client or (LgspClient(lgsp_config(settings)) if self.sending else None)
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._logins_seen = 0

    async def run(self) -> None:
        """Send until stopped (only refresh the gauges when no LGSP is configured)."""
        stop = asyncio.create_task(self._stopping.wait())
        if not self.sending:
            log.info("no LGSP configured (REPORTING_DVCQG_LGSP_URL): DVCQG syncs are queued and counted, not sent")
        try:
            while not self._stopping.is_set():
                try:
                    if self.sending:
                        free = min(self.settings.dvcqg_concurrency - len(self._inflight), self.settings.dvcqg_batch_size)
                        for claimed in await self.claim(free):
                            task = asyncio.create_task(self.deliver(claimed), name=f"dvcqg-{claimed.id}")
                            self._inflight.add(task)
                            task.add_done_callback(self._inflight.discard)
                    await self.report_backlog()
                except Exception as exc:  # noqa: BLE001 - the database may be away; the next round retries
                    log.warning("DVCQG sync round failed: %s", exc)
                await asyncio.wait({stop, *self._inflight}, timeout=self.settings.dvcqg_interval_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            await self._drain()
            if self.client is not None:
                await self.client.aclose()

    async def _drain(self) -> None:
        """Let the sends in flight finish for a few seconds; cancelled ones stay ``sending`` and go again after the lease."""
        if not self._inflight:
            return
        _, pending = await asyncio.wait(set(self._inflight), timeout=min(self.settings.dvcqg_timeout_seconds, 5.0))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def stop(self) -> None:
        """Stop claiming; the sends in flight finish."""
        self._stopping.set()

    # ---- one round ------------------------------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease the first due sync of up to ``limit`` dossiers and open an attempt for each (one statement)."""
        if limit <= 0:
            return []
        async with self.db.unit_of_work(actor="reporting-dvcqg") as tx:
            now = tx.db.clock.now()
            rows = await store.claim_syncs(
                session=tx.session, now=now, settled=now - timedelta(seconds=self.settings.dvcqg_settle_seconds),
                lease_until=now + timedelta(seconds=self.settings.dvcqg_lease_seconds), limit=limit,
            )  # fmt: skip
        return [Claimed(r.id, r.attempts, r.dossier_code, r.unit, r.kind, r.status, r.step, r.event_id, r.changed_at, r.idempotency_key)
                for r in rows]  # fmt: skip

    async def deliver(self, claimed: Claimed) -> None:
        """Send one claimed sync and record the outcome; a crash here leaves it to the lease."""
        exchange = Exchange([], [])
        outcome, error, code, portal = "unavailable", None, None, None
        try:
            outcome, portal = await asyncio.wait_for(self._send(claimed, exchange), timeout=3 * self.settings.dvcqg_timeout_seconds)
        except LgspRefused as exc:
            # A refused login or session says nothing about the dossier: it is waited out like an outage, never given up.
            about_session = isinstance(exc, LgspAuthFailed) or exc.status_code in (401, 403) or (
                exc.code in self.settings.dvcqg_session_invalid_codes
            )
            outcome, error, code = ("unavailable" if about_session else "refused"), str(exc), exc.code
            exchange.add(exc.request, exc.body)
            if self.client is not None:
                self.client.forget_session()  # whatever the code meant, the next attempt starts with a fresh session
        except LgspError as exc:
            outcome, error = "unavailable", str(exc)
            exchange.add(exc.request, None)
        except TimeoutError:
            outcome, error = "unavailable", f"no answer within {3 * self.settings.dvcqg_timeout_seconds:g}s"
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is retried like an outage
            log.exception("DVCQG sync %s failed unexpectedly", claimed.id)
            outcome, error = "unavailable", f"{type(exc).__name__}: {exc}"
        self._count_logins()
        try:
            await self.record(claimed, outcome, exchange, error=error, code=code, portal=portal)
        except Exception as exc:  # noqa: BLE001 - the lease expires and the sync is sent again
            log.warning("could not record DVCQG sync %s attempt %d: %s", claimed.id, claimed.number, exc)

    async def _send(self, claimed: Claimed, exchange: Exchange) -> tuple[str, dict[str, Any]]:
        """Look the dossier up if needed, then push; ('accepted' | 'superseded', what the portal now has)."""
        assert self.client is not None
        async with self.db.reading() as tx:
            events = await store.sync_events(session=tx.session, dossier_code=claimed.dossier_code)
            on_portal, pushed_changed_at = await store.portal_state(session=tx.session, dossier_code=claimed.dossier_code)
        portal = {"on_portal": on_portal, "looked_up": False, "pushed_changed_at": pushed_changed_at}
        if claimed.kind == dvcqg.STATUS and pushed_changed_at is not None and pushed_changed_at > claimed.changed_at:
            return "superseded", portal
        state = dvcqg.dossier_state(claimed.dossier_code, ((e.type, e.data, e.actor) for e in events), as_of=claimed.changed_at)
        madonvi = None if self.settings.dvcqg_madonvi else str(self.mapping["unit_codes"].get(state.unit or claimed.unit, state.unit or claimed.unit))
        if portal["on_portal"] is None:
            portal["on_portal"] = await self._look_up(claimed.dossier_code, madonvi, exchange)
            portal["looked_up"] = True
        if claimed.kind == dvcqg.STATUS:
            values = self.mapping["updating_values"]
            body = {
                self.mapping["updating_key"]: values[1] if portal["on_portal"] else values[0],
                self.mapping["push_data_key"]: [dvcqg.dossier_payload(state, claimed.status, self.mapping)],
            }
            service = self.mapping.service("push")
        else:
            step = next((e for e in events if e.event_id == claimed.event_id), None)
            data, actor = (step.data, step.actor) if step is not None else ({}, None)
            body = {self.mapping["progress_data_key"]: [dvcqg.progress_payload(state, claimed.step, claimed.status, data, actor, self.mapping)]}
            service = self.mapping.service("progress")
        exchange.service = service
        answer = await self.client.call(service, body, madonvi=madonvi)
        exchange.add(answer.request, answer.body)
        if claimed.kind == dvcqg.STATUS:
            portal["on_portal"] = True
        return "accepted", portal

    async def _look_up(self, code: str, madonvi: str | None, exchange: Exchange) -> bool:
        """``TraCuuHoSo``: whether the portal has the dossier already (a not-found code is an answer, not a refusal)."""
        assert self.client is not None
        service = self.mapping.service("lookup")
        try:
            answer: LgspAnswer = await self.client.call(service, {self.mapping["lookup_key"]: code}, madonvi=madonvi)
        except LgspRefused as exc:
            if exc.code in {str(c) for c in self.mapping["lookup_not_found_codes"]}:
                exchange.add(exc.request, exc.body)
                return False
            raise
        exchange.add(answer.request, answer.body)
        return dvcqg.lookup_found(answer.body, self.mapping)

    async def record(self, claimed: Claimed, outcome: str, exchange: Exchange, *, error: str | None, code: str | None,
                     portal: dict[str, Any] | None) -> None:  # fmt: skip
        """Write the attempt and the sync's new state; a failure is retried after a backoff, or given up."""
        async with self.db.unit_of_work(actor="reporting-dvcqg") as tx:
            now = tx.db.clock.now()
            await store.finish_sync_attempt(
                session=tx.session, sync_id=claimed.id, number=claimed.number, now=now, outcome=outcome,
                service=exchange.service, request=exchange.requests or None, answer=exchange.answers or None,
                error_code=code, error=error[:2000] if error else None,
            )  # fmt: skip
            row = await store.lock_sync(session=tx.session, sync_id=claimed.id)
            if row is None or row.state != dvcqg.PENDING or row.attempts != claimed.number:
                return  # settled already, or claimed again meanwhile: the newer attempt decides
            accepted = outcome == "accepted"
            if portal is not None and (portal["looked_up"] or accepted):
                pushed = accepted and claimed.kind == dvcqg.STATUS
                await store.note_portal(
                    session=tx.session, dossier_code=claimed.dossier_code, on_portal=portal["on_portal"],
                    looked_up_at=now if portal["looked_up"] else None, pushed_status=claimed.status if pushed else None,
                    pushed_changed_at=claimed.changed_at if pushed else None,
                )  # fmt: skip
            SYNCS.labels(claimed.kind, outcome).inc()
            if outcome in ("accepted", "superseded"):
                state = dvcqg.ACCEPTED if accepted else dvcqg.SUPERSEDED
                last_error = None if accepted else "a later status is on the portal already"
                await store.settle_sync(session=tx.session, sync_id=claimed.id, state=state, accepted_at=now if accepted else None,
                                        refusals=row.refusals, next_attempt_at=None, last_code=None, last_error=last_error)  # fmt: skip
                if accepted:
                    SYNC_LAG.labels(claimed.kind).observe(max((now - claimed.changed_at).total_seconds(), 0.0))
                return
            refusals = row.refusals + (1 if outcome == "refused" else 0)
            if outcome == "refused" and refusals >= self.settings.dvcqg_max_refusals:
                SYNCS.labels(claimed.kind, "given_up").inc()
                log.warning("DVCQG sync %s of %s given up after %d refusals: %s", claimed.id, claimed.dossier_code, refusals, error)
                await store.settle_sync(session=tx.session, sync_id=claimed.id, state=dvcqg.GIVEN_UP, accepted_at=None,
                                        refusals=refusals, next_attempt_at=None, last_code=code, last_error=(error or "")[:2000])  # fmt: skip
                return
            delay = dvcqg.backoff_seconds(
                claimed.number, initial=self.settings.dvcqg_backoff_initial_seconds, cap=self.settings.dvcqg_backoff_max_seconds
            )
            await store.settle_sync(session=tx.session, sync_id=claimed.id, state=dvcqg.PENDING, accepted_at=None, refusals=refusals,
                                    next_attempt_at=now + timedelta(seconds=delay), last_code=code, last_error=(error or "")[:2000])  # fmt: skip

    async def report_backlog(self) -> None:
        """Refresh the backlog gauges."""
        async with self.db.reading() as tx:
            backlog = await store.sync_backlog(session=tx.session, now=tx.db.clock.now())
        BACKLOG.set(backlog["pending"])
        OLDEST_AGE.set(backlog["oldest_age_seconds"])
        GIVEN_UP.set(backlog["given_up"])

    def _count_logins(self) -> None:
        if self.client is not None and self.client.logins > self._logins_seen:
            LOGINS.inc(self.client.logins - self._logins_seen)
            self._logins_seen = self.client.logins

