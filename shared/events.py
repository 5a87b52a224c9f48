"""Event catalog: versioned, frozen Pydantic models, registered by their CloudEvents type.

Each event is a fact about one dossier; its ``dossier_code`` is the CloudEvents
subject and the Kafka key, so one dossier's events stay in order on one partition.
A few facts are about reference data instead (a province's calendar days): they share the
registry and the envelope but not the dossier fields, and their subject is what they describe.
A change that breaks a schema gets a new type (``….v2``); old types stay readable.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

INTAKE, WORKFLOW, DIGITIZATION, PAYMENTS = "intake", "workflow", "digitization", "payments"
PRODUCERS = (INTAKE, WORKFLOW, DIGITIZATION, PAYMENTS)
# A platform fact every producer publishes on its own topic; its ``producer`` field says whose it is (shared/drift.py).
EVERY_PRODUCER = "*"

REGISTRY: dict[str, type[Fact]] = {}

Channel = Literal["counter", "online", "postal"]
# How an applicant was identified at reception (DOMAIN §4.3 4.5, §7.2 TaiKhoanDuocXacThucVoiVNeID).
Identification = Literal["vneid_level2", "chip_card", "none"]


class Fact(BaseModel):
    """Base of everything published: frozen, strict, registered by its CloudEvents type and producer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ClassVar[str]
    producer: ClassVar[str]

    def __init_subclass__(cls, *, type: str | None = None, producer: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if type is None:
            return
        if producer not in PRODUCERS and producer != EVERY_PRODUCER:
            raise ValueError(f"{cls.__name__}: unknown producer {producer!r}")
        if type in REGISTRY:
            raise ValueError(f"event type {type} registered twice")
        cls.type = type
        if producer != EVERY_PRODUCER:  # otherwise each event's own ``producer`` field names its topic
            cls.producer = producer
        REGISTRY[type] = cls

    @property
    def subject(self) -> str:
        """The CloudEvents subject and Kafka key: facts with one subject stay in order on one partition."""
        raise NotImplementedError


class Event(Fact):
    """Base of every dossier event: a fact about one dossier at one unit."""

    dossier_code: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=64, description="electronic identifier of the unit (QCVN 102:2016)")
    occurred_at: AwareDatetime

    @property
    def subject(self) -> str:
        """The dossier: its events stay in order."""
        return self.dossier_code


class CalendarFact(Fact):
    """Base of a province's calendar facts (reference data, no dossier): the province is the subject."""

    province: str = Field(min_length=1, max_length=16, description="province code, the last part of a unit code (H56)")
    day: date
    occurred_at: AwareDatetime

    @property
    def subject(self) -> str:
        """The province: its declarations and retractions stay in order."""
        return self.province


def dossier_events() -> list[type[Event]]:
    """The registered events about a dossier (what a per-dossier stream records)."""
    return [model for model in REGISTRY.values() if issubclass(model, Event)]


def event_class(type_: str) -> type[Fact] | None:
    """The model registered for a CloudEvents type."""
    return REGISTRY.get(type_)


# ---- intake ---------------------------------------------------------------


