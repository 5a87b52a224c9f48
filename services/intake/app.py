"""Intake: catalog of procedures, reception on every channel, receipts and lawful appointments."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.intake import domain, handlers, national, pages
from services.intake.api import router
from services.intake.caches import CalendarCache, CatalogCache
from services.intake.deps import IntakeDeps
from services.intake.portal import PortalPusher
from services.intake.settings import IntakeSettings
from shared.clock import Clock
from shared.lawstore import LawCache
from shared.service import build_app


def create_app(settings: IntakeSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The intake service."""
    settings = settings or IntakeSettings()
    return build_app(
        settings,
        title="motcua intake",
        description="Tiếp nhận hồ sơ: procedures, reception on every channel, receipts and lawful appointments.",
        routers=[router, pages.router],
        deps=lambda db, clock: IntakeDeps(
            db=db, clock=clock, settings=settings, calendars=CalendarCache(settings), catalog=CatalogCache(settings),
            law=LawCache(settings.calendar_cache_seconds),
            pages=pages.PAGES, lgsp=national.lgsp_config(settings),
            national_mapping=domain.national_mapping(settings.national_catalog_mapping),
        ),
        subscriptions=handlers.subscriptions,
        loops=lambda deps: [PortalPusher(deps.settings, deps.db)] if settings.portal_sync_url else [],
        clock=clock,
        span_exporter=span_exporter,
    )
