"""Intake routes: validate, open the transaction, call one handler, map the result."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import AwareDatetime

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path as FilePath

from starlette.datastructures import UploadFile

from services.intake import domain, handlers, registers, store
from services.intake.deps import Deps
from services.intake.models import (
    ApplicantPublic,
    AppointmentPublic,
    CalendarDayChange,
    CalendarDayPublic,
    CalendarPublic,
    CatalogImport,
    DeclareUnits,
    DossierPublic,
    IntakeRecordPublic,
    MergeUnit,
    NationalCatalogApply,
    NationalCatalogLook,
    NationalImportPublic,
    NotAccepted,
    PortalPushPublic,
    ProcedurePublic,
    ProceduresPublic,
    PublicStatus,
    PublishRules,
    PublishVersion,
    ReceiveDossier,
    RegisterImportReport,
    RulesPublic,
    RuleVersionPublic,
    RuleVersionsPublic,
    Supplement,
    UnitsPublic,
    Withdrawal,
)
from shared.auth import CurrentUser, Principal, Role, require_roles
from shared.calendar import DayKind
from shared.errors import Problem
from shared.ratelimit import Policy, rate_limited
from shared.roles import OFFICIALS
from shared.rules import RuleBook, Rules, RuleVersion
from shared.units import AdminUnit
from shared.status import STATUS_NAMES
from shared.vntext import mask_id_number

router = APIRouter(prefix="/api/v1")


def _procedure(row: store.ProcedureVersion) -> ProcedurePublic:
    definition = {k: v for k, v in row.document.items() if k != "code"}
    return ProcedurePublic(**row.model_dump(exclude={"document"}), definition=definition)


def _procedures(rows: list[store.ProcedureVersion]) -> ProceduresPublic:
    return ProceduresPublic(data=[_procedure(r) for r in rows], count=len(rows))


def _dossier(d: store.Dossier) -> DossierPublic:
    return DossierPublic(
        **d.model_dump(exclude={"unit", "applicant_kind", "applicant_name", "applicant_id_number", "applicant_tax_code",
                                "applicant_address", "applicant_phone", "applicant_email", "idempotency_key", "submitted_at"}),
        processing_unit=d.unit,
        applicant=ApplicantPublic(
            kind=d.applicant_kind,
            name=d.applicant_name,
            id_number_masked=mask_id_number(d.applicant_id_number) if d.applicant_id_number else None,
            tax_code=d.applicant_tax_code,
            address=d.applicant_address,
            phone=d.applicant_phone,
            email=d.applicant_email,
        ),
        status_name=STATUS_NAMES[d.status],
    )  # fmt: skip


def _record(r: store.IntakeRecord) -> IntakeRecordPublic:
    return IntakeRecordPublic(**r.model_dump(exclude={"id"}), form=domain.NOT_ACCEPTED_FORMS.get(r.outcome))


def _pdf(pdf: bytes, filename: str) -> Response:
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'})


# ---- catalog ------------------------------------------------------------------


@router.get("/procedures", response_model=ProceduresPublic, tags=["procedures"], summary="Procedures in force")
async def list_procedures(
    deps: Deps,
    field: Annotated[str | None, Query(max_length=100, examples=["Hộ tịch"])] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name or code")] = None,
    at: Annotated[date | None, Query(description="the catalog as in force on this day")] = None,
) -> ProceduresPublic:
    async with deps.db.reading() as tx:
        return _procedures(await handlers.list_procedures(tx, field=field, text=q, at=at))


@router.get("/procedures/{code}", response_model=ProcedurePublic, tags=["procedures"], summary="One procedure")
async def get_procedure(
    code: str,
    deps: Deps,
    at: Annotated[date | None, Query()] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> ProcedurePublic:
    async with deps.db.reading() as tx:
        return _procedure(await handlers.get_procedure(tx, code, at=at, version=version))


@router.get("/procedures/{code}/versions", response_model=ProceduresPublic, tags=["procedures"], summary="Every version")
async def list_versions(code: str, deps: Deps) -> ProceduresPublic:
    async with deps.db.reading() as tx:
        return _procedures(await handlers.list_versions(tx, code))


@router.post(
    "/procedures/{code}/versions", status_code=201, response_model=ProcedurePublic, tags=["procedures"],
    summary="Publish a new version (admin)",
)  # fmt: skip
async def publish_version(
    code: Annotated[str, Path(pattern=r"^[0-9A-Za-z.\-]{1,32}$")],
    body: PublishVersion,
    deps: Deps,
    user: Annotated[Principal, require_roles(Role.ADMIN)],
) -> ProcedurePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.publish_version(tx, code, body, deps=deps, user=user)
    return _procedure(row)


@router.get(
    "/procedures/{code}/appointment", response_model=AppointmentPublic, tags=["procedures"],
    summary="The appointment a dossier received at that moment would get",
)  # fmt: skip
async def preview_appointment(
    code: str,
    deps: Deps,
    received_at: Annotated[AwareDatetime, Query(description="ISO 8601 with offset", examples=["2025-04-24T09:00:00+07:00"])],
    unit: Annotated[str | None, Query(max_length=64, description="the processing unit, for its province's calendar")] = None,
    verification: bool = False,
) -> AppointmentPublic:
    async with deps.db.reading() as tx:
        row, when = await handlers.preview_appointment(tx, code, received_at, unit=unit, verification=verification, deps=deps)
        return AppointmentPublic(
            procedure_code=row.code,
            procedure_version=row.version,
            received_at=received_at,
            appointment_at=when.appointment_at,
            legal_due_at=when.legal_due_at,
        )


@router.get("/catalog/export", tags=["procedures"], summary="Every version of every procedure, as JSON")
async def export_catalog(deps: Deps) -> dict[str, Any]:
    async with deps.db.reading() as tx:
        return await handlers.export_catalog(tx)


@router.post("/catalog/import", tags=["procedures"], summary="Load an exported catalog (admin)")
async def import_catalog(body: CatalogImport, deps: Deps, user: Annotated[Principal, require_roles(Role.ADMIN)]) -> dict[str, int]:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        return await handlers.import_catalog(tx, body, deps=deps, user=user)


def _national_import(row: store.NationalImport) -> NationalImportPublic:
    kinds = ("added", "changed", "unchanged", "local_only", "unusable")
    return NationalImportPublic(
        **row.model_dump(exclude={"diff", "base_versions"}),
        counts={k: len(row.diff[k]) for k in kinds},
        **{k: row.diff[k] for k in kinds},
    )


@router.post(
    "/catalog/national-imports", status_code=201, response_model=NationalImportPublic, tags=["procedures"],
    summary="Read the national procedure list through the LGSP and show what importing it would change (admin; a dry run)",
    responses={502: {"description": "the LGSP refused the list"}, 503: {"description": "the LGSP is not configured or not reachable"}},
)  # fmt: skip
async def look_at_national_catalog(
    body: NationalCatalogLook, deps: Deps, user: Annotated[Principal, require_roles(Role.ADMIN)]
) -> NationalImportPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.look_at_national_catalog(tx, body, deps=deps, user=user)
    return _national_import(row)


@router.get(
    "/catalog/national-imports/{import_id}", response_model=NationalImportPublic, tags=["procedures"],
    summary="A look at the national list and what applying it published (admin)",
)  # fmt: skip
async def get_national_import(
    import_id: int, deps: Deps, user: Annotated[Principal, require_roles(Role.ADMIN)]
) -> NationalImportPublic:
    async with deps.db.reading() as tx:
        return _national_import(await handlers.get_national_import(tx, import_id))


@router.post(
    "/catalog/national-imports/{import_id}/apply", response_model=NationalImportPublic, tags=["procedures"],
    summary="Publish what a look found: a new version of each procedure added or changed (admin)",
)  # fmt: skip
async def apply_national_catalog(
    import_id: int, body: NationalCatalogApply, deps: Deps, user: Annotated[Principal, require_roles(Role.ADMIN)]
) -> NationalImportPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.apply_national_catalog(tx, import_id, body, deps=deps, user=user)
    return _national_import(row)


# ---- calendar ------------------------------------------------------------------


@router.get("/calendar/{province}", response_model=CalendarPublic, tags=["calendar"], summary="A province's working days")
async def get_calendar(
    deps: Deps,
    province: Annotated[str, Path(max_length=16)],
    from_: Annotated[date, Query(alias="from")],
    to: date,
) -> CalendarPublic:
    if to < from_ or (to - from_).days > 400:
        raise Problem(422, "validation-error", "The request is not valid", "from/to: a range of at most 400 days, from ≤ to.")
    async with deps.db.reading() as tx:
        calendar = await handlers.get_calendar(tx, province, deps=deps)
    days = [from_ + timedelta(days=n) for n in range((to - from_).days + 1)]
    return CalendarPublic(
        province=province, data=[CalendarDayPublic(day=d, kind=calendar.kind(d), working=calendar.is_working(d)) for d in days]
    )


@router.put("/calendar/{province}/days/{day}", response_model=CalendarDayPublic, tags=["calendar"], summary="Declare a day (admin)")
async def put_calendar_day(
    province: Annotated[str, Path(max_length=16)],
    day: date,
    body: CalendarDayChange,
    deps: Deps,
    user: Annotated[Principal, require_roles(Role.ADMIN)],
) -> CalendarDayPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.put_calendar_day(tx, province, day, body, deps=deps, user=user)
    kind = DayKind.ADMIN_WORKING if row.working else DayKind.ADMIN_OFF
    return CalendarDayPublic(day=row.day, kind=kind, working=row.working, note=row.note)


@router.delete("/calendar/{province}/days/{day}", status_code=204, tags=["calendar"], summary="Forget a declared day (admin)")
async def delete_calendar_day(
    province: Annotated[str, Path(max_length=16)],
    day: date,
    deps: Deps,
    user: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        await handlers.delete_calendar_day(tx, province, day, deps=deps, user=user)
    return Response(status_code=204)


# ---- the law in force: rule sets and administrative units ---------------------------------------------------------


def _version(v: RuleVersion, book: RuleBook) -> RuleVersionPublic:
    return RuleVersionPublic(
        **v.model_dump(), ref=v.ref, effective_to=book.effective_to(v), shipped=handlers.is_shipped(v)
    )


def _rules(r: Rules) -> RulesPublic:
    return RulesPublic.model_validate(r.model_dump())


def _units(units: list[AdminUnit]) -> UnitsPublic:
    return UnitsPublic(data=units, count=len(units))


_LAW_REFUSALS: dict[int | str, dict[str, Any]] = {
    409: {"description": "overlapping effective dates: a version of the scope is in force from that day or later"},
    422: {"description": "a problem listing every reason (`problems`): unknown regime, a day in the past, rules that do not validate"},
}


@router.post(
    "/rulesets", status_code=201, response_model=RuleVersionPublic, tags=["law"],
    summary="Publish a rule set version: national, or a province's override (admin)", responses=_LAW_REFUSALS,
)  # fmt: skip
async def publish_rules(body: PublishRules, deps: Deps, user: Annotated[Principal, require_roles(Role.ADMIN)]) -> RuleVersionPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        published, book = await handlers.publish_rules(tx, body, deps=deps, user=user)
    return _version(published, book)


@router.get("/rulesets", response_model=RuleVersionsPublic, tags=["law"], summary="Every rule set version, shipped and published")
async def list_rules(
    deps: Deps,
    scope: Annotated[str | None, Query(max_length=8, description="VN or a province code")] = None,
) -> RuleVersionsPublic:
    async with deps.db.reading() as tx:
        book = await handlers.rule_book(tx, deps=deps)
    data = [_version(v, book) for v in book.history(scope)]
    return RuleVersionsPublic(data=data, count=len(data))


@router.get("/rulesets/in-force", response_model=RulesPublic, tags=["law"], summary="The rules of a dossier received then, there")
async def rules_in_force(
    deps: Deps,
    at: Annotated[
        date | datetime | None, Query(description="a day, or an instant (without an offset: Vietnam time); default now", examples=["2025-07-01"])
    ] = None,
    province: Annotated[str | None, Query(max_length=8, description="the province code (H56); default the national rules")] = None,
) -> RulesPublic:
    async with deps.db.reading() as tx:
        return _rules(await handlers.rules_in_force(tx, at, province, deps=deps))


@router.get("/rulesets/{ref}", response_model=RulesPublic, tags=["law"], summary="The rules a dossier recorded (VN.2, VN.2+H56.1)")
async def rules_by_ref(ref: Annotated[str, Path(max_length=40)], deps: Deps) -> RulesPublic:
    async with deps.db.reading() as tx:
        return _rules(await handlers.rules_by_ref(tx, ref, deps=deps))


@router.post(
    "/units", response_model=UnitsPublic, tags=["law"], summary="Enter or correct administrative units (admin)",
    responses={422: {"description": "a parent or successor the registry does not know"}},
)  # fmt: skip
async def declare_units(body: DeclareUnits, deps: Deps, user: Annotated[Principal, require_roles(Role.ADMIN)]) -> UnitsPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        units = await handlers.declare_units(tx, body, deps=deps, user=user)
    return _units(units)


@router.get("/units", response_model=UnitsPublic, tags=["law"], summary="The administrative units of the registry")
async def list_units(
    deps: Deps,
    province: Annotated[str | None, Query(max_length=64, description="only this province's units")] = None,
) -> UnitsPublic:
    async with deps.db.reading() as tx:
        return _units(await handlers.list_units(tx, province=province, deps=deps))


@router.post(
    "/units/{code}/merge", response_model=AdminUnit, tags=["law"],
    summary="Merge a unit into another from a day: new dossiers go to it, the workflow hands the open ones over (admin)",
    responses={404: {"description": "no such unit"}, 422: {"description": "a merge the registry refuses (`field` names the input)"}},
)  # fmt: skip
async def merge_unit(
    code: Annotated[str, Path(max_length=64)], body: MergeUnit, deps: Deps, user: Annotated[Principal, require_roles(Role.ADMIN)]
) -> AdminUnit:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        return await handlers.merge_unit(tx, code, body, deps=deps, user=user)


# ---- reception -----------------------------------------------------------------


@router.post(
    "/dossiers", status_code=201, response_model=DossierPublic, tags=["dossiers"],
    summary="Accept a dossier at the counter or from the post (Form 01)",
    responses={200: {"description": "the same Idempotency-Key was used before: the first dossier"}},
)  # fmt: skip
async def receive_dossier(
    response: Response,
    body: ReceiveDossier,
    deps: Deps,
    user: Annotated[Principal, require_roles(Role.CLERK)],
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> DossierPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        dossier, created = await handlers.receive_dossier(tx, body, idempotency_key=idempotency_key, deps=deps, user=user)
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
    deps: Deps,
    x_portal_timestamp: Annotated[str | None, Header()] = None,
    x_portal_signature: Annotated[str | None, Header()] = None,
) -> DossierPublic:
    body = await request.body()  # the signature covers the exact bytes: the handler checks it, then validates
    async with deps.db.unit_of_work(actor="portal") as tx:
        dossier, created = await handlers.receive_portal_dossier(
            tx, body, timestamp=x_portal_timestamp, signature=x_portal_signature, deps=deps
        )
    if not created:
        response.status_code = 200
    return _dossier(dossier)


@router.post(
    "/intake-records", status_code=201, response_model=IntakeRecordPublic, tags=["dossiers"],
    summary="A dossier not accepted: guidance, Form 02 (incomplete) or Form 03 (refused)",
)  # fmt: skip
async def record_not_accepted(
    body: NotAccepted, deps: Deps, user: Annotated[Principal, require_roles(Role.CLERK)]
) -> IntakeRecordPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.record_not_accepted(tx, body, deps=deps, user=user)
    return _record(row)


@router.get("/intake-records/{reference}", response_model=IntakeRecordPublic, tags=["dossiers"], summary="A record")
async def get_record(reference: str, deps: Deps, user: Annotated[Principal, require_roles(*OFFICIALS)]) -> IntakeRecordPublic:
    async with deps.db.reading() as tx:
        return _record(await handlers.get_record(tx, reference, user=user))


@router.get("/dossiers/{code}", response_model=DossierPublic, tags=["dossiers"], summary="A received dossier")
async def get_dossier(code: str, deps: Deps, user: CurrentUser) -> DossierPublic:
    async with deps.db.reading() as tx:
        return _dossier(await handlers.get_dossier(tx, code, user=user))


@router.post("/dossiers/{code}/supplements", response_model=DossierPublic, tags=["dossiers"], summary="The requested additions arrived")
async def supplement(
    code: str, body: Supplement, deps: Deps, user: Annotated[Principal, require_roles(Role.CLERK)]
) -> DossierPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        dossier = await handlers.supplement(tx, code, body, user=user)
    return _dossier(dossier)


@router.post("/dossiers/{code}/withdrawal", response_model=DossierPublic, tags=["dossiers"], summary="The applicant withdraws")
async def withdraw(
    code: str, body: Withdrawal, deps: Deps, user: Annotated[Principal, require_roles(Role.CLERK)]
) -> DossierPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        dossier = await handlers.withdraw(tx, code, body, user=user)
    return _dossier(dossier)


@router.get(
    "/dossiers/{code}/portal-pushes", response_model=list[PortalPushPublic], tags=["portal"],
    summary="Status pushes to the portal for an online dossier",
)  # fmt: skip
async def portal_pushes(code: str, deps: Deps, user: CurrentUser) -> list[PortalPushPublic]:
    async with deps.db.reading() as tx:
        rows = await handlers.portal_pushes(tx, code, user=user)
        return [PortalPushPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get(
    "/public/dossiers/{code}", response_model=PublicStatus, tags=["public"], summary="Status lookup for the citizen",
    dependencies=[rate_limited(Policy.PUBLIC)],
)
async def public_status(code: Annotated[str, Path(max_length=64)], deps: Deps) -> PublicStatus:
    async with deps.db.reading() as tx:
        dossier = await handlers.public_status(tx, code)
        return PublicStatus(
            code=dossier.code,
            procedure_name=dossier.procedure_name,
            status=dossier.status,
            status_name=STATUS_NAMES[dossier.status],
            received_at=dossier.received_at,
            appointment_at=dossier.appointment_at,
        )


# ---- printed forms -------------------------------------------------------------

_PDF = {200: {"content": {"application/pdf": {}}, "description": "the form as PDF"}}


@router.get("/dossiers/{code}/receipt.pdf", tags=["forms"], summary="Form 01: receipt and appointment", responses=_PDF)
async def receipt_pdf(code: str, deps: Deps, user: CurrentUser) -> Response:
    async with deps.db.reading() as tx:
        pdf = await handlers.receipt_pdf(tx, code, deps=deps, user=user)
    return _pdf(pdf, f"{code}-mau-01.pdf")


@router.get(
    "/intake-records/{reference}/form.pdf", tags=["forms"], summary="Form 02 (incomplete) or 03 (refused)", responses=_PDF
)
async def record_pdf(reference: str, deps: Deps, user: Annotated[Principal, require_roles(*OFFICIALS)]) -> Response:
    async with deps.db.reading() as tx:
        pdf, form = await handlers.record_pdf(tx, reference, deps=deps, user=user)
    return _pdf(pdf, f"{reference}-mau-{form}.pdf")


# ---- paper registers brought in (issue #22) ---------------------------------------------------------------------------


def _spool(source: UploadFile) -> registers.Upload:
    """Copy the uploaded part to a file of its own, hashing it (in a thread: up to 64 MiB)."""
    fd, name = tempfile.mkstemp(prefix="motcua-register-")
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as out:
        source.file.seek(0)
        while chunk := source.file.read(1024 * 1024):
            size += len(chunk)
            if size > registers.MAX_FILE_BYTES:
                out.close()
                os.unlink(name)
                raise _too_large()
            digest.update(chunk)
            out.write(chunk)
    return registers.Upload(path=FilePath(name), filename=(source.filename or None), sha256=digest.hexdigest(), size=size)


def _too_large() -> Problem:
    limit = registers.MAX_FILE_BYTES
    return Problem(413, "payload-too-large", "The file is too large", f"A register file is at most {limit // 1048576} MiB: split it by year.",
                   limit_bytes=limit)  # fmt: skip


async def _register_upload(request: Request) -> registers.Upload:
    """The one 'file' part of a multipart request, on disk; 413 beyond the limit, 415 for another content type."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Problem(415, "unsupported-media-type", "Send multipart/form-data", "Upload the register as multipart/form-data, part 'file'.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > registers.MAX_FILE_BYTES + 64 * 1024:
        raise _too_large()
    form = await request.form(max_files=1, max_fields=4)
    try:
        source = form.get("file")
        if not isinstance(source, UploadFile):
            raise Problem(422, "validation-error", "The request is not valid", "file: send the register in the multipart part 'file'.")
        return await asyncio.to_thread(_spool, source)
    finally:
        await form.close()


