"""The register the one-stop keeps, "Sổ theo dõi hồ sơ" (Form 07 of Circular 03/2025, 06 of Circular 01/2018), as
PDF: A4 landscape, one row per dossier received or returned in the period. Its number and title are the rules' in
force on the period's last day. Pure rendering (``shared/pdf.py``); CPU-bound, so called through a thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.reporting import domain
from services.reporting.exports import cell
from shared.pdf import (
    FONT_FAMILY,
    MOTTO,
    NATION,
    form_pdf,
    output_pdf,
    rule,
    write_table,
)

# Column widths (mm) of the landscape table: 257 mm between the margins.
_WIDTHS = (10, 54, 38, 30, 20, 20, 20, 20, 22, 23)
_ALIGN = ("CENTER", "LEFT", "LEFT", "LEFT", "CENTER", "CENTER", "CENTER", "CENTER", "LEFT", "LEFT")


@dataclass(frozen=True)
class Register:
    """What the register prints: the form's number and title, the unit, the period and the lines."""

    number: str
    title: str
    unit: str
    unit_name: str | None
    period: domain.Period
    lines: Sequence[domain.RegisterLine]
    issued: datetime


def render_register(register: Register) -> bytes:
    """The register as PDF bytes."""
    pdf = form_pdf(
        number=register.number,
        title=register.title,
        dossier_code=register.unit,
        landscape=True,
        footer=f"Mẫu số {register.number} – {register.title} – {register.unit}",
    )
    pdf.set_creation_date(register.issued)
    pdf.set_author(register.unit_name or register.unit)
    pdf.add_page()
    half = pdf.epw / 2
    top = pdf.t_margin
    pdf.set_xy(pdf.l_margin, top)
    pdf.set_font(FONT_FAMILY, style="B", size=10)
    pdf.multi_cell(half, 5, (register.unit_name or register.unit).upper(), align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=9)
    pdf.multi_cell(half, 5, f"Mã đơn vị: {register.unit}", align="C")
    pdf.set_xy(pdf.l_margin + half, top)
    pdf.set_font(FONT_FAMILY, style="B", size=10)
    pdf.multi_cell(half, 5, NATION, align="C", new_x="LEFT", new_y="NEXT")
    pdf.multi_cell(half, 5, MOTTO, align="C", new_x="LEFT", new_y="NEXT")
    rule(pdf, pdf.l_margin + half + half / 2, pdf.get_y() + 0.8, pdf.get_string_width(MOTTO))
    pdf.set_xy(pdf.l_margin, max(pdf.get_y(), top + 12) + 6)
    pdf.set_font(FONT_FAMILY, style="I", size=10)
    pdf.multi_cell(pdf.epw, 5, f"Mẫu số {register.number}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, style="B", size=14)
    pdf.multi_cell(pdf.epw, 7, register.title.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=11)
    first, last = register.period.first, register.period.last
    pdf.multi_cell(pdf.epw, 6, f"Từ ngày {first:%d/%m/%Y} đến ngày {last:%d/%m/%Y}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    rows = [[str(cell(v)) for v in line.cells()] for line in register.lines]
    if not rows:
        rows = [["", "Không có hồ sơ tiếp nhận hoặc trả kết quả trong kỳ", *[""] * (len(domain.REGISTER_COLUMNS) - 2)]]
    write_table(pdf, domain.REGISTER_COLUMNS, rows, widths=_WIDTHS, align=_ALIGN, size=8)
    pdf.set_font(FONT_FAMILY, size=10)
    pdf.multi_cell(pdf.epw, 5, f"Tổng số hồ sơ: {len(register.lines)}", new_x="LMARGIN", new_y="NEXT")
    return output_pdf(pdf)
