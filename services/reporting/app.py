"""Reporting: projections of every event, reports, indicators and the dossier timeline."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.reporting.api import router
from services.reporting.handlers import SUBSCRIPTIONS
from services.reporting.settings import ReportingSettings
from shared.clock import Clock
from shared.service import build_app


def create_app(settings: ReportingSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The reporting service."""
    return build_app(
        settings or ReportingSettings(),
        title="motcua reporting",
        description="Báo cáo: the plan's rates, the 766 index, the accountability list and each dossier's audit trail.",
        routers=[router],
        subscription=SUBSCRIPTIONS,
        clock=clock,
        span_exporter=span_exporter,
    )
