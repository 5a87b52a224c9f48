"""Digitization use cases: one async function per command, query or consumed event.

The route opens the transaction and passes it in. File work (convert, count pages, sign) runs in threads;
the transaction stores the blobs, the rows and the events together. A blob a request created is deleted
again when its transaction rolls back (``storage.put_blob``), so a refused or failed request leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy.exc import IntegrityError

from services.digitization import backfile, domain, pdfs, signing, store
from services.digitization.deps import DigitizationDeps
from services.digitization.models import (
    AccessQuery,
    CertifyCopy,
    CompleteIntake,
    DeclareOwner,
    DeclareResultsInForce,
    DigitizePaper,
    ImportBackfile,
    ReuseDocument,
    RevokeCopy,
    SearchOwnerStore,
    SignResult,
)
from services.digitization.settings import DigitizationSettings
from services.digitization.storage import discard_unregistered, put_blob
from services.digitization.upload import SpooledFile
from shared.auth import Principal
from shared.clock import local
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.errors import Conflict, NotFound, Problem
from shared.events import (
    INTAKE,
    WORKFLOW,
    CaseRejected,
    CaseResultReady,
    CaseReturned,
    CaseStopped,
    CopyCertified,
    CopyRevoked,
    DocumentDigitized,
    DocumentReused,
    DocumentSigned,
    DossierDigitized,
    DossierReceived,
    DossierWithdrawn,
)
from shared.roles import CASE_WORKERS, OFFICIALS, Role

log = logging.getLogger("motcua.digitization")


def require(user: Principal, *roles: Role) -> None:
    """403 unless the caller holds one of the roles."""
    if not user.roles & set(roles):
        names = ", ".join(sorted(r.value for r in roles))
        raise Problem(403, "role-forbidden", "Role not allowed", f"This action needs one of the roles: {names}.")


# ---- digitizing papers and results ------------------------------------------------------


async def digitize(
    tx: UnitOfWork, file: SpooledFile | None, cmd: DigitizePaper, *, deps: DigitizationDeps, user: Principal,
    content_sha256: str | None = None, repr_digest: str | None = None,
) -> tuple[store.Document, bool]:
    """Keep a scan of a paper or of the result; (document, created). The same bytes again give the first document."""
    require(user, *CASE_WORKERS)
    if cmd.stage == "intake" and not user.roles & {Role.CLERK, Role.SPECIALIST}:
        raise Problem(403, "role-forbidden", "Role not allowed", "Papers are digitized at intake by a clerk or specialist.")
    media_type = _check_upload(file, content_sha256=content_sha256, repr_digest=repr_digest)
    assert file is not None
    ref = await _visible_dossier(tx, cmd.dossier_code, user, open_only=True)
    key = domain.component_key(cmd.component_code, cmd.component_name or cmd.paper_name)
    earlier = await store.same_upload(
        session=tx.session, dossier_code=ref.code, stage=cmd.stage, component_key=key, original_sha256=file.sha256
    )
    if earlier is not None:
        return earlier, False
    document_id = str(uuid.uuid4())
    owner_key, owner_hint = _owner(deps.settings, cmd.owner_id_number)
    async with _scratch(deps) as work:
        pdf, pages = await _as_pdf(deps, file, media_type, work)
        sealed = cmd.stage == "intake" and deps.settings.sign_digitized
        content = pdf
        if sealed:
            content = work / "sealed.pdf"
            await _sign(deps, pdf, content, field_name=f"motcua-seal-{document_id[:8]}", reason="Số hóa thành phần hồ sơ")
        now_signed = datetime.now().astimezone() if sealed else None
        created: list[str] = []
        try:
            # A savepoint: a concurrent upload of the same bytes for the same component may win the insert.
            async with tx.session.begin_nested():
                original = await put_blob(tx, deps.files, file.path, media_type.value)
                stored = await put_blob(tx, deps.files, content, domain.PDF)
                created = [b.sha256 for b in (original, stored) if b.created]
                doc = store.Document(
                    id=document_id, dossier_code=ref.code, unit=ref.unit, receiving_unit=ref.receiving_unit, stage=cmd.stage,
                    kind="scan" if cmd.stage == "intake" else "result", component_code=cmd.component_code,
                    component_name=cmd.component_name, component_key=key, mandatory=cmd.mandatory, paper_code=cmd.paper_code,
                    paper_name=cmd.paper_name, paper_number=cmd.paper_number, issuer=cmd.issuer, issued_on=cmd.issued_on,
                    valid_until=cmd.valid_until, scope=cmd.scope, owner_key=owner_key, owner_hint=owner_hint,
                    original_sha256=original.sha256, original_media_type=media_type.value, original_size=original.size,
                    original_filename=file.filename, sha256=stored.sha256, size=stored.size, pages=pages, signed=sealed,
                    signer=deps.signer.name if sealed else None,
                    certificate_serial=deps.signer.certificate_serial if sealed else None, signed_at=now_signed,
                    signed_by=user.subject if sealed else None, created_at=tx.now, created_by=user.subject,
                )  # fmt: skip
                store.add(session=tx.session, row=doc)
                await tx.session.flush()
        except IntegrityError:
            # The other upload won: answer with its document; the blobs only this request made go again.
            earlier = await store.same_upload(
                session=tx.session, dossier_code=ref.code, stage=cmd.stage, component_key=key, original_sha256=file.sha256
            )
            if earlier is None:
                raise
            await discard_unregistered(tx, deps.files, created)
            return earlier, False
    if owner_key and owner_hint:
        await _file_owner(tx, user, dossier_code=ref.code, key=owner_key, hint=owner_hint)
        _audit(tx, user, action="file", dossier_code=ref.code, owner_key=owner_key, owner_hint=owner_hint, document_id=doc.id)
    await tx.emit(
        DocumentDigitized(
            dossier_code=ref.code, unit=ref.unit, occurred_at=tx.now, document_id=doc.id, stage=cmd.stage,
            sha256=doc.sha256, pages=pages, kind=doc.kind, component_code=cmd.component_code,  # type: ignore[arg-type]
            component_name=cmd.component_name, mandatory=cmd.mandatory, paper_code=cmd.paper_code, signed=sealed,
            certificate_serial=doc.certificate_serial, owner_filed=owner_key is not None,
        )
    )  # fmt: skip
    return doc, True


async def sign_result(
    tx: UnitOfWork, document_id: str, cmd: SignResult, *, deps: DigitizationDeps, user: Principal
) -> tuple[store.Document, bool]:
    """Sign a result with the unit's certificate and a visible block; (document, newly signed)."""
    require(user, Role.LEADER)
    doc = await _visible_document(tx, document_id, user)
    if doc.stage != "result":
        raise Conflict(f"Document {document_id} is a paper of the dossier, not its result; papers are sealed when digitized.")
    if doc.signed:
        return doc, False
    async with _scratch(deps) as work:
        source = await _fetch(deps, doc.sha256, work / "result.pdf")
        sizes = await asyncio.to_thread(signing.page_boxes, source)
        place = pdfs.result_block_place(sizes)
        at = datetime.now().astimezone()
        block = signing.VisibleBlock(
            page=place.page, box=place.box,
            lines=domain.signature_lines(signer=deps.signer.name, officer=user.name or user.subject, at=at, purpose="Đã ký số kết quả"),
        )  # fmt: skip
        target = work / "signed.pdf"
        await _sign(deps, source, target, field_name=f"motcua-result-{document_id[:8]}", reason=cmd.reason, block=block)
        row = await store.get(session=tx.session, document_id=document_id, lock=True)
        assert row is not None
        if row.signed:  # another request signed it meanwhile
            return row, False
        signed = await put_blob(tx, deps.files, target, domain.PDF)
    row.sha256, row.size, row.signed = signed.sha256, signed.size, True
    row.signer, row.certificate_serial, row.signed_at, row.signed_by = deps.signer.name, deps.signer.certificate_serial, at, user.subject
    tx.session.add(row)
    await tx.emit(
        DocumentSigned(
            dossier_code=row.dossier_code, unit=row.unit, occurred_at=tx.now, document_id=row.id,
            signer=deps.signer.name, certificate_serial=deps.signer.certificate_serial, sha256=signed.sha256, pages=row.pages,
            kind="result", signed_by=user.subject,
        )
    )  # fmt: skip
    return row, True


