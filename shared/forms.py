"""One-stop forms (DOMAIN §1.3, Circular 01/2018/TT-VPCP appendix) rendered as PDF bytes.

Pure rendering: each form is a frozen dataclass, each ``render_*`` function returns the PDF as
bytes, and the only I/O is reading the packaged font. The same input gives the same bytes (the
PDF creation date is the form's own date, not the clock).

- Text is set in Be Vietnam Pro (OFL-1.1, from the ``fontpkg-be-vietnam-pro`` wheel), embedded
  and subset, so diacritics survive printing and text extraction. Input is NFC-normalised first:
  a decomposed "ễ" (e + two combining marks) would otherwise print as loose marks.
- Every form carries the dossier code (title band and every page's footer) and a QR code of the
  public lookup link the caller passes in (``lookup_url``).
- The applicant's ID number is printed masked (last 3 digits only) and left out of ``repr``.
- Datetimes must be timezone-aware; they are printed in Asia/Ho_Chi_Minh as
  "08 giờ 05 phút, ngày 03 tháng 02 năm 2026". Dates follow Decree 30/2020 (Appendix I): a day
  below 10 and the months 1 and 2 take a leading zero, other months do not ("ngày 05 tháng 3").

Rendering is CPU-bound (about 0.2 s a form, mostly font subsetting): call it from async code
through ``asyncio.to_thread``.

Form 06 (Sổ theo dõi hồ sơ) is a register, not a slip handed to anyone; it is not rendered here.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path

import fontpkg
import segno
from fpdf import FPDF
from fpdf.fonts import FontFace

from shared.clock import VN_TZ

__all__ = [
    "Agency",
    "ApologyForm",
    "Applicant",
    "ControlSlipForm",
    "DocumentKind",
    "FeeReceiptForm",
    "HandOver",
    "Officer",
    "PaymentMethod",
    "Procedure",
    "ReceiptForm",
    "ReceiptLine",
    "ReceivedDocument",
    "RefusalForm",
    "ReturnMethod",
    "SupplementItem",
    "SupplementRequestForm",
    "SupplementStage",
    "amount_in_words",
    "format_date",
    "format_instant",
    "format_vnd",
    "lookup_qr",
    "mask_id_number",
    "render_apology",
    "render_control_slip",
    "render_fee_receipt",
    "render_receipt",
    "render_refusal",
    "render_supplement_request",
]

FONT_FAMILY = "Be Vietnam Pro"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"

# Circular 01/2018/TT-VPCP numbering and names (Circular 03/2025 renumbers; see DOMAIN §1.3).
RECEIPT_TITLE = "Giấy tiếp nhận hồ sơ và hẹn trả kết quả"
SUPPLEMENT_TITLE = "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ"
REFUSAL_TITLE = "Phiếu từ chối tiếp nhận giải quyết hồ sơ"
APOLOGY_TITLE = "Phiếu xin lỗi và hẹn lại ngày trả kết quả"
CONTROL_SLIP_TITLE = "Phiếu kiểm soát quá trình giải quyết hồ sơ"
# The electronic fee receipt (DOMAIN §5.2; Decree 123/2020/NĐ-CP, Circular 78/2021/TT-BTC: verify the layout).
FEE_RECEIPT_TITLE = "Biên lai thu phí, lệ phí"

_LINE = 6.0  # body line height, mm
_BODY_PT = 11
_QR_MM = 26.0
_BLACK = (0, 0, 0)
_HEADING_FILL = (235, 235, 235)


# --- inputs ---------------------------------------------------------------------------------


def _check_aware(obj: object) -> None:
    """Refuse naive datetimes in a form's fields: they would print in an unknown zone."""
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(f"{type(obj).__name__}.{f.name} must be timezone-aware")


@dataclass(frozen=True, kw_only=True)
class Agency:
    """The issuing body as printed in the top-left header.

    ``parent`` is the governing body ("UBND PHƯỜNG BẾN NGHÉ"), ``name`` the unit itself ("Bộ phận
    Tiếp nhận và Trả kết quả"), ``place`` the place name before the date ("Phường Bến Nghé").
    """

    name: str
    parent: str = ""
    place: str = ""


