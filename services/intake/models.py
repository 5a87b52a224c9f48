"""Intake's HTTP shapes: the commands clerks, admins and the portal send, and the ``*Public`` documents they get back."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, EmailStr, Field, model_validator

from shared.calendar import DayKind
from shared.events import Identification
from shared.identity import CitizenIdNumber, TaxCode
from shared.rules import Rules, Sections
from shared.units import AdminUnit

# ---- requests ---------------------------------------------------------------


class Applicant(BaseModel):
    """Who submits: a citizen (CCCD number) or an organisation (tax code)."""

    kind: Literal["citizen", "organisation"] = "citizen"
    name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Thị Hồng Nhung"])
    id_number: CitizenIdNumber | None = Field(
        default=None, description="citizen id number (CCCD, 12 digits)", examples=["001203004567"]
    )
    tax_code: TaxCode | None = Field(default=None, description="organisation tax code", examples=["0100112437"])
    address: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 .-]{8,20}$")
    email: EmailStr | None = None

    @model_validator(mode="after")
    def _identifier(self) -> Applicant:
        if self.kind == "organisation" and not self.tax_code:
            raise ValueError("tax_code: an organisation needs its tax code")
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
    identification: Identification = Field(
        default="none",
        description="how the applicant was identified: `vneid_level2` (VNeID level 2, only the portal's signed webhook may "
        "say so), `chip_card` (the chip of the id card read at the counter, only a clerk may say so) or `none`",
    )
    population_data_reused: bool = Field(
        default=False, description="the applicant's data was taken from the national population database (CSDLQG về dân cư)"
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
    submitted_at: AwareDatetime


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
    field_code: str | None = Field(default=None, max_length=64, description="the field's code in the national list (MaLinhVuc)")
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


class CatalogImport(BaseModel):
    """An exported catalog."""

    procedures: list[dict[str, Any]] = Field(max_length=5000)


class NationalCatalogLook(BaseModel):
    """Read the national procedure list through the LGSP and compare it with the catalog (nothing changes yet)."""

    unit: str | None = Field(default=None, max_length=64, description="`madonvi` of the LGSP calls (default: DVCQG_MADONVI)")
    codes: list[str] | None = Field(default=None, max_length=5000, description="only these procedures (default: the whole list)")
    effective_from: date | None = Field(default=None, description="when the versions it would publish come into force (default: today)")


class NationalCatalogApply(BaseModel):
    """Publish what a look found: a new version of each procedure added or changed (or of only these)."""

    codes: list[str] | None = Field(default=None, max_length=5000, description="only these of the added and changed")


class CalendarDayChange(BaseModel):
    """An admin declares a day working or off for the province."""

    working: bool
    note: str = Field(min_length=1, max_length=300, examples=["Nghỉ bù theo quyết định của UBND tỉnh"])


class PublishRules(Sections):
    """A rule set version to publish: a national version sets every section, a province override only those it changes.

    Its number, when and by whom it was published are given on publishing."""

    scope: str = Field(pattern=r"^(VN|[A-Z][A-Z0-9]{1,7})$", description="VN (national) or a province code (H56)", examples=["H56"])
    regime: str = Field(min_length=2, max_length=40, pattern=r"^[a-z0-9-]+$", description="the decree it implements", examples=["nd118-2025"])
    effective_from: date = Field(description="the first day it is in force: today or later")
    title: str = Field(min_length=3, max_length=300)
    legal_basis: tuple[str, ...] = ()
    notes: str | None = Field(default=None, max_length=2000, description="what is uncertain, for the province to check")


class DeclareUnits(BaseModel):
    """Administrative units to enter or correct (a unit entered again replaces its entry)."""

    units: list[AdminUnit] = Field(min_length=1, max_length=2000)


class MergeUnit(BaseModel):
    """Merge a unit into another from a day: it ends the day before, its dossiers go to ``into``."""

    into: str = Field(min_length=1, max_length=64, description="the unit that takes its dossiers over")
    effective: date = Field(description="the first day the unit is part of ``into``")


# ---- responses --------------------------------------------------------------


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
    rules: str | None = Field(
        default=None, description="the rule set in force at reception (e.g. VN.2+H56.1); null: received before refs were recorded"
    )
    identification: Identification = Field(description="how the applicant was identified at reception")
    population_data_reused: bool = Field(description="the applicant's data was taken from the national population database")


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


class CatalogChange(BaseModel):
    """One field of a procedure that the national record changes."""

    field: str
    before: Any
    after: Any


class NationalEntry(BaseModel):
    """A procedure in a look at the national list."""

    code: str
    name: str
    notes: list[str] = Field(default_factory=list, description="fields the national record gives that could not be read: kept as they are")
    changes: list[CatalogChange] = Field(default_factory=list, description="changed: each field, before and after")
    document: dict[str, Any] | None = Field(default=None, description="added or changed: the definition the new version publishes")
    reason: str | None = Field(default=None, description="unusable: why nothing is done with it")


class PublishedVersion(BaseModel):
    """A version an import published."""

    code: str
    version: int
    change: Literal["added", "changed"]


class NationalImportPublic(BaseModel):
    """A look at the national procedure list against the catalog, and what applying it published."""

    id: int
    fetched_at: datetime
    fetched_by: str
    unit: str | None
    effective_from: date
    counts: dict[str, int] = Field(description="added, changed, unchanged, local_only, unusable")
    added: list[NationalEntry] = Field(description="in the national list, not in the catalog")
    changed: list[NationalEntry] = Field(description="in both; the national record changes these fields")
    unchanged: list[NationalEntry]
    local_only: list[NationalEntry] = Field(description="in the catalog only: local additions, kept")
    unusable: list[NationalEntry] = Field(description="national records that give no usable procedure: nothing is done")
    applied_at: datetime | None
    applied_by: str | None
    applied: list[PublishedVersion]


class PortalPushPublic(BaseModel):
    """A status push owed to the portal."""

    status: int
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None


class RuleVersionPublic(Sections):
    """A published version of a scope's rules, with its ref and how long it is in force."""

    ref: str = Field(description="scope.version, e.g. H56.1: what a dossier records")
    scope: str
    version: int
    regime: str
    effective_from: date
    title: str
    legal_basis: tuple[str, ...] = ()
    notes: str | None = None
    published_at: datetime | None = None
    published_by: str | None = None
    effective_to: date | None = Field(description="the last day it is in force; null while no later version of its scope is")
    shipped: bool = Field(description="shipped with this release (shared/law/rulesets.json) rather than published here")


