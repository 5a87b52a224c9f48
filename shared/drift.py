"""Drift made visible: each producer announces its outbox, each consumer names what it never applied.

The API (stable; other tests and the ``motcua drift`` command read it):

``GET /api/v1/admin/drift`` (admin, auditor) on every service that consumes. Query: ``producer`` (one of the
producers the service listens to; default all), ``since`` (a day, YYYY-MM-DD; default ``DRIFT_KEEP_DAYS`` ago),
``limit`` (missing ids listed per producer and day, 0-1000, default 100). Answer (``DriftReportPublic``)::

    {"service": "workflow", "checked_at": "2026-12-03T15:30:00+07:00", "grace_seconds": 300.0,
     "producers": ["digitization", "intake", "payments"], "types": ["vn.motcua.dossier.received.v1", …],
     "announced": 12, "applied": 9, "dead_lettered": 1, "pending": 0, "missing": 2,
     "data": [{"producer": "intake", "day": "2026-12-03", "announced": 12, "applied": 9, "dead_lettered": 1,
               "pending": 0, "missing": 2, "missing_event_ids": ["0b5d…", "5e1f…"]}],
     "count": 1}

``announced``: events the producer's manifests listed for that day (Asia/Ho_Chi_Minh, by the event's time) of the
types this service handles; ``applied``: of those, in its inbox; ``dead_lettered``: not applied but in its dead
letters; ``pending``: neither, announced less than ``DRIFT_GRACE_SECONDS`` ago; ``missing``: neither, and older.
``missing_event_ids`` lists the first ``limit`` missing ids in the producer's outbox order (``missing`` counts all).
A service that consumes nothing answers ``producers: []`` and no rows. Totals at the top add up the rows.

``POST /api/v1/admin/drift/announce`` (admin): the service announces its recent days again now (what it does every
``DRIFT_REANNOUNCE_SECONDS``), and answers ``{"manifests": n, "events": m}``.

How it works, and why this way (services share nothing but Kafka):

- The producer side (``ManifestWriter``, beside the relay): every ``DRIFT_MANIFEST_SECONDS`` it writes the outbox rows
  new since its last round into its own outbox as ``vn.motcua.outbox.manifest.v1`` events: the producer, the day, the
  first and last outbox id of the chunk and each row's event id, type and outbox id, at most ``DRIFT_MANIFEST_CHUNK``
  rows per event. Every ``DRIFT_REANNOUNCE_SECONDS`` it announces the last ``DRIFT_REANNOUNCE_DAYS`` days again, so a
  manifest lost with the broker, or a row whose transaction committed after a later one was already announced, is
  announced anyway. Manifests travel like every event: a replay of the outbox replays them too.
- The consumer side: every consumer handles manifests of every producer it listens to (``with_manifests`` adds the
  handler to the service's subscription in ``build_app``; no service lists them). It keeps the announced events of
  the types it handles in ``drift_expected``, and compares them with its ``inbox`` and ``dead_letters``
  (``drift_report``); an event once found in the inbox is marked ``applied``, so later checks look up only the
  others. ``DriftWatch`` sets ``motcua_drift_missing_events{service,producer}`` every
  ``DRIFT_CHECK_SECONDS`` and forgets announcements older than ``DRIFT_KEEP_DAYS``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import bindparam, text

from shared.consumer import PermanentError, Subscription
from shared.db import Database, UnitOfWork
from shared.envelope import Envelope
from shared.events import ManifestEntry, OutboxManifest
from shared.metrics import DRIFT_MISSING
from shared.settings import ServiceSettings
from shared.sweep import PeriodicSweep

log = logging.getLogger("motcua.drift")

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MANIFEST = OutboxManifest.type
MAX_LISTED = 1000  # missing ids one answer lists per producer and day, at most

# ---- the producer side ------------------------------------------------------------------------------------------

_CURSOR = text("INSERT INTO drift_manifest_cursor (id, last_outbox_id) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
_LOCK_CURSOR = text(
    "SELECT last_outbox_id, reannounced_at, reannounced_at IS NULL OR reannounced_at < now() - CAST(:every AS interval) "
    "FROM drift_manifest_cursor WHERE id = 1 FOR UPDATE"
)
_ROWS_AFTER = text(
    f"""
    SELECT id, event_id::text AS event_id, type, (created_at AT TIME ZONE '{ZONE.key}')::date AS day
    FROM outbox WHERE id > :after AND type <> :manifest ORDER BY id LIMIT :limit
    """
)
_RECENT_ROWS = text(
    f"""
    SELECT id, event_id::text AS event_id, type, (created_at AT TIME ZONE '{ZONE.key}')::date AS day
    FROM outbox WHERE id > :after AND id <= :upto AND created_at >= :since AND type <> :manifest ORDER BY id LIMIT :limit
    """
)
_ADVANCE = text("UPDATE drift_manifest_cursor SET last_outbox_id = :last WHERE id = 1")
_REANNOUNCED = text("UPDATE drift_manifest_cursor SET reannounced_at = now() WHERE id = 1")


@dataclass
class Announced:
    """What one announcement wrote: manifest events and the outbox rows they list."""

    manifests: int = 0
    events: int = 0

    def add(self, other: Announced) -> None:
        """Count another announcement in."""
        self.manifests += other.manifests
        self.events += other.events


def chunks(rows: Sequence[Any], size: int) -> Iterable[tuple[date, list[Any]]]:
    """Consecutive rows (by outbox id) of one day, at most ``size`` per chunk."""
    for day, same_day in itertools.groupby(rows, key=lambda r: r.day):
        group = list(same_day)
        for start in range(0, len(group), size):
            yield day, group[start : start + size]


async def _emit_manifests(tx: UnitOfWork, producer: str, rows: Sequence[Any], *, size: int, recent: bool) -> Announced:
    done = Announced()
    for day, chunk in chunks(rows, size):
        await tx.emit(
            OutboxManifest(
                producer=producer,
                day=day,
                first_id=chunk[0].id,
                last_id=chunk[-1].id,
                events=[ManifestEntry(id=r.event_id, type=r.type, row=r.id) for r in chunk],
                recent=recent,
                occurred_at=tx.now,
            )
        )
        done.manifests += 1
        done.events += len(chunk)
    return done


def recent_since(now: datetime, days: int) -> datetime:
    """The start (Asia/Ho_Chi_Minh midnight) of the first of the last ``days`` days, today included."""
    first = now.astimezone(ZONE).date() - timedelta(days=days - 1)
    return datetime.combine(first, time(0), tzinfo=ZONE)


async def announce(db: Database, settings: ServiceSettings, *, again: bool = False) -> Announced:
    """Announce the outbox rows new since the last round, and the recent days again when due (or ``again``).

    One replica at a time (the cursor row is locked for the transaction). A page of new rows per transaction: a full
    page is followed by the next at once. The recent days go in one transaction, page by page.
    """
    done = Announced()
    page = settings.drift_manifest_chunk * 10
    producer = settings.service
    before: int | None = None  # the cursor before this call: what earlier calls announced
    while True:
        async with db.unit_of_work(actor="drift") as tx:
            await tx.session.execute(_CURSOR)
            last, _, due = (
                await tx.session.execute(_LOCK_CURSOR, {"every": timedelta(seconds=settings.drift_reannounce_seconds)})
            ).one()
            before = last if before is None else before
            rows = (await tx.session.execute(_ROWS_AFTER, {"after": last, "manifest": MANIFEST, "limit": page})).all()
            if rows:
                done.add(await _emit_manifests(tx, producer, rows, size=settings.drift_manifest_chunk, recent=False))
                await tx.session.execute(_ADVANCE, {"last": rows[-1].id})
            if len(rows) < page and (due or again):
                # What earlier calls announced (this call's rows were just announced, the first time).
                done.add(await _announce_recent(tx, settings, upto=before))
                await tx.session.execute(_REANNOUNCED)
        if len(rows) < page:
            return done


async def _announce_recent(tx: UnitOfWork, settings: ServiceSettings, *, upto: int) -> Announced:
    done = Announced()
    page, after = settings.drift_manifest_chunk * 10, 0
    since = recent_since(tx.now, settings.drift_reannounce_days)
    while True:
        params = {"after": after, "upto": upto, "since": since, "manifest": MANIFEST, "limit": page}
        rows = (await tx.session.execute(_RECENT_ROWS, params)).all()
        if rows:
            done.add(await _emit_manifests(tx, settings.service, rows, size=settings.drift_manifest_chunk, recent=True))
            after = rows[-1].id
        if len(rows) < page:
            return done


class ManifestWriter(PeriodicSweep):
    """The producer side's loop: announces new outbox rows every ``DRIFT_MANIFEST_SECONDS``."""

    name = "drift_manifest"

    def __init__(self, settings: ServiceSettings, db: Database) -> None:
        super().__init__(interval=settings.drift_manifest_seconds, batch=1)
        self.settings = settings
        self.db = db

    async def sweep_once(self) -> int:
        """One round; 0, so a round is never repeated at once (``announce`` pages by itself)."""
        done = await announce(self.db, self.settings)
        if done.manifests:
            log.debug("announced %d outbox rows in %d manifests", done.events, done.manifests)
        return 0


