"""Payments use cases: one async function per HTTP command, query or consumed event, and ``subscriptions(deps)``.

Every change of a payment goes through ``_confirm``, ``_close`` or ``refund``: each checks the state
machine in ``domain``, writes the new state, one event and one audit line in the caller's transaction.
A payment row is locked before it changes, and a transfer is recorded under the unique
(provider, provider transaction id) before it touches a payment, so however often a confirmation
arrives, and however many replicas take it at once, a request is paid once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Literal

from services.payments import domain, printing, store
from services.payments.deps import PaymentsDeps
from services.payments.domain import (
    COUNTER,
    PaymentStatus,
    ReportedTransfer,
    TransferOutcome,
)
from services.payments.models import (
    CashPayment,
    DismissTransfer,
    MatchTransfer,
    RefundRequest,
    parse_callback,
)
from shared.auth import Principal
from shared.clock import local
from shared.consumer import PermanentError, Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.errors import Conflict, NotFound, Problem
from shared.events import (
    DIGITIZATION,
    INTAKE,
    CopyCertified,
    DossierReceived,
    DossierWithdrawn,
    PaymentConfirmed,
    PaymentFailed,
    PaymentLine,
    PaymentRefunded,
    PaymentRequested,
)
from shared.roles import Role
from shared.webhooks import check_signed_request


@dataclass(frozen=True)
class TransferResult:
    """What a reported transfer did."""

    transfer: store.Transfer
    outcome: str
    duplicate: bool
    payment: store.Payment | None


# ---- helpers ----------------------------------------------------------------------------------


def _actor(tx: UnitOfWork) -> str:
    return tx.actor or "payments"


async def _audit(
    tx: UnitOfWork,
    action: str,
    *,
    payment: store.Payment | None = None,
    transfer: store.Transfer | None = None,
    from_status: str | None = None,
    actor: str | None = None,
    **details: Any,
) -> None:
    if transfer is not None and transfer.id is None:
        await tx.session.flush()
    store.add(
        session=tx.session,
        row=store.AuditLine(
            payment_id=payment.id if payment else (transfer.payment_id if transfer else None),
            transfer_id=transfer.id if transfer else None,
            action=action,
            from_status=from_status,
            to_status=payment.status if payment else None,
            actor=actor or _actor(tx),
            at=tx.now,
            details={k: v for k, v in details.items() if v is not None},
        ),
    )


def _can_see(user: Principal, row: store.Payment | store.FeeDossier) -> bool:
    """Officials of the processing or the receiving unit, and machine accounts whose token covers it."""
    return user.can_see(row.unit) or (row.receiving_unit is not None and user.can_see(row.receiving_unit))


async def _visible(tx: UnitOfWork, payment_id: str, user: Principal, *, lock: bool = False) -> store.Payment:
    """The payment, or 404 when it does not exist or lies outside the caller's units."""
    payment = await store.get(session=tx.session, payment_id=payment_id, lock=lock)
    if payment is None or not _can_see(user, payment):
        raise NotFound("payment", payment_id)
    return payment


async def _visible_transfer(tx: UnitOfWork, transfer_id: int, user: Principal) -> store.Transfer:
    """The transfer, row-locked, or 404 when it does not exist or its unit lies outside the caller's units."""
    transfer = await store.transfer(session=tx.session, transfer_id=transfer_id, lock=True)
    if transfer is None or (transfer.unit is not None and not user.can_see(transfer.unit)):
        raise NotFound("transfer", str(transfer_id))
    return transfer


def _units(user: Principal) -> list[str] | None:
    return None if "*" in user.units else sorted(user.units)


def _conflict_state(payment: store.Payment, wanted: str) -> Conflict:
    return Conflict(f"Payment {payment.id} is {payment.status}; it cannot be {wanted}.", payment_status=payment.status)


# ---- assessment -------------------------------------------------------------------------------