# ---- reading -----------------------------------------------------------------------------


async def open_document(
    tx: UnitOfWork, document_id: str, *, user: Principal, for_dossier: str | None, action: Literal["view", "download", "verify"]
) -> store.Document:
    """A document the caller may read: one of their units', or an owner's paper for a dossier they handle (audited)."""
    require(user, *OFFICIALS)
    doc = await store.get(session=tx.session, document_id=document_id)
    if doc is None:
        raise NotFound("document", document_id)
    own_unit = user.can_see(doc.unit) or bool(doc.receiving_unit and user.can_see(doc.receiving_unit))
    if not own_unit:
        if for_dossier is None or doc.owner_key is None:
            raise NotFound("document", document_id)
        ref = await _visible_dossier(tx, for_dossier, user, open_only=True)
        if not await store.is_owner(session=tx.session, dossier_code=ref.code, owner_key=doc.owner_key):
            raise NotFound("document", document_id)
    if doc.owner_key:
        _audit(
            tx, user, action=action, dossier_code=for_dossier or doc.dossier_code, owner_key=doc.owner_key,
            owner_hint=doc.owner_hint, document_id=doc.id,
        )  # fmt: skip
    return doc


async def documents_of(tx: UnitOfWork, code: str, *, user: Principal) -> list[store.Document]:
    """The documents of a dossier the caller's units cover (officials, admins and auditors: no machine account)."""
    require(user, *OFFICIALS)
    ref = await _visible_dossier(tx, code, user)
    return await store.of_dossier(session=tx.session, dossier_code=ref.code)


async def check_signatures(
    doc: store.Document, *, deps: DigitizationDeps, unreadable_is_unsigned: bool = False
) -> signing.SignatureCheck:
    """Verify the stored file of a document (file work only: the caller has read the document already).

    A stored file that no longer reads as a signed PDF is the 422 problem ``damaged-file``; with
    ``unreadable_is_unsigned`` (the copy check page) it is a check that found no signature, which the page calls
    not valid.
    """
    async with _scratch(deps) as work:
        path = await _fetch(deps, doc.sha256, work / "doc.pdf")
        digest = await asyncio.to_thread(_sha256_of, path)
        try:
            reports = await _verify_path(deps, path)
        except Problem as exc:
            if not (unreadable_is_unsigned and exc.slug == "damaged-file"):
                raise
            reports = []
    return signing.SignatureCheck(sha256=doc.sha256, sha256_matches=digest == doc.sha256, reports=reports)


