"""Settings: a service-prefixed variable overrides the shared one."""

from __future__ import annotations

import pytest

from services.intake.settings import IntakeSettings
from services.workflow.settings import WorkflowSettings


def test_the_service_prefixed_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://shared/db")
    monkeypatch.setenv("INTAKE_DATABASE_URL", "postgresql+asyncpg://intake/db")
    assert IntakeSettings().database_url == "postgresql+asyncpg://intake/db"
    assert WorkflowSettings().database_url == "postgresql+asyncpg://shared/db"


def test_kafka_settings_and_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", "true")
    monkeypatch.setenv("KAFKA_TOPIC_NAMESPACE", "hue")
    settings = WorkflowSettings()
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092" and settings.kafka_enable_idempotence
    assert settings.topic("intake") == "hue.intake" and settings.consumer_group == "hue.workflow"


def test_production_refuses_to_start_without_a_token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("JWT_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("JWT_PUBLIC_KEY_FILE", raising=False)
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        IntakeSettings()
