"""Business gauges per unit for the one-stop dashboard: received today and this month, open, overdue, near due.

Read from reporting's projections (``dossier_facts`` only, read-only) by a periodic refresh, not at scrape time:
``/metrics`` is served synchronously from the event loop, and a province's projections are too large to count
on every scrape of every replica. The definitions are the summary report's (README "Reports: what each figure
counts"), taken at the refresh instant instead of at the end of a period:

- ``received{period="day"}`` / ``{period="month"}``: ``received_total`` of the summary from today (or the first of
  this month) to today, Vietnamese calendar days;
- ``pending``: received and not ended processing (``pending_total``);
- ``overdue``: pending and already marked late, or its running clock's deadline has passed (``pending_overdue``);
- ``near_due``: pending, not overdue, clock running, deadline no later than the near-due horizon of today
  (``REPORTING_NEAR_DUE_THRESHOLD`` working days after today, through the end of the last; or that many office
  hours from now) — ``pending_near_due``.

One series per unit that has a dossier received this month or still open (plus ``period`` on ``received``): the
label set is bounded by the province's active units (thousands at most: five series each, a few tens of
thousands of series), and a unit that falls out of that set disappears at the next refresh. Every replica exports
the same figures: a dashboard takes ``max by (unit)`` before adding units up.
"""

from __future__ import annotations

import logging
import time as clock_time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from prometheus_client import Gauge

from services.reporting import domain
from services.reporting.domain import Horizons, ReportRules
from shared.clock import VN_TZ
from shared.db import Database
from shared.sweep import PeriodicSweep

log = logging.getLogger("motcua.reporting.metrics")

RECEIVED = Gauge(
    "motcua_dossiers_received",
    "Dossiers received by the unit today (period=day) or since the first of this month (period=month), as the summary's received_total",
    ["unit", "period"],
)
PENDING = Gauge("motcua_dossiers_pending", "Dossiers of the unit received and not ended processing (pending_total)", ["unit"])
OVERDUE = Gauge("motcua_dossiers_overdue", "Pending dossiers of the unit past their deadline or marked late (pending_overdue)", ["unit"])
NEAR_DUE = Gauge(
    "motcua_dossiers_near_due", "Pending dossiers of the unit not late whose deadline is within the near-due horizon (pending_near_due)", ["unit"]
)
REFRESHED = Gauge("motcua_business_gauges_refreshed_timestamp_seconds", "When the per-unit business gauges were last computed")
REFRESH_DURATION = Gauge("motcua_business_gauges_refresh_seconds", "How long the last computation of the business gauges took")

# Open dossiers through the partial index dossier_facts_open; this month's receipts through received_day's index.
_PENDING_SQL = sa.text(
    """
    SELECT unit,
           count(*) AS pending,
           count(*) FILTER (WHERE overdue) AS overdue,
           count(*) FILTER (WHERE NOT overdue AND NOT paused AND due_at <= :horizon) AS near_due
    FROM (
      SELECT unit, paused, due_at,
             coalesce(late_at < :now, false) OR (NOT paused AND coalesce(due_at < :now, false)) AS overdue
      FROM dossier_facts
      WHERE closed_at IS NULL AND received_at IS NOT NULL AND received_at < :now
    ) open
    GROUP BY unit
    """
)
_RECEIVED_SQL = sa.text(
    """
    SELECT unit, count(*) FILTER (WHERE received_day = :today) AS day, count(*) AS month
    FROM dossier_facts
    WHERE received_day >= :first AND received_day <= :today AND received_at IS NOT NULL
    GROUP BY unit
    """
)


@dataclass(frozen=True)
class UnitFigures:
    """One unit's gauges at one instant."""

    received_day: int = 0
    received_month: int = 0
    pending: int = 0
    overdue: int = 0
    near_due: int = 0


def horizon_at(now: datetime, rules: ReportRules, horizons: Horizons | None = None) -> datetime:
    """The near-due horizon of the scrape instant: the summary's horizon for a period ending tonight (working days),
    or ``threshold`` office hours from now (working hours), in the national office hours in force today."""
    calendar = (horizons or Horizons(rules)).calendar(now.astimezone(VN_TZ).date())
    if rules.near_due_unit == "working_hours":
        return domain.near_due_horizon(now, rules.near_due_threshold, rules.near_due_unit, calendar)
    tonight = datetime.combine(now.astimezone(VN_TZ).date() + timedelta(days=1), time(0), tzinfo=VN_TZ)
    return domain.near_due_horizon(tonight, rules.near_due_threshold, rules.near_due_unit, calendar)


async def unit_figures(db: Database, rules: ReportRules, horizons: Horizons | None = None) -> dict[str, UnitFigures]:
    """Every active unit's figures now (by the service's clock)."""
    now = db.clock.now()
    today: date = now.astimezone(VN_TZ).date()
    figures: dict[str, dict[str, int]] = {}
    async with db.reading() as tx:
        pending = await tx.session.execute(_PENDING_SQL, {"now": now, "horizon": horizon_at(now, rules, horizons)})
        for row in pending.mappings():
            figures.setdefault(row["unit"], {}).update(pending=row["pending"], overdue=row["overdue"], near_due=row["near_due"])
        received = await tx.session.execute(_RECEIVED_SQL, {"today": today, "first": today.replace(day=1)})
        for row in received.mappings():
            figures.setdefault(row["unit"], {}).update(received_day=row["day"], received_month=row["month"])
    return {unit: UnitFigures(**values) for unit, values in figures.items()}


def publish(figures: Mapping[str, UnitFigures]) -> None:
    """Replace every business series by these figures (no await inside: a scrape never sees half of them)."""
    for gauge in (RECEIVED, PENDING, OVERDUE, NEAR_DUE):
        gauge.clear()
    for unit, f in figures.items():
        RECEIVED.labels(unit, "day").set(f.received_day)
        RECEIVED.labels(unit, "month").set(f.received_month)
        PENDING.labels(unit).set(f.pending)
        OVERDUE.labels(unit).set(f.overdue)
        NEAR_DUE.labels(unit).set(f.near_due)


class BusinessGauges(PeriodicSweep):
    """Recomputes the per-unit gauges every ``interval`` seconds (each replica its own: reads only)."""

    name = "business gauges"

    def __init__(self, db: Database, rules: ReportRules, horizons: Horizons | None = None, *, interval: float) -> None:
        super().__init__(interval=interval, batch=1)
        self.db = db
        self.rules = rules
        self.horizons = horizons

    async def sweep_once(self) -> int:
        """One refresh; 0, so the loop waits ``interval`` before the next."""
        started = clock_time.perf_counter()
        figures = await unit_figures(self.db, self.rules, self.horizons)
        publish(figures)
        REFRESH_DURATION.set(clock_time.perf_counter() - started)
        REFRESHED.set(clock_time.time())
        return 0
