"""Intake's pages in a real browser: the receipt's QR opens the dossier's status, and the unit's procedure board.

Intake runs as a process on the session's Postgres and broker, on a port chosen here so that its public address
(``INTAKE_PUBLIC_BASE_URL``, what the receipt prints) is the one the browser opens. A clerk receives dossiers over
HTTP; the receipt PDF's QR is read by zbar (``decode_qr_pdf``) and that URL is opened in Debian's Chromium. The
checks are what a person would see: the code, the status in words, the appointment, where to collect, nothing about
the applicant, hostile names shown as text with no script run, the board's papers and fees as the catalog has them,
the Vietnamese 404 and 429 pages. Screenshots at 360 px and 1280 px go to test-artifacts/pages/.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Page

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.pages import CONTENT_SECURITY_POLICY
from shared.vntext import format_instant, format_vnd
from tests.support.browser import assert_page_for_people, decode_qr_pdf, recorded, screenshots
from tests.support.stack import Stack, official, random_unit

pytest_plugins = ("tests.support.browser_plugin",)  # its fixtures: browser_page, chromium, playwright_driver
pytestmark = pytest.mark.timeout(600)  # the first run may install Chromium

UNIT = random_unit()
UNIT_NAME = "UBND phường Phú Hội"
SCRIPT = "<script>alert(1)</script>"
BURST = 60  # page requests per address before the 429 (one every ~17 minutes after that)
CITIZEN = {
    "kind": "citizen", "name": "Nguyễn Thị Hồng Nhung", "id_number": "001203004567", "phone": "0912345678",
    "email": "nhung.nguyen@example.vn", "address": "12 Lê Lợi, phường Phú Hội",
}  # fmt: skip
PERSONAL = ("Nhung", "001203004567", "*********567", "0912345678", "nhung.nguyen@example.vn", "Lê Lợi")


@pytest.fixture(scope="module")
async def counter(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake on a port of its own, whose receipts print links to that port."""
    port = free_port()
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("intake-pages")), services=["intake"], ports={"intake": port},
        env={"INTAKE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "INTAKE_UNIT_NAMES": json.dumps({UNIT: UNIT_NAME}),
             "RATE_LIMIT_PUBLIC_PER_SECOND": "0.001", "RATE_LIMIT_PUBLIC_BURST": str(BURST)},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


async def text_of(page: Page, selector: str) -> str:
    return (await page.locator(selector).inner_text()).strip()


