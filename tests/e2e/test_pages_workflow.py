"""The applicant's signed page of a dossier (workflow's pages), in Debian's Chromium against the real stack.

One dossier whose applicant chose e-mail goes from reception to return. The links are taken from the words of the
e-mails that workflow rendered (the "accepted" one carries the status link, the "returned" one the rating link) and
opened in the browser as the applicant would: the page shows the status in words and the public steps, and after
return the rating form. It is rated once from one device; the same form, still open on a second device, is sent
again and the page says the dossier was rated already. Reporting counts one rating for the unit and the day.
Feedback goes through its form. Forms posted without their cookie get the Vietnamese 403 page and record nothing;
a tampered signature gets the 403 page, an unknown code the 404 page. Screenshots at 360 px and 1280 px are kept
under test-artifacts/pages/ (``workflow-*``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, Response

from services.workflow.notifications import RenderContext, signed_links
from services.workflow.settings import WorkflowSettings
from shared.events import DocumentSigned, DossierReceived
from shared.pages import CONTENT_SECURITY_POLICY
from tests.support.browser import (
    WIDE,
    assert_page_for_people,
    record,
    recorded,
    screenshots,
)
from tests.support.stack import Stack, eventually, official, produce, random_unit

pytest_plugins = ("tests.support.browser_plugin",)  # browser_page, chromium
pytestmark = pytest.mark.timeout(900)  # the whole stack, a browser, and a first run may install Chromium

VN = ZoneInfo("Asia/Ho_Chi_Minh")
APPLICANT = "Phạm Minh Tuấn"
PHONE = "0912345678"
EMAIL = "tuan.pham@example.vn"
PROCEDURE = "Đăng ký tạm trú"
URL = re.compile(r"https?://\S+")


# ---- helpers ------------------------------------------------------------------------------------------------------


def received(unit: str) -> DossierReceived:
    """Intake's fact: a counter dossier whose applicant asked to be told by e-mail."""
    now = datetime.now(UTC)
    due = now + timedelta(days=7)
    return DossierReceived(
        dossier_code=f"{unit}-{now:%y%m%d}-{uuid.uuid4().int % 9000 + 1000:04d}",
        unit=unit, occurred_at=now, procedure_code="1.004194", procedure_name=PROCEDURE, applicant_name=APPLICANT,
        channel="counter", received_at=now, appointment_at=due, due_at_original=due, received_by="clerk-e2e",
        applicant_phone=PHONE, applicant_email=EMAIL, notify_by="email",
    )  # fmt: skip


def signed(code: str, unit: str) -> DocumentSigned:
    """Digitization's fact: the result was signed."""
    return DocumentSigned(
        dossier_code=code, unit=unit, occurred_at=datetime.now(UTC), document_id=f"doc-{uuid.uuid4().hex[:8]}",
        signer="Chủ tịch UBND", certificate_serial="5401A0B1C2",
    )  # fmt: skip


async def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


async def case_when(client: httpx.AsyncClient, code: str, predicate: Callable[[dict], bool]) -> dict:
    async def probe() -> dict | None:
        response = await client.get(f"/api/v1/cases/{code}")
        return response.json() if response.status_code == 200 and predicate(response.json()) else None

    return await eventually(probe)


async def mail_text(client: httpx.AsyncClient, code: str, kind: str) -> str:
    """The words workflow rendered for the applicant's e-mail of this kind (rendered when the sender first takes it;
    the test stack has no mail server, so it stays pending, retried, with its words)."""

    async def probe() -> str | None:
        rows = (await ok(await client.get(f"/api/v1/cases/{code}/notifications")))["data"]
        return next((n["body"] for n in rows if n["kind"] == kind and n["channel"] == "email" and n["body"]), None)

    return await eventually(probe, timeout=60)


def on_stack(link: str, stack: Stack) -> str:
    """The link as printed, opened on this test stack's workflow (whose port is not the configured base URL's)."""
    configured = WorkflowSettings().public_base_url.rstrip("/")
    assert link.startswith(configured + "/"), f"{link} is not under the configured public base URL {configured}"
    parts = urlsplit(link)
    return f"{stack.url('workflow')}{parts.path}?{parts.query}" + (f"#{parts.fragment}" if parts.fragment else "")