async def check_certified_copy(
    tx: UnitOfWork, document_id: str, *, deps: DigitizationDeps, unreadable_is_unsigned: bool = False
) -> tuple[store.Document, signing.SignatureCheck]:
    """Anyone holding a certified copy's link checks its signature; other documents are not found."""
    doc = await store.get(session=tx.session, document_id=document_id)
    if doc is None or doc.kind != "certified_copy":
        raise NotFound("certified copy", document_id)
    return doc, await check_signatures(doc, deps=deps, unreadable_is_unsigned=unreadable_is_unsigned)


async def verify_pdf(file: SpooledFile | None, *, deps: DigitizationDeps) -> list[signing.SignatureReport]:
    """Verify a PDF someone presents against the unit's trust roots."""
    if file is None or domain.sniff(file.head) is not domain.MediaType.PDF:
        raise Problem(415, "unsupported-media-type", "Send a PDF", "file: only a PDF can carry a signature.")
    return await _verify_path(deps, file.path)


# ---- the owner's store ---------------------------------------------------------------------


async def declare_owner(
    tx: UnitOfWork, code: str, cmd: DeclareOwner, *, deps: DigitizationDeps, user: Principal
) -> store.DossierOwner:
    """Link a person to a dossier the caller handles: from then on their store may be searched for it."""
    require(user, *CASE_WORKERS)
    key, hint = _owner(deps.settings, cmd.id_number)
    assert key and hint
    ref = await _visible_dossier(tx, code, user, open_only=True)
    await _file_owner(tx, user, dossier_code=ref.code, key=key, hint=hint)
    return store.DossierOwner(dossier_code=ref.code, owner_key=key, owner_hint=hint, declared_at=tx.now, declared_by=user.subject)


async def search_owner_store(
    tx: UnitOfWork, cmd: SearchOwnerStore, *, deps: DigitizationDeps, user: Principal
) -> list[store.Document]:
    """The owner's papers, for an official handling an open dossier of that owner; every search is audited."""
    require(user, *CASE_WORKERS)
    key, hint = _owner(deps.settings, cmd.id_number)
    assert key and hint
    ref = await _visible_dossier(tx, cmd.dossier_code, user, open_only=True)
    if not await store.is_owner(session=tx.session, dossier_code=ref.code, owner_key=key):
        _audit_refusal(
            tx, user, action="search", detail="the person is not declared an owner of the dossier",
            dossier_code=ref.code, owner_key=key, owner_hint=hint,
        )  # fmt: skip
        raise Problem(
            403, "not-an-owner", "Not an owner of this dossier",
            f"Dossier {ref.code} has no owner with that id number; declare the applicant first (POST /api/v1/dossiers/{ref.code}/owners).",
        )  # fmt: skip
    found = await store.of_owner(session=tx.session, owner_key=key, paper_code=cmd.paper_code)
    _audit(tx, user, action="search", dossier_code=ref.code, owner_key=key, owner_hint=hint, detail=f"{len(found)} found")
    return found


async def reuse(tx: UnitOfWork, code: str, cmd: ReuseDocument, *, user: Principal) -> tuple[store.Document, bool]:
    """Fill a component of the dossier from the owner's store; emits ``document.reused``."""
    require(user, Role.CLERK, Role.SPECIALIST)
    ref = await _visible_dossier(tx, code, user, open_only=True)
    source = await store.get(session=tx.session, document_id=cmd.document_id)
    if source is not None and source.reused_from:
        source = await store.get(session=tx.session, document_id=source.reused_from)
    allowed = (
        source is not None and source.owner_key is not None
        and await store.is_owner(session=tx.session, dossier_code=ref.code, owner_key=source.owner_key)
    )  # fmt: skip
    if not allowed or source is None:
        raise NotFound("document in the store of this dossier's owners", cmd.document_id)
    if not domain.still_valid(source.valid_until, local(tx.now).date()):
        raise Conflict(f"Document {source.id} expired on {source.valid_until}; it cannot be reused.", valid_until=str(source.valid_until))
    key = domain.component_key(cmd.component_code, cmd.component_name or source.component_name or source.paper_name)
    if not key:
        raise Problem(422, "validation-error", "The request is not valid", "component_code: name the component it fills.")
    earlier = await store.reuse_of(session=tx.session, dossier_code=ref.code, component_key=key, source_id=source.id)
    if earlier is not None:
        return earlier, False
    doc = store.Document(
        **{
            **source.model_dump(),
            "id": str(uuid.uuid4()), "dossier_code": ref.code, "unit": ref.unit, "receiving_unit": ref.receiving_unit,
            "stage": "intake", "kind": "reuse", "component_code": cmd.component_code,
            "component_name": cmd.component_name or source.component_name, "component_key": key,
            "mandatory": cmd.mandatory, "reused_from": source.id, "copy_number": None,
            "created_at": tx.now, "created_by": user.subject,
        }
    )  # fmt: skip
    store.add(session=tx.session, row=doc)
    await tx.session.flush()
    _audit(tx, user, action="reuse", dossier_code=ref.code, owner_key=source.owner_key, owner_hint=source.owner_hint, document_id=source.id)
    await tx.emit(
        DocumentReused(
            dossier_code=ref.code, unit=ref.unit, occurred_at=tx.now, document_id=doc.id,
            source_dossier_code=source.dossier_code, source_document_id=source.id, component_code=cmd.component_code,
            component_name=doc.component_name, mandatory=cmd.mandatory, paper_code=source.paper_code,
        )
    )  # fmt: skip
    return doc, True


