"""The citizen's payment page in a real browser: pay a fee by its VietQR, then see it paid.

Intake and payments run as processes on a stack of their own, whose public addresses are their real ones, so the
links they print (``payment_page_url``, the fee receipt's lookup link) are followed as they are. A clerk receives a
tạm trú dossier (15,000 đồng); Chromium opens the request's ``payment_page_url``: the amount, the line, the bank and
the account in words, the expiry, and a VietQR code that zbar reads, from the screenshot as a phone's camera would and
from the inline PNG, as the very payload of the JSON API. The bank's signed confirmation arrives; the page reloaded
says "Đã thanh toán" with the receipt's number and no QR any more. The fee receipt's QR opens intake's status page of
the dossier. An unknown or malformed id is the Vietnamese 404 page; a hostile unit name is text; the public rate limit
applies. Screenshots at 360 px and 1280 px go to test-artifacts/pages/payments-*.png.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from services.payments import domain
from shared.pages import CONTENT_SECURITY_POLICY
from shared.vntext import format_instant
from shared.webhooks import signature as webhook_signature
from tests.support.browser import (
    assert_page_for_people,
    decode_qr_pdf,
    decode_qr_png,
    recorded,
    screenshots,
)
from tests.support.stack import Stack, eventually

pytest_plugins = ("tests.support.browser_plugin",)
pytestmark = pytest.mark.timeout(600)

BANK_SECRET = "vietinbank-callback-secret-pages-7d1f"
ACCOUNT = {"bin": "970415", "account": "113366668888", "name": "UBND PHƯỜNG PHÚ HỘI"}
CITIZEN = {"kind": "citizen", "name": "Nguyễn Thị Hồng Nhung", "id_number": "001203004567"}
SCRIPT = "<script>alert(1)</script>"
UNIT = f"000.00.{random.randrange(100):02d}.Q{random.randrange(100):02d}"
HOSTILE_UNIT = f"000.00.{random.randrange(100):02d}.R{random.randrange(100):02d}"
UNIT_NAME = "UBND phường Phú Hội, thành phố Huế"
PUBLIC_RATE, PUBLIC_BURST = 5, 30  # payments' public budget here: enough for the pages the tests open, then a 429


@pytest.fixture(scope="module")
async def shop(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake and payments on ports chosen first, so that the public addresses they print are their own."""
    ports = {"intake": free_port(), "payments": free_port()}
    intake, payments = (f"http://127.0.0.1:{ports[s]}" for s in ("intake", "payments"))
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("pages-payments")), services=["intake", "payments"], ports=ports,
        env={
            "INTAKE_PUBLIC_BASE_URL": intake,
            "PAYMENTS_PUBLIC_BASE_URL": payments,
            "PAYMENTS_DOSSIER_LOOKUP_URL": f"{intake}/tra-cuu/ho-so/{{code}}",
            "PAYMENTS_COLLECTION_ACCOUNT": json.dumps(ACCOUNT, ensure_ascii=False),
            "PAYMENTS_CALLBACK_SECRETS": json.dumps({"vietinbank": BANK_SECRET}),
            "PAYMENTS_UNIT_NAMES": json.dumps({UNIT: UNIT_NAME, HOSTILE_UNIT: SCRIPT}, ensure_ascii=False),
            "PAYMENTS_RATE_LIMIT_PUBLIC_PER_SECOND": str(PUBLIC_RATE),
            "PAYMENTS_RATE_LIMIT_PUBLIC_BURST": str(PUBLIC_BURST),
        },
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


async def pending_fee(stack: Stack, unit: str = UNIT) -> dict:
    """A clerk receives a tạm trú dossier at the counter; its fee request, once payments has made it."""
    async with stack.client("intake", "clerk", units=[unit]) as clerk:
        response = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN})
    assert response.status_code == 201, response.text
    code = response.json()["code"]
    async with stack.client("payments", "specialist", units=[unit]) as official:

        async def _requested() -> list[dict] | None:
            return (await official.get("/api/v1/payments", params={"dossier_code": code})).json()["data"] or None

        [requested] = await eventually(_requested)
    return requested


