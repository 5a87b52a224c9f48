"""Payments' printed form: the electronic fee receipt (biên lai thu phí, lệ phí)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.payments import store
from services.payments.settings import PaymentsSettings
from shared.pdf import (
    Agency,
    Applicant,
    Officer,
    Procedure,
    check_aware,
    form_pdf,
    output_pdf,
    start_form,
    write_field,
    write_lookup,
    write_paragraph,
    write_procedure,
    write_signature,
    write_table,
)
from shared.vntext import amount_in_words, format_instant, format_vnd

# The electronic fee receipt (DOMAIN §5.2; Decree 123/2020/NĐ-CP, Circular 78/2021/TT-BTC: verify the layout).
FEE_RECEIPT_TITLE = "Biên lai thu phí, lệ phí"


class PaymentMethod(StrEnum):
    """How a fee was paid."""

    CASH = "CASH"
    TRANSFER = "TRANSFER"
    ONLINE = "ONLINE"


PAYMENT_METHOD_LABEL = {
    PaymentMethod.CASH: "Tiền mặt tại Bộ phận Một cửa",
    PaymentMethod.TRANSFER: "Chuyển khoản (VietQR)",
    PaymentMethod.ONLINE: "Thanh toán trực tuyến",
}


@dataclass(frozen=True, kw_only=True)
class ReceiptLine:
    """One fee or charge collected: its name, how many, and the line's amount in whole VND."""

    name: str
    amount: int
    quantity: int = 1

    def __post_init__(self) -> None:
        if self.amount < 0 or self.quantity < 1:
            raise ValueError("a receipt line has an amount of at least 0 and a quantity of at least 1")


@dataclass(frozen=True, kw_only=True)
class FeeReceiptForm:
    """Biên lai thu phí, lệ phí: what was collected for a dossier, from whom, how and when."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    receipt_number: str
    payer: Applicant
    procedure: Procedure
    lines: tuple[ReceiptLine, ...]
    paid_at: datetime
    method: PaymentMethod
    collector: Officer
    transaction_id: str = ""
    refunded_at: datetime | None = None
    refund_reason: str = ""

    def __post_init__(self) -> None:
        check_aware(self)
        if not self.lines:
            raise ValueError("a receipt lists at least one line")
        if self.total <= 0:
            raise ValueError("a receipt is for a positive amount")
        if not self.receipt_number.strip():
            raise ValueError("a receipt has a number")

    @property
    def total(self) -> int:
        """Sum of the lines, VND."""
        return sum(line.amount for line in self.lines)


def render_fee_receipt(form: FeeReceiptForm) -> bytes:
    """Biên lai thu phí, lệ phí: the lines collected, the total in figures and in words, how and when it was paid."""
    pdf = form_pdf(number="", title=FEE_RECEIPT_TITLE, dossier_code=form.dossier_code)
    pdf._footer = f"{FEE_RECEIPT_TITLE} số {form.receipt_number} – Mã hồ sơ: {form.dossier_code}"
    start_form(
        pdf,
        agency=form.agency,
        title=FEE_RECEIPT_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.paid_at,
    )
    write_field(pdf, "Số biên lai", form.receipt_number, bold=True)
    write_field(pdf, "Họ và tên người nộp tiền", form.payer.name, bold=True)
    if form.payer.address:
        write_field(pdf, "Địa chỉ", form.payer.address)
    write_procedure(pdf, form.procedure)
    write_table(
        pdf,
        ("TT", "Nội dung thu", "Số lượng", "Thành tiền (đồng)"),
        [
            (str(i), line.name, str(line.quantity), format_vnd(line.amount))
            for i, line in enumerate(form.lines, start=1)
        ],
        widths=(7, 59, 12, 22),
        align=("CENTER", "LEFT", "CENTER", "RIGHT"),
    )
    write_field(pdf, "Tổng số tiền", f"{format_vnd(form.total)} đồng", bold=True)
    write_field(pdf, "Số tiền bằng chữ", amount_in_words(form.total))
    write_field(pdf, "Hình thức thanh toán", PAYMENT_METHOD_LABEL[form.method])
    if form.transaction_id:
        write_field(pdf, "Mã giao dịch", form.transaction_id)
    write_field(pdf, "Thời điểm thu tiền", format_instant(form.paid_at))
    if form.refunded_at is not None:
        note = f"Đã hoàn trả toàn bộ số tiền vào lúc {format_instant(form.refunded_at)}."
        if form.refund_reason:
            note += f" Lý do: {form.refund_reason}"
        write_paragraph(pdf, note, style="I")
    write_lookup(pdf, form.lookup_url)
    write_signature(pdf, "Người thu tiền", form.collector)
    return output_pdf(pdf)


# ---- from the service's records to its forms ----------------------------------


def payment_method(payment: store.Payment) -> PaymentMethod:
    """How a paid request was paid: cash at the counter, the national payment platform, or a bank transfer."""
    if payment.channel == "counter":
        return PaymentMethod.CASH
    if payment.provider == "paygov":
        return PaymentMethod.ONLINE
    return PaymentMethod.TRANSFER


def fee_receipt(payment: store.Payment, settings: PaymentsSettings) -> bytes:
    """The receipt of a paid (or since refunded) payment."""
    if payment.paid_at is None or payment.receipt_number is None:
        raise ValueError(f"payment {payment.id} has no receipt: it is {payment.status}")
    method = payment_method(payment)
    return render_fee_receipt(
        FeeReceiptForm(
            agency=Agency(name=settings.unit_names.get(payment.unit, f"Bộ phận Một cửa {payment.unit}")),
            dossier_code=payment.dossier_code,
            lookup_url=settings.dossier_lookup_url.format(code=payment.dossier_code),
            receipt_number=payment.receipt_number,
            payer=Applicant(name=payment.applicant_name or "—"),
            procedure=Procedure(name=payment.procedure_name, code=payment.procedure_code),
            lines=tuple(
                ReceiptLine(name=line["name"], amount=int(line["amount"]), quantity=int(line.get("quantity", 1)))
                for line in payment.lines
            ),
            paid_at=payment.paid_at,
            method=method,
            collector=Officer(name=payment.confirmed_by or ""),
            transaction_id="" if payment.channel == "counter" else (payment.provider_transaction_id or ""),
            refunded_at=payment.refunded_at,
            refund_reason=payment.refund_reason or "",
        )
    )
