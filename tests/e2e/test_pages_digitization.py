"""Checking a certified electronic copy in a real browser: the QR on its certification page opens the check page.

Digitization runs as a process with a test CA's certificate, on a port chosen here so that the link it prints
(``DIGITIZATION_PUBLIC_BASE_URL``) is the one the browser opens. A dossier arrives as ``dossier.received`` on the
intake topic; a leader signs its result; a clerk certifies a copy of a paper. The copy's certification page is read
by zbar (``decode_qr_pdf``) and its URL opened in Debian's Chromium: "Hợp lệ", who signed, when, the hash, and nothing
about the owner, the paper or the dossier. Then the stored file is changed on disk, as someone with access to the
file store might, and the same page says "Không hợp lệ". Another copy is revoked by a leader of the unit through
the API, and its page then says "Bản sao đã bị thu hồi" with the time and the reason, and "Không hợp lệ".
Screenshots at 360 px and 1280 px go to test-artifacts/pages/.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw
from playwright.async_api import Page

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from services.digitization.pki import PkiFiles, write_test_pki
from shared.events import DossierReceived
from shared.pages import CONTENT_SECURITY_POLICY
from shared.vntext import format_instant
from tests.support.browser import assert_page_for_people, decode_qr_pdf, recorded, screenshots
from tests.support.stack import Stack, eventually, official, produce, random_unit

pytest_plugins = ("tests.support.browser_plugin",)  # its fixtures: browser_page, chromium, playwright_driver
pytestmark = pytest.mark.timeout(600)  # the first run may install Chromium

VN = ZoneInfo("Asia/Ho_Chi_Minh")
UNIT = random_unit()
UNIT_NAME = "UBND phường Phú Hội"
OWNER = f"001203{uuid.uuid4().int % 1_000_000:06d}"


def shows_last_digits(content: str) -> bool:
    """Whether the page shows the owner's last three digits as a masked number would ("*********543"): standing on
    their own, not inside a hash, a serial or an id, where any three digits turn up by chance."""
    return re.search(rf"(?<![0-9A-Za-z]){OWNER[-3:]}(?![0-9A-Za-z])", content) is not None
PAPER = "Bằng tốt nghiệp đại học"
BURST = 40


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """A test CA and the unit's certificate."""
    return write_test_pki(tmp_path_factory.mktemp("pki"), unit_name=UNIT_NAME, unit_code=UNIT)


@pytest.fixture(scope="module")
async def scanner(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, pki: PkiFiles, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Digitization on a port of its own, whose certification pages print links to that port."""
    workdir = Path(tmp_path_factory.mktemp("digitization-pages"))
    port = free_port()
    stack = Stack.isolated(
        postgres, broker, workdir, services=["digitization"], ports={"digitization": port},
        env={"DIGITIZATION_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "DIGITIZATION_UNIT_NAMES": json.dumps({UNIT: UNIT_NAME}),
             "DIGITIZATION_STORAGE_ROOT": str(workdir / "files"), "DIGITIZATION_SIGNING_PKCS12_FILE": str(pki.pkcs12),
             "DIGITIZATION_SIGNING_PKCS12_PASSWORD": pki.password, "DIGITIZATION_SIGNING_LOCATION": "Phường Phú Hội",
             "DIGITIZATION_OWNER_KEY_SECRET": "owner-key-secret-for-page-tests-8e2a", "MOTCUA_HOME": str(workdir / "home"),
             "RATE_LIMIT_PUBLIC_PER_SECOND": "0.001", "RATE_LIMIT_PUBLIC_BURST": str(BURST)},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


async def received(stack: Stack, procedure_code: str) -> str:
    """A dossier intake accepted, once digitization knows it."""
    code = f"{UNIT}-{uuid.uuid4().hex[:6]}"
    now = datetime.now(VN)
    await produce(
        stack,
        DossierReceived(
            dossier_code=code, unit=UNIT, occurred_at=now, procedure_code=procedure_code, procedure_name="Chứng thực bản sao từ bản chính",
            applicant_name="Nguyễn Thị Hồng Nhung", channel="counter", received_at=now, appointment_at=now + timedelta(days=1),
        ),
    )  # fmt: skip
    async with official(stack, "digitization", "clerk", UNIT) as clerk:

        async def known() -> bool:
            return (await clerk.get(f"/api/v1/dossiers/{code}/documents")).status_code == 200

        await eventually(known)
    return code


def scan(label: str) -> bytes:
    """A scanned paper, as the counter's scanner makes it."""
    image = Image.new("RGB", (827, 1169), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 787, 1129), outline=(20, 20, 120), width=4)
    draw.text((80, 80), f"{label} {uuid.uuid4().hex}", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(100, 100))
    return out.getvalue()


def result_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=16)
    pdf.add_page()
    pdf.cell(text=f"Giay xac nhan {uuid.uuid4().hex}")
    return bytes(pdf.output())


