"""Payments: Thu phí: fees, VietQR, confirmed payments, reconciliation and receipts."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.payments.handlers import SUBSCRIPTIONS
from services.payments.settings import PaymentsSettings
from shared.clock import Clock
from shared.service import build_app


def create_app(settings: PaymentsSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The payments service."""
    return build_app(
        settings or PaymentsSettings(),
        title="motcua payments",
        description="Thu phí: fees, VietQR, confirmed payments, reconciliation and receipts.",
        routers=[],
        subscription=SUBSCRIPTIONS,
        clock=clock,
        span_exporter=span_exporter,
    )
