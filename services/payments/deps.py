"""What payments' use cases need besides their input: the settings (collection accounts, providers' secrets, receipts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.payments.settings import PaymentsSettings
from shared.service import ServiceDeps, get_deps


@dataclass(frozen=True, kw_only=True)
class PaymentsDeps(ServiceDeps):
    """Built once per process (``create_app``); ``db`` and ``clock`` come from ``ServiceDeps``."""

    settings: PaymentsSettings


Deps = Annotated[PaymentsDeps, Depends(get_deps)]