async def complete_intake(
    tx: UnitOfWork, code: str, cmd: CompleteIntake, *, user: Principal
) -> tuple[store.IntakeCompletion, bool]:
    """Every required component is digitized or reused: ``dossier.digitized`` (once per dossier), or 409 naming what is missing."""
    require(user, Role.CLERK, Role.SPECIALIST)
    ref = await _visible_dossier(tx, code, user)
    done = await store.completion(session=tx.session, dossier_code=ref.code)
    if done is not None:
        return done, False
    digitized: list[str] = []
    reused: list[str] = []
    for d in await store.of_dossier(session=tx.session, dossier_code=ref.code):
        if d.stage == "intake":
            names = [k for k in (d.component_key, d.component_code, d.component_name, d.paper_name) if k]
            (reused if d.kind == "reuse" else digitized).extend(names)
    verdict = domain.completeness(cmd.required_components, digitized=digitized, reused=reused)
    if not verdict.complete:
        raise Conflict(f"Not digitized yet: {', '.join(verdict.missing)}.", missing=list(verdict.missing))
    row = store.IntakeCompletion(
        dossier_code=ref.code, completed_at=tx.now, completed_by=user.subject,
        required=len(cmd.required_components), digitized=len(verdict.digitized), reused=len(verdict.reused),
    )  # fmt: skip
    store.add(session=tx.session, row=row)
    await tx.emit(
        DossierDigitized(
            dossier_code=ref.code, unit=ref.unit, occurred_at=row.completed_at, required=row.required,
            digitized=row.digitized, reused=row.reused,
        )
    )  # fmt: skip
    return row, True


async def access_log(
    tx: UnitOfWork, query: AccessQuery, *, deps: DigitizationDeps, user: Principal
) -> tuple[list[store.DocumentAccess], int]:
    """The access audit, for auditors and admins."""
    require(user, Role.AUDITOR, Role.ADMIN)
    key, _ = _owner(deps.settings, query.id_number)
    return await store.accesses(
        session=tx.session, owner_key=key, dossier_code=query.dossier_code, document_id=query.document_id,
        actor=query.actor, limit=query.limit, offset=query.offset,
    )  # fmt: skip


# ---- the certified electronic copy (2.000815) ---------------------------------------------


async def certify_copy(
    tx: UnitOfWork, file: SpooledFile | None, cmd: CertifyCopy, *, deps: DigitizationDeps, user: Principal,
    content_sha256: str | None = None, repr_digest: str | None = None,
) -> store.Document:
    """Scan of the original → certification page → the unit's signature → the owner's store; ``copy.certified``."""
    require(user, *CASE_WORKERS)
    media_type = _check_upload(file, content_sha256=content_sha256, repr_digest=repr_digest)
    assert file is not None
    ref = await _visible_dossier(tx, cmd.dossier_code, user, open_only=True)
    if ref.procedure_code not in deps.settings.certified_copy_procedures:
        raise Conflict(
            f"Dossier {ref.code} is for procedure {ref.procedure_code}; certified electronic copies belong to "
            f"{', '.join(deps.settings.certified_copy_procedures)}.",
        )
    owner_key, owner_hint = _owner(deps.settings, cmd.owner_id_number)
    assert owner_key and owner_hint
    document_id = str(uuid.uuid4())
    agency = deps.settings.unit_names.get(ref.unit) or deps.signer.name
    signer = deps.signer
    async with _scratch(deps) as work:
        scan, pages = await _as_pdf(deps, file, media_type, work)
        now = tx.now
        year = local(now).year
        # The number is taken in this transaction: a failure below gives it back, so the register has no gaps.
        number = domain.copy_number(await store.COPY_NUMBERS.next(session=tx.session, unit=ref.unit, period=year), year)
        certification = domain.Certification(
            agency=agency, place=deps.settings.signing_location or "", paper_name=cmd.paper_name, pages=pages,
            number=number, officer_name=user.name or user.subject, officer_title=cmd.officer_title, certified_at=now,
            dossier_code=ref.code,
        )  # fmt: skip
        page = work / "certification.pdf"
        lookup = f"{deps.settings.public_base_url.rstrip('/')}{domain.copy_check_path(document_id)}"
        place = await asyncio.to_thread(pdfs.render_certification, page, certification, lookup_url=lookup)
        joined = work / "copy.pdf"
        total = await asyncio.to_thread(pdfs.join, scan, page, joined)
        signed_path = work / "signed.pdf"
        at = datetime.now().astimezone()
        block = signing.VisibleBlock(
            page=total - 1, box=place.box,
            lines=domain.signature_lines(signer=signer.name, officer=user.name or user.subject, at=at, purpose=f"Chứng thực số {number}"),
        )  # fmt: skip
        await _sign(deps, joined, signed_path, field_name=f"motcua-copy-{document_id[:8]}", reason="Chứng thực bản sao điện tử từ bản chính", block=block)
        original = await put_blob(tx, deps.files, file.path, media_type.value)
        signed = await put_blob(tx, deps.files, signed_path, domain.PDF)
    doc = store.Document(
        id=document_id, dossier_code=ref.code, unit=ref.unit, receiving_unit=ref.receiving_unit, stage="result",
        kind="certified_copy", component_code=cmd.component_code, component_name=cmd.component_name or cmd.paper_name,
        component_key=domain.component_key(cmd.component_code, cmd.component_name or cmd.paper_name),
        mandatory=cmd.mandatory, paper_code=cmd.paper_code, paper_name=cmd.paper_name, paper_number=cmd.paper_number,
        issuer=cmd.issuer, issued_on=cmd.issued_on, valid_until=cmd.valid_until, scope=cmd.scope, owner_key=owner_key,
        owner_hint=owner_hint, original_sha256=original.sha256, original_media_type=media_type.value,
        original_size=original.size, original_filename=file.filename, sha256=signed.sha256, size=signed.size, pages=total,
        signed=True, signer=signer.name, certificate_serial=signer.certificate_serial, signed_at=at,
        signed_by=user.subject, copy_number=number, created_at=now, created_by=user.subject,
    )  # fmt: skip
    store.add(session=tx.session, row=doc)
    await tx.session.flush()
    await _file_owner(tx, user, dossier_code=ref.code, key=owner_key, hint=owner_hint)
    _audit(tx, user, action="file", dossier_code=ref.code, owner_key=owner_key, owner_hint=owner_hint, document_id=doc.id)
    common = {"dossier_code": ref.code, "unit": ref.unit, "occurred_at": now, "document_id": doc.id}
    await tx.emit(
        DocumentDigitized(
            **common, stage="result", sha256=signed.sha256, pages=total, kind="certified_copy", component_code=cmd.component_code,
            component_name=doc.component_name, mandatory=cmd.mandatory, paper_code=cmd.paper_code, signed=True,
            certificate_serial=signer.certificate_serial, owner_filed=True,
        )
    )  # fmt: skip
    await tx.emit(
        DocumentSigned(
            **common, signer=signer.name, certificate_serial=signer.certificate_serial, sha256=signed.sha256,
            pages=total, kind="certified_copy", signed_by=user.subject,
        )
    )  # fmt: skip
    await tx.emit(
        CopyCertified(
            **common, copy_id=doc.id, copy_number=number, pages=pages, total_pages=total, copies=cmd.copies,
            sha256=signed.sha256, certificate_serial=signer.certificate_serial,
        )
    )  # fmt: skip
    return doc