# ---- the consumer side ------------------------------------------------------------------------------------------

_EXPECT = text(
    """
    INSERT INTO drift_expected (producer, event_id, type, day, outbox_id, applied)
    SELECT :producer, e.id, e.type, :day, e.row, EXISTS (SELECT 1 FROM inbox i WHERE i.event_id = e.id)
    FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[]), CAST(:rows AS bigint[])) AS e(id, type, row)
    ON CONFLICT (producer, event_id) DO NOTHING
    """
)
_SETTLE = text(
    """
    UPDATE drift_expected e SET applied = true
    WHERE NOT e.applied AND EXISTS (SELECT 1 FROM inbox i WHERE i.event_id = e.event_id)
    """
)
_FORGET = text("DELETE FROM drift_expected WHERE announced_at < now() - CAST(:keep AS interval)")

_COMPARE = """
    WITH announced AS (
        SELECT producer, day, event_id, outbox_id, announced_at, applied,
               NOT applied AND EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = seen.event_id) AS dead
        FROM (
            SELECT e.producer, e.day, e.event_id, e.outbox_id, e.announced_at, true AS applied
            FROM drift_expected e
            WHERE e.applied AND e.type IN :types AND e.producer IN :producers AND e.day >= :since
            UNION ALL  -- only the events not yet seen applied are looked up (few, through the partial index)
            SELECT e.producer, e.day, e.event_id, e.outbox_id, e.announced_at,
                   EXISTS (SELECT 1 FROM inbox i WHERE i.event_id = e.event_id) AS applied
            FROM drift_expected e
            WHERE NOT e.applied AND e.type IN :types AND e.producer IN :producers AND e.day >= :since
        ) seen
    )
"""
_TOTALS = text(
    _COMPARE
    + """
    SELECT producer, day, count(*) AS announced,
           count(*) FILTER (WHERE applied) AS applied,
           count(*) FILTER (WHERE NOT applied AND dead) AS dead_lettered,
           count(*) FILTER (WHERE NOT applied AND NOT dead AND announced_at >= now() - CAST(:grace AS interval)) AS pending,
           count(*) FILTER (WHERE NOT applied AND NOT dead AND announced_at < now() - CAST(:grace AS interval)) AS missing
    FROM announced GROUP BY producer, day ORDER BY producer, day
    """
).bindparams(bindparam("types", expanding=True), bindparam("producers", expanding=True))
_MISSING_IDS = text(
    _COMPARE
    + """
    SELECT producer, day, event_id FROM (
        SELECT producer, day, event_id, row_number() OVER (PARTITION BY producer, day ORDER BY outbox_id) AS n
        FROM announced WHERE NOT applied AND NOT dead AND announced_at < now() - CAST(:grace AS interval)
    ) listed WHERE n <= :limit ORDER BY producer, day, n
    """
).bindparams(bindparam("types", expanding=True), bindparam("producers", expanding=True))


