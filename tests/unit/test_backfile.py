"""A back-digitization batch read from its ZIP: the sheet's rows and their problems, scans into PDF/A, the progress share."""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from fpdf import FPDF
from openpyxl import Workbook
from PIL import Image, ImageDraw
from pypdf import PdfReader

from services.digitization import backfile, domain, pdfs
from services.digitization.domain import MediaType

TODAY = date(2026, 12, 3)
HEADER_VI = "Tên tệp;Loại giấy tờ;Số, ký hiệu;Cơ quan cấp;Ngày cấp;Số định danh;Lĩnh vực;Hiệu lực đến"


def png(text: str = "Giấy khai sinh", *, mode: str = "RGB") -> bytes:
    image = Image.new(mode, (620, 877), (250, 248, 240, 255) if mode == "RGBA" else (250, 248, 240))
    ImageDraw.Draw(image).text((40, 40), text, fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(75, 75))
    return out.getvalue()


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="Giay chung nhan")
    return bytes(pdf.output())


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def read(path: Path) -> backfile.Batch:
    return backfile.read_batch(path, today=TODAY, max_files=100, max_file_bytes=10_000_000, max_unpacked_bytes=100_000_000)


def cp1258(text: str) -> bytes:
    """Vietnamese as Windows-1258 writes it: base letters (â, ơ, …) precomposed, tone marks as combining characters."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = []
    for ch in unicodedata.normalize("NFC", text):
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(p for p in parts if p not in tones))
        out.append(base + "".join(p for p in parts if p in tones))
    return "".join(out).encode("cp1258")


def test_a_utf8_sheet_with_bom_and_vietnamese_headers_reads_every_row(tmp_path: Path) -> None:
    rows = (
        "scans/a.png;Giấy khai sinh;12/2019/KS;UBND phường Phú Hội;14/05/2019;001 203 000 123;Hộ tịch;",
        "b.pdf;Giấy chứng nhận quyền sử dụng đất;CS 04567;Sở Tài nguyên và Môi trường;2021-03-02;079190000456;Đất đai;31/12/2040",
    )
    sheet = "\n".join((HEADER_VI, *rows))
    batch = read(make_zip(tmp_path / "b.zip", {"metadata.csv": b"\xef\xbb\xbf" + sheet.encode(), "scans/a.png": png(), "b.pdf": pdf_bytes()}))
    assert batch.problems == []
    assert [r.line for r in batch.rows] == [2, 3]
    first, second = (r.data for r in batch.rows)
    assert (first.file, first.number, first.issued_on, first.owner_id_number, first.field) == (
        "scans/a.png", "12/2019/KS", date(2019, 5, 14), "001203000123", "Hộ tịch"
    )
    assert first.valid_until is None
    assert (second.paper_kind, second.valid_until) == ("Giấy chứng nhận quyền sử dụng đất", date(2040, 12, 31))


def test_a_windows_1258_sheet_is_refused_with_a_message_naming_utf8(tmp_path: Path) -> None:
    sheet = HEADER_VI + "\na.png;Giấy khai sinh;12/2019/KS;UBND phường Phú Hội;14/05/2019;001203000123;Hộ tịch;\n"
    with pytest.raises(backfile.BatchRefused) as refused:
        read(make_zip(tmp_path / "b.zip", {"metadata.csv": cp1258(sheet), "a.png": png()}))
    assert refused.value.slug == "sheet-not-utf8"
    assert "UTF-8" in refused.value.detail and "line 1" in refused.value.detail


def test_tcvn3_text_in_a_utf8_sheet_is_refused_too(tmp_path: Path) -> None:
    # "Ủy ban nhân dân phường" typed with a .VnTime font: readable bytes, unreadable words.
    sheet = (
        "file,paper_kind,number,issuer,issued_on,owner_id_number,field\n"
        "a.png,GiÊy khai sinh,12/2019/KS,Uû ban nh©n d©n ph­êng,2019-05-14,001203000123,Hé tÞch\n"
    )
    with pytest.raises(backfile.BatchRefused) as refused:
        read(make_zip(tmp_path / "b.zip", {"metadata.csv": sheet.encode(), "a.png": png()}))
    assert refused.value.slug == "sheet-not-utf8" and "TCVN3" in refused.value.detail


def test_every_bad_row_and_file_is_named_with_its_line(tmp_path: Path) -> None:
    rows = [
        "file,paper_kind,number,issuer,issued_on,owner_id_number,field,valid_until",
        "a.png,Giấy khai sinh,1/KS,UBND xã A,2019-05-14,001203000123,Hộ tịch,",  # fine
        "missing.png,Giấy khai sinh,2/KS,UBND xã A,2019-05-14,001203000123,Hộ tịch,",  # not in the ZIP
        "b.png,Giấy khai sinh,1/KS,UBND  xã a,2019-05-14,001203000124,Hộ tịch,",  # same result as line 2
        "c.png,Giấy khai sinh,3/KS,UBND xã A,2019-05-14,12345,Hộ tịch,",  # not an id number
        "d.png,Giấy phép xây dựng,4/GP,UBND xã A,2010-01-01,001203000125,Xây dựng,2020-01-01",  # expired
        "e.png,Giấy khai sinh,5/KS,UBND xã A,31/02/2019,001203000126,Hộ tịch,",  # no such date
    ]
    members = {"metadata.csv": "\n".join(rows).encode()} | {f"{n}.png": png(n) for n in "abcde"} | {"stray.png": png("x")}
    batch = read(make_zip(tmp_path / "b.zip", members))
    assert [r.line for r in batch.rows] == [2]
    found = {(p.file, p.line, p.column) for p in batch.problems}
    assert found == {
        ("missing.png", 3, "file"),
        ("b.png", 4, None),
        ("metadata.csv", 5, "owner_id_number"),
        ("d.png", 6, "valid_until"),
        ("metadata.csv", 7, "issued_on"),
        ("stray.png", None, None),
    }
    reasons = {p.file: p.reason for p in batch.problems}
    assert "line 2" in reasons["b.png"] and "no longer in force" in reasons["d.png"]
    assert reasons["stray.png"] == "a scan with no row in the metadata sheet"


def test_an_xlsx_sheet_reads_dates_and_refuses_an_id_number_typed_as_a_number(tmp_path: Path) -> None:
    book = Workbook()
    ws = book.active
    ws.append(["Tên tệp", "Loại giấy tờ", "Số, ký hiệu", "Cơ quan cấp", "Ngày cấp", "Số định danh", "Lĩnh vực"])
    ws.append(["a.png", "Giấy khai sinh", "12/KS", "UBND xã A", datetime(2019, 5, 14), "001203000123", "Hộ tịch"])
    ws.append(["b.png", "Giấy khai sinh", "13/KS", "UBND xã A", datetime(2019, 5, 15), 1203000124, "Hộ tịch"])
    data = io.BytesIO()
    book.save(data)
    batch = read(make_zip(tmp_path / "b.zip", {"sổ.xlsx": data.getvalue(), "a.png": png(), "b.png": png("b")}))
    assert [(r.line, r.data.issued_on) for r in batch.rows] == [(2, date(2019, 5, 14))]
    assert [(p.line, p.column) for p in batch.problems] == [(3, "owner_id_number")]
    assert "leading zeros" in batch.problems[0].reason


@pytest.mark.parametrize(
    ("members", "slug"),
    [
        ({"a.png": b"x"}, "batch-sheet-missing"),
        ({"a.csv": b"file\n", "b.xlsx": b"x"}, "batch-sheets-ambiguous"),
        ({"m.csv": b"file,paper_kind,color\n"}, "batch-sheet-columns"),
        ({"m.csv": b"file,paper_kind,number,issuer,issued_on,owner_id_number\n"}, "batch-sheet-columns"),
        ({"m.csv": b"file,paper_kind,number,issuer,issued_on,owner_id_number,field\n"}, "batch-sheet-empty"),
    ],
)
def test_a_batch_without_a_usable_sheet_is_refused_whole(tmp_path: Path, members: dict[str, bytes], slug: str) -> None:
    with pytest.raises(backfile.BatchRefused) as refused:
        read(make_zip(tmp_path / "b.zip", members))
    assert refused.value.slug == slug


def test_not_a_zip_is_a_415(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    path.write_bytes(pdf_bytes())
    with pytest.raises(backfile.BatchRefused) as refused:
        read(path)
    assert refused.value.status == 415


def test_an_image_becomes_pdfa_with_its_output_intent_and_size(tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(png(mode="RGBA"))  # alpha is not allowed in PDF/A-1: flattened
    icc = backfile.srgb_profile(tmp_path / "icc")
    pages = backfile.image_to_pdfa(source, tmp_path / "a.pdf", icc=icc, default_dpi=200)
    reader = PdfReader(tmp_path / "a.pdf")
    assert pages == len(reader.pages) == 1
    root = reader.trailer["/Root"]
    intent = root["/OutputIntents"][0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    xmp = root["/Metadata"].get_object().get_data()
    assert re.search(rb"pdfaid:part=.1.", xmp) and re.search(rb"pdfaid:conformance=.B.", xmp)
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(width), round(height)) == (round(620 / 75 * 72), round(877 / 75 * 72))  # the scan's own 75 dpi


def test_a_multipage_tiff_gives_one_page_per_frame_and_a_damaged_image_is_refused(tmp_path: Path) -> None:
    frames = [Image.new("CMYK", (300, 400), (0, 0, 0, n * 40)) for n in range(3)]
    frames[0].save(tmp_path / "t.tif", format="TIFF", save_all=True, append_images=frames[1:], dpi=(150, 150))
    icc = backfile.srgb_profile(tmp_path / "icc")
    assert backfile.image_to_pdfa(tmp_path / "t.tif", tmp_path / "t.pdf", icc=icc, default_dpi=200) == 3
    assert len(PdfReader(tmp_path / "t.pdf").pages) == 3
    (tmp_path / "bad.png").write_bytes(png()[:400])
    with pytest.raises(pdfs.PaperRefused) as refused:
        backfile.as_pdf(tmp_path / "bad.png", MediaType.PNG, tmp_path / "bad.pdf", icc=icc, default_dpi=200)
    assert refused.value.slug == "damaged-file"


def test_the_share_is_digitized_over_declared_per_field() -> None:
    lines = domain.progress("U", {"Hộ tịch": 200, "Đất đai": 0, "Xây dựng": 10}, {"Hộ tịch": (150, 3), "Chứng thực": (5, 0), "Xây dựng": (12, 0)})
    by_field = {p.field: p for p in lines}
    assert [p.field for p in lines] == ["Chứng thực", "Đất đai", "Hộ tịch", "Xây dựng"]
    assert (by_field["Hộ tịch"].share_percent, by_field["Hộ tịch"].remaining, by_field["Hộ tịch"].expired) == (75.0, 50, 3)
    assert by_field["Chứng thực"].share_percent is None and by_field["Chứng thực"].remaining is None
    assert by_field["Đất đai"].share_percent == 100.0
    assert (by_field["Xây dựng"].share_percent, by_field["Xây dựng"].remaining) == (120.0, 0)


def test_result_keys_ignore_case_spacing_and_unicode_form() -> None:
    decomposed = unicodedata.normalize("NFD", "UBND phường Phú Hội")
    assert domain.result_key("Giấy khai sinh", "12/KS", decomposed) == domain.result_key(" giấy  KHAI sinh", "12/ks", "UBND PHƯỜNG PHÚ HỘI")
    assert domain.result_key("Giấy khai sinh", "12/KS", "UBND xã A") != domain.result_key("Giấy khai sinh", "13/KS", "UBND xã A")
