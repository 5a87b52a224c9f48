"""Workflow settings."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from shared.settings import PLACEHOLDER_SECRETS, ServiceSettings, is_demonstration




class WorkflowSettings(ServiceSettings):
    """Settings of the workflow service (``WORKFLOW_*`` overrides the shared variables)."""

    service: ClassVar[str] = "workflow"
    port: int = 8002
    # The law in force (office hours, cut-off, counting, deadlines, forms) is data: intake's rule versions, kept here
    # from its facts and read at most every this many seconds (shared.lawstore.LawCache).
    law_cache_seconds: float = Field(default=10.0, gt=0)
    # The deadline sweep: a role Kubernetes may give to some replicas only; several may run at once.
    run_sweep: bool = True
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    sweep_batch_size: int = Field(default=200, ge=1)
    # One office day (07:30-17:00) ahead by default: a 17:00 deadline is announced at 17:00 the working day before.
    warning_threshold_working_hours: float = Field(default=9.5, ge=0, description="warn this many office hours ahead")
    # The public rating link is signed with this secret (HMAC-SHA256 over the dossier code).
    rating_link_secret: str = "dev"
    public_base_url: str = "http://127.0.0.1:8002"
    # The forms of the applicant's page (rating, feedback) carry tokens signed with this secret (shared.pages.CsrfGuard);
    # every replica needs the same. Outside production a placeholder gets a random key of the process instead.
    page_form_secret: str = "dev"
    # Names printed on the forms (02, 04, 05): the one-stop department and, per unit code, its governing body.
    one_stop_name: str = "Bộ phận Tiếp nhận và Trả kết quả"
    unit_names: dict[str, str] = Field(default_factory=dict, description='JSON, e.g. {"000.00.12.H56": "UBND PHƯỜNG BẾN NGHÉ"}')
    # Applicant notifications (e-mail, SMS): a sender loop that may run in several replicas (SKIP LOCKED).
    run_notifications: bool = True
    notification_interval_seconds: float = Field(default=2.0, gt=0)
    notification_batch_size: int = Field(default=50, ge=1)
    notification_concurrency: int = Field(default=8, ge=1, description="sends in flight at once per channel and replica")
    notification_send_timeout_seconds: float = Field(default=30.0, gt=0)
    # A claimed notification whose sender died is sent again after this: longer than a send may take.
    notification_lease_seconds: float = Field(default=120.0, gt=0)
    notification_backoff_initial_seconds: float = Field(default=5.0, gt=0)
    notification_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    notification_max_attempts: int = Field(default=30, ge=1)
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "Bộ phận Một cửa <motcua@localhost>"
    sms_provider_url: str = ""
    sms_provider_token: str = ""

    @model_validator(mode="after")
    def _no_demonstration_values_in_production(self) -> WorkflowSettings:
        if self.environment == "production":
            for field in ("smtp_host", "smtp_username", "smtp_password", "smtp_from", "sms_provider_url", "sms_provider_token"):
                if is_demonstration(getattr(self, field)):
                    raise ValueError(f"{field.upper()} is a demonstration value of the local stack (motcua-demo)")
        return self

    @model_validator(mode="after")
    def _backoff_cap(self) -> WorkflowSettings:
        if self.notification_backoff_max_seconds < self.notification_backoff_initial_seconds:
            raise ValueError("notification_backoff_max_seconds must be at least notification_backoff_initial_seconds")
        if self.notification_lease_seconds <= self.notification_send_timeout_seconds:
            raise ValueError("notification_lease_seconds must exceed notification_send_timeout_seconds")
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_rating_secret(self) -> WorkflowSettings:
        if self.environment == "production":
            secret = self.rating_link_secret.strip()
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
                raise ValueError("production needs WORKFLOW_RATING_LINK_SECRET: at least 32 characters, not a placeholder")
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_page_form_secret(self) -> WorkflowSettings:
        if self.environment == "production":
            secret = self.page_form_secret.strip()
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
                raise ValueError("production needs WORKFLOW_PAGE_FORM_SECRET: at least 32 characters, not a placeholder")
        return self

    @property
    def page_form_secret_is_placeholder(self) -> bool:
        """True when no real form secret is configured (allowed outside production only)."""
        secret = self.page_form_secret.strip()
        return secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 16
