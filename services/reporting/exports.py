"""Reports as files: CSV (UTF-8 with a byte-order mark, so Excel reads the diacritics) and XLSX (openpyxl).

Pure rendering: a report in, its title, Vietnamese column headers and rows laid out, bytes out. Instants are shown
in Vietnam time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from services.reporting import domain
from services.reporting.models import (
    BreakdownPublic,
    Index766Public,
    LatePublic,
    SummaryPublic,
)
from shared.clock import VN_TZ

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell(value: Any) -> Any:
    """A value as a report shows it: local time, Có/Không, blanks for nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, datetime):
        return value.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return value


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A CSV file with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None) -> bytes:
    """A one-sheet workbook: an optional caption line, a bold header row (frozen), then the rows."""
    # Imported by the first export: 12 MiB that a process exporting nothing need not hold.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    if caption:
        sheet.append([caption])
        sheet.cell(row=1, column=1).font = Font(bold=True, size=12)
    sheet.append(list(headers))
    header_row = sheet.max_row
    for column in range(1, len(headers) + 1):
        sheet.cell(row=header_row, column=column).font = Font(bold=True)
        sheet.cell(row=header_row, column=column).alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        sheet.append([cell(v) for v in row])
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    for column, header in enumerate(headers, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = max(10, min(40, len(str(header)) + 2))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# ---- the reports as files -------------------------------------------------------------------------------------------

Format = Literal["csv", "xlsx"]

_DIMENSION_HEADERS = {"field": "Lĩnh vực", "procedure": "Mã TTHC", "officer": "Cán bộ xử lý", "none": ""}
_RATE_HEADERS = [f"{label} (%)" for _, _, label, _, _ in domain.RATES]


@dataclass(frozen=True)
class ReportFile:
    """A report rendered as a file to download."""

    name: str
    media_type: str
    body: bytes


def _file(kind: str, fmt: Format, title: str, caption: str, headers: list[str], rows: list[list[Any]]) -> ReportFile:
    if fmt == "csv":
        body, media = to_csv(headers, rows), CSV_TYPE
    else:
        body, media = to_xlsx(title, headers, rows, caption=caption), XLSX_TYPE
    return ReportFile(name=f"{kind}.{fmt}", media_type=media, body=body)


def _figures(row: Any) -> list[Any]:
    values = row.model_dump()
    return [values[k] for k in domain.COUNTS] + [values["rates"][k]["percent"] for k, *_ in domain.RATES]


def summary_file(report: SummaryPublic, fmt: Format) -> ReportFile:
    """The standard report as one row."""
    headers = ["Đơn vị", "Từ ngày", "Đến ngày", "Lĩnh vực", "Mã TTHC", *domain.COUNTS.values(), *_RATE_HEADERS]
    row = [report.unit, report.from_, report.to, report.field, report.procedure, *_figures(report)]
    caption = f"Báo cáo tình hình giải quyết TTHC: {report.unit}, {report.from_:%d/%m/%Y} - {report.to:%d/%m/%Y}"
    return _file("bao-cao-tong-hop", fmt, "Tổng hợp", caption, headers, [row])


def breakdown_file(report: BreakdownPublic, fmt: Format) -> ReportFile:
    """A breakdown: every row of every period, each period's total after its rows."""
    by = report.by
    headers = ["Kỳ báo cáo", "Từ ngày", "Đến ngày", _DIMENSION_HEADERS[by] or "Nhóm", "Tên", *domain.COUNTS.values(), *_RATE_HEADERS]
    rows = [
        [p.label, p.from_, p.to, r.key, r.name, *_figures(r)] for p in report.data for r in [*p.rows, p.total]
    ]
    caption = f"Báo cáo chi tiết theo {(_DIMENSION_HEADERS[by] or 'kỳ').lower()}: {report.unit}"
    return _file("bao-cao-chi-tiet", fmt, "Chi tiết", caption, headers, rows)


def late_file(report: LatePublic, fmt: Format) -> ReportFile:
    """The accountability list, one late dossier a row."""
    rows = [[getattr(d, k) for k in domain.LATE_COLUMNS] for d in report.data]
    caption = f"Danh sách hồ sơ trễ hạn: {report.unit}, {report.from_:%d/%m/%Y} - {report.to:%d/%m/%Y}"
    return _file("ho-so-tre-han", fmt, "Trễ hạn", caption, list(domain.LATE_COLUMNS.values()), rows)


_BASIS_NAMES = {"computable": "trên điểm các chỉ tiêu tính được", "all": "trên thang 100"}


def index_766_file(report: Index766Public, fmt: Format) -> ReportFile:
    """The 766 index: each indicator computed, each one not computed with its reason, then the points earned of the
    points computable and of 100, side by side, each with its band; the band shown says which score it rests on."""
    headers = ["Mã chỉ tiêu", "Chỉ tiêu", "Tử số", "Mẫu số", "Tỷ lệ (%)", "Điểm tối đa", "Đạt điểm tối đa khi tỷ lệ (%)",
               "Điểm", "Điểm quy đổi thang 100", "Xếp loại", "Ghi chú"]  # fmt: skip
    rows: list[list[Any]] = [
        [i.code, i.name, i.numerator, i.denominator, i.percent, i.max_points, i.full_at_percent, i.points, None, None, None]
        for i in report.indicators
    ]
    rows += [[n.code, n.name, None, None, None, n.max_points, None, None, None, None, f"Không tính: {n.reason}"]
             for n in report.not_computable]  # fmt: skip
    for key, score in (("DIEM_TINH_DUOC", report.of_computable), ("DIEM_THANG_100", report.of_100)):
        note = "xếp loại hiển thị dựa trên điểm này" if score.basis == report.band_basis else None
        rows.append([key, f"Điểm đạt {_BASIS_NAMES[score.basis]}", None, None, None, score.max_points, None, score.points,
                     score.score, score.band, note])  # fmt: skip
    caption = (f"Chỉ số 766: {report.unit}, tháng {report.month}; xếp loại {report.band or ''} "
               f"({_BASIS_NAMES[report.band_basis]})")  # fmt: skip
    return _file("chi-so-766", fmt, "Chỉ số 766", caption, headers, rows)


def register_xlsx(*, number: str, title: str, unit: str, unit_name: str | None, period: domain.Period,
                  lines: Sequence[domain.RegisterLine]) -> ReportFile:  # fmt: skip
    """The register (Form 07 of Circular 03/2025, 06 before) as a workbook: its number and title, then one row a dossier."""
    caption = (f"Mẫu số {number}: {title.upper()} – {unit_name or unit} ({unit}), "
               f"từ ngày {period.first:%d/%m/%Y} đến ngày {period.last:%d/%m/%Y}")  # fmt: skip
    body = to_xlsx(f"Mẫu {number}", list(domain.REGISTER_COLUMNS), [line.cells() for line in lines], caption=caption)
    return ReportFile(name=f"so-theo-doi-ho-so-{unit}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.xlsx", media_type=XLSX_TYPE, body=body)
