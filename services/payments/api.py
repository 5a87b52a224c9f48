"""Payments routes: validate, open the transaction, call one handler, map the result."""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated

import segno
from fastapi import APIRouter, Header, Path, Query, Request, Response
from sqlalchemy.exc import IntegrityError

from services.payments import handlers, store
from services.payments.deps import Deps
from services.payments.domain import PaymentStatus, qr_payload
from services.payments.models import (
    AuditLinePublic,
    CallbackResult,
    CashPayment,
    DismissTransfer,
    FeeAssessmentPublic,
    MatchTransfer,
    PaymentLinePublic,
    PaymentPublic,
    PaymentsPublic,
    ReconciliationPublic,
    RefundRequest,
    StatementImportPublic,
    StatementLineResult,
    TransferPublic,
    TransfersPublic,
)
from services.payments.settings import PaymentsSettings
from shared.auth import Principal, require_roles
from shared.errors import Conflict, Problem
from shared.ratelimit import Policy, rate_limited
from shared.roles import OFFICIALS, Role

router = APIRouter(prefix="/api/v1")

# Officials, the portal and other services read payments (unit scoping still applies).
READERS = (*OFFICIALS, Role.PORTAL, Role.SERVICE)
Reader = Annotated[Principal, require_roles(*READERS)]
Clerk = Annotated[Principal, require_roles(Role.CLERK)]
Leader = Annotated[Principal, require_roles(Role.LEADER)]
Matcher = Annotated[Principal, require_roles(Role.CLERK, Role.LEADER)]
Accountant = Annotated[Principal, require_roles(Role.CLERK, Role.LEADER, Role.ADMIN)]
Inspector = Annotated[Principal, require_roles(Role.CLERK, Role.LEADER, Role.ADMIN, Role.AUDITOR)]
PaymentId = Annotated[str, Path(min_length=1, max_length=16, examples=["MC4F7K2Q9PXA"])]
MAX_STATEMENT_BYTES = 5_000_000


def _payment(p: store.Payment, settings: PaymentsSettings) -> PaymentPublic:
    return PaymentPublic(
        **p.model_dump(exclude={"lines", "status"}),
        status=PaymentStatus(p.status),
        lines=[PaymentLinePublic(**line) for line in p.lines],
        qr_payload=qr_payload(p),
        payment_page_url=settings.payment_page_url(p.id),
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
    deps: Deps,
    x_provider_timestamp: Annotated[str | None, Header()] = None,
    x_provider_signature: Annotated[str | None, Header()] = None,
) -> CallbackResult:
    body = await request.body()
    async with deps.db.unit_of_work(actor=f"provider:{provider}") as tx:
        result = await handlers.take_callback(
            tx, provider, body, timestamp=x_provider_timestamp, signature=x_provider_signature, deps=deps
        )
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
    deps: Deps,
    user: Reader,
    dossier_code: Annotated[str | None, Query(max_length=64)] = None,
    status: PaymentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PaymentsPublic:
    async with deps.db.reading() as tx:
        rows, count = await handlers.list_payments(
            tx, dossier_code=dossier_code, status=status.value if status else None, limit=limit, offset=offset, user=user
        )
        return PaymentsPublic(data=[_payment(p, deps.settings) for p in rows], count=count)


@router.get("/payments/{payment_id}", response_model=PaymentPublic, tags=["payments"], summary="A payment with its VietQR payload")
async def get_payment(payment_id: PaymentId, deps: Deps, user: Reader) -> PaymentPublic:
    async with deps.db.reading() as tx:
        return _payment(await handlers.get_payment(tx, payment_id, user=user), deps.settings)


def _qr(payload: str) -> segno.QRCode:
    return segno.make_qr(payload, error="m", boost_error=False)


_IMAGE = {200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "the VietQR code"}}


