"""Payments' pages for people, under ``/nop-phi``: the citizen's payment page (``/nop-phi/{payment_id}``).

Each route opens its transaction and calls one handler, as the JSON routes do, then maps the result to a
template's context. The page of a request shows the amount and its lines, the VietQR code (an inline PNG) with the
bank and the account in words while it is pending, the expiry, and "Đã thanh toán" once the bank's confirmation has
arrived. It names no one: neither the applicant nor the official who took the money.
"""

from __future__ import annotations

from typing import Annotated, Any

import segno
from fastapi import Path, Request
from fastapi.responses import HTMLResponse

from services.payments import domain, handlers, printing
from services.payments.deps import Deps
from services.payments.domain import PaymentStatus
from services.payments.settings import PaymentsSettings, is_demonstration
from shared.pages import PageRouter, Pages
from shared.ratelimit import Policy, rate_limited

PREFIX = "/nop-phi"
QR_WIDTH_PX = 270  # the page shows the code at most 18 rem wide: whole pixels per module up to that
_STATUS_CLASS = {
    PaymentStatus.PENDING: "",
    PaymentStatus.PAID: "done",
    PaymentStatus.FAILED: "warning",
    PaymentStatus.EXPIRED: "warning",
    PaymentStatus.REFUNDED: "stopped",
}

PaymentId = Annotated[str, Path(min_length=1, max_length=16)]


def qr_image(payload: str) -> str:
    """The VietQR code as a ``data:`` PNG (the pages load nothing else), as large as the page shows it."""
    code = segno.make_qr(payload, error="m", boost_error=False)
    width, _ = code.symbol_size(scale=1, border=4)
    return code.png_data_uri(scale=max(3, QR_WIDTH_PX // width), border=4)


def payment_context(page: handlers.PaymentPage, settings: PaymentsSettings) -> dict[str, Any]:
    """What the template shows of a request (and nothing personal: no applicant, no official)."""
    payment = page.payment
    status = PaymentStatus(payment.status)
    payload = domain.qr_payload(payment) if status is PaymentStatus.PENDING else None
    return {
        "page_title": f"Nộp phí, lệ phí hồ sơ {payment.dossier_code}",
        "unit_name": settings.unit_names.get(payment.unit),
        "p": payment,
        "status": status.value,
        "status_words": domain.STATUS_WORDS[status],
        "status_class": _STATUS_CLASS[status],
        "qr_image": qr_image(payload) if payload else None,
        "memo": domain.decode(payload)["purpose"] if payload else None,
        "bank": domain.bank_name(payment.bank_bin) if payment.bank_bin else None,
        "holder": settings.account_name(payment.unit, payment.bank_bin, payment.account),
        "demo": is_demonstration(payment.account),
        "method": printing.PAYMENT_METHOD_LABEL[printing.payment_method(payment)] if payment.paid_at else None,
        "lookup_url": settings.dossier_lookup_url.format(code=payment.dossier_code),
        "replaced_by": page.replaced_by,
        "replacement_url": settings.payment_page_url(page.replaced_by.id) if page.replaced_by else None,
    }


def page_router(pages: Pages) -> PageRouter:
    """The pages, rendered (errors too) with payments' templates; the public rate limit applies to each."""
    router = PageRouter(pages=pages, prefix=PREFIX, dependencies=[rate_limited(Policy.PUBLIC)])

    @router.get("/{payment_id}", name="payment_page")
    async def payment_page(request: Request, payment_id: PaymentId, deps: Deps) -> HTMLResponse:
        async with deps.db.reading() as tx:
            page = await handlers.payment_page(tx, payment_id)
        return deps.pages.render(request, "payment.html", payment_context(page, deps.settings))

    return router
