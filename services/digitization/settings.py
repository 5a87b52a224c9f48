"""Digitization settings."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class DigitizationSettings(ServiceSettings):
    """Settings of the digitization service (``DIGITIZATION_*`` overrides the shared variables)."""

    service: ClassVar[str] = "digitization"
    port: int = 8003
