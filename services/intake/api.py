"""Intake routes: validate, call one handler, map the result."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from services.intake import domain, handlers, printing, store
from shared.auth import CurrentUser, Principal, Role, require_roles
from shared.calendar import DayKind
from shared.errors import NotFound, Problem
from shared.events import CalendarDayDeclared, CalendarDayForgotten
from shared.ratelimit import Policy, rate_limited
from shared.service import DbDep

router = APIRouter(prefix="/api/v1")
OFFICIALS = (Role.CLERK, Role.SPECIALIST, Role.LEADER, Role.ADMIN, Role.AUDITOR)


# ---- response models ----------------------------------------------------------


class ProcedurePublic(BaseModel):
    """A procedure version as the catalog shows it."""

    code: str
    version: int
    effective_from: date
    name: str
    field: str
    definition: dict[str, Any]
    published_at: datetime
    published_by: str


class ProceduresPublic(BaseModel):
    """A list of procedures."""

    data: list[ProcedurePublic]
    count: int


class AppointmentPublic(BaseModel):
    """What the receipt would promise for a dossier received at a moment."""

    procedure_code: str
    procedure_version: int
    received_at: datetime
    appointment_at: datetime
    legal_due_at: datetime


class CalendarDayPublic(BaseModel):
    """One day of a province's working calendar."""

    day: date
    kind: DayKind
    working: bool
    note: str | None = None


class CalendarPublic(BaseModel):
    """A stretch of a province's calendar."""

    province: str
    data: list[CalendarDayPublic]


class CalendarDayChange(BaseModel):
    """An admin declares a day working or off for the province."""

    working: bool
    note: str = Field(min_length=1, max_length=300, examples=["Nghỉ bù theo quyết định của UBND tỉnh"])


class ApplicantPublic(BaseModel):
    """The applicant on the receipt; the id number shows its last three digits only."""

    kind: str
    name: str
    id_number_masked: str | None
    tax_code: str | None
    address: str | None
    phone: str | None
    email: str | None


class DossierPublic(BaseModel):
    """A received dossier as the receipt (Form 01) shows it."""

    code: str
    receiving_unit: str
    processing_unit: str
    procedure_code: str
    procedure_version: int
    procedure_name: str
    channel: str
    applicant: ApplicantPublic
    components: list[dict[str, Any]]
    sets: int
    return_channel: str
    postal_tracking_number: str | None
    portal_dossier_id: str | None
    received_at: datetime
    appointment_at: datetime
    legal_due_at: datetime
    fee: dict[str, Any]
    status: int
    status_name: str
    received_by: str


class PublicStatus(BaseModel):
    """What anyone with the code may see: no personal data."""

    code: str
    procedure_name: str
    status: int
    status_name: str
    received_at: datetime
    appointment_at: datetime


class IntakeRecordPublic(BaseModel):
    """A dossier not accepted, with what the applicant was told."""

    reference: str
    outcome: str
    form: str | None
    unit: str
    procedure_code: str | None
    procedure_name: str | None
    channel: str
    applicant_name: str
    details: dict[str, Any]
    created_at: datetime
    created_by: str


class PortalPushPublic(BaseModel):
    """A status push owed to the portal."""

    status: int
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None


def _procedure(row: store.ProcedureVersion) -> ProcedurePublic:
    definition = {k: v for k, v in row.document.items() if k != "code"}
    return ProcedurePublic(**row.model_dump(exclude={"document"}), definition=definition)


def _dossier(d: store.Dossier) -> DossierPublic:
    return DossierPublic(
        **d.model_dump(exclude={"unit", "applicant_kind", "applicant_name", "applicant_id_number", "applicant_tax_code",
                                "applicant_address", "applicant_phone", "applicant_email", "idempotency_key", "submitted_at"}),
        processing_unit=d.unit,
        applicant=ApplicantPublic(
            kind=d.applicant_kind,
            name=d.applicant_name,
            id_number_masked=("*" * 9 + d.applicant_id_number[-3:]) if d.applicant_id_number else None,
            tax_code=d.applicant_tax_code,
            address=d.applicant_address,
            phone=d.applicant_phone,
            email=d.applicant_email,
        ),
        status_name=domain.STATUS_NAMES[d.status],
    )  # fmt: skip


