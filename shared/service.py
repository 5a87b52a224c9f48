"""The one composition root every service shares: app, lifespan, health, metrics, dead letters."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from pydantic import BaseModel
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.admission import AdmissionControl, Budget
from shared.auth import Principal, Role, TokenVerifier, require_roles
from shared.clock import Clock, OffsetClock, SystemClock
from shared.consumer import EventConsumer, Subscription
from shared.db import Database
from shared.drift import (
    AnnouncedPublic,
    DriftReportPublic,
    DriftScope,
    DriftWatch,
    ManifestWriter,
    announce,
    drift_report,
    observe,
    with_manifests,
)
from shared.errors import PROBLEM_JSON, Problem, install_problem_handlers
from shared.events import PRODUCERS
from shared.kafka import MissingTopicsError, ensure_topics
from shared.logs import configure_logging
from shared.metrics import HTTP_REQUESTS
from shared.outbox import OutboxRelay, ReplayRefused, replay
from shared.pages import static_router
from shared.ratelimit import buckets_from
from shared.settings import ServiceSettings
from shared.telemetry import current_trace_id, setup_tracing

log = logging.getLogger("motcua.service")
D = TypeVar("D", bound="ServiceDeps")


@dataclass(frozen=True, kw_only=True)
class ServiceDeps:
    """What every use case of a service may need besides its input. Each service extends it in ``deps.py``.

    Built once per process in the lifespan (``build_app(deps=...)``), after the database exists, and handed to
    routes through the service's ``Deps`` alias (``Annotated[XDeps, Depends(get_deps)]``), to its subscriptions
    and to its background loops: the one place a use case finds its collaborators.
    """

    db: Database
    clock: Clock


async def get_deps(request: Request) -> Any:
    """FastAPI dependency: the service's dependencies object (typed by the service's ``Deps`` alias).

    ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    hand-off on every request of every route (bench/README.md, issue 18)."""
    deps = request.app.state.deps
    if deps is None:  # only between app creation and the lifespan's start
        raise Problem(503, "not-ready", "Not ready", "The service is starting.")
    return deps


PlatformDeps = Annotated[ServiceDeps, Depends(get_deps)]


async def _get_clock(request: Request) -> Clock:
    """The service's clock, which exists from the app's creation (the clock routes answer before the lifespan)."""
    return request.app.state.clock


_ClockDep = Annotated[Clock, Depends(_get_clock)]


class _HttpObservability:
    """Pure ASGI middleware: latency histogram by route template, and the trace id on every response."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                trace_id = current_trace_id()
                if trace_id:
                    message.setdefault("headers", []).append((b"x-trace-id", trace_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )


class ClockPublic(BaseModel):
    """The service's notion of now."""

    now: datetime
    offset_seconds: float


class ClockMove(BaseModel):
    """Where to move the clock."""

    now: datetime


class DeadLetterPublic(BaseModel):
    """A poison event kept for inspection."""

    id: int
    event_id: str | None
    type: str | None
    subject: str | None
    topic: str
    partition: int
    offset: int
    error: str
    attempts: int
    payload: str
    created_at: datetime


class DeadLettersPublic(BaseModel):
    """A page of dead letters."""

    data: list[DeadLetterPublic]
    count: int


class OutboxReplay(BaseModel):
    """Which sent outbox rows to publish again: those sent at or after ``since`` (ISO 8601 with a UTC offset)."""

    since: datetime


class OutboxReplayPublic(BaseModel):
    """What a replay queued: the relay publishes these rows again, in id order, with what is not yet sent."""

    since: datetime
    queued: int


def _platform_router(*, metrics: bool = True) -> APIRouter:
    """Health, readiness, dead letters, the clock; /metrics too unless it has a port of its own (``metrics``)."""
    router = APIRouter()

    @router.get("/healthz", tags=["platform"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", tags=["platform"], summary="Readiness: the database answers; Kafka state reported")
    async def readyz(request: Request) -> JSONResponse:
        state = request.app.state
        checks: dict[str, Any] = {}
        try:
            if state.deps is None:
                raise RuntimeError("starting")
            await asyncio.wait_for(state.deps.db.ping(), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"error: {type(exc).__name__}"
        if state.consumer is not None:
            checks["consumer"] = "connected" if state.consumer.connected else "connecting"
        if state.relay is not None:
            checks["relay"] = "leader" if state.relay.is_leader else "standby"
        ready = checks["database"] == "ok"
        body = {"status": "ready" if ready else "not ready", "service": state.settings.service, "checks": checks}
        if not ready:
            body = {"type": "urn:motcua:problem:not-ready", "title": "Not ready", "status": 503, **body}
        return JSONResponse(body, status_code=200 if ready else 503, media_type=None if ready else PROBLEM_JSON)

    if metrics:

        @router.get("/metrics", tags=["platform"], summary="Prometheus metrics", include_in_schema=False)
        async def metrics_on_main_port() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get(
        "/api/v1/dead-letters",
        tags=["platform"],
        summary="Events this service could not apply",
        response_model=DeadLettersPublic,
    )
    async def dead_letters(
        deps: PlatformDeps,
        _user: Annotated[Principal, require_roles(Role.ADMIN, Role.AUDITOR)],
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> DeadLettersPublic:
        async with deps.db.reading() as tx:
            total = (await tx.session.execute(text("SELECT count(*) FROM dead_letters"))).scalar_one()
            rows = (
                await tx.session.execute(
                    text(
                        'SELECT id, event_id, type, subject, topic, partition, "offset", error, attempts, payload, created_at '
                        "FROM dead_letters ORDER BY id DESC LIMIT :limit OFFSET :offset"
                    ),
                    {"limit": limit, "offset": offset},
                )
            ).mappings()
            return DeadLettersPublic(data=[DeadLetterPublic(**r) for r in rows], count=total)

    @router.get(
        "/api/v1/admin/drift",
        tags=["platform"],
        summary="Drift: what this service applied of what its producers announced, by producer and day",
        response_model=DriftReportPublic,
    )
    async def drift(
        request: Request,
        deps: PlatformDeps,
        _user: Annotated[Principal, require_roles(Role.ADMIN, Role.AUDITOR)],
        producer: Annotated[str | None, Query(max_length=64, description="one producer; default: all it listens to")] = None,
        since: Annotated[date | None, Query(description="first day (Asia/Ho_Chi_Minh); default: DRIFT_KEEP_DAYS ago")] = None,
        limit: Annotated[int, Query(ge=0, le=1000, description="missing event ids listed per producer and day")] = 100,
    ) -> DriftReportPublic:
        scope: DriftScope = request.app.state.drift
        if producer is not None and producer not in scope.producers:
            listened = ", ".join(scope.producers) or "none"
            raise Problem(
                422, "validation-error", "The request is not valid",
                f"producer: {producer!r} is not a producer this service listens to ({listened}).",
            )  # fmt: skip
        async with deps.db.reading() as tx:
            report = await drift_report(tx, scope, request.app.state.settings, producer=producer, since=since, limit=limit)
        if producer is None and since is None:
            observe(report)
        return report

    @router.post(
        "/api/v1/admin/drift/announce",
        tags=["platform"],
        summary="Announce this service's outbox of the recent days again now (drift manifests)",
        response_model=AnnouncedPublic,
    )
    async def drift_announce(
        request: Request, deps: PlatformDeps, _user: Annotated[Principal, require_roles(Role.ADMIN)]
    ) -> AnnouncedPublic:
        done = await announce(deps.db, request.app.state.settings, again=True)
        return AnnouncedPublic(manifests=done.manifests, events=done.events)

    @router.post(
        "/api/v1/admin/outbox/replay",
        tags=["platform"],
        summary="Publish again the outbox rows sent since an instant (consumers' inboxes skip what they applied)",
        response_model=OutboxReplayPublic,
        status_code=202,
    )
    async def replay_outbox(
        request: Request, deps: PlatformDeps, body: OutboxReplay, _user: Annotated[Principal, require_roles(Role.ADMIN)]
    ) -> OutboxReplayPublic:
        settings = request.app.state.settings
        try:
            queued = await replay(deps.db, settings.service, body.since, retention_hours=settings.outbox_retention_hours)
        except ReplayRefused as exc:
            raise Problem(422, "replay-window", "The replay window cannot be replayed", str(exc)) from exc
        return OutboxReplayPublic(since=body.since, queued=queued)

    @router.get("/api/v1/admin/clock", tags=["platform"], summary="The service's current time", response_model=ClockPublic)
    async def get_clock_now(clock: _ClockDep) -> ClockPublic:
        offset = clock.offset.total_seconds() if isinstance(clock, OffsetClock) else 0.0
        return ClockPublic(now=clock.now(), offset_seconds=offset)

    @router.put(
        "/api/v1/admin/clock",
        tags=["platform"],
        summary="Move the clock forward (development and test stacks only)",
        response_model=ClockPublic,
    )
    async def move_clock(
        clock: _ClockDep, body: ClockMove, _user: Annotated[Principal, require_roles(Role.ADMIN)]
    ) -> ClockPublic:
        if not isinstance(clock, OffsetClock):
            raise Problem(403, "clock-fixed", "The clock cannot be moved", "Only development and test stacks move time.")
        if body.now.tzinfo is None:
            raise Problem(422, "validation-error", "The request is not valid", "now: needs a UTC offset, e.g. +07:00.")
        try:
            offset = clock.move_to(body.now)
        except ValueError as exc:
            raise Problem(409, "clock-backwards", "The clock only moves forward", str(exc)) from exc
        return ClockPublic(now=clock.now(), offset_seconds=offset.total_seconds())

    return router


async def _require_topics(settings: ServiceSettings, topics: list[str]) -> None:
    """Production start: a missing topic stops the service with its name; an unreachable broker is waited out later.

    The relay and the consumer reconnect through broker outages, so a broker that does not answer at start is
    logged, not fatal; a topic the broker says does not exist is a deployment error the service cannot repair.
    """
    if not topics:
        return
    try:
        await asyncio.wait_for(ensure_topics(settings, topics), timeout=30)
    except MissingTopicsError as exc:
        log.critical("%s cannot start: %s", settings.service, exc)
        raise
    except Exception as exc:  # noqa: BLE001 - the loops retry; their ensure_topics names a missing topic later
        log.warning("could not check the Kafka topics %s at start (%s); the relay and consumer keep trying",
                    ", ".join(topics), exc)


def _start_metrics_server(settings: ServiceSettings) -> Any:
    """With METRICS_PORT set, /metrics on a port of its own (a thread of prometheus_client), else nothing."""
    if not settings.metrics_port:
        return None
    server, _thread = start_http_server(settings.metrics_port, addr=settings.host)
    log.info("metrics on %s:%d/metrics", settings.host, settings.metrics_port)
    return server


class BackgroundLoop(Protocol):
    """A loop the lifespan owns: started after the database, stopped (and awaited) before it closes."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


def build_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    deps: Callable[[Database, Clock], D],
    subscriptions: Callable[[D], Subscription] | None = None,
    loops: Callable[[D], list[BackgroundLoop]] | None = None,
    exception_handlers: Mapping[type[Exception], Callable[..., Any]] | None = None,
    clock: Clock | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """A service's FastAPI app; the lifespan owns the engine, the relay, the consumer and any service loops.

    Every service passes the same three factories: ``deps(db, clock)`` builds its typed dependencies once the
    database exists, ``subscriptions(deps)`` says what it consumes and with which handlers, and ``loops(deps)``
    gives its own background loops (sweeps, senders), run beside the relay and the consumer.
    """
    # Outside production the clock can be moved forward (``motcua clock set``) to drive deadline paths.
    clock = clock or (SystemClock() if settings.environment == "production" else OffsetClock())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            settings.database_url,
            service=settings.service,
            namespace=settings.kafka_topic_namespace,
            clock=clock,
            pool_size=settings.database_pool_size,
        )
        built = deps(db, clock)
        app.state.deps = built
        listens = with_manifests(subscriptions(built)) if subscriptions else None
        relay = OutboxRelay(settings, db) if settings.run_relay else None
        consumer = EventConsumer(settings, db, listens) if settings.run_consumer and listens else None
        app.state.relay, app.state.consumer = relay, consumer
        if settings.environment == "production":
            own = [settings.topic(settings.service)] if relay and settings.service in PRODUCERS else []
            await _require_topics(settings, own + (consumer.topics if consumer else []))
        metrics_server = _start_metrics_server(settings)
        owned: list[BackgroundLoop] = [loop for loop in (relay, consumer) if loop] + (loops(built) if loops else [])
        app.state.drift = DriftScope.of(settings.service, listens)  # drift: manifests out beside the relay, checks in
        owned += [ManifestWriter(settings, db)] if relay else []
        owned += [DriftWatch(settings, db, app.state.drift)] if consumer else []
        tasks = [asyncio.create_task(loop.run(), name=f"{settings.service}-{type(loop).__name__}") for loop in owned]
        log.info("%s started", settings.service)
        try:
            yield
        finally:
            for loop in owned:
                await loop.stop()
            done, pending = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await db.dispose()
            if metrics_server is not None:
                await asyncio.to_thread(metrics_server.shutdown)
                metrics_server.server_close()
            log.info("%s stopped", settings.service)

    configure_logging(settings.service, settings.log_level, settings.log_json)
    setup_tracing(settings.service, settings.otel_exporter_otlp_endpoint, span_exporter)
    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.deps = None
    app.state.clock = clock
    app.state.relay = app.state.consumer = app.state.drift = None
    app.state.token_verifier = TokenVerifier(
        settings.verification_key(),
        algorithm=settings.jwt_algorithm,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    app.state.rate_limits = buckets_from(
        public_per_second=settings.rate_limit_public_per_second,
        public_burst=settings.rate_limit_public_burst,
        callback_per_second=settings.rate_limit_callback_per_second,
        callback_burst=settings.rate_limit_callback_burst,
    )
    install_problem_handlers(app)
    for error, handler in (exception_handlers or {}).items():
        app.add_exception_handler(error, handler)
    app.include_router(_platform_router(metrics=not settings.metrics_port))
    app.include_router(static_router())
    for router in routers:
        app.include_router(router)
    app.add_middleware(_HttpObservability, service=settings.service)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    # Admission control wraps the whole stack, OpenTelemetry's included: a refused request costs no span, no
    # histogram, no routing, no body; it is counted as shed (FastAPI builds its stack on the first request).
    queue = {"max_queue_seconds": settings.admission_max_queue_seconds, "max_queue": settings.admission_max_queue}
    write = Budget("write", slots=settings.admission_write_slots, **queue)
    read = Budget("read", slots=settings.admission_read_slots, **queue)
    build_stack = app.build_middleware_stack

    def build_with_admission() -> ASGIApp:
        return AdmissionControl(build_stack(), service=settings.service, write=write, read=read, openapi=app.openapi)

    app.build_middleware_stack = build_with_admission  # type: ignore[method-assign]
    return app
