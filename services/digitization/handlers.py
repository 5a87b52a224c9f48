"""Digitization use cases: one async function per command or consumed event.

Uploads and signatures do their file work (convert, count pages, sign) before the database
transaction opens, in threads; the transaction then stores the blobs, the rows and the events
together. A blob this request created is deleted again when its transaction fails, under an
advisory lock per hash, so a refused or failed request leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy.exc import IntegrityError

from services.digitization import domain, pdfs, signing, store
from services.digitization.settings import DigitizationSettings
from services.digitization.storage import FileStore, file_chunks
from services.digitization.upload import SpooledFile
from shared.auth import Principal, Role
from shared.clock import local
from shared.consumer import Subscription
from shared.db import Database, UnitOfWork
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
    DocumentDigitized,
    DocumentReused,
    DocumentSigned,
    DossierDigitized,
    DossierReceived,
    DossierWithdrawn,
)
from shared.identity import InvalidIdentifier, check_tax_code, parse_citizen_id

log = logging.getLogger("motcua.digitization")
T = TypeVar("T")

OFFICIALS = frozenset({Role.CLERK, Role.SPECIALIST, Role.LEADER})


@dataclass
class Context:
    """What the use cases need besides the request: database, file store, signer, settings."""

    db: Database
    files: FileStore
    signer: signing.UnitSigner
    settings: DigitizationSettings

    @property
    def work_dir(self) -> Path:
        """Where temporary files go (the local store's file system, so moves are cheap)."""
        return self.settings.files_root / ".tmp"


# ---- commands -------------------------------------------------------------------------


def _check_owner_id(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    compact = domain.normalise_id_number(value)
    try:
        if len(compact) == 12:
            parse_citizen_id(compact, today=date.today())
        else:
            check_tax_code(value.strip())
    except InvalidIdentifier as exc:
        raise ValueError(f"a citizen id number (12 digits) or an organisation's tax code: {exc}") from None
    return compact if len(compact) == 12 else value.strip()


class PaperMetadata(BaseModel):
    """What DOMAIN §3 rule 6 asks to keep with each digitized file (the national 'kết quả số hóa' fields)."""

    dossier_code: str = Field(min_length=1, max_length=64)
    component_code: str | None = Field(default=None, max_length=64, description="MaThanhPhanHoSo")
    component_name: str | None = Field(default=None, max_length=300, description="the component as the procedure names it")
    mandatory: bool = Field(default=True, description="a mandatory component of the procedure")
    paper_code: str | None = Field(default=None, max_length=64, description="MaGiayTo: the paper type")
    paper_name: str | None = Field(default=None, max_length=300, description="TenGiayTo")
    paper_number: str | None = Field(default=None, max_length=100, description="KyHieuGiayTo: number and symbol")
    issuer: str | None = Field(default=None, max_length=300, description="the body that issued the paper")
    issued_on: date | None = Field(default=None, description="NgayCap")
    valid_until: date | None = Field(default=None, description="ThoiHanHieuLuc (empty: no expiry)")
    scope: str | None = Field(default=None, max_length=300, description="PhamViHieuLuc")
    owner_id_number: str | None = Field(default=None, description="the owner's id number or tax code; only a keyed hash is kept")

    @field_validator("owner_id_number")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        return _check_owner_id(value)

    @model_validator(mode="after")
    def _dates(self) -> PaperMetadata:
        if self.issued_on and self.valid_until and self.valid_until < self.issued_on:
            raise ValueError("valid_until: before issued_on")
        return self


class DigitizePaper(PaperMetadata):
    """A scan of a paper of the dossier (intake) or of its result."""

    stage: Literal["intake", "result"] = "intake"

    @model_validator(mode="after")
    def _component(self) -> DigitizePaper:
        if not domain.component_key(self.component_code, self.component_name or self.paper_name):
            raise ValueError("component_code: name the component (component_code, component_name or paper_name)")
        return self


class CertifyCopy(PaperMetadata):
    """An electronic copy certified from the original the applicant presented (2.000815)."""

    paper_name: str = Field(min_length=1, max_length=300, description="what the original is")
    owner_id_number: str = Field(description="whose store the copy is filed in")
    officer_title: str = Field(default="Người thực hiện chứng thực", max_length=200)
    copies: int = Field(default=1, ge=1, le=100)

    @field_validator("owner_id_number")
    @classmethod
    def _owner_required(cls, value: str) -> str:
        checked = _check_owner_id(value)
        if not checked:
            raise ValueError("the owner is required: the copy is filed in their store")
        return checked


class SignResult(BaseModel):
    """A leader has the result signed with the unit's certificate."""

    reason: str = Field(default="Ký số kết quả giải quyết thủ tục hành chính", max_length=300)


class DeclareOwner(BaseModel):
    """The official checked the applicant's id: the dossier concerns this person."""

    id_number: str = Field(min_length=9, max_length=20)

    @field_validator("id_number")
    @classmethod
    def _owner(cls, value: str) -> str:
        checked = _check_owner_id(value)
        assert checked is not None
        return checked


class SearchOwnerStore(DeclareOwner):
    """Look up an owner's papers for a dossier in hand."""

    dossier_code: str = Field(min_length=1, max_length=64)
    paper_code: str | None = Field(default=None, max_length=64)


class ReuseDocument(BaseModel):
    """Fill a component of this dossier with a paper from the owner's store: no new upload."""

    document_id: str = Field(min_length=1, max_length=36)
    component_code: str | None = Field(default=None, max_length=64)
    component_name: str | None = Field(default=None, max_length=300)
    mandatory: bool = True


class CompleteIntake(BaseModel):
    """The clerk declares intake digitization done: every required component must be there."""

    required_components: list[str] = Field(min_length=1, max_length=100, description="codes or names of the required components")


class AccessQuery(BaseModel):
    """An auditor's look at the access log."""

    id_number: str | None = None
    dossier_code: str | None = Field(default=None, max_length=64)
    document_id: str | None = Field(default=None, max_length=36)
    actor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0)

    @field_validator("id_number")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        return _check_owner_id(value)


# ---- helpers --------------------------------------------------------------------------


def _refused(exc: pdfs.PaperRefused) -> Problem:
    status = 415 if exc.slug == "unsupported-media-type" else 422
    return Problem(status, exc.slug, "The file cannot be used", exc.detail)


def require(user: Principal, *roles: Role) -> None:
    if not user.roles & set(roles):
        names = ", ".join(sorted(r.value for r in roles))
        raise Problem(403, "role-forbidden", "Role not allowed", f"This action needs one of the roles: {names}.")


async def visible_dossier(session, code: str, user: Principal, *, open_only: bool = False) -> store.DossierRef:
    """A dossier the caller's units cover; 404 otherwise (unknown yet, or another unit's)."""
    ref = await store.dossier(session=session, code=code)
    if ref is None or not ref.seen_by(user.can_see):
        raise Problem(
            404, "dossier-unknown", "Dossier not found",
            f"No dossier {code!r} in your units (a dossier just received may take a moment to reach digitization).",
        )  # fmt: skip
    if open_only and ref.closed_at is not None:
        raise Conflict(f"Dossier {code} is closed since {ref.closed_at.isoformat()}.", dossier_closed_at=ref.closed_at.isoformat())
    return ref


def audit(
    tx: UnitOfWork, user: Principal, *, action: str, outcome: str = "granted", dossier_code: str | None = None,
    owner_key: str | None = None, owner_hint: str | None = None, document_id: str | None = None, detail: str | None = None,
) -> None:
    """One line of the access audit, in the same transaction as the access."""
    store.add(
        session=tx.session,
        row=store.DocumentAccess(
            at=tx.db.clock.now(), actor=user.subject, roles=",".join(sorted(r.value for r in user.roles)), action=action,
            outcome=outcome, dossier_code=dossier_code, owner_key=owner_key, owner_hint=owner_hint, document_id=document_id,
            detail=detail,
        ),
    )  # fmt: skip


async def audit_denied(ctx: Context, user: Principal, *, action: str, detail: str, **where: str | None) -> None:
    """A refused access is recorded too, in its own transaction (the request's own rolls back)."""
    async with ctx.db.unit_of_work(actor=user.subject) as tx:
        audit(tx, user, action=action, outcome="denied", detail=detail, **where)


@asynccontextmanager
async def scratch(ctx: Context) -> AsyncIterator[Path]:
    """A temporary directory for one request's files, removed afterwards."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=ctx.work_dir, prefix="work-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


async def fetch(ctx: Context, sha256: str, target: Path) -> Path:
    """Copy a blob to a local file (for pyHanko and pypdf, which read files)."""
    out = await asyncio.to_thread(open, target, "wb")
    try:
        async for chunk in ctx.files.open_range(sha256):
            await asyncio.to_thread(out.write, chunk)
    except FileNotFoundError:
        raise Problem(500, "blob-missing", "A stored file is missing", f"The file store has no blob {sha256}.") from None
    finally:
        await asyncio.to_thread(out.close)
    return target


class _Blobs:
    """Blobs put during one transaction: registered with it, deleted again if it fails."""

    def __init__(self, ctx: Context, tx: UnitOfWork) -> None:
        self.ctx, self.tx = ctx, tx
        self.created: list[str] = []

    async def put(self, path: Path, media_type: str) -> tuple[str, int]:
        """Store a file and register it in this transaction."""
        blob = await self.ctx.files.put(file_chunks(path))
        await store.lock_blob(session=self.tx.session, sha256=blob.sha256)
        if not await self.ctx.files.exists(blob.sha256):
            # A failed request deleted the bytes it had created between our put and our lock: put them again.
            blob = await self.ctx.files.put(file_chunks(path))
        if blob.created:
            self.created.append(blob.sha256)
        await store.add_blob(
            session=self.tx.session,
            blob=store.StoredBlob(sha256=blob.sha256, size=blob.size, media_type=media_type, created_at=self.tx.db.clock.now()),
        )
        return blob.sha256, blob.size

    async def undo(self) -> None:
        for sha256 in self.created:
            with suppress(Exception):
                await self.ctx.files.delete(sha256)


async def with_blobs(ctx: Context, user: Principal, work: Callable[[UnitOfWork, _Blobs], Awaitable[T]]) -> T:
    """Run ``work`` in one unit of work; on failure, delete the blobs it created."""
    blobs: _Blobs | None = None
    try:
        async with ctx.db.unit_of_work(actor=user.subject) as tx:
            blobs = _Blobs(ctx, tx)
            return await work(tx, blobs)
    except BaseException:
        if blobs is not None:
            # The transaction is over: blobs it created are unreferenced unless another request registered them since.
            async with ctx.db.unit_of_work() as cleanup:
                for sha256 in list(blobs.created):
                    await store.lock_blob(session=cleanup.session, sha256=sha256)
                    if await store.blob_known(session=cleanup.session, sha256=sha256):
                        blobs.created.remove(sha256)
                await blobs.undo()
        raise


def check_upload(file: SpooledFile | None, *, content_sha256: str | None, repr_digest: str | None) -> domain.MediaType:
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


async def as_pdf(ctx: Context, file: SpooledFile, media_type: domain.MediaType, work: Path) -> tuple[Path, int]:
    """The upload as a PDF file and its page count."""
    try:
        if media_type is domain.MediaType.PDF:
            return file.path, await asyncio.to_thread(pdfs.pdf_pages, file.path)
        target = work / "scan.pdf"
        pages = await asyncio.to_thread(
            pdfs.image_to_pdf, file.path, media_type, target, default_dpi=ctx.settings.default_scan_dpi
        )
        return target, pages
    except pdfs.PaperRefused as exc:
        raise _refused(exc) from None


async def _sign(ctx: Context, source: Path, target: Path, **kwargs: object) -> None:
    try:
        await asyncio.to_thread(signing.sign_file, source, target, ctx.signer, location=ctx.settings.signing_location, **kwargs)  # type: ignore[arg-type]
    except Exception as exc:
        log.warning("signing failed: %r", exc)
        raise Problem(
            422, "unsignable-file", "The PDF cannot be signed", f"The signer refused the file: {type(exc).__name__}: {exc}."
        ) from None


def _owner(settings: DigitizationSettings, id_number: str | None) -> tuple[str | None, str | None]:
    if not id_number:
        return None, None
    return domain.owner_key(settings.owner_secret(), id_number), domain.owner_hint(id_number)


async def _file_owner(tx: UnitOfWork, user: Principal, *, dossier_code: str, key: str, hint: str) -> None:
    """Link the owner to the dossier (the official holds the paper and the applicant's id)."""
    if await store.declare_owner(
        session=tx.session,
        owner=store.DossierOwner(dossier_code=dossier_code, owner_key=key, owner_hint=hint, declared_at=tx.db.clock.now(), declared_by=user.subject),
    ):
        audit(tx, user, action="declare_owner", dossier_code=dossier_code, owner_key=key, owner_hint=hint)


# ---- digitizing papers and results ------------------------------------------------------


async def digitize(
    ctx: Context, file: SpooledFile | None, cmd: DigitizePaper, *, user: Principal, content_sha256: str | None = None,
    repr_digest: str | None = None,
) -> tuple[store.Document, bool]:
    """Keep a scan of a paper or of the result; (document, created). The same bytes again give the first document."""
    require(user, *OFFICIALS)
    if cmd.stage == "intake" and not user.roles & {Role.CLERK, Role.SPECIALIST}:
        raise Problem(403, "role-forbidden", "Role not allowed", "Papers are digitized at intake by a clerk or specialist.")
    media_type = check_upload(file, content_sha256=content_sha256, repr_digest=repr_digest)
    assert file is not None
    async with ctx.db.sessions() as session:
        ref = await visible_dossier(session, cmd.dossier_code, user, open_only=True)
        key = domain.component_key(cmd.component_code, cmd.component_name or cmd.paper_name)
        earlier = await store.same_upload(
            session=session, dossier_code=ref.code, stage=cmd.stage, component_key=key, original_sha256=file.sha256
        )
    if earlier is not None:
        return earlier, False
    document_id = str(uuid.uuid4())
    owner_key, owner_hint = _owner(ctx.settings, cmd.owner_id_number)
    async with scratch(ctx) as work:
        pdf, pages = await as_pdf(ctx, file, media_type, work)
        sealed = cmd.stage == "intake" and ctx.settings.sign_digitized
        content = pdf
        if sealed:
            content = work / "sealed.pdf"
            await _sign(ctx, pdf, content, field_name=f"motcua-seal-{document_id[:8]}", reason="Số hóa thành phần hồ sơ")
        now_signed = datetime.now().astimezone() if sealed else None

        async def work_(tx: UnitOfWork, blobs: _Blobs) -> store.Document:
            original, original_size = await blobs.put(file.path, media_type.value)
            sha256, size = await blobs.put(content, domain.PDF)
            doc = store.Document(
                id=document_id, dossier_code=ref.code, unit=ref.unit, receiving_unit=ref.receiving_unit, stage=cmd.stage,
                kind="scan" if cmd.stage == "intake" else "result", component_code=cmd.component_code,
                component_name=cmd.component_name, component_key=key, mandatory=cmd.mandatory, paper_code=cmd.paper_code,
                paper_name=cmd.paper_name, paper_number=cmd.paper_number, issuer=cmd.issuer, issued_on=cmd.issued_on,
                valid_until=cmd.valid_until, scope=cmd.scope, owner_key=owner_key, owner_hint=owner_hint,
                original_sha256=original, original_media_type=media_type.value, original_size=original_size,
                original_filename=file.filename, sha256=sha256, size=size, pages=pages, signed=sealed,
                signer=ctx.signer.name if sealed else None,
                certificate_serial=ctx.signer.certificate_serial if sealed else None, signed_at=now_signed,
                signed_by=user.subject if sealed else None, created_at=tx.db.clock.now(), created_by=user.subject,
            )  # fmt: skip
            store.add(session=tx.session, row=doc)
            await tx.session.flush()
            if owner_key and owner_hint:
                await _file_owner(tx, user, dossier_code=ref.code, key=owner_key, hint=owner_hint)
                audit(tx, user, action="file", dossier_code=ref.code, owner_key=owner_key, owner_hint=owner_hint, document_id=doc.id)
            await tx.emit(
                DocumentDigitized(
                    dossier_code=ref.code, unit=ref.unit, occurred_at=tx.db.clock.now(), document_id=doc.id, stage=cmd.stage,
                    sha256=sha256, pages=pages, kind=doc.kind, component_code=cmd.component_code,  # type: ignore[arg-type]
                    component_name=cmd.component_name, mandatory=cmd.mandatory, paper_code=cmd.paper_code, signed=sealed,
                    certificate_serial=doc.certificate_serial, owner_filed=owner_key is not None,
                )
            )  # fmt: skip
            return doc

        try:
            return await with_blobs(ctx, user, work_), True
        except IntegrityError:
            # A concurrent upload of the same bytes for the same component won: answer with its document.
            async with ctx.db.sessions() as session:
                earlier = await store.same_upload(
                    session=session, dossier_code=ref.code, stage=cmd.stage, component_key=key, original_sha256=file.sha256
                )
            if earlier is None:
                raise
            return earlier, False


async def sign_result(ctx: Context, document_id: str, cmd: SignResult, *, user: Principal) -> tuple[store.Document, bool]:
    """Sign a result with the unit's certificate and a visible block; (document, newly signed)."""
    require(user, Role.LEADER)
    async with ctx.db.sessions() as session:
        doc = await _visible_document(session, document_id, user)
    if doc.stage != "result":
        raise Conflict(f"Document {document_id} is a paper of the dossier, not its result; papers are sealed when digitized.")
    if doc.signed:
        return doc, False
    async with scratch(ctx) as work:
        source = await fetch(ctx, doc.sha256, work / "result.pdf")
        sizes = await asyncio.to_thread(signing.page_boxes, source)
        place = pdfs.result_block_place(sizes)
        at = datetime.now().astimezone()
        block = signing.VisibleBlock(
            page=place.page, box=place.box,
            lines=domain.signature_lines(signer=ctx.signer.name, officer=user.name or user.subject, at=at, purpose="Đã ký số kết quả"),
        )  # fmt: skip
        target = work / "signed.pdf"
        await _sign(ctx, source, target, field_name=f"motcua-result-{document_id[:8]}", reason=cmd.reason, block=block)

        async def work_(tx: UnitOfWork, blobs: _Blobs) -> tuple[store.Document, bool]:
            row = await store.get(session=tx.session, document_id=document_id, lock=True)
            assert row is not None
            if row.signed:  # another request signed it meanwhile
                return row, False
            sha256, size = await blobs.put(target, domain.PDF)
            row.sha256, row.size, row.signed = sha256, size, True
            row.signer, row.certificate_serial, row.signed_at, row.signed_by = ctx.signer.name, ctx.signer.certificate_serial, at, user.subject
            tx.session.add(row)
            await tx.emit(
                DocumentSigned(
                    dossier_code=row.dossier_code, unit=row.unit, occurred_at=tx.db.clock.now(), document_id=row.id,
                    signer=ctx.signer.name, certificate_serial=ctx.signer.certificate_serial, sha256=sha256, pages=row.pages,
                    kind="result", signed_by=user.subject,
                )
            )  # fmt: skip
            return row, True

        return await with_blobs(ctx, user, work_)


# ---- reading -----------------------------------------------------------------------------


async def _visible_document(session, document_id: str, user: Principal) -> store.Document:
    doc = await store.get(session=session, document_id=document_id)
    if doc is None or not (user.can_see(doc.unit) or (doc.receiving_unit and user.can_see(doc.receiving_unit))):
        raise NotFound("document", document_id)
    return doc


async def open_document(
    ctx: Context, document_id: str, *, user: Principal, for_dossier: str | None, action: Literal["view", "download", "verify"]
) -> store.Document:
    """A document the caller may read: one of their units', or an owner's paper for a dossier they handle (audited)."""
    require(user, *OFFICIALS, Role.ADMIN, Role.AUDITOR)
    async with ctx.db.unit_of_work(actor=user.subject) as tx:
        doc = await store.get(session=tx.session, document_id=document_id)
        if doc is None:
            raise NotFound("document", document_id)
        own_unit = user.can_see(doc.unit) or bool(doc.receiving_unit and user.can_see(doc.receiving_unit))
        if not own_unit:
            if for_dossier is None or doc.owner_key is None:
                raise NotFound("document", document_id)
            ref = await visible_dossier(tx.session, for_dossier, user, open_only=True)
            if not await store.is_owner(session=tx.session, dossier_code=ref.code, owner_key=doc.owner_key):
                raise NotFound("document", document_id)
        if doc.owner_key:
            audit(
                tx, user, action=action, dossier_code=for_dossier or doc.dossier_code, owner_key=doc.owner_key,
                owner_hint=doc.owner_hint, document_id=doc.id,
            )  # fmt: skip
        return doc


async def documents_of(ctx: Context, code: str, *, user: Principal) -> list[store.Document]:
    """The documents of a dossier the caller's units cover (officials, admins and auditors: no machine account)."""
    require(user, *OFFICIALS, Role.ADMIN, Role.AUDITOR)
    async with ctx.db.sessions() as session:
        ref = await visible_dossier(session, code, user)
        return await store.of_dossier(session=session, dossier_code=ref.code)


@dataclass(frozen=True)
class SignatureCheck:
    """A document's signatures as pyHanko reads them, and whether the stored bytes still hash to their name."""

    sha256: str
    sha256_matches: bool
    reports: list[signing.SignatureReport] = field(default_factory=list)


async def check_signatures(ctx: Context, doc: store.Document) -> SignatureCheck:
    """Verify the stored file of a document."""
    async with scratch(ctx) as work:
        path = await fetch(ctx, doc.sha256, work / "doc.pdf")
        digest = await asyncio.to_thread(_sha256_of, path)
        reports = await verify_path(ctx, path)
    return SignatureCheck(sha256=doc.sha256, sha256_matches=digest == doc.sha256, reports=reports)


async def verify_path(ctx: Context, path: Path) -> list[signing.SignatureReport]:
    """Verify any PDF on disk against the unit's trust roots."""
    try:
        # pyHanko's validation is CPU work: it gets a thread and an event loop of its own.
        return await asyncio.to_thread(asyncio.run, signing.verify_file(path, ctx.signer.trust_roots))
    except Exception as exc:
        raise Problem(422, "damaged-file", "The file cannot be read as a signed PDF", f"{type(exc).__name__}: {exc}") from None


def _sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---- the owner's store ---------------------------------------------------------------------


async def declare_owner(ctx: Context, code: str, cmd: DeclareOwner, *, user: Principal) -> store.DossierOwner:
    """Link a person to a dossier the caller handles: from then on their store may be searched for it."""
    require(user, *OFFICIALS)
    key, hint = _owner(ctx.settings, cmd.id_number)
    assert key and hint
    async with ctx.db.unit_of_work(actor=user.subject) as tx:
        ref = await visible_dossier(tx.session, code, user, open_only=True)
        await _file_owner(tx, user, dossier_code=ref.code, key=key, hint=hint)
        return store.DossierOwner(dossier_code=ref.code, owner_key=key, owner_hint=hint, declared_at=tx.db.clock.now(), declared_by=user.subject)


async def search_owner_store(ctx: Context, cmd: SearchOwnerStore, *, user: Principal) -> list[store.Document]:
    """The owner's papers, for an official handling an open dossier of that owner; every search is audited."""
    require(user, *OFFICIALS)
    key, hint = _owner(ctx.settings, cmd.id_number)
    assert key and hint
    async with ctx.db.unit_of_work(actor=user.subject) as tx:
        ref = await visible_dossier(tx.session, cmd.dossier_code, user, open_only=True)
        owned = await store.is_owner(session=tx.session, dossier_code=ref.code, owner_key=key)
    if not owned:
        await audit_denied(
            ctx, user, action="search", detail="the person is not declared an owner of the dossier",
            dossier_code=ref.code, owner_key=key, owner_hint=hint,
        )  # fmt: skip
        raise Problem(
            403, "not-an-owner", "Not an owner of this dossier",
            f"Dossier {ref.code} has no owner with that id number; declare the applicant first (POST /api/v1/dossiers/{ref.code}/owners).",
        )  # fmt: skip
    async with ctx.db.unit_of_work(actor=user.subject) as tx:
        found = await store.of_owner(session=tx.session, owner_key=key, paper_code=cmd.paper_code)
        audit(tx, user, action="search", dossier_code=ref.code, owner_key=key, owner_hint=hint, detail=f"{len(found)} found")
    return found


async def reuse(ctx: Context, code: str, cmd: ReuseDocument, *, user: Principal) -> tuple[store.Document, bool]:
    """Fill a component of the dossier from the owner's store; emits ``document.reused``."""
    require(user, Role.CLERK, Role.SPECIALIST)
    async with ctx.db.unit_of_work(actor=user.subject) as tx:
        ref = await visible_dossier(tx.session, code, user, open_only=True)
        source = await store.get(session=tx.session, document_id=cmd.document_id)
        if source is not None and source.reused_from:
            source = await store.get(session=tx.session, document_id=source.reused_from)
        allowed = (
            source is not None and source.owner_key is not None
            and await store.is_owner(session=tx.session, dossier_code=ref.code, owner_key=source.owner_key)
        )  # fmt: skip
        if not allowed or source is None:
            raise NotFound("document in the store of this dossier's owners", cmd.document_id)
        if not domain.still_valid(source.valid_until, local(tx.db.clock.now()).date()):
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
                "created_at": tx.db.clock.now(), "created_by": user.subject,
            }
        )  # fmt: skip
        store.add(session=tx.session, row=doc)
        await tx.session.flush()
        audit(tx, user, action="reuse", dossier_code=ref.code, owner_key=source.owner_key, owner_hint=source.owner_hint, document_id=source.id)
        await tx.emit(
            DocumentReused(
                dossier_code=ref.code, unit=ref.unit, occurred_at=tx.db.clock.now(), document_id=doc.id,
                source_dossier_code=source.dossier_code, source_document_id=source.id, component_code=cmd.component_code,
                component_name=doc.component_name, mandatory=cmd.mandatory, paper_code=source.paper_code,
            )
        )  # fmt: skip
        return doc, True


