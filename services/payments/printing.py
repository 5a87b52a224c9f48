"""Payments' printed form: the electronic fee receipt (biên lai thu phí, lệ phí)."""

from __future__ import annotations

from services.payments import store
from services.payments.settings import PaymentsSettings
from shared import forms


def fee_receipt(payment: store.Payment, settings: PaymentsSettings) -> bytes:
    """The receipt of a paid (or since refunded) payment."""
    if payment.paid_at is None or payment.receipt_number is None:
        raise ValueError(f"payment {payment.id} has no receipt: it is {payment.status}")
    if payment.channel == "counter":
        method = forms.PaymentMethod.CASH
    elif payment.provider == "paygov":
        method = forms.PaymentMethod.ONLINE
    else:
        method = forms.PaymentMethod.TRANSFER
    return forms.render_fee_receipt(
        forms.FeeReceiptForm(
            agency=forms.Agency(name=settings.unit_names.get(payment.unit, f"Bộ phận Một cửa {payment.unit}")),
            dossier_code=payment.dossier_code,
            lookup_url=settings.dossier_lookup_url.format(code=payment.dossier_code),
            receipt_number=payment.receipt_number,
            payer=forms.Applicant(name=payment.applicant_name or "—"),
            procedure=forms.Procedure(name=payment.procedure_name, code=payment.procedure_code),
            lines=tuple(
                forms.ReceiptLine(name=line["name"], amount=int(line["amount"]), quantity=int(line.get("quantity", 1)))
                for line in payment.lines
            ),
            paid_at=payment.paid_at,
            method=method,
            collector=forms.Officer(name=payment.confirmed_by or ""),
            transaction_id="" if payment.channel == "counter" else (payment.provider_transaction_id or ""),
            refunded_at=payment.refunded_at,
            refund_reason=payment.refund_reason or "",
        )
    )