async def _request(
    tx: UnitOfWork,
    dossier: store.FeeDossier,
    lines: list[dict[str, Any]],
    *,
    basis: str,
    deps: PaymentsDeps,
    replaces: str | None = None,
) -> store.Payment:
    """A new pending request for the lines (once per dossier and basis), with ``payment.requested``."""
    existing = await store.by_basis(session=tx.session, dossier_code=dossier.code, basis=basis)
    if existing is not None:
        return existing
    now = tx.now
    account = deps.settings.account_for(dossier.unit)
    amount = sum(int(line["amount"]) for line in lines)
    payment = store.Payment(
        id=domain.payment_id(os.urandom(8)),
        dossier_code=dossier.code,
        unit=dossier.unit,
        receiving_unit=dossier.receiving_unit,
        basis=basis,
        procedure_code=dossier.procedure_code,
        procedure_name=dossier.procedure_name,
        applicant_name=dossier.applicant_name,
        dossier_channel=dossier.channel,
        lines=lines,
        amount=amount,
        status=PaymentStatus.PENDING.value,
        bank_bin=account.bin if account else None,
        account=account.account if account else None,
        card=account.card if account else False,
        created_at=now,
        expires_at=now + timedelta(seconds=deps.settings.payment_ttl_seconds),
        replaces_payment_id=replaces,
    )
    store.add(session=tx.session, row=payment)
    await tx.session.flush()
    await tx.emit(
        PaymentRequested(
            dossier_code=dossier.code,
            unit=dossier.unit,
            occurred_at=now,
            payment_id=payment.id,
            amount=Decimal(amount),
            lines=[PaymentLine(**line) for line in lines],
            basis=basis,
            expires_at=payment.expires_at,
            replaces_payment_id=replaces,
        )
    )
    await _audit(tx, "requested", payment=payment, basis=basis, amount=amount, replaces=replaces)
    return payment


async def on_dossier_received(tx: UnitOfWork, event: DossierReceived, envelope: Envelope, *, deps: PaymentsDeps) -> None:
    """Assess the fee of a received dossier from its procedure version's lines; request payment when something is due."""
    try:
        lines = (
            domain.fee_lines(event.fee_lines) if event.fee_lines is not None else domain.preliminary_lines(event.fee_due)
        )
        assessment = domain.assess_at_reception(
            lines, online=event.channel == "online", pages=event.pages, copies=event.copies, exemption=event.fee_exemption
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"fee lines of {event.procedure_code} v{event.procedure_version} are unusable: {exc}") from exc
    dossier = store.FeeDossier(
        code=event.dossier_code,
        unit=event.unit,
        procedure_code=event.procedure_code,
        channel=event.channel,
        received_at=event.received_at,
        receiving_unit=event.receiving_unit,
        procedure_name=event.procedure_name,
        procedure_version=event.procedure_version,
        applicant_name=event.applicant_name,
        fee_lines=[domain.fee_line_json(line) for line in lines],
        copies=event.copies,
        pages=event.pages,
        exemption=event.fee_exemption,
        waiting_lines=list(assessment.waiting),
        assessed_total=assessment.total,
    )
    if not await store.remember(session=tx.session, dossier=dossier):
        return  # the same dossier announced again: its fee is already assessed
    if assessment.payable:
        await _request(tx, dossier, [domain.item_json(i) for i in assessment.items], basis="reception", deps=deps)
    for report in await store.unassessed_page_reports(session=tx.session, dossier_code=dossier.code):
        await _assess_report(tx, dossier, report, deps=deps)


async def _assess_report(
    tx: UnitOfWork, dossier: store.FeeDossier, report: store.PageReport, *, deps: PaymentsDeps
) -> store.Payment | None:
    """The waiting per-page lines of a dossier, priced for one certified copy's pages."""
    report.assessed = True
    tx.session.add(report)
    waiting = [line for line in domain.fee_lines(dossier.fee_lines) if line.code in set(dossier.waiting_lines)]
    if dossier.withdrawn or not waiting:
        return None
    assessment = domain.assess_pages(
        waiting, online=dossier.channel == "online", pages=report.pages, copies=report.copies, exemption=dossier.exemption
    )
    if not assessment.payable:
        return None
    return await _request(
        tx, dossier, [domain.item_json(i) for i in assessment.items], basis=f"copy:{report.copy_id}", deps=deps
    )


async def on_copy_certified(tx: UnitOfWork, event: CopyCertified, envelope: Envelope, *, deps: PaymentsDeps) -> None:
    """Digitization made a certified copy and counted its pages (the certification page not counted): request its
    per-page fee (the count is kept until the dossier is known)."""
    if event.pages < 1 or event.copies < 1:
        raise PermanentError(f"copy {event.copy_id} of {event.dossier_code}: pages and copies must be at least 1")
    report = store.PageReport(
        dossier_code=event.dossier_code, copy_id=event.copy_id[:128], pages=event.pages, copies=event.copies,
        reported_at=tx.now,
    )  # fmt: skip
    if not await store.park_page_report(session=tx.session, report=report):
        return  # this copy was reported before
    dossier = await store.dossier(session=tx.session, code=event.dossier_code, lock=True)
    if dossier is None:
        return  # the dossier's own event has not arrived yet: on_dossier_received picks the report up
    parked = await store.unassessed_page_reports(session=tx.session, dossier_code=event.dossier_code)
    mine = next(r for r in parked if r.copy_id == report.copy_id)
    await _assess_report(tx, dossier, mine, deps=deps)


