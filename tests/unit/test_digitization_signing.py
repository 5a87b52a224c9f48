"""The test PKI, PAdES signing with a visible block, and what verification reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fpdf import FPDF
from pydantic import ValidationError
from pypdf import PdfReader, PdfWriter

from services.digitization import signing
from services.digitization.pki import ensure_dev_pki, write_test_pki
from services.digitization.settings import DigitizationSettings

UNIT = "UBND xã Hòa Tiến"


@pytest.fixture(scope="module")
def unit(tmp_path_factory: pytest.TempPathFactory) -> signing.UnitSigner:
    pki = write_test_pki(tmp_path_factory.mktemp("pki"), unit_name=UNIT, unit_code="000.00.31.H56")
    return signing.load_signer(pki.pkcs12, pki.password)


def _pdf(path: Path) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.output(str(path))
    return path


async def test_a_signed_pdf_verifies_with_the_units_name_serial_and_time(unit: signing.UnitSigner, tmp_path: Path) -> None:
    block = signing.VisibleBlock(page=0, box=(330, 30, 565, 110), lines=("Ký bởi: " + UNIT, "Thời gian ký: 09 giờ 05 phút"))
    await asyncio.to_thread(signing.sign_file, _pdf(tmp_path / "a.pdf"), tmp_path / "b.pdf", unit, field_name="KySo", reason="Ký số kết quả", block=block)
    [report] = await signing.verify_file(tmp_path / "b.pdf", unit.trust_roots)
    assert report.valid and report.intact and report.trusted and report.covers_whole_file and not report.modified_after_signing
    assert report.signer == UNIT and report.certificate_serial == unit.certificate_serial and report.signing_time is not None
    annotation = PdfReader(tmp_path / "b.pdf").pages[0]["/Annots"][0].get_object()
    assert [round(float(v)) for v in annotation["/Rect"]] == [330, 30, 565, 110]
    assert "/AP" in annotation, "the visible block has an appearance"


async def test_a_signature_from_another_ca_is_intact_but_not_trusted(unit: signing.UnitSigner, tmp_path: Path) -> None:
    stranger = signing.load_signer(*(lambda p: (p.pkcs12, p.password))(write_test_pki(tmp_path / "other", unit_name="Giả mạo")))
    await asyncio.to_thread(signing.sign_file, _pdf(tmp_path / "a.pdf"), tmp_path / "b.pdf", stranger, field_name="KySo", reason="x")
    [report] = await signing.verify_file(tmp_path / "b.pdf", unit.trust_roots)
    assert report.intact and not report.trusted


async def test_an_update_after_signing_is_reported(unit: signing.UnitSigner, tmp_path: Path) -> None:
    await asyncio.to_thread(signing.sign_file, _pdf(tmp_path / "a.pdf"), tmp_path / "b.pdf", unit, field_name="KySo", reason="x")
    writer = PdfWriter(tmp_path / "b.pdf", incremental=True)
    writer.add_metadata({"/Title": "sửa"})
    with open(tmp_path / "c.pdf", "wb") as out:
        writer.write(out)
    [report] = await signing.verify_file(tmp_path / "c.pdf", unit.trust_roots)
    assert report.intact and report.modified_after_signing and not report.covers_whole_file


def test_a_wrong_password_or_missing_file_says_so(tmp_path: Path) -> None:
    pki = write_test_pki(tmp_path, unit_name=UNIT)
    with pytest.raises(signing.SigningUnavailable, match="wrong password"):
        signing.load_signer(pki.pkcs12, "not-the-password")
    with pytest.raises(signing.SigningUnavailable, match="cannot read"):
        signing.load_signer(tmp_path / "missing.p12", None)


def test_the_development_certificate_is_made_once(tmp_path: Path) -> None:
    first = ensure_dev_pki(tmp_path)
    second = ensure_dev_pki(tmp_path)
    assert first.pkcs12 == second.pkcs12 and first.pkcs12.read_bytes() == second.pkcs12.read_bytes()
    assert signing.load_signer(first.pkcs12, first.password).name


def test_production_refuses_to_start_without_a_certificate_or_a_real_owner_key(tmp_path: Path) -> None:
    base = {"environment": "production", "jwt_public_key": "-----BEGIN PUBLIC KEY-----x", "kafka_security_protocol": "SSL"}
    with pytest.raises(ValidationError, match="SIGNING_PKCS12_FILE"):
        DigitizationSettings(**base, owner_key_secret="a-long-enough-real-secret")
    with pytest.raises(ValidationError, match="OWNER_KEY_SECRET"):
        DigitizationSettings(**base, signing_pkcs12_file=tmp_path / "unit.p12", owner_key_secret="changeme")
    ok = DigitizationSettings(**base, signing_pkcs12_file=tmp_path / "unit.p12", owner_key_secret="a-long-enough-real-secret")
    assert ok.owner_secret() == b"a-long-enough-real-secret"
    with pytest.raises(ValidationError, match="S3_BUCKET"):
        DigitizationSettings(storage_backend="s3")
