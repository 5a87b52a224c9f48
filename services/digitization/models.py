"""Digitization's HTTP shapes: the commands it takes and the ``*Public`` models it answers with."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, model_validator

from services.digitization import domain, signing
from shared.identity import IdNumber


def _normalised(value: str) -> str:
    """A citizen id number without its separators (``001 203-000 123``); a tax code trimmed."""
    compact = domain.normalise_id_number(value)
    return compact if len(compact) == 12 else value.strip()


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# A person's citizen id number or an organisation's tax code, checked, in the form the owner's key is computed on.
OwnerIdNumber = Annotated[str, AfterValidator(_normalised), *IdNumber.__metadata__]
# The same, or nothing (a blank value is nothing).
OptionalOwnerIdNumber = Annotated[OwnerIdNumber | None, BeforeValidator(_blank_is_none)]

# ---- commands -------------------------------------------------------------------------


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
    owner_id_number: OptionalOwnerIdNumber = Field(
        default=None, description="the owner's id number or tax code; only a keyed hash is kept"
    )

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
    owner_id_number: OwnerIdNumber = Field(description="whose store the copy is filed in")
    officer_title: str = Field(default="Người thực hiện chứng thực", max_length=200)
    copies: int = Field(default=1, ge=1, le=100)


class SignResult(BaseModel):
    """A leader has the result signed with the unit's certificate."""

    reason: str = Field(default="Ký số kết quả giải quyết thủ tục hành chính", max_length=300)


class RevokeCopy(BaseModel):
    """Revoke a certified electronic copy (a leader of its unit): its check page says so from then on."""

    reason: Annotated[str, BeforeValidator(_stripped)] = Field(
        min_length=1, max_length=500, description="why the copy is revoked; the public check page shows it"
    )


class DeclareOwner(BaseModel):
    """The official checked the applicant's id: the dossier concerns this person."""

    id_number: OwnerIdNumber = Field(min_length=9, max_length=20)


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

    id_number: OptionalOwnerIdNumber = None
    dossier_code: str | None = Field(default=None, max_length=64)
    document_id: str | None = Field(default=None, max_length=36)
    actor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


# ---- answers --------------------------------------------------------------------------


class SignaturePublic(BaseModel):
    """Who signed a document and when."""

    signer: str | None
    certificate_serial: str | None
    signed_at: datetime | None
    signed_by: str | None


class DocumentPublic(BaseModel):
    """A digitized document with its metadata (DOMAIN §3 rule 6) and where to fetch it."""

    id: str
    dossier_code: str | None = Field(description="null for a result back-digitized from the archive (no dossier here)")
    unit: str
    stage: str
    kind: str
    component_code: str | None
    component_name: str | None
    mandatory: bool
    paper_code: str | None
    paper_name: str | None
    paper_number: str | None
    issuer: str | None
    issued_on: date | None
    valid_until: date | None
    scope: str | None
    owner: str | None = None
    media_type: str = domain.PDF
    sha256: str
    size: int
    pages: int
    original_media_type: str
    original_sha256: str
    original_size: int
    original_filename: str | None
    signed: bool
    signature: SignaturePublic | None
    reused_from: str | None
    copy_number: str | None
    created_at: datetime
    created_by: str
    content_url: str


class DocumentsPublic(BaseModel):
    """A list of documents."""

    data: list[DocumentPublic]
    count: int


class SignatureReportPublic(BaseModel):
    """Is the file signed, by whom, when, and did it change afterwards."""

    document_id: str | None = None
    signed: bool
    valid: bool
    trusted: bool
    signer: str | None
    signing_time: datetime | None
    certificate_serial: str | None
    modified_after_signing: bool
    sha256: str
    sha256_matches: bool | None = None
    copy_number: str | None = None
    signatures: list[signing.SignatureReport]


class RevocationPublic(BaseModel):
    """A certified copy's revocation (the first one: revoking again answers it)."""

    document_id: str
    copy_number: str | None
    revoked_at: datetime
    revoked_by: str
    reason: str
    check_url: str = Field(description="the copy's public check page, which now says it was revoked")


class OwnerPublic(BaseModel):
    """A person declared for a dossier (the id number masked)."""

    dossier_code: str
    owner: str
    declared_at: datetime
    declared_by: str


class CompletionPublic(BaseModel):
    """A dossier digitized at intake."""

    dossier_code: str
    completed_at: datetime
    completed_by: str
    required: int
    digitized: int
    reused: int


