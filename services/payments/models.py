"""Payments' HTTP shapes: the commands it takes and the ``*Public`` models it answers with."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from services.payments.domain import PaymentStatus
from shared.errors import Problem

# ---- commands ---------------------------------------------------------------------------------


class ProviderCallback(BaseModel):
    """What a bank or the payment platform reports about one transaction (HMAC-signed)."""

    transaction_id: str = Field(min_length=1, max_length=128, description="the provider's id: a repeat is the same transaction")
    status: Literal["succeeded", "failed"] = "succeeded"
    amount: int = Field(ge=0, description="whole VND credited")
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    reference: str = Field(default="", max_length=500, description="the transfer memo (nội dung chuyển khoản)")
    payment_id: str | None = Field(default=None, max_length=16, description="when the platform carries the request id itself")
    account: str | None = Field(default=None, max_length=19, description="the collection account credited")
    paid_at: AwareDatetime | None = None
    message: str | None = Field(default=None, max_length=500, description="why a failed payment failed")


class CashPayment(BaseModel):
    """A clerk takes the fee in cash at the counter."""

    amount: int = Field(gt=0, description="whole VND handed over; must equal the fee")
    payer_name: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=500)


class RefundRequest(BaseModel):
    """A leader refunds a paid fee."""

    reason: str = Field(min_length=5, max_length=2000)


class MatchTransfer(BaseModel):
    """A clerk or leader says which request a held transfer pays."""

    payment_id: str = Field(min_length=1, max_length=16)
    note: str | None = Field(default=None, max_length=2000)
    accept_difference: bool = Field(default=False, description="a leader accepts an amount that differs from the fee")


class DismissTransfer(BaseModel):
    """A leader closes a held transfer that pays no request (e.g. the money went back to the payer)."""

    reason: str = Field(min_length=5, max_length=2000)


def parse_callback(body: bytes) -> ProviderCallback:
    """The callback body, or a 422 naming what is wrong."""
    try:
        return ProviderCallback.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"location": [str(p) for p in e["loc"]], "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors[:5])
        raise Problem(422, "validation-error", "The request is not valid", detail, errors=errors) from None


# ---- response models ----------------------------------------------------------------------------


class PaymentLinePublic(BaseModel):
    """One assessed fee line."""

    code: str
    name: str
    quantity: int
    amount: int
    exempted_by: str | None = None


class PaymentPublic(BaseModel):
    """A payment request: what is due, where to pay it (the VietQR payload), and what became of it."""

    id: str
    dossier_code: str
    unit: str
    receiving_unit: str | None
    basis: str
    procedure_code: str
    procedure_name: str
    status: PaymentStatus
    amount: int
    currency: str
    lines: list[PaymentLinePublic]
    qr_payload: str | None
    payment_page_url: str = Field(
        description="the citizen's page for this request: the amount, the VietQR and the account to pay while it is "
        "pending, and that it was paid once the bank's confirmation has arrived"
    )
    bank_bin: str | None
    account: str | None
    created_at: datetime
    expires_at: datetime
    replaces_payment_id: str | None
    paid_at: datetime | None
    channel: str | None
    provider: str | None
    provider_transaction_id: str | None
    receipt_number: str | None
    failed_at: datetime | None
    failure_reason: str | None
    refunded_at: datetime | None
    refund_reason: str | None


class PaymentsPublic(BaseModel):
    """A list of payments."""

    data: list[PaymentPublic]
    count: int


class FeeAssessmentPublic(BaseModel):
    """What payments assessed for a dossier."""

    dossier_code: str
    unit: str
    procedure_code: str
    procedure_version: int
    channel: str
    fee_lines: list[dict[str, Any]]
    copies: int
    pages: int | None
    exemption: str | None
    assessed_at_reception: int
    waiting_for_pages: list[str]
    withdrawn: bool
    payments: list[PaymentPublic]


class TransferPublic(BaseModel):
    """A money movement the service recorded, and what became of it."""

    id: int
    provider: str
    provider_transaction_id: str
    source: str
    amount: int
    currency: str
    reference: str
    unit: str | None
    occurred_at: datetime
    received_at: datetime
    outcome: str
    payment_id: str | None
    note: str | None
    resolved_by: str | None
    resolved_at: datetime | None


class TransfersPublic(BaseModel):
    """A list of transfers."""

    data: list[TransferPublic]
    count: int


class CallbackResult(BaseModel):
    """The answer to a provider: what the transaction did (a repeat gives the first answer, ``duplicate`` true)."""

    transaction_id: str
    outcome: str
    duplicate: bool
    payment_id: str | None
    payment_status: PaymentStatus | None
    receipt_number: str | None


class StatementLineResult(BaseModel):
    """What importing one line did."""

    line: int
    transaction_id: str
    amount: int
    outcome: str
    payment_id: str | None


class StatementImportPublic(BaseModel):
    """An imported statement."""

    id: int
    provider: str
    lines_total: int
    lines_new: int
    lines: list[StatementLineResult]


class ReconciliationLine(BaseModel):
    """A statement line judged against the service's records."""

    transaction_id: str
    amount: int
    reference: str
    booked_on: date
    verdict: str
    transfer_outcome: str | None
    recorded_amount: int | None
    payment_id: str | None
    payment_amount: int | None
    dossier_code: str | None


class MissingInStatement(BaseModel):
    """A confirmation the service took that the bank's statement does not carry."""

    transaction_id: str
    amount: int
    reference: str
    occurred_at: datetime
    payment_id: str | None
    dossier_code: str | None


class ReconciliationPublic(BaseModel):
    """One provider's day: matched, missing on either side, disagreeing."""

    provider: str
    day: date
    matched: list[ReconciliationLine]
    missing_in_service: list[ReconciliationLine]
    missing_in_statement: list[MissingInStatement]
    disagreeing: list[ReconciliationLine]


class AuditLinePublic(BaseModel):
    """One line of a payment's audit trail."""

    action: str
    from_status: str | None
    to_status: str | None
    actor: str
    at: datetime
    transfer_id: int | None
    details: dict[str, Any]