def with_manifests(subscription: Subscription) -> Subscription:
    """The subscription plus the manifests of every producer it listens to (recorded for the types it handles)."""
    return Subscription(
        producers=subscription.producers,
        handlers={**subscription.handlers, OutboxManifest: partial(on_manifest, handled=handled_types(subscription))},
    )


def handled_types(subscription: Subscription) -> frozenset[str]:
    """The event types a subscription applies (manifests aside)."""
    return frozenset(model.type for model in subscription.handlers if model is not OutboxManifest)


async def on_manifest(tx: UnitOfWork, event: OutboxManifest, envelope: Envelope, *, handled: frozenset[str]) -> None:
    """Keep what a producer announced of the types this service handles (an announcement again changes nothing).

    A manifest speaks only for the service that wrote it: one whose source is another service is a permanent error
    (a dead letter), so no producer can announce, or hide, another's events.
    """
    if envelope.source != f"/motcua/{event.producer}":
        raise PermanentError(f"a manifest of {event.producer} from {envelope.source}")
    entries = [e for e in event.events if e.type in handled]
    if not entries:
        return
    params = {
        "producer": event.producer,
        "day": event.day,
        "ids": [e.id for e in entries],
        "types": [e.type for e in entries],
        "rows": [e.row for e in entries],
    }
    await tx.session.execute(_EXPECT, params)


class DriftDayPublic(BaseModel):
    """One producer's day as this service sees it."""

    producer: str
    day: date
    announced: int = Field(description="events the producer announced for the day, of the types this service handles")
    applied: int = Field(description="of those, applied here (in the inbox)")
    dead_lettered: int = Field(description="not applied, written to this service's dead letters")
    pending: int = Field(description="neither yet, announced less than the grace period ago")
    missing: int = Field(description="neither, announced longer than the grace period ago")
    missing_event_ids: list[str] = Field(description="the first missing event ids (ce_id), at most `limit`")


