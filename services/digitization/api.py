"""Digitization routes: validate, open the transaction, call one handler, map the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError

from services.digitization import domain, handlers, signing, store, upload
from services.digitization.deps import Deps, DigitizationDeps
from services.digitization.models import (
    AccessesPublic,
    AccessPublic,
    AccessQuery,
    BackfileBatchPublic,
    CertifyCopy,
    CompleteIntake,
    CompletionPublic,
    DeclareOwner,
    DeclareResultsInForce,
    DigitizePaper,
    DocumentPublic,
    DocumentsPublic,
    ImportBackfile,
    OwnerPublic,
    ProgressLinePublic,
    ProgressPublic,
    ResultsInForcePublic,
    ReuseDocument,
    RevocationPublic,
    RevokeCopy,
    SearchOwnerStore,
    SignaturePublic,
    SignatureReportPublic,
    SignResult,
)
from shared.auth import CurrentUser
from shared.errors import Problem
from shared.ratelimit import Policy, rate_limited
from shared.roles import CASE_WORKERS, Role

router = APIRouter(prefix="/api/v1")
M = TypeVar("M", bound=BaseModel)

_CHECKSUM_HEADERS = {
    "X-Content-SHA256": "SHA-256 of the file (hex) as the client computed it: a mismatch is refused (422)",
    "Repr-Digest": "RFC 9530 form of the same: `sha-256=:<base64>:`",
}


# ---- mapping -------------------------------------------------------------------------------

_REVOCATION = ("revoked_at", "revoked_by", "revocation_reason")  # answered by the revocation route, not with documents


def _document(doc: store.Document) -> DocumentPublic:
    signature = (
        SignaturePublic(signer=doc.signer, certificate_serial=doc.certificate_serial, signed_at=doc.signed_at, signed_by=doc.signed_by)
        if doc.signed
        else None
    )
    return DocumentPublic(
        **doc.model_dump(exclude={"owner_key", "owner_hint", "signer", "certificate_serial", "signed_at", "signed_by", *_REVOCATION}),
        owner=doc.owner_hint,
        signature=signature,
        content_url=f"/api/v1/documents/{doc.id}/content",
    )


def _documents(rows: list[store.Document]) -> DocumentsPublic:
    return DocumentsPublic(data=[_document(r) for r in rows], count=len(rows))


def _report(check_sha256: str, reports: list[signing.SignatureReport], *, document_id: str | None = None, matches: bool | None = None, copy_number: str | None = None) -> SignatureReportPublic:
    details = list(reports)
    last = details[-1] if details else None
    return SignatureReportPublic(
        document_id=document_id,
        signed=bool(details),
        valid=bool(details) and all(d.valid for d in details),
        trusted=bool(details) and all(d.trusted for d in details),
        signer=last.signer if last else None,
        signing_time=last.signing_time if last else None,
        certificate_serial=last.certificate_serial if last else None,
        modified_after_signing=bool(last) and last.modified_after_signing,  # type: ignore[union-attr]
        sha256=check_sha256,
        sha256_matches=matches,
        copy_number=copy_number,
        signatures=details,
    )


def _metadata(model: type[M], fields: dict[str, str]) -> M:
    """Form fields as a command; a 422 problem naming the fields otherwise."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if k != "file" and v.strip() != ""})
    except ValidationError as exc:
        errors = [{"location": [str(p) for p in e["loc"]], "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['location']) or 'body'}: {e['message']}" for e in errors[:5])
        raise Problem(422, "validation-error", "The request is not valid", detail, errors=errors) from None


def _checked(check: signing.SignatureCheck, doc: store.Document) -> SignatureReportPublic:
    return _report(check.sha256, check.reports, document_id=doc.id, matches=check.sha256_matches, copy_number=doc.copy_number)


def _accesses(rows: list[store.DocumentAccess], total: int) -> AccessesPublic:
    data = [AccessPublic(**r.model_dump(exclude={"owner_key", "owner_hint"}), owner=r.owner_hint) for r in rows]  # type: ignore[arg-type]
    return AccessesPublic(data=data, count=total)


async def _receive(request: Request, deps: DigitizationDeps) -> upload.Upload:
    return await upload.receive(request, spool_dir=deps.work_dir, max_file_bytes=deps.settings.max_upload_bytes)


# ---- documents -----------------------------------------------------------------------------

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "dossier_code"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "PDF, JPEG, PNG or TIFF (by content)"},
                        **{name: {"type": "string"} for name in DigitizePaper.model_fields},
                    },
                }
            }
        },
    }
}


