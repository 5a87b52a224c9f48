"""One-stop forms 01-05 (DOMAIN §1.3) render as PDFs whose text and QR code say what was asked."""

from __future__ import annotations

import io
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pypdf
import pytest
import zxingcpp
from PIL import Image

from shared.clock import VN_TZ
from services.intake.printing import (
    DocumentKind,
    ReceiptForm,
    ReceivedDocument,
    RefusalForm,
    ReturnMethod,
    render_receipt,
    render_refusal,
)
from services.workflow.printing import ApologyForm, ControlSlipForm, HandOver, render_apology, render_control_slip
from shared.forms import SupplementItem, SupplementRequestForm, SupplementStage, render_supplement_request
from shared.pdf import Agency, Applicant, Officer, Procedure, lookup_qr
from shared.vntext import format_date, format_instant, mask_id_number

CODE = "000.00.12.H29-260203-0001"
URL = f"https://dichvucong.example.gov.vn/tra-cuu?ma={CODE}"
ID_NUMBER = "079201001234"
NAME = "Nguyễn Thị Hồng Nhung"
RECEIVED = datetime(2026, 2, 3, 1, 5, tzinfo=UTC)  # 08:05 in Vietnam

AGENCY = Agency(
    name="Bộ phận Tiếp nhận và Trả kết quả",
    parent="UBND phường Bến Nghé",
    place="Phường Bến Nghé",
)
APPLICANT = Applicant(
    name=NAME,
    id_number=ID_NUMBER,
    address="12 Lê Lợi, phường Bến Nghé, TP. Hồ Chí Minh",
    phone="0903 123 456",
    email="nhung@example.vn",
)
PROCEDURE = Procedure(name="Đăng ký tạm trú", code="1.004194")
OFFICER = Officer(name="Trần Văn Đức")


def make_receipt(**overrides: object) -> ReceiptForm:
    fields: dict[str, object] = dict(
        agency=AGENCY,
        dossier_code=CODE,
        lookup_url=URL,
        applicant=APPLICANT,
        procedure=PROCEDURE,
        documents=(
            ReceivedDocument(
                name="Tờ khai thay đổi thông tin cư trú (CT01)", kind=DocumentKind.ORIGINAL
            ),
            ReceivedDocument(name="Hợp đồng thuê nhà ở", kind=DocumentKind.CERTIFIED_COPY, count=2),
        ),
        sets=1,
        received_at=RECEIVED,
        appointment_at=RECEIVED + timedelta(days=3, hours=6),
        return_method=ReturnMethod.IN_PERSON,
        officer=OFFICER,
    )
    fields.update(overrides)
    return ReceiptForm(**fields)  # type: ignore[arg-type]


def make_supplement_request(**overrides: object) -> SupplementRequestForm:
    fields: dict[str, object] = dict(
        agency=AGENCY,
        dossier_code=CODE,
        lookup_url=URL,
        applicant=APPLICANT,
        procedure=PROCEDURE,
        stage=SupplementStage.INTAKE,
        items=(
            SupplementItem(
                content="Giấy tờ chứng minh chỗ ở hợp pháp",
                reason="Hợp đồng thuê nhà chưa được công chứng",
            ),
        ),
        issued_at=RECEIVED,
        officer=OFFICER,
        contact_phone="028 3829 1234",
    )
    fields.update(overrides)
    return SupplementRequestForm(**fields)  # type: ignore[arg-type]


def make_refusal(**overrides: object) -> RefusalForm:
    fields: dict[str, object] = dict(
        agency=AGENCY,
        dossier_code=CODE,
        lookup_url=URL,
        applicant=APPLICANT,
        procedure=PROCEDURE,
        reason="Nơi đề nghị đăng ký tạm trú thuộc địa bàn phường khác.",
        issued_at=RECEIVED,
        officer=OFFICER,
    )
    fields.update(overrides)
    return RefusalForm(**fields)  # type: ignore[arg-type]


