"""Scans become PDF pages, damaged files are refused, the certification page reads in Vietnamese."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fpdf import FPDF
from PIL import Image
from pypdf import PdfReader, PdfWriter

from services.digitization import domain, pdfs
from services.digitization.domain import MediaType

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def _image(path: Path, fmt: str, *, pages: int = 1, size: tuple[int, int] = (400, 600), dpi: int | None = 100) -> Path:
    frames = [Image.new("RGB", size, (255, 255 - 40 * n, 255)) for n in range(pages)]
    extra = {"dpi": (dpi, dpi)} if dpi else {}
    if fmt == "TIFF":
        frames[0].save(path, format="TIFF", save_all=True, append_images=frames[1:], **extra)
    else:
        frames[0].save(path, format=fmt, **extra)
    return path


def _pdf(path: Path, pages: int) -> Path:
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
    pdf.output(str(path))
    return path


@pytest.mark.parametrize(("fmt", "media_type"), [("PNG", MediaType.PNG), ("JPEG", MediaType.JPEG), ("TIFF", MediaType.TIFF)])
def test_an_image_becomes_a_pdf_page_of_the_scans_size(tmp_path: Path, fmt: str, media_type: MediaType) -> None:
    source = _image(tmp_path / f"scan.{fmt.lower()}", fmt, size=(827, 1169), dpi=100)
    assert pdfs.image_to_pdf(source, media_type, tmp_path / "out.pdf") == 1
    page = PdfReader(tmp_path / "out.pdf").pages[0]
    assert float(page.mediabox.width) == pytest.approx(827 / 100 * 72, abs=1)
    assert float(page.mediabox.height) == pytest.approx(1169 / 100 * 72, abs=1)


def test_a_multi_page_tiff_gives_one_page_per_frame(tmp_path: Path) -> None:
    source = _image(tmp_path / "scan.tif", "TIFF", pages=4)
    assert pdfs.image_to_pdf(source, MediaType.TIFF, tmp_path / "out.pdf") == 4
    assert len(PdfReader(tmp_path / "out.pdf").pages) == 4


def test_a_jpeg_is_embedded_as_it_is_and_the_same_scan_gives_the_same_pdf(tmp_path: Path) -> None:
    source = _image(tmp_path / "scan.jpg", "JPEG", size=(500, 700))
    pdfs.image_to_pdf(source, MediaType.JPEG, tmp_path / "a.pdf")
    pdfs.image_to_pdf(source, MediaType.JPEG, tmp_path / "b.pdf")
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert source.read_bytes() in (tmp_path / "a.pdf").read_bytes(), "no recompression"


def test_a_scan_without_a_resolution_is_taken_at_the_default(tmp_path: Path) -> None:
    source = _image(tmp_path / "scan.png", "PNG", size=(400, 400), dpi=None)
    pdfs.image_to_pdf(source, MediaType.PNG, tmp_path / "out.pdf", default_dpi=200)
    assert float(PdfReader(tmp_path / "out.pdf").pages[0].mediabox.width) == pytest.approx(400 / 200 * 72, abs=1)


def test_a_truncated_image_is_refused(tmp_path: Path) -> None:
    whole = _image(tmp_path / "scan.jpg", "JPEG").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(pdfs.PaperRefused) as refused:
        pdfs.image_to_pdf(cut, MediaType.JPEG, tmp_path / "out.pdf")
    assert refused.value.slug == "damaged-file"


def test_pdf_pages_are_counted_and_damaged_or_encrypted_files_refused(tmp_path: Path) -> None:
    assert pdfs.pdf_pages(_pdf(tmp_path / "three.pdf", 3)) == 3
    data = (tmp_path / "three.pdf").read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) - 200])
    with pytest.raises(pdfs.PaperRefused, match="truncated"):
        pdfs.pdf_pages(tmp_path / "cut.pdf")
    (tmp_path / "garbage.pdf").write_bytes(b"%PDF-1.7\nnothing here\n%%EOF\n")
    with pytest.raises(pdfs.PaperRefused) as garbage:
        pdfs.pdf_pages(tmp_path / "garbage.pdf")
    assert garbage.value.slug == "damaged-file"
    writer = PdfWriter(clone_from=str(tmp_path / "three.pdf"))
    writer.encrypt("mat-khau")
    with open(tmp_path / "locked.pdf", "wb") as out:
        writer.write(out)
    with pytest.raises(pdfs.PaperRefused) as locked:
        pdfs.pdf_pages(tmp_path / "locked.pdf")
    assert locked.value.slug == "encrypted-file"


def test_the_certification_page_says_who_when_and_the_number_and_leaves_room_to_sign(tmp_path: Path) -> None:
    certification = domain.Certification(
        agency="UBND phường Phú Hội", place="Phường Phú Hội", paper_name="Bằng tốt nghiệp đại học", pages=2,
        number="00007/2026-SCT/BSĐT", officer_name="Trần Văn Đức", officer_title="Công chức Tư pháp - Hộ tịch",
        certified_at=datetime(2026, 2, 3, 9, 5, tzinfo=VN), dossier_code="000.00.12.H56-260203-0007",
    )  # fmt: skip
    place = pdfs.render_certification(tmp_path / "page.pdf", certification, lookup_url="https://example.invalid/x")
    reader = PdfReader(tmp_path / "page.pdf")
    text = " ".join(reader.pages[0].extract_text().split())
    for expected in ("LỜI CHỨNG CHỨNG THỰC BẢN SAO ĐIỆN TỬ TỪ BẢN CHÍNH", "Bằng tốt nghiệp đại học", "00007/2026-SCT/BSĐT",
                     "09 giờ 05 phút, ngày 03 tháng 02 năm 2026", "Trần Văn Đức", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                     "Phường Phú Hội, ngày 03 tháng 02 năm 2026"):  # fmt: skip
        assert expected in text, expected
    x1, y1, x2, y2 = place.box
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert place.page == 0 and 0 < x1 < x2 <= width and 0 < y1 < y2 <= height and x2 - x1 > 150 and y2 - y1 > 60


def test_a_copy_is_the_scan_followed_by_the_certification_page(tmp_path: Path) -> None:
    total = pdfs.join(_pdf(tmp_path / "scan.pdf", 2), _pdf(tmp_path / "page.pdf", 1), tmp_path / "copy.pdf")
    assert total == 3 and len(PdfReader(io.BytesIO((tmp_path / "copy.pdf").read_bytes())).pages) == 3


def test_a_results_block_sits_bottom_right_of_the_last_page() -> None:
    place = pdfs.result_block_place([(595.0, 842.0), (842.0, 595.0)])
    x1, y1, x2, y2 = place.box
    assert place.page == 1 and x2 == 842 - 28 and y1 == 28 and x2 - x1 == 235