@router.post(
    "/documents", status_code=201, response_model=DocumentPublic, tags=["documents"],
    summary="Digitize a paper of a dossier or its result (multipart, streamed; images become PDF)",
    openapi_extra=_UPLOAD_BODY,
    responses={200: {"description": "the same bytes for the same component were uploaded before: that document"},
               413: {"description": "larger than MAX_UPLOAD_BYTES"}, 415: {"description": "not PDF, JPEG, PNG or TIFF"},
               422: {"description": "bad metadata, damaged file or checksum mismatch"}},
)  # fmt: skip
async def digitize(
    request: Request,
    response: Response,
    user: CurrentUser,
    deps: Deps,
    x_content_sha256: Annotated[str | None, Header(description=_CHECKSUM_HEADERS["X-Content-SHA256"])] = None,
    repr_digest: Annotated[str | None, Header(description=_CHECKSUM_HEADERS["Repr-Digest"])] = None,
) -> DocumentPublic:
    handlers.require(user, *CASE_WORKERS)  # refuse before reading the body
    received = await _receive(request, deps)
    try:
        cmd = _metadata(DigitizePaper, received.fields)
        async with deps.db.unit_of_work(actor=user.subject) as tx:
            doc, created = await handlers.digitize(
                tx, received.file, cmd, deps=deps, user=user, content_sha256=x_content_sha256, repr_digest=repr_digest
            )
    finally:
        received.discard()
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/documents/{doc.id}"
    return _document(doc)


@router.get("/documents/{document_id}", response_model=DocumentPublic, tags=["documents"], summary="A document's metadata")
async def get_document(
    document_id: str,
    user: CurrentUser,
    deps: Deps,
    for_dossier: Annotated[str | None, Query(max_length=64, description="the dossier you handle, to read its owner's paper")] = None,
) -> DocumentPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        doc = await handlers.open_document(tx, document_id, user=user, for_dossier=for_dossier, action="view")
    return _document(doc)


@router.get(
    "/documents/{document_id}/content", tags=["documents"],
    summary="The document's bytes (PDF, or the original upload); supports Range requests",
    responses={200: {"content": {"application/pdf": {}}}, 206: {"description": "the requested byte range"},
               416: {"description": "the range lies outside the file"}},
)  # fmt: skip
async def content(
    request: Request,
    document_id: str,
    user: CurrentUser,
    deps: Deps,
    variant: Literal["pdf", "original"] = "pdf",
    for_dossier: Annotated[str | None, Query(max_length=64)] = None,
    range_: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        doc = await handlers.open_document(tx, document_id, user=user, for_dossier=for_dossier, action="download")
    sha256, size, media_type = (
        (doc.sha256, doc.size, domain.PDF) if variant == "pdf" else (doc.original_sha256, doc.original_size, doc.original_media_type)
    )
    etag = f'"{sha256}"'
    headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "private, max-age=0"}
    extension = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png", "image/tiff": "tif"}.get(media_type, "bin")
    headers["Content-Disposition"] = f'inline; filename="{doc.id}.{extension}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if_range = request.headers.get("if-range")
    try:
        span = domain.byte_range(range_, size) if if_range in (None, etag) else None
    except domain.UnsatisfiableRange:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = span if span else (0, size - 1)
    headers["Content-Length"] = str(end - start + 1)
    if span:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"

    async def body() -> AsyncIterator[bytes]:
        async for chunk in deps.files.open_range(sha256, start, end):
            yield chunk

    return StreamingResponse(body(), status_code=206 if span else 200, media_type=media_type, headers=headers)


