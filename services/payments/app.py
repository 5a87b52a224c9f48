"""Payments: Thu phí: fees, VietQR, confirmed payments, reconciliation and receipts."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.payments import handlers
from services.payments.api import router
from services.payments.deps import PaymentsDeps, payment_pages
from services.payments.pages import page_router
from services.payments.settings import PaymentsSettings
from services.payments.sweeps import ExpirySweeper
from shared.clock import Clock
from shared.service import build_app


def create_app(settings: PaymentsSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The payments service."""
    settings = settings or PaymentsSettings()
    templates = payment_pages()
    return build_app(
        settings,
        title="motcua payments",
        description="Thu phí: fees, VietQR, confirmed payments, reconciliation and receipts.",
        routers=[router, page_router(templates)],
        deps=lambda db, clock: PaymentsDeps(db=db, clock=clock, settings=settings, pages=templates),
        subscriptions=handlers.subscriptions,
        loops=lambda deps: (
            [ExpirySweeper(deps, interval=settings.sweep_interval_seconds, batch=settings.sweep_batch_size)]
            if settings.run_sweep
            else []
        ),
        clock=clock,
        span_exporter=span_exporter,
    )
