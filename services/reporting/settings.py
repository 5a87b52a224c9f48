"""Reporting settings."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    """Settings of the reporting service (``REPORTING_*`` overrides the shared variables)."""

    service: ClassVar[str] = "reporting"
    port: int = 8005
