"""Intake settings."""

from __future__ import annotations

from datetime import time
from typing import ClassVar

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    """Settings of the intake service (``INTAKE_*`` overrides the shared variables)."""

    service: ClassVar[str] = "intake"
    port: int = 8001
    office_opens: time = time(7, 30)
    office_closes: time = time(17, 0)
    same_day_cutoff: time = time(15, 0)