class RuleVersionsPublic(BaseModel):
    """Every version, by scope and date."""

    data: list[RuleVersionPublic]
    count: int


class RulesPublic(Rules):
    """The complete rules of a dossier received on a day in a province (national rules with its override)."""


class UnitsPublic(BaseModel):
    """Units of the registry."""

    data: list[AdminUnit]
    count: int


# ---- paper registers brought in (issue #22) -------------------------------------------------------------------------


class RegisterRowProblem(BaseModel):
    """A line of the register that cannot be imported, and why."""

    line: int = Field(description="the line in the file (the header is line 1)")
    code: str | None = Field(default=None, description="the dossier code the line gives, if any")
    column: str | None = Field(default=None, description="the column at fault (its English key), if one")
    reason: str


class RegisterImportReport(BaseModel):
    """What importing a register does (a dry run) or did."""

    dry_run: bool
    unit: str
    filename: str | None = None
    sha256: str
    lines: int = Field(description="data lines read (blank lines not counted)")
    valid: int = Field(description="lines that passed every check")
    added: int = Field(description="dossiers new to the system: added (or, in a dry run, that would be)")
    skipped: int = Field(description="lines whose dossier was imported before with the same content")
    counts: dict[str, int] = Field(description="the added dossiers by outcome: open, done, returned, rejected, stopped, withdrawn")
    import_id: int | None = Field(default=None, description="the import kept (null for a dry run or when nothing was new)")
    errors: list[RegisterRowProblem] = Field(description="every bad line; a commit refuses the whole file while there is one")
