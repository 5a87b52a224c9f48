"""Digitization: Số hóa: the file store, digitized papers, signed results and certified electronic copies."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.digitization.handlers import SUBSCRIPTIONS
from services.digitization.settings import DigitizationSettings
from shared.clock import Clock
from shared.service import build_app


def create_app(settings: DigitizationSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The digitization service."""
    return build_app(
        settings or DigitizationSettings(),
        title="motcua digitization",
        description="Số hóa: the file store, digitized papers, signed results and certified electronic copies.",
        routers=[],
        subscription=SUBSCRIPTIONS,
        clock=clock,
        span_exporter=span_exporter,
    )