@router.get("/dossiers/{code}/documents", response_model=DocumentsPublic, tags=["documents"], summary="A dossier's documents")
async def dossier_documents(code: str, user: CurrentUser, deps: Deps) -> DocumentsPublic:
    async with deps.db.reading() as tx:
        return _documents(await handlers.documents_of(tx, code, user=user))


# ---- signatures ------------------------------------------------------------------------------


@router.post(
    "/documents/{document_id}/sign", response_model=DocumentPublic, tags=["signatures"],
    summary="Sign a result with the unit's certificate (PAdES, visible block) (leader)",
)  # fmt: skip
async def sign(document_id: str, user: CurrentUser, deps: Deps, body: SignResult | None = None) -> DocumentPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        doc, _ = await handlers.sign_result(tx, document_id, body or SignResult(), deps=deps, user=user)
    return _document(doc)


@router.get(
    "/documents/{document_id}/signature", response_model=SignatureReportPublic, tags=["signatures"],
    summary="Verify the stored file: validity, signer, time, changes after signing",
)  # fmt: skip
async def signature(
    document_id: str, user: CurrentUser, deps: Deps, for_dossier: Annotated[str | None, Query(max_length=64)] = None
) -> SignatureReportPublic:
    # The access is audited and committed first; the file is checked without holding the transaction.
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        doc = await handlers.open_document(tx, document_id, user=user, for_dossier=for_dossier, action="verify")
    return _checked(await handlers.check_signatures(doc, deps=deps), doc)


@router.get(
    "/public/documents/{document_id}/signature", response_model=SignatureReportPublic, tags=["public"],
    summary="Anyone holding a certified copy's link (its QR code) checks its signature: no personal data",
    dependencies=[rate_limited(Policy.PUBLIC)],
)  # fmt: skip
async def public_signature(document_id: str, deps: Deps) -> SignatureReportPublic:
    async with deps.db.reading() as tx:
        doc, check = await handlers.check_certified_copy(tx, document_id, deps=deps)
        return _checked(check, doc)


@router.post(
    "/signatures/verify", response_model=SignatureReportPublic, tags=["signatures"],
    summary="Verify a PDF someone presents (multipart 'file')",
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}},
)  # fmt: skip
async def verify(request: Request, user: CurrentUser, deps: Deps) -> SignatureReportPublic:
    received = await _receive(request, deps)
    try:
        reports = await handlers.verify_pdf(received.file, deps=deps)
        assert received.file is not None
        return _report(received.file.sha256, reports)
    finally:
        received.discard()


# ---- the owner's store -----------------------------------------------------------------------


@router.post(
    "/dossiers/{code}/owners", status_code=201, response_model=OwnerPublic, tags=["citizen store"],
    summary="Declare whose papers a dossier concerns (after checking the id)",
)  # fmt: skip
async def declare_owner(code: str, body: DeclareOwner, user: CurrentUser, deps: Deps) -> OwnerPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        owner = await handlers.declare_owner(tx, code, body, deps=deps, user=user)
    return OwnerPublic(dossier_code=owner.dossier_code, owner=owner.owner_hint, declared_at=owner.declared_at, declared_by=owner.declared_by)


@router.post(
    "/citizen-documents/search", response_model=DocumentsPublic, tags=["citizen store"],
    summary="An owner's stored papers, for an official handling an open dossier of that owner (audited)",
)  # fmt: skip
async def search(body: SearchOwnerStore, user: CurrentUser, deps: Deps) -> DocumentsPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        found = await handlers.search_owner_store(tx, body, deps=deps, user=user)
    return _documents(found)


@router.post(
    "/dossiers/{code}/reuses", status_code=201, response_model=DocumentPublic, tags=["citizen store"],
    summary="Fill a component with a paper from the owner's store (no new upload); emits document.reused",
    responses={200: {"description": "this paper already fills that component: the same document"}},
)  # fmt: skip
async def reuse(response: Response, code: str, body: ReuseDocument, user: CurrentUser, deps: Deps) -> DocumentPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        doc, created = await handlers.reuse(tx, code, body, user=user)
    response.status_code = 201 if created else 200
    return _document(doc)