def make_apology(**overrides: object) -> ApologyForm:
    fields: dict[str, object] = dict(
        agency=AGENCY,
        dossier_code=CODE,
        lookup_url=URL,
        applicant=APPLICANT,
        procedure=PROCEDURE,
        received_at=RECEIVED,
        original_appointment_at=RECEIVED + timedelta(days=3),
        new_appointment_at=RECEIVED + timedelta(days=6),
        reason="Cần xác minh thêm thông tin với cơ quan công an.",
        issued_at=RECEIVED + timedelta(days=2),
        signer=Officer(name="Lê Minh Khôi", title="Chủ tịch UBND phường"),
    )
    fields.update(overrides)
    return ApologyForm(**fields)  # type: ignore[arg-type]


def make_hand_over(**overrides: object) -> HandOver:
    fields: dict[str, object] = dict(
        from_unit="Bộ phận Một cửa",
        from_officer="Trần Văn Đức",
        to_unit="Công an phường Bến Nghé",
        to_officer="Phạm Quốc Huy",
        received_at=RECEIVED + timedelta(hours=1),
        step_due_at=RECEIVED + timedelta(days=2),
        handed_over_at=RECEIVED + timedelta(days=1),
        result="Đúng hạn",
    )
    fields.update(overrides)
    return HandOver(**fields)  # type: ignore[arg-type]


def make_control_slip(**overrides: object) -> ControlSlipForm:
    fields: dict[str, object] = dict(
        agency=AGENCY,
        dossier_code=CODE,
        lookup_url=URL,
        applicant=APPLICANT,
        procedure=PROCEDURE,
        received_at=RECEIVED,
        appointment_at=RECEIVED + timedelta(days=3),
        rows=(make_hand_over(),),
    )
    fields.update(overrides)
    return ControlSlipForm(**fields)  # type: ignore[arg-type]


def text_of(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def qr_payloads(pdf: bytes) -> list[str]:
    """Decode every QR code found in the images embedded on the first page."""
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    found = []
    for image in page.images:
        found += [barcode.text for barcode in zxingcpp.read_barcodes(image.image.convert("L"))]
    return found


RENDERED = {
    "01": lambda: render_receipt(make_receipt()),
    "02": lambda: render_supplement_request(make_supplement_request()),
    "03": lambda: render_refusal(make_refusal()),
    "04": lambda: render_apology(make_apology()),
    "05": lambda: render_control_slip(make_control_slip()),
}
TITLES = {
    "01": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả",
    "02": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
    "03": "Phiếu từ chối tiếp nhận giải quyết hồ sơ",
    "04": "Phiếu xin lỗi và hẹn lại ngày trả kết quả",
    "05": "Phiếu kiểm soát quá trình giải quyết hồ sơ",
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, bytes]:
    return {number: render() for number, render in RENDERED.items()}


# --- every form -----------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(RENDERED))
def test_each_form_is_a_pdf_with_its_name_code_and_the_applicant(
    rendered: dict[str, bytes], number: str
) -> None:
    pdf = rendered[number]
    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf)
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text
    assert "Độc lập - Tự do - Hạnh phúc" in text
    assert TITLES[number].upper() in text
    assert f"Mẫu số {number} – {TITLES[number]}" in text
    assert f"Mã hồ sơ: {CODE}" in text
    assert NAME in text
    assert "Đăng ký tạm trú" in text
    assert pypdf.PdfReader(io.BytesIO(pdf)).metadata.title == TITLES[number]


@pytest.mark.parametrize("number", sorted(RENDERED))
def test_each_form_never_prints_the_whole_id_number(
    rendered: dict[str, bytes], number: str
) -> None:
    text = text_of(rendered[number])
    assert ID_NUMBER not in text
    assert ID_NUMBER not in "".join(text.split())