async def on_dossier_withdrawn(tx: UnitOfWork, event: DossierWithdrawn, envelope: Envelope) -> None:
    """A withdrawn dossier owes nothing more: its pending requests fail."""
    dossier = await store.dossier(session=tx.session, code=event.dossier_code, lock=True)
    if dossier is not None:
        dossier.withdrawn = True
        tx.session.add(dossier)
    for payment in await store.pending_of_dossier(session=tx.session, dossier_code=event.dossier_code, lock=True):
        await _close(tx, payment, PaymentStatus.FAILED, reason="dossier withdrawn")


# ---- state changes ----------------------------------------------------------------------------


async def _confirm(
    tx: UnitOfWork,
    payment: store.Payment,
    *,
    channel: Literal["online", "counter"],
    provider: str,
    provider_transaction_id: str,
    paid_at: datetime,
    deps: PaymentsDeps,
    transfer: store.Transfer | None = None,
    actor: str | None = None,
) -> None:
    """pending → paid: the next receipt number of the unit and year, ``payment.confirmed``, an audit line."""
    before = payment.status
    try:
        domain.transition(payment.status, PaymentStatus.PAID)
    except domain.IllegalTransition:
        raise _conflict_state(payment, "paid") from None
    year = local(paid_at).year
    sequence = await store.RECEIPT_NUMBERS.next(session=tx.session, unit=payment.unit, period=year)
    payment.status = PaymentStatus.PAID.value
    payment.paid_at = paid_at
    payment.channel = channel
    payment.provider = provider
    payment.provider_transaction_id = provider_transaction_id
    payment.confirmed_by = actor or _actor(tx)
    payment.receipt_year, payment.receipt_sequence = year, sequence
    payment.receipt_number = domain.receipt_number(
        deps.settings.receipt_number_format, unit=payment.unit, year=year, sequence=sequence
    )
    tx.session.add(payment)
    await tx.emit(
        PaymentConfirmed(
            dossier_code=payment.dossier_code,
            unit=payment.unit,
            occurred_at=tx.now,
            payment_id=payment.id,
            amount=Decimal(payment.amount),
            channel=channel,
            provider_transaction_id=provider_transaction_id,
            provider=provider,
            receipt_number=payment.receipt_number,
            paid_at=paid_at,
        )
    )
    await _audit(
        tx, "confirmed", payment=payment, transfer=transfer, from_status=before, actor=actor, channel=channel,
        provider=provider, provider_transaction_id=provider_transaction_id, receipt_number=payment.receipt_number,
    )  # fmt: skip


async def _close(
    tx: UnitOfWork,
    payment: store.Payment,
    to: Literal[PaymentStatus.FAILED, PaymentStatus.EXPIRED],
    *,
    reason: str,
    transfer: store.Transfer | None = None,
    actor: str | None = None,
) -> None:
    """pending → failed or expired, with ``payment.failed`` and an audit line."""
    before = payment.status
    domain.transition(payment.status, to)
    now = tx.now
    payment.status, payment.failed_at, payment.failure_reason = to.value, now, reason
    tx.session.add(payment)
    await tx.emit(
        PaymentFailed(
            dossier_code=payment.dossier_code,
            unit=payment.unit,
            occurred_at=now,
            payment_id=payment.id,
            reason=reason,
            status=to.value,
            provider_transaction_id=transfer.provider_transaction_id if transfer else None,
            amount_received=Decimal(transfer.amount) if transfer else None,
        )
    )
    await _audit(tx, to.value, payment=payment, transfer=transfer, from_status=before, actor=actor, reason=reason)


# ---- transfers: callbacks and statement lines ----------------------------------------------------


async def _payment_for(tx: UnitOfWork, reported: ReportedTransfer) -> store.Payment | None:
    """The request a transfer names (its id given by the platform, or found in the memo), row-locked."""
    candidates = ([reported.payment_id] if reported.payment_id else []) + domain.payment_ids_in(reported.reference)
    for candidate in dict.fromkeys(candidates):
        payment = await store.get(session=tx.session, payment_id=candidate, lock=True)
        if payment is not None:
            return payment
    return None


