"""Workflow's printed forms: 02 from appraisal (shared with intake), 04 (apology and new appointment), the control slip.

The form definitions and their drawing, and how a case fills each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.workflow import store
from shared import forms
from shared.pdf import (
    BODY_PT,
    FONT_FAMILY,
    LINE,
    Agency,
    Applicant,
    FormPdf,
    Officer,
    Procedure,
    check_aware,
    output_pdf,
    start_form,
    write_field,
    write_lookup,
    write_paragraph,
    write_procedure,
    write_signature,
    write_table,
)
from shared.vntext import format_instant

# Circular 01/2018/TT-VPCP numbering and names (DOMAIN §1.3).
APOLOGY_TITLE = "Phiếu xin lỗi và hẹn lại ngày trả kết quả"
CONTROL_SLIP_TITLE = "Phiếu kiểm soát quá trình giải quyết hồ sơ"


@dataclass(frozen=True, kw_only=True)
class ApologyForm:
    """Form 04: Phiếu xin lỗi và hẹn lại ngày trả kết quả."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    applicant: Applicant
    procedure: Procedure
    received_at: datetime
    original_appointment_at: datetime
    new_appointment_at: datetime
    reason: str
    issued_at: datetime
    signer: Officer

    def __post_init__(self) -> None:
        check_aware(self)
        if self.new_appointment_at <= self.original_appointment_at:
            raise ValueError("the new appointment must come after the original one")
        if not self.reason.strip():
            raise ValueError("an apology states the reason for the delay")


@dataclass(frozen=True, kw_only=True)
class HandOver:
    """One row of the control slip: who passed the dossier to whom, and when."""

    from_unit: str
    from_officer: str
    to_unit: str
    to_officer: str
    received_at: datetime
    step_due_at: datetime | None = None
    handed_over_at: datetime | None = None
    result: str = ""

    def __post_init__(self) -> None:
        check_aware(self)


@dataclass(frozen=True, kw_only=True)
class ControlSlipForm:
    """Form 05: Phiếu kiểm soát quá trình giải quyết hồ sơ, one row per hand-over."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    applicant: Applicant
    procedure: Procedure
    received_at: datetime
    appointment_at: datetime
    rows: tuple[HandOver, ...]

    def __post_init__(self) -> None:
        check_aware(self)


def render_apology(form: ApologyForm) -> bytes:
    """Form 04: Phiếu xin lỗi và hẹn lại ngày trả kết quả."""
    pdf = FormPdf(number="04", title=APOLOGY_TITLE, dossier_code=form.dossier_code)
    start_form(
        pdf,
        agency=form.agency,
        title=APOLOGY_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.issued_at,
    )
    pdf.set_font(FONT_FAMILY, style="B", size=BODY_PT)
    pdf.cell(
        0,
        LINE,
        f"Kính gửi: Ông/Bà {form.applicant.name}",
        align="C",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    agency = form.agency.name
    write_paragraph(
        pdf,
        f"{agency} đã tiếp nhận hồ sơ của Ông/Bà đề nghị giải quyết thủ tục {form.procedure.name} "
        f"(mã TTHC: {form.procedure.code}) vào lúc {format_instant(form.received_at)}.",
    )
    write_field(pdf, "Thời gian hẹn trả kết quả", format_instant(form.original_appointment_at))
    write_paragraph(
        pdf,
        f"Tuy nhiên, đến nay {agency} chưa trả được kết quả giải quyết hồ sơ của Ông/Bà đúng hẹn.",
    )
    write_field(pdf, "Lý do", form.reason)
    write_paragraph(
        pdf,
        f"Sự chậm trễ này đã gây phiền hà cho Ông/Bà. {agency} xin lỗi Ông/Bà và hẹn trả "
        "kết quả giải quyết hồ sơ vào:",
    )
    write_field(pdf, "Thời gian hẹn trả kết quả mới", format_instant(form.new_appointment_at), bold=True)
    write_paragraph(pdf, "Xin trân trọng cảm ơn./.")
    write_lookup(pdf, form.lookup_url)
    write_signature(pdf, "Thủ trưởng cơ quan", form.signer)
    return output_pdf(pdf)


def _party(unit: str, officer: str) -> str:
    return f"{unit}\n{officer}" if officer else unit


def render_control_slip(form: ControlSlipForm) -> bytes:
    """Form 05: Phiếu kiểm soát quá trình giải quyết hồ sơ (A4 landscape, one row per hand-over)."""
    pdf = FormPdf(
        number="05", title=CONTROL_SLIP_TITLE, dossier_code=form.dossier_code, landscape=True
    )
    start_form(
        pdf,
        agency=form.agency,
        title=CONTROL_SLIP_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.received_at,
    )
    write_field(pdf, "Người nộp hồ sơ", form.applicant.name, bold=True)
    write_procedure(pdf, form.procedure)
    write_field(pdf, "Thời gian tiếp nhận hồ sơ", format_instant(form.received_at))
    write_field(pdf, "Thời gian hẹn trả kết quả", format_instant(form.appointment_at), bold=True)
    pdf.ln(2)
    write_table(
        pdf,
        (
            "TT",
            "Bên giao (đơn vị, người giao)",
            "Bên nhận (đơn vị, người nhận)",
            "Thời gian nhận hồ sơ",
            "Hạn xử lý của bước",
            "Thời gian giao hồ sơ đi",
            "Kết quả, ghi chú",
            "Người giao ký",
            "Người nhận ký",
        ),
        [
            (
                str(i),
                _party(row.from_unit, row.from_officer),
                _party(row.to_unit, row.to_officer),
                format_instant(row.received_at),
                format_instant(row.step_due_at) if row.step_due_at else "",
                format_instant(row.handed_over_at) if row.handed_over_at else "",
                row.result,
                "",
                "",
            )
            for i, row in enumerate(form.rows, start=1)
        ],
        widths=(4, 16, 16, 13, 13, 13, 13, 6, 6),
        align=("CENTER", "LEFT", "LEFT", "LEFT", "LEFT", "LEFT", "LEFT", "CENTER", "CENTER"),
        size=9,
    )
    write_lookup(pdf, form.lookup_url)
    return output_pdf(pdf)


# ---- a case's forms ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormContext:
    """What the forms print besides the case: names of the issuing bodies and the applicant's lookup link."""

    one_stop_name: str
    unit_names: dict[str, str]
    lookup_url: str