def _record(r: store.IntakeRecord) -> IntakeRecordPublic:
    form = {"incomplete": "02", "refused": "03"}.get(r.outcome)
    return IntakeRecordPublic(**r.model_dump(exclude={"id"}), form=form)


def _today(request: Request) -> date:
    return domain.receipt_day(request.app.state.clock.now())


def _require_province(user: Principal, province: str) -> None:
    if not ("*" in user.units or any(domain.province_of(u) == province for u in user.units)):
        raise Problem(403, "unit-forbidden", "Province outside your token", f"Your token covers no unit of province {province!r}.")


def _single_unit(user: Principal) -> str:
    units = sorted(u for u in user.units if u != "*")
    if len(units) != 1:
        raise Problem(422, "unit-ambiguous", "Receiving unit unclear", "A clerk's token must name exactly one unit to receive for.")
    return units[0]


# ---- catalog ------------------------------------------------------------------


@router.get("/procedures", response_model=ProceduresPublic, tags=["procedures"], summary="Procedures in force")
async def list_procedures(
    request: Request,
    db: DbDep,
    field: Annotated[str | None, Query(max_length=100, examples=["Hộ tịch"])] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name or code")] = None,
    at: Annotated[date | None, Query(description="the catalog as in force on this day")] = None,
) -> ProceduresPublic:
    async with db.sessions() as session:
        rows = await store.procedures_at(session=session, day=at or _today(request), field=field, text=q)
    return ProceduresPublic(data=[_procedure(r) for r in rows], count=len(rows))