class LienThongStepPlan(BaseModel):
    """One inter-agency step of a procedure's plan: the agency and its share of the time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency: str = Field(min_length=1, max_length=300)
    amount: int = Field(ge=1, le=365)
    unit: Literal["WORKING_DAY", "WORKING_HOUR", "CALENDAR_DAY", "SAME_DAY"] = "WORKING_DAY"


class DossierReceived(Event, type="vn.motcua.dossier.received.v1", producer=INTAKE):
    """A dossier was accepted (Form 01 issued), with its receipt and appointment."""

    procedure_code: str
    procedure_name: str
    procedure_version: int = 1
    procedure_field: str | None = Field(default=None, max_length=200, description="the procedure's field (lĩnh vực) in the catalog")
    procedure_field_code: str | None = Field(
        default=None, max_length=64, description="the field's code in the national list (MaLinhVuc), when the catalog has it"
    )
    applicant_name: str
    channel: Channel
    received_at: AwareDatetime
    appointment_at: AwareDatetime | None = Field(description="null only for results returned on the spot")
    due_at_original: AwareDatetime | None = None
    received_by: str | None = None
    legal_due_at: AwareDatetime | None = Field(default=None, description="due by the legal time limit (reports use it)")
    receiving_unit: str | None = Field(default=None, description="the one-stop unit that received it, when not `unit`")
    on_the_spot: bool = Field(default=False, description="a '4 tại chỗ' procedure")
    fee_due: int = Field(default=0, ge=0, description="fee assessed at reception, VND")
    fee_pending: bool = Field(default=False, description="a per-page fee waits for the page count")
    reused_components: int = Field(default=0, ge=0, description="components taken from the citizen's document store")
    return_channel: Channel | None = None
    fee_lines: list[dict[str, Any]] | None = Field(
        default=None, description="the procedure version's fee lines as the catalog stores them (payments assesses from them)"
    )
    pages: int | None = Field(default=None, ge=1, description="page count given at reception, for fees charged per page")
    copies: int = Field(default=1, ge=1, description="copies asked for, for fees charged per copy or per page")
    fee_exemption: str | None = Field(default=None, description="the fee exemption the applicant qualifies for")
    applicant_email: str | None = Field(default=None, max_length=254, description="the applicant's e-mail, if given")
    applicant_phone: str | None = Field(default=None, max_length=20, description="the applicant's phone, if given")
    notify_by: Literal["email", "sms"] | None = Field(
        default=None, description="how the applicant chose to be told of the dossier's progress; null: not at all"
    )
    identification: Identification | None = Field(
        default=None,
        description="how the applicant was identified: VNeID level 2 (asserted by the portal's signed webhook), the chip "
        "of the id card read at the counter (asserted by the clerk), or not at all; null: not said (an event from before)",
    )
    population_data_reused: bool | None = Field(
        default=None,
        description="the applicant's data was taken from the national population database; null: not said (an event from before)",
    )
    submitted_at: AwareDatetime | None = Field(
        default=None,
        description="an online dossier: when the applicant submitted it on the portal (national status 1, NgayNopHoSo), "
        "before the one-stop accepted it at `received_at`; null for the other channels and events from before",
    )
    rules: str | None = Field(
        default=None,
        max_length=64,
        description="the rule set in force at reception (shared/rules.py ref, e.g. VN.2+H56.1): the dossier's deadlines "
        "and forms follow it to the end; null: an event from before (the reception date decides)",
    )
    lien_thong_steps: list[LienThongStepPlan] | None = Field(
        default=None, description="the procedure's inter-agency step plan from the catalog; null: none or not said"
    )


ImportedOutcome = Literal["open", "done", "returned", "rejected", "stopped", "withdrawn"]


class DossierImported(Event, type="vn.motcua.dossier.imported.v1", producer=INTAKE):
    """A dossier of a unit's paper register (Sổ theo dõi hồ sơ) was brought into the system: its whole known history
    in one fact. ``occurred_at`` is the historical reception; the envelope's time is the import. Workflow opens an open
    one with its original deadline (or files a closed one as closed); reporting counts it in the months of its dates."""

    import_id: int = Field(ge=1, description="the register import that brought it in (intake's register_imports row)")
    line: int = Field(ge=1, description="its line in the imported file")
    procedure_code: str
    procedure_name: str
    procedure_version: int = 1
    procedure_field: str | None = Field(default=None, max_length=200)
    procedure_field_code: str | None = Field(default=None, max_length=64)
    applicant_name: str
    receiving_unit: str | None = None
    received_at: AwareDatetime
    appointment_at: AwareDatetime = Field(description="the appointment written in the register (Hẹn trả)")
    due_at: AwareDatetime = Field(description="the deadline it is judged against: the appointment moved by the paused days")
    paused_working_days: int = Field(default=0, ge=0, le=365, description="working days the clock stood still (supplements)")
    outcome: ImportedOutcome = Field(description="open: still being processed; otherwise how it ended")
    finished_at: AwareDatetime | None = Field(default=None, description="end of processing (Ngày xử lý xong); null: open")
    returned_at: AwareDatetime | None = Field(default=None, description="the result went back to the applicant")
    timeliness: Literal["early", "on_time", "late"] | None = Field(default=None, description="a closed one judged against due_at")
    officer: str | None = Field(default=None, max_length=200, description="the officer holding or who held it; null: unknown")
    notes: str | None = Field(default=None, max_length=2000)
    rules: str | None = Field(default=None, max_length=64, description="the rule set ref in force at the historical reception")


class DossierSupplemented(Event, type="vn.motcua.dossier.supplemented.v1", producer=INTAKE):
    """The applicant handed in the requested additions."""

    supplemented_at: AwareDatetime


class DossierWithdrawn(Event, type="vn.motcua.dossier.withdrawn.v1", producer=INTAKE):
    """The applicant withdrew the dossier."""

    reason: str | None = None


# ---- intake: reference data --------------------------------------------------


class CalendarDayDeclared(CalendarFact, type="vn.motcua.calendar.day_declared.v1", producer=INTAKE):
    """An admin declared a day off or a working day for the province, on top of the national calendar."""

    kind: Literal["off", "working"]
    reason: str = Field(min_length=1, max_length=300)
    declared_by: str | None = None


class CalendarDayForgotten(CalendarFact, type="vn.motcua.calendar.day_forgotten.v1", producer=INTAKE):
    """An admin withdrew a declared day: the national calendar rules the day again."""

    forgotten_by: str | None = None


# ---- intake: the law in force and the administrative units ----------------------------------------------------


class RulesPublished(Fact, type="vn.motcua.rules.published.v1", producer=INTAKE):
    """An admin published a rule set version (shared/rules.py): every service that applies rules keeps a copy."""

    scope: str = Field(min_length=2, max_length=8, description="VN or a province code")
    version: int = Field(ge=1)
    effective_from: date
    document: dict[str, Any] = Field(description="the version as shared.rules.dump_version writes it")
    occurred_at: AwareDatetime

    @property
    def subject(self) -> str:
        """The scope: its versions stay in order."""
        return self.scope


class UnitsDeclared(Fact, type="vn.motcua.units.declared.v1", producer=INTAKE):
    """An admin entered or corrected administrative units (shared/units.py AdminUnit documents)."""

    province: str = Field(min_length=1, max_length=64)
    units: list[dict[str, Any]] = Field(min_length=1)
    occurred_at: AwareDatetime

    @property
    def subject(self) -> str:
        """The province: its registry changes stay in order."""
        return self.province


class UnitMerged(Fact, type="vn.motcua.units.merged.v1", producer=INTAKE):
    """A unit was merged into another from ``effective``: its open dossiers go to ``into`` with their codes and
    deadlines, and new dossiers for it are received for ``into``."""

    province: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=64)
    into: str = Field(min_length=1, max_length=64)
    effective: date
    unit: dict[str, Any] = Field(description="the merged unit as the registry now holds it")
    occurred_at: AwareDatetime

    @property
    def subject(self) -> str:
        """The province: its registry changes stay in order."""
        return self.province


# ---- workflow -------------------------------------------------------------

Timeliness = Literal["early", "on_time", "late"]


class CaseAssigned(Event, type="vn.motcua.case.assigned.v1", producer=WORKFLOW):
    """A department or specialist took the case."""

    department: str | None = None
    assignee: str | None = None


class CaseSupplementRequested(Event, type="vn.motcua.case.supplement_requested.v1", producer=WORKFLOW):
    """Additions were requested (Form 02); the clock pauses."""

    reason: str
    requested_items: list[str] = Field(default_factory=list)
    supplement_number: int = Field(default=1, ge=1, description="1 for the lawful request; more marks the dossier late")
    remaining_working_days: int | None = Field(default=None, ge=0, description="working days left when the clock paused")
    marks_late: bool = Field(default=False, description="a second request, or one after the deadline")


class CaseClockResumed(Event, type="vn.motcua.case.clock_resumed.v1", producer=WORKFLOW):
    """The requested additions arrived: the clock runs again with the working days that were left."""

    supplemented_at: AwareDatetime
    due_at: AwareDatetime | None = Field(description="the new deadline (NgayHenTraMoi)")
    remaining_working_days: int | None = Field(default=None, ge=0)


class CaseTransferred(Event, type="vn.motcua.case.transferred.v1", producer=WORKFLOW):
    """An inter-agency (liên thông) step went out."""

    to_agency: str
    step_due_at: AwareDatetime | None = None
    step_days: int | None = Field(default=None, ge=1, description="the step's share of the time, working days")
    from_unit: str | None = None
    step_no: int | None = Field(default=None, ge=1, description="the step's place in the catalog's plan, when planned")
    adjusted_reason: str | None = Field(
        default=None, max_length=500, description="why the officer changed the planned agency or days; null: as planned"
    )


class CaseHandedOver(Event, type="vn.motcua.case.handed_over.v1", producer=WORKFLOW):
    """The dossier moved to another processing unit (its unit was merged into ``unit``): same code, history and
    deadlines."""

    from_unit: str = Field(min_length=1, max_length=64)
    reason: Literal["unit_merged"] = "unit_merged"


class CaseTransferReturned(Event, type="vn.motcua.case.transfer_returned.v1", producer=WORKFLOW):
    """An inter-agency step came back; a late step is the returning agency's (``from_agency``) to answer for."""

    from_agency: str
    step_late: bool | None = Field(default=None, description="the step came back after its own deadline")
    step_due_at: AwareDatetime | None = Field(default=None, description="the step's own deadline")
    step_no: int | None = Field(default=None, ge=1, description="the step's place in the catalog's plan, when planned")


