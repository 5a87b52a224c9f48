"""Digitization rules: file types by content, checksums, owner keys, reuse, completeness, certification wording.

Pure: no I/O, no clock (times come in as arguments).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from shared.vntext import format_date, format_instant, mask_id_number

PDF = "application/pdf"


class MediaType(StrEnum):
    """What an upload may be, recognised by its first bytes, never by its name."""

    PDF = "application/pdf"
    JPEG = "image/jpeg"
    PNG = "image/png"
    TIFF = "image/tiff"


_MAGIC: tuple[tuple[bytes, MediaType], ...] = (
    (b"%PDF-", MediaType.PDF),
    (b"\xff\xd8\xff", MediaType.JPEG),
    (b"\x89PNG\r\n\x1a\n", MediaType.PNG),
    (b"II*\x00", MediaType.TIFF),
    (b"MM\x00*", MediaType.TIFF),
)
SNIFF_BYTES = 1024  # a PDF header may follow up to 1 KiB of junk (ISO 32000-1, 7.5.2 implementation note)


def sniff(head: bytes) -> MediaType | None:
    """The type of a file from its first bytes; None for anything not accepted."""
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if b"%PDF-" in head[:SNIFF_BYTES]:
        return MediaType.PDF
    return None


class BadChecksum(ValueError):
    """A client checksum header that cannot be read."""


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DIGEST_ITEM = re.compile(r"\s*sha-256\s*=\s*:([A-Za-z0-9+/=]+):\s*", re.IGNORECASE)


def client_checksum(*, content_sha256: str | None, repr_digest: str | None) -> str | None:
    """The SHA-256 (hex) a client claims: ``X-Content-SHA256: <hex>`` or RFC 9530 ``Repr-Digest: sha-256=:<base64>:``."""
    claims = []
    if content_sha256 is not None:
        value = content_sha256.strip()
        if not _HEX64.fullmatch(value):
            raise BadChecksum("X-Content-SHA256: expected 64 hexadecimal digits")
        claims.append(value.lower())
    if repr_digest is not None:
        found = None
        for item in repr_digest.split(","):
            match = _DIGEST_ITEM.fullmatch(item)
            if match:
                try:
                    raw = base64.b64decode(match.group(1), validate=True)
                except binascii.Error:
                    raise BadChecksum("Repr-Digest: sha-256 is not base64") from None
                if len(raw) != 32:
                    raise BadChecksum("Repr-Digest: sha-256 must be 32 bytes")
                found = raw.hex()
        if found is None:
            raise BadChecksum("Repr-Digest: no sha-256 member (other algorithms are not accepted)")
        claims.append(found)
    if len(set(claims)) > 1:
        raise BadChecksum("X-Content-SHA256 and Repr-Digest disagree with each other")
    return claims[0] if claims else None


# ---- owners -------------------------------------------------------------------


def normalise_id_number(id_number: str) -> str:
    """Digits and letters only, upper case: the form the key is computed on."""
    return "".join(ch for ch in id_number if ch.isalnum()).upper()


def owner_key(secret: bytes, id_number: str) -> str:
    """HMAC-SHA256 of the id number: the store's key for an owner (the number itself is never stored)."""
    return hmac.new(secret, normalise_id_number(id_number).encode(), hashlib.sha256).hexdigest()


def owner_hint(id_number: str) -> str:
    """The id number as screens may show it (last three digits)."""
    return mask_id_number(normalise_id_number(id_number))


# ---- components, reuse and completeness -------------------------------------------


def component_key(code: str | None, name: str | None) -> str:
    """How a dossier component is identified: its code (MaThanhPhanHoSo) when given, else its name."""
    if code and code.strip():
        return code.strip()
    if name and name.strip():
        return " ".join(name.split()).casefold()
    return ""


def _loose(key: str) -> str:
    return " ".join(key.split()).casefold()


def still_valid(valid_until: date | None, today: date) -> bool:
    """A paper may be reused while it has not expired (no expiry: always)."""
    return valid_until is None or valid_until >= today


