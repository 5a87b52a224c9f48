"""The electronic fee receipt (biên lai thu phí, lệ phí) renders as a PDF that says what was collected."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pypdf
import pytest
import zxingcpp

from services.payments.printing import FeeReceiptForm, PaymentMethod, ReceiptLine, render_fee_receipt
from shared.pdf import Agency, Applicant, Officer, Procedure
from shared.vntext import amount_in_words, format_vnd

CODE = "000.00.12.H56-260203-0001"
URL = f"https://dichvucong.example.gov.vn/tra-cuu?ma={CODE}"
PAID = datetime(2026, 2, 3, 2, 30, tzinfo=UTC)  # 09:30 in Vietnam


def make_receipt(**overrides: object) -> FeeReceiptForm:
    fields: dict[str, object] = dict(
        agency=Agency(name="Bộ phận Tiếp nhận và Trả kết quả", parent="UBND phường Phú Hội", place="Phường Phú Hội"),
        dossier_code=CODE,
        lookup_url=URL,
        receipt_number="BL26-0000042",
        payer=Applicant(name="Nguyễn Thị Hồng Nhung", address="12 Lê Lợi, phường Phú Hội"),
        procedure=Procedure(name="Chứng thực bản sao từ bản chính", code="2.000815"),
        lines=(
            ReceiptLine(name="Lệ phí chứng thực bản sao từ bản chính", amount=12_000, quantity=1),
            ReceiptLine(name="Phí cấp bản sao trích lục", amount=16_000, quantity=2),
        ),
        paid_at=PAID,
        method=PaymentMethod.TRANSFER,
        collector=Officer(name="Trần Văn Đức"),
        transaction_id="FT26034123456",
    )
    fields.update(overrides)
    return FeeReceiptForm(**fields)  # type: ignore[arg-type]


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return render_fee_receipt(make_receipt())


def test_the_receipt_names_the_agency_payer_procedure_number_and_code(rendered: bytes) -> None:
    assert rendered.startswith(b"%PDF-")
    text = text_of(rendered)
    assert "BIÊN LAI THU PHÍ, LỆ PHÍ" in text
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text
    assert "Số biên lai: BL26-0000042" in text
    assert f"Mã hồ sơ: {CODE}" in text
    assert "Nguyễn Thị Hồng Nhung" in text and "Chứng thực bản sao từ bản chính (mã TTHC: 2.000815)" in text
    assert "Phường Phú Hội, ngày 03 tháng 02 năm 2026" in text
    assert f"Biên lai thu phí, lệ phí số BL26-0000042 – Mã hồ sơ: {CODE} – Trang 1/1" in text
    assert pypdf.PdfReader(io.BytesIO(rendered)).metadata.title == "Biên lai thu phí, lệ phí"


def test_the_receipt_lists_the_lines_and_the_total_in_figures_and_in_words(rendered: bytes) -> None:
    text = text_of(rendered)
    assert "Lệ phí chứng thực bản sao từ bản chính" in text and "12.000" in text
    assert "Phí cấp bản sao trích lục" in text and "16.000" in text
    assert "Tổng số tiền: 28.000 đồng" in text
    assert "Số tiền bằng chữ: Hai mươi tám nghìn đồng" in text
    assert "Hình thức thanh toán: Chuyển khoản (VietQR)" in text
    assert "Mã giao dịch: FT26034123456" in text
    assert "Thời điểm thu tiền: 09 giờ 30 phút, ngày 03 tháng 02 năm 2026" in text
    assert "NGƯỜI THU TIỀN" in text and "Trần Văn Đức" in text


def test_the_receipt_carries_the_lookup_qr(rendered: bytes) -> None:
    page = pypdf.PdfReader(io.BytesIO(rendered)).pages[0]
    found = [b.text for image in page.images for b in zxingcpp.read_barcodes(image.image.convert("L"))]
    assert found == [URL]


def test_a_refunded_receipt_says_so() -> None:
    pdf = render_fee_receipt(make_receipt(refunded_at=PAID + timedelta(days=1), refund_reason="Thu nhầm lệ phí", method=PaymentMethod.CASH))
    text = " ".join(text_of(pdf).split())
    assert "Đã hoàn trả toàn bộ số tiền vào lúc 09 giờ 30 phút, ngày 04 tháng 02 năm 2026. Lý do: Thu nhầm lệ phí" in text
    assert "Tiền mặt tại Bộ phận Một cửa" in text


def test_the_same_receipt_renders_to_the_same_bytes() -> None:
    assert render_fee_receipt(make_receipt()) == render_fee_receipt(make_receipt())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lines": ()}, "at least one line"),
        ({"lines": (ReceiptLine(name="Miễn", amount=0),)}, "positive amount"),
        ({"paid_at": datetime(2026, 2, 3, 9, 30)}, "timezone-aware"),
        ({"receipt_number": " "}, "has a number"),
    ],
)
def test_a_receipt_refuses_what_it_cannot_print(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_receipt(**overrides)


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (0, "Không đồng"),
        (5_000, "Năm nghìn đồng"),
        (7_000, "Bảy nghìn đồng"),
        (10_000, "Mười nghìn đồng"),
        (15_000, "Mười lăm nghìn đồng"),
        (21_000, "Hai mươi mốt nghìn đồng"),
        (24_000, "Hai mươi tư nghìn đồng"),
        (105_000, "Một trăm linh năm nghìn đồng"),
        (200_000, "Hai trăm nghìn đồng"),
        (1_000_005, "Một triệu không trăm linh năm đồng"),
        (1_250_000, "Một triệu hai trăm năm mươi nghìn đồng"),
        (2_000_000_000, "Hai tỷ đồng"),
    ],
)
def test_amounts_in_vietnamese_words(amount: int, words: str) -> None:
    assert amount_in_words(amount) == words


def test_money_prints_with_dots_between_thousands() -> None:
    assert format_vnd(1_250_000) == "1.250.000" and format_vnd(800) == "800"
