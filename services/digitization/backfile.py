"""A back-digitization batch on disk: its ZIP, its metadata sheet (CSV or XLSX), and its scans turned into PDF/A.

Blocking (file I/O and CPU): call from async code through ``asyncio.to_thread``. Nothing here touches the
database; the use case (``handlers.import_backfile``) checks the rows against what is filed already and files them.

The ZIP holds one sheet (``*.csv``, UTF-8 with or without BOM, or ``*.xlsx``) with a header row and one row per
scan, and the scans (PDF, JPEG, PNG or TIFF, by content), named in the sheet by their path inside the ZIP.
Every problem is collected with its file and line, so a refused batch is answered with all of them at once.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

from PIL import Image, ImageCms, ImageSequence, UnidentifiedImageError
from pydantic import ValidationError

from services.digitization import domain, pdfs
from services.digitization.models import BackfileRow

SHEET_SUFFIXES = (".csv", ".xlsx")
MAX_SHEET_BYTES = 20 * 1024 * 1024

# Header names a sheet may use, in English or in Vietnamese (compared after NFC, case folding and single spaces).
COLUMNS: dict[str, tuple[str, ...]] = {
    "file": ("file", "tên tệp", "tệp"),
    "paper_kind": ("paper_kind", "paper kind", "loại giấy tờ"),
    "paper_code": ("paper_code", "paper code", "mã giấy tờ"),
    "number": ("number", "số", "số, ký hiệu", "số ký hiệu"),
    "issuer": ("issuer", "cơ quan cấp"),
    "issued_on": ("issued_on", "issued on", "ngày cấp"),
    "owner_id_number": ("owner_id_number", "owner id number", "số định danh", "số định danh cá nhân"),
    "field": ("field", "lĩnh vực"),
    "valid_until": ("valid_until", "valid until", "hiệu lực đến"),
}
REQUIRED = ("file", "paper_kind", "number", "issuer", "issued_on", "owner_id_number", "field")
_ALIASES = {domain.tidy(alias).casefold(): name for name, aliases in COLUMNS.items() for alias in aliases}


@dataclass(frozen=True)
class BatchProblem:
    """One thing wrong with the batch: which file (the sheet or a scan), which line, which column, why."""

    file: str | None
    line: int | None
    reason: str
    column: str | None = None


class BatchRefused(Exception):
    """The batch cannot be read at all (not a ZIP, no sheet, a sheet in a legacy encoding): one problem, one slug."""

    def __init__(self, slug: str, detail: str, *, status: int = 422) -> None:
        super().__init__(detail)
        self.slug, self.detail, self.status = slug, detail, status


@dataclass(frozen=True)
class Row:
    """A valid sheet row, with its line and the key that makes it a duplicate."""

    line: int
    data: BackfileRow

    @property
    def key(self) -> str:
        return domain.result_key(self.data.paper_kind, self.data.number, self.data.issuer)


@dataclass
class Batch:
    """What the ZIP holds: the sheet's name and rows, the scans by path, and the problems found so far."""

    sheet: str
    rows: list[Row] = field(default_factory=list)
    scans: dict[str, zipfile.ZipInfo] = field(default_factory=dict)
    problems: list[BatchProblem] = field(default_factory=list)


# ---- the ZIP and its sheet --------------------------------------------------------------


def _member_name(info: zipfile.ZipInfo) -> str:
    return unicodedata.normalize("NFC", info.filename).removeprefix("./")


