"""Digitization rules: types by content, checksums, owner keys, completeness, ranges, certification wording."""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.digitization import domain
from services.digitization.domain import MediaType

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", MediaType.PDF),
        (b"\xef\xbb\xbf junk before the header %PDF-1.4", MediaType.PDF),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", MediaType.JPEG),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", MediaType.PNG),
        (b"II*\x00\x08\x00\x00\x00", MediaType.TIFF),
        (b"MM\x00*\x00\x00\x00\x08", MediaType.TIFF),
        (b"GIF89a", None),
        (b"PK\x03\x04", None),
        (b"", None),
        (b"%PDX-1.7", None),
    ],
)
def test_a_file_is_known_by_its_first_bytes_not_its_name(head: bytes, expected: MediaType | None) -> None:
    assert domain.sniff(head) == expected


def test_a_client_checksum_comes_as_hex_or_as_an_rfc_9530_digest() -> None:
    data = b"to khai CT01"
    hexdigest = hashlib.sha256(data).hexdigest()
    b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert domain.client_checksum(content_sha256=hexdigest.upper(), repr_digest=None) == hexdigest
    assert domain.client_checksum(content_sha256=None, repr_digest=f"sha-512=:abc=:, sha-256=:{b64}:") == hexdigest
    assert domain.client_checksum(content_sha256=hexdigest, repr_digest=f"sha-256=:{b64}:") == hexdigest
    assert domain.client_checksum(content_sha256=None, repr_digest=None) is None


@pytest.mark.parametrize(
    ("content_sha256", "repr_digest", "message"),
    [
        ("abc", None, "64 hexadecimal"),
        (None, "md5=:AAAA:", "no sha-256"),
        (None, "sha-256=:!!!:", "no sha-256"),
        (None, "sha-256=:AAAA:", "32 bytes"),
        ("0" * 64, "sha-256=:" + base64.b64encode(b"\x01" * 32).decode() + ":", "disagree"),
    ],
)
def test_an_unreadable_checksum_is_refused_with_a_reason(content_sha256: str | None, repr_digest: str | None, message: str) -> None:
    with pytest.raises(domain.BadChecksum, match=message):
        domain.client_checksum(content_sha256=content_sha256, repr_digest=repr_digest)


def test_the_owner_key_is_a_keyed_hash_that_ignores_spacing_and_depends_on_the_secret() -> None:
    key = domain.owner_key(b"secret-1", "001203004567")
    assert key == domain.owner_key(b"secret-1", " 001 203 004 567 ")
    assert key != domain.owner_key(b"secret-2", "001203004567")
    assert key != hashlib.sha256(b"001203004567").hexdigest(), "a plain hash of a 12-digit number is trivially reversed"
    assert "001203004567" not in key and len(key) == 64
    assert domain.owner_hint("001203004567") == "*********567"


def test_components_are_matched_by_code_or_by_name_whatever_the_spacing_and_case() -> None:
    assert domain.component_key("CT01", "Tờ khai") == "CT01"
    assert domain.component_key(None, "  Tờ   khai CT01 ") == domain.component_key("", "tờ khai ct01")
    assert domain.component_key(None, None) == ""


def test_intake_is_complete_when_every_required_component_is_digitized_or_reused() -> None:
    verdict = domain.completeness(["CT01", "Giấy khai sinh", "HD"], digitized=["CT01"], reused=["giấy  khai sinh"])
    assert verdict.digitized == ("CT01",) and verdict.reused == ("Giấy khai sinh",) and verdict.missing == ("HD",)
    assert not verdict.complete
    assert domain.completeness(["CT01"], digitized=["CT01"], reused=[]).complete


def test_a_paper_is_reusable_until_it_expires() -> None:
    today = date(2026, 3, 2)
    assert domain.still_valid(None, today)
    assert domain.still_valid(date(2026, 3, 2), today)
    assert not domain.still_valid(date(2026, 3, 1), today)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=900-5000", (900, 999)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=abc", None),
    ],
)
def test_a_range_header_selects_bytes_of_the_file(header: str | None, expected: tuple[int, int] | None) -> None:
    assert domain.byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-0"])
def test_a_range_outside_the_file_is_unsatisfiable(header: str) -> None:
    with pytest.raises(domain.UnsatisfiableRange):
        domain.byte_range(header, 1000)


def test_a_certified_copy_states_what_who_when_and_its_number_in_vietnamese() -> None:
    at = datetime(2026, 2, 3, 9, 5, tzinfo=VN)
    number = domain.copy_number(12, 2026)
    lines = domain.certification_lines(
        domain.Certification(
            agency="UBND phường Phú Hội", place="Phường Phú Hội", paper_name="Bằng tốt nghiệp", pages=2, number=number,
            officer_name="Trần Văn Đức", officer_title="Công chức Tư pháp - Hộ tịch", certified_at=at, dossier_code="X-1",
        )
    )  # fmt: skip
    text = "\n".join(lines)
    assert number == "00012/2026-SCT/BSĐT"
    assert "đúng với bản chính: Bằng tốt nghiệp" in text and "gồm 02 trang" in text
    assert "Số chứng thực: 00012/2026-SCT/BSĐT" in text and "09 giờ 05 phút, ngày 03 tháng 02 năm 2026" in text
    assert domain.dated_line("Phường Phú Hội", at) == "Phường Phú Hội, ngày 03 tháng 02 năm 2026"


def test_the_signature_block_names_the_signer_the_official_and_the_time_in_vietnam() -> None:
    at = datetime(2026, 2, 3, 2, 5, tzinfo=ZoneInfo("UTC"))
    lines = domain.signature_lines(signer="UBND phường Phú Hội", officer="Trần Văn Đức", at=at, purpose="Đã ký số kết quả")
    assert lines == (
        "Đã ký số kết quả",
        "Ký bởi: UBND phường Phú Hội",
        "Người thực hiện: Trần Văn Đức",
        "Thời gian ký: 09 giờ 05 phút, ngày 03 tháng 02 năm 2026",
    )
