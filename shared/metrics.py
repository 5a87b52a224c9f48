"""Prometheus metrics shared by every service, served at ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Histogram(
    "motcua_http_request_duration_seconds",
    "HTTP request latency by route and status",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ADMISSION_SHED = Counter(
    "motcua_http_shed_total", "Requests refused with 503 at admission (no slot, queue too long)", ["service", "route", "budget"]
)
ADMISSION_QUEUE_SECONDS = Histogram(
    "motcua_http_queue_seconds",
    "Time an admitted request waited for a slot of its budget",
    ["service", "budget"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
ADMISSION_IN_FLIGHT = Gauge("motcua_http_in_flight", "Requests holding a slot of their budget", ["service", "budget"])
SWEEP_ROUNDS = Counter("motcua_sweep_rounds_total", "Rounds of a periodic sweep that completed", ["sweep"])
SWEEP_CLAIMED = Counter("motcua_sweep_claimed_total", "Rows a periodic sweep claimed and acted on", ["sweep"])
OUTBOX_BACKLOG = Gauge("motcua_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge("motcua_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"])
EVENTS_PUBLISHED = Counter("motcua_events_published_total", "Events the relay published", ["service", "topic"])
RELAY_ERRORS = Counter("motcua_relay_errors_total", "Relay rounds that failed and will be retried", ["service"])
OUTBOX_REPLAYS = Counter(
    "motcua_outbox_replays_total",
    "Replays of sent outbox rows: asked for (requested) or started by the relay when the broker lost acknowledged records",
    ["service", "reason"],
)
OUTBOX_REPLAYED_ROWS = Counter(
    "motcua_outbox_replayed_rows_total", "Sent outbox rows queued to be published again by a replay", ["service", "reason"]
)
RELAY_BROKER_DATA_LOST = Gauge(
    "motcua_relay_broker_data_lost",
    "1 while the relay's last check found the broker missing acknowledged records and no replay has run since",
    ["service"],
)
CONSUMER_REWINDS = Counter(
    "motcua_consumer_rewinds_total",
    "Partitions a consumer read again from the log start because the broker lost data",
    ["service", "reason"],
)
EVENTS_CONSUMED = Counter(
    "motcua_events_consumed_total", "Events a consumer handled, by outcome", ["service", "type", "outcome"]
)
EVENT_RETRIES = Counter("motcua_event_retries_total", "Transient failures retried in place", ["service", "type"])
DEAD_LETTERS = Counter("motcua_dead_letters_total", "Events written to dead_letters", ["service", "reason"])
CONSUMER_LAG = Gauge(
    "motcua_consumer_lag",
    "Records a consumer has still to handle: the partition's high watermark minus the consumer's position",
    ["service", "topic", "partition"],
)
EVENT_LAG = Histogram(
    "motcua_event_lag_seconds",
    "Time from an event's commit at its producer to its effect at this consumer",
    ["service", "type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DRIFT_MISSING = Gauge(
    "motcua_drift_missing_events",
    "Events a producer announced (outbox manifests) that this consumer neither applied nor dead-lettered in the grace period",
    ["service", "producer"],
)

# Why a consumer writes a dead letter (shared/consumer.py).
DEAD_LETTER_REASONS = ("undecodable", "unknown_type", "permanent", "retries_spent")
# Why the outbox is replayed (shared/outbox.py), and why a consumer reads a partition again (shared/consumer.py).
REPLAY_REASONS = ("requested", "cluster_changed", "log_truncated")
CONSUMER_REWIND_REASONS = ("log_truncated", "group_forgotten")


def zero_consumer_series(service: str, types: Iterable[str]) -> None:
    """Create a consumer's labelled failure counters at 0 before anything fails.

    A series that first appears at 1 looks like no change to ``increase()``/``rate()``, so the dashboards would
    miss the first dead letter or retry, and show "no data" rather than 0 while all is well.
    """
    for reason in DEAD_LETTER_REASONS:
        DEAD_LETTERS.labels(service, reason)
    for type_ in types:
        EVENT_RETRIES.labels(service, type_)
    for reason in CONSUMER_REWIND_REASONS:
        CONSUMER_REWINDS.labels(service, reason)


def zero_relay_series(service: str) -> None:
    """Create the relay's error counter at 0 (same reason as ``zero_consumer_series``)."""
    RELAY_ERRORS.labels(service)
    RELAY_BROKER_DATA_LOST.labels(service).set(0)
    for reason in REPLAY_REASONS:
        OUTBOX_REPLAYS.labels(service, reason)
        OUTBOX_REPLAYED_ROWS.labels(service, reason)