async def _record_transfer(tx: UnitOfWork, reported: ReportedTransfer, *, deps: PaymentsDeps) -> TransferResult:
    """Record a transfer once per provider transaction id and apply it: confirm, flag, hold or fail."""
    now = tx.now
    row = store.Transfer(
        provider=reported.provider,
        provider_transaction_id=reported.transaction_id,
        source=reported.source,
        amount=reported.amount,
        currency=reported.currency,
        reference=reported.reference,
        account=reported.account,
        unit=deps.settings.unit_of_account(reported.account),
        occurred_at=reported.occurred_at,
        received_at=now,
        outcome="received",
        raw=reported.raw,
    )
    transfer = await store.insert_transfer(session=tx.session, transfer=row)
    if transfer is None:
        earlier = await store.transfer_by_provider_id(
            session=tx.session, provider=reported.provider, provider_transaction_id=reported.transaction_id
        )
        assert earlier is not None  # the conflicting row is committed: READ COMMITTED sees it
        payment = await store.get(session=tx.session, payment_id=earlier.payment_id) if earlier.payment_id else None
        return TransferResult(earlier, earlier.outcome, True, payment)
    payment = await _payment_for(tx, reported)
    outcome = domain.judge_transfer(
        payment_status=payment.status if payment else None,
        due=payment.amount if payment else None,
        amount=reported.amount,
        currency=reported.currency,
        provider_failed=reported.failed,
    )
    transfer.outcome = outcome.value
    if payment is not None:
        transfer.payment_id = payment.id
        transfer.unit = transfer.unit or payment.unit
    tx.session.add(transfer)
    await tx.session.flush()
    if outcome is TransferOutcome.CONFIRMED:
        assert payment is not None
        await _confirm(
            tx, payment, channel="online", provider=reported.provider, provider_transaction_id=reported.transaction_id,
            paid_at=min(reported.occurred_at, now), deps=deps, transfer=transfer,
        )  # fmt: skip
    elif outcome is TransferOutcome.AMOUNT_MISMATCH:
        assert payment is not None
        transfer.note = domain.mismatch_reason(due=payment.amount, amount=reported.amount, currency=reported.currency)
        await tx.emit(
            PaymentFailed(
                dossier_code=payment.dossier_code,
                unit=payment.unit,
                occurred_at=now,
                payment_id=payment.id,
                reason=transfer.note,
                status="pending",
                provider_transaction_id=reported.transaction_id,
                amount_received=Decimal(reported.amount),
            )
        )
        await _audit(tx, "transfer_amount_mismatch", payment=payment, transfer=transfer, from_status=payment.status, note=transfer.note)
    elif outcome is TransferOutcome.NOT_PAYABLE:
        assert payment is not None
        transfer.note = f"the request is already {payment.status}: the money may be owed back"
        await _audit(tx, "transfer_not_payable", payment=payment, transfer=transfer, from_status=payment.status, note=transfer.note)
    elif outcome is TransferOutcome.UNMATCHED:
        transfer.note = "no payment request matches the reference: held for manual matching"
        await _audit(tx, "transfer_unmatched", transfer=transfer, reference=reported.reference, amount=reported.amount)
    elif outcome is TransferOutcome.FAILED:
        reason = reported.message or "the provider reports that the payment failed"
        if payment is not None and payment.status == PaymentStatus.PENDING.value:
            await _close(tx, payment, PaymentStatus.FAILED, reason=f"{reported.provider}: {reason}", transfer=transfer)
        else:
            transfer.note = reason
            await _audit(tx, "transfer_failed", transfer=transfer, note=reason)
    tx.session.add(transfer)
    return TransferResult(transfer, outcome.value, False, payment)


async def take_callback(
    tx: UnitOfWork, provider: str, body: bytes, *, timestamp: str | None, signature: str | None, deps: PaymentsDeps
) -> TransferResult:
    """A signed confirmation (or failure) from a bank or the payment platform. An unknown provider, and a forged,
    stale or replayed request, are refused before the body is read."""
    settings = deps.settings
    if provider not in settings.callback_secrets:
        raise NotFound("payment provider", provider)
    await check_signed_request(
        tx.session, secret=settings.callback_secrets[provider], timestamp=timestamp, given=signature, body=body,
        now=tx.now, max_age_seconds=settings.callback_max_age_seconds, who=f"Provider {provider!r}",
    )  # fmt: skip
    cmd = parse_callback(body)
    reported = ReportedTransfer(
        provider=provider,
        transaction_id=cmd.transaction_id,
        amount=cmd.amount,
        currency=cmd.currency,
        reference=cmd.reference,
        occurred_at=cmd.paid_at or tx.now,
        source="callback",
        account=cmd.account,
        payment_id=cmd.payment_id,
        failed=cmd.status == "failed",
        message=cmd.message,
        raw=cmd.model_dump(mode="json"),
    )
    return await _record_transfer(tx, reported, deps=deps)


