"""Intake use cases: one async function per command or consumed event."""

from __future__ import annotations

import asyncio
import time as _time
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, EmailStr, Field, field_validator, model_validator

from services.intake import domain, store
from services.intake.settings import IntakeSettings
from shared.auth import Principal
from shared.calendar import WorkingCalendar
from shared.consumer import Subscription
from shared.db import Database, UnitOfWork
from shared.envelope import Envelope
from shared.errors import Conflict, NotFound, Problem
from shared.events import (
    WORKFLOW,
    CaseApproved,
    CaseAssigned,
    CaseClockResumed,
    CasePaymentAwaited,
    CaseRejected,
    CaseResultReady,
    CaseReturned,
    CaseStopped,
    CaseSupplementRequested,
    CaseTransferred,
    CaseTransferReturned,
    DossierReceived,
    DossierSupplemented,
    DossierWithdrawn,
    Event,
)
from shared.identity import InvalidIdentifier, check_tax_code, parse_citizen_id
from shared.webhooks import check_signed_request

# ---- commands ---------------------------------------------------------------


class Applicant(BaseModel):
    """Who submits: a citizen (CCCD number) or an organisation (tax code)."""

    kind: Literal["citizen", "organisation"] = "citizen"
    name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Thị Hồng Nhung"])
    id_number: str | None = Field(default=None, description="citizen id number (CCCD, 12 digits)", examples=["001203004567"])
    tax_code: str | None = Field(default=None, description="organisation tax code", examples=["0100112437"])
    address: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 .-]{8,20}$")
    email: EmailStr | None = None

    @model_validator(mode="after")
    def _identifier(self) -> Applicant:
        if self.kind == "organisation":
            if not self.tax_code:
                raise ValueError("tax_code: an organisation needs its tax code")
            try:
                check_tax_code(self.tax_code)
            except InvalidIdentifier as exc:
                raise ValueError(f"tax_code: {exc}") from None
        elif self.id_number is not None:
            try:
                parse_citizen_id(self.id_number, today=date.today())
            except InvalidIdentifier as exc:
                raise ValueError(f"id_number: {exc}") from None
        return self


class SubmittedComponent(BaseModel):
    """A paper handed in, or a document already in the citizen's store (reuse)."""

    name: str = Field(min_length=1, max_length=300)
    form: Literal["original", "copy", "certified_copy", "electronic"] = "original"
    count: int = Field(default=1, ge=1, le=100)
    document_id: str | None = Field(default=None, max_length=64, description="a digitization document id: reuse, no new paper")


class ReceptionBase(BaseModel):
    """What every accepted dossier carries."""

    procedure_code: str = Field(min_length=1, max_length=32, examples=["1.004194"])
    applicant: Applicant | None = None
    applicant_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="shorthand for applicant.name when nothing else is known"
    )
    components: list[SubmittedComponent] = Field(default_factory=list, max_length=50)
    sets: int = Field(default=1, ge=1, le=20)
    pages: int | None = Field(default=None, ge=1, le=10000, description="page count, for fees charged per page")
    copies: int = Field(default=1, ge=1, le=1000)
    exemption: str | None = Field(default=None, max_length=64, description="a fee exemption the applicant qualifies for")
    verification_needed: bool = Field(default=False, description="the procedure's extra time for verification applies")
    return_channel: Literal["counter", "postal", "online"] = "counter"
    notify_by: Literal["email", "sms"] | None = Field(
        default=None, description="tell the applicant of the dossier's progress by e-mail or SMS (needs applicant.email / .phone)"
    )

    @model_validator(mode="after")
    def _applicant(self) -> ReceptionBase:
        if self.applicant is None:
            if not self.applicant_name:
                raise ValueError("applicant: who submits is required (applicant or applicant_name)")
            self.applicant = Applicant(name=self.applicant_name)
        if self.notify_by == "email" and not self.applicant.email:
            raise ValueError("notify_by: e-mail notifications need applicant.email")
        if self.notify_by == "sms" and not self.applicant.phone:
            raise ValueError("notify_by: SMS notifications need applicant.phone")
        return self


