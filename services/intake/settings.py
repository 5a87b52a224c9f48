"""Intake settings."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from services.intake.domain import ASSERTING_PARTIES, DEFAULT_IDENTIFICATION_ASSERTERS, IDENTIFICATIONS, national_mapping
from shared.settings import PLACEHOLDER_SECRETS, ServiceSettings, is_demonstration

# Office hours, the same-day cut-off and the dossier code format are rules of the law in force (shared/rules.py): an
# admin publishes them as a rule set version (POST /api/v1/rulesets), not as settings.


class IntakeSettings(ServiceSettings):
    """Settings of the intake service (``INTAKE_*`` overrides the shared variables)."""

    service: ClassVar[str] = "intake"
    port: int = 8001
    calendar_cache_seconds: float = 10.0
    public_base_url: str = "http://127.0.0.1:8001"
    unit_names: dict[str, str] = {}
    portal_webhook_secret: str | None = None
    portal_webhook_max_age_seconds: int = 300
    portal_sync_url: str | None = None
    portal_sync_secret: str | None = None
    portal_sync_interval_seconds: float = 1.0
    portal_sync_backoff_max_seconds: float = 300.0
    # Which identification each party may assert at reception (``none`` always): a clerk reads the chip of the id card
    # at the counter, the portal's signed webhook vouches for a VNeID level-2 login [I]. Anything else is a 422.
    identification_asserted_by: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_IDENTIFICATION_ASSERTERS.items()}
    )
    # ---- the national procedure list through the provincial LGSP (services/intake/national.py; DOMAIN §7.1) ---------
    # The same names as reporting's DVCQG sync settings: an unprefixed DVCQG_* variable configures both services.
    dvcqg_lgsp_url: str | None = None  # unset: the national catalog import answers 503
    dvcqg_auth_endpoint: str = "/auth"
    dvcqg_integration_endpoint: str = "/integration"
    dvcqg_username: str = ""
    dvcqg_password: str = ""
    dvcqg_dstcode: str = ""  # the `dstcode` header: the national portal's code at the LGSP
    dvcqg_madonvi: str = ""  # `madonvi` of the calls, unless the admin's request names a unit
    dvcqg_session_invalid_codes: list[str] = Field(default_factory=list)
    dvcqg_session_ttl_seconds: float = Field(default=0, ge=0)  # renew a session older than this before use (0: when refused)
    dvcqg_timeout_seconds: float = Field(default=30, gt=0)
    # Where LayDanhSachTTHC's and LayThuTuc's answers keep what the catalog reads (domain.DEFAULT_NATIONAL_MAPPING);
    # a key given replaces the default.
    national_catalog_mapping: dict[str, Any] = Field(default_factory=dict)
    national_catalog_concurrency: int = Field(default=4, ge=1, le=32)  # LayThuTuc calls in flight at once

    @model_validator(mode="after")
    def _no_demonstration_values_in_production(self) -> IntakeSettings:
        if self.environment == "production":
            for field in ("portal_webhook_secret", "portal_sync_secret"):
                if is_demonstration(getattr(self, field)):
                    raise ValueError(f"{field.upper()} is a demonstration value of the local stack (motcua-demo)")
        return self

    @model_validator(mode="after")
    def _real_secrets_in_production(self) -> IntakeSettings:
        if self.environment == "production":
            for name in ("portal_webhook_secret", "portal_sync_secret"):
                value = getattr(self, name)
                if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(f"{name.upper()} holds a placeholder")
        for party, methods in self.identification_asserted_by.items():
            if party not in ASSERTING_PARTIES or not set(methods) <= set(IDENTIFICATIONS):
                raise ValueError(
                    f"IDENTIFICATION_ASSERTED_BY: {party!r}: {methods!r} (parties {ASSERTING_PARTIES}, methods {IDENTIFICATIONS})"
                )
        national_mapping(self.national_catalog_mapping)  # an unknown key is refused at start-up
        return self
