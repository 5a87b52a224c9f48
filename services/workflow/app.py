"""Workflow: the case's life, deadlines, apologies, inter-agency steps, ratings."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.workflow import domain, handlers, pages
from services.workflow.api import domain_problem, public_router, router
from services.workflow.deps import WorkflowDeps
from services.workflow.senders import NotificationSender
from services.workflow.settings import WorkflowSettings
from services.workflow.sweeps import DeadlineSweeper
from shared.clock import Clock
from shared.service import BackgroundLoop, build_app


def create_app(
    settings: WorkflowSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None
) -> FastAPI:
    """The workflow service."""
    settings = settings or WorkflowSettings()

    def loops(deps: WorkflowDeps) -> list[BackgroundLoop]:
        sweeps: list[BackgroundLoop] = (
            [DeadlineSweeper(deps, interval=settings.sweep_interval_seconds, batch=settings.sweep_batch_size)]
            if settings.run_sweep
            else []
        )
        senders: list[BackgroundLoop] = (
            [NotificationSender(deps.db, settings, deps.render_context)] if settings.run_notifications else []
        )
        return sweeps + senders

    return build_app(
        settings,
        title="motcua workflow",
        description="Giải quyết hồ sơ: the case state machine, assignment, deadlines, apologies and ratings.",
        routers=[router, public_router, pages.router, pages.earlier_links],
        deps=lambda db, clock: WorkflowDeps.of(settings, db=db, clock=clock),
        subscriptions=handlers.subscriptions,
        loops=loops,
        exception_handlers={domain.DomainError: domain_problem},
        clock=clock,
        span_exporter=span_exporter,
    )
