"""Drawing one-stop forms as PDF: the page, its header and title band with the lookup QR, fields, tables, signers.

Each form (its dataclass and ``render_*`` function) lives with the service that issues it, in that service's
``printing.py``; Form 02, which intake and workflow both issue, is in ``shared/forms.py``. This module holds
what they share. Rendering is pure: the same input gives the same bytes (the PDF creation date is the form's
own date), and the only I/O is reading the packaged font.

- Text is set in Be Vietnam Pro (OFL-1.1, from the ``fontpkg-be-vietnam-pro`` wheel), embedded and subset, so
  diacritics survive printing and text extraction. Input is NFC-normalised first: a decomposed "ễ" (e + two
  combining marks) would otherwise print as loose marks.
- Every form carries the dossier code (title band and every page's footer) and a QR code of the public lookup
  link the caller passes in.
- The applicant's ID number is printed masked (last 3 digits only) and left out of ``repr``.

Rendering is CPU-bound (about 0.2 s a form, mostly font subsetting): call it from async code through
``asyncio.to_thread``.

fpdf2 is imported by the first form a process draws, not by importing this module: with the fontTools modules it
loads it is some 36 MiB of a process's memory, which a service that has printed nothing does not need to hold.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import fontpkg
import segno

from shared.vntext import format_date, mask_id_number

if TYPE_CHECKING:
    from fpdf import FPDF

FONT_FAMILY = "Be Vietnam Pro"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"

LINE = 6.0  # body line height, mm
BODY_PT = 11
_QR_MM = 26.0
_BLACK = (0, 0, 0)
_HEADING_FILL = (235, 235, 235)


def check_aware(obj: object) -> None:
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


def lookup_qr(url: str) -> segno.QRCode:
    """The QR code printed on every form: the public lookup link, error correction M."""
    return segno.make_qr(url, error="m", boost_error=False)


def qr_png(url: str) -> io.BytesIO:
    out = io.BytesIO()
    lookup_qr(url).save(out, kind="png", scale=8, border=4)
    out.seek(0)
    return out


@cache
def font_files() -> dict[str, Path]:
    """fpdf2 style -> TTF path of Be Vietnam Pro, as installed by its wheel."""
    return {
        "": fontpkg.path(FONT_FAMILY, weight=400),
        "B": fontpkg.path(FONT_FAMILY, weight=700),
        "I": fontpkg.path(FONT_FAMILY, weight=400, style="italic"),
    }


# --- shared layout --------------------------------------------------------------------------


def form_pdf(*, number: str, title: str, dossier_code: str, landscape: bool = False, footer: str | None = None) -> FPDF:
    """An A4 page with the form's name, dossier code and page number in every footer.

    ``footer`` replaces the footer's text before the page number (default: form number, title, dossier code).
    """
    return _form_class()(
        footer=footer or f"Mẫu số {number} – {title} – Mã hồ sơ: {dossier_code}",
        title=title,
        dossier_code=dossier_code,
        landscape=landscape,
    )


@cache
def _form_class() -> type[FPDF]:
    """The FPDF subclass of every form, defined when the first form is drawn (fpdf2 imported then)."""
    from fpdf import FPDF

    class FormPdf(FPDF):
        def __init__(self, *, footer: str, title: str, dossier_code: str, landscape: bool):
            super().__init__(orientation="L" if landscape else "P", unit="mm", format="A4")
            self._footer = footer
            self.set_margins(left=20, top=15, right=15)
            self.set_auto_page_break(auto=True, margin=18)
            for style, path in font_files().items():
                self.add_font(FONT_FAMILY, style=style, fname=path)
            self.set_font(FONT_FAMILY, size=BODY_PT)
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

    return FormPdf


def start_form(
    pdf: FPDF, *, agency: Agency, title: str, dossier_code: str, url: str, issued: datetime
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
    rule(pdf, x0 + left_w / 2, left_bottom + 0.8, left_w / 3)

    pdf.set_xy(x0 + left_w, top)
    pdf.set_font(FONT_FAMILY, style="B", size=10)
    pdf.multi_cell(right_w, 5, NATION, align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, style="B", size=10.5)
    pdf.multi_cell(right_w, 5, MOTTO, align="C", new_x="LEFT", new_y="NEXT")
    motto_bottom = pdf.get_y()
    rule(pdf, x0 + left_w + right_w / 2, motto_bottom + 0.8, pdf.get_string_width(MOTTO))

    dated = format_date(issued)
    dated = f"{agency.place}, {dated}" if agency.place else dated[0].upper() + dated[1:]
    pdf.set_xy(x0 + left_w, motto_bottom + 3)
    pdf.set_font(FONT_FAMILY, style="I", size=10.5)
    pdf.multi_cell(right_w, 5, dated, align="C")

    band_top = max(left_bottom, pdf.get_y()) + 4
    qr_x = pdf.w - pdf.r_margin - _QR_MM
    pdf.image(qr_png(url), x=qr_x, y=band_top, w=_QR_MM, h=_QR_MM)
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
    pdf.set_font(FONT_FAMILY, size=BODY_PT)


def rule(pdf: FPDF, center_x: float, y: float, width: float) -> None:
    pdf.set_line_width(0.3)
    pdf.line(center_x - width / 2, y, center_x + width / 2, y)


def write_field(pdf: FPDF, label: str, value: str, *, bold: bool = False) -> None:
    """ "Label: value" as flowing text, the value optionally bold; "—" when empty."""
    pdf.set_x(pdf.l_margin)
    pdf.set_font(FONT_FAMILY, size=BODY_PT)
    pdf.write(LINE, f"{label}: ")
    pdf.set_font(FONT_FAMILY, style="B" if bold else "", size=BODY_PT)
    pdf.write(LINE, value or "—")
    pdf.set_font(FONT_FAMILY, size=BODY_PT)
    pdf.ln(LINE)


def write_paragraph(pdf: FPDF, text: str, *, style: str = "", indent: float = 0) -> None:
    pdf.set_font(FONT_FAMILY, style=style, size=BODY_PT)
    pdf.set_x(pdf.l_margin + indent)
    pdf.multi_cell(pdf.epw - indent, LINE, text, align="J", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=BODY_PT)


def write_applicant(pdf: FPDF, applicant: Applicant) -> None:
    write_field(pdf, "Họ và tên người nộp hồ sơ", applicant.name, bold=True)
    if applicant.id_number:
        write_field(pdf, "Số định danh cá nhân", mask_id_number(applicant.id_number))
    write_field(pdf, "Địa chỉ", applicant.address)
    write_field(pdf, "Số điện thoại", applicant.phone)
    write_field(pdf, "Thư điện tử", applicant.email)


def write_procedure(pdf: FPDF, procedure: Procedure) -> None:
    write_field(pdf, "Thủ tục hành chính", f"{procedure.name} (mã TTHC: {procedure.code})", bold=True)


def write_lookup(pdf: FPDF, url: str) -> None:
    pdf.ln(1)
    pdf.set_font(FONT_FAMILY, style="I", size=9.5)
    pdf.set_x(pdf.l_margin)
    pdf.write(5, "Tra cứu tình trạng hồ sơ tại: ")
    pdf.write(5, url, link=url)
    pdf.ln(5)
    pdf.set_font(FONT_FAMILY, size=BODY_PT)


def write_signature(pdf: FPDF, role: str, signer: Officer) -> None:
    """The signer's block on the right half: caption, hint, room to sign, name."""
    height = 42
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(4)
    x = pdf.l_margin + pdf.epw / 2
    w = pdf.epw / 2
    pdf.set_x(x)
    pdf.set_font(FONT_FAMILY, style="B", size=BODY_PT)
    pdf.multi_cell(w, LINE, (signer.title or role).upper(), align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, style="I", size=9.5)
    pdf.multi_cell(w, 5, "(Ký và ghi rõ họ tên)", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_y(pdf.get_y() + 20)
    pdf.set_x(x)
    pdf.set_font(FONT_FAMILY, style="B", size=BODY_PT)
    pdf.multi_cell(w, LINE, signer.name, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=BODY_PT)


def write_table(
    pdf: FPDF,
    headings: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    widths: Sequence[float],
    align: Sequence[str],
    size: float = 10,
) -> None:
    from fpdf.fonts import FontFace

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
    pdf.set_font(FONT_FAMILY, size=BODY_PT)
    pdf.ln(2)


def output_pdf(pdf: FPDF) -> bytes:
    return bytes(pdf.output())