@pytest.mark.parametrize("number", sorted(RENDERED))
def test_each_form_embeds_a_qr_code_of_the_lookup_link(
    rendered: dict[str, bytes], number: str
) -> None:
    assert qr_payloads(rendered[number]) == [URL]


@pytest.mark.parametrize("number", sorted(RENDERED))
def test_each_form_embeds_its_font_with_a_unicode_map(
    rendered: dict[str, bytes], number: str
) -> None:
    page = pypdf.PdfReader(io.BytesIO(rendered[number])).pages[0]
    fonts = [font.get_object() for font in page["/Resources"]["/Font"].values()]
    assert fonts
    for font in fonts:
        assert font["/Subtype"] == "/Type0"
        assert "BeVietnamPro" in font["/BaseFont"]
        assert "/ToUnicode" in font
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        assert "/FontFile2" in descriptor


def test_the_same_form_renders_to_the_same_bytes() -> None:
    assert render_receipt(make_receipt()) == render_receipt(make_receipt())


# --- Form 01 --------------------------------------------------------------------------------


def test_receipt_lists_documents_sets_times_and_how_the_result_is_returned(
    rendered: dict[str, bytes],
) -> None:
    text = text_of(rendered["01"])
    assert "Giấy tiếp nhận hồ sơ và hẹn trả kết quả" in text
    assert "*********234" in text
    assert "0903 123 456" in text and "nhung@example.vn" in text
    assert "mã TTHC: 1.004194" in text
    assert "Tờ khai thay đổi thông tin cư trú (CT01)" in text and "Bản chính" in text
    assert "Hợp đồng thuê nhà ở" in text and "Bản sao chứng thực" in text
    assert "Số lượng hồ sơ: 01 bộ" in text
    assert "Thời gian nhận hồ sơ: 08 giờ 05 phút, ngày 03 tháng 02 năm 2026" in text
    assert "14 giờ 05 phút, ngày 06 tháng 02 năm 2026" in text
    assert "Nhận trực tiếp tại Bộ phận Một cửa" in text
    assert "NGƯỜI TIẾP NHẬN HỒ SƠ" in text and "Trần Văn Đức" in text
    assert "Phường Bến Nghé, ngày 03 tháng 02 năm 2026" in text


def test_decomposed_input_prints_composed_vietnamese() -> None:
    decomposed = unicodedata.normalize("NFD", NAME)
    assert decomposed != NAME
    applicant = replace(APPLICANT, name=decomposed)
    text = text_of(render_receipt(make_receipt(applicant=applicant)))
    assert NAME in text


def test_a_long_document_list_flows_onto_more_pages_with_the_code_on_each() -> None:
    documents = tuple(
        ReceivedDocument(name=f"Giấy tờ số {i}", kind=DocumentKind.COPY) for i in range(1, 61)
    )
    pdf = render_receipt(make_receipt(documents=documents))
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert f"Mã hồ sơ: {CODE} – Trang {number}/{len(pages)}" in page.extract_text()


def test_receipt_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_receipt(received_at=datetime(2026, 2, 3, 8, 5))


def test_the_applicant_id_number_stays_out_of_repr() -> None:
    assert ID_NUMBER not in repr(APPLICANT)
    assert ID_NUMBER not in repr(make_receipt())


# --- Forms 02-05 ----------------------------------------------------------------------------


def test_supplement_request_lists_what_to_add_and_why(rendered: dict[str, bytes]) -> None:
    text = text_of(rendered["02"])
    assert "1. Giấy tờ chứng minh chỗ ở hợp pháp" in text
    assert "Lý do: Hợp đồng thuê nhà chưa được công chứng" in text
    assert "Sau khi kiểm tra, hồ sơ chưa đầy đủ, chưa hợp lệ." in text
    assert "028 3829 1234" in text
    assert "NGƯỜI HƯỚNG DẪN" in text


