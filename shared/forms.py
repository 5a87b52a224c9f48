"""Form 02 (Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ), the one form two services issue: intake at reception and
workflow from appraisal (DOMAIN §1.2, §1.5). The other forms live with the service that issues them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.pdf import (
    Agency,
    Applicant,
    Officer,
    Procedure,
    check_aware,
    form_pdf,
    output_pdf,
    start_form,
    write_field,
    write_lookup,
    write_paragraph,
    write_procedure,
    write_signature,
)
from shared.vntext import format_instant

SUPPLEMENT_TITLE = "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ"

class SupplementStage(StrEnum):
    """Where the request to add papers comes from (DOMAIN §1.2 intake, §1.5 appraisal)."""

    INTAKE = "INTAKE"
    APPRAISAL = "APPRAISAL"


_SUPPLEMENT_FINDING = {
    SupplementStage.INTAKE: "Sau khi kiểm tra, hồ sơ chưa đầy đủ, chưa hợp lệ.",
    SupplementStage.APPRAISAL: "Qua thẩm định, hồ sơ chưa đủ điều kiện để giải quyết.",
}


@dataclass(frozen=True, kw_only=True)
class SupplementItem:
    """One thing the applicant must add or correct, and why."""

    content: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class SupplementRequestForm:
    """Form 02: Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ (at intake or from appraisal)."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    applicant: Applicant
    procedure: Procedure
    stage: SupplementStage
    items: tuple[SupplementItem, ...]
    issued_at: datetime
    officer: Officer
    received_at: datetime | None = None
    contact_phone: str = ""
    number: str = "02"  # the form's number and title in the dossier's rule set (shared/rules.py)
    title: str = SUPPLEMENT_TITLE

    def __post_init__(self) -> None:
        check_aware(self)
        if not self.items:
            raise ValueError("a supplement request names at least one item")


def render_supplement_request(form: SupplementRequestForm) -> bytes:
    """Form 02: Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ."""
    pdf = form_pdf(number=form.number, title=form.title, dossier_code=form.dossier_code)
    start_form(
        pdf,
        agency=form.agency,
        title=form.title,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.issued_at,
    )
    write_field(pdf, "Hồ sơ của", form.applicant.name, bold=True)
    write_procedure(pdf, form.procedure)
    if form.received_at is not None:
        write_field(pdf, "Thời gian tiếp nhận hồ sơ", format_instant(form.received_at))
    write_paragraph(pdf, _SUPPLEMENT_FINDING[form.stage])
    write_paragraph(pdf, "Đề nghị Ông/Bà bổ sung, hoàn thiện hồ sơ gồm những nội dung sau:")
    for i, item in enumerate(form.items, start=1):
        write_paragraph(pdf, f"{i}. {item.content}", indent=4)
        write_paragraph(pdf, f"Lý do: {item.reason}", style="I", indent=9)
    contact = f", số điện thoại {form.contact_phone}" if form.contact_phone else ""
    write_paragraph(
        pdf,
        "Trong quá trình hoàn thiện hồ sơ, nếu có vướng mắc, Ông/Bà liên hệ "
        f"{form.officer.name}{contact} để được hướng dẫn.",
    )
    write_lookup(pdf, form.lookup_url)
    write_signature(pdf, "Người hướng dẫn", form.officer)
    return output_pdf(pdf)