@dataclass(frozen=True)
class Completeness:
    """Which required components of a dossier are digitized, reused or still missing."""

    digitized: tuple[str, ...]
    reused: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Every required component is there."""
        return not self.missing


def completeness(required: Iterable[str], *, digitized: Iterable[str], reused: Iterable[str]) -> Completeness:
    """Match the required components (codes or names) against what the dossier holds."""
    have_digitized = {_loose(k) for k in digitized}
    have_reused = {_loose(k) for k in reused}
    got_d, got_r, missing = [], [], []
    for item in required:
        key = _loose(item)
        if key in have_digitized:
            got_d.append(item)
        elif key in have_reused:
            got_r.append(item)
        else:
            missing.append(item)
    return Completeness(tuple(got_d), tuple(got_r), tuple(missing))


# ---- HTTP ranges ----------------------------------------------------------------------


class UnsatisfiableRange(ValueError):
    """A Range header that selects nothing of the file."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``Range: bytes=a-b`` as (start, end) inclusive; None for the whole file (absent or multi-range header)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # unknown units and multiple ranges: answer with the whole file (RFC 9110 allows it)
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        start, end = (size - int(last), size - 1) if first == "" else (int(first), int(last) if last else size - 1)
    except ValueError:
        return None
    if first == "":
        if end - start + 1 <= 0:
            raise UnsatisfiableRange(header)
        start = max(0, start)
    if start < 0 or start >= size or end < start:
        raise UnsatisfiableRange(header)
    return start, min(end, size - 1)


# ---- the certified electronic copy (2.000815) ------------------------------------------

CERTIFICATION_TITLE = "LỜI CHỨNG CHỨNG THỰC BẢN SAO ĐIỆN TỬ TỪ BẢN CHÍNH"
# The page anyone opens from the certification page's QR (services/digitization/pages.py serves it under /kiem-tra).
COPY_CHECK_PAGE = "/kiem-tra/ban-sao/{document_id}"


def copy_check_path(document_id: str) -> str:
    """The path of a certified copy's check page (a document id is a UUID: nothing to escape)."""
    return COPY_CHECK_PAGE.format(document_id=document_id)


def copy_book(year: int) -> str:
    """The register (sổ chứng thực) electronic copies are numbered in: one a year."""
    return f"{year}-SCT/BSĐT"


def copy_number(sequence: int, year: int) -> str:
    """The copy's number as printed: "Số chứng thực: 12, quyển số 2026-SCT/BSĐT"."""
    return f"{sequence:05d}/{copy_book(year)}"


@dataclass(frozen=True)
class Certification:
    """What the certification page says."""

    agency: str
    place: str
    paper_name: str
    pages: int
    number: str
    officer_name: str
    officer_title: str
    certified_at: datetime
    dossier_code: str


def certification_lines(c: Certification) -> list[str]:
    """The statement (Decree 23/2015 wording, for an electronic copy), one paragraph a line."""
    return [
        f"Chứng thực bản sao điện tử này đúng với bản chính: {c.paper_name}.",
        f"Bản sao điện tử gồm {c.pages:02d} trang, được chụp từ bản chính do người yêu cầu chứng thực xuất trình; "
        "người thực hiện chứng thực đã đối chiếu với bản chính.",
        f"Số chứng thực: {c.number}.",
        f"Mã hồ sơ: {c.dossier_code}.",
        f"Thời điểm chứng thực: {format_instant(c.certified_at)}.",
        "Bản sao điện tử được ký số bằng chứng thư số của cơ quan thực hiện chứng thực; "
        "bản sao có giá trị sử dụng thay cho bản chính trong các giao dịch, trừ trường hợp pháp luật có quy định khác.",
    ]


def dated_line(place: str, at: datetime) -> str:
    """ "Phường Phú Hội, ngày 03 tháng 02 năm 2026"."""
    dated = format_date(at)
    return f"{place}, {dated}" if place else dated[0].upper() + dated[1:]


def signature_lines(*, signer: str, officer: str | None, at: datetime, purpose: str) -> tuple[str, ...]:
    """The visible signature block: who signed, for whom, when (Vietnam time)."""
    lines = [purpose, f"Ký bởi: {signer}"]
    if officer:
        lines.append(f"Người thực hiện: {officer}")
    lines.append(f"Thời gian ký: {format_instant(at)}")
    return tuple(lines)


@dataclass(frozen=True)
class CopyVerdict:
    """Whether a certified copy can be relied on, and why not, in the words its check page uses."""

    valid: bool
    problems: tuple[str, ...]  # what is wrong with the signature or the stored file
    revoked: bool = False  # revoked by its unit: not valid, whatever the signature (the page says when and why)