@router.get("/payments/{payment_id}/qr.png", tags=["payments"], summary="The VietQR code as PNG", responses=_IMAGE)
async def qr_png(
    payment_id: PaymentId, deps: Deps, user: Reader, scale: Annotated[int, Query(ge=2, le=20)] = 8
) -> Response:
    async with deps.db.reading() as tx:
        payload = await handlers.payment_qr(tx, payment_id, user=user)
    out = io.BytesIO()
    _qr(payload).save(out, kind="png", scale=scale, border=4)
    return Response(out.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/payments/{payment_id}/qr.svg", tags=["payments"], summary="The VietQR code as SVG", responses=_IMAGE)
async def qr_svg(
    payment_id: PaymentId, deps: Deps, user: Reader, scale: Annotated[int, Query(ge=1, le=20)] = 4
) -> Response:
    async with deps.db.reading() as tx:
        payload = await handlers.payment_qr(tx, payment_id, user=user)
    out = io.BytesIO()
    _qr(payload).save(out, kind="svg", scale=scale, border=4, xmldecl=False)
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get(
    "/payments/{payment_id}/receipt.pdf", tags=["payments"], summary="The electronic fee receipt (biên lai thu phí, lệ phí)",
    responses={200: {"content": {"application/pdf": {}}, "description": "the receipt as PDF"}},
)  # fmt: skip
async def receipt_pdf(payment_id: PaymentId, deps: Deps, user: Reader) -> Response:
    async with deps.db.reading() as tx:
        payment, pdf = await handlers.receipt(tx, payment_id, deps=deps, user=user)
        filename = f"bien-lai-{payment.receipt_number}.pdf".replace("/", "-")
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'})


@router.get("/payments/{payment_id}/audit", response_model=list[AuditLinePublic], tags=["payments"], summary="The audit trail")
async def audit(payment_id: PaymentId, deps: Deps, user: Reader) -> list[AuditLinePublic]:
    async with deps.db.reading() as tx:
        rows = await handlers.audit_trail(tx, payment_id, user=user)
        return [AuditLinePublic.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/payments/{payment_id}/cash", response_model=PaymentPublic, tags=["payments"],
    summary="A clerk takes the fee in cash at the counter",
    responses={200: {"description": "the same Idempotency-Key was used before: the payment as it is"}},
)  # fmt: skip
async def pay_cash(
    payment_id: PaymentId,
    body: CashPayment,
    deps: Deps,
    user: Clerk,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> PaymentPublic:
    try:
        async with deps.db.unit_of_work(actor=user.subject) as tx:
            payment, _ = await handlers.take_cash(tx, payment_id, body, deps=deps, user=user, idempotency_key=idempotency_key)
    except IntegrityError:
        raise Conflict("A concurrent request changed this payment; read it again.") from None
    return _payment(payment, deps.settings)


@router.post("/payments/{payment_id}/refund", response_model=PaymentPublic, tags=["payments"], summary="A leader refunds a paid fee")
async def refund(payment_id: PaymentId, body: RefundRequest, deps: Deps, user: Leader) -> PaymentPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        payment = await handlers.refund(tx, payment_id, body, user=user)
    return _payment(payment, deps.settings)


@router.post(
    "/payments/{payment_id}/reissue", status_code=201, response_model=PaymentPublic, tags=["payments"],
    summary="A new request replacing a failed or expired one",
    responses={200: {"description": "it was reissued before: that request"}},
)  # fmt: skip
async def reissue(response: Response, payment_id: PaymentId, deps: Deps, user: Matcher) -> PaymentPublic:
    try:
        async with deps.db.unit_of_work(actor=user.subject) as tx:
            payment, created = await handlers.reissue(tx, payment_id, deps=deps, user=user)
    except IntegrityError:
        raise Conflict(f"Payment {payment_id} is being reissued right now; read the dossier's payments.") from None
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/payments/{payment.id}"
    return _payment(payment, deps.settings)


@router.get(
    "/fee-assessments/{dossier_code}", response_model=FeeAssessmentPublic, tags=["payments"],
    summary="What payments assessed for a dossier (lines, what waits for the page count, the requests)",
)  # fmt: skip
async def fee_assessment(dossier_code: Annotated[str, Path(max_length=64)], deps: Deps, user: Reader) -> FeeAssessmentPublic:
    async with deps.db.reading() as tx:
        dossier, payments = await handlers.assessment_of(tx, dossier_code, user=user)
        return FeeAssessmentPublic(
            dossier_code=dossier.code, unit=dossier.unit, procedure_code=dossier.procedure_code,
            procedure_version=dossier.procedure_version, channel=dossier.channel, fee_lines=dossier.fee_lines,
            copies=dossier.copies, pages=dossier.pages, exemption=dossier.exemption,
            assessed_at_reception=dossier.assessed_total, waiting_for_pages=dossier.waiting_lines,
            withdrawn=dossier.withdrawn, payments=[_payment(p, deps.settings) for p in payments],
        )  # fmt: skip


# ---- held transfers --------------------------------------------------------------------------


@router.get(
    "/payment-transfers/held", response_model=TransfersPublic, tags=["transfers"],
    summary="Transfers waiting for a person: unknown reference, wrong amount, or a request no longer payable",
)  # fmt: skip
async def held_transfers(
    deps: Deps,
    user: Inspector,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TransfersPublic:
    async with deps.db.reading() as tx:
        rows, count = await handlers.held(tx, limit=limit, offset=offset, user=user)
        return TransfersPublic(data=[_transfer(t) for t in rows], count=count)


@router.post(
    "/payment-transfers/{transfer_id}/match", response_model=PaymentPublic, tags=["transfers"],
    summary="Say which pending request a held transfer pays (it confirms that request)",
)  # fmt: skip
async def match_transfer(transfer_id: int, body: MatchTransfer, deps: Deps, user: Matcher) -> PaymentPublic:
    try:
        async with deps.db.unit_of_work(actor=user.subject) as tx:
            _, payment = await handlers.match_transfer(tx, transfer_id, body, deps=deps, user=user)
    except IntegrityError:
        raise Conflict(f"Payment {body.payment_id} was confirmed by another transfer meanwhile.") from None
    return _payment(payment, deps.settings)


@router.post(
    "/payment-transfers/{transfer_id}/dismiss", response_model=TransferPublic, tags=["transfers"],
    summary="Close a held transfer that pays no request (a leader, with the reason)",
)  # fmt: skip
async def dismiss_transfer(transfer_id: int, body: DismissTransfer, deps: Deps, user: Leader) -> TransferPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        transfer = await handlers.dismiss_transfer(tx, transfer_id, body, user=user)
    return _transfer(transfer)


# ---- statements and reconciliation ---------------------------------------------------------------


@router.post(
    "/bank-statements/{provider}", status_code=201, response_model=StatementImportPublic, tags=["reconciliation"],
    summary="Import a bank statement (CSV: date, amount, reference, transaction_id); matched lines confirm once",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)  # fmt: skip
async def import_statement(
    request: Request, provider: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], deps: Deps, user: Accountant
) -> StatementImportPublic:
    raw = await request.body()
    if len(raw) > MAX_STATEMENT_BYTES:
        raise Problem(413, "payload-too-large", "Statement too large", f"At most {MAX_STATEMENT_BYTES} bytes; split it by day.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, "invalid-statement", "The statement cannot be read", "The CSV must be UTF-8.") from None
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        statement, lines = await handlers.import_statement(tx, provider, text, deps=deps, user=user)
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
    provider: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], day: date, deps: Deps, user: Inspector
) -> ReconciliationPublic:
    async with deps.db.reading() as tx:
        report = await handlers.day_report(tx, provider, day)
        return ReconciliationPublic(**report)
