"""Reporting: projections of every event, reports, indicators and the dossier timeline."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.reporting import domain, handlers
from services.reporting.api import router
from services.reporting.deps import ReportingDeps, reporting_pages
from services.reporting.dvcqg import SyncMapping
from services.reporting.metrics import BusinessGauges
from services.reporting.pages import page_router
from services.reporting.settings import ReportingSettings
from services.reporting.syncs import DvcqgSender
from shared.clock import Clock, SystemClock
from shared.db import Database
from shared.lawstore import LawCache
from shared.pages import Pages
from shared.service import build_app


def report_rules(settings: ReportingSettings) -> domain.ReportRules:
    """What the reports need besides the database and the law in force, from the settings."""
    return domain.ReportRules(
        near_due_threshold=settings.near_due_threshold,
        near_due_unit=settings.near_due_unit,
        targets=dict(settings.plan_targets),
        bands=tuple((float(floor), name) for floor, name in settings.index766_bands),
        band_basis=settings.index766_band_basis,
    )


def reporting_deps(
    settings: ReportingSettings, rules: domain.ReportRules, db: Database, clock: Clock, pages: Pages | None = None
) -> ReportingDeps:
    """Reporting's dependencies over a database and a clock (and the pages, when the app serves them)."""
    return ReportingDeps(
        db=db, clock=clock, settings=settings, rules=rules, horizons=domain.Horizons(rules), pages=pages or reporting_pages(),
        sync_mapping=SyncMapping.of(settings.dvcqg_mapping), law=LawCache(settings.law_cache_seconds),
    )


def create_app(settings: ReportingSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The reporting service."""
    settings = settings or ReportingSettings()
    rules = report_rules(settings)
    pages = reporting_pages()  # one per process: the page routes render with it, their errors too
    return build_app(
        settings,
        title="motcua reporting",
        description="Báo cáo: the plan's rates, the 766 index, the accountability list and each dossier's audit trail.",
        routers=[router, page_router(pages)],
        deps=lambda db, clock: reporting_deps(settings, rules, db, clock, pages),
        subscriptions=handlers.subscriptions,
        # The per-unit business gauges of /metrics (services/reporting/metrics.py), recomputed in the background,
        # and the DVCQG sender (services/reporting/syncs.py): every queued sync to the LGSP, in order per dossier.
        loops=lambda deps: [
            BusinessGauges(deps.db, deps.rules, deps.horizons, interval=deps.settings.metrics_refresh_seconds),
            *([DvcqgSender(deps.db, deps.settings, deps.sync_mapping)] if deps.settings.dvcqg_enabled else []),
        ],
        clock=clock,
        span_exporter=span_exporter,
    )


def rebuild(settings: ReportingSettings | None = None) -> int:
    """``motcua reporting rebuild``: empty the projections and replay the event log; prints and returns 0."""
    settings = settings or ReportingSettings()

    async def _run() -> int:
        clock = SystemClock()
        db = Database(settings.database_url, service=settings.service, namespace=settings.kafka_topic_namespace, clock=clock)
        deps = reporting_deps(settings, report_rules(settings), db, clock)
        try:
            async with db.unit_of_work(actor="reporting-rebuild") as tx:
                return await handlers.rebuild(tx, deps=deps)
        finally:
            await db.dispose()

    replayed = asyncio.run(_run())
    print(f"reporting: projections rebuilt from {replayed} events")
    return 0