def blob(stack: Stack, sha256: str) -> Path:
    """Where the local file store keeps a blob (services/digitization/storage.py: <root>/ab/cd/<sha256>)."""
    return stack.workdir / "files" / sha256[:2] / sha256[2:4] / sha256


def one_bit_of_the_scan_flipped(pdf: bytes) -> bytes:
    """The PDF with one bit changed inside the scanned image's data: it still reads as a PDF, its signed bytes differ."""
    data = bytearray(pdf)
    image = re.search(rb"/Subtype\s*/Image", data)
    assert image is not None, "the copy holds the scan as an image"
    start = data.index(b"stream", image.end()) + len(b"stream\n") + 64
    data[start] ^= 0x01
    return bytes(data)


async def text_of(page: Page, selector: str) -> str:
    return (await page.locator(selector).inner_text()).strip()


async def test_the_copys_qr_opens_its_check_valid_then_not_valid_once_the_stored_file_is_changed(
    scanner: Stack, browser_page: Page, tmp_path: Path
) -> None:
    origin = scanner.url("digitization")
    code = await received(scanner, "2.000815")
    original = scan("Bang tot nghiep")
    async with (
        official(scanner, "digitization", "clerk", UNIT) as clerk,
        official(scanner, "digitization", "specialist", UNIT) as specialist,
        official(scanner, "digitization", "leader", UNIT) as leader,
    ):
        # The result of the dossier is signed by the leader: a signed document, but not a certified copy.
        result = await specialist.post(
            "/api/v1/documents", files={"file": ("ket-qua.pdf", result_pdf(), "application/pdf")},
            data={"dossier_code": code, "stage": "result", "component_name": "Kết quả"},
        )  # fmt: skip
        assert result.status_code == 201, result.text
        signed = await leader.post(f"/api/v1/documents/{result.json()['id']}/sign")
        assert signed.status_code == 200 and signed.json()["signed"], signed.text

        made = await clerk.post(
            "/api/v1/certified-copies", files={"file": ("bang.png", original, "image/png")},
            headers={"X-Content-SHA256": hashlib.sha256(original).hexdigest()},
            data={"dossier_code": code, "paper_name": PAPER, "paper_code": "BTN", "issuer": "Trường Đại học Huế", "owner_id_number": OWNER},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        copy = made.json()
        pdf = await clerk.get(copy["content_url"])
        assert pdf.status_code == 200
    path = tmp_path / "ban-sao.pdf"
    path.write_bytes(pdf.content)
    url = f"{origin}/kiem-tra/ban-sao/{copy['id']}"
    assert decode_qr_pdf(path, page=copy["pages"]) == [url], "the certification page (the last) carries the check's link"

    response = await browser_page.goto(url)
    assert response is not None and response.status == 200
    headers = await response.all_headers()
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY and headers["x-content-type-options"] == "nosniff"
    assert await text_of(browser_page, "h1") == "Kiểm tra bản sao điện tử"
    assert await text_of(browser_page, "#hieu-luc") == "Hợp lệ"
    assert await text_of(browser_page, "#so-chung-thuc") == copy["copy_number"]
    assert await text_of(browser_page, ".site-header .unit-name") == UNIT_NAME
    facts = await text_of(browser_page, ".facts")
    assert "Chữ ký số\nHợp lệ" in facts and f"Người ký\n{UNIT_NAME}" in facts
    assert f"Mã băm SHA-256 của bản sao khi ký\n{copy['sha256']}" in facts and hashlib.sha256(pdf.content).hexdigest() == copy["sha256"]
    assert f"Số sê-ri chứng thư số\n{copy['signature']['certificate_serial']}" in facts
    signed_at = datetime.fromisoformat(copy["signature"]["signed_at"])
    shown_at = facts.split("Thời điểm ký\n")[1].split("\n")[0]
    # The signature's own time, taken by the signer a moment after the register's.
    assert shown_at in {format_instant(signed_at), format_instant(signed_at + timedelta(minutes=1))}
    assert "Tệp đang lưu trùng với tệp đã ký\nCó" in facts
    content = await browser_page.content()
    assert [s for s in (OWNER, PAPER, "Trường Đại học Huế", code, "Nhung") if s in content] == []
    assert not shows_last_digits(content)
    await assert_page_for_people(browser_page, origin=origin)
    assert not recorded(browser_page).console_errors
    await screenshots(browser_page, "digitization-copy-valid")

    # Someone with access to the file store changes one byte of the stored copy; the same link now says so.
    stored = blob(scanner, copy["sha256"])
    stored.write_bytes(one_bit_of_the_scan_flipped(stored.read_bytes()))
    response = await browser_page.reload()
    assert response is not None and response.status == 200
    assert await text_of(browser_page, "#hieu-luc") == "Không hợp lệ"
    reasons = await browser_page.locator("#ly-do li").all_inner_texts()
    assert reasons == [
        "Tệp bản sao đang lưu không còn trùng với tệp đã được ký (mã băm đã khác).",
        "Nội dung bản sao đã bị thay đổi sau khi ký: chữ ký số không còn khớp với nội dung.",
    ]
    facts = await text_of(browser_page, ".facts")
    assert "Chữ ký số\nKhông hợp lệ" in facts and "Tệp đang lưu trùng với tệp đã ký\nKhông" in facts
    assert copy["sha256"] in facts  # the hash it had when signed, to compare a copy someone holds with
    await assert_page_for_people(browser_page, origin=origin)
    await screenshots(browser_page, "digitization-copy-not-valid")

    # The signed result is no certified copy: its id opens nothing.
    response = await browser_page.goto(f"{origin}/kiem-tra/ban-sao/{result.json()['id']}")
    assert response is not None and response.status == 404


async def test_a_copy_revoked_by_a_leader_of_its_unit_is_shown_revoked_with_its_date_and_reason_and_not_valid(
    scanner: Stack, browser_page: Page
) -> None:
    origin = scanner.url("digitization")
    code = await received(scanner, "2.000815")
    original = scan("Bang tot nghiep")
    reason = "Bản chính xuất trình khi chứng thực không phải do Trường Đại học Huế cấp <b>giả</b>"
    async with (
        official(scanner, "digitization", "clerk", UNIT) as clerk,
        official(scanner, "digitization", "leader", UNIT) as leader,
    ):
        made = await clerk.post(
            "/api/v1/certified-copies", files={"file": ("bang.png", original, "image/png")},
            data={"dossier_code": code, "paper_name": PAPER, "owner_id_number": OWNER},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        copy = made.json()
        url = f"{origin}/kiem-tra/ban-sao/{copy['id']}"
        response = await browser_page.goto(url)
        assert response is not None and response.status == 200
        assert await text_of(browser_page, "#hieu-luc") == "Hợp lệ"
        assert "Thu hồi\nChưa ghi nhận việc thu hồi bản sao này." in await text_of(browser_page, ".facts")
        assert await browser_page.locator("#thu-hoi").count() == 0

        revoked = await leader.post(f"/api/v1/certified-copies/{copy['id']}/revocation", json={"reason": reason})
        assert revoked.status_code == 201, revoked.text
        assert revoked.json()["check_url"] == url
    revoked_at = datetime.fromisoformat(revoked.json()["revoked_at"])

    response = await browser_page.reload()
    assert response is not None and response.status == 200
    assert await text_of(browser_page, "#hieu-luc") == "Không hợp lệ"
    notice = await text_of(browser_page, "#thu-hoi")
    assert notice.startswith("Bản sao đã bị thu hồi vào lúc ")
    assert f"vào lúc {format_instant(revoked_at)}." in notice
    assert await text_of(browser_page, "#ly-do-thu-hoi") == reason, "the reason is shown as text, markup and all"
    assert await browser_page.locator("#ket-luan b").count() == 0
    assert await browser_page.locator("#ly-do").count() == 0, "the signature itself is intact: no signature problem listed"
    facts = await text_of(browser_page, ".facts")
    assert "Chữ ký số\nHợp lệ" in facts and "Tệp đang lưu trùng với tệp đã ký\nCó" in facts
    assert f"Thu hồi\nĐã bị thu hồi vào lúc {format_instant(revoked_at)}" in facts
    content = await browser_page.content()
    assert [s for s in (OWNER, PAPER, code, "Nhung") if s in content] == []
    assert not shows_last_digits(content)
    await assert_page_for_people(browser_page, origin=origin)
    assert not recorded(browser_page).console_errors
    await screenshots(browser_page, "digitization-copy-revoked")


async def test_an_unknown_copy_is_the_vietnamese_404_and_pages_draw_on_the_public_rate_limit(
    scanner: Stack, browser_page: Page
) -> None:
    origin = scanner.url("digitization")
    response = await browser_page.goto(f"{origin}/kiem-tra/ban-sao/{uuid.uuid4()}")
    assert response is not None and response.status == 404
    assert (await response.all_headers())["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert await text_of(browser_page, "h1") == "Không tìm thấy"
    assert await text_of(browser_page, ".error-code") == "Lỗi 404"
    assert "Không tìm thấy bản sao điện tử được chứng thực theo đường dẫn này." in await text_of(browser_page, "main")
    await assert_page_for_people(browser_page, origin=origin)
    await screenshots(browser_page, "digitization-404")

    async with httpx.AsyncClient(base_url=origin, headers={"X-Forwarded-For": "203.0.113.27"}) as client:
        within = [await client.get(f"/kiem-tra/ban-sao/{uuid.uuid4()}") for _ in range(BURST)]
        beyond = await client.get(f"/kiem-tra/ban-sao/{uuid.uuid4()}")
    assert {r.status_code for r in within} == {404}
    assert beyond.status_code == 429 and beyond.headers["content-type"].startswith("text/html")
    assert int(beyond.headers["retry-after"]) >= 1 and "Quá nhiều yêu cầu" in beyond.text