# ---- counter, refunds, reissues ----------------------------------------------------------------


async def take_cash(
    tx: UnitOfWork, payment_id: str, cmd: CashPayment, *, deps: PaymentsDeps, user: Principal, idempotency_key: str | None
) -> tuple[store.Payment, bool]:
    """A clerk takes the fee in cash at the counter; (payment, newly paid). A repeated Idempotency-Key gives the first answer."""
    payment = await _visible(tx, payment_id, user, lock=True)
    reference = f"{payment.unit}:{idempotency_key}" if idempotency_key else f"cash-{uuid.uuid4()}"
    if idempotency_key:
        earlier = await store.transfer_by_provider_id(session=tx.session, provider=COUNTER, provider_transaction_id=reference)
        if earlier is not None:
            if earlier.payment_id != payment.id:
                raise Conflict("This Idempotency-Key was used for another payment.", payment_id=earlier.payment_id)
            return payment, False
    if payment.status != PaymentStatus.PENDING.value:
        raise _conflict_state(payment, "paid in cash")
    if cmd.amount != payment.amount:
        raise Problem(
            422, "amount-mismatch", "The amount differs from the fee",
            f"amount: {cmd.amount} VND handed over, {payment.amount} VND due.", due=payment.amount,
        )  # fmt: skip
    now = tx.now
    transfer = await store.insert_transfer(
        session=tx.session,
        transfer=store.Transfer(
            provider=COUNTER, provider_transaction_id=reference, source=COUNTER, amount=cmd.amount, currency="VND",
            reference=cmd.note or "", unit=payment.unit, occurred_at=now, received_at=now,
            outcome=TransferOutcome.CONFIRMED.value, payment_id=payment.id,
            raw={"payer_name": cmd.payer_name, "clerk": user.subject},
        ),
    )  # fmt: skip
    if transfer is None:
        raise Conflict("The same cash payment is being recorded right now; repeat the request.")
    await _confirm(
        tx, payment, channel="counter", provider=COUNTER, provider_transaction_id=reference, paid_at=now,
        deps=deps, transfer=transfer, actor=user.subject,
    )  # fmt: skip
    return payment, True


async def refund(tx: UnitOfWork, payment_id: str, cmd: RefundRequest, *, user: Principal) -> store.Payment:
    """paid → refunded, by a leader, with the reason."""
    payment = await _visible(tx, payment_id, user, lock=True)
    before = payment.status
    try:
        domain.transition(payment.status, PaymentStatus.REFUNDED)
    except domain.IllegalTransition:
        raise _conflict_state(payment, "refunded") from None
    now = tx.now
    payment.status = PaymentStatus.REFUNDED.value
    payment.refunded_at, payment.refund_reason, payment.refunded_by = now, cmd.reason, user.subject
    tx.session.add(payment)
    await tx.emit(
        PaymentRefunded(
            dossier_code=payment.dossier_code, unit=payment.unit, occurred_at=now, payment_id=payment.id,
            amount=Decimal(payment.amount), reason=cmd.reason,
        )
    )  # fmt: skip
    await _audit(tx, "refunded", payment=payment, from_status=before, actor=user.subject, reason=cmd.reason)
    return payment


async def reissue(tx: UnitOfWork, payment_id: str, *, deps: PaymentsDeps, user: Principal) -> tuple[store.Payment, bool]:
    """A failed or expired request is replaced by a new one for the same lines; (new payment, created)."""
    old = await _visible(tx, payment_id, user, lock=True)
    if old.status not in (PaymentStatus.FAILED.value, PaymentStatus.EXPIRED.value):
        raise _conflict_state(old, "reissued (only failed or expired requests are)")
    dossier = await store.dossier(session=tx.session, code=old.dossier_code)
    if dossier is None or dossier.withdrawn:
        raise Conflict(f"Dossier {old.dossier_code} was withdrawn; it owes no fee.")
    basis = f"reissue:{old.id}"
    earlier = await store.by_basis(session=tx.session, dossier_code=old.dossier_code, basis=basis)
    if earlier is not None:
        return earlier, False
    return await _request(tx, dossier, old.lines, basis=basis, deps=deps, replaces=old.id), True


