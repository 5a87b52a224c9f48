"""Payments settings."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class PaymentsSettings(ServiceSettings):
    """Settings of the payments service (``PAYMENTS_*`` overrides the shared variables)."""

    service: ClassVar[str] = "payments"
    port: int = 8004