def copy_verdict(
    *, signed: bool, intact: bool, trusted: bool, modified_after_signing: bool, file_matches: bool | None,
    revoked: bool = False,
) -> CopyVerdict:
    """A copy is valid when it was not revoked, its stored file is the one signed, carries the signature intact, by a
    trusted certificate, with nothing appended after signing. Each failure is named for the person checking it."""
    problems = []
    if file_matches is False:
        problems.append("Tệp bản sao đang lưu không còn trùng với tệp đã được ký (mã băm đã khác).")
    if not signed:
        problems.append("Không đọc được chữ ký số trong tệp bản sao.")
    elif not intact:
        problems.append("Nội dung bản sao đã bị thay đổi sau khi ký: chữ ký số không còn khớp với nội dung.")
    if signed and intact and not trusted:  # a broken signature says nothing about its certificate
        problems.append("Chứng thư số của người ký không thuộc cơ quan chứng thực được tin cậy.")
    if signed and modified_after_signing:
        problems.append("Tệp có phần nội dung được thêm vào sau khi ký.")
    return CopyVerdict(valid=not problems and not revoked, problems=tuple(problems), revoked=revoked)


# ---- back-digitization of results still in force (issue #22) -------------------------


def tidy(text: str) -> str:
    """Sheet text as it is kept: NFC (a sheet may carry decomposed diacritics), single spaces, no ends."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def result_key(paper_kind: str, number: str, issuer: str) -> str:
    """What makes two back-filed results the same result: kind, number and issuer, compared loosely."""
    return "|".join(tidy(part).casefold() for part in (paper_kind, number, issuer))


_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


def sheet_date(text: str) -> date:
    """A date as a sheet writes it: ISO ``2019-05-14`` or the Vietnamese ``14/05/2019``; ValueError otherwise."""
    text = text.strip()
    found = _DAY_MONTH_YEAR.match(text)
    if found:
        day, month, year = (int(g) for g in found.groups())
        return date(year, month, day)
    return date.fromisoformat(text[:10] if len(text) > 10 and text[10] in "T " else text)


# Characters that Vietnamese text in TCVN3 (ABC, the .VnTime fonts) turns into when it is read as a Unicode or
# Windows code page: its tone-marked vowels live at 0xA1-0xFE, where they show as these Latin-1 signs.
_TCVN3_SIGNS = frozenset("¸µ¶·¹¨¾»¼½Æ©ÊÇÈÉË®ÐÌÎÏÑª«ÕÒÓÔÖ×ÝØÜÞßãáâäåæçèéêëìíîïðñòóôõöøùúûüý¬¦§¤¥")
_VIETNAMESE_LATIN1 = frozenset("àáâãèéêìíòóôõùúýÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝ")


def looks_like_tcvn3(text: str) -> bool:
    """Text that is Vietnamese typed in TCVN3, read as Unicode: signs a Vietnamese word never holds, more than once."""
    odd = [ch for ch in text if ch in _TCVN3_SIGNS and ch not in _VIETNAMESE_LATIN1]
    return len(odd) >= 2


def _alphabetical(text: str) -> tuple[str, str]:
    """Vietnamese order, near enough for a list of fields: letters without their marks (đ with d), then as written."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text.casefold().replace("đ", "d")) if not unicodedata.combining(c))
    return bare, text


@dataclass(frozen=True)
class Progress:
    """A unit's field: the results in force it declared, how many of them are digitized, the share of the target."""

    unit: str
    field: str
    results_in_force: int | None  # declared; None: not declared yet
    digitized: int  # back-filed results still in force today
    expired: int  # back-filed results no longer in force today (not counted)

    @property
    def share_percent(self) -> float | None:
        """Digitized over declared, in percent (one decimal), uncapped so an under-declaration shows; None undeclared."""
        if self.results_in_force is None:
            return None
        if self.results_in_force == 0:
            return 100.0 if self.digitized == 0 else None
        return round(100 * self.digitized / self.results_in_force, 1)

    @property
    def remaining(self) -> int | None:
        """Results in force still to digitize (None undeclared)."""
        return None if self.results_in_force is None else max(0, self.results_in_force - self.digitized)


def progress(
    unit: str, declared: dict[str, int], filed: dict[str, tuple[int, int]]
) -> list[Progress]:
    """One line per field that is declared or has filings: ``declared`` field → count, ``filed`` field → (in force, expired)."""
    fields = sorted(set(declared) | set(filed), key=_alphabetical)
    return [
        Progress(unit=unit, field=f, results_in_force=declared.get(f), digitized=filed.get(f, (0, 0))[0], expired=filed.get(f, (0, 0))[1])
        for f in fields
    ]
