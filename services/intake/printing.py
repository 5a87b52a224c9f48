"""Intake's printed forms: 01 (receipt and appointment), 02 (what to complete, shared with workflow) and 03 (refusal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import quote

from services.intake import store
from services.intake.settings import IntakeSettings
from shared import forms
from shared.pdf import (
    Agency,
    Applicant,
    Officer,
    Procedure,
    check_aware,
    form_pdf,
    output_pdf,
    start_form,
    write_applicant,
    write_field,
    write_lookup,
    write_paragraph,
    write_procedure,
    write_signature,
    write_table,
)
from shared.rules import FormKey, Rules
from shared.vntext import format_instant

# Circular 01/2018/TT-VPCP numbering and names (DOMAIN §1.3): the defaults; a dossier's forms print the number and title
# of its rule set (shared/rules.py).
RECEIPT_TITLE = "Giấy tiếp nhận hồ sơ và hẹn trả kết quả"
REFUSAL_TITLE = "Phiếu từ chối tiếp nhận giải quyết hồ sơ"
# The form of the rule set a not-accepted record prints.
NOT_ACCEPTED_FORM_KEYS: dict[str, FormKey] = {"incomplete": "supplement", "refused": "refusal"}


class DocumentKind(StrEnum):
    """The form in which a paper was handed in."""

    ORIGINAL = "ORIGINAL"
    COPY = "COPY"
    CERTIFIED_COPY = "CERTIFIED_COPY"


_DOCUMENT_KIND_LABEL = {
    DocumentKind.ORIGINAL: "Bản chính",
    DocumentKind.COPY: "Bản sao",
    DocumentKind.CERTIFIED_COPY: "Bản sao chứng thực",
}


@dataclass(frozen=True, kw_only=True)
class ReceivedDocument:
    """One line of the list of papers received (thành phần hồ sơ)."""

    name: str
    kind: DocumentKind
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("a received document is counted at least once")


class ReturnMethod(StrEnum):
    """How the applicant asked to get the result."""

    IN_PERSON = "IN_PERSON"
    POSTAL = "POSTAL"
    ONLINE = "ONLINE"


_RETURN_METHOD_LABEL = {
    ReturnMethod.IN_PERSON: "Nhận trực tiếp tại Bộ phận Một cửa",
    ReturnMethod.POSTAL: "Qua dịch vụ bưu chính công ích",
    ReturnMethod.ONLINE: "Trực tuyến, qua Cổng Dịch vụ công",
}


@dataclass(frozen=True, kw_only=True)
class ReceiptForm:
    """Form 01: Giấy tiếp nhận hồ sơ và hẹn trả kết quả."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    applicant: Applicant
    procedure: Procedure
    documents: tuple[ReceivedDocument, ...]
    sets: int
    received_at: datetime
    appointment_at: datetime
    return_method: ReturnMethod
    officer: Officer
    number: str = "01"
    title: str = RECEIPT_TITLE

    def __post_init__(self) -> None:
        check_aware(self)
        if self.sets < 1:
            raise ValueError("a dossier has at least one set")


@dataclass(frozen=True, kw_only=True)
class RefusalForm:
    """Form 03: Phiếu từ chối tiếp nhận giải quyết hồ sơ."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    applicant: Applicant
    procedure: Procedure
    reason: str
    issued_at: datetime
    officer: Officer
    number: str = "03"
    title: str = REFUSAL_TITLE

    def __post_init__(self) -> None:
        check_aware(self)
        if not self.reason.strip():
            raise ValueError("a refusal states its reason")


def render_receipt(form: ReceiptForm) -> bytes:
    """Form 01: Giấy tiếp nhận hồ sơ và hẹn trả kết quả."""
    pdf = form_pdf(number=form.number, title=form.title, dossier_code=form.dossier_code)
    start_form(
        pdf,
        agency=form.agency,
        title=form.title,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.received_at,
    )
    write_paragraph(pdf, f"{form.agency.name} đã tiếp nhận hồ sơ của:")
    write_applicant(pdf, form.applicant)
    write_procedure(pdf, form.procedure)
    write_paragraph(pdf, "1. Thành phần hồ sơ đã nhận:")
    write_table(
        pdf,
        ("TT", "Tên giấy tờ", "Hình thức", "Số lượng"),
        [
            (str(i), doc.name, _DOCUMENT_KIND_LABEL[doc.kind], str(doc.count))
            for i, doc in enumerate(form.documents, start=1)
        ],
        widths=(7, 57, 24, 12),
        align=("CENTER", "LEFT", "LEFT", "CENTER"),
    )
    write_field(pdf, "2. Số lượng hồ sơ", f"{form.sets:02d} bộ")
    write_field(pdf, "3. Thời gian nhận hồ sơ", format_instant(form.received_at))
    write_field(
        pdf,
        "4. Thời gian trả kết quả giải quyết hồ sơ",
        format_instant(form.appointment_at),
        bold=True,
    )
    write_field(pdf, "5. Đăng ký nhận kết quả", _RETURN_METHOD_LABEL[form.return_method])
    write_lookup(pdf, form.lookup_url)
    write_signature(pdf, "Người tiếp nhận hồ sơ", form.officer)
    return output_pdf(pdf)


def render_refusal(form: RefusalForm) -> bytes:
    """Form 03: Phiếu từ chối tiếp nhận giải quyết hồ sơ."""
    pdf = form_pdf(number=form.number, title=form.title, dossier_code=form.dossier_code)
    start_form(
        pdf,
        agency=form.agency,
        title=form.title,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.issued_at,
    )
    write_paragraph(pdf, f"{form.agency.name} đã nhận hồ sơ của:")
    write_field(pdf, "Họ và tên", form.applicant.name, bold=True)
    write_field(pdf, "Địa chỉ", form.applicant.address)
    write_procedure(pdf, form.procedure)
    write_paragraph(
        pdf,
        "Sau khi xem xét, đối chiếu với quy định, hồ sơ không đủ điều kiện để tiếp nhận, "
        "giải quyết vì lý do sau:",
    )
    write_paragraph(pdf, form.reason, indent=4)
    write_paragraph(pdf, "Xin thông báo để Ông/Bà được biết và thực hiện./.")
    write_lookup(pdf, form.lookup_url)
    write_signature(pdf, "Người tiếp nhận hồ sơ", form.officer)
    return output_pdf(pdf)


# ---- from the service's records to its forms ----------------------------------

_KINDS = {"original": DocumentKind.ORIGINAL, "copy": DocumentKind.COPY,
          "certified_copy": DocumentKind.CERTIFIED_COPY, "electronic": DocumentKind.COPY}  # fmt: skip
_RETURN = {"counter": ReturnMethod.IN_PERSON, "postal": ReturnMethod.POSTAL, "online": ReturnMethod.ONLINE}


# The pages people open (services/intake/pages.py serves them under /tra-cuu).
STATUS_PAGE = "/tra-cuu/ho-so/{code}"
RECORD_PAGE = "/tra-cuu/phieu/{reference}"
BOARD_PAGE = "/tra-cuu/niem-yet/{unit}"


def status_path(code: str) -> str:
    """The path of a dossier's status page."""
    return STATUS_PAGE.format(code=quote(code, safe=""))


