"""Intake: catalog of procedures, reception on every channel, receipts and lawful appointments."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.intake.api import router
from services.intake.handlers import SUBSCRIPTIONS, CalendarCache, CatalogCache
from services.intake.portal import PortalPusher
from services.intake.settings import IntakeSettings
from shared.clock import Clock
from shared.service import build_app


def _caches(app: FastAPI, settings: IntakeSettings) -> None:
    """Per-process caches of reference data (the calendar of each province, the procedures in force)."""
    app.state.calendars = CalendarCache(app.state.db, settings)
    app.state.catalog = CatalogCache(settings)


def create_app(settings: IntakeSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The intake service."""
    settings = settings or IntakeSettings()
    return build_app(
        settings,
        title="motcua intake",
        description="Tiếp nhận hồ sơ: procedures, reception on every channel, receipts and lawful appointments.",
        routers=[router],
        subscription=SUBSCRIPTIONS,
        clock=clock,
        span_exporter=span_exporter,
        on_start=lambda app: _caches(app, settings),
        loops=lambda app: [PortalPusher(settings, app.state.db)] if settings.portal_sync_url else [],
    )