@dataclass(frozen=True, kw_only=True)
class Applicant:
    """The person who filed the dossier. The ID number is printed masked and kept out of repr."""

    name: str
    id_number: str = field(default="", repr=False)
    address: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, kw_only=True)
class Procedure:
    """An administrative procedure (TTHC) and its code (mã TTHC, e.g. "1.004194")."""

    name: str
    code: str


@dataclass(frozen=True, kw_only=True)
class Officer:
    """A signer. ``title`` (chức danh), when given, replaces the form's default signer caption."""

    name: str
    title: str = ""


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

    def __post_init__(self) -> None:
        _check_aware(self)
        if self.sets < 1:
            raise ValueError("a dossier has at least one set")


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

    def __post_init__(self) -> None:
        _check_aware(self)
        if not self.items:
            raise ValueError("a supplement request names at least one item")


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

    def __post_init__(self) -> None:
        _check_aware(self)
        if not self.reason.strip():
            raise ValueError("a refusal states its reason")


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
        _check_aware(self)
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
        _check_aware(self)


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
        _check_aware(self)


class PaymentMethod(StrEnum):
    """How a fee was paid."""

    CASH = "CASH"
    TRANSFER = "TRANSFER"
    ONLINE = "ONLINE"


_PAYMENT_METHOD_LABEL = {
    PaymentMethod.CASH: "Tiền mặt tại Bộ phận Một cửa",
    PaymentMethod.TRANSFER: "Chuyển khoản (VietQR)",
    PaymentMethod.ONLINE: "Thanh toán trực tuyến",
}


@dataclass(frozen=True, kw_only=True)
class ReceiptLine:
    """One fee or charge collected: its name, how many, and the line's amount in whole VND."""

    name: str
    amount: int
    quantity: int = 1

    def __post_init__(self) -> None:
        if self.amount < 0 or self.quantity < 1:
            raise ValueError("a receipt line has an amount of at least 0 and a quantity of at least 1")


@dataclass(frozen=True, kw_only=True)
class FeeReceiptForm:
    """Biên lai thu phí, lệ phí: what was collected for a dossier, from whom, how and when."""

    agency: Agency
    dossier_code: str
    lookup_url: str
    receipt_number: str
    payer: Applicant
    procedure: Procedure
    lines: tuple[ReceiptLine, ...]
    paid_at: datetime
    method: PaymentMethod
    collector: Officer
    transaction_id: str = ""
    refunded_at: datetime | None = None
    refund_reason: str = ""

    def __post_init__(self) -> None:
        _check_aware(self)
        if not self.lines:
            raise ValueError("a receipt lists at least one line")
        if self.total <= 0:
            raise ValueError("a receipt is for a positive amount")
        if not self.receipt_number.strip():
            raise ValueError("a receipt has a number")

    @property
    def total(self) -> int:
        """Sum of the lines, VND."""
        return sum(line.amount for line in self.lines)


# --- small pure helpers ---------------------------------------------------------------------


def mask_id_number(id_number: str) -> str:
    """Show only the last 3 characters of an ID number: "079201001234" -> "*********234".

    Spaces are dropped first; a value of 3 characters or fewer is masked entirely.
    """
    compact = "".join(id_number.split())
    if len(compact) <= 3:
        return "*" * len(compact)
    return "*" * (len(compact) - 3) + compact[-3:]