def test_supplement_request_from_appraisal_says_so() -> None:
    form = make_supplement_request(stage=SupplementStage.APPRAISAL, received_at=RECEIVED)
    text = text_of(render_supplement_request(form))
    assert "Qua thẩm định" in text
    assert "Thời gian tiếp nhận hồ sơ: 08 giờ 05 phút, ngày 03 tháng 02 năm 2026" in text


def test_refusal_states_the_reason(rendered: dict[str, bytes]) -> None:
    text = text_of(rendered["03"])
    assert "Nơi đề nghị đăng ký tạm trú thuộc địa bàn phường khác." in text
    assert "từ chối" in text.lower()


def test_apology_gives_the_reason_and_both_appointments(rendered: dict[str, bytes]) -> None:
    text = text_of(rendered["04"])
    assert "Kính gửi: Ông/Bà Nguyễn Thị Hồng Nhung" in text
    assert "Lý do: Cần xác minh thêm thông tin với cơ quan công an." in text
    assert "Thời gian hẹn trả kết quả: 08 giờ 05 phút, ngày 06 tháng 02 năm 2026" in text
    assert "Thời gian hẹn trả kết quả mới: 08 giờ 05 phút, ngày 09 tháng 02 năm 2026" in text
    assert "CHỦ TỊCH UBND PHƯỜNG" in text and "Lê Minh Khôi" in text


def test_apology_needs_a_later_appointment() -> None:
    with pytest.raises(ValueError, match="after the original"):
        make_apology(new_appointment_at=RECEIVED + timedelta(days=3))


def test_control_slip_has_a_row_per_hand_over() -> None:
    rows = (
        make_hand_over(),
        make_hand_over(
            from_unit="Công an phường Bến Nghé",
            from_officer="Phạm Quốc Huy",
            to_unit="Bộ phận Một cửa",
            to_officer="Trần Văn Đức",
            received_at=RECEIVED + timedelta(days=1),
            step_due_at=None,
            handed_over_at=None,
            result="Chờ trả kết quả",
        ),
    )
    text = " ".join(text_of(render_control_slip(make_control_slip(rows=rows))).split())
    assert text.count("Công an phường Bến Nghé") == 2
    assert "Phạm Quốc Huy" in text
    assert "Chờ trả kết quả" in text
    assert "09 giờ 05 phút, ngày 03 tháng 02 năm 2026" in text  # first row received
    assert "08 giờ 05 phút, ngày 05 tháng 02 năm 2026" in text  # first row step deadline
    assert "Người giao ký" in text and "Người nhận ký" in text


def test_control_slip_rows_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_hand_over(handed_over_at=datetime(2026, 2, 4, 9, 0))


# --- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("079201001234", "*********234"),
        ("0792 0100 1234", "*********234"),
        ("123456789", "******789"),
        ("123", "***"),
        ("", ""),
    ],
)
def test_mask_id_number_keeps_only_the_last_three(raw: str, masked: str) -> None:
    assert mask_id_number(raw) == masked


def test_instants_print_in_vietnam_time_with_decree_30_padding() -> None:
    assert format_instant(datetime(2026, 2, 3, 1, 5, tzinfo=UTC)) == (
        "08 giờ 05 phút, ngày 03 tháng 02 năm 2026"
    )
    # 23:30 UTC is already the next day in Hanoi.
    assert format_instant(datetime(2026, 3, 4, 23, 30, tzinfo=UTC)) == (
        "06 giờ 30 phút, ngày 05 tháng 3 năm 2026"
    )
    assert format_date(datetime(2026, 12, 25, 9, 0, tzinfo=VN_TZ)) == "ngày 25 tháng 12 năm 2026"


def test_lookup_qr_carries_the_link() -> None:
    qr = lookup_qr(URL)
    assert qr.error == "M"
    out = io.BytesIO()
    qr.save(out, kind="png", scale=4)
    out.seek(0)
    assert [b.text for b in zxingcpp.read_barcodes(Image.open(out).convert("L"))] == [URL]
