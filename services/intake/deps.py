"""What intake's use cases need besides their input: the settings, the caches of reference data and the pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends

from services.intake import domain
from services.intake.caches import CalendarCache, CatalogCache
from services.intake.settings import IntakeSettings
from shared.lawstore import LawCache
from shared.lgsp import LgspConfig
from shared.pages import Pages
from shared.service import ServiceDeps, get_deps


@dataclass(frozen=True, kw_only=True)
class IntakeDeps(ServiceDeps):
    """Built once per process (``create_app``); ``db`` and ``clock`` come from ``ServiceDeps``."""

    settings: IntakeSettings
    calendars: CalendarCache
    catalog: CatalogCache
    law: LawCache  # the rule book and the unit registry (shared/lawstore.py), read at most every few seconds
    pages: Pages  # the templates of the pages for people (services/intake/pages.py)
    lgsp: LgspConfig | None = None  # how to reach the LGSP for the national procedure list (None: not configured)
    national_mapping: dict[str, Any] = field(default_factory=domain.national_mapping)  # its answers, read by the catalog


Deps = Annotated[IntakeDeps, Depends(get_deps)]