async def revoke_copy(tx: UnitOfWork, document_id: str, cmd: RevokeCopy, *, user: Principal) -> tuple[store.Document, bool]:
    """A leader of the copy's unit revokes a certified copy; (document, newly revoked). ``copy.revoked`` once.

    Revoking again answers the first revocation (its time, leader and reason); a document that is not a
    certified copy is a conflict; a copy of another unit is not found.
    """
    require(user, Role.LEADER)
    await _visible_document(tx, document_id, user)
    doc = await store.get(session=tx.session, document_id=document_id, lock=True)  # one revocation, however many ask
    assert doc is not None
    if doc.kind != "certified_copy":
        raise Conflict(f"Document {document_id} is a {doc.kind.replace('_', ' ')}, not a certified copy: only a certified copy is revoked.")
    if doc.revoked_at is not None:
        return doc, False
    doc.revoked_at, doc.revoked_by, doc.revocation_reason = tx.now, user.subject, cmd.reason
    tx.session.add(doc)
    await tx.emit(
        CopyRevoked(
            dossier_code=doc.dossier_code, unit=doc.unit, occurred_at=tx.now, document_id=doc.id, reason=cmd.reason,
            revoked_by=user.subject,
        )
    )  # fmt: skip
    return doc, True


# ---- helpers of the use cases ----------------------------------------------------------------


async def _visible_dossier(tx: UnitOfWork, code: str, user: Principal, *, open_only: bool = False) -> store.DossierRef:
    """A dossier the caller's units cover; 404 otherwise (unknown yet, or another unit's)."""
    ref = await store.dossier(session=tx.session, code=code)
    if ref is None or not ref.seen_by(user.can_see):
        raise Problem(
            404, "dossier-unknown", "Dossier not found",
            f"No dossier {code!r} in your units (a dossier just received may take a moment to reach digitization).",
        )  # fmt: skip
    if open_only and ref.closed_at is not None:
        raise Conflict(f"Dossier {code} is closed since {ref.closed_at.isoformat()}.", dossier_closed_at=ref.closed_at.isoformat())
    return ref


async def _visible_document(tx: UnitOfWork, document_id: str, user: Principal) -> store.Document:
    doc = await store.get(session=tx.session, document_id=document_id)
    if doc is None or not (user.can_see(doc.unit) or (doc.receiving_unit and user.can_see(doc.receiving_unit))):
        raise NotFound("document", document_id)
    return doc


def _audit(
    tx: UnitOfWork, user: Principal, *, action: str, outcome: str = "granted", dossier_code: str | None = None,
    owner_key: str | None = None, owner_hint: str | None = None, document_id: str | None = None, detail: str | None = None,
) -> None:
    """One line of the access audit, in the same transaction as the access."""
    store.add(
        session=tx.session,
        row=store.DocumentAccess(
            at=tx.now, actor=user.subject, roles=",".join(sorted(r.value for r in user.roles)), action=action,
            outcome=outcome, dossier_code=dossier_code, owner_key=owner_key, owner_hint=owner_hint, document_id=document_id,
            detail=detail,
        ),
    )  # fmt: skip