@router.get("/procedures/{code}", response_model=ProcedurePublic, tags=["procedures"], summary="One procedure")
async def get_procedure(
    request: Request,
    code: str,
    db: DbDep,
    at: Annotated[date | None, Query()] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> ProcedurePublic:
    async with db.sessions() as session:
        if version is not None:
            row = await store.procedure_version(session=session, code=code, version=version)
        else:
            row = await store.procedure_at(session=session, code=code, day=at or _today(request))
    if row is None:
        raise NotFound("procedure", code)
    return _procedure(row)


@router.get("/procedures/{code}/versions", response_model=ProceduresPublic, tags=["procedures"], summary="Every version")
async def list_versions(code: str, db: DbDep) -> ProceduresPublic:
    async with db.sessions() as session:
        rows = await store.versions(session=session, code=code)
    if not rows:
        raise NotFound("procedure", code)
    return ProceduresPublic(data=[_procedure(r) for r in rows], count=len(rows))


@router.post(
    "/procedures/{code}/versions", status_code=201, response_model=ProcedurePublic, tags=["procedures"],
    summary="Publish a new version (admin)",
)  # fmt: skip
async def publish_version(
    request: Request,
    code: Annotated[str, Path(pattern=r"^[0-9A-Za-z.\-]{1,32}$")],
    body: handlers.PublishVersion,
    db: DbDep,
    user: Annotated[Principal, require_roles(Role.ADMIN)],
) -> ProcedurePublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.publish_version(tx, code, body, user=user)
    request.app.state.catalog.forget()
    return _procedure(row)


@router.get(
    "/procedures/{code}/appointment", response_model=AppointmentPublic, tags=["procedures"],
    summary="The appointment a dossier received at that moment would get",
)  # fmt: skip
async def preview_appointment(
    request: Request,
    code: str,
    db: DbDep,
    received_at: Annotated[datetime, Query(description="ISO 8601 with offset", examples=["2025-04-24T09:00:00+07:00"])],
    unit: Annotated[str | None, Query(max_length=64, description="the processing unit, for its province's calendar")] = None,
    verification: bool = False,
) -> AppointmentPublic:
    if received_at.tzinfo is None:
        raise Problem(422, "validation-error", "The request is not valid", "received_at: needs a UTC offset, e.g. +07:00.")
    async with db.sessions() as session:
        row = await handlers.procedure_in_force(session, code, domain.receipt_day(received_at))
    calendar = await request.app.state.calendars.get(domain.province_of(unit) if unit else "")
    when = domain.appointment(received_at, handlers.procedure_of(row), calendar, verification=verification)
    return AppointmentPublic(
        procedure_code=row.code,
        procedure_version=row.version,
        received_at=received_at,
        appointment_at=when.appointment_at,
        legal_due_at=when.legal_due_at,
    )


@router.get("/catalog/export", tags=["procedures"], summary="Every version of every procedure, as JSON")
async def export_catalog(request: Request, db: DbDep) -> dict[str, Any]:
    async with db.sessions() as session:
        rows = await store.versions(session=session)
    return {
        "exported_at": request.app.state.clock.now().isoformat(),
        "procedures": [
            {"code": r.code, "version": r.version, "effective_from": r.effective_from.isoformat(),
             "definition": {k: v for k, v in r.document.items() if k != "code"}}
            for r in rows
        ],
    }  # fmt: skip


class CatalogImport(BaseModel):
    """An exported catalog."""

    procedures: list[dict[str, Any]] = Field(max_length=5000)


@router.post("/catalog/import", tags=["procedures"], summary="Load an exported catalog (admin)")
async def import_catalog(
    request: Request, body: CatalogImport, db: DbDep, user: Annotated[Principal, require_roles(Role.ADMIN)]
) -> dict[str, int]:
    async with db.unit_of_work(actor=user.subject) as tx:
        counts = await handlers.import_catalog(tx, body.procedures, user=user)
    request.app.state.catalog.forget()
    return counts


# ---- calendar ------------------------------------------------------------------


@router.get("/calendar/{province}", response_model=CalendarPublic, tags=["calendar"], summary="A province's working days")
async def get_calendar(
    request: Request,
    province: Annotated[str, Path(max_length=16)],
    from_: Annotated[date, Query(alias="from")],
    to: date,
) -> CalendarPublic:
    if to < from_ or (to - from_).days > 400:
        raise Problem(422, "validation-error", "The request is not valid", "from/to: a range of at most 400 days, from ≤ to.")
    calendar = await request.app.state.calendars.get(province)
    days = []
    for n in range((to - from_).days + 1):
        day = date.fromordinal(from_.toordinal() + n)
        kind = calendar.kind(day)
        days.append(CalendarDayPublic(day=day, kind=kind, working=calendar.is_working(day)))
    return CalendarPublic(province=province, data=days)


@router.put("/calendar/{province}/days/{day}", response_model=CalendarDayPublic, tags=["calendar"], summary="Declare a day (admin)")
async def put_calendar_day(
    request: Request,
    province: Annotated[str, Path(max_length=16)],
    day: date,
    body: CalendarDayChange,
    db: DbDep,
    user: Annotated[Principal, require_roles(Role.ADMIN)],
) -> CalendarDayPublic:
    _require_province(user, province)
    async with db.unit_of_work(actor=user.subject) as tx:
        await store.put_calendar_day(
            session=tx.session,
            day=store.CalendarDay(
                province=province, day=day, working=body.working, note=body.note, changed_by=user.subject,
                changed_at=tx.db.clock.now(),
            ),
        )  # fmt: skip
        # in the same transaction: the other services' calendars follow this one (workflow's resumed deadlines)
        await tx.emit(
            CalendarDayDeclared(
                province=province, day=day, occurred_at=tx.db.clock.now(), kind="working" if body.working else "off",
                reason=body.note, declared_by=user.subject,
            )
        )  # fmt: skip
    request.app.state.calendars.forget(province)
    kind = DayKind.ADMIN_WORKING if body.working else DayKind.ADMIN_OFF
    return CalendarDayPublic(day=day, kind=kind, working=body.working, note=body.note)


@router.delete("/calendar/{province}/days/{day}", status_code=204, tags=["calendar"], summary="Forget a declared day (admin)")
async def delete_calendar_day(
    request: Request,
    province: Annotated[str, Path(max_length=16)],
    day: date,
    db: DbDep,
    user: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    _require_province(user, province)
    async with db.unit_of_work(actor=user.subject) as tx:
        if not await store.delete_calendar_day(session=tx.session, province=province, day=day):
            raise NotFound("calendar day", f"{province}/{day}")
        await tx.emit(CalendarDayForgotten(province=province, day=day, occurred_at=tx.db.clock.now(), forgotten_by=user.subject))
    request.app.state.calendars.forget(province)
    return Response(status_code=204)


# ---- reception -----------------------------------------------------------------


@router.post(
    "/dossiers", status_code=201, response_model=DossierPublic, tags=["dossiers"],
    summary="Accept a dossier at the counter or from the post (Form 01)",
    responses={200: {"description": "the same Idempotency-Key was used before: the first dossier"}},
)  # fmt: skip
async def receive_dossier(
    request: Request,
    response: Response,
    body: handlers.ReceiveDossier,
    db: DbDep,
    user: Annotated[Principal, require_roles(Role.CLERK)],
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> DossierPublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        dossier, created = await handlers.receive_dossier(
            tx, body, user=user, unit=_single_unit(user), calendars=request.app.state.calendars,
            catalog=request.app.state.catalog, settings=request.app.state.settings, idempotency_key=idempotency_key,
        )  # fmt: skip
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/dossiers/{dossier.code}"
    return _dossier(dossier)


@router.post(
    "/portal/dossiers", status_code=201, response_model=DossierPublic, tags=["portal"],
    summary="The provincial portal's webhook: an online dossier (HMAC-signed)",
    responses={200: {"description": "this portal dossier id was received before: the first dossier"}},
    dependencies=[rate_limited(Policy.CALLBACK)],
)  # fmt: skip
async def portal_dossier(
    request: Request,
    response: Response,
    db: DbDep,
    x_portal_timestamp: Annotated[str | None, Header()] = None,
    x_portal_signature: Annotated[str | None, Header()] = None,
) -> DossierPublic:
    body = await request.body()
    settings = request.app.state.settings
    async with db.unit_of_work(actor="portal") as tx:
        await handlers.check_webhook(tx, settings=settings, timestamp=x_portal_timestamp, signature=x_portal_signature, body=body)
        try:
            submission = handlers.PortalDossier.model_validate_json(body)
        except ValidationError as exc:
            errors = [{"location": [str(p) for p in e["loc"]], "message": e["msg"]} for e in exc.errors()]
            detail = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors[:5])
            raise Problem(422, "validation-error", "The request is not valid", detail, errors=errors) from None
        dossier, created = await handlers.receive_portal_dossier(
            tx, submission, calendars=request.app.state.calendars, catalog=request.app.state.catalog, settings=settings
        )
    if not created:
        response.status_code = 200
    return _dossier(dossier)


@router.post(
    "/intake-records", status_code=201, response_model=IntakeRecordPublic, tags=["dossiers"],
    summary="A dossier not accepted: guidance, Form 02 (incomplete) or Form 03 (refused)",
)  # fmt: skip
async def record_not_accepted(
    body: handlers.NotAccepted, db: DbDep, user: Annotated[Principal, require_roles(Role.CLERK)]
) -> IntakeRecordPublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.record_not_accepted(tx, body, user=user, unit=_single_unit(user))
    return _record(row)


@router.get("/intake-records/{reference}", response_model=IntakeRecordPublic, tags=["dossiers"], summary="A record")
async def get_record(reference: str, db: DbDep, user: Annotated[Principal, require_roles(*OFFICIALS)]) -> IntakeRecordPublic:
    async with db.sessions() as session:
        row = await store.record(session=session, reference=reference)
    if row is None or not user.can_see(row.unit):
        raise NotFound("intake record", reference)
    return _record(row)


async def _visible(db: DbDep, user: Principal, code: str) -> store.Dossier:
    if not user.roles & set(OFFICIALS):
        raise Problem(403, "role-forbidden", "Role not allowed", "Only officials read dossiers.")
    async with db.sessions() as session:
        dossier = await store.get(session=session, code=code)
    if dossier is None or not (user.can_see(dossier.receiving_unit) or user.can_see(dossier.unit)):
        raise NotFound("dossier", code)
    return dossier


@router.get("/dossiers/{code}", response_model=DossierPublic, tags=["dossiers"], summary="A received dossier")
async def get_dossier(code: str, db: DbDep, user: CurrentUser) -> DossierPublic:
    return _dossier(await _visible(db, user, code))


@router.post("/dossiers/{code}/supplements", response_model=DossierPublic, tags=["dossiers"], summary="The requested additions arrived")
async def supplement(
    code: str, body: handlers.Supplement, db: DbDep, user: Annotated[Principal, require_roles(Role.CLERK)]
) -> DossierPublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        dossier = await handlers.supplement(tx, code, body, user=user)
    return _dossier(dossier)


@router.post("/dossiers/{code}/withdrawal", response_model=DossierPublic, tags=["dossiers"], summary="The applicant withdraws")
async def withdraw(
    code: str, body: handlers.Withdrawal, db: DbDep, user: Annotated[Principal, require_roles(Role.CLERK)]
) -> DossierPublic:
    async with db.unit_of_work(actor=user.subject) as tx:
        dossier = await handlers.withdraw(tx, code, body, user=user)
    return _dossier(dossier)


@router.get(
    "/dossiers/{code}/portal-pushes", response_model=list[PortalPushPublic], tags=["portal"],
    summary="Status pushes to the portal for an online dossier",
)  # fmt: skip
async def portal_pushes(code: str, db: DbDep, user: CurrentUser) -> list[PortalPushPublic]:
    await _visible(db, user, code)
    async with db.sessions() as session:
        rows = await store.pushes(session=session, dossier_code=code)
    return [PortalPushPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get(
    "/public/dossiers/{code}", response_model=PublicStatus, tags=["public"], summary="Status lookup for the citizen",
    dependencies=[rate_limited(Policy.PUBLIC)],
)
async def public_status(code: Annotated[str, Path(max_length=64)], db: DbDep) -> PublicStatus:
    async with db.sessions() as session:
        dossier = await store.get(session=session, code=code)
    if dossier is None:
        raise NotFound("dossier", code)
    return PublicStatus(
        code=dossier.code,
        procedure_name=dossier.procedure_name,
        status=dossier.status,
        status_name=domain.STATUS_NAMES[dossier.status],
        received_at=dossier.received_at,
        appointment_at=dossier.appointment_at,
    )




# ---- printed forms -------------------------------------------------------------

_PDF = {200: {"content": {"application/pdf": {}}, "description": "the form as PDF"}}


@router.get("/dossiers/{code}/receipt.pdf", tags=["forms"], summary="Form 01: receipt and appointment", responses=_PDF)
async def receipt_pdf(request: Request, code: str, db: DbDep, user: CurrentUser) -> Response:
    dossier = await _visible(db, user, code)
    pdf = await asyncio.to_thread(printing.receipt, dossier, request.app.state.settings)
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{code}-mau-01.pdf"'})


@router.get(
    "/intake-records/{reference}/form.pdf", tags=["forms"], summary="Form 02 (incomplete) or 03 (refused)", responses=_PDF
)
async def record_pdf(request: Request, reference: str, db: DbDep, user: Annotated[Principal, require_roles(*OFFICIALS)]) -> Response:
    async with db.sessions() as session:
        row = await store.record(session=session, reference=reference)
    if row is None or not user.can_see(row.unit):
        raise NotFound("intake record", reference)
    pdf = await asyncio.to_thread(printing.not_accepted, row, request.app.state.settings)
    if pdf is None:
        raise NotFound("form of intake record", reference)
    form = "02" if row.outcome == "incomplete" else "03"
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{reference}-mau-{form}.pdf"'})