class CaseApproved(Event, type="vn.motcua.case.approved.v1", producer=WORKFLOW):
    """The leader approved the result."""

    approved_by: str | None = None


class CaseRejected(Event, type="vn.motcua.case.rejected.v1", producer=WORKFLOW):
    """The dossier was refused during processing, with a reason."""

    reason: str
    timeliness: Timeliness | None = Field(default=None, description="the refusal judged against the deadline")


class CaseStopped(Event, type="vn.motcua.case.stopped.v1", producer=WORKFLOW):
    """Processing was stopped (national status 8)."""

    reason: str
    timeliness: Timeliness | None = Field(
        default=None, description="set when stopped while waiting for additions: judged at the request time"
    )


class CasePaymentAwaited(Event, type="vn.motcua.case.payment_awaited.v1", producer=WORKFLOW):
    """Approved and signed, the result waits only for the fee (national status 6)."""


class CaseResultReady(Event, type="vn.motcua.case.result_ready.v1", producer=WORKFLOW):
    """Processing ended (national status 9): the signed result is ready."""

    finished_at: AwareDatetime
    timeliness: Timeliness
    due_at: AwareDatetime | None = Field(default=None, description="the deadline it was judged against")


class CaseReturned(Event, type="vn.motcua.case.returned.v1", producer=WORKFLOW):
    """The result went back to the applicant (national status 10)."""

    returned_at: AwareDatetime
    return_channel: Channel
    timeliness: Timeliness
    finished_at: AwareDatetime | None = Field(default=None, description="end of processing (NgayKetThucXuLy)")
    tracking_number: str | None = Field(default=None, description="postal tracking number")
    on_the_spot: bool = Field(default=False, description="received, decided and returned in one sitting (4 tại chỗ)")