class AccessPublic(BaseModel):
    """One line of the access audit."""

    id: int
    at: datetime
    actor: str
    roles: str
    action: str
    outcome: str
    dossier_code: str | None
    owner: str | None
    document_id: str | None
    detail: str | None


class AccessesPublic(BaseModel):
    """A page of the access audit."""

    data: list[AccessPublic]
    count: int


# ---- back-digitization of results still in force (issue #22) -----------------------------


def _tidy(value: object) -> object:
    return domain.tidy(value) if isinstance(value, str) else value


def _sheet_date(value: object) -> object:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str) and value.strip():
        try:
            return domain.sheet_date(value)
        except ValueError:
            raise ValueError(f"{value.strip()!r} is not a date (write 2019-05-14 or 14/05/2019)") from None
    return None if isinstance(value, str) else value


SheetText = Annotated[str, BeforeValidator(_tidy)]
SheetDate = Annotated[date, BeforeValidator(_sheet_date)]


class ImportBackfile(BaseModel):
    """A batch of scanned results of one unit (the multipart's text fields; the ZIP is the file part)."""

    unit: str = Field(min_length=1, max_length=64, description="the unit whose results these are (it seals and files them)")


class BackfileRow(BaseModel):
    """One row of a batch's metadata sheet: one scanned result still in force."""

    file: SheetText = Field(min_length=1, max_length=255, description="the scan's path inside the ZIP")
    paper_kind: SheetText = Field(min_length=1, max_length=300, description="loại giấy tờ: what the result is")
    paper_code: SheetText | None = Field(default=None, max_length=64, description="MaGiayTo, when known")
    number: SheetText = Field(min_length=1, max_length=100, description="số, ký hiệu")
    issuer: SheetText = Field(min_length=1, max_length=300, description="cơ quan cấp")
    issued_on: SheetDate = Field(description="ngày cấp")
    owner_id_number: OwnerIdNumber = Field(description="số định danh of the owner; only its keyed hash is kept")
    field: SheetText = Field(min_length=1, max_length=200, description="lĩnh vực: the field its progress is counted in")
    valid_until: Annotated[date | None, BeforeValidator(_sheet_date)] = Field(default=None, description="hiệu lực đến (empty: no expiry)")

    @model_validator(mode="after")
    def _dates(self) -> BackfileRow:
        if self.valid_until and self.valid_until < self.issued_on:
            raise ValueError("valid_until: before issued_on")
        return self


class DeclareResultsInForce(BaseModel):
    """How many results of a field the unit holds that are still in force: the denominator of its progress."""

    results_in_force: int = Field(ge=0, le=10_000_000, description="counted in the unit's archive (sổ, tủ hồ sơ)")
    note: str | None = Field(default=None, max_length=500, description="how it was counted")


class BatchProblemPublic(BaseModel):
    """What is wrong with one row or one file of a batch."""

    file: str | None = Field(description="the file in the ZIP it concerns (the sheet for a sheet problem)")
    line: int | None = Field(description="the sheet line (the header is line 1)")
    column: str | None = None
    reason: str


class BackfileBatchPublic(BaseModel):
    """A back-digitized batch: every file sealed and filed in its owner's store, or none."""

    id: str
    unit: str
    sheet: str
    sha256: str = Field(description="SHA-256 of the ZIP (the same ZIP again answers this batch)")
    documents: int
    pages: int
    created_at: datetime
    created_by: str
    document_ids: list[str] = Field(description="in the order of the sheet's rows")


class ResultsInForcePublic(BaseModel):
    """A unit's declared count of results in force in one field."""

    unit: str
    field: str
    results_in_force: int
    note: str | None
    declared_at: datetime
    declared_by: str


class ProgressLinePublic(BaseModel):
    """One field of a unit: declared results in force, how many are digitized, and the share of the 100 % target."""

    field: str
    results_in_force: int | None = Field(description="declared by an admin; null: not declared yet")
    digitized: int = Field(description="back-digitized results still in force today")
    expired: int = Field(description="back-digitized results whose validity has ended (not counted)")
    remaining: int | None
    share_percent: float | None = Field(description="digitized / results_in_force × 100 (above 100: the declaration is too low)")
    target_percent: int = 100


class ProgressPublic(BaseModel):
    """A unit's back-digitization progress per field (lĩnh vực)."""

    unit: str
    as_of: date
    data: list[ProgressLinePublic]
    count: int
    results_in_force: int = Field(description="over the declared fields")
    digitized: int = Field(description="over the declared fields")
    share_percent: float | None
