"""Workflow: the case's life, deadlines, apologies, inter-agency steps, ratings."""

from __future__ import annotations


from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace.export import SpanExporter

from services.workflow import domain, handlers, notifications, senders
from services.workflow.api import public_router, router
from services.workflow.settings import WorkflowSettings
from shared.calendar import WorkingCalendar
from shared.clock import Clock
from shared.db import Database
from shared.errors import Problem, problem_response
from shared.service import build_app
from shared.sweep import PeriodicSweep



class DeadlineSweeper(PeriodicSweep):
    """Warnings and overdue notices, each exactly once across all replicas.

    Every round claims due cases with ``FOR UPDATE SKIP LOCKED`` and sets each flag in the same
    transaction as its outbox event, so two replicas never announce the same deadline twice.
    """

    name = "deadline sweep"

    def __init__(self, db: Database, rules: handlers.Rules, *, interval: float, batch: int) -> None:
        super().__init__(interval=interval, batch=batch)
        self.db = db
        self.rules = rules

    async def sweep_once(self) -> int:
        """One round in one transaction; the number of cases claimed."""
        async with self.db.unit_of_work(actor="workflow-sweep") as tx:
            return await handlers.sweep_deadlines(tx, rules=self.rules, limit=self.batch)


def _domain_error(request: Request, exc: domain.DomainError) -> JSONResponse:
    """Domain refusals as problem documents: 409 for the state, 422 naming the field."""
    if isinstance(exc, domain.InvalidInput):
        errors = [{"location": ["body", exc.field], "message": exc.message, "type": "value_error"}]
        problem = Problem(422, exc.slug, "The request is not valid", exc.message, errors=errors)
    elif isinstance(exc, domain.ActionNotAllowed):
        problem = Problem(
            409,
            exc.slug,
            "Action not allowed in this state",
            exc.message,
            case_status=exc.status.value,
            action=exc.action.value,
            allowed_actions=[a.value for a in exc.allowed],
        )
    else:
        details = exc.details if isinstance(exc, domain.RuleViolation) else {}
        problem = Problem(409, exc.slug, "Refused by the rules", exc.message, **details)
    return problem_response(problem, request)


def create_app(
    settings: WorkflowSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None
) -> FastAPI:
    """The workflow service."""
    settings = settings or WorkflowSettings()
    calendar = WorkingCalendar(
        start_of_day=settings.office_opens, end_of_day=settings.office_closes, cutoff=settings.same_day_cutoff
    )
    rules = handlers.Rules(
        calendar=calendar,
        warning_threshold_working_hours=settings.warning_threshold_working_hours,
        feedback_deadline_working_days=settings.feedback_deadline_working_days,
        rating_link_secret=settings.rating_link_secret,
    )
    render_context = notifications.RenderContext(
        public_base_url=settings.public_base_url,
        rating_link_secret=settings.rating_link_secret,
        one_stop_name=settings.one_stop_name,
        unit_names=settings.unit_names,
    )
    app = build_app(
        settings,
        title="motcua workflow",
        description="Giải quyết hồ sơ: the case state machine, assignment, deadlines, apologies and ratings.",
        routers=[router, public_router],
        subscription=handlers.subscriptions(rules),
        clock=clock,
        span_exporter=span_exporter,
        loops=lambda app_: (
            [DeadlineSweeper(app_.state.db, rules, interval=settings.sweep_interval_seconds, batch=settings.sweep_batch_size)]
            if settings.run_sweep
            else []
        )
        + ([senders.NotificationSender(app_.state.db, settings, render_context)] if settings.run_notifications else []),
    )
    app.state.rules = rules
    app.state.render_context = render_context
    app.add_exception_handler(domain.DomainError, _domain_error)  # type: ignore[arg-type]
    return app