def _audit_refusal(tx: UnitOfWork, user: Principal, *, action: str, detail: str, **where: str | None) -> None:
    """A refused access is recorded too: in a unit of work of its own once ``tx`` (the request's) has rolled back."""

    async def record() -> None:
        async with tx.db.unit_of_work(actor=user.subject) as own:
            _audit(own, user, action=action, outcome="denied", detail=detail, **where)

    tx.after_rollback(record)


def _owner(settings: DigitizationSettings, id_number: str | None) -> tuple[str | None, str | None]:
    if not id_number:
        return None, None
    return domain.owner_key(settings.owner_secret(), id_number), domain.owner_hint(id_number)


async def _file_owner(tx: UnitOfWork, user: Principal, *, dossier_code: str, key: str, hint: str) -> None:
    """Link the owner to the dossier (the official holds the paper and the applicant's id)."""
    if await store.declare_owner(
        session=tx.session,
        owner=store.DossierOwner(dossier_code=dossier_code, owner_key=key, owner_hint=hint, declared_at=tx.now, declared_by=user.subject),
    ):
        _audit(tx, user, action="declare_owner", dossier_code=dossier_code, owner_key=key, owner_hint=hint)


def _check_upload(file: SpooledFile | None, *, content_sha256: str | None, repr_digest: str | None) -> domain.MediaType:
    """The file is there, of an accepted type (by content), and matches the checksum the client sent."""
    if file is None or file.size == 0:
        raise Problem(422, "validation-error", "The request is not valid", "file: the upload has no file (or an empty one).")
    try:
        claimed = domain.client_checksum(content_sha256=content_sha256, repr_digest=repr_digest)
    except domain.BadChecksum as exc:
        raise Problem(422, "validation-error", "The request is not valid", str(exc)) from None
    if claimed is not None and claimed != file.sha256:
        raise Problem(
            422, "checksum-mismatch", "The file does not match its checksum",
            f"The client sent SHA-256 {claimed}; the server received bytes with SHA-256 {file.sha256} "
            f"({file.size} bytes): the upload was damaged or is not the file meant.",
            received_sha256=file.sha256, received_size=file.size,
        )  # fmt: skip
    media_type = domain.sniff(file.head)
    if media_type is None:
        raise Problem(
            415, "unsupported-media-type", "Unsupported file type",
            f"The file's content is not PDF, JPEG, PNG or TIFF (declared as {file.declared_type or 'nothing'}, "
            f"named {file.filename or 'nothing'}; names and declared types are not trusted).",
        )  # fmt: skip
    return media_type


@asynccontextmanager
async def _scratch(deps: DigitizationDeps) -> AsyncIterator[Path]:
    """A temporary directory for one request's files, removed afterwards."""
    deps.work_dir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=deps.work_dir, prefix="work-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


async def _fetch(deps: DigitizationDeps, sha256: str, target: Path) -> Path:
    """Copy a blob to a local file (for pyHanko and pypdf, which read files)."""
    out = await asyncio.to_thread(open, target, "wb")
    try:
        async for chunk in deps.files.open_range(sha256):
            await asyncio.to_thread(out.write, chunk)
    except FileNotFoundError:
        raise Problem(500, "blob-missing", "A stored file is missing", f"The file store has no blob {sha256}.") from None
    finally:
        await asyncio.to_thread(out.close)
    return target


async def _as_pdf(deps: DigitizationDeps, file: SpooledFile, media_type: domain.MediaType, work: Path) -> tuple[Path, int]:
    """The upload as a PDF file and its page count."""
    try:
        if media_type is domain.MediaType.PDF:
            return file.path, await asyncio.to_thread(pdfs.pdf_pages, file.path)
        target = work / "scan.pdf"
        pages = await asyncio.to_thread(
            pdfs.image_to_pdf, file.path, media_type, target, default_dpi=deps.settings.default_scan_dpi
        )
        return target, pages
    except pdfs.PaperRefused as exc:
        status = 415 if exc.slug == "unsupported-media-type" else 422
        raise Problem(status, exc.slug, "The file cannot be used", exc.detail) from None


async def _sign(deps: DigitizationDeps, source: Path, target: Path, **kwargs: object) -> None:
    try:
        await asyncio.to_thread(signing.sign_file, source, target, deps.signer, location=deps.settings.signing_location, **kwargs)  # type: ignore[arg-type]
    except Exception as exc:
        log.warning("signing failed: %r", exc)
        raise Problem(
            422, "unsignable-file", "The PDF cannot be signed", f"The signer refused the file: {type(exc).__name__}: {exc}."
        ) from None


