"""What workflow's use cases need besides their input: the settings, the national calendar, the law in force, the
applicant's links."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends

from services.workflow.notifications import RenderContext
from services.workflow.settings import WorkflowSettings
from shared.calendar import WorkingCalendar
from shared.clock import Clock
from shared.db import Database
from shared.lawstore import LawCache
from shared.pages import CsrfGuard, Pages
from shared.service import ServiceDeps, get_deps

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, kw_only=True)
class WorkflowDeps(ServiceDeps):
    """Built once per process (``create_app``); ``db`` and ``clock`` come from ``ServiceDeps``."""

    settings: WorkflowSettings
    # The national calendar's working days; a province's declared days and the office hours of the case's rules are
    # added per use (``calendars``).
    calendar: WorkingCalendar
    # The rule book and the unit registry (copies of intake's), cached for ``WORKFLOW_LAW_CACHE_SECONDS``.
    law: LawCache
    # What notifications, forms and the applicant's signed links need: the office's names, base URL and link secret.
    render_context: RenderContext
    # The applicant's page (pages.py): its templates, and the tokens of its rating and feedback forms.
    pages: Pages
    forms: CsrfGuard

    @classmethod
    def of(cls, settings: WorkflowSettings, *, db: Database, clock: Clock) -> WorkflowDeps:
        """The dependencies the settings describe."""
        return cls(
            db=db,
            clock=clock,
            settings=settings,
            calendar=WorkingCalendar(),
            law=LawCache(settings.law_cache_seconds),
            render_context=RenderContext(
                public_base_url=settings.public_base_url,
                rating_link_secret=settings.rating_link_secret,
                one_stop_name=settings.one_stop_name,
                unit_names=settings.unit_names,
            ),
            pages=Pages(TEMPLATES),
            forms=form_guard(settings),
        )


def form_guard(settings: WorkflowSettings) -> CsrfGuard:
    """The page forms' tokens: keyed by ``WORKFLOW_PAGE_FORM_SECRET``, or (outside production, which refuses a
    placeholder) by a random key of this process; the cookie is ``Secure`` when the pages are served over HTTPS."""
    secure = settings.environment == "production" or settings.public_base_url.startswith("https://")
    if settings.page_form_secret_is_placeholder:
        return CsrfGuard.ephemeral(secure_cookie=secure)
    return CsrfGuard(settings.page_form_secret.strip(), secure_cookie=secure)


Deps = Annotated[WorkflowDeps, Depends(get_deps)]