@router.post(
    "/dossiers/{code}/intake-digitization", status_code=201, response_model=CompletionPublic, tags=["documents"],
    summary="Intake digitization done: every required component digitized or reused (emits dossier.digitized once)",
    responses={409: {"description": "components still missing (listed)"}},
)  # fmt: skip
async def complete_intake(response: Response, code: str, body: CompleteIntake, user: CurrentUser, deps: Deps) -> CompletionPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        row, created = await handlers.complete_intake(tx, code, body, user=user)
    response.status_code = 201 if created else 200
    return CompletionPublic.model_validate(row, from_attributes=True)


@router.get("/document-accesses", response_model=AccessesPublic, tags=["audit"], summary="The access audit (auditor, admin)")
async def accesses(
    user: CurrentUser,
    deps: Deps,
    dossier_code: Annotated[str | None, Query(max_length=64)] = None,
    document_id: Annotated[str | None, Query(max_length=36)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AccessesPublic:
    query = AccessQuery(dossier_code=dossier_code, document_id=document_id, actor=actor, limit=limit, offset=offset)
    async with deps.db.reading() as tx:
        return _accesses(*await handlers.access_log(tx, query, deps=deps, user=user))


@router.post(
    "/document-accesses/search", response_model=AccessesPublic, tags=["audit"],
    summary="The access audit of one person (id number in the body, not the URL) (auditor, admin)",
)  # fmt: skip
async def accesses_of(body: AccessQuery, user: CurrentUser, deps: Deps) -> AccessesPublic:
    async with deps.db.reading() as tx:
        return _accesses(*await handlers.access_log(tx, body, deps=deps, user=user))


# ---- certified electronic copies -----------------------------------------------------------


@router.post(
    "/certified-copies", status_code=201, response_model=DocumentPublic, tags=["certified copies"],
    summary="Certify an electronic copy from the original (2.000815): scan → certification page → signature → owner's store",
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "dossier_code", "paper_name", "owner_id_number"],
        "properties": {"file": {"type": "string", "format": "binary"},
                       **{name: {"type": "string"} for name in CertifyCopy.model_fields}}}}}}},
)  # fmt: skip
async def certify(
    request: Request,
    user: CurrentUser,
    deps: Deps,
    x_content_sha256: Annotated[str | None, Header(description=_CHECKSUM_HEADERS["X-Content-SHA256"])] = None,
    repr_digest: Annotated[str | None, Header(description=_CHECKSUM_HEADERS["Repr-Digest"])] = None,
) -> DocumentPublic:
    handlers.require(user, *CASE_WORKERS)  # refuse before reading the body
    received = await _receive(request, deps)
    try:
        cmd = _metadata(CertifyCopy, received.fields)
        async with deps.db.unit_of_work(actor=user.subject) as tx:
            doc = await handlers.certify_copy(
                tx, received.file, cmd, deps=deps, user=user, content_sha256=x_content_sha256, repr_digest=repr_digest
            )
    finally:
        received.discard()
    return _document(doc)


@router.post(
    "/certified-copies/{document_id}/revocation", status_code=201, response_model=RevocationPublic, tags=["certified copies"],
    summary="Revoke a certified electronic copy (leader of its unit): its check page says so; emits copy.revoked once",
    responses={200: {"description": "the copy was revoked before: that revocation"},
               404: {"description": "no such document in your units"},
               409: {"description": "the document is not a certified copy"}},
)  # fmt: skip
async def revoke(response: Response, document_id: str, body: RevokeCopy, user: CurrentUser, deps: Deps) -> RevocationPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        doc, created = await handlers.revoke_copy(tx, document_id, body, user=user)
    response.status_code = 201 if created else 200
    assert doc.revoked_at is not None and doc.revoked_by is not None and doc.revocation_reason is not None
    return RevocationPublic(
        document_id=doc.id, copy_number=doc.copy_number, revoked_at=doc.revoked_at, revoked_by=doc.revoked_by,
        reason=doc.revocation_reason,
        check_url=f"{deps.settings.public_base_url.rstrip('/')}{domain.copy_check_path(doc.id)}",
    )