def read_batch(zip_path: Path, *, today: date, max_files: int, max_file_bytes: int, max_unpacked_bytes: int) -> Batch:
    """Open the ZIP, read and check its sheet; problems of rows and of missing or unlisted scans are collected."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BatchRefused("unsupported-media-type", f"The batch is not a readable ZIP archive ({exc}).", status=415) from None
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir() and not _member_name(i).startswith("__MACOSX/")]
        sheets = [i for i in members if _member_name(i).casefold().endswith(SHEET_SUFFIXES)]
        if len(sheets) != 1:
            found = ", ".join(_member_name(i) for i in sheets) or "none"
            raise BatchRefused(
                "batch-sheet-missing" if not sheets else "batch-sheets-ambiguous",
                f"The ZIP must hold exactly one metadata sheet (.csv in UTF-8, or .xlsx); found: {found}.",
            )
        sheet_info = sheets[0]
        sheet = _member_name(sheet_info)
        scans = {_member_name(i): i for i in members if i is not sheet_info}
        if len(scans) > max_files:
            raise BatchRefused("batch-too-large", f"The ZIP holds {len(scans)} scans; a batch takes at most {max_files}.")
        unpacked = sum(i.file_size for i in members)
        if unpacked > max_unpacked_bytes:
            raise BatchRefused("batch-too-large", f"The ZIP unpacks to {unpacked} bytes; a batch takes at most {max_unpacked_bytes}.")
        if sheet_info.file_size > MAX_SHEET_BYTES:
            raise BatchRefused("batch-too-large", f"{sheet}: the sheet is larger than {MAX_SHEET_BYTES} bytes.")
        data = archive.read(sheet_info)
    batch = Batch(sheet=sheet, scans=scans)
    raw = _csv_rows(sheet, data) if sheet.casefold().endswith(".csv") else _xlsx_rows(sheet, data)
    _check_rows(batch, raw, today=today, max_file_bytes=max_file_bytes)
    return batch


def _csv_rows(sheet: str, data: bytes) -> list[tuple[int, list[object]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BatchRefused(
            "sheet-not-utf8",
            f"{sheet} is not UTF-8 (byte 0x{data[exc.start]:02X} on line {line}): it looks like a legacy encoding such as "
            "Windows-1258 or TCVN3. Save the sheet as 'CSV UTF-8' (Excel: Save As → CSV UTF-8), or send it as .xlsx.",
        ) from None
    _refuse_tcvn3(sheet, text)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ";" if ";" in first else ","  # Excel in a Vietnamese locale writes ';'
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [(reader.line_num, list(cells)) for cells in reader]


def _xlsx_rows(sheet: str, data: bytes) -> list[tuple[int, list[object]]]:
    try:
        from openpyxl import (
            load_workbook,  # imported by the first sheet read (12 MiB); see reporting's exports
        )

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 (openpyxl raises many kinds for a damaged workbook)
        raise BatchRefused("damaged-file", f"{sheet} cannot be read as an XLSX workbook ({type(exc).__name__}: {exc}).") from None
    try:
        worksheet = book.worksheets[0]
        rows = [(n, list(cells)) for n, cells in enumerate(worksheet.iter_rows(values_only=True), start=1)]
    finally:
        book.close()
    _refuse_tcvn3(sheet, " ".join(str(c) for _, cells in rows for c in cells if isinstance(c, str)))
    return rows


def _refuse_tcvn3(sheet: str, text: str) -> None:
    if domain.looks_like_tcvn3(text):
        raise BatchRefused(
            "sheet-not-utf8",
            f"{sheet} holds Vietnamese typed in TCVN3 (ABC, .VnTime fonts): convert it to Unicode (e.g. Unikey's "
            "converter, TCVN3 → Unicode) and save it as UTF-8 CSV or XLSX.",
        )


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_rows(batch: Batch, raw: list[tuple[int, list[object]]], *, today: date, max_file_bytes: int) -> None:
    """Header, then each row: valid metadata, a scan that is in the ZIP, no duplicate inside the batch."""
    rows = [(n, cells) for n, cells in raw if not all(_blank(c) for c in cells)]
    if not rows:
        raise BatchRefused("batch-sheet-empty", f"{batch.sheet} has no header row.")
    header_line, header = rows[0]
    columns: list[str | None] = []
    for position, name in enumerate(header, start=1):
        if _blank(name):
            columns.append(None)
            continue
        canonical = _ALIASES.get(domain.tidy(str(name)).casefold())
        if canonical is None:
            raise BatchRefused(
                "batch-sheet-columns",
                f"{batch.sheet}, line {header_line}, column {position}: unknown column {str(name)!r}; the columns are "
                f"{', '.join(COLUMNS)} (or their Vietnamese names).",
            )
        if canonical in columns:
            raise BatchRefused("batch-sheet-columns", f"{batch.sheet}, line {header_line}: column {canonical!r} appears twice.")
        columns.append(canonical)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise BatchRefused("batch-sheet-columns", f"{batch.sheet}, line {header_line}: missing columns {', '.join(missing)}.")
    if len(rows) == 1:
        raise BatchRefused("batch-sheet-empty", f"{batch.sheet} lists no scans (only its header).")

    listed: dict[str, int] = {}
    keys: dict[str, int] = {}
    for line, cells in rows[1:]:
        values: dict[str, object] = {}
        for column, cell in zip(columns, cells, strict=False):
            if column is None or _blank(cell):
                continue
            values[column] = cell
        if isinstance(values.get("file"), str | int | float):
            listed.setdefault(domain.tidy(str(values["file"])).removeprefix("./"), line)  # a bad row still accounts for its scan
        if isinstance(values.get("owner_id_number"), int | float):
            batch.problems.append(BatchProblem(
                batch.sheet, line, "the id number is a number cell, which drops its leading zeros: format the column as text",
                column="owner_id_number",
            ))  # fmt: skip
            continue
        values = {k: v if isinstance(v, date | datetime) else str(v) for k, v in values.items()}
        try:
            data = BackfileRow.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"]) or None
                message = error["msg"].removeprefix("Value error, ")
                batch.problems.append(BatchProblem(batch.sheet, line, message, column=where))
            continue
        row = Row(line=line, data=data)
        problems_before = len(batch.problems)
        name = data.file.removeprefix("./")
        if name not in batch.scans:
            batch.problems.append(BatchProblem(name, line, "listed in the sheet but not in the ZIP", column="file"))
        elif batch.scans[name].file_size > max_file_bytes:
            batch.problems.append(BatchProblem(name, line, f"larger than {max_file_bytes} bytes", column="file"))
        if listed.get(name, line) != line:
            batch.problems.append(BatchProblem(name, line, f"the same file is listed on line {listed[name]} already", column="file"))
        if row.key in keys:
            batch.problems.append(BatchProblem(
                name, line, f"the same result (kind, number, issuer) is on line {keys[row.key]} of the sheet already",
            ))  # fmt: skip
        if data.issued_on > today:
            batch.problems.append(BatchProblem(name, line, f"issued_on {data.issued_on} is in the future", column="issued_on"))
        if data.valid_until is not None and data.valid_until < today:
            batch.problems.append(BatchProblem(
                name, line, f"valid until {data.valid_until}: the result is no longer in force", column="valid_until",
            ))  # fmt: skip
        listed.setdefault(name, line)
        keys.setdefault(row.key, line)
        if len(batch.problems) == problems_before:
            batch.rows.append(Row(line=line, data=data.model_copy(update={"file": name})))
    for name in sorted(set(batch.scans) - set(listed)):
        batch.problems.append(BatchProblem(name, None, "a scan with no row in the metadata sheet"))


def extract(zip_path: Path, member: str, target: Path, *, limit: int) -> tuple[Path, bytes]:
    """Copy one scan out of the ZIP (never to a path it names), reading at most ``limit`` bytes; (path, first bytes)."""
    head = b""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            info = next(i for i in archive.infolist() if _member_name(i) == member)
            with archive.open(info) as src, open(target, "wb") as out:
                copied = 0
                while chunk := src.read(1 << 20):
                    copied += len(chunk)
                    if copied > limit:
                        raise pdfs.PaperRefused("payload-too-large", f"The scan unpacks to more than {limit} bytes.")
                    if len(head) < domain.SNIFF_BYTES:
                        head += chunk[: domain.SNIFF_BYTES - len(head)]
                    out.write(chunk)
    except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, zlib.error) as exc:  # a damaged or encrypted member
        raise pdfs.PaperRefused("damaged-file", f"The scan cannot be unpacked from the ZIP ({exc}).") from None
    return target, head


# ---- scans into PDF/A -----------------------------------------------------------------------


@cache
def _srgb_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def srgb_profile(directory: Path) -> Path:
    """An sRGB ICC profile (from Pillow's littleCMS), the output intent a PDF/A of colour scans declares, as a file."""
    path = directory / "sRGB.icc"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        spare = directory / f".sRGB-{os.getpid()}-{threading.get_ident()}.icc"
        spare.write_bytes(_srgb_bytes())
        spare.replace(path)  # atomic: a concurrent reader sees the whole profile or none
    return path


def image_to_pdfa(source: Path, target: Path, *, icc: Path, default_dpi: int) -> int:
    """A scan (JPEG, PNG, TIFF, one page per frame) as PDF/A-1b with img2pdf; returns the pages.

    JPEG data goes in as it is and other images losslessly (img2pdf never re-encodes). What PDF/A-1 forbids is
    removed first: an alpha channel is flattened onto white, and CMYK, palette and 16-bit pages become RGB or grey.
    """
    pages: list[bytes | Path] = []
    try:
        with Image.open(source) as image:
            if image.format not in {"JPEG", "PNG", "TIFF", "MPO"}:
                raise pdfs.PaperRefused("unsupported-media-type", f"The image is {image.format}, not JPEG, PNG or TIFF.")
            direct = image.format == "JPEG" and image.mode in {"L", "RGB"} and "dpi" in image.info
            for n, frame in enumerate(ImageSequence.Iterator(image)):
                if n >= pdfs.MAX_PAGES:
                    raise pdfs.PaperRefused("too-many-pages", f"The image has more than {pdfs.MAX_PAGES} pages.")
                frame.load()  # decodes everything: a truncated file fails here
                if direct and n == 0:
                    pages.append(source)
                    continue
                pages.append(_page_png(frame, default_dpi))
    except pdfs.PaperRefused:
        raise
    except Image.DecompressionBombError:
        raise pdfs.PaperRefused("image-too-large", "The image has too many pixels to be a scan.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise pdfs.PaperRefused("damaged-file", f"The image cannot be read: {exc}.") from None
    if not pages:
        raise pdfs.PaperRefused("damaged-file", "The image has no frames.")
    import img2pdf  # imported by the first scan converted: with pikepdf (qpdf), 6 MiB the service need not hold idle

    with open(target, "wb") as out:
        img2pdf.convert(
            [p if isinstance(p, bytes) else str(p) for p in pages], outputstream=out, pdfa=str(icc),
            creator="motcua", producer="motcua (img2pdf)", nodate=True,
        )  # fmt: skip
    return len(pages)


def _page_png(frame: Image.Image, default_dpi: int) -> bytes:
    """One frame as a PNG img2pdf embeds losslessly, in a mode PDF/A-1 allows, with its resolution."""
    page = frame
    if page.mode in {"RGBA", "LA", "PA"} or (page.mode == "P" and "transparency" in page.info):
        rgba = page.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        page = flat
    elif page.mode not in {"1", "L", "RGB"}:
        page = page.convert("L" if page.mode.startswith(("I", "F")) else "RGB")
    dpi = frame.info.get("dpi")
    try:
        value = float(dpi[0]) if dpi else 0.0
    except (TypeError, ValueError, IndexError):
        value = 0.0
    value = value if 50 <= value <= 2400 else float(default_dpi)
    out = io.BytesIO()
    page.save(out, format="PNG", dpi=(value, value))
    return out.getvalue()


def as_pdf(source: Path, media_type: domain.MediaType, target: Path, *, icc: Path, default_dpi: int) -> tuple[Path, int]:
    """A scan as the PDF to seal: a PDF as it came (checked readable), an image as PDF/A; (path, pages)."""
    if media_type is domain.MediaType.PDF:
        return source, pdfs.pdf_pages(source)
    return target, image_to_pdfa(source, target, icc=icc, default_dpi=default_dpi)
