"""Workflow: the case's life, deadlines, apologies, inter-agency steps, ratings."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.workflow.api import router
from services.workflow.handlers import SUBSCRIPTIONS
from services.workflow.settings import WorkflowSettings
from shared.clock import Clock
from shared.service import build_app


def create_app(settings: WorkflowSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The workflow service."""
    return build_app(
        settings or WorkflowSettings(),
        title="motcua workflow",
        description="Giải quyết hồ sơ: the case state machine, assignment, deadlines, apologies and ratings.",
        routers=[router],
        subscription=SUBSCRIPTIONS,
        clock=clock,
        span_exporter=span_exporter,
    )