async def expire_due(tx: UnitOfWork, *, limit: int) -> int:
    """Expire the pending requests whose time is up (claimed with SKIP LOCKED: replicas share the work)."""
    due = await store.due_to_expire(session=tx.session, now=tx.now, limit=limit)
    for payment in due:
        await _close(tx, payment, PaymentStatus.EXPIRED, reason=f"not paid by {payment.expires_at.isoformat()}", actor="payments-sweep")
    return len(due)


# ---- held transfers ----------------------------------------------------------------------------


async def match_transfer(
    tx: UnitOfWork, transfer_id: int, cmd: MatchTransfer, *, deps: PaymentsDeps, user: Principal
) -> tuple[store.Transfer, store.Payment]:
    """A person says which pending request a held transfer pays; it confirms that request."""
    transfer = await _visible_transfer(tx, transfer_id, user)
    if transfer.outcome not in domain.HELD or transfer.resolved_at is not None:
        raise Conflict(f"Transfer {transfer_id} is {transfer.outcome}; only held transfers are matched.", transfer_outcome=transfer.outcome)
    payment = await _visible(tx, cmd.payment_id, user, lock=True)
    if payment.status != PaymentStatus.PENDING.value:
        raise _conflict_state(payment, "paid")
    if transfer.currency != "VND":
        raise Conflict(f"Transfer {transfer_id} is in {transfer.currency}; a fee is paid in VND.")
    if transfer.amount != payment.amount and not (cmd.accept_difference and Role.LEADER in user.roles):
        raise Problem(
            409, "amount-mismatch", "The amount differs from the fee",
            f"Transfer {transfer_id} carries {transfer.amount} VND; payment {payment.id} is for {payment.amount} VND. "
            "A leader may accept the difference (accept_difference).",
            transfer_amount=transfer.amount, due=payment.amount,
        )  # fmt: skip
    now = tx.now
    before = transfer.outcome
    transfer.outcome, transfer.payment_id = TransferOutcome.CONFIRMED.value, payment.id
    transfer.resolved_by, transfer.resolved_at = user.subject, now
    transfer.note = cmd.note or f"matched by {user.subject} (was {before})"
    tx.session.add(transfer)
    await tx.session.flush()
    await _confirm(
        tx, payment, channel="online", provider=transfer.provider, provider_transaction_id=transfer.provider_transaction_id,
        paid_at=min(transfer.occurred_at, now), deps=deps, transfer=transfer, actor=user.subject,
    )  # fmt: skip
    await _audit(
        tx, "transfer_matched", payment=payment, transfer=transfer, from_status=PaymentStatus.PENDING.value,
        actor=user.subject, was=before, note=cmd.note, difference=transfer.amount - payment.amount or None,
    )  # fmt: skip
    return transfer, payment


async def dismiss_transfer(tx: UnitOfWork, transfer_id: int, cmd: DismissTransfer, *, user: Principal) -> store.Transfer:
    """A leader closes a held transfer that pays no request, with the reason."""
    transfer = await _visible_transfer(tx, transfer_id, user)
    if transfer.outcome not in domain.HELD or transfer.resolved_at is not None:
        raise Conflict(f"Transfer {transfer_id} is not held.", transfer_outcome=transfer.outcome)
    transfer.resolved_by, transfer.resolved_at, transfer.note = user.subject, tx.now, cmd.reason
    tx.session.add(transfer)
    await _audit(tx, "transfer_dismissed", transfer=transfer, actor=user.subject, reason=cmd.reason)
    return transfer


# ---- statements and reconciliation ------------------------------------------------------------


