"""Intake settings."""

from __future__ import annotations

from datetime import date, time
from typing import ClassVar

from pydantic import model_validator

from shared.settings import PLACEHOLDER_SECRETS, ServiceSettings


class IntakeSettings(ServiceSettings):
    """Settings of the intake service (``INTAKE_*`` overrides the shared variables)."""

    service: ClassVar[str] = "intake"
    port: int = 8001
    office_opens: time = time(7, 30)
    office_closes: time = time(17, 0)
    same_day_cutoff: time = time(15, 0)
    dossier_code_format: str = "{unit}-{day:%y%m%d}-{sequence:04d}"
    calendar_cache_seconds: float = 10.0
    public_base_url: str = "http://127.0.0.1:8001"
    unit_names: dict[str, str] = {}
    portal_webhook_secret: str | None = None
    portal_webhook_max_age_seconds: int = 300
    portal_sync_url: str | None = None
    portal_sync_secret: str | None = None
    portal_sync_interval_seconds: float = 1.0
    portal_sync_backoff_max_seconds: float = 300.0

    @model_validator(mode="after")
    def _real_secrets_in_production(self) -> IntakeSettings:
        if self.environment == "production":
            for name in ("portal_webhook_secret", "portal_sync_secret"):
                value = getattr(self, name)
                if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(f"{name.upper()} holds a placeholder")
        try:
            self.dossier_code_format.format(unit="U", day=date(2025, 1, 1), sequence=1)
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(f"DOSSIER_CODE_FORMAT is not usable: {exc}") from exc
        return self