async def receipt_qr(clerk: httpx.AsyncClient, code: str, tmp_path: Path) -> list[str]:
    """The QR codes on the dossier's receipt (Form 01), as a phone would read them from the paper."""
    response = await clerk.get(f"/api/v1/dossiers/{code}/receipt.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    path = tmp_path / f"{code}-mau-01.pdf"
    path.write_bytes(response.content)
    return decode_qr_pdf(path)


async def assert_no_script_ran(page: Page, origin: str) -> None:
    assert await page.locator("script").count() == 0
    await asyncio.sleep(0.3)  # an alert would have fired by now
    assert recorded(page).dialogs == []
    await assert_page_for_people(page, origin=origin)


# ---- the dossier's status -----------------------------------------------------------------------------------------


async def test_the_receipts_qr_opens_the_status_page_with_code_status_appointment_and_where_to_collect(
    counter: Stack, browser_page: Page, tmp_path: Path
) -> None:
    origin = counter.url("intake")
    async with official(counter, "intake", "clerk", UNIT) as clerk:
        received = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN})
        assert received.status_code == 201, received.text
        dossier = received.json()
        code = dossier["code"]
        assert await receipt_qr(clerk, code, tmp_path) == [f"{origin}/tra-cuu/ho-so/{code}"]

        response = await browser_page.goto(f"{origin}/tra-cuu/ho-so/{code}")
        assert response is not None and response.status == 200
        headers = await response.all_headers()
        assert headers["content-type"].startswith("text/html")
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY and headers["x-content-type-options"] == "nosniff"
        assert await browser_page.title() == f"Hồ sơ {code} – Bộ phận Một cửa"
        assert await text_of(browser_page, "h1") == "Tình trạng hồ sơ"
        assert await text_of(browser_page, "#ma-ho-so") == code
        assert await text_of(browser_page, "#trang-thai") == "Được tiếp nhận"
        assert await text_of(browser_page, ".site-header .unit-name") == UNIT_NAME
        facts = await text_of(browser_page, ".facts")
        assert "Đăng ký tạm trú" in facts
        assert format_instant(datetime.fromisoformat(dossier["appointment_at"])) in facts
        assert format_instant(datetime.fromisoformat(dossier["received_at"])) in facts
        assert (await text_of(browser_page, "#noi-nhan")).startswith(f"Tại {UNIT_NAME}.")
        body = await browser_page.locator("body").inner_text()
        assert [p for p in PERSONAL if p in body] == [], "the page shows no more than the public lookup"
        assert [p for p in PERSONAL if p in await browser_page.content()] == []
        await assert_page_for_people(browser_page, origin=origin)
        assert not recorded(browser_page).console_errors
        await screenshots(browser_page, "intake-status")

        # Its procedure's papers and fee are one link away, on the unit's board.
        await browser_page.get_by_role("link", name="Xem thành phần hồ sơ, thời hạn và lệ phí của thủ tục này").click()
        await browser_page.wait_for_url(f"**/tra-cuu/niem-yet/{UNIT}#tt-1.004194")
        assert await text_of(browser_page, "#tt-1\\.004194 h3") == "Đăng ký tạm trú"

        # The applicant withdraws: the same link now says so.
        assert (await clerk.post(f"/api/v1/dossiers/{code}/withdrawal", json={"reason": "Không còn nhu cầu"})).status_code == 200
    await browser_page.goto(f"{origin}/tra-cuu/ho-so/{code}")
    assert await text_of(browser_page, "#trang-thai") == "Công dân yêu cầu rút hồ sơ"
    assert await text_of(browser_page, "#y-nghia") == "Hồ sơ đã được rút theo yêu cầu của người nộp hồ sơ."
    assert (await text_of(browser_page, "#noi-nhan")).startswith("Hồ sơ không có kết quả giải quyết. Giấy tờ đã nộp")
    await screenshots(browser_page, "intake-status-withdrawn")


async def test_hostile_names_are_shown_as_text_and_no_script_runs(counter: Stack, browser_page: Page, tmp_path: Path) -> None:
    origin = counter.url("intake")
    procedure = f"9.{int(time.time() * 1000) % 1_000_000:06d}"
    definition = {
        "name": SCRIPT, "field": "Thử nghiệm", "online_level": "full", "time_limit": {"amount": 2, "unit": "WORKING_DAY"},
        "components": [{"name": f"Đơn {SCRIPT}"}], "fee_lines": [{"code": "X", "name": f"Lệ phí {SCRIPT}", "amount": 12_000}],
    }  # fmt: skip
    async with (
        counter.client("intake", "admin", units=["*"]) as admin,
        official(counter, "intake", "clerk", UNIT) as clerk,
    ):
        published = await admin.post(f"/api/v1/procedures/{procedure}/versions", json={"effective_from": "2020-01-01", "definition": definition})
        assert published.status_code == 201, published.text
        received = await clerk.post("/api/v1/dossiers", json={"procedure_code": procedure, "applicant_name": SCRIPT})
        assert received.status_code == 201, received.text
        code = received.json()["code"]
        assert await receipt_qr(clerk, code, tmp_path) == [f"{origin}/tra-cuu/ho-so/{code}"]

    await browser_page.goto(f"{origin}/tra-cuu/ho-so/{code}")
    assert await text_of(browser_page, "#ma-ho-so") == code
    assert await text_of(browser_page, "#trang-thai") == "Được tiếp nhận"
    body = await browser_page.locator("main").inner_text()
    assert body.count(SCRIPT) == 1, "the procedure's name as typed; the applicant's name not at all"
    assert f"Thủ tục\n{SCRIPT}" in await text_of(browser_page, ".facts")
    await assert_no_script_ran(browser_page, origin)
    await screenshots(browser_page, "intake-status-hostile")

    await browser_page.goto(f"{origin}/tra-cuu/niem-yet/{UNIT}?q={procedure}")
    entry = browser_page.locator(f"#tt-{procedure.replace('.', chr(92) + '.')}")
    assert await entry.locator("h3").inner_text() == SCRIPT
    assert await entry.locator(".giay-to li").all_inner_texts() == [f"Đơn {SCRIPT} (bản chính)"]
    assert await entry.locator(".phi").inner_text() == f"Lệ phí {SCRIPT}: 12.000 đồng/hồ sơ."
    await assert_no_script_ran(browser_page, origin)


