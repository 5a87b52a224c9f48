"""Payments routes: validate, call one handler, map the result."""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from services.payments import handlers, printing, store
from services.payments.domain import PaymentStatus
from shared.auth import Principal, Role, require_roles
from shared.errors import Conflict, Problem
from shared.ratelimit import Policy, rate_limited
from shared.service import DbDep

router = APIRouter(prefix="/api/v1")

READERS = (Role.CLERK, Role.SPECIALIST, Role.LEADER, Role.ADMIN, Role.AUDITOR, Role.PORTAL, Role.SERVICE)
Reader = Annotated[Principal, require_roles(*READERS)]
Clerk = Annotated[Principal, require_roles(Role.CLERK)]
Leader = Annotated[Principal, require_roles(Role.LEADER)]
Matcher = Annotated[Principal, require_roles(Role.CLERK, Role.LEADER)]
Accountant = Annotated[Principal, require_roles(Role.CLERK, Role.LEADER, Role.ADMIN)]
Inspector = Annotated[Principal, require_roles(Role.CLERK, Role.LEADER, Role.ADMIN, Role.AUDITOR)]
PaymentId = Annotated[str, Path(min_length=1, max_length=16, examples=["MC4F7K2Q9PXA"])]
MAX_STATEMENT_BYTES = 5_000_000


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


def _payment(p: store.Payment) -> PaymentPublic:
    return PaymentPublic(
        **p.model_dump(exclude={"lines", "status"}),
        status=PaymentStatus(p.status),
        lines=[PaymentLinePublic(**line) for line in p.lines],
        qr_payload=handlers.qr_payload(p),
    )


def _transfer(t: store.Transfer) -> TransferPublic:
    return TransferPublic.model_validate(t, from_attributes=True)


# ---- provider callbacks (before /payments/{id}: a provider is not a payment) ----------------------


@router.post(
    "/payments/callbacks/{provider}", response_model=CallbackResult, tags=["callbacks"],
    summary="A bank's or the payment platform's signed confirmation (HMAC-SHA256 over '<timestamp>.<body>')",
    dependencies=[rate_limited(Policy.CALLBACK)],
)  # fmt: skip
async def provider_callback(
    request: Request,
    provider: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")],
    db: DbDep,
    x_provider_timestamp: Annotated[str | None, Header()] = None,
    x_provider_signature: Annotated[str | None, Header()] = None,
) -> CallbackResult:
    body = await request.body()
    settings = request.app.state.settings
    async with db.unit_of_work(actor=f"provider:{provider}") as tx:
        await handlers.check_callback(
            tx, provider, settings=settings, timestamp=x_provider_timestamp, signature=x_provider_signature, body=body
        )
        result = await handlers.take_callback(tx, provider, handlers.parse_callback(body), settings=settings)
    payment = result.payment
    return CallbackResult(
        transaction_id=result.transfer.provider_transaction_id,
        outcome=result.outcome,
        duplicate=result.duplicate,
        payment_id=payment.id if payment else None,
        payment_status=PaymentStatus(payment.status) if payment else None,
        receipt_number=payment.receipt_number if payment else None,
    )


# ---- payments --------------------------------------------------------------------------------


@router.get("/payments", response_model=PaymentsPublic, tags=["payments"], summary="A dossier's payments, or your units'")
async def list_payments(
    db: DbDep,
    user: Reader,
    dossier_code: Annotated[str | None, Query(max_length=64)] = None,
    status: PaymentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PaymentsPublic:
    async with db.sessions() as session:
        rows, count = await handlers.list_payments(
            session, user, dossier_code=dossier_code, status=status.value if status else None, limit=limit, offset=offset
        )
    return PaymentsPublic(data=[_payment(p) for p in rows], count=count)


@router.get("/payments/{payment_id}", response_model=PaymentPublic, tags=["payments"], summary="A payment with its VietQR payload")
async def get_payment(payment_id: PaymentId, db: DbDep, user: Reader) -> PaymentPublic:
    async with db.sessions() as session:
        return _payment(await handlers.visible(session, payment_id, user))


async def _qr(db: DbDep, user: Principal, payment_id: str) -> segno.QRCode:
    async with db.sessions() as session:
        payment = await handlers.visible(session, payment_id, user)
    if payment.status != PaymentStatus.PENDING.value:
        raise Conflict(f"Payment {payment_id} is {payment.status}: there is nothing to pay.", payment_status=payment.status)
    payload = handlers.qr_payload(payment)
    if payload is None:
        raise Problem(409, "no-collection-account", "No collection account", f"Unit {payment.unit} has no collection account configured.")
    return segno.make_qr(payload, error="m", boost_error=False)


_IMAGE = {200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "the VietQR code"}}


