"""Reports as files: CSV (UTF-8 with a byte-order mark, so Excel reads the diacritics) and XLSX (openpyxl).

Pure rendering: a title, Vietnamese column headers and rows in, bytes out. Instants are shown in Vietnam time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

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
