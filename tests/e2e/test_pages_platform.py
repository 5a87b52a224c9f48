"""The pages platform in a real browser: a tiny app built with shared.pages, served by uvicorn, opened in Chromium.

No service is involved: the app here has a status page (with a QR image), a rating form with its CSRF token, a
rate-limited page and an unknown code, as a service's pages will. Debian's Chromium (installed when missing)
renders them; the checks are what a person would see: the Vietnamese text with its diacritics, a hostile value
shown as text with no script run, the Vietnamese 403 for a form without a valid token, nothing fetched from
outside, the layout at 360 px and 1280 px (screenshots under test-artifacts/pages/), and QR codes read by zbar.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import pytest
import segno
import uvicorn
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse
from fpdf import FPDF
from PIL import Image
from playwright.async_api import Page

from shared.errors import NotFound, install_problem_handlers
from shared.pages import (
    CONTENT_SECURITY_POLICY,
    CsrfGuard,
    PageRouter,
    Pages,
    static_router,
)
from shared.ratelimit import Policy, TokenBuckets, rate_limited
from tests.support.browser import (
    assert_page_for_people,
    decode_qr_pdf,
    decode_qr_png,
    recorded,
    screenshots,
)

pytest_plugins = ("tests.support.browser_plugin",)  # its fixtures: browser_page, chromium, playwright_driver
pytestmark = pytest.mark.timeout(600)  # the first run may install Chromium

SCRIPT = "<script>alert(1)</script>"
PROCEDURE = "Đăng ký khai sinh có yếu tố nước ngoài"
UNIT = "UBND phường Bến Nghé, Quận 1"

TEMPLATES = {
    "status.html": """{% extends "base.html" %}
{% import "macros.html" as ui %}
{% block content %}
<h1>Tình trạng hồ sơ <span class="mono" id="ma">{{ d.code }}</span></h1>
<p><span class="status" id="trang-thai">{{ d.status|status_name }}</span></p>
{{ ui.facts([
  ("Thủ tục", d.procedure),
  ("Người nộp", d.applicant),
  ("Ngày hẹn trả", d.appointment|vn_date),
  ("Tiếp nhận lúc", d.received|vn_instant),
  ("Lệ phí", d.fee|vnd),
  ("Mã băm tài liệu", d.digest),
]) }}
<div class="qr"><img src="{{ qr }}" alt="Mã QR của trang tra cứu hồ sơ {{ d.code }}"></div>
<p><a class="button" href="{{ d.code }}/danh-gia">Đánh giá mức độ hài lòng</a></p>
<div class="table-wrap"><table>
<caption>Các bước đã thực hiện</caption>
<thead><tr><th>Ngày</th><th>Bước</th><th>Đơn vị</th><th class="number">Số ngày</th></tr></thead>
<tbody>
<tr><td>{{ d.appointment|short_date }}</td><td>Tiếp nhận hồ sơ</td><td>{{ unit_name }}</td><td class="number">1</td></tr>
<tr><td>{{ d.appointment|short_date }}</td><td>Chuyển phòng Tư pháp – Hộ tịch thẩm định</td><td>Phòng Tư pháp</td><td class="number">2</td></tr>
</tbody></table></div>
{% endblock %}
""",
    "rating.html": """{% extends "base.html" %}
{% import "macros.html" as ui %}
{% block content %}
<h1>Đánh giá hồ sơ <span class="mono">{{ code }}</span></h1>
{% call ui.form(action, csrf, submit="Gửi đánh giá") %}
{{ ui.radios("muc_do", "Ông/bà có hài lòng với kết quả giải quyết?", [("2", "Rất hài lòng"), ("1", "Hài lòng"), ("0", "Không hài lòng")], required=true) }}
{{ ui.textarea("y_kien", "Ý kiến góp ý", hint="Không bắt buộc; tối đa 1.000 ký tự.", maxlength=1000) }}
{{ ui.field("dien_thoai", "Số điện thoại để liên hệ lại", type="tel", autocomplete="tel", inputmode="tel") }}
{% endcall %}
{% endblock %}
""",
    "thanks.html": """{% extends "base.html" %}
{% block content %}
<h1>Cảm ơn ông/bà đã đánh giá</h1>
<div class="notice success"><p id="cam-on">Đã ghi nhận: {{ level }}. Ý kiến: {{ comment }}</p></div>
{% endblock %}
""",
}


@dataclass
class Dossier:
    """What the status page shows."""

    code: str
    procedure: str
    applicant: str
    status: int
    appointment: date
    received: datetime
    fee: int
    digest: str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@dataclass
class Site:
    """The running app: its base URL and what its forms received."""

    url: str
    ratings: list[tuple[str, str, str]] = field(default_factory=list)


def build_app(folder: Path, site: Site) -> FastAPI:
    """A service-like app with pages only, as a service would write them."""
    pages = Pages(folder, unit_name=UNIT)
    guard = CsrfGuard("the tests' page secret, long enough", secure_cookie=False, max_age_seconds=600)
    dossiers = {
        d.code: d
        for d in (
            Dossier("H01.01-260301-0001", PROCEDURE, "Nguyễn Thị Hồng Nhung", 4, date(2026, 3, 12),
                    datetime(2026, 3, 2, 1, 5, tzinfo=UTC), 1_250_000),
            Dossier("H01.01-260301-0002", SCRIPT, SCRIPT, 10, date(2026, 3, 2), datetime(2026, 3, 2, 2, 0, tzinfo=UTC), 0),
        )
    }  # fmt: skip
    app = FastAPI()
    install_problem_handlers(app)
    app.state.rate_limits = {Policy.PUBLIC: TokenBuckets(0.01, 1), Policy.CALLBACK: TokenBuckets(0, 0)}
    router = PageRouter(pages=pages, prefix="/trang")
    limited = PageRouter(pages=pages, prefix="/trang", dependencies=[rate_limited(Policy.PUBLIC)])

    @router.get("/ho-so/{code}")
    async def status(request: Request, code: str) -> HTMLResponse:
        dossier = dossiers.get(code)
        if dossier is None:
            raise NotFound("dossier", code)
        qr = segno.make_qr(f"{site.url}/trang/ho-so/{code}", error="m").png_data_uri(scale=6, border=4)
        return pages.render(request, "status.html", {"d": dossier, "qr": qr, "page_title": f"Hồ sơ {code}"})

    @router.get("/ho-so/{code}/danh-gia")
    async def rating_form(request: Request, code: str) -> HTMLResponse:
        action = f"/trang/ho-so/{code}/danh-gia"
        context = {"code": code, "action": action, "page_title": "Đánh giá"}
        return pages.render(request, "rating.html", context, csrf=guard.issue(action))

    @router.post("/ho-so/{code}/danh-gia")
    async def rate(
        request: Request, code: str, muc_do: Annotated[str, Form()], y_kien: Annotated[str, Form()] = ""
    ) -> HTMLResponse:
        await guard.verify(request)
        site.ratings.append((code, muc_do, y_kien))
        levels = {"2": "Rất hài lòng", "1": "Hài lòng", "0": "Không hài lòng"}
        return pages.render(request, "thanks.html", {"level": levels.get(muc_do, "?"), "comment": y_kien})

    @limited.get("/gioi-han")
    async def limited_page(request: Request) -> HTMLResponse:
        return pages.render(request, "thanks.html", {"level": "x", "comment": "y"})

    for included in (router, limited, static_router()):
        app.include_router(included)
    return app


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app served by uvicorn on a free loopback port, in a thread of its own."""
    folder = tmp_path_factory.mktemp("templates")
    for name, text in TEMPLATES.items():
        (folder / name).write_text(text)
    port = free_port()
    running = Site(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(build_app(folder, running), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="pages-uvicorn", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start"
    yield running
    server.should_exit = True
    thread.join(timeout=10)


async def text_of(page: Page, selector: str) -> str:
    return (await page.locator(selector).text_content() or "").strip()


async def test_the_status_page_shows_vietnamese_text_and_a_qr_zbar_reads(browser_page: Page, site: Site) -> None:
    url = f"{site.url}/trang/ho-so/H01.01-260301-0001"
    response = await browser_page.goto(url)
    assert response is not None and response.status == 200
    headers = await response.all_headers()
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]

    assert await text_of(browser_page, "#trang-thai") == "Đang xử lý"
    facts = await browser_page.locator(".facts").inner_text()
    for shown in (PROCEDURE, "Nguyễn Thị Hồng Nhung", "ngày 12 tháng 3 năm 2026", "08 giờ 05 phút, ngày 02 tháng 3 năm 2026", "1.250.000 đồng"):
        assert shown in facts
    assert await text_of(browser_page, ".site-header .unit-name") == UNIT
    assert await browser_page.title() == "Hồ sơ H01.01-260301-0001 – Bộ phận Một cửa"
    # The shared stylesheet loaded under the CSP (the header is dark red) and the page stayed on its origin.
    background = await browser_page.locator(".site-header").evaluate("el => getComputedStyle(el).backgroundColor")
    assert background == "rgb(139, 0, 0)"
    await assert_page_for_people(browser_page, origin=site.url)
    assert any(u.startswith(f"{site.url}/static/motcua.css") for u in recorded(browser_page).requests)
    assert not recorded(browser_page).console_errors

    narrow, wide = await screenshots(browser_page, "platform-status")
    assert decode_qr_png(wide) == [url]  # the QR on the page, as a phone's camera would read it from the screen
    assert decode_qr_png(narrow) == [url]


async def test_a_hostile_value_is_shown_as_text_and_runs_nothing(browser_page: Page, site: Site) -> None:
    await browser_page.goto(f"{site.url}/trang/ho-so/H01.01-260301-0002")
    facts = await browser_page.locator(".facts").inner_text()
    assert facts.count(SCRIPT) == 2  # the procedure and the applicant, as typed
    assert await browser_page.locator("script").count() == 0
    await asyncio.sleep(0.3)  # an alert would have fired by now
    assert recorded(browser_page).dialogs == []
    await assert_page_for_people(browser_page, origin=site.url)
    await screenshots(browser_page, "platform-hostile")


async def test_a_form_posts_with_its_token(browser_page: Page, site: Site) -> None:
    await browser_page.goto(f"{site.url}/trang/ho-so/H01.01-260301-0001")
    await browser_page.get_by_role("link", name="Đánh giá mức độ hài lòng").click()
    await browser_page.wait_for_url("**/danh-gia")
    await assert_page_for_people(browser_page, origin=site.url)
    await screenshots(browser_page, "platform-rating-form")
    # Keyboard only: the focus is visible and reaches the fields.
    await browser_page.keyboard.press("Tab")
    assert await browser_page.evaluate("() => document.activeElement.className") == "skip-link"
    outline = await browser_page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    background = await browser_page.evaluate("() => getComputedStyle(document.activeElement).backgroundColor")
    assert outline != "none" or background == "rgb(255, 191, 0)"

    await browser_page.get_by_label("Rất hài lòng").check()
    await browser_page.get_by_label("Ý kiến góp ý").fill("Cán bộ hướng dẫn tận tình, chu đáo.")
    async with browser_page.expect_response(lambda r: r.request.method == "POST") as posted:
        await browser_page.get_by_role("button", name="Gửi đánh giá").click()
    assert (await posted.value).status == 200
    assert await text_of(browser_page, "#cam-on") == "Đã ghi nhận: Rất hài lòng. Ý kiến: Cán bộ hướng dẫn tận tình, chu đáo."
    assert ("H01.01-260301-0001", "2", "Cán bộ hướng dẫn tận tình, chu đáo.") in site.ratings


@pytest.mark.parametrize("attack", ["forged token", "no cookie"])
async def test_a_form_without_a_valid_token_gets_the_vietnamese_403(browser_page: Page, site: Site, attack: str) -> None:
    before = len(site.ratings)
    await browser_page.goto(f"{site.url}/trang/ho-so/H01.01-260301-0001/danh-gia")
    await browser_page.get_by_label("Không hài lòng").check()
    if attack == "forged token":
        await browser_page.locator("input[name=csrf_token]").evaluate("el => { el.value = el.value.slice(0, -4) + 'AAAA' }")
    else:
        await browser_page.context.clear_cookies()
    async with browser_page.expect_response(lambda r: r.request.method == "POST") as posted:
        await browser_page.get_by_role("button", name="Gửi đánh giá").click()
    response = await posted.value
    assert response.status == 403
    assert (await response.all_headers())["content-security-policy"] == CONTENT_SECURITY_POLICY
    await browser_page.wait_for_load_state()
    assert await text_of(browser_page, "h1") == "Biểu mẫu không hợp lệ hoặc đã hết hạn"
    assert await text_of(browser_page, ".error-code") == "Lỗi 403"
    assert len(site.ratings) == before
    await assert_page_for_people(browser_page, origin=site.url)
    if attack == "forged token":
        await screenshots(browser_page, "platform-403")


async def test_an_unknown_code_is_a_404_page_and_a_flood_a_429_page(browser_page: Page, site: Site) -> None:
    response = await browser_page.goto(f"{site.url}/trang/ho-so/KHONG-CO-MA-NAY")
    assert response is not None and response.status == 404
    assert await text_of(browser_page, "h1") == "Không tìm thấy"
    await screenshots(browser_page, "platform-404")

    first = await browser_page.goto(f"{site.url}/trang/gioi-han")
    assert first is not None and first.status == 200
    refused = await browser_page.goto(f"{site.url}/trang/gioi-han")
    assert refused is not None and refused.status == 429
    assert int((await refused.all_headers())["retry-after"]) >= 1
    assert await text_of(browser_page, "h1") == "Quá nhiều yêu cầu"
    await assert_page_for_people(browser_page, origin=site.url)
    await screenshots(browser_page, "platform-429")


def test_zbar_reads_a_segno_qr_from_a_png_and_from_a_pdf(tmp_path: Path) -> None:
    payload = "https://motcua.example.gov.vn/trang/ho-so/H01.01-260301-0001?sig=Đã-ký"
    png = tmp_path / "qr.png"
    segno.make_qr(payload, error="m").save(png, scale=8, border=4)
    assert decode_qr_png(png) == [payload]

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.image(str(png), x=150, y=20, w=40)
    pdf.output(str(tmp_path / "receipt.pdf"))
    assert decode_qr_pdf(tmp_path / "receipt.pdf") == [payload]

    two = tmp_path / "two.png"  # a fee receipt may carry two codes: each is found
    for name, text in (("a", "https://a.example/1"), ("b", "0002010102")):
        segno.make_qr(text, error="m").save(tmp_path / f"{name}.png", scale=8, border=4)
    first, second = (Image.open(tmp_path / f"{name}.png").convert("RGB") for name in "ab")
    sheet = Image.new("RGB", (first.width + second.width, max(first.height, second.height)), "white")
    sheet.paste(first, (0, 0))
    sheet.paste(second, (first.width, 0))
    sheet.save(two)
    assert sorted(decode_qr_png(two)) == ["0002010102", "https://a.example/1"]

    blank = tmp_path / "blank.png"
    segno.make_qr("x").save(blank, scale=1, border=0, dark="white")  # nothing a reader can find
    assert decode_qr_png(blank) == []