async def import_statement(
    tx: UnitOfWork, provider: str, text: str, *, deps: PaymentsDeps, user: Principal
) -> tuple[store.Statement, list[dict[str, Any]]]:
    """Import a bank statement: each new line is recorded as a transfer (confirming its request once); every
    line says what became of it."""
    try:
        lines = domain.parse_statement(text)
    except domain.StatementError as exc:
        raise Problem(422, "invalid-statement", "The statement cannot be read", str(exc)) from None
    now = tx.now
    statement = store.Statement(provider=provider, uploaded_by=user.subject, uploaded_at=now, lines_total=len(lines), lines_new=0)
    store.add(session=tx.session, row=statement)
    await tx.session.flush()
    assert statement.id is not None
    results: list[dict[str, Any]] = []
    for line in lines:
        row = store.StatementLineRow(
            statement_id=statement.id, provider=provider, line=line.line, booked_on=line.booked_on, amount=line.amount,
            currency=line.currency, reference=line.reference, transaction_id=line.transaction_id, import_outcome="pending",
        )  # fmt: skip
        payment_id = None
        if not await store.insert_statement_line(session=tx.session, line=row):
            outcome = "already_imported"
        else:
            statement.lines_new += 1
            result = await _record_transfer(
                tx,
                ReportedTransfer(
                    provider=provider, transaction_id=line.transaction_id, amount=line.amount, currency=line.currency,
                    reference=line.reference, occurred_at=min(domain.day_start(line.booked_on), now), source="statement",
                    raw={"statement_id": statement.id, "line": line.line},
                ),
                deps=deps,
            )  # fmt: skip
            outcome = "already_recorded" if result.duplicate else result.outcome
            payment_id = result.payment.id if result.payment else None
            await store.set_line_outcome(session=tx.session, provider=provider, transaction_id=line.transaction_id, outcome=outcome)
        results.append({"line": line.line, "transaction_id": line.transaction_id, "amount": line.amount, "outcome": outcome, "payment_id": payment_id})
    tx.session.add(statement)
    await _audit(tx, "statement_imported", actor=user.subject, provider=provider, statement_id=statement.id,
                 lines=len(lines), new=statement.lines_new)  # fmt: skip
    return statement, results


async def day_report(tx: UnitOfWork, provider: str, day: date) -> dict[str, Any]:
    """One provider's day: statement lines against the recorded transfers, and confirmations the statement lacks."""
    session = tx.session
    lines = await store.statement_lines(session=session, provider=provider, day=day)
    transfers = {
        t.provider_transaction_id: t
        for t in await store.transfers_by_provider_ids(session=session, provider=provider, ids=[l.transaction_id for l in lines])
    }
    start = domain.day_start(day)
    confirmed = await store.confirmed_online(session=session, provider=provider, start=start, end=start + timedelta(days=1))
    on_statements = await store.on_any_statement(session=session, provider=provider, ids=[t.provider_transaction_id for t in confirmed])
    missing_from_bank = [t for t in confirmed if t.provider_transaction_id not in on_statements]
    payment_ids = [t.payment_id for t in [*transfers.values(), *missing_from_bank] if t.payment_id]
    payments = await store.payments_by_ids(session=session, ids=payment_ids)
    recorded = {
        txn: domain.Recorded(
            transaction_id=txn, amount=t.amount, outcome=t.outcome, payment_id=t.payment_id,
            payment_amount=payments[t.payment_id].amount if t.payment_id in payments else None, source=t.source,
        )
        for txn, t in transfers.items()
    }  # fmt: skip
    report = domain.reconcile(
        [(l.transaction_id, l.amount) for l in lines], recorded, [t.provider_transaction_id for t in missing_from_bank]
    )

    def line_view(l: store.StatementLineRow) -> dict[str, Any]:
        t = transfers.get(l.transaction_id)
        p = payments.get(t.payment_id) if t and t.payment_id else None
        return {
            "transaction_id": l.transaction_id, "amount": l.amount, "reference": l.reference, "booked_on": l.booked_on,
            "verdict": report.verdicts[l.transaction_id].value, "transfer_outcome": t.outcome if t else None,
            "recorded_amount": t.amount if t else None, "payment_id": p.id if p else None,
            "payment_amount": p.amount if p else None, "dossier_code": p.dossier_code if p else None,
        }  # fmt: skip

    views = [line_view(l) for l in lines]
    return {
        "provider": provider,
        "day": day,
        "matched": [v for v in views if v["verdict"] == domain.LineVerdict.MATCHED],
        "missing_in_service": [v for v in views if v["verdict"] == domain.LineVerdict.BANK_ONLY],
        "disagreeing": [v for v in views if v["verdict"] == domain.LineVerdict.DISAGREES],
        "missing_in_statement": [
            {
                "transaction_id": t.provider_transaction_id, "amount": t.amount, "reference": t.reference,
                "occurred_at": t.occurred_at, "payment_id": t.payment_id,
                "dossier_code": payments[t.payment_id].dossier_code if t.payment_id in payments else None,
            }
            for t in missing_from_bank
        ],
    }  # fmt: skip


# ---- reading ----------------------------------------------------------------------------------