class CaseDeadlineWarning(Event, type="vn.motcua.case.deadline_warning.v1", producer=WORKFLOW):
    """The deadline is near."""

    due_at: AwareDatetime


class CaseOverdue(Event, type="vn.motcua.case.overdue.v1", producer=WORKFLOW):
    """The deadline passed with the case still open."""

    due_at: AwareDatetime
    holder: str | None = None
    holder_unit: str | None = Field(default=None, description="unit or department holding the case when it went late")


class CaseApologyIssued(Event, type="vn.motcua.case.apology_issued.v1", producer=WORKFLOW):
    """The apology letter (Form 04) with a new appointment."""

    reason: str
    new_appointment_at: AwareDatetime
    timely: bool | None = Field(default=None, description="issued at least one working day before the deadline")
    deadline_at: AwareDatetime | None = Field(default=None, description="the deadline the apology was judged against")


class CaseDelayExplained(Event, type="vn.motcua.case.delay_explained.v1", producer=WORKFLOW):
    """The written explanation of a late dossier to the head of the unit (báo cáo giải trình)."""

    explanation: str
    holder_unit: str | None = None
    holder_officer: str | None = None


class CaseRated(Event, type="vn.motcua.case.rated.v1", producer=WORKFLOW):
    """The applicant's satisfaction rating."""

    rating: Literal["very_satisfied", "satisfied", "dissatisfied"]
    criteria: dict[str, str | int | bool] = Field(default_factory=dict, description="DOMAIN §1.7 criteria answered")
    comment: str | None = None


