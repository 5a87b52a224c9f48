"""What reporting's use cases need besides their input, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends

from services.reporting.domain import Horizons, ReportRules, percent_text
from services.reporting.dvcqg import SyncMapping
from services.reporting.settings import ReportingSettings
from shared.lawstore import LawCache
from shared.pages import Pages
from shared.service import ServiceDeps, get_deps
from shared.vntext import format_vnd

TEMPLATES = Path(__file__).parent / "templates"


def reporting_pages() -> Pages:
    """Reporting's pages: its templates (``templates/``), then the shared ones; counts print as ``1.234``, rates as
    ``97,5%``."""
    pages = Pages(TEMPLATES)
    pages.env.filters.update(number=format_vnd, percent=percent_text)
    return pages


@dataclass(frozen=True, kw_only=True)
class ReportingDeps(ServiceDeps):
    """Reporting's dependencies: the settings (the procedures' fields among them), the report rules, the
    near-due horizon of each month the roll-up counts with (computed once per process), the law in force and the unit
    registry (intake's facts, cached), and the pages' templates."""

    settings: ReportingSettings
    rules: ReportRules
    horizons: Horizons
    law: LawCache = field(default_factory=LawCache)
    pages: Pages = field(default_factory=reporting_pages)  # create_app gives the one its page router shows errors with
    # The national portal's names and codes (REPORTING_DVCQG_MAPPING over DOMAIN §7's defaults), for the DVCQG sync.
    sync_mapping: SyncMapping = field(default_factory=SyncMapping.of)


Deps = Annotated[ReportingDeps, Depends(get_deps)]