def _vn(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("datetimes printed on forms must be timezone-aware")
    return at.astimezone(VN_TZ)


def format_date(day: date | datetime) -> str:
    """ "ngày 03 tháng 02 năm 2026" / "ngày 15 tháng 3 năm 2026" (Decree 30/2020 zero-padding).

    A datetime is first moved to Vietnam time.
    """
    if isinstance(day, datetime):
        day = _vn(day).date()
    month = f"{day.month:02d}" if day.month <= 2 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


def format_instant(at: datetime) -> str:
    """ "08 giờ 05 phút, ngày 03 tháng 02 năm 2026", in Asia/Ho_Chi_Minh."""
    local = _vn(at)
    return f"{local.hour:02d} giờ {local.minute:02d} phút, {format_date(local)}"


def format_vnd(amount: int) -> str:
    """ "15.000": whole đồng with dots between thousands, as Vietnamese documents print money."""
    return f"{amount:,}".replace(",", ".")


_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_GROUPS = ("", "nghìn", "triệu", "tỷ", "nghìn tỷ", "triệu tỷ")


def _three_digits(n: int, *, full: bool) -> list[str]:
    """Words of 0-999; ``full`` reads the hundreds and "linh" even when zero (a group after a larger one)."""
    hundreds, tens, ones = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if full or hundreds:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if ones and words:
            words.append("linh")
    elif tens == 1:
        words.append("mười")
    else:
        words += [_DIGITS[tens], "mươi"]
    if ones == 1 and tens > 1:
        words.append("mốt")
    elif ones == 4 and tens > 1:
        words.append("tư")
    elif ones == 5 and tens > 0:
        words.append("lăm")
    elif ones:
        words.append(_DIGITS[ones])
    return words


def amount_in_words(amount: int) -> str:
    """The amount as receipts write it: 15000 → "Mười lăm nghìn đồng", 1250000 → "Một triệu hai trăm năm mươi nghìn đồng"."""
    if amount < 0 or amount >= 1000 ** len(_GROUPS):
        raise ValueError("amount out of range")
    if amount == 0:
        return "Không đồng"
    groups = []
    rest = amount
    while rest:
        groups.append(rest % 1000)
        rest //= 1000
    words: list[str] = []
    for index in range(len(groups) - 1, -1, -1):
        value = groups[index]
        if value == 0:
            continue
        words += _three_digits(value, full=bool(words))
        if _GROUPS[index]:
            words.append(_GROUPS[index])
    text = " ".join(words) + " đồng"
    return text[0].upper() + text[1:]


def lookup_qr(url: str) -> segno.QRCode:
    """The QR code printed on every form: the public lookup link, error correction M."""
    return segno.make_qr(url, error="m", boost_error=False)


def _qr_png(url: str) -> io.BytesIO:
    out = io.BytesIO()
    lookup_qr(url).save(out, kind="png", scale=8, border=4)
    out.seek(0)
    return out


@cache
def _font_files() -> dict[str, Path]:
    """fpdf2 style -> TTF path of Be Vietnam Pro, as installed by its wheel."""
    return {
        "": fontpkg.path(FONT_FAMILY, weight=400),
        "B": fontpkg.path(FONT_FAMILY, weight=700),
        "I": fontpkg.path(FONT_FAMILY, weight=400, style="italic"),
    }


# --- shared layout --------------------------------------------------------------------------


class _FormPdf(FPDF):
    """An A4 page with the form's name, dossier code and page number in every footer."""

    def __init__(self, *, number: str, title: str, dossier_code: str, landscape: bool = False):
        super().__init__(orientation="L" if landscape else "P", unit="mm", format="A4")
        self._footer = f"Mẫu số {number} – {title} – Mã hồ sơ: {dossier_code}"
        self.set_margins(left=20, top=15, right=15)
        self.set_auto_page_break(auto=True, margin=18)
        for style, path in _font_files().items():
            self.add_font(FONT_FAMILY, style=style, fname=path)
        self.set_font(FONT_FAMILY, size=_BODY_PT)
        self.set_text_color(*_BLACK)
        self.set_lang("vi")
        self.set_creator("motcua")
        self.set_title(title)
        self.set_subject(dossier_code)

    def normalize_text(self, text: str) -> str:
        """Compose diacritics (NFC) before fpdf2 maps characters to glyphs."""
        return super().normalize_text(unicodedata.normalize("NFC", text))

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FONT_FAMILY, style="I", size=8)
        self.multi_cell(0, 4, f"{self._footer} – Trang {self.page_no()}/{{nb}}", align="C")


