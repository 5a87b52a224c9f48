"""Prometheus metrics shared by every service, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Histogram(
    "motcua_http_request_duration_seconds",
    "HTTP request latency by route and status",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_BACKLOG = Gauge("motcua_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge("motcua_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"])
EVENTS_PUBLISHED = Counter("motcua_events_published_total", "Events the relay published", ["service", "topic"])
RELAY_ERRORS = Counter("motcua_relay_errors_total", "Relay rounds that failed and will be retried", ["service"])
EVENTS_CONSUMED = Counter(
    "motcua_events_consumed_total", "Events a consumer handled, by outcome", ["service", "type", "outcome"]
)
EVENT_RETRIES = Counter("motcua_event_retries_total", "Transient failures retried in place", ["service", "type"])
DEAD_LETTERS = Counter("motcua_dead_letters_total", "Events written to dead_letters", ["service", "reason"])
EVENT_LAG = Histogram(
    "motcua_event_lag_seconds",
    "Time from an event's commit at its producer to its effect at this consumer",
    ["service", "type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