class CaseFeedbackReceived(Event, type="vn.motcua.case.feedback_received.v1", producer=WORKFLOW):
    """Citizen feedback (phản ánh, kiến nghị) about the dossier, with its own answer deadline."""

    feedback_id: str
    channel: str
    due_at: AwareDatetime


class CaseFeedbackAnswered(Event, type="vn.motcua.case.feedback_answered.v1", producer=WORKFLOW):
    """The feedback was answered."""

    feedback_id: str
    answered_at: AwareDatetime
    timeliness: Timeliness


# ---- digitization ---------------------------------------------------------


class DocumentDigitized(Event, type="vn.motcua.document.digitized.v1", producer=DIGITIZATION):
    """A paper of the dossier or its result was digitized."""

    document_id: str
    stage: Literal["intake", "result"]
    sha256: str
    pages: int = Field(ge=0)
    kind: Literal["scan", "result", "certified_copy"] = Field(default="scan", description="what was digitized")
    component_code: str | None = Field(default=None, description="the dossier component (MaThanhPhanHoSo)")
    component_name: str | None = None
    mandatory: bool | None = Field(default=None, description="a mandatory component of the procedure")
    paper_code: str | None = Field(default=None, description="the paper type (MaGiayTo)")
    signed: bool = Field(default=False, description="sealed with the unit's certificate when digitized")
    certificate_serial: str | None = None
    owner_filed: bool = Field(default=False, description="filed in the owner's document store")


class DocumentSigned(Event, type="vn.motcua.document.signed.v1", producer=DIGITIZATION):
    """A result was digitally signed."""

    document_id: str
    signer: str
    certificate_serial: str
    sha256: str | None = Field(default=None, description="SHA-256 of the signed file")
    pages: int | None = Field(default=None, ge=0)
    kind: Literal["result", "certified_copy"] = "result"
    signed_by: str | None = Field(default=None, description="the official who had it signed")


class DocumentReused(Event, type="vn.motcua.document.reused.v1", producer=DIGITIZATION):
    """A stored document served a new dossier."""

    document_id: str
    source_dossier_code: str | None = None
    source_document_id: str | None = None
    component_code: str | None = None
    component_name: str | None = None
    mandatory: bool | None = None
    paper_code: str | None = None


class DossierDigitized(Event, type="vn.motcua.dossier.digitized.v1", producer=DIGITIZATION):
    """Every required component of the dossier was digitized or reused at intake (counted once per dossier)."""

    required: int = Field(ge=0, description="components the official declared required")
    digitized: int = Field(ge=0)
    reused: int = Field(ge=0)


class CopyCertified(Event, type="vn.motcua.copy.certified.v1", producer=DIGITIZATION):
    """A certified electronic copy from an original (procedure 2.000815) was made, signed and filed."""

    document_id: str
    copy_id: str = Field(description="the copy's document id (payments charges once per copy)")
    copy_number: str = Field(description="số chứng thực, with its register")
    pages: int = Field(ge=1, description="pages of the copy, the certification page not counted (the fee is per page)")
    total_pages: int = Field(ge=1, description="pages of the signed file, certification page included")
    copies: int = Field(default=1, ge=1)
    sha256: str
    certificate_serial: str


class CopyRevoked(Event, type="vn.motcua.copy.revoked.v1", producer=DIGITIZATION):
    """A certified electronic copy was revoked by a leader of its unit: its check page says so, it is no longer valid."""

    document_id: str = Field(description="the copy's document id")
    reason: str = Field(min_length=1, max_length=500, description="why the copy was revoked, as its check page shows it")
    revoked_by: str = Field(description="the leader who revoked it")