async def test_the_qr_of_form_02_opens_the_records_page_without_the_persons_details(
    counter: Stack, browser_page: Page, tmp_path: Path
) -> None:
    origin = counter.url("intake")
    missing = "Bản sao giấy khai sinh của cháu Trần Minh Khôi"
    async with official(counter, "intake", "clerk", UNIT) as clerk:
        response = await clerk.post(
            "/api/v1/intake-records",
            json={"outcome": "incomplete", "procedure_code": "1.004884", "applicant_name": "Trần Văn Đức", "missing": [missing]},
        )
        assert response.status_code == 201, response.text
        reference = response.json()["reference"]
        form = await clerk.get(f"/api/v1/intake-records/{reference}/form.pdf")
        assert form.status_code == 200
    path = tmp_path / f"{reference}-mau-02.pdf"
    path.write_bytes(form.content)
    url = f"{origin}/tra-cuu/phieu/{reference}"
    assert decode_qr_pdf(path) == [url]

    response = await browser_page.goto(url)
    assert response is not None and response.status == 200
    assert await text_of(browser_page, "h1") == "Kết quả tiếp nhận hồ sơ"
    assert await text_of(browser_page, "#so-phieu") == reference
    assert await text_of(browser_page, "#ket-qua") == "Hồ sơ chưa đầy đủ"
    facts = await text_of(browser_page, ".facts")
    assert "Thủ tục\nĐăng ký lại khai sinh" in facts and f"Nơi lập phiếu\n{UNIT_NAME}" in facts
    content = await browser_page.content()
    assert "Đức" not in content and "Khôi" not in content, "neither the applicant nor what was typed on the form"
    await assert_page_for_people(browser_page, origin=origin)
    await screenshots(browser_page, "intake-record")
    unknown = await browser_page.goto(f"{origin}/tra-cuu/phieu/{UNIT}-250101-BS999")
    assert unknown is not None and unknown.status == 404


