"""PDF work on files: check an upload, turn scans into PDF, render the certification page, join files.

Blocking (CPU and file I/O): call from async code through ``asyncio.to_thread``. Every function
takes and writes paths, so a document passes through on disk, not in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from services.digitization.domain import (
    CERTIFICATION_TITLE,
    Certification,
    MediaType,
    certification_lines,
)
from shared.pdf import FONT_FAMILY, Agency, form_pdf, start_form, write_paragraph

# Scanners write the date of the scan into nothing we keep: a conversion's bytes depend on the image alone.
_FIXED_DATE = datetime(2000, 1, 1, tzinfo=UTC)
_MM_PER_INCH = 25.4
MAX_PAGES = 2000


class PaperRefused(ValueError):
    """The upload is not a usable paper; ``slug`` names why."""

    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail


def _tail(path: Path, size: int = 2048) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - size))
        return f.read()


def pdf_pages(path: Path) -> int:
    """The page count of a PDF upload; refuses truncated, damaged, encrypted or empty files."""
    if b"%%EOF" not in _tail(path):
        raise PaperRefused("damaged-file", "The PDF is truncated: it has no end-of-file marker (%%EOF).")
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            raise PaperRefused("encrypted-file", "The PDF is encrypted; upload it without a password so it can be signed.")
        pages = len(reader.pages)
    except PaperRefused:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise PaperRefused("damaged-file", f"The PDF cannot be read: {exc}.") from None
    if pages < 1:
        raise PaperRefused("damaged-file", "The PDF has no pages.")
    if pages > MAX_PAGES:
        raise PaperRefused("too-many-pages", f"The PDF has {pages} pages; at most {MAX_PAGES} are accepted.")
    return pages


def _dpi(frame: Image.Image, default: int) -> float:
    dpi = frame.info.get("dpi")
    try:
        value = float(dpi[0]) if dpi else 0.0
    except (TypeError, ValueError, IndexError):
        value = 0.0
    return value if 50 <= value <= 2400 else float(default)


def image_to_pdf(source: Path, media_type: MediaType, target: Path, *, default_dpi: int = 200) -> int:
    """One PDF page per image frame (multi-page TIFF gives several), at the scan's size; returns the pages.

    JPEG data is embedded as it is (no recompression); other images are stored losslessly.
    """
    # Imported here, as in shared.pdf: 36 MiB that a process converting nothing need not hold.
    from fpdf import FPDF

    pdf = FPDF(unit="mm")
    pdf.set_creator("motcua")
    pdf.set_creation_date(_FIXED_DATE)
    pdf.set_auto_page_break(False)
    pdf.set_margin(0)
    try:
        with Image.open(source) as image:
            if image.format not in {"JPEG", "PNG", "TIFF", "MPO"}:
                raise PaperRefused("unsupported-media-type", f"The image is {image.format}, not JPEG, PNG or TIFF.")
            for n, frame in enumerate(ImageSequence.Iterator(image)):
                if n >= MAX_PAGES:
                    raise PaperRefused("too-many-pages", f"The image has more than {MAX_PAGES} pages.")
                frame.load()  # decodes everything: a truncated file fails here
                dpi = _dpi(frame, default_dpi)
                width, height = frame.width / dpi * _MM_PER_INCH, frame.height / dpi * _MM_PER_INCH
                pdf.add_page(format=(width, height))
                if media_type is MediaType.JPEG and n == 0:
                    pdf.image(str(source), x=0, y=0, w=width, h=height)
                else:
                    page = frame if frame.mode in {"1", "L", "RGB", "CMYK"} else frame.convert("RGBA" if "A" in frame.mode else "RGB")
                    pdf.image(page.copy(), x=0, y=0, w=width, h=height)
            pages = pdf.page_no()
    except PaperRefused:
        raise
    except Image.DecompressionBombError:
        raise PaperRefused("image-too-large", "The image has too many pixels to be a scan.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PaperRefused("damaged-file", f"The image cannot be read: {exc}.") from None
    if pages < 1:
        raise PaperRefused("damaged-file", "The image has no frames.")
    pdf.output(str(target))
    return pages


@dataclass(frozen=True)
class SignaturePlace:
    """Where the signer's visible block goes on a page (PDF points, origin bottom-left)."""

    page: int
    box: tuple[int, int, int, int]


_POINTS_PER_MM = 72 / _MM_PER_INCH


def render_certification(target: Path, c: Certification, *, lookup_url: str) -> SignaturePlace:
    """The certification page (lời chứng), A4, with an empty box where the unit's signature goes."""
    pdf = form_pdf(number="—", title="Lời chứng", dossier_code=c.dossier_code)
    pdf._footer = f"Lời chứng bản sao điện tử số {c.number} – Mã hồ sơ: {c.dossier_code}"
    pdf.alias_nb_pages()
    start_form(
        pdf,
        agency=Agency(name=c.agency, place=c.place),
        title=CERTIFICATION_TITLE,
        dossier_code=c.dossier_code,
        url=lookup_url,
        issued=c.certified_at,
    )
    for line in certification_lines(c):
        write_paragraph(pdf, line)
    pdf.ln(4)
    x = pdf.l_margin + pdf.epw / 2
    w = pdf.epw / 2
    pdf.set_x(x)
    pdf.set_font(FONT_FAMILY, style="B", size=11)
    pdf.multi_cell(w, 6, c.officer_title.upper(), align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, style="I", size=9.5)
    pdf.multi_cell(w, 5, "(Ký số của cơ quan thực hiện chứng thực)", align="C", new_x="LEFT", new_y="NEXT")
    top = pdf.get_y() + 2
    box_h = 28.0
    pdf.set_y(top + box_h + 2)
    pdf.set_x(x)
    pdf.set_font(FONT_FAMILY, style="B", size=11)
    pdf.multi_cell(w, 6, c.officer_name, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(target))
    # fpdf2 measures from the top in mm; a PDF box is in points from the bottom.
    page_h = pdf.h
    left, right = x + 4, x + w - 4
    bottom, upper = page_h - (top + box_h), page_h - top
    return SignaturePlace(
        page=pdf.page_no() - 1,
        box=(round(left * _POINTS_PER_MM), round(bottom * _POINTS_PER_MM), round(right * _POINTS_PER_MM), round(upper * _POINTS_PER_MM)),
    )


def join(first: Path, second: Path, target: Path) -> int:
    """``first`` then ``second`` as one PDF; returns the total page count."""
    writer = PdfWriter()
    writer.append(str(first))
    writer.append(str(second))
    writer.add_metadata({"/Producer": "motcua", "/Creator": "motcua"})
    with open(target, "wb") as out:
        writer.write(out)
    return len(writer.pages)


def result_block_place(page_sizes: list[tuple[float, float]], *, width: int = 235, height: int = 78, margin: int = 28) -> SignaturePlace:
    """A result's visible block: bottom right of the last page, inside the margin."""
    w, _ = page_sizes[-1]
    right = int(w) - margin
    return SignaturePlace(page=len(page_sizes) - 1, box=(max(margin, right - width), margin, right, margin + height))