# ---- back-digitization of results still in force (issue #22) ----------------------------------------


@router.post(
    "/backfile/batches", status_code=201, response_model=BackfileBatchPublic, tags=["back-digitization"],
    summary="File a batch of scanned results still in force: a ZIP of scans and one metadata sheet; all or nothing",
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "unit"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "a ZIP: one sheet (.csv UTF-8 or .xlsx, one row per scan) and the scans "
                                               "(PDF, JPEG, PNG, TIFF)"},
                       "unit": {"type": "string", "description": "the unit whose results these are"}}}}}}},
    responses={200: {"description": "the same ZIP was filed before: that batch"},
               413: {"description": "larger than BACKFILE_MAX_BATCH_BYTES"},
               415: {"description": "not a ZIP"},
               422: {"description": "problems of rows and files (all listed, with file and line); nothing filed"}},
)  # fmt: skip
async def import_backfile(request: Request, response: Response, user: CurrentUser, deps: Deps) -> BackfileBatchPublic:
    handlers.require(user, Role.CLERK, Role.LEADER, Role.ADMIN)  # refuse before reading the body
    received = await upload.receive(request, spool_dir=deps.work_dir, max_file_bytes=deps.settings.backfile_max_batch_bytes)
    try:
        cmd = _metadata(ImportBackfile, received.fields)
        async with deps.db.unit_of_work(actor=user.subject) as tx:
            batch, ids, created = await handlers.import_backfile(tx, received.file, cmd, deps=deps, user=user)
    finally:
        received.discard()
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/backfile/batches/{batch.id}"
    return BackfileBatchPublic(**batch.model_dump(), document_ids=ids)


@router.get(
    "/backfile/batches/{batch_id}", response_model=BackfileBatchPublic, tags=["back-digitization"],
    summary="A back-digitization batch and its documents",
)  # fmt: skip
async def backfile_batch(batch_id: str, user: CurrentUser, deps: Deps) -> BackfileBatchPublic:
    async with deps.db.reading() as tx:
        batch, ids = await handlers.backfile_batch(tx, batch_id, user=user)
    return BackfileBatchPublic(**batch.model_dump(), document_ids=ids)


@router.put(
    "/backfile/results-in-force/{unit}/{field}", response_model=ResultsInForcePublic, tags=["back-digitization"],
    summary="Declare how many results of a field the unit holds that are still in force (admin): the progress denominator",
)  # fmt: skip
async def declare_results_in_force(
    unit: str, field: str, body: DeclareResultsInForce, user: CurrentUser, deps: Deps
) -> ResultsInForcePublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        row = await handlers.declare_results_in_force(tx, unit, field, body, user=user)
    return ResultsInForcePublic.model_validate(row, from_attributes=True)


@router.get(
    "/backfile/progress", response_model=ProgressPublic, tags=["back-digitization"],
    summary="A unit's share of results still in force that are digitized, per field (target 100 %)",
)  # fmt: skip
async def backfile_progress(
    user: CurrentUser, deps: Deps, unit: Annotated[str, Query(min_length=1, max_length=64)]
) -> ProgressPublic:
    async with deps.db.reading() as tx:
        today, lines = await handlers.backfile_progress(tx, unit, user=user)
    declared = [p for p in lines if p.results_in_force is not None]
    total_in_force = sum(p.results_in_force or 0 for p in declared)
    total_digitized = sum(p.digitized for p in declared)
    overall = domain.Progress(unit=unit, field="", results_in_force=total_in_force if declared else None, digitized=total_digitized, expired=0)
    return ProgressPublic(
        unit=unit, as_of=today, count=len(lines), results_in_force=total_in_force, digitized=total_digitized,
        share_percent=overall.share_percent,
        data=[
            ProgressLinePublic(
                field=p.field, results_in_force=p.results_in_force, digitized=p.digitized, expired=p.expired,
                remaining=p.remaining, share_percent=p.share_percent,
            )
            for p in lines
        ],
    )  # fmt: skip