def record_path(reference: str) -> str:
    """The path of a not-accepted record's page (what the QR of Forms 02 and 03 opens)."""
    return RECORD_PAGE.format(reference=quote(reference, safe=""))


def board_path(unit: str) -> str:
    """The path of a unit's procedure board."""
    return BOARD_PAGE.format(unit=quote(unit, safe=""))


def lookup_url(settings: IntakeSettings, code: str) -> str:
    """The public status page of a dossier (what the QR code opens)."""
    return f"{settings.public_base_url.rstrip('/')}{status_path(code)}"


def unit_name(settings: IntakeSettings, unit: str) -> str:
    """The unit's name as forms and pages print it (``INTAKE_UNIT_NAMES``, else "Bộ phận Một cửa <code>")."""
    return settings.unit_names.get(unit, f"Bộ phận Một cửa {unit}")


def _agency(settings: IntakeSettings, unit: str) -> Agency:
    return Agency(name=unit_name(settings, unit))


def _spec(rules: Rules | None, key: FormKey) -> dict[str, str]:
    """The number and title of a form in the rule set (the defaults without one)."""
    spec = rules.form(key) if rules is not None else None
    return {"number": spec.number, "title": spec.title} if spec is not None else {}


def receipt(d: store.Dossier, settings: IntakeSettings, rules: Rules | None = None) -> bytes:
    """Form 01 of an accepted dossier, numbered and titled as in its rules."""
    return render_receipt(
        ReceiptForm(
            agency=_agency(settings, d.receiving_unit),
            dossier_code=d.code,
            lookup_url=lookup_url(settings, d.code),
            applicant=Applicant(
                name=d.applicant_name,
                id_number=d.applicant_id_number or "",
                address=d.applicant_address or "",
                phone=d.applicant_phone or "",
                email=d.applicant_email or "",
            ),
            procedure=Procedure(name=d.procedure_name, code=d.procedure_code),
            documents=tuple(
                ReceivedDocument(name=c["name"], kind=_KINDS[c.get("form", "original")], count=c.get("count", 1))
                for c in d.components
            ),
            sets=d.sets,
            received_at=d.received_at,
            appointment_at=d.appointment_at,
            return_method=_RETURN[d.return_channel],
            officer=Officer(name=d.received_by),
            **_spec(rules, "receipt"),
        )
    )


def not_accepted(r: store.IntakeRecord, settings: IntakeSettings, rules: Rules | None = None) -> bytes | None:
    """Form 02 for an incomplete dossier, Form 03 for a refused one (numbered and titled as in the rules in force when
    it was recorded); out-of-scope guidance has no form."""
    common = dict(
        agency=_agency(settings, r.unit),
        dossier_code=r.reference,
        lookup_url=f"{settings.public_base_url.rstrip('/')}{record_path(r.reference)}",
        applicant=Applicant(name=r.applicant_name),
        procedure=Procedure(name=r.procedure_name or "", code=r.procedure_code or ""),
        officer=Officer(name=r.created_by),
    )
    issued: datetime = r.created_at
    if r.outcome == "incomplete":
        items = tuple(forms.SupplementItem(content=m, reason="Thành phần hồ sơ còn thiếu") for m in r.details["missing"])
        return forms.render_supplement_request(
            forms.SupplementRequestForm(
                **common, stage=forms.SupplementStage.INTAKE, items=items, issued_at=issued, **_spec(rules, "supplement")
            )
        )
    if r.outcome == "refused":
        return render_refusal(RefusalForm(**common, reason=r.details["reason"], issued_at=issued, **_spec(rules, "refusal")))
    return None
