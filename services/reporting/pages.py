"""Reporting's pages for people: a unit's public month (công khai), under ``/trang/cong-khai``.

``GET /trang/cong-khai/{unit}/{yyyy-mm}``: what the commune and ward plans ask a unit to publish each month (received,
resolved, the on-time rate, the late dossiers with their apologies; codes and procedures, never a name), with the
figures of the standard report. ``GET /trang/cong-khai/{unit}``: the last month that has ended. No token; the public
rate limit applies; errors are Vietnamese pages.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.reporting import handlers
from services.reporting.deps import Deps
from shared.pages import PageRouter, Pages
from shared.ratelimit import Policy, rate_limited

PREFIX = "/trang/cong-khai"


def public_month_path(unit: str, month: str) -> str:
    """The page of a unit's month (``month`` as ``YYYY-MM``)."""
    return f"{PREFIX}/{quote(unit, safe='')}/{month}"


def page_router(pages: Pages) -> PageRouter:
    """The public pages, whose errors ``pages`` renders (the ``pages`` of reporting's deps)."""
    router = PageRouter(pages=pages, prefix=PREFIX, dependencies=[rate_limited(Policy.PUBLIC)])

    @router.get("/{unit}", name="public_board")
    async def public_board(unit: str, deps: Deps) -> Response:
        async with deps.db.reading() as tx:
            month = await handlers.latest_public_month(tx, unit)
        return RedirectResponse(public_month_path(unit, month.label), status_code=303)

    @router.get("/{unit}/{month}", name="public_month")
    async def public_month(request: Request, unit: str, month: str, deps: Deps) -> HTMLResponse:
        async with deps.db.reading() as tx:
            view = await handlers.public_month(tx, unit, month, deps=deps)
        period = view["period"]
        title = f"Công khai kết quả giải quyết thủ tục hành chính tháng {period.first.month:02d}/{period.first.year}"
        context = {
            **view,
            "page_title": title,
            "unit_name": view["unit_name"] or f"Đơn vị {view['unit']}",
            "previous_url": view["previous"] and public_month_path(unit, view["previous"].label),
            "next_url": view["next"] and public_month_path(unit, view["next"].label),
        }
        return deps.pages.render(request, "cong_khai.html", context)

    return router