class DriftReportPublic(BaseModel):
    """What this service applied of what its producers announced, by producer and day."""

    service: str
    checked_at: datetime
    grace_seconds: float
    producers: list[str] = Field(description="the producers this service listens to")
    types: list[str] = Field(description="the event types it applies: what it compares")
    announced: int
    applied: int
    dead_lettered: int
    pending: int
    missing: int
    data: list[DriftDayPublic]
    count: int


class AnnouncedPublic(BaseModel):
    """What an announcement wrote to the outbox."""

    manifests: int
    events: int


@dataclass(frozen=True)
class DriftScope:
    """What a service compares: the producers it listens to and the types it handles."""

    service: str
    producers: tuple[str, ...]
    types: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, service: str, subscription: Subscription | None) -> DriftScope:
        """The scope of a service's subscription (none: it consumes nothing)."""
        if subscription is None:
            return cls(service, ())
        return cls(service, tuple(sorted(subscription.producers)), handled_types(subscription))


async def drift_report(
    tx: UnitOfWork,
    scope: DriftScope,
    settings: ServiceSettings,
    *,
    producer: str | None = None,
    since: date | None = None,
    limit: int = 100,
) -> DriftReportPublic:
    """Compare what the producers announced with this service's inbox and dead letters."""
    producers = [p for p in scope.producers if producer in (None, p)]
    now = tx.now
    since = since or now.astimezone(ZONE).date() - timedelta(days=settings.drift_keep_days)
    rows: list[DriftDayPublic] = []
    if producers and scope.types:
        params = {
            "types": sorted(scope.types),
            "producers": producers,
            "since": since,
            "grace": timedelta(seconds=settings.drift_grace_seconds),
        }
        totals = (await tx.session.execute(_TOTALS, params)).mappings().all()
        listed: dict[tuple[str, date], list[str]] = {}
        if limit and any(t["missing"] for t in totals):
            for r in (await tx.session.execute(_MISSING_IDS, {**params, "limit": limit})).mappings():
                listed.setdefault((r["producer"], r["day"]), []).append(r["event_id"])
        rows = [DriftDayPublic(**t, missing_event_ids=listed.get((t["producer"], t["day"]), [])) for t in totals]
    sums = {k: sum(getattr(r, k) for r in rows) for k in ("announced", "applied", "dead_lettered", "pending", "missing")}
    return DriftReportPublic(
        service=scope.service,
        checked_at=now.astimezone(ZONE),
        grace_seconds=settings.drift_grace_seconds,
        producers=list(scope.producers),
        types=sorted(scope.types),
        **sums,
        data=rows,
        count=len(rows),
    )


def observe(report: DriftReportPublic) -> None:
    """Set the gauge of every producer of a whole report (one that was not narrowed by producer or day)."""
    missing = dict.fromkeys(report.producers, 0)
    for row in report.data:
        missing[row.producer] += row.missing
    for producer, count in missing.items():
        DRIFT_MISSING.labels(report.service, producer).set(count)


async def settle(tx: UnitOfWork) -> int:
    """Mark the announced events found in the inbox since the last time, so later checks look only at the others."""
    return (await tx.session.execute(_SETTLE)).rowcount


class DriftWatch(PeriodicSweep):
    """The consumer side's loop: the drift gauge every ``DRIFT_CHECK_SECONDS``, old announcements forgotten."""

    name = "drift_check"

    def __init__(self, settings: ServiceSettings, db: Database, scope: DriftScope) -> None:
        super().__init__(interval=settings.drift_check_seconds, batch=1)
        self.settings = settings
        self.db = db
        self.scope = scope
        for producer in scope.producers:  # the series exist (at 0) before the first round
            DRIFT_MISSING.labels(scope.service, producer).set(0)

    async def sweep_once(self) -> int:
        """One check; 0, so it is not repeated at once."""
        async with self.db.unit_of_work() as tx:
            await tx.session.execute(_FORGET, {"keep": timedelta(days=self.settings.drift_keep_days)})
            await settle(tx)
        async with self.db.reading() as tx:
            report = await drift_report(tx, self.scope, self.settings)
        observe(report)
        if report.missing:
            log.warning(
                "drift: %d announced events never applied here (%s)",
                report.missing,
                ", ".join(f"{r.producer} {r.day}: {r.missing}" for r in report.data if r.missing),
            )
        return 0