async def _verify_path(deps: DigitizationDeps, path: Path) -> list[signing.SignatureReport]:
    """Verify any PDF on disk against the unit's trust roots."""
    try:
        # pyHanko's validation is CPU work: it gets a thread and an event loop of its own.
        return await asyncio.to_thread(asyncio.run, signing.verify_file(path, deps.signer.trust_roots))
    except Exception as exc:
        raise Problem(422, "damaged-file", "The file cannot be read as a signed PDF", f"{type(exc).__name__}: {exc}") from None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---- back-digitization of results still in force (issue #22) ----------------------------------------


async def import_backfile(
    tx: UnitOfWork, file: SpooledFile | None, cmd: ImportBackfile, *, deps: DigitizationDeps, user: Principal
) -> tuple[store.BackfileBatch, list[str], bool]:
    """A ZIP of scanned results and their sheet → every scan sealed and filed in its owner's store, or nothing.

    (batch, its document ids in sheet order, created). The same ZIP again answers the batch it made. Every
    problem of every row and file is collected and answered at once (422 ``backfile-refused``); a batch with
    one bad file files nothing. The sheet and the store are read first (duplicates), then the scans are
    converted, then sealed (the CPU work, in threads), then stored and filed in one go.
    """
    require(user, Role.CLERK, Role.LEADER, Role.ADMIN)
    user.require_unit(cmd.unit)
    if file is None or file.size == 0:
        raise Problem(422, "validation-error", "The request is not valid", "file: send the batch as one ZIP in the 'file' part.")
    earlier = await store.backfile_batch_of_zip(session=tx.session, unit=cmd.unit, sha256=file.sha256)
    if earlier is not None:
        return earlier, await store.batch_documents(session=tx.session, batch_id=earlier.id), False
    settings = deps.settings
    today = local(tx.now).date()
    try:
        batch = await asyncio.to_thread(
            backfile.read_batch, file.path, today=today, max_files=settings.backfile_max_files,
            max_file_bytes=settings.max_upload_bytes, max_unpacked_bytes=2 * settings.backfile_max_batch_bytes,
        )  # fmt: skip
    except backfile.BatchRefused as exc:
        raise Problem(exc.status, exc.slug, "The batch cannot be read", exc.detail) from None
    problems, zip_path = batch.problems, file.path
    filed = await store.filed_results(session=tx.session, keys=[r.key for r in batch.rows])
    for row in batch.rows:
        if row.key in filed:
            problems.append(backfile.BatchProblem(
                row.data.file, row.line, f"this result (kind, number, issuer) is filed already: document {filed[row.key]}",
            ))  # fmt: skip
    async with _scratch(deps) as work:
        icc = await asyncio.to_thread(backfile.srgb_profile, deps.work_dir / "icc")
        limit = asyncio.Semaphore(max(1, settings.backfile_sign_workers))

        async def convert(n: int, row: backfile.Row) -> tuple[Path, Path, domain.MediaType, int] | None:
            async with limit:
                try:
                    original, head = await asyncio.to_thread(
                        backfile.extract, zip_path, row.data.file, work / f"{n}.scan", limit=settings.max_upload_bytes
                    )
                    media_type = domain.sniff(head)
                    if media_type is None:
                        problems.append(backfile.BatchProblem(row.data.file, row.line, "not a PDF, JPEG, PNG or TIFF (by its content)"))
                        return None
                    pdf, pages = await asyncio.to_thread(
                        backfile.as_pdf, original, media_type, work / f"{n}.pdf", icc=icc, default_dpi=settings.default_scan_dpi
                    )
                except pdfs.PaperRefused as exc:
                    problems.append(backfile.BatchProblem(row.data.file, row.line, exc.detail))
                    return None
                return original, pdf, media_type, pages

        converted = await asyncio.gather(*(convert(n, row) for n, row in enumerate(batch.rows)))
        _refuse_batch(batch.sheet, problems)
        ids = [str(uuid.uuid4()) for _ in batch.rows]

        async def seal(n: int, pdf: Path) -> Path:
            async with limit:
                sealed = work / f"{n}.sealed.pdf"
                try:
                    await _sign(deps, pdf, sealed, field_name=f"motcua-seal-{ids[n][:8]}", reason="Số hóa kết quả giải quyết TTHC còn hiệu lực")
                except Problem as exc:
                    problems.append(backfile.BatchProblem(batch.rows[n].data.file, batch.rows[n].line, exc.detail or "cannot be sealed"))
                return sealed

        sealed = await asyncio.gather(*(seal(n, c[1]) for n, c in enumerate(converted) if c is not None))
        _refuse_batch(batch.sheet, problems)
        at = datetime.now().astimezone()
        batch_id = str(uuid.uuid4())
        pages_total = 0
        for n, (row, done, content) in enumerate(zip(batch.rows, converted, sealed, strict=True)):
            assert done is not None
            original_path, _, media_type, pages = done
            pages_total += pages
            original = await put_blob(tx, deps.files, original_path, media_type.value)
            stored = await put_blob(tx, deps.files, content, domain.PDF)
            data = row.data
            owner_key, owner_hint = _owner(settings, data.owner_id_number)
            store.add(session=tx.session, row=store.Document(
                id=ids[n], dossier_code=None, unit=cmd.unit, receiving_unit=None, stage="result", kind="backfile",
                component_code=data.paper_code, component_name=data.paper_kind,
                component_key=domain.component_key(data.paper_code, data.paper_kind), mandatory=True,
                paper_code=data.paper_code, paper_name=data.paper_kind, paper_number=data.number, issuer=data.issuer,
                issued_on=data.issued_on, valid_until=data.valid_until, scope=None, owner_key=owner_key, owner_hint=owner_hint,
                original_sha256=original.sha256, original_media_type=media_type.value, original_size=original.size,
                original_filename=data.file[-255:], sha256=stored.sha256, size=stored.size, pages=pages, signed=True,
                signer=deps.signer.name, certificate_serial=deps.signer.certificate_serial, signed_at=at, signed_by=user.subject,
                created_at=tx.now, created_by=user.subject,
            ))  # fmt: skip
            _audit(tx, user, action="file", owner_key=owner_key, owner_hint=owner_hint, document_id=ids[n], detail=f"backfile batch {batch_id}")
    row_batch = store.BackfileBatch(
        id=batch_id, unit=cmd.unit, sheet=batch.sheet[-255:], sha256=file.sha256, documents=len(ids), pages=pages_total,
        created_at=tx.now, created_by=user.subject,
    )  # fmt: skip
    store.add(session=tx.session, row=row_batch)
    await tx.session.flush()
    for n, row in enumerate(batch.rows):
        store.add(session=tx.session, row=store.BackfileResult(
            document_id=ids[n], batch_id=batch_id, line=row.line, unit=cmd.unit, field=row.data.field, result_key=row.key,
            valid_until=row.data.valid_until,
        ))  # fmt: skip
    try:
        await tx.session.flush()
    except IntegrityError:
        raise Conflict("Another batch filed some of these results meanwhile; nothing of this batch was filed. Send it again to see which.") from None
    return row_batch, ids, True


def _refuse_batch(sheet: str, problems: list[backfile.BatchProblem]) -> None:
    """The 422 problem listing every row and file that keeps the batch from being filed (if there is one)."""
    if not problems:
        return
    problems.sort(key=lambda p: (p.line is None, p.line or 0, p.file or ""))
    raise Problem(
        422, "backfile-refused", "The batch was not filed",
        f"{len(problems)} problem(s); nothing was filed. First: "
        + "; ".join(f"{p.file or sheet}{f' (line {p.line})' if p.line else ''}: {p.reason}" for p in problems[:3]),
        sheet=sheet, problems=[{"file": p.file, "line": p.line, "column": p.column, "reason": p.reason} for p in problems],
    )  # fmt: skip


async def backfile_batch(tx: UnitOfWork, batch_id: str, *, user: Principal) -> tuple[store.BackfileBatch, list[str]]:
    """A batch of the caller's units, with its documents."""
    require(user, *OFFICIALS)
    row = await store.backfile_batch(session=tx.session, batch_id=batch_id)
    if row is None or not user.can_see(row.unit):
        raise NotFound("back-digitization batch", batch_id)
    return row, await store.batch_documents(session=tx.session, batch_id=batch_id)


async def declare_results_in_force(
    tx: UnitOfWork, unit: str, field: str, cmd: DeclareResultsInForce, *, user: Principal
) -> store.ResultsInForce:
    """An admin declares how many results of a field the unit holds that are still in force (the denominator)."""
    require(user, Role.ADMIN)
    user.require_unit(unit)
    name = domain.tidy(field)
    if not name or len(name) > 200:
        raise Problem(422, "validation-error", "The request is not valid", "field: name the field (lĩnh vực), at most 200 characters.")
    row = store.ResultsInForce(
        unit=unit, field=name, results_in_force=cmd.results_in_force, note=cmd.note, declared_at=tx.now, declared_by=user.subject
    )
    return await store.declare_results_in_force(session=tx.session, row=row)


async def backfile_progress(tx: UnitOfWork, unit: str, *, user: Principal) -> tuple[date, list[domain.Progress]]:
    """The unit's share of results in force that are digitized, per field, as of today."""
    require(user, *OFFICIALS)
    user.require_unit(unit)
    today = local(tx.now).date()
    declared, filed = await store.backfile_counts(session=tx.session, unit=unit, today=today)
    return today, domain.progress(unit, declared, filed)


# ---- consumed events ------------------------------------------------------------------------


async def note_dossier(tx: UnitOfWork, event: DossierReceived, envelope: Envelope) -> None:
    """Know the dossier, so its papers can be digitized against it."""
    ref = store.DossierRef(
        code=event.dossier_code, unit=event.unit, receiving_unit=event.receiving_unit, procedure_code=event.procedure_code,
        received_at=event.received_at,
    )  # fmt: skip
    await store.remember(session=tx.session, ref=ref)


async def note_result_ready(tx: UnitOfWork, event: CaseResultReady, envelope: Envelope) -> None:
    """The result is ready: it will be digitized and signed."""
    await store.expect_result(session=tx.session, code=event.dossier_code, at=event.finished_at)


async def note_closed(tx: UnitOfWork, event: CaseReturned | DossierWithdrawn | CaseRejected | CaseStopped, envelope: Envelope) -> None:
    """The dossier ended: its owners' stores are no longer searchable for it."""
    await store.close(session=tx.session, code=event.dossier_code, at=event.occurred_at)


def subscriptions(deps: DigitizationDeps) -> Subscription:
    """What digitization listens to: dossiers from intake, results and endings from workflow."""
    return Subscription(
        producers=(INTAKE, WORKFLOW),
        handlers={
            DossierReceived: note_dossier,
            CaseResultReady: note_result_ready,
            CaseReturned: note_closed,
            DossierWithdrawn: note_closed,
            CaseRejected: note_closed,
            CaseStopped: note_closed,
        },
    )