def _start(
    pdf: _FormPdf, *, agency: Agency, title: str, dossier_code: str, url: str, issued: datetime
) -> None:
    """First page: two-column header, place and date, title band with the code and the QR."""
    pdf.set_creation_date(issued)
    pdf.set_author(agency.name)
    pdf.add_page()
    left_w = pdf.epw * 0.42
    right_w = pdf.epw - left_w
    top = pdf.t_margin
    x0 = pdf.l_margin

    pdf.set_xy(x0, top)
    pdf.set_font(FONT_FAMILY, size=10)
    if agency.parent:
        pdf.multi_cell(left_w, 5, agency.parent.upper(), align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, style="B", size=10)
    pdf.multi_cell(left_w, 5, agency.name.upper(), align="C", new_x="LEFT", new_y="NEXT")
    left_bottom = pdf.get_y()
    _rule(pdf, x0 + left_w / 2, left_bottom + 0.8, left_w / 3)

    pdf.set_xy(x0 + left_w, top)
    pdf.set_font(FONT_FAMILY, style="B", size=10)
    pdf.multi_cell(right_w, 5, NATION, align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, style="B", size=10.5)
    pdf.multi_cell(right_w, 5, MOTTO, align="C", new_x="LEFT", new_y="NEXT")
    motto_bottom = pdf.get_y()
    _rule(pdf, x0 + left_w + right_w / 2, motto_bottom + 0.8, pdf.get_string_width(MOTTO))

    dated = format_date(issued)
    dated = f"{agency.place}, {dated}" if agency.place else dated[0].upper() + dated[1:]
    pdf.set_xy(x0 + left_w, motto_bottom + 3)
    pdf.set_font(FONT_FAMILY, style="I", size=10.5)
    pdf.multi_cell(right_w, 5, dated, align="C")

    band_top = max(left_bottom, pdf.get_y()) + 4
    qr_x = pdf.w - pdf.r_margin - _QR_MM
    pdf.image(_qr_png(url), x=qr_x, y=band_top, w=_QR_MM, h=_QR_MM)
    pdf.set_xy(qr_x - 4, band_top + _QR_MM)
    pdf.set_font(FONT_FAMILY, size=7)
    pdf.cell(_QR_MM + 8, 3.5, "Quét mã để tra cứu hồ sơ", align="C")

    inset = _QR_MM + 4
    pdf.set_xy(x0 + inset, band_top + 4)
    pdf.set_font(FONT_FAMILY, style="B", size=13)
    pdf.multi_cell(pdf.epw - 2 * inset, 6.5, title.upper(), align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_y(pdf.get_y() + 1.5)
    pdf.set_x(x0 + inset)
    pdf.set_font(FONT_FAMILY, style="B", size=11.5)
    pdf.multi_cell(pdf.epw - 2 * inset, 6, f"Mã hồ sơ: {dossier_code}", align="C")
    pdf.set_y(max(pdf.get_y(), band_top + _QR_MM + 3.5) + 4)
    pdf.set_font(FONT_FAMILY, size=_BODY_PT)


def _rule(pdf: FPDF, center_x: float, y: float, width: float) -> None:
    pdf.set_line_width(0.3)
    pdf.line(center_x - width / 2, y, center_x + width / 2, y)


def _field(pdf: FPDF, label: str, value: str, *, bold: bool = False) -> None:
    """ "Label: value" as flowing text, the value optionally bold; "—" when empty."""
    pdf.set_x(pdf.l_margin)
    pdf.set_font(FONT_FAMILY, size=_BODY_PT)
    pdf.write(_LINE, f"{label}: ")
    pdf.set_font(FONT_FAMILY, style="B" if bold else "", size=_BODY_PT)
    pdf.write(_LINE, value or "—")
    pdf.set_font(FONT_FAMILY, size=_BODY_PT)
    pdf.ln(_LINE)


def _paragraph(pdf: FPDF, text: str, *, style: str = "", indent: float = 0) -> None:
    pdf.set_font(FONT_FAMILY, style=style, size=_BODY_PT)
    pdf.set_x(pdf.l_margin + indent)
    pdf.multi_cell(pdf.epw - indent, _LINE, text, align="J", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=_BODY_PT)


def _applicant_lines(pdf: FPDF, applicant: Applicant) -> None:
    _field(pdf, "Họ và tên người nộp hồ sơ", applicant.name, bold=True)
    if applicant.id_number:
        _field(pdf, "Số định danh cá nhân", mask_id_number(applicant.id_number))
    _field(pdf, "Địa chỉ", applicant.address)
    _field(pdf, "Số điện thoại", applicant.phone)
    _field(pdf, "Thư điện tử", applicant.email)


def _procedure_line(pdf: FPDF, procedure: Procedure) -> None:
    _field(pdf, "Thủ tục hành chính", f"{procedure.name} (mã TTHC: {procedure.code})", bold=True)


def _lookup_line(pdf: FPDF, url: str) -> None:
    pdf.ln(1)
    pdf.set_font(FONT_FAMILY, style="I", size=9.5)
    pdf.set_x(pdf.l_margin)
    pdf.write(5, "Tra cứu tình trạng hồ sơ tại: ")
    pdf.write(5, url, link=url)
    pdf.ln(5)
    pdf.set_font(FONT_FAMILY, size=_BODY_PT)


def _signature(pdf: FPDF, role: str, signer: Officer) -> None:
    """The signer's block on the right half: caption, hint, room to sign, name."""
    height = 42
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(4)
    x = pdf.l_margin + pdf.epw / 2
    w = pdf.epw / 2
    pdf.set_x(x)
    pdf.set_font(FONT_FAMILY, style="B", size=_BODY_PT)
    pdf.multi_cell(w, _LINE, (signer.title or role).upper(), align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, style="I", size=9.5)
    pdf.multi_cell(w, 5, "(Ký và ghi rõ họ tên)", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_y(pdf.get_y() + 20)
    pdf.set_x(x)
    pdf.set_font(FONT_FAMILY, style="B", size=_BODY_PT)
    pdf.multi_cell(w, _LINE, signer.name, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=_BODY_PT)


def _table(
    pdf: FPDF,
    headings: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    widths: Sequence[float],
    align: Sequence[str],
    size: float = 10,
) -> None:
    pdf.set_font(FONT_FAMILY, size=size)
    heading_style = FontFace(family=FONT_FAMILY, emphasis="BOLD", fill_color=_HEADING_FILL)
    with pdf.table(
        col_widths=tuple(widths),
        text_align=tuple(align),
        headings_style=heading_style,
        line_height=size * 0.5,
        padding=1.2,
        repeat_headings=1,
    ) as table:
        head = table.row()
        for text in headings:
            head.cell(text, align="CENTER")
        for values in rows:
            row = table.row()
            for text in values:
                row.cell(text)
    pdf.set_font(FONT_FAMILY, size=_BODY_PT)
    pdf.ln(2)


def _output(pdf: FPDF) -> bytes:
    return bytes(pdf.output())


# --- the forms ------------------------------------------------------------------------------


def render_receipt(form: ReceiptForm) -> bytes:
    """Form 01: Giấy tiếp nhận hồ sơ và hẹn trả kết quả."""
    pdf = _FormPdf(number="01", title=RECEIPT_TITLE, dossier_code=form.dossier_code)
    _start(
        pdf,
        agency=form.agency,
        title=RECEIPT_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.received_at,
    )
    _paragraph(pdf, f"{form.agency.name} đã tiếp nhận hồ sơ của:")
    _applicant_lines(pdf, form.applicant)
    _procedure_line(pdf, form.procedure)
    _paragraph(pdf, "1. Thành phần hồ sơ đã nhận:")
    _table(
        pdf,
        ("TT", "Tên giấy tờ", "Hình thức", "Số lượng"),
        [
            (str(i), doc.name, _DOCUMENT_KIND_LABEL[doc.kind], str(doc.count))
            for i, doc in enumerate(form.documents, start=1)
        ],
        widths=(7, 57, 24, 12),
        align=("CENTER", "LEFT", "LEFT", "CENTER"),
    )
    _field(pdf, "2. Số lượng hồ sơ", f"{form.sets:02d} bộ")
    _field(pdf, "3. Thời gian nhận hồ sơ", format_instant(form.received_at))
    _field(
        pdf,
        "4. Thời gian trả kết quả giải quyết hồ sơ",
        format_instant(form.appointment_at),
        bold=True,
    )
    _field(pdf, "5. Đăng ký nhận kết quả", _RETURN_METHOD_LABEL[form.return_method])
    _lookup_line(pdf, form.lookup_url)
    _signature(pdf, "Người tiếp nhận hồ sơ", form.officer)
    return _output(pdf)


def render_supplement_request(form: SupplementRequestForm) -> bytes:
    """Form 02: Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ."""
    pdf = _FormPdf(number="02", title=SUPPLEMENT_TITLE, dossier_code=form.dossier_code)
    _start(
        pdf,
        agency=form.agency,
        title=SUPPLEMENT_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.issued_at,
    )
    _field(pdf, "Hồ sơ của", form.applicant.name, bold=True)
    _procedure_line(pdf, form.procedure)
    if form.received_at is not None:
        _field(pdf, "Thời gian tiếp nhận hồ sơ", format_instant(form.received_at))
    _paragraph(pdf, _SUPPLEMENT_FINDING[form.stage])
    _paragraph(pdf, "Đề nghị Ông/Bà bổ sung, hoàn thiện hồ sơ gồm những nội dung sau:")
    for i, item in enumerate(form.items, start=1):
        _paragraph(pdf, f"{i}. {item.content}", indent=4)
        _paragraph(pdf, f"Lý do: {item.reason}", style="I", indent=9)
    contact = f", số điện thoại {form.contact_phone}" if form.contact_phone else ""
    _paragraph(
        pdf,
        "Trong quá trình hoàn thiện hồ sơ, nếu có vướng mắc, Ông/Bà liên hệ "
        f"{form.officer.name}{contact} để được hướng dẫn.",
    )
    _lookup_line(pdf, form.lookup_url)
    _signature(pdf, "Người hướng dẫn", form.officer)
    return _output(pdf)


def render_refusal(form: RefusalForm) -> bytes:
    """Form 03: Phiếu từ chối tiếp nhận giải quyết hồ sơ."""
    pdf = _FormPdf(number="03", title=REFUSAL_TITLE, dossier_code=form.dossier_code)
    _start(
        pdf,
        agency=form.agency,
        title=REFUSAL_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.issued_at,
    )
    _paragraph(pdf, f"{form.agency.name} đã nhận hồ sơ của:")
    _field(pdf, "Họ và tên", form.applicant.name, bold=True)
    _field(pdf, "Địa chỉ", form.applicant.address)
    _procedure_line(pdf, form.procedure)
    _paragraph(
        pdf,
        "Sau khi xem xét, đối chiếu với quy định, hồ sơ không đủ điều kiện để tiếp nhận, "
        "giải quyết vì lý do sau:",
    )
    _paragraph(pdf, form.reason, indent=4)
    _paragraph(pdf, "Xin thông báo để Ông/Bà được biết và thực hiện./.")
    _lookup_line(pdf, form.lookup_url)
    _signature(pdf, "Người tiếp nhận hồ sơ", form.officer)
    return _output(pdf)


def render_apology(form: ApologyForm) -> bytes:
    """Form 04: Phiếu xin lỗi và hẹn lại ngày trả kết quả."""
    pdf = _FormPdf(number="04", title=APOLOGY_TITLE, dossier_code=form.dossier_code)
    _start(
        pdf,
        agency=form.agency,
        title=APOLOGY_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.issued_at,
    )
    pdf.set_font(FONT_FAMILY, style="B", size=_BODY_PT)
    pdf.cell(
        0,
        _LINE,
        f"Kính gửi: Ông/Bà {form.applicant.name}",
        align="C",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    agency = form.agency.name
    _paragraph(
        pdf,
        f"{agency} đã tiếp nhận hồ sơ của Ông/Bà đề nghị giải quyết thủ tục {form.procedure.name} "
        f"(mã TTHC: {form.procedure.code}) vào lúc {format_instant(form.received_at)}.",
    )
    _field(pdf, "Thời gian hẹn trả kết quả", format_instant(form.original_appointment_at))
    _paragraph(
        pdf,
        f"Tuy nhiên, đến nay {agency} chưa trả được kết quả giải quyết hồ sơ của Ông/Bà đúng hẹn.",
    )
    _field(pdf, "Lý do", form.reason)
    _paragraph(
        pdf,
        f"Sự chậm trễ này đã gây phiền hà cho Ông/Bà. {agency} xin lỗi Ông/Bà và hẹn trả "
        "kết quả giải quyết hồ sơ vào:",
    )
    _field(pdf, "Thời gian hẹn trả kết quả mới", format_instant(form.new_appointment_at), bold=True)
    _paragraph(pdf, "Xin trân trọng cảm ơn./.")
    _lookup_line(pdf, form.lookup_url)
    _signature(pdf, "Thủ trưởng cơ quan", form.signer)
    return _output(pdf)


def _party(unit: str, officer: str) -> str:
    return f"{unit}\n{officer}" if officer else unit


def render_control_slip(form: ControlSlipForm) -> bytes:
    """Form 05: Phiếu kiểm soát quá trình giải quyết hồ sơ (A4 landscape, one row per hand-over)."""
    pdf = _FormPdf(
        number="05", title=CONTROL_SLIP_TITLE, dossier_code=form.dossier_code, landscape=True
    )
    _start(
        pdf,
        agency=form.agency,
        title=CONTROL_SLIP_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.received_at,
    )
    _field(pdf, "Người nộp hồ sơ", form.applicant.name, bold=True)
    _procedure_line(pdf, form.procedure)
    _field(pdf, "Thời gian tiếp nhận hồ sơ", format_instant(form.received_at))
    _field(pdf, "Thời gian hẹn trả kết quả", format_instant(form.appointment_at), bold=True)
    pdf.ln(2)
    _table(
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
    _lookup_line(pdf, form.lookup_url)
    return _output(pdf)


def render_fee_receipt(form: FeeReceiptForm) -> bytes:
    """Biên lai thu phí, lệ phí: the lines collected, the total in figures and in words, how and when it was paid."""
    pdf = _FormPdf(number="", title=FEE_RECEIPT_TITLE, dossier_code=form.dossier_code)
    pdf._footer = f"{FEE_RECEIPT_TITLE} số {form.receipt_number} – Mã hồ sơ: {form.dossier_code}"
    _start(
        pdf,
        agency=form.agency,
        title=FEE_RECEIPT_TITLE,
        dossier_code=form.dossier_code,
        url=form.lookup_url,
        issued=form.paid_at,
    )
    _field(pdf, "Số biên lai", form.receipt_number, bold=True)
    _field(pdf, "Họ và tên người nộp tiền", form.payer.name, bold=True)
    if form.payer.address:
        _field(pdf, "Địa chỉ", form.payer.address)
    _procedure_line(pdf, form.procedure)
    _table(
        pdf,
        ("TT", "Nội dung thu", "Số lượng", "Thành tiền (đồng)"),
        [
            (str(i), line.name, str(line.quantity), format_vnd(line.amount))
            for i, line in enumerate(form.lines, start=1)
        ],
        widths=(7, 59, 12, 22),
        align=("CENTER", "LEFT", "CENTER", "RIGHT"),
    )
    _field(pdf, "Tổng số tiền", f"{format_vnd(form.total)} đồng", bold=True)
    _field(pdf, "Số tiền bằng chữ", amount_in_words(form.total))
    _field(pdf, "Hình thức thanh toán", _PAYMENT_METHOD_LABEL[form.method])
    if form.transaction_id:
        _field(pdf, "Mã giao dịch", form.transaction_id)
    _field(pdf, "Thời điểm thu tiền", format_instant(form.paid_at))
    if form.refunded_at is not None:
        note = f"Đã hoàn trả toàn bộ số tiền vào lúc {format_instant(form.refunded_at)}."
        if form.refund_reason:
            note += f" Lý do: {form.refund_reason}"
        _paragraph(pdf, note, style="I")
    _lookup_line(pdf, form.lookup_url)
    _signature(pdf, "Người thu tiền", form.collector)
    return _output(pdf)