async def list_payments(
    tx: UnitOfWork, *, dossier_code: str | None, status: str | None, limit: int, offset: int, user: Principal
) -> tuple[list[store.Payment], int]:
    """A dossier's payments, or the caller's units' payments."""
    if dossier_code:
        rows = [p for p in await store.of_dossier(session=tx.session, dossier_code=dossier_code) if _can_see(user, p)]
        rows = [p for p in rows if status is None or p.status == status]
        return rows[offset : offset + limit], len(rows)
    return await store.search(session=tx.session, units=_units(user), status=status, limit=limit, offset=offset)


async def get_payment(tx: UnitOfWork, payment_id: str, *, user: Principal) -> store.Payment:
    """A payment the caller may see."""
    return await _visible(tx, payment_id, user)


async def payment_qr(tx: UnitOfWork, payment_id: str, *, user: Principal) -> str:
    """The VietQR payload to pay a pending request with; 409 when there is nothing to pay or nowhere to pay it."""
    payment = await _visible(tx, payment_id, user)
    if payment.status != PaymentStatus.PENDING.value:
        raise Conflict(f"Payment {payment_id} is {payment.status}: there is nothing to pay.", payment_status=payment.status)
    payload = domain.qr_payload(payment)
    if payload is None:
        raise Problem(409, "no-collection-account", "No collection account", f"Unit {payment.unit} has no collection account configured.")
    return payload


@dataclass(frozen=True)
class PaymentPage:
    """What the citizen's payment page shows: the request, and the request that replaced it (if it was reissued)."""

    payment: store.Payment
    replaced_by: store.Payment | None


async def payment_page(tx: UnitOfWork, payment_id: str) -> PaymentPage:
    """A request as its public page shows it, to whoever holds its id: 50 random bits, the key of the page's link
    (``payment_page_url``), also carried by the transfer memo. 404 for an id that is malformed or unknown."""
    payment = await store.get(session=tx.session, payment_id=payment_id) if domain.PAYMENT_ID_RE.fullmatch(payment_id) else None
    if payment is None:
        raise NotFound("payment", payment_id)
    replaced_by = None
    if payment.status in (PaymentStatus.FAILED.value, PaymentStatus.EXPIRED.value):
        replaced_by = await store.by_basis(session=tx.session, dossier_code=payment.dossier_code, basis=f"reissue:{payment.id}")
    return PaymentPage(payment=payment, replaced_by=replaced_by)


async def receipt(tx: UnitOfWork, payment_id: str, *, deps: PaymentsDeps, user: Principal) -> tuple[store.Payment, bytes]:
    """A paid (or since refunded) payment and its receipt as PDF (drawn in a thread); 409 before it is paid."""
    payment = await _visible(tx, payment_id, user)
    if payment.receipt_number is None:
        raise Conflict(f"Payment {payment_id} is {payment.status}: a receipt exists only once it is paid.", payment_status=payment.status)
    return payment, await asyncio.to_thread(printing.fee_receipt, payment, deps.settings)


async def audit_trail(tx: UnitOfWork, payment_id: str, *, user: Principal) -> list[store.AuditLine]:
    """A payment's audit lines."""
    await _visible(tx, payment_id, user)
    return await store.audit_of(session=tx.session, payment_id=payment_id)


async def assessment_of(tx: UnitOfWork, code: str, *, user: Principal) -> tuple[store.FeeDossier, list[store.Payment]]:
    """What payments knows of a dossier's fee: the basis, what waits for pages, and the requests."""
    dossier = await store.dossier(session=tx.session, code=code)
    if dossier is None or not _can_see(user, dossier):
        raise NotFound("fee assessment of dossier", code)
    return dossier, await store.of_dossier(session=tx.session, dossier_code=code)


async def held(tx: UnitOfWork, *, limit: int, offset: int, user: Principal) -> tuple[list[store.Transfer], int]:
    """Transfers waiting for a person (unmatched, mismatched, or for a request no longer payable)."""
    return await store.held_transfers(
        session=tx.session, outcomes=[o.value for o in domain.HELD], units=_units(user), limit=limit, offset=offset
    )


async def backlog(tx: UnitOfWork) -> tuple[int, int]:
    """Pending requests, and transfers held for a person (the sweep's gauges)."""
    return await store.backlog(session=tx.session, held_outcomes=[o.value for o in domain.HELD])


def subscriptions(deps: PaymentsDeps) -> Subscription:
    """What payments listens to: reception and withdrawal from intake, certified copies' pages from digitization."""
    return Subscription(
        producers=(INTAKE, DIGITIZATION),
        handlers={
            DossierReceived: partial(on_dossier_received, deps=deps),
            DossierWithdrawn: on_dossier_withdrawn,
            CopyCertified: partial(on_copy_certified, deps=deps),
        },
    )
