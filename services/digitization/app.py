"""Digitization: Số hóa: the file store, digitized papers, signed results and certified electronic copies."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.digitization import handlers, pages
from services.digitization.api import router
from services.digitization.deps import DigitizationDeps
from services.digitization.settings import DigitizationSettings
from services.digitization.signing import load_unit_signer
from services.digitization.storage import make_file_store
from shared.clock import Clock
from shared.db import Database
from shared.service import build_app


def create_app(
    settings: DigitizationSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None
) -> FastAPI:
    """The digitization service."""
    settings = settings or DigitizationSettings()

    def deps(db: Database, clock: Clock) -> DigitizationDeps:
        return DigitizationDeps(
            db=db, clock=clock, settings=settings, files=make_file_store(settings), signer=load_unit_signer(settings),
            pages=pages.PAGES,
        )

    return build_app(
        settings,
        title="motcua digitization",
        description="Số hóa: the file store, digitized papers, signed results and certified electronic copies.",
        routers=[router, pages.router],
        deps=deps,
        subscriptions=handlers.subscriptions,
        clock=clock,
        span_exporter=span_exporter,
    )
