"""Workflow's printed forms: 02 from appraisal (shared with intake), 04 (the apology), the stop notice, the control slip.

The form definitions and their drawing, and how a case fills each of them. Every form is printed in the version of its
dossier (the rules recorded at reception, ``shared.rules``), whatever is in force today: under Circular 01/2018 Form 04 is
"Phiếu xin lỗi và hẹn lại ngày trả kết quả" and the control slip is Form 05; under Circular 03/2025 Form 04 is "Văn bản
xin lỗi và đề nghị gia hạn thời gian giải quyết", the stop notice ("Thông báo dừng giải quyết hồ sơ") is Form 05 and
the control slip Form 06. A regime without a form (the stop notice before 2025) does not print it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.workflow import store
from shared import forms
from shared.pdf import (
    BODY_PT,
    FONT_FAMILY,
    LINE,
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
    write_table,
)
from shared.rules import FormKey, FormSpec, Rules

if TYPE_CHECKING:
    from fpdf import FPDF
from shared.vntext import format_instant

# Circular 01/2018/TT-VPCP numbering and names (DOMAIN §1.3): what a form prints when its dossier's rules do not say.
APOLOGY_TITLE = "Phiếu xin lỗi và hẹn lại ngày trả kết quả"
CONTROL_SLIP_TITLE = "Phiếu kiểm soát quá trình giải quyết hồ sơ"
STOP_NOTICE_TITLE = "Thông báo dừng giải quyết hồ sơ"


@dataclass(frozen=True, kw_only=True)
class ApologyForm:
    """Form 04: the apology and the new date (its title and number from the dossier's rules)."""

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
    number: str = "04"
    title: str = APOLOGY_TITLE

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
    """The control slip (Phiếu kiểm soát quá trình giải quyết hồ sơ), one row per hand-over: Form 05 or 06."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    applicant: Applicant
    procedure: Procedure
    received_at: datetime
    appointment_at: datetime
    rows: tuple[HandOver, ...]
    number: str = "05"
    title: str = CONTROL_SLIP_TITLE

    def __post_init__(self) -> None:
        check_aware(self)


@dataclass(frozen=True, kw_only=True)
class StopNoticeForm:
    """Form 05 of Circular 03/2025: Thông báo dừng giải quyết hồ sơ."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    applicant: Applicant
    procedure: Procedure
    unit: str  # the unit that was processing the dossier, by name when known
    received_at: datetime
    stopped_at: datetime
    reason: str
    officer: Officer
    number: str = "05"
    title: str = STOP_NOTICE_TITLE

    def __post_init__(self) -> None:
        check_aware(self)
        if not self.reason.strip():
            raise ValueError("a stop notice states why processing stopped")


def _start_letter(
    *, number: str, title: str, agency: Agency, dossier_code: str, url: str, issued: datetime, applicant: Applicant,
    procedure: Procedure, received_at: datetime,
) -> FPDF:
    """A letter to the applicant (Forms 04 and 05): the heading, the addressee and what was received when."""
    pdf = form_pdf(number=number, title=title, dossier_code=dossier_code)
    start_form(pdf, agency=agency, title=title, dossier_code=dossier_code, url=url, issued=issued)
    pdf.set_font(FONT_FAMILY, style="B", size=BODY_PT)
    pdf.cell(0, LINE, f"Kính gửi: Ông/Bà {applicant.name}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    write_paragraph(
        pdf,
        f"{agency.name} đã tiếp nhận hồ sơ của Ông/Bà đề nghị giải quyết thủ tục {procedure.name} "
        f"(mã TTHC: {procedure.code}) vào lúc {format_instant(received_at)}.",
    )
    return pdf


def render_apology(form: ApologyForm) -> bytes:
    """Form 04: the apology and the new date, titled as the dossier's rules name it."""
    pdf = _start_letter(
        number=form.number, title=form.title, agency=form.agency, dossier_code=form.dossier_code, url=form.lookup_url,
        issued=form.issued_at, applicant=form.applicant, procedure=form.procedure, received_at=form.received_at,
    )  # fmt: skip
    agency = form.agency.name
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


def render_stop_notice(form: StopNoticeForm) -> bytes:
    """Form 05 of Circular 03/2025: Thông báo dừng giải quyết hồ sơ."""
    pdf = _start_letter(
        number=form.number, title=form.title, agency=form.agency, dossier_code=form.dossier_code, url=form.lookup_url,
        issued=form.stopped_at, applicant=form.applicant, procedure=form.procedure, received_at=form.received_at,
    )  # fmt: skip
    write_field(pdf, "Mã hồ sơ", form.dossier_code, bold=True)
    write_field(pdf, "Cơ quan giải quyết", form.unit)
    write_paragraph(pdf, f"{form.unit} thông báo dừng giải quyết hồ sơ của Ông/Bà kể từ {format_instant(form.stopped_at)}.")
    write_field(pdf, "Lý do", form.reason)
    write_paragraph(pdf, "Ông/Bà có thể liên hệ Bộ phận Một cửa để biết thêm chi tiết. Xin trân trọng thông báo./.")
    write_lookup(pdf, form.lookup_url)
    write_signature(pdf, "Người thông báo", form.officer)
    return output_pdf(pdf)


def render_control_slip(form: ControlSlipForm) -> bytes:
    """The control slip: Phiếu kiểm soát quá trình giải quyết hồ sơ (A4 landscape, one row per hand-over)."""
    pdf = form_pdf(number=form.number, title=form.title, dossier_code=form.dossier_code, landscape=True)
    start_form(
        pdf,
        agency=form.agency,
        title=form.title,
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
    """What the forms print besides the case: names of the issuing bodies, the applicant's lookup link, and the
    dossier's rules (which number and title each form has, and which forms exist)."""

    one_stop_name: str
    unit_names: dict[str, str]
    lookup_url: str
    rules: Rules | None = None

    def spec(self, key: FormKey, number: str, title: str) -> FormSpec | None:
        """The form's number and title in the dossier's rules (without rules: the given ones); None when the
        dossier's regime has no such form."""
        if self.rules is None:
            return FormSpec(number=number, title=title)
        return self.rules.form(key)


def _agency(case: store.Case, ctx: FormContext) -> Agency:
    unit = case.receiving_unit or case.unit
    return Agency(name=ctx.one_stop_name, parent=ctx.unit_names.get(unit, unit))


def _about(case: store.Case, ctx: FormContext, spec: FormSpec) -> dict[str, Any]:
    """What every form of the case prints about it: number and title in its rules, the one-stop, the dossier."""
    return {
        "number": spec.number,
        "title": spec.title,
        "agency": _agency(case, ctx),
        "dossier_code": case.code,
        "lookup_url": ctx.lookup_url,
        "applicant": Applicant(name=case.applicant_name),
        "procedure": Procedure(name=case.procedure_name, code=case.procedure_code),
        "received_at": case.received_at,
    }


def supplement_request_form(case: store.Case, ctx: FormContext) -> forms.SupplementRequestForm | None:
    """Form 02 of the case's latest supplement request (from appraisal); None when none was requested."""
    spec = ctx.spec("supplement", "02", forms.SUPPLEMENT_TITLE)
    if spec is None or case.supplement_requested_at is None:
        return None
    reason = case.supplement_reason or ""
    items = tuple(forms.SupplementItem(content=i, reason=reason) for i in case.supplement_items or []) or (
        forms.SupplementItem(content=reason, reason=reason),
    )
    return forms.SupplementRequestForm(
        **_about(case, ctx, spec),
        stage=forms.SupplementStage.APPRAISAL,
        items=items,
        issued_at=case.supplement_requested_at,
        officer=Officer(name=case.supplement_requested_by or ""),
    )


def apology_form(case: store.Case, ctx: FormContext) -> ApologyForm | None:
    """Form 04 of the case's apology; None when no apology was issued."""
    spec = ctx.spec("apology", "04", APOLOGY_TITLE)
    if spec is None or case.apology_issued_at is None or case.due_at_rescheduled is None or case.due_at is None:
        return None
    return ApologyForm(
        **_about(case, ctx, spec),
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
    spec = ctx.spec("control", "05", CONTROL_SLIP_TITLE) or FormSpec(number="05", title=CONTROL_SLIP_TITLE)
    return ControlSlipForm(
        **_about(case, ctx, spec),
        appointment_at=case.due_at_original or case.received_at,
        rows=handovers,
    )


def stop_notice_form(case: store.Case, ctx: FormContext) -> StopNoticeForm | None:
    """The stop notice of a stopped case; None when processing was not stopped or the dossier's regime has no such form."""
    spec = ctx.spec("stop", "05", STOP_NOTICE_TITLE)
    if spec is None or case.status != "stopped" or case.closed_at is None:
        return None
    return StopNoticeForm(
        **_about(case, ctx, spec),
        unit=ctx.unit_names.get(case.unit, case.unit),
        stopped_at=case.closed_at,
        reason=case.closed_reason or "",
        officer=Officer(name=case.closed_by or ""),
    )