def _agency(case: store.Case, ctx: FormContext) -> Agency:
    unit = case.receiving_unit or case.unit
    return Agency(name=ctx.one_stop_name, parent=ctx.unit_names.get(unit, unit))


def _procedure(case: store.Case) -> Procedure:
    return Procedure(name=case.procedure_name, code=case.procedure_code)


def supplement_request_form(case: store.Case, ctx: FormContext) -> forms.SupplementRequestForm | None:
    """Form 02 of the case's latest supplement request (from appraisal); None when none was requested."""
    if case.supplement_requested_at is None:
        return None
    reason = case.supplement_reason or ""
    items = tuple(forms.SupplementItem(content=i, reason=reason) for i in case.supplement_items or []) or (
        forms.SupplementItem(content=reason, reason=reason),
    )
    return forms.SupplementRequestForm(
        agency=_agency(case, ctx),
        dossier_code=case.code,
        lookup_url=ctx.lookup_url,
        applicant=Applicant(name=case.applicant_name),
        procedure=_procedure(case),
        stage=forms.SupplementStage.APPRAISAL,
        items=items,
        issued_at=case.supplement_requested_at,
        officer=Officer(name=case.supplement_requested_by or ""),
        received_at=case.received_at,
    )


def apology_form(case: store.Case, ctx: FormContext) -> ApologyForm | None:
    """Form 04 of the case's apology; None when no apology was issued."""
    if case.apology_issued_at is None or case.due_at_rescheduled is None or case.due_at is None:
        return None
    return ApologyForm(
        agency=_agency(case, ctx),
        dossier_code=case.code,
        lookup_url=ctx.lookup_url,
        applicant=Applicant(name=case.applicant_name),
        procedure=_procedure(case),
        received_at=case.received_at,
        original_appointment_at=case.due_at,
        new_appointment_at=case.due_at_rescheduled,
        reason=case.apology_reason or "",
        issued_at=case.apology_issued_at,
        signer=Officer(name=case.apology_by or ""),
    )


def control_slip_form(case: store.Case, steps: list[store.CaseStep], ctx: FormContext) -> ControlSlipForm:
    """Form 05: every hand-over of the case so far."""
    handovers = tuple(
        HandOver(
            from_unit=r.from_unit or "",
            from_officer=r.from_officer or "",
            to_unit=r.to_unit or "Người nộp hồ sơ",
            to_officer=r.to_officer or "",
            received_at=r.handed_at,
            step_due_at=r.step_due_at,
            handed_over_at=r.completed_at,
            result=" ".join(filter(None, [r.note, "(trễ hạn)" if r.late else None])),
        )
        for r in steps
    )
    return ControlSlipForm(
        agency=_agency(case, ctx),
        dossier_code=case.code,
        lookup_url=ctx.lookup_url,
        applicant=Applicant(name=case.applicant_name),
        procedure=_procedure(case),
        received_at=case.received_at,
        appointment_at=case.due_at_original or case.received_at,
        rows=handovers,
    )