async def bank_confirms(stack: Stack, requested: dict) -> dict:
    """The bank's signed credit notice: the memo carries the payment id the QR put in the purpose."""
    body = {"transaction_id": f"FT{time.time_ns()}", "amount": requested["amount"], "currency": "VND",
            "reference": f"{requested['id']} DANG KY TAM TRU"}  # fmt: skip
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()))
    headers = {"X-Provider-Timestamp": timestamp, "X-Provider-Signature": "sha256=" + webhook_signature(BANK_SECRET, timestamp, raw),
               "Content-Type": "application/json"}  # fmt: skip
    async with httpx.AsyncClient(base_url=stack.url("payments"), timeout=30) as bank:
        response = await bank.post("/api/v1/payments/callbacks/vietinbank", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def text_of(page: Page, selector: str) -> str:
    return " ".join((await page.locator(selector).inner_text()).split())


def fact(facts: str, label: str) -> str:
    """The value of one row of a facts list read as text (label and value are on lines of their own)."""
    lines = [line.strip() for line in facts.splitlines() if line.strip()]
    return lines[lines.index(label) + 1]


async def test_a_pending_fee_is_paid_by_its_vietqr_and_its_page_then_says_paid(shop: Stack, browser_page: Page, tmp_path: Path) -> None:
    requested = await pending_fee(shop)
    url = requested["payment_page_url"]
    assert url == f"{shop.url('payments')}/nop-phi/{requested['id']}"
    response = await browser_page.goto(url)
    assert response is not None and response.status == 200
    headers = await response.all_headers()
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY and headers["x-content-type-options"] == "nosniff"

    assert await text_of(browser_page, "h1") == f"Nộp phí, lệ phí hồ sơ {requested['dossier_code']}"
    assert await text_of(browser_page, "#trang-thai") == "Chờ thanh toán"
    assert await text_of(browser_page, "#so-tien") == "15.000 đồng"
    assert await text_of(browser_page, ".site-header .unit-name") == UNIT_NAME
    rows = await browser_page.locator("#cac-khoan tbody tr").all_inner_texts()
    assert [" ".join(r.split()) for r in rows] == ["Lệ phí đăng ký tạm trú 1 15.000"]
    account = await browser_page.locator("section.panel .facts").inner_text()
    assert fact(account, "Ngân hàng") == "VietinBank – Ngân hàng TMCP Công Thương Việt Nam"
    assert fact(account, "Số tài khoản") == ACCOUNT["account"] and fact(account, "Chủ tài khoản") == ACCOUNT["name"]
    assert fact(account, "Số tiền") == "15.000 đồng"
    qr_fields = domain.decode(requested["qr_payload"])
    assert fact(account, "Nội dung chuyển khoản") == qr_fields["purpose"] and qr_fields["purpose"].startswith(requested["id"])
    expires = format_instant(datetime.fromisoformat(requested["expires_at"]))
    assert await text_of(browser_page, "#han-thanh-toan") == f"Hạn thanh toán: {expires}. Sau thời hạn này, yêu cầu nộp phí hết hiệu lực."
    assert CITIZEN["name"] not in await browser_page.content()  # the page names no one
    await assert_page_for_people(browser_page, origin=shop.url("payments"))
    assert not recorded(browser_page).console_errors

    # The QR a phone's camera reads off the screen, and the image itself: the API's payload, to the last character.
    narrow, wide = await screenshots(browser_page, "payments-pending")
    assert decode_qr_png(wide) == [requested["qr_payload"]]
    assert decode_qr_png(narrow) == [requested["qr_payload"]]
    src = await browser_page.locator("#ma-vietqr").get_attribute("src") or ""
    assert src.startswith("data:image/png;base64,")
    png = tmp_path / "vietqr.png"
    png.write_bytes(base64.b64decode(src.removeprefix("data:image/png;base64,")))
    assert decode_qr_png(png) == [requested["qr_payload"]]
    assert (qr_fields["bank_bin"], qr_fields["account"], qr_fields["amount"]) == (ACCOUNT["bin"], ACCOUNT["account"], 15_000)

    # The bank's confirmation arrives; the citizen reloads the page.
    confirmed = await bank_confirms(shop, requested)
    assert confirmed["outcome"] == "confirmed" and confirmed["payment_status"] == "paid"
    reloaded = await browser_page.reload()
    assert reloaded is not None and reloaded.status == 200
    assert await text_of(browser_page, "#trang-thai") == "Đã thanh toán"
    result = await text_of(browser_page, "#ket-qua")
    assert result.startswith("Đã thanh toán. Khoản phí, lệ phí 15.000 đồng của hồ sơ này đã được nhận lúc")
    assert f"Biên lai thu phí, lệ phí số {confirmed['receipt_number']}. Hình thức nộp: Chuyển khoản (VietQR)." in result
    assert await browser_page.locator("#ma-vietqr").count() == 0 and await browser_page.locator("#han-thanh-toan").count() == 0
    await assert_page_for_people(browser_page, origin=shop.url("payments"))
    narrow, wide = await screenshots(browser_page, "payments-paid")
    assert decode_qr_png(wide) == [] and decode_qr_png(narrow) == []  # nothing left to pay

    async with shop.client("payments", "auditor", units=[UNIT]) as auditor:
        paid = (await auditor.get(f"/api/v1/payments/{requested['id']}")).json()
    assert paid["status"] == "paid" and paid["payment_page_url"] == url and paid["qr_payload"] == requested["qr_payload"]


async def test_the_fee_receipts_lookup_link_and_the_page_lead_to_the_dossiers_status_page(shop: Stack, browser_page: Page, tmp_path: Path) -> None:
    requested = await pending_fee(shop)
    code = requested["dossier_code"]
    status_page = f"{shop.url('intake')}/tra-cuu/ho-so/{code}"
    async with shop.client("payments", "clerk", units=[UNIT]) as clerk:
        cash = await clerk.post(f"/api/v1/payments/{requested['id']}/cash", json={"amount": 15_000})
        assert cash.status_code == 200, cash.text
        receipt = await clerk.get(f"/api/v1/payments/{requested['id']}/receipt.pdf")
    assert receipt.status_code == 200
    pdf = tmp_path / "bien-lai.pdf"
    pdf.write_bytes(receipt.content)
    assert decode_qr_pdf(pdf) == [status_page]

    await browser_page.goto(requested["payment_page_url"])
    assert await text_of(browser_page, "#trang-thai") == "Đã thanh toán"
    assert "Hình thức nộp: Tiền mặt tại Bộ phận Một cửa." in await text_of(browser_page, "#ket-qua")
    async with browser_page.expect_navigation():
        await browser_page.get_by_role("link", name=f"Xem tình trạng hồ sơ {code}").click()
    assert browser_page.url == status_page
    assert await text_of(browser_page, "h1") == "Tình trạng hồ sơ"  # intake's page, of the same dossier
    assert await text_of(browser_page, "#ma-ho-so") == code
    assert await browser_page.evaluate("() => document.documentElement.lang") == "vi"


@pytest.mark.parametrize("payment_id", ["MC0000000000", "MC%3Cscript%3E", "KHONGCOMANAY"])
async def test_an_unknown_or_malformed_payment_id_is_the_vietnamese_404_page(shop: Stack, browser_page: Page, payment_id: str) -> None:
    response = await browser_page.goto(f"{shop.url('payments')}/nop-phi/{payment_id}")
    assert response is not None and response.status == 404
    assert (await response.all_headers())["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert await text_of(browser_page, "h1") == "Không tìm thấy"
    assert "mã thanh toán gồm chữ MC và 10 chữ, số" in await text_of(browser_page, "main")
    await assert_page_for_people(browser_page, origin=shop.url("payments"))
    if payment_id == "MC0000000000":
        await screenshots(browser_page, "payments-404")


async def test_a_hostile_unit_name_is_shown_as_text_and_runs_nothing(shop: Stack, browser_page: Page) -> None:
    requested = await pending_fee(shop, HOSTILE_UNIT)
    await browser_page.goto(requested["payment_page_url"])
    assert await text_of(browser_page, ".site-header .unit-name") == SCRIPT
    assert await browser_page.locator("script").count() == 0
    await asyncio.sleep(0.3)  # an alert would have fired by now
    await assert_page_for_people(browser_page, origin=shop.url("payments"))


async def test_the_public_rate_limit_applies_to_the_payment_page(shop: Stack, browser_page: Page) -> None:
    requested = await pending_fee(shop)
    url = requested["payment_page_url"]
    async with httpx.AsyncClient(timeout=30) as citizen:
        answers = await asyncio.gather(*(citizen.get(url) for _ in range(PUBLIC_BURST + 10)))
        refused = [a for a in answers if a.status_code == 429]
        assert refused and all(a.status_code in (200, 429) for a in answers)
        assert int(refused[0].headers["retry-after"]) >= 1 and refused[0].headers["content-type"].startswith("text/html")
        assert "Quá nhiều yêu cầu" in refused[0].text
        # The browser, asking while the flood goes on (the bucket refills 5 a second), gets the Vietnamese 429 page.
        for _ in range(10):
            *_, flooded = await asyncio.gather(*(citizen.get(url) for _ in range(10)), browser_page.goto(url))
            if flooded is not None and flooded.status == 429:
                break
    assert flooded is not None and flooded.status == 429
    assert await text_of(browser_page, "h1") == "Quá nhiều yêu cầu"
    await assert_page_for_people(browser_page, origin=shop.url("payments"))
    await asyncio.sleep(PUBLIC_BURST / PUBLIC_RATE + 1)  # the bucket refills for the other tests of the module