_REGISTER_BODY = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "description": "the register: CSV (UTF-8) or XLSX"}},
    }}}},
}  # fmt: skip


@router.post(
    "/registers/imports", response_model=RegisterImportReport, tags=["registers"],
    summary="Import a unit's paper register (Sổ theo dõi hồ sơ), CSV or XLSX: a dry run by default (clerk, leader, admin)",
    responses={
        201: {"description": "committed: the new dossiers were added (`import_id`)"},
        413: {"description": "the file is larger than the limit"},
        415: {"description": "not a multipart upload"},
        422: {"description": "a file that cannot be read (encoding, columns), or a commit of a file with bad lines: `errors` lists them"},
    },
    openapi_extra=_REGISTER_BODY,
)  # fmt: skip
async def import_register(
    request: Request,
    response: Response,
    deps: Deps,
    user: Annotated[Principal, require_roles(Role.CLERK, Role.LEADER, Role.ADMIN)],
    dry_run: Annotated[bool, Query(description="check every line and report, change nothing")] = True,
    unit: Annotated[str | None, Query(max_length=64, description="the unit whose register it is; default the token's one unit")] = None,
) -> RegisterImportReport:
    unit = handlers.register_unit(user, unit)
    upload = await _register_upload(request)
    try:
        if dry_run:
            async with deps.db.reading() as tx:
                return await handlers.import_register(tx, upload, unit=unit, dry_run=True, deps=deps, user=user)
        async with deps.db.unit_of_work(actor=user.subject) as tx:
            report = await handlers.import_register(tx, upload, unit=unit, dry_run=False, deps=deps, user=user)
        if report.import_id is not None:
            response.status_code = 201
        return report
    finally:
        upload.path.unlink(missing_ok=True)


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/registers/template.{kind}", tags=["registers"], summary="The register template to fill in (CSV in UTF-8, or XLSX)",
    responses={200: {"content": {"text/csv": {}, _XLSX: {}}, "description": "the header and one example line"}},
)  # fmt: skip
async def register_template(kind: Annotated[str, Path(pattern="^(csv|xlsx)$")]) -> Response:
    body, media = (registers.template_csv(), "text/csv; charset=utf-8") if kind == "csv" else (registers.template_xlsx(), _XLSX)
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="so-theo-doi-ho-so.{kind}"'})