class ReceiveDossier(ReceptionBase):
    """A clerk accepts a complete dossier at the counter or from the post."""

    channel: Literal["counter", "postal"] = "counter"
    postal_tracking_number: str | None = Field(default=None, min_length=4, max_length=64)
    processing_unit: str | None = Field(
        default=None, max_length=64, description="the unit competent to decide, when not the receiving unit"
    )

    @model_validator(mode="after")
    def _postal(self) -> ReceiveDossier:
        if self.channel == "postal" and not self.postal_tracking_number:
            raise ValueError("postal_tracking_number: a postal dossier needs its tracking number")
        return self


class PortalDossier(ReceptionBase):
    """An online dossier pushed by the provincial portal's webhook."""

    portal_dossier_id: str = Field(min_length=1, max_length=128)
    unit: str = Field(min_length=1, max_length=64, description="the one-stop unit it was submitted to")
    processing_unit: str | None = Field(default=None, max_length=64)
    submitted_at: datetime

    @field_validator("submitted_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2025-03-03T09:00:00+07:00")
        return value


class NotAccepted(BaseModel):
    """A dossier the clerk could not accept: guided elsewhere, asked to complete, or refused."""

    outcome: Literal["out_of_scope", "incomplete", "refused"]
    procedure_code: str | None = Field(default=None, max_length=32)
    applicant_name: str = Field(min_length=1, max_length=200)
    channel: Literal["counter", "postal", "online"] = "counter"
    guidance: str | None = Field(default=None, max_length=2000, description="out of scope: where to go instead")
    missing: list[str] = Field(default_factory=list, max_length=50, description="incomplete: what to add (Form 02)")
    reason: str | None = Field(default=None, max_length=2000, description="refused: the ground (Form 03)")

    @model_validator(mode="after")
    def _what(self) -> NotAccepted:
        if self.outcome == "out_of_scope" and not self.guidance:
            raise ValueError("guidance: say which agency handles it")
        if self.outcome == "incomplete" and not self.missing:
            raise ValueError("missing: list what must be added, once and completely")
        if self.outcome == "refused" and not self.reason:
            raise ValueError("reason: a refusal states its ground")
        return self


