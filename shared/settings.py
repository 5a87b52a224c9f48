"""Typed, environment-driven settings shared by every service.

A service-prefixed variable (``INTAKE_DATABASE_URL``) overrides the shared one
(``DATABASE_URL``); ``os.environ`` is read here and nowhere else.
"""

from __future__ import annotations

import re

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev"}
# ``make run`` marks every value it invents (motcua/demo.py) with this mark, letters and digits with case ignored
# ("motcua-demo-…", the account "MOTCUADEMO"); a production service refuses any setting that carries it.
DEMO_MARK = "motcuademo"


def is_demonstration(value: str | None) -> bool:
    """Whether a value is one of the local stack's demonstration values (it carries ``motcua-demo``)."""
    return value is not None and DEMO_MARK in re.sub(r"[^0-9a-z]", "", value.lower())


class ServiceSettings(BaseSettings):
    """Settings every service reads; subclasses set ``service`` and add their own."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    service: ClassVar[str] = "service"

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/motcua"
    database_pool_size: int = 10
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_enable_idempotence: bool = False
    kafka_topic_namespace: str = "motcua"
    kafka_topic_partitions: int = 4
    kafka_session_timeout_ms: int = 10000
    # Kafka transport and client authentication (shared/kafka.py builds every client's arguments from these).
    # Production refuses PLAINTEXT: SSL (server certificate checked against KAFKA_SSL_CAFILE; with
    # KAFKA_SSL_CERTFILE/KEYFILE the client proves itself by certificate, mTLS) or SASL_SSL (TLS plus a SCRAM user).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # 0: /metrics on PORT; otherwise /metrics only on this port (which the ingress never routes to) and 404 on PORT.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # Roles of one process; Kubernetes may split them without new code.
    run_relay: bool = True
    run_consumer: bool = True
    relay_poll_seconds: float = 1.0
    relay_batch_size: int = 500
    outbox_retention_hours: float = 168.0
    # The relay compares the broker with what it acknowledged (shared/outbox.py) on each reconnection and this often;
    # when the broker lost acknowledged records it replays the kept outbox by itself, unless this is off.
    relay_check_seconds: float = Field(default=30.0, gt=0)
    relay_auto_replay: bool = True
    consumer_max_attempts: int = 5
    consumer_backoff_initial_seconds: float = 0.1
    consumer_backoff_max_seconds: float = 10.0
    # Drift (shared/drift.py): each producer announces its outbox in manifests; each consumer compares them with its inbox.
    drift_manifest_seconds: float = Field(default=60.0, gt=0)  # how often new outbox rows are announced
    drift_reannounce_seconds: float = Field(default=3600.0, gt=0)  # how often the recent days are announced again
    drift_reannounce_days: int = Field(default=2, ge=1)  # how many days (today included) a re-announcement covers
    drift_manifest_chunk: int = Field(default=1000, ge=1, le=2000)  # outbox rows per manifest event
    drift_check_seconds: float = Field(default=60.0, gt=0)  # how often a consumer recomputes its drift gauge
    drift_grace_seconds: float = Field(default=300.0, ge=0)  # an announced event not applied after this is missing
    drift_keep_days: int = Field(default=8, ge=1)  # announcements older than this are forgotten
    jwt_public_key_file: Path | None = None
    jwt_public_key: str | None = None
    jwt_algorithm: str = "EdDSA"
    jwt_issuer: str = "motcua"
    jwt_audience: str = "motcua"
    otel_exporter_otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_json: bool = True
    # Token buckets per client address on the endpoints that take no bearer token (shared/ratelimit.py); 0 switches off.
    rate_limit_public_per_second: float = 20.0
    rate_limit_public_burst: int = 100
    rate_limit_callback_per_second: float = 200.0
    rate_limit_callback_burst: int = 1000
    # Admission control (shared/admission.py): requests at once per process and how long a queue may be expected to
    # take; beyond it a 503 with Retry-After at once. Chosen from the measured capacity (bench/overload.py).
    admission_write_slots: int = Field(default=4, ge=1)
    admission_read_slots: int = Field(default=4, ge=1)
    admission_max_queue_seconds: float = Field(default=0.25, ge=0)
    admission_max_queue: int = Field(default=256, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Service-prefixed variables first, then the shared ones."""
        prefixed = EnvSettingsSource(settings_cls, env_prefix=f"{cls.service.upper()}_", case_sensitive=False)
        return (init_settings, prefixed, env_settings, file_secret_settings)

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> ServiceSettings:
        if self.environment == "production" and not (self.jwt_public_key or self.jwt_public_key_file):
            raise ValueError("production needs JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE")
        if self.environment == "production" and (self.jwt_public_key or "").strip().lower() in PLACEHOLDER_SECRETS - {""}:
            raise ValueError("JWT_PUBLIC_KEY holds a placeholder")
        self._check_kafka_security()
        connections = 2 * self.database_pool_size  # the pool and as many overflow connections (shared/db.py)
        if self.admission_write_slots + self.admission_read_slots > connections - 2:
            raise ValueError(
                f"ADMISSION_WRITE_SLOTS + ADMISSION_READ_SLOTS must leave the relay and the consumer 2 of the "
                f"{connections} database connections (DATABASE_POOL_SIZE={self.database_pool_size})"
            )
        return self

    def _check_kafka_security(self) -> None:
        """Production talks to Kafka over TLS only; SASL needs its user; a client certificate needs its key."""
        if self.environment == "production" and self.kafka_security_protocol == "PLAINTEXT":
            raise ValueError(
                "KAFKA_SECURITY_PROTOCOL=PLAINTEXT is refused in production: set SSL or SASL_SSL "
                "(and KAFKA_SSL_CAFILE to the cluster CA)"
            )
        if self.kafka_security_protocol == "SASL_SSL" and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError("KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (the client certificate and its key)")
        if self.kafka_ssl_certfile is not None and self.kafka_security_protocol == "PLAINTEXT":
            raise ValueError("KAFKA_SSL_CERTFILE needs KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL")
        if self.metrics_port and self.metrics_port == self.port:
            raise ValueError(f"METRICS_PORT must differ from PORT ({self.port}), or be 0 to serve /metrics on PORT")

    def topic(self, producer: str) -> str:
        """Kafka topic of a producing service."""
        return f"{self.kafka_topic_namespace}.{producer}"

    @property
    def consumer_group(self) -> str:
        """Kafka consumer group of this service."""
        return f"{self.kafka_topic_namespace}.{self.service}"

    def verification_key(self) -> str | None:
        """PEM text of the key that verifies bearer tokens."""
        if self.jwt_public_key:
            return self.jwt_public_key
        if self.jwt_public_key_file and self.jwt_public_key_file.exists():
            return self.jwt_public_key_file.read_text()
        return None