def the_link(text: str) -> str:
    (link,) = URL.findall(text)
    return link


async def open_link(page: Page, url: str) -> Response | None:
    """Open a link as from a mail or SMS app: a new navigation, even when the page shows the same URL but its part."""
    await page.goto("about:blank")
    return await page.goto(url)


async def in_view(page: Page, selector: str) -> bool:
    """True when the element is inside the window as the page stands (scrolled to the link's part, if any)."""
    return await page.locator(selector).evaluate(
        "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }"
    )


async def text_of(page: Page, selector: str) -> str:
    return (await page.locator(selector).inner_text()).strip()


async def steps_of(page: Page) -> list[str]:
    return [t.strip() for t in await page.locator("#cac-buoc tbody td:nth-child(2)").all_inner_texts()]


async def post_form(page: Page, button: str) -> int:
    """Press a form's button; the status of the POST's own answer (before any redirect is followed)."""
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name=button).click()
    status = (await posted.value).status
    await page.wait_for_load_state()
    return status


@pytest.fixture
async def second_device(chromium: Browser) -> AsyncIterator[Page]:
    """Another browser (its own cookies) of the same applicant: the link opened on a second phone."""
    context = await chromium.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", viewport={"width": WIDE, "height": 900})
    page = await context.new_page()
    record(page)
    yield page
    await context.close()


async def assert_nothing_personal(page: Page) -> None:
    """The page shows nothing the public JSON lookup does not: no applicant name or contact, no officer."""
    html = await page.content()
    for private in (APPLICANT, PHONE, "+84912345678", EMAIL, "lanh-dao", "clerk-e2e"):
        assert private not in html, f"the page shows {private!r}"


# ---- the test -----------------------------------------------------------------------------------------------------