class Supplement(BaseModel):
    """The applicant hands in what was asked for."""

    items: list[SubmittedComponent] = Field(min_length=1, max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class Withdrawal(BaseModel):
    """The applicant asks to withdraw."""

    reason: str | None = Field(default=None, max_length=2000)


class ProcedureDefinition(BaseModel):
    """A procedure as an admin publishes it."""

    name: str = Field(min_length=1, max_length=500)
    field: str = Field(min_length=1, max_length=100)
    code_verified: bool = True
    time_limit: dict[str, Any]
    committed_limit: dict[str, Any] | None = None
    fee_lines: list[dict[str, Any]] = Field(default_factory=list)
    online_level: Literal["full", "partial", "in_person"]
    components: list[dict[str, Any]] = Field(default_factory=list)
    on_the_spot: bool = False
    lien_thong_steps: list[dict[str, Any]] = Field(default_factory=list)
    evidence: str = ""


class PublishVersion(BaseModel):
    """A new version of a procedure, in force from a day."""

    effective_from: date
    definition: ProcedureDefinition


# ---- helpers ---------------------------------------------------------------


def procedure_of(row: store.ProcedureVersion) -> domain.Procedure:
    """The domain procedure of a catalog row."""
    return domain.procedure_from_json(row.document, version=row.version, effective_from=row.effective_from)


def checked_procedure(code: str, definition: dict[str, Any]) -> domain.Procedure:
    """A definition as the domain reads it; a 422 problem naming what is wrong otherwise."""
    try:
        procedure = domain.procedure_from_json({**definition, "code": code})
    except (KeyError, ValueError, TypeError) as exc:
        raise Problem(422, "invalid-procedure", "The procedure definition is not valid", f"{type(exc).__name__}: {exc}") from None
    if procedure.committed_limit and procedure.committed_limit.unit != procedure.time_limit.unit:
        raise Problem(422, "invalid-procedure", "The procedure definition is not valid", "committed_limit: same unit as time_limit")
    if procedure.committed_limit and procedure.committed_limit.amount > procedure.time_limit.amount:
        raise Problem(422, "invalid-procedure", "The procedure definition is not valid", "committed_limit: longer than the legal limit")
    return procedure


async def procedure_in_force(tx_or_session: Any, code: str, day: date) -> store.ProcedureVersion:
    """The catalog row in force, or a 422 problem naming the code."""
    session = getattr(tx_or_session, "session", tx_or_session)
    row = await store.procedure_at(session=session, code=code, day=day)
    if row is None:
        raise Problem(422, "unknown-procedure", "Unknown procedure", f"procedure_code: no procedure {code!r} in the catalog.")
    return row


class CatalogCache:
    """Procedure versions in force, per (code, day), kept a few seconds: a reception need not read the catalog.

    A version published here is seen at once; one published through another replica within the cache time.
    """

    def __init__(self, settings: IntakeSettings) -> None:
        self.settings = settings
        self._cached: dict[tuple[str, date], tuple[float, store.ProcedureVersion, domain.Procedure]] = {}

    async def in_force(self, tx: UnitOfWork, code: str, day: date) -> store.ProcedureVersion:
        """The row in force on the day (a 422 problem when there is none)."""
        return (await self.procedure(tx, code, day))[0]

    async def procedure(self, tx: UnitOfWork, code: str, day: date) -> tuple[store.ProcedureVersion, domain.Procedure]:
        """The row in force on the day and its parsed procedure, parsed once per cache period, not per reception."""
        hit = self._cached.get((code, day))
        if hit and _time.monotonic() - hit[0] < self.settings.calendar_cache_seconds:
            return hit[1], hit[2]
        row = await procedure_in_force(tx, code, day)
        procedure = procedure_of(row)
        self._cached[(code, day)] = (_time.monotonic(), row, procedure)
        return row, procedure

    def forget(self) -> None:
        """Drop everything after the catalog changed here."""
        self._cached.clear()


class CalendarCache:
    """Working calendars per province: the national calendar plus the admin's days, reloaded every few seconds."""

    def __init__(self, db: Database, settings: IntakeSettings) -> None:
        self.db = db
        self.settings = settings
        self._cached: dict[str, tuple[float, WorkingCalendar]] = {}
        self._loading = asyncio.Lock()

    async def get(self, province: str) -> WorkingCalendar:
        """The province's calendar."""
        hit = self._cached.get(province)
        if hit and _time.monotonic() - hit[0] < self.settings.calendar_cache_seconds:
            return hit[1]
        async with self._loading:
            hit = self._cached.get(province)
            if hit and _time.monotonic() - hit[0] < self.settings.calendar_cache_seconds:
                return hit[1]
            return await self._load(province)

    async def _load(self, province: str) -> WorkingCalendar:
        async with self.db.sessions() as session:
            days = await store.calendar_days(session=session, province=province)
        calendar = WorkingCalendar(
            extra_days_off={d.day: d.note for d in days if not d.working},
            extra_working_days={d.day: d.note for d in days if d.working},
            start_of_day=self.settings.office_opens,
            end_of_day=self.settings.office_closes,
            cutoff=self.settings.same_day_cutoff,
        )
        self._cached[province] = (_time.monotonic(), calendar)
        return calendar

    def forget(self, province: str) -> None:
        """Drop a province after its days changed here."""
        self._cached.pop(province, None)


# ---- catalog ---------------------------------------------------------------


async def publish_version(tx: UnitOfWork, code: str, cmd: PublishVersion, *, user: Principal) -> store.ProcedureVersion:
    """Publish the next version of a procedure (or its first)."""
    document = {**cmd.definition.model_dump(), "code": code}
    checked_procedure(code, document)
    latest = await store.latest_version_number(session=tx.session, code=code)
    row = store.ProcedureVersion(
        code=code,
        version=latest + 1,
        effective_from=cmd.effective_from,
        name=cmd.definition.name,
        field=cmd.definition.field,
        document=document,
        published_at=tx.db.clock.now(),
        published_by=user.subject,
    )
    store.add(session=tx.session, row=row)
    return row


async def import_catalog(tx: UnitOfWork, entries: list[dict[str, Any]], *, user: Principal) -> dict[str, int]:
    """Load exported versions: new ones are added, identical ones skipped, a different body under a taken version refused."""
    added = skipped = 0
    for entry in entries:
        try:
            code, version = str(entry["code"]), int(entry["version"])
            effective_from = date.fromisoformat(str(entry["effective_from"]))
            document = {**entry["definition"], "code": code}
        except (KeyError, TypeError, ValueError) as exc:
            raise Problem(422, "invalid-catalog", "The catalog file is not valid", f"entry {entry!r:.80}: {exc}") from None
        checked_procedure(code, document)
        existing = await store.procedure_version(session=tx.session, code=code, version=version)
        if existing is not None:
            if existing.document != document or existing.effective_from != effective_from:
                raise Conflict(f"{code} version {version} exists with different content; publish a new version instead.")
            skipped += 1
            continue
        store.add(
            session=tx.session,
            row=store.ProcedureVersion(
                code=code,
                version=version,
                effective_from=effective_from,
                name=document["name"],
                field=document["field"],
                document=document,
                published_at=tx.db.clock.now(),
                published_by=f"import:{user.subject}",
            ),
        )
        added += 1
    return {"added": added, "skipped": skipped}


# ---- reception -------------------------------------------------------------


async def _accept(
    tx: UnitOfWork,
    cmd: ReceptionBase,
    *,
    receiving_unit: str,
    processing_unit: str,
    channel: str,
    calendar: WorkingCalendar,
    catalog: CatalogCache,
    settings: IntakeSettings,
    received_by: str,
    received_at: datetime,
    counted_from: datetime,
    **extra: Any,
) -> store.Dossier:
    """Give an accepted dossier its code, appointment and fee, store it and emit ``dossier.received``."""
    day = domain.receipt_day(received_at)
    row, procedure = await catalog.procedure(tx, cmd.procedure_code, day)
    if channel == "online" and procedure.online_level is domain.OnlineLevel.IN_PERSON:
        raise Problem(422, "not-online", "Not an online procedure", f"procedure_code: {procedure.code} is done in person only.")
    when = domain.appointment(counted_from, procedure, calendar, verification=cmd.verification_needed)
    fee = domain.assess_fee(procedure, online=channel == "online", pages=cmd.pages, copies=cmd.copies, exemption=cmd.exemption)
    sequence = await store.next_sequence(session=tx.session, unit=receiving_unit, day=day)
    applicant = cmd.applicant
    assert applicant is not None  # the model validator fills it
    components = [
        {**c.model_dump(), "reused": c.document_id is not None} for c in cmd.components
    ]
    values: dict[str, Any] = dict(
        code=domain.dossier_code(receiving_unit, received_at, sequence, settings.dossier_code_format),
        unit=processing_unit,
        receiving_unit=receiving_unit,
        procedure_code=procedure.code,
        procedure_version=procedure.version,
        procedure_name=procedure.name,
        channel=channel,
        applicant_kind=applicant.kind,
        applicant_name=applicant.name.strip(),
        applicant_id_number=applicant.id_number,
        applicant_tax_code=applicant.tax_code,
        applicant_address=applicant.address,
        applicant_phone=applicant.phone,
        applicant_email=str(applicant.email) if applicant.email else None,
        components=components,
        sets=cmd.sets,
        return_channel=cmd.return_channel,
        received_at=received_at,
        appointment_at=when.appointment_at,
        legal_due_at=when.legal_due_at,
        fee={
            "items": [i.__dict__ for i in fee.items],
            "total": fee.total,
            "pending_lines": list(fee.pending),
            "currency": "VND",
        },
        status=2,
        received_by=received_by,
        **extra,
    )
    dossier = await store.insert_dossier(session=tx.session, values=values)
    await tx.emit(
        DossierReceived(
            dossier_code=dossier.code,
            unit=processing_unit,
            occurred_at=received_at,
            procedure_code=procedure.code,
            procedure_name=procedure.name,
            procedure_version=procedure.version,
            procedure_field=procedure.field,
            applicant_name=dossier.applicant_name,
            channel=channel,  # type: ignore[arg-type]
            received_at=received_at,
            appointment_at=when.appointment_at,
            due_at_original=when.appointment_at,
            legal_due_at=when.legal_due_at,
            received_by=received_by,
            receiving_unit=receiving_unit,
            on_the_spot=procedure.on_the_spot,
            fee_due=fee.total,
            fee_pending=bool(fee.pending),
            reused_components=sum(1 for c in components if c["reused"]),
            return_channel=cmd.return_channel,
            fee_lines=list(row.document.get("fee_lines") or []),
            pages=cmd.pages,
            copies=cmd.copies,
            fee_exemption=cmd.exemption,
            applicant_email=dossier.applicant_email,
            applicant_phone=dossier.applicant_phone,
            notify_by=cmd.notify_by,
        )
    )
    if dossier.portal_dossier_id:
        queue_push(tx, dossier, status=2)
    return dossier


async def receive_dossier(
    tx: UnitOfWork,
    cmd: ReceiveDossier,
    *,
    user: Principal,
    unit: str,
    calendars: CalendarCache,
    catalog: CatalogCache,
    settings: IntakeSettings,
    idempotency_key: str | None = None,
) -> tuple[store.Dossier, bool]:
    """Accept a dossier at the counter or from the post; (dossier, created)."""
    user.require_unit(unit)
    if idempotency_key:
        earlier = await store.by_idempotency_key(session=tx.session, unit=unit, key=idempotency_key)
        if earlier is not None:
            return earlier, False
    now = tx.db.clock.now()
    dossier = await _accept(
        tx,
        cmd,
        receiving_unit=unit,
        processing_unit=cmd.processing_unit or unit,
        channel=cmd.channel,
        calendar=await calendars.get(domain.province_of(cmd.processing_unit or unit)),
        catalog=catalog,
        settings=settings,
        received_by=user.subject,
        received_at=now,
        counted_from=now,
        postal_tracking_number=cmd.postal_tracking_number,
        idempotency_key=idempotency_key,
    )
    return dossier, True


async def receive_portal_dossier(
    tx: UnitOfWork, cmd: PortalDossier, *, calendars: CalendarCache, catalog: CatalogCache, settings: IntakeSettings
) -> tuple[store.Dossier, bool]:
    """Accept an online dossier from the portal; the same portal id twice gives the first dossier."""
    earlier = await store.by_portal_id(session=tx.session, portal_dossier_id=cmd.portal_dossier_id)
    if earlier is not None:
        return earlier, False
    now = tx.db.clock.now()
    processing_unit = cmd.processing_unit or cmd.unit
    calendar = await calendars.get(domain.province_of(processing_unit))
    dossier = await _accept(
        tx,
        cmd,
        receiving_unit=cmd.unit,
        processing_unit=processing_unit,
        channel="online",
        calendar=calendar,
        catalog=catalog,
        settings=settings,
        received_by="portal",
        received_at=now,
        counted_from=calendar.open_instant(min(cmd.submitted_at, now)),
        portal_dossier_id=cmd.portal_dossier_id,
        submitted_at=cmd.submitted_at,
    )
    return dossier, True


async def check_webhook(tx: UnitOfWork, *, settings: IntakeSettings, timestamp: str | None, signature: str | None, body: bytes) -> None:
    """Refuse a forged, stale or replayed portal request."""
    await check_signed_request(
        tx.session, secret=settings.portal_webhook_secret, timestamp=timestamp, given=signature, body=body,
        now=tx.db.clock.now(), max_age_seconds=settings.portal_webhook_max_age_seconds, who="Portal",
    )  # fmt: skip


async def record_not_accepted(tx: UnitOfWork, cmd: NotAccepted, *, user: Principal, unit: str) -> store.IntakeRecord:
    """Keep a record of guidance (out of scope), Form 02 (incomplete) or Form 03 (refused); no code, no clock."""
    user.require_unit(unit)
    now = tx.db.clock.now()
    name = None
    if cmd.procedure_code:
        name = (await procedure_in_force(tx, cmd.procedure_code, domain.receipt_day(now))).name
    sequence = await store.next_record_sequence(session=tx.session, unit=unit, day=domain.receipt_day(now))
    prefix = {"out_of_scope": "HD", "incomplete": "BS", "refused": "TC"}[cmd.outcome]
    row = store.IntakeRecord(
        reference=f"{unit}-{domain.receipt_day(now):%y%m%d}-{prefix}{sequence:03d}",
        outcome=cmd.outcome,
        unit=unit,
        procedure_code=cmd.procedure_code,
        procedure_name=name,
        channel=cmd.channel,
        applicant_name=cmd.applicant_name.strip(),
        details={"guidance": cmd.guidance, "missing": cmd.missing, "reason": cmd.reason},
        created_at=now,
        created_by=user.subject,
    )
    store.add(session=tx.session, row=row)
    return row


# ---- after reception -------------------------------------------------------


async def _open_dossier(tx: UnitOfWork, code: str, user: Principal) -> store.Dossier:
    dossier = await store.get(session=tx.session, code=code, lock=True)
    if dossier is None or not (user.can_see(dossier.receiving_unit) or user.can_see(dossier.unit)):
        raise NotFound("dossier", code)
    return dossier


async def supplement(tx: UnitOfWork, code: str, cmd: Supplement, *, user: Principal) -> store.Dossier:
    """The requested additions arrived: ``dossier.supplemented`` resumes the clock."""
    dossier = await _open_dossier(tx, code, user)
    if dossier.status != 5:
        raise Conflict(
            f"Dossier {code} has no open supplement request (status {dossier.status}: {domain.STATUS_NAMES[dossier.status]}).",
            dossier_status=dossier.status,
        )
    now = tx.db.clock.now()
    dossier.components = [*dossier.components, *({**i.model_dump(), "reused": i.document_id is not None, "supplement": True} for i in cmd.items)]
    set_status(tx, dossier, 4)
    await tx.emit(DossierSupplemented(dossier_code=code, unit=dossier.unit, occurred_at=now, supplemented_at=now))
    return dossier


async def withdraw(tx: UnitOfWork, code: str, cmd: Withdrawal, *, user: Principal) -> store.Dossier:
    """The applicant withdrew the dossier (national status 7)."""
    dossier = await _open_dossier(tx, code, user)
    if dossier.status not in domain.OPEN_STATUSES:
        raise Conflict(f"Dossier {code} is closed (status {dossier.status}: {domain.STATUS_NAMES[dossier.status]}).", dossier_status=dossier.status)
    set_status(tx, dossier, 7)
    await tx.emit(DossierWithdrawn(dossier_code=code, unit=dossier.unit, occurred_at=tx.db.clock.now(), reason=cmd.reason))
    return dossier


def set_status(tx: UnitOfWork, dossier: store.Dossier, status: int) -> None:
    """Move the citizen-facing status and owe the portal a push for online dossiers."""
    if dossier.status == status:
        return
    dossier.status = status
    tx.session.add(dossier)
    if dossier.portal_dossier_id:
        queue_push(tx, dossier, status=status)


def queue_push(tx: UnitOfWork, dossier: store.Dossier, *, status: int) -> None:
    """Owe the portal one status push (DOMAIN.md §7.2–7.4 fields), in order per dossier."""
    now = tx.db.clock.now()
    payload = {
        "MaHoSo": dossier.code,
        "MaHoSoCongDVC": dossier.portal_dossier_id,
        "MaTTHC": dossier.procedure_code,
        "TrangThaiHoSo": status,
        "TenTrangThai": domain.STATUS_NAMES[status],
        "KenhThucHien": 2,
        "NgayTiepNhan": dossier.received_at.isoformat(),
        "NgayHenTra": dossier.appointment_at.isoformat(),
        "ThoiDiem": now.isoformat(),
    }
    store.add(
        session=tx.session,
        row=store.PortalPush(
            dossier_code=dossier.code,
            portal_dossier_id=dossier.portal_dossier_id or "",
            status=status,
            payload=payload,
            created_at=now,
            next_attempt_at=now,
        ),
    )


async def follow_case(tx: UnitOfWork, event: Event, envelope: Envelope) -> None:
    """A workflow event changes the status the citizen and the portal see."""
    status = domain.STATUS_BY_EVENT.get(envelope.type)
    dossier = await store.get(session=tx.session, code=event.dossier_code, lock=True)
    if status is None or dossier is None:
        return
    set_status(tx, dossier, status)


SUBSCRIPTIONS = Subscription(
    producers=(WORKFLOW,),
    handlers={
        model: follow_case
        for model in (
            CaseAssigned,
            CaseClockResumed,
            CasePaymentAwaited,
            CaseStopped,
            CaseSupplementRequested,
            CaseTransferred,
            CaseTransferReturned,
            CaseApproved,
            CaseRejected,
            CaseResultReady,
            CaseReturned,
        )
    },
)