@router.get("/payments/{payment_id}/qr.png", tags=["payments"], summary="The VietQR code as PNG", responses=_IMAGE)
async def qr_png(
    payment_id: PaymentId, db: DbDep, user: Reader, scale: Annotated[int, Query(ge=2, le=20)] = 8
) -> Response:
    out = io.BytesIO()
    (await _qr(db, user, payment_id)).save(out, kind="png", scale=scale, border=4)
    return Response(out.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/payments/{payment_id}/qr.svg", tags=["payments"], summary="The VietQR code as SVG", responses=_IMAGE)
async def qr_svg(
    payment_id: PaymentId, db: DbDep, user: Reader, scale: Annotated[int, Query(ge=1, le=20)] = 4
) -> Response:
    out = io.BytesIO()
    (await _qr(db, user, payment_id)).save(out, kind="svg", scale=scale, border=4, xmldecl=False)
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get(
    "/payments/{payment_id}/receipt.pdf", tags=["payments"], summary="The electronic fee receipt (biên lai thu phí, lệ phí)",
    responses={200: {"content": {"application/pdf": {}}, "description": "the receipt as PDF"}},
)  # fmt: skip
async def receipt_pdf(request: Request, payment_id: PaymentId, db: DbDep, user: Reader) -> Response:
    async with db.sessions() as session:
        payment = await handlers.visible(session, payment_id, user)
    if payment.receipt_number is None:
        raise Conflict(f"Payment {payment_id} is {payment.status}: a receipt exists only once it is paid.", payment_status=payment.status)
    pdf = await asyncio.to_thread(printing.fee_receipt, payment, request.app.state.settings)
    filename = f"bien-lai-{payment.receipt_number}.pdf".replace("/", "-")
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'})


@router.get("/payments/{payment_id}/audit", response_model=list[AuditLinePublic], tags=["payments"], summary="The audit trail")
async def audit(payment_id: PaymentId, db: DbDep, user: Reader) -> list[AuditLinePublic]:
    async with db.sessions() as session:
        rows = await handlers.audit_trail(session, payment_id, user)
    return [AuditLinePublic.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/payments/{payment_id}/cash", response_model=PaymentPublic, tags=["payments"],
    summary="A clerk takes the fee in cash at the counter",
    responses={200: {"description": "the same Idempotency-Key was used before: the payment as it is"}},
)  # fmt: skip
async def pay_cash(
    request: Request,
    payment_id: PaymentId,
    body: handlers.CashPayment,
    db: DbDep,
    user: Clerk,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> PaymentPublic:
    try:
        async with db.unit_of_work(actor=user.subject) as tx:
            payment, _ = await handlers.take_cash(
                tx, payment_id, body, user=user, idempotency_key=idempotency_key, settings=request.app.state.settings
            )
    except IntegrityError:
        raise Conflict("A concurrent request changed this payment; read it again.") from None
    return _payment(payment)


@router.post("/payments/{payment_id}/refund", response_model=PaymentPublic, tags=["payments"], summary="A leader refunds a paid fee")
async def refund(payment_id: PaymentId, body: handlers.RefundRequest, db: DbDep, user: Leader) -> PaymentPublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        payment = await handlers.refund(tx, payment_id, body, user=user)
    return _payment(payment)


@router.post(
    "/payments/{payment_id}/reissue", status_code=201, response_model=PaymentPublic, tags=["payments"],
    summary="A new request replacing a failed or expired one",
    responses={200: {"description": "it was reissued before: that request"}},
)  # fmt: skip
async def reissue(request: Request, response: Response, payment_id: PaymentId, db: DbDep, user: Matcher) -> PaymentPublic:
    try:
        async with db.unit_of_work(actor=user.subject) as tx:
            payment, created = await handlers.reissue(tx, payment_id, user=user, settings=request.app.state.settings)
    except IntegrityError:
        raise Conflict(f"Payment {payment_id} is being reissued right now; read the dossier's payments.") from None
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/payments/{payment.id}"
    return _payment(payment)


@router.get(
    "/fee-assessments/{dossier_code}", response_model=FeeAssessmentPublic, tags=["payments"],
    summary="What payments assessed for a dossier (lines, what waits for the page count, the requests)",
)  # fmt: skip
async def fee_assessment(dossier_code: Annotated[str, Path(max_length=64)], db: DbDep, user: Reader) -> FeeAssessmentPublic:
    async with db.sessions() as session:
        dossier, payments = await handlers.assessment_of(session, dossier_code, user)
    return FeeAssessmentPublic(
        dossier_code=dossier.code, unit=dossier.unit, procedure_code=dossier.procedure_code,
        procedure_version=dossier.procedure_version, channel=dossier.channel, fee_lines=dossier.fee_lines,
        copies=dossier.copies, pages=dossier.pages, exemption=dossier.exemption,
        assessed_at_reception=dossier.assessed_total, waiting_for_pages=dossier.waiting_lines,
        withdrawn=dossier.withdrawn, payments=[_payment(p) for p in payments],
    )  # fmt: skip


# ---- held transfers --------------------------------------------------------------------------


@router.get(
    "/payment-transfers/held", response_model=TransfersPublic, tags=["transfers"],
    summary="Transfers waiting for a person: unknown reference, wrong amount, or a request no longer payable",
)  # fmt: skip
async def held_transfers(
    db: DbDep,
    user: Inspector,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TransfersPublic:
    async with db.sessions() as session:
        rows, count = await handlers.held(session, user, limit=limit, offset=offset)
    return TransfersPublic(data=[_transfer(t) for t in rows], count=count)


@router.post(
    "/payment-transfers/{transfer_id}/match", response_model=PaymentPublic, tags=["transfers"],
    summary="Say which pending request a held transfer pays (it confirms that request)",
)  # fmt: skip
async def match_transfer(
    request: Request, transfer_id: int, body: handlers.MatchTransfer, db: DbDep, user: Matcher
) -> PaymentPublic:
    try:
        async with db.unit_of_work(actor=user.subject) as tx:
            _, payment = await handlers.match_transfer(tx, transfer_id, body, user=user, settings=request.app.state.settings)
    except IntegrityError:
        raise Conflict(f"Payment {body.payment_id} was confirmed by another transfer meanwhile.") from None
    return _payment(payment)


@router.post(
    "/payment-transfers/{transfer_id}/dismiss", response_model=TransferPublic, tags=["transfers"],
    summary="Close a held transfer that pays no request (a leader, with the reason)",
)  # fmt: skip
async def dismiss_transfer(transfer_id: int, body: handlers.DismissTransfer, db: DbDep, user: Leader) -> TransferPublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        transfer = await handlers.dismiss_transfer(tx, transfer_id, body, user=user)
    return _transfer(transfer)


# ---- statements and reconciliation ---------------------------------------------------------------


@router.post(
    "/bank-statements/{provider}", status_code=201, response_model=StatementImportPublic, tags=["reconciliation"],
    summary="Import a bank statement (CSV: date, amount, reference, transaction_id); matched lines confirm once",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)  # fmt: skip
async def import_statement(
    request: Request, provider: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], db: DbDep, user: Accountant
) -> StatementImportPublic:
    raw = await request.body()
    if len(raw) > MAX_STATEMENT_BYTES:
        raise Problem(413, "payload-too-large", "Statement too large", f"At most {MAX_STATEMENT_BYTES} bytes; split it by day.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, "invalid-statement", "The statement cannot be read", "The CSV must be UTF-8.") from None
    async with db.unit_of_work(actor=user.subject) as tx:
        statement, lines = await handlers.import_statement(tx, provider, text, user=user, settings=request.app.state.settings)
    assert statement.id is not None
    return StatementImportPublic(
        id=statement.id, provider=provider, lines_total=statement.lines_total, lines_new=statement.lines_new,
        lines=[StatementLineResult(**line) for line in lines],
    )  # fmt: skip


@router.get(
    "/reconciliation/{provider}/{day}", response_model=ReconciliationPublic, tags=["reconciliation"],
    summary="A day's reconciliation: matched, missing on either side, disagreeing",
)  # fmt: skip
async def reconciliation(
    provider: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], day: date, db: DbDep, user: Inspector
) -> ReconciliationPublic:
    async with db.sessions() as session:
        report = await handlers.day_report(session, provider, day)
    return ReconciliationPublic(**report)
