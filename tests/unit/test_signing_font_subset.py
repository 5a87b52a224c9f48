"""The visible signature block's font: the subset embedded is the same whether the dropped layout tables are taken out
before subsetting (what signing does, to save the CPU of decompiling them) or by pyHanko's subsetter itself."""

from __future__ import annotations

import io
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from services.digitization import signing
from shared.pdf import font_files

TEXT = "Ký bởi: UBND xã Hòa Tiến\nThời gian ký: 09 giờ 05 phút, ngày 03/12/2026\nỨng dụng Một cửa – ĐÃ KÝ SỐ"


def _subset(factory: GlyphAccumulatorFactory, source: Path) -> tuple[bytes, set[str]]:
    with open(source, "rb") as inf:
        writer = IncrementalPdfFileWriter(inf, strict=False)
        engine = factory.create_font_engine(writer)
        for line in TEXT.splitlines():
            engine.shape(line)
        engine.prepare_write()  # subsets engine.tt in place and writes it into the document
        engine.tt.recalcTimestamp = False  # the 'head' table's time would differ by the second it was saved in
        out = io.BytesIO()
        engine.tt.save(out)
        return out.getvalue(), set(engine.tt.keys())


def test_the_embedded_subset_is_byte_for_byte_pyhankos(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.output(str(tmp_path / "a.pdf"))
    font = str(font_files()[""])
    lean, lean_tables = _subset(signing._LeanSubsetFactory(font, font_size=8), tmp_path / "a.pdf")
    plain, plain_tables = _subset(GlyphAccumulatorFactory(font, font_size=8), tmp_path / "a.pdf")
    assert lean == plain and lean_tables == plain_tables
    assert {"GPOS", "GSUB"} <= set(ttLib.TTFont(font).keys()), "the font has the layout tables shaping uses"
    assert not {"GPOS", "GDEF", "GSUB"} & lean_tables
    assert len(ttLib.TTFont(io.BytesIO(lean)).getGlyphOrder()) > 1


def test_the_space_reserved_for_the_signature_is_what_pyhanko_estimates_every_time(tmp_path: Path) -> None:
    import asyncio

    from pyhanko.sign import fields, signers
    from pypdf import PdfReader

    from services.digitization.pki import write_test_pki

    made = write_test_pki(tmp_path / "pki", unit_name="UBND xã Hòa Tiến", unit_code="000.00.31.H56")
    unit = signing.load_signer(made.pkcs12, made.password)
    pdf = FPDF()
    pdf.add_page()
    pdf.output(str(tmp_path / "a.pdf"))

    def contents(path: Path) -> int:
        field = PdfReader(path).trailer["/Root"]["/AcroForm"]["/Fields"][0].get_object()
        return len(field["/V"]["/Contents"])

    meta = signers.PdfSignatureMetadata(field_name="KySo", reason="x", subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256")
    with open(tmp_path / "a.pdf", "rb") as inf, open(tmp_path / "stock.pdf", "wb") as out:  # pyHanko's own estimate
        signers.PdfSigner(meta, unit.signer).sign_pdf(IncrementalPdfFileWriter(inf, strict=False), output=out)
    sizes = []
    for n in range(3):
        signing.sign_file(tmp_path / "a.pdf", tmp_path / f"b{n}.pdf", unit, field_name="KySo", reason="x")
        [report] = asyncio.run(signing.verify_file(tmp_path / f"b{n}.pdf", unit.trust_roots))
        assert report.valid and report.intact and report.trusted and report.covers_whole_file
        sizes.append(contents(tmp_path / f"b{n}.pdf"))
    assert sizes == [contents(tmp_path / "stock.pdf")] * 3
    assert unit.reserved, "the estimate is kept for the next signature"
