"""OpenTelemetry tracing across HTTP, Postgres and Kafka; the trace context rides in event headers."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_configured = False


def setup_tracing(service: str, otlp_endpoint: str | None, exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the process's tracer provider (once); with an exporter, also trace every Postgres query."""
    global _configured
    if _configured:
        return trace.get_tracer_provider()  # type: ignore[return-value]
    provider = TracerProvider(resource=Resource.create({"service.name": f"motcua-{service}"}))
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if exporter is not None:
        # Database spans cost a sixth of a request's CPU (bench/); nobody sees them unless spans are exported.
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument()
    _configured = True
    return provider


def tracer() -> trace.Tracer:
    """The motcua tracer."""
    return trace.get_tracer("motcua")


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, to store with an outbox row."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    """A context whose parent is the given traceparent (or the empty context)."""
    if not traceparent:
        return otel_context.Context()
    return extract({"traceparent": traceparent})


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id inside a traceparent."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 else None


def current_trace_id() -> str | None:
    """Trace id of the active span, as hex."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
