"""Reporting: projections of every event, reports, indicators and the dossier timeline."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.reporting import domain, handlers
from services.reporting.api import router
from services.reporting.handlers import ReportRules
from services.reporting.metrics import BusinessGauges
from services.reporting.settings import ReportingSettings
from shared.calendar import WorkingCalendar
from shared.clock import Clock, SystemClock
from shared.db import Database
from shared.service import BackgroundLoop, build_app


def report_rules(settings: ReportingSettings) -> ReportRules:
    """What the report routes need besides the database, from the settings."""
    calendar = WorkingCalendar(
        start_of_day=settings.office_opens, end_of_day=settings.office_closes, cutoff=settings.office_closes
    )
    return ReportRules(
        calendar=calendar,
        near_due_threshold=settings.near_due_threshold,
        near_due_unit=settings.near_due_unit,
        targets=dict(settings.plan_targets),
        indicators=tuple(domain.indicator_rules(settings.index766_indicators)),
        bands=tuple((float(floor), name) for floor, name in settings.index766_bands),
    )


def create_app(settings: ReportingSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The reporting service."""
    settings = settings or ReportingSettings()
    rules = report_rules(settings)

    def loops(app: FastAPI) -> list[BackgroundLoop]:
        # The per-unit business gauges of /metrics (services/reporting/metrics.py), recomputed in the background.
        return [BusinessGauges(app.state.db, rules, interval=settings.metrics_refresh_seconds)]

    app = build_app(
        settings,
        title="motcua reporting",
        description="Báo cáo: the plan's rates, the 766 index, the accountability list and each dossier's audit trail.",
        routers=[router],
        subscription=handlers.subscriptions(settings.procedure_fields, report_rules(settings)),
        clock=clock,
        span_exporter=span_exporter,
        loops=loops,
    )
    app.state.report_rules = rules
    return app


def rebuild(settings: ReportingSettings | None = None) -> int:
    """``motcua reporting rebuild``: empty the projections and replay the event log; prints and returns 0."""
    settings = settings or ReportingSettings()

    async def _run() -> int:
        db = Database(
            settings.database_url, service=settings.service, namespace=settings.kafka_topic_namespace, clock=SystemClock()
        )
        try:
            return await handlers.rebuild(db, fields=settings.procedure_fields, rules=report_rules(settings))
        finally:
            await db.dispose()

    replayed = asyncio.run(_run())
    print(f"reporting: projections rebuilt from {replayed} events")
    return 0
