"""What workflow's use cases need besides their input: the settings, the office's calendar, the applicant's links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.workflow.notifications import RenderContext
from services.workflow.settings import WorkflowSettings
from shared.calendar import WorkingCalendar
from shared.clock import Clock
from shared.db import Database
from shared.service import ServiceDeps, get_deps


@dataclass(frozen=True, kw_only=True)
class WorkflowDeps(ServiceDeps):
    """Built once per process (``create_app``); ``db`` and ``clock`` come from ``ServiceDeps``."""

    settings: WorkflowSettings
    # The national calendar in the office's hours; a province's declared days are added per use (``calendars``).
    calendar: WorkingCalendar
    # What notifications, forms and the applicant's signed links need: the office's names, base URL and link secret.
    render_context: RenderContext

    @classmethod
    def of(cls, settings: WorkflowSettings, *, db: Database, clock: Clock) -> WorkflowDeps:
        """The dependencies the settings describe."""
        return cls(
            db=db,
            clock=clock,
            settings=settings,
            calendar=WorkingCalendar(
                start_of_day=settings.office_opens, end_of_day=settings.office_closes, cutoff=settings.same_day_cutoff
            ),
            render_context=RenderContext(
                public_base_url=settings.public_base_url,
                rating_link_secret=settings.rating_link_secret,
                one_stop_name=settings.one_stop_name,
                unit_names=settings.unit_names,
            ),
        )


Deps = Annotated[WorkflowDeps, Depends(get_deps)]
