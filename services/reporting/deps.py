"""What reporting's use cases need besides their input, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.reporting.domain import Horizons, ReportRules
from services.reporting.settings import ReportingSettings
from shared.service import ServiceDeps, get_deps


@dataclass(frozen=True, kw_only=True)
class ReportingDeps(ServiceDeps):
    """Reporting's dependencies: the settings (the procedures' fields among them), the report rules, and the
    near-due horizon of each month the roll-up counts with (computed once per process)."""

    settings: ReportingSettings
    rules: ReportRules
    horizons: Horizons


Deps = Annotated[ReportingDeps, Depends(get_deps)]