async def test_the_signed_link_page_shows_the_case_takes_one_rating_and_feedback(
    stack: Stack, browser_page: Page, second_device: Page
) -> None:
    unit = random_unit()
    event = received(unit)
    code = event.dossier_code
    await produce(stack, event, signed(code, unit))
    origin = stack.url("workflow")
    phone = browser_page
    async with (
        official(stack, "workflow", "leader", unit, "lanh-dao") as leader,
        official(stack, "workflow", "clerk", unit) as clerk,
        official(stack, "reporting", "leader", unit) as reporting,
        httpx.AsyncClient(base_url=origin, timeout=20) as citizen,
    ):
        await case_when(leader, code, lambda c: c["result_gate"]["signed"])
        links = await ok(await clerk.get(f"/api/v1/cases/{code}/public-links"))

        # 1. The "accepted" e-mail carries the status link: the page, with the status and the first step.
        status_link = the_link(await mail_text(leader, code, "accepted"))
        assert status_link == links["status_url"] and urlsplit(status_link).path == f"/trang/theo-doi/{code}"
        response = await phone.goto(on_stack(status_link, stack))
        assert response is not None and response.status == 200
        headers = await response.all_headers()
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY and headers["x-content-type-options"] == "nosniff"
        assert await phone.title() == f"Hồ sơ {code} – Bộ phận Một cửa"
        assert await text_of(phone, "#ma-ho-so") == code
        assert await text_of(phone, "#trang-thai") == "Được tiếp nhận"
        assert PROCEDURE in await text_of(phone, ".facts")
        assert await steps_of(phone) == ["Tiếp nhận hồ sơ"]
        assert await phone.locator("#danh-gia form").count() == 0
        assert "sau khi nhận kết quả" in await text_of(phone, "#danh-gia")
        assert await phone.locator("#phan-anh form").count() == 1
        await assert_nothing_personal(phone)
        await assert_page_for_people(phone, origin=origin)
        assert not recorded(phone).console_errors
        await screenshots(phone, "workflow-case-open")

        # 2. Processed and returned; the "returned" e-mail carries the rating link: the same page, at its rating form.
        await ok(await leader.post(f"/api/v1/cases/{code}/assign", json={"assignee": "me"}))
        await ok(await leader.post(f"/api/v1/cases/{code}/approve"))
        await ok(await clerk.post(f"/api/v1/cases/{code}/return", json={"channel": "counter"}))
        rating_link = the_link(await mail_text(leader, code, "returned"))
        assert rating_link == links["rating_url"] == f"{status_link}#danh-gia"
        rating_page = on_stack(rating_link, stack)
        await open_link(phone, rating_page)
        assert await text_of(phone, "#trang-thai") == "Đã trả kết quả"
        assert await steps_of(phone) == [
            "Tiếp nhận hồ sơ", "Chuyển bộ phận chuyên môn giải quyết", "Có kết quả giải quyết", "Trả kết quả cho người nộp hồ sơ",
        ]  # fmt: skip
        assert "Đã trả kết quả lúc" in await text_of(phone, ".facts")
        assert await phone.locator("#danh-gia form").count() == 1
        await assert_nothing_personal(phone)
        await assert_page_for_people(phone, origin=origin)
        await screenshots(phone, "workflow-case-returned")

        # 3. The same link on a second device; its first try goes without the form's cookie: 403, nothing recorded.
        await open_link(second_device, rating_page)
        await second_device.get_by_label("Không hài lòng", exact=True).check()
        await second_device.context.clear_cookies()
        assert await post_form(second_device, "Gửi đánh giá") == 403
        assert await text_of(second_device, "h1") == "Biểu mẫu không hợp lệ hoặc đã hết hạn"
        assert await text_of(second_device, ".error-code") == "Lỗi 403"
        await assert_page_for_people(second_device, origin=origin)
        await screenshots(second_device, "workflow-form-403")
        view = await ok(await citizen.get(f"/api/v1/public/cases/{code}", params={"sig": links["signature"]}))
        assert not view["rated"] and view["can_rate"]
        await open_link(second_device, rating_page)  # opened again: a fresh form and cookie, kept open
        assert await second_device.locator("#danh-gia form").count() == 1

        # 4. Rated from the first device: the page thanks, and offers no second rating.
        await phone.get_by_label("Rất hài lòng", exact=True).check()
        await phone.get_by_label("Thái độ của cán bộ, công chức").select_option(label="Hài lòng")
        await phone.get_by_label("Số lần ông/bà phải liên hệ với cơ quan để hoàn thành hồ sơ").fill("1")
        await phone.get_by_label("Ý kiến khác").fill("Cán bộ hướng dẫn tận tình, đúng hẹn.")
        assert await post_form(phone, "Gửi đánh giá") == 303
        assert urlsplit(phone.url).path == f"/trang/theo-doi/{code}" and urlsplit(phone.url).fragment == "danh-gia"
        assert await text_of(phone, "#da-danh-gia") == "Cảm ơn ông/bà đã đánh giá. Đánh giá của ông/bà đã được ghi nhận."
        assert await in_view(phone, "#da-danh-gia")  # where the form was: the person sees it without scrolling
        assert await phone.locator("#danh-gia form").count() == 0
        await assert_page_for_people(phone, origin=origin)
        await screenshots(phone, "workflow-rated")
        view = await ok(await citizen.get(f"/api/v1/public/cases/{code}", params={"sig": links["signature"]}))
        assert view["rated"] and not view["can_rate"]

        # 5. The form still open on the second device is sent: "already rated", and nothing more is recorded.
        await second_device.get_by_label("Không hài lòng", exact=True).check()
        assert await post_form(second_device, "Gửi đánh giá") == 409
        assert await text_of(second_device, "h1") == "Hồ sơ đã được đánh giá"
        assert await text_of(second_device, "#da-danh-gia") == (
            f"Hồ sơ {code} đã được đánh giá trước đó. Mỗi hồ sơ chỉ được đánh giá một lần, nên lần gửi này không được ghi nhận."
        )
        await assert_page_for_people(second_device, origin=origin)
        await screenshots(second_device, "workflow-already-rated")
        await second_device.get_by_role("link", name="Xem tình trạng hồ sơ").click()
        await second_device.wait_for_url(f"**/trang/theo-doi/{code}?sig=*")
        assert await second_device.locator("#danh-gia form").count() == 0
        assert await text_of(second_device, "#da-danh-gia") == "Hồ sơ này đã được đánh giá. Cảm ơn ông/bà đã góp ý."

        # 6. Feedback: without its cookie refused and not recorded; then through the form.
        await phone.get_by_label("Nội dung phản ánh, kiến nghị").fill("Không được ghi nhận")
        await phone.context.clear_cookies()
        assert await post_form(phone, "Gửi phản ánh, kiến nghị") == 403
        assert await text_of(phone, "h1") == "Biểu mẫu không hợp lệ hoặc đã hết hạn"
        assert (await ok(await leader.get("/api/v1/feedback", params={"state": "open"})))["data"] == []
        await open_link(phone, on_stack(links["feedback_url"], stack))
        await phone.get_by_label("Nội dung phản ánh, kiến nghị").fill("Phí photo giấy tờ tại bộ phận một cửa còn cao.")
        await phone.get_by_label("Số điện thoại hoặc thư điện tử để nhận trả lời").fill(PHONE)
        assert await post_form(phone, "Gửi phản ánh, kiến nghị") == 303
        assert await text_of(phone, "#da-gui-phan-anh") == (
            "Đã nhận phản ánh, kiến nghị của ông/bà. Cơ quan giải quyết sẽ trả lời trong thời hạn 15 ngày làm việc."
        )
        assert await in_view(phone, "#da-gui-phan-anh")
        await assert_nothing_personal(phone)  # the contact just given is not shown back either
        await screenshots(phone, "workflow-feedback-sent")
        feedback = (await ok(await leader.get("/api/v1/feedback", params={"state": "open"})))["data"]
        assert [(f["dossier_code"], f["channel"], f["content"]) for f in feedback] == [
            (code, "public_link", "Phí photo giấy tờ tại bộ phận một cửa còn cao.")
        ]

        # 7. Reporting: one rating for the unit on the day it was given (the feedback came after it on the same stream).
        async def timeline() -> list[dict] | None:
            response = await reporting.get(f"/api/v1/dossiers/{code}/timeline")
            entries = response.json()["data"] if response.status_code == 200 else []
            return entries if any(e["type"] == "vn.motcua.case.feedback_received.v1" for e in entries) else None

        entries = await eventually(timeline, timeout=60)
        rated = [e for e in entries if e["type"] == "vn.motcua.case.rated.v1"]
        assert len(rated) == 1 and rated[0]["data"]["rating"] == "very_satisfied"
        day = datetime.fromisoformat(rated[0]["time"]).astimezone(VN).date().isoformat()

        async def ratings() -> int | None:
            body = await ok(await reporting.get("/api/v1/reports/summary", params={"unit": unit, "from": day, "to": day}))
            return body["ratings_total"] or None

        assert await eventually(ratings) == 1

        # 8. A tampered signature: the 403 page; an unknown code: 403 unsigned, 404 when signed (no existence leak).
        sig = links["signature"]
        tampered = rating_page.replace(f"sig={sig}", f"sig={sig[:-1]}{'1' if sig.endswith('0') else '0'}")  # one in 16 ends in 0
        assert tampered != rating_page
        response = await phone.goto(tampered)
        assert response is not None and response.status == 403
        assert await text_of(phone, "h1") == "Chữ ký không hợp lệ hoặc đã hết hạn"
        assert await phone.locator("form").count() == 0
        await assert_page_for_people(phone, origin=origin)
        await screenshots(phone, "workflow-link-403")
        unknown = f"{unit}-000101-9999"
        response = await phone.goto(f"{origin}/trang/theo-doi/{unknown}?sig={links['signature']}")
        assert response is not None and response.status == 403
        secret = WorkflowSettings().rating_link_secret  # the stack's workflow has the test environment's settings
        context = RenderContext(public_base_url="", rating_link_secret=secret, one_stop_name="", unit_names={})
        response = await phone.goto(origin + signed_links(context, unknown).status_url)
        assert response is not None and response.status == 404
        assert await text_of(phone, "h1") == "Không tìm thấy"
        await screenshots(phone, "workflow-404")

        # 9. A rating link of a message sent before the pages (a POST-only JSON URL) now leads to the page.
        response = await phone.goto(f"{origin}/api/v1/public/cases/{code}/rating?sig={links['signature']}")
        assert response is not None and response.status == 200
        assert urlsplit(phone.url).path == f"/trang/theo-doi/{code}"
        assert await text_of(phone, "#da-danh-gia") == "Hồ sơ này đã được đánh giá. Cảm ơn ông/bà đã góp ý."

    # Nothing anywhere was counted twice: still one rating, one feedback.
    assert len([e for e in entries if e["type"] == "vn.motcua.case.feedback_received.v1"]) == 1