# ---- payments -------------------------------------------------------------


class PaymentLine(BaseModel):
    """One fee line of a payment request, in whole VND."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    quantity: int = Field(default=1, ge=1)
    amount: Decimal = Field(ge=0, decimal_places=0)
    exempted_by: str | None = None


class PaymentRequested(Event, type="vn.motcua.payment.requested.v1", producer=PAYMENTS):
    """A fee is due for the dossier."""

    payment_id: str
    amount: Decimal = Field(ge=0, decimal_places=0)
    currency: Literal["VND"] = "VND"
    lines: list[PaymentLine] = Field(default_factory=list)
    basis: str | None = Field(default=None, description="what was assessed: reception, copy:<id> (pages counted), reissue:<payment>")
    expires_at: AwareDatetime | None = Field(default=None, description="unpaid by then, the request expires")
    replaces_payment_id: str | None = Field(default=None, description="the failed or expired request this one replaces")


class PaymentConfirmed(Event, type="vn.motcua.payment.confirmed.v1", producer=PAYMENTS):
    """The bank, the payment platform or the counter confirmed the payment."""

    payment_id: str
    amount: Decimal = Field(ge=0, decimal_places=0)
    channel: Literal["online", "counter"]
    provider_transaction_id: str | None = None
    provider: str | None = Field(default=None, description="the bank or platform that confirmed it; 'counter' for cash")
    receipt_number: str | None = Field(default=None, description="the electronic fee receipt (biên lai) number")
    paid_at: AwareDatetime | None = None


class PaymentRefunded(Event, type="vn.motcua.payment.refunded.v1", producer=PAYMENTS):
    """A payment was refunded."""

    payment_id: str
    amount: Decimal = Field(ge=0, decimal_places=0)
    reason: str | None = None


class PaymentFailed(Event, type="vn.motcua.payment.failed.v1", producer=PAYMENTS):
    """A payment attempt failed or did not match."""

    payment_id: str
    reason: str
    status: Literal["pending", "failed", "expired"] = Field(
        default="failed",
        description="the request afterwards: pending (a mismatched transfer is held for a person), failed or expired",
    )
    provider_transaction_id: str | None = None
    amount_received: Decimal | None = Field(default=None, ge=0, decimal_places=0)


# ---- every producer: the outbox manifest (shared/drift.py) ------------------------------------------------------


class ManifestEntry(BaseModel):
    """One outbox row a manifest announces: the event's id (its ``ce_id``) and type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=200)
    row: int = Field(ge=1, description="its outbox id at the producer (where a replay would start)")


class OutboxManifest(Fact, type="vn.motcua.outbox.manifest.v1", producer=EVERY_PRODUCER):
    """What a producer's outbox holds for one day (Asia/Ho_Chi_Minh), one chunk of rows: every consumer compares it with
    its inbox to name the events it never applied (shared/drift.py)."""

    producer: str = Field(min_length=1, max_length=64, description="the producing service, whose topic carries this")
    day: date = Field(description="the day the announced events were written, in Asia/Ho_Chi_Minh")
    first_id: int = Field(ge=1, description="the first outbox row of this chunk (outbox id)")
    last_id: int = Field(ge=1, description="the last outbox row of this chunk")
    events: list[ManifestEntry] = Field(min_length=1, max_length=2000)
    recent: bool = Field(default=False, description="a periodic re-announcement of recent days, not rows new since the last")
    occurred_at: AwareDatetime

    @property
    def subject(self) -> str:
        """The producer's day: its manifests stay in order."""
        return f"{self.producer}/{self.day.isoformat()}"


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every registered event type."""
    return {type_: model.model_json_schema() for type_, model in sorted(REGISTRY.items())}


def write_schemas(directory: Path) -> list[Path]:
    """Write one ``<type>.schema.json`` per event type; return the files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for type_, schema in json_schemas().items():
        schema = {"$id": f"urn:motcua:event:{type_}", "title": type_, **schema}
        path = directory / f"{type_}.schema.json"
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
