"""What payments' use cases need besides their input: the settings (collection accounts, providers' secrets, receipts)
and the templates of its pages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends

from services.payments.settings import PaymentsSettings
from shared.pages import Pages
from shared.service import ServiceDeps, get_deps

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, kw_only=True)
class PaymentsDeps(ServiceDeps):
    """Built once per process (``create_app``); ``db`` and ``clock`` come from ``ServiceDeps``."""

    settings: PaymentsSettings
    pages: Pages


def payment_pages() -> Pages:
    """Payments' templates (``services/payments/templates``) over the shared ones."""
    return Pages(TEMPLATES)


Deps = Annotated[PaymentsDeps, Depends(get_deps)]
