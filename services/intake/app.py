"""Intake: catalog of procedures, reception, receipts and appointments."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.intake.api import router
from services.intake.handlers import SUBSCRIPTIONS
from services.intake.settings import IntakeSettings
from shared.calendar import WorkingCalendar
from shared.clock import Clock
from shared.service import build_app


def create_app(settings: IntakeSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The intake service."""
    settings = settings or IntakeSettings()
    app = build_app(
        settings,
        title="motcua intake",
        description="Tiếp nhận hồ sơ: procedures, reception on every channel, receipts and lawful appointments.",
        routers=[router],
        subscription=SUBSCRIPTIONS if SUBSCRIPTIONS.handlers else None,
        clock=clock,
        span_exporter=span_exporter,
    )
    app.state.calendar = WorkingCalendar(
        start_of_day=settings.office_opens, end_of_day=settings.office_closes, cutoff=settings.same_day_cutoff
    )
    return app
