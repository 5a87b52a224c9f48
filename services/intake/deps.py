"""What intake's use cases need besides their input: the settings and the caches of reference data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.intake.caches import CalendarCache, CatalogCache
from services.intake.settings import IntakeSettings
from shared.service import ServiceDeps, get_deps


@dataclass(frozen=True, kw_only=True)
class IntakeDeps(ServiceDeps):
    """Built once per process (``create_app``); ``db`` and ``clock`` come from ``ServiceDeps``."""

    settings: IntakeSettings
    calendars: CalendarCache
    catalog: CatalogCache


Deps = Annotated[IntakeDeps, Depends(get_deps)]