async def complete_intake(ctx: Context, code: str, cmd: CompleteIntake, *, user: Principal) -> tuple[store.IntakeCompletion, bool]:
    """Every required component is digitized or reused: ``dossier.digitized`` (once per dossier), or 409 naming what is missing."""
    require(user, Role.CLERK, Role.SPECIALIST)
    async with ctx.db.unit_of_work(actor=user.subject) as tx:
        ref = await visible_dossier(tx.session, code, user)
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
            dossier_code=ref.code, completed_at=tx.db.clock.now(), completed_by=user.subject,
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


async def access_log(ctx: Context, query: AccessQuery, *, user: Principal) -> tuple[list[store.DocumentAccess], int]:
    """The access audit, for auditors and admins."""
    require(user, Role.AUDITOR, Role.ADMIN)
    key, _ = _owner(ctx.settings, query.id_number)
    async with ctx.db.sessions() as session:
        return await store.accesses(
            session=session, owner_key=key, dossier_code=query.dossier_code, document_id=query.document_id,
            actor=query.actor, limit=query.limit, offset=query.offset,
        )  # fmt: skip


# ---- the certified electronic copy (2.000815) ---------------------------------------------


async def certify_copy(
    ctx: Context, file: SpooledFile | None, cmd: CertifyCopy, *, user: Principal, content_sha256: str | None = None,
    repr_digest: str | None = None,
) -> store.Document:
    """Scan of the original → certification page → the unit's signature → the owner's store; ``copy.certified``."""
    require(user, *OFFICIALS)
    media_type = check_upload(file, content_sha256=content_sha256, repr_digest=repr_digest)
    assert file is not None
    async with ctx.db.sessions() as session:
        ref = await visible_dossier(session, cmd.dossier_code, user, open_only=True)
    if ref.procedure_code not in ctx.settings.certified_copy_procedures:
        raise Conflict(
            f"Dossier {ref.code} is for procedure {ref.procedure_code}; certified electronic copies belong to "
            f"{', '.join(ctx.settings.certified_copy_procedures)}.",
        )
    owner_key, owner_hint = _owner(ctx.settings, cmd.owner_id_number)
    assert owner_key and owner_hint
    document_id = str(uuid.uuid4())
    agency = ctx.settings.unit_names.get(ref.unit) or ctx.signer.name
    async with scratch(ctx) as work:
        scan, pages = await as_pdf(ctx, file, media_type, work)

        async def work_(tx: UnitOfWork, blobs: _Blobs) -> store.Document:
            now = tx.db.clock.now()
            year = local(now).year
            # The number is taken in this transaction: a failure below gives it back, so the register has no gaps.
            number = domain.copy_number(await store.next_copy_number(session=tx.session, unit=ref.unit, year=year), year)
            certification = domain.Certification(
                agency=agency, place=ctx.settings.signing_location or "", paper_name=cmd.paper_name, pages=pages,
                number=number, officer_name=user.name or user.subject, officer_title=cmd.officer_title, certified_at=now,
                dossier_code=ref.code,
            )  # fmt: skip
            page = work / "certification.pdf"
            lookup = f"{ctx.settings.public_base_url.rstrip('/')}/api/v1/public/documents/{document_id}/signature"
            place = await asyncio.to_thread(pdfs.render_certification, page, certification, lookup_url=lookup)
            joined = work / "copy.pdf"
            total = await asyncio.to_thread(pdfs.join, scan, page, joined)
            signed_path = work / "signed.pdf"
            at = datetime.now().astimezone()
            block = signing.VisibleBlock(
                page=total - 1, box=place.box,
                lines=domain.signature_lines(signer=ctx.signer.name, officer=user.name or user.subject, at=at, purpose=f"Chứng thực số {number}"),
            )  # fmt: skip
            await _sign(ctx, joined, signed_path, field_name=f"motcua-copy-{document_id[:8]}", reason="Chứng thực bản sao điện tử từ bản chính", block=block)
            original, original_size = await blobs.put(file.path, media_type.value)
            sha256, size = await blobs.put(signed_path, domain.PDF)
            doc = store.Document(
                id=document_id, dossier_code=ref.code, unit=ref.unit, receiving_unit=ref.receiving_unit, stage="result",
                kind="certified_copy", component_code=cmd.component_code, component_name=cmd.component_name or cmd.paper_name,
                component_key=domain.component_key(cmd.component_code, cmd.component_name or cmd.paper_name),
                mandatory=cmd.mandatory, paper_code=cmd.paper_code, paper_name=cmd.paper_name, paper_number=cmd.paper_number,
                issuer=cmd.issuer, issued_on=cmd.issued_on, valid_until=cmd.valid_until, scope=cmd.scope, owner_key=owner_key,
                owner_hint=owner_hint, original_sha256=original, original_media_type=media_type.value,
                original_size=original_size, original_filename=file.filename, sha256=sha256, size=size, pages=total,
                signed=True, signer=ctx.signer.name, certificate_serial=ctx.signer.certificate_serial, signed_at=at,
                signed_by=user.subject, copy_number=number, created_at=now, created_by=user.subject,
            )  # fmt: skip
            store.add(session=tx.session, row=doc)
            await tx.session.flush()
            await _file_owner(tx, user, dossier_code=ref.code, key=owner_key, hint=owner_hint)
            audit(tx, user, action="file", dossier_code=ref.code, owner_key=owner_key, owner_hint=owner_hint, document_id=doc.id)
            common = {"dossier_code": ref.code, "unit": ref.unit, "occurred_at": now, "document_id": doc.id}
            await tx.emit(
                DocumentDigitized(
                    **common, stage="result", sha256=sha256, pages=total, kind="certified_copy", component_code=cmd.component_code,
                    component_name=doc.component_name, mandatory=cmd.mandatory, paper_code=cmd.paper_code, signed=True,
                    certificate_serial=ctx.signer.certificate_serial, owner_filed=True,
                )
            )  # fmt: skip
            await tx.emit(
                DocumentSigned(
                    **common, signer=ctx.signer.name, certificate_serial=ctx.signer.certificate_serial, sha256=sha256,
                    pages=total, kind="certified_copy", signed_by=user.subject,
                )
            )  # fmt: skip
            await tx.emit(
                CopyCertified(
                    **common, copy_id=doc.id, copy_number=number, pages=pages, total_pages=total, copies=cmd.copies,
                    sha256=sha256, certificate_serial=ctx.signer.certificate_serial,
                )
            )  # fmt: skip
            return doc

        return await with_blobs(ctx, user, work_)


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


SUBSCRIPTIONS = Subscription(
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
