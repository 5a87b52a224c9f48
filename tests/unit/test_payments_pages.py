"""The payment page's template in every state a request goes through, rendered from payments' own rows.

The browser test (tests/e2e/test_pages_payments.py) opens a pending request and the same request once paid against
the real services; here the states that are slow to reach end to end are rendered directly: no collection account,
expired and replaced, failed, refunded, and the demonstration account of the local stack.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from motcua.demo import COLLECTION_ACCOUNT as DEMO
from services.payments import domain, store
from services.payments.deps import payment_pages
from services.payments.handlers import PaymentPage
from services.payments.pages import payment_context
from services.payments.settings import CollectionAccount, PaymentsSettings
from tests.support.browser import decode_qr_png

CREATED = datetime(2026, 3, 2, 1, 5, tzinfo=UTC)  # 08 giờ 05 phút in Việt Nam
UNIT = "000.00.12.H56"
SCRIPT = "<script>alert(1)</script>"


def settings(**kwargs: object) -> PaymentsSettings:
    base: dict[str, object] = {
        "environment": "test",
        "collection_account": CollectionAccount(bin="970415", account="113366668888", name="UBND PHƯỜNG BẾN NGHÉ"),
        "unit_names": {UNIT: "UBND phường Bến Nghé, Quận 1"},
        "public_base_url": "https://motcua.example.gov.vn/thu-phi",
        "dossier_lookup_url": "https://motcua.example.gov.vn/trang/ho-so/{code}",
    }
    return PaymentsSettings(**{**base, **kwargs})  # type: ignore[arg-type]


def payment(**kwargs: object) -> store.Payment:
    row: dict[str, object] = {
        "id": "MC4F7K2Q9PXA", "dossier_code": f"{UNIT}-260302-0007", "unit": UNIT, "basis": "reception",
        "procedure_code": "1.004194", "procedure_name": "Đăng ký tạm trú", "applicant_name": "Nguyễn Thị Hồng Nhung",
        "dossier_channel": "counter", "amount": 24_000, "status": "pending", "bank_bin": "970415", "account": "113366668888",
        "lines": [
            {"code": "CT-TTU", "name": "Lệ phí đăng ký tạm trú", "quantity": 1, "amount": 15_000, "exempted_by": None},
            {"code": "BS", "name": "Phí cấp bản sao", "quantity": 3, "amount": 9_000, "exempted_by": None},
        ],
        "created_at": CREATED, "expires_at": CREATED + timedelta(days=7),
    }  # fmt: skip
    return store.Payment(**{**row, **kwargs})


def render(row: store.Payment, config: PaymentsSettings | None = None, replaced_by: store.Payment | None = None) -> str:
    context = payment_context(PaymentPage(payment=row, replaced_by=replaced_by), config or settings())
    return payment_pages().html("payment.html", context)


def text(html: str) -> str:
    """The words a person reads (inline tags dropped, block tags a space, spaces collapsed)."""
    inline = re.sub(r"</?(?:span|strong|a)\b[^>]*>", "", html)
    return " ".join(re.sub(r"<[^>]+>", " ", inline).split())


def test_a_pending_request_shows_the_amount_its_lines_the_vietqr_the_account_and_the_expiry(tmp_path: Path) -> None:
    row = payment()
    html = render(row)
    words = text(html)
    assert '<html lang="vi">' in html
    assert "Nộp phí, lệ phí hồ sơ 000.00.12.H56-260302-0007" in words and "Chờ thanh toán" in words
    assert "Số tiền cần nộp: 24.000 đồng (Hai mươi tư nghìn đồng)" in words
    assert "Lệ phí đăng ký tạm trú 1 15.000 Phí cấp bản sao 3 9.000 Tổng cộng 24.000" in words
    assert "Ngân hàng VietinBank – Ngân hàng TMCP Công Thương Việt Nam" in words
    assert "Số tài khoản 113366668888" in words and "Chủ tài khoản UBND PHƯỜNG BẾN NGHÉ" in words
    assert f"Nội dung chuyển khoản {domain.decode(domain.qr_payload(row) or '')['purpose']}" in words
    assert "Hạn thanh toán: 08 giờ 05 phút, ngày 09 tháng 3 năm 2026" in words
    assert "UBND phường Bến Nghé, Quận 1" in words  # the header names the unit
    assert 'href="https://motcua.example.gov.vn/trang/ho-so/000.00.12.H56-260302-0007"' in html
    assert "Nguyễn Thị Hồng Nhung" not in html  # nobody is named
    assert "Đã thanh toán" not in words and "minh họa" not in words
    # The QR is an inline PNG that a reader decodes to the request's VietQR payload.
    [uri] = re.findall(r'src="(data:image/png;base64,[^"]+)"', html)
    png = tmp_path / "qr.png"
    png.write_bytes(base64.b64decode(uri.removeprefix("data:image/png;base64,")))
    assert decode_qr_png(png) == [domain.qr_payload(row)]


def test_a_paid_request_says_so_with_its_receipt_and_shows_no_qr() -> None:
    paid_at = CREATED + timedelta(hours=2)
    html = render(payment(status="paid", paid_at=paid_at, channel="online", provider="vietinbank", receipt_number="BL26-0000012"))
    words = text(html)
    assert "Đã thanh toán" in words and "đã được nhận lúc 10 giờ 05 phút, ngày 02 tháng 3 năm 2026" in words
    assert "Biên lai thu phí, lệ phí số BL26-0000012. Hình thức nộp: Chuyển khoản (VietQR)." in words
    assert "data:image/png" not in html and "Hạn thanh toán" not in words and "Số tài khoản" not in words
    assert "Số tiền: 24.000 đồng" in words and "Số tiền cần nộp" not in words
    assert "Tổng cộng 24.000" in words  # what was paid stays listed


def test_a_unit_without_a_collection_account_is_told_to_pay_at_the_counter() -> None:
    html = render(payment(bank_bin=None, account=None), settings(collection_account=None))
    words = text(html)
    assert "Chờ thanh toán" in words and "chưa cấu hình tài khoản thu" in words and "nộp tại Bộ phận Một cửa" in words
    assert "data:image/png" not in html and "Hạn thanh toán" in words


def test_an_expired_request_points_at_the_request_that_replaced_it() -> None:
    old = payment(status="expired", failed_at=CREATED + timedelta(days=7))
    new = payment(id="MC9Z8Y7X6W5V", basis=f"reissue:{old.id}")
    html = render(old, replaced_by=new)
    words = text(html)
    assert "Đã hết hạn thanh toán" in words and "mã QR của nó không còn dùng được" in words
    assert 'href="https://motcua.example.gov.vn/thu-phi/nop-phi/MC9Z8Y7X6W5V"' in html
    assert "data:image/png" not in html
    alone = text(render(payment(status="failed")))
    assert "Thanh toán không thành công" in alone and "liên hệ Bộ phận Một cửa" in alone


def test_a_refunded_request_says_when() -> None:
    refunded = CREATED + timedelta(days=1)
    words = text(render(payment(status="refunded", paid_at=CREATED, channel="counter", receipt_number="BL26-1", refunded_at=refunded)))
    assert "Đã hoàn trả" in words and "đã được hoàn trả lúc 08 giờ 05 phút, ngày 03 tháng 3 năm 2026" in words


def test_the_demonstration_account_is_labelled_on_the_page() -> None:
    config = settings(collection_account=CollectionAccount(**DEMO))
    words = text(render(payment(bank_bin=DEMO["bin"], account=DEMO["account"]), config))
    assert "Tài khoản minh họa." in words and "Xin đừng chuyển tiền thật vào tài khoản này." in words
    assert "Chủ tài khoản TÀI KHOẢN MINH HỌA – KHÔNG CHUYỂN TIỀN" in words


@pytest.mark.parametrize("where", ["procedure", "line", "unit"])
def test_hostile_names_are_shown_as_text(where: str) -> None:
    row = payment(procedure_name=SCRIPT) if where == "procedure" else payment()
    if where == "line":
        row.lines = [{"code": "X", "name": SCRIPT, "quantity": 1, "amount": 24_000, "exempted_by": None}]
    html = render(row, settings(unit_names={UNIT: SCRIPT}) if where == "unit" else None)
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
