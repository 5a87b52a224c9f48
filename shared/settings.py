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
    host: str = "127.0.0.1"
    port: int = 8000
    # Roles of one process; Kubernetes may split them without new code.
    run_relay: bool = True
    run_consumer: bool = True
    relay_poll_seconds: float = 1.0
    relay_batch_size: int = 500
    outbox_retention_hours: float = 168.0
    consumer_max_attempts: int = 5
    consumer_backoff_initial_seconds: float = 0.1
    consumer_backoff_max_seconds: float = 10.0
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
        connections = 2 * self.database_pool_size  # the pool and as many overflow connections (shared/db.py)
        if self.admission_write_slots + self.admission_read_slots > connections - 2:
            raise ValueError(
                f"ADMISSION_WRITE_SLOTS + ADMISSION_READ_SLOTS must leave the relay and the consumer 2 of the "
                f"{connections} database connections (DATABASE_POOL_SIZE={self.database_pool_size})"
            )
        return self

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