async def test_an_unknown_code_and_an_id_number_are_the_same_vietnamese_404(counter: Stack, browser_page: Page) -> None:
    origin = counter.url("intake")
    async with official(counter, "intake", "clerk", UNIT) as clerk:
        assert (await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN})).status_code == 201
    response = await browser_page.goto(f"{origin}/tra-cuu/ho-so/{UNIT}-250101-9999")
    assert response is not None and response.status == 404
    assert (await response.all_headers())["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert await text_of(browser_page, "h1") == "Không tìm thấy"
    assert await text_of(browser_page, ".error-code") == "Lỗi 404"
    await assert_page_for_people(browser_page, origin=origin)
    await screenshots(browser_page, "intake-404")
    unknown = await browser_page.locator("main").inner_text()

    # An applicant's id number (one that has a dossier) in place of the code: the same page, nothing more.
    for guess in (CITIZEN["id_number"], "001203009999"):
        response = await browser_page.goto(f"{origin}/tra-cuu/ho-so/{guess}")
        assert response is not None and response.status == 404
        assert await browser_page.locator("main").inner_text() == unknown


# ---- the procedure board ------------------------------------------------------------------------------------------


async def test_the_board_lists_the_procedures_in_force_with_their_papers_time_fee_and_how_to_submit(
    counter: Stack, browser_page: Page
) -> None:
    origin = counter.url("intake")
    async with httpx.AsyncClient(base_url=origin) as anyone:
        catalog = (await anyone.get("/api/v1/procedures")).json()
        tam_tru = (await anyone.get("/api/v1/procedures/1.004194")).json()["definition"]
    response = await browser_page.goto(f"{origin}/tra-cuu/niem-yet/{UNIT}")
    assert response is not None and response.status == 200
    assert await text_of(browser_page, "h1") == "Niêm yết thủ tục hành chính"
    assert await text_of(browser_page, ".site-header .unit-name") == UNIT_NAME
    assert await browser_page.locator("article").count() == catalog["count"]
    assert await text_of(browser_page, "#ket-qua") == f"{catalog['count']} thủ tục."
    for procedure in catalog["data"]:
        entry = browser_page.locator(f"article[id='tt-{procedure['code']}']")
        assert await entry.locator("h3").inner_text() == procedure["name"]

    entry = browser_page.locator("article[id='tt-1.004194']")
    forms = {"original": "bản chính", "copy": "bản sao"}
    assert await entry.locator(".giay-to li").all_inner_texts() == [
        f"{c['name']} ({forms[c['form']]}{'' if c['mandatory'] else ', nếu có'})" for c in tam_tru["components"]
    ]
    text = await entry.inner_text()
    fee = tam_tru["fee_lines"][0]
    assert f"{fee['name']}: {format_vnd(fee['amount'])} đồng/hồ sơ; nộp trực tuyến: {format_vnd(fee['online_amount'])} đồng/hồ sơ" in text
    assert "Thời hạn giải quyết\n3 ngày làm việc kể từ khi nhận đủ hồ sơ hợp lệ." in text
    assert "trực tuyến toàn trình trên Cổng Dịch vụ công" in text
    in_person = await browser_page.locator("article[id='tt-2.000884']").inner_text()
    assert "Trực tiếp tại Bộ phận Một cửa; thủ tục này không thực hiện trực tuyến." in in_person
    await assert_page_for_people(browser_page, origin=origin)
    await screenshots(browser_page, "intake-board")

    # Looking for one procedure: the labelled search field, as the catalog's own search finds them.
    await browser_page.get_by_label("Tìm thủ tục theo tên hoặc mã").fill("tạm trú")
    await browser_page.get_by_role("button", name="Tìm").click()
    await browser_page.wait_for_url(lambda url: url.startswith(f"{origin}/tra-cuu/niem-yet/{UNIT}?q="))
    async with httpx.AsyncClient(base_url=origin) as anyone:
        found = (await anyone.get("/api/v1/procedures", params={"q": "tạm trú"})).json()
    shown = [(await a.get_attribute("id") or "").removeprefix("tt-") for a in await browser_page.locator("article").all()]
    assert shown == [p["code"] for p in found["data"]] and "1.004194" in shown
    assert await text_of(browser_page, "#ket-qua") == f"Tìm “tạm trú”: {found['count']} thủ tục. Xem tất cả thủ tục"
    await assert_page_for_people(browser_page, origin=origin)
    await screenshots(browser_page, "intake-board-search")

    await browser_page.goto(f"{origin}/tra-cuu/niem-yet/{UNIT}?q={quote('không có thủ tục này')}")
    assert await browser_page.locator("article").count() == 0
    assert "Không tìm thấy thủ tục nào" in await text_of(browser_page, "main")


async def test_pages_draw_on_the_public_rate_limit(counter: Stack) -> None:
    address = "203.0.113.17"
    async with httpx.AsyncClient(base_url=counter.url("intake"), headers={"X-Forwarded-For": address}) as client:
        within = [await client.get(f"/tra-cuu/niem-yet/{UNIT}") for _ in range(BURST)]
        beyond = await client.get(f"/tra-cuu/ho-so/{UNIT}-250101-0001")
        neighbour = await client.get(f"/tra-cuu/niem-yet/{UNIT}", headers={"X-Forwarded-For": "203.0.113.18"})
    assert {r.status_code for r in within} == {200}
    assert beyond.status_code == 429 and beyond.headers["content-type"].startswith("text/html")
    assert int(beyond.headers["retry-after"]) >= 1
    assert "Quá nhiều yêu cầu" in beyond.text and 'lang="vi"' in beyond.text
    assert neighbour.status_code == 200
