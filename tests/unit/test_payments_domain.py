"""Payments rules: the VietQR payload against the NAPAS vectors, fee assessment into requests, states,
matching transfers, statements and the day's reconciliation."""

from __future__ import annotations

import io
from datetime import date

import pytest
import segno
import zxingcpp
from PIL import Image

from services.payments import domain
from services.payments.domain import (
    LineVerdict,
    PaymentStatus,
    Recorded,
    TransferOutcome,
    VietQR,
)

# ---- VietQR -------------------------------------------------------------------------------------

NAPAS_6_1_3 = (
    "00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA530370454061800005802VN"
    "62340107NPS68690819thanh toan don hang63042E2E"
)
WORKED_EXAMPLE = (
    "00020101021238560010A0000007270126000697041501121133666688880208QRIBFTTA5303704540480005802VN"
    "62470125000.00.12.H56-240315-00010814LE PHI HO TICH63047305"
)


def test_crc16_ccitt_false_has_the_standard_check_value() -> None:
    assert domain.crc16_ccitt_false(b"123456789") == 0x29B1


def test_napas_vector_6_1_3_dynamic_qr_to_an_account() -> None:
    qr = VietQR(bank_bin="970403", account="0011012345678", amount=180000, bill_number="NPS6869", purpose="thanh toan don hang")
    assert domain.encode(qr) == NAPAS_6_1_3


def test_napas_vectors_6_1_2_and_6_1_4_to_a_card_static_and_dynamic() -> None:
    static = domain.encode(VietQR(bank_bin="970403", account="9704031101234567", card=True))
    dynamic = domain.encode(
        VietQR(bank_bin="970403", account="9704031101234567", card=True, amount=180000, bill_number="NPS6869", purpose="thanh toan don hang")
    )
    assert static.endswith("63044F52") and "0208QRIBFTTC" in static and static[10:12] == "11"
    assert dynamic.endswith("6304A203") and dynamic[10:12] == "12"


def test_the_worked_one_stop_fee_example() -> None:
    qr = VietQR(bank_bin="970415", account="113366668888", amount=8000, bill_number="000.00.12.H56-240315-0001", purpose="LE PHI HO TICH")
    assert domain.encode(qr) == WORKED_EXAMPLE


def test_decode_reads_back_every_field_and_checks_the_crc() -> None:
    fields = domain.decode(WORKED_EXAMPLE)
    assert fields == {
        "dynamic": True, "guid": "A000000727", "bank_bin": "970415", "account": "113366668888", "service": "QRIBFTTA",
        "currency": "704", "amount": 8000, "country": "VN", "bill_number": "000.00.12.H56-240315-0001",
        "reference_label": None, "terminal_label": None, "purpose": "LE PHI HO TICH",
    }  # fmt: skip
    with pytest.raises(domain.QrError, match="CRC"):
        domain.decode(WORKED_EXAMPLE[:-1] + "6")


@pytest.mark.parametrize(
    ("qr", "message"),
    [
        (VietQR(bank_bin="97041", account="1"), "bank_bin"),
        (VietQR(bank_bin="970415", account="12-34"), "account"),
        (VietQR(bank_bin="970415", account="1", amount=0), "amount"),
        (VietQR(bank_bin="970415", account="1", amount=1, bill_number="x" * 26), "bill_number"),
        (VietQR(bank_bin="970415", account="1", amount=1, purpose="lệ phí"), "ASCII"),
    ],
)
def test_the_encoder_refuses_what_emvco_does_not_allow(qr: VietQR, message: str) -> None:
    with pytest.raises(domain.QrError, match=message):
        domain.encode(qr)


def test_a_fee_qr_carries_the_dossier_code_and_the_payment_id_in_the_memo() -> None:
    qr = domain.fee_qr(
        bank_bin="970415", account="113366668888", card=False, amount=15000, dossier_code="000.00.12.H56-250304-0007",
        payment="MC4F7K2Q9PXA", procedure_name="Đăng ký tạm trú",
    )  # fmt: skip
    fields = domain.decode(domain.encode(qr))
    assert fields["bill_number"] == "000.00.12.H56-250304-0007"
    assert fields["reference_label"] == "MC4F7K2Q9PXA"
    assert fields["purpose"] == "MC4F7K2Q9PXA DANG KY TAM"
    assert fields["amount"] == 15000 and fields["dynamic"]


def test_a_dossier_code_too_long_for_the_bill_number_gives_way_to_the_payment_id() -> None:
    qr = domain.fee_qr(
        bank_bin="970415", account="1", card=False, amount=1, dossier_code="000.00.12.TABCDEF-250304-0007",
        payment="MC4F7K2Q9PXA", procedure_name="x",
    )  # fmt: skip
    assert qr.bill_number == "MC4F7K2Q9PXA"


def test_a_real_qr_reader_reads_the_payload_segno_draws() -> None:
    payload = domain.encode(
        domain.fee_qr(
            bank_bin="970436", account="0071000123456", card=False, amount=12000, dossier_code="000.00.12.H56-250304-0001",
            payment="MC0000000001", procedure_name="Chứng thực bản sao",
        )
    )  # fmt: skip
    out = io.BytesIO()
    segno.make_qr(payload, error="m").save(out, kind="png", scale=6)
    out.seek(0)
    assert [b.text for b in zxingcpp.read_barcodes(Image.open(out).convert("L"))] == [payload]


def test_ascii_text_drops_vietnamese_diacritics() -> None:
    assert domain.ascii_text("Lệ phí đăng ký tạm trú – Đồng Tháp") == "LE PHI DANG KY TAM TRU DONG THAP"


# ---- identifiers -----------------------------------------------------------------------------------


def test_payment_ids_are_short_crockford_and_found_in_a_mangled_memo() -> None:
    pid = domain.payment_id(bytes(range(1, 9)))
    assert len(pid) == 12 and pid.startswith("MC") and domain.PAYMENT_ID_RE.fullmatch(pid)
    memo = f"CHUYEN TIEN {pid[:6].lower()} {pid[6:]} le phi - FT25063"
    assert domain.payment_ids_in(memo) == [pid]
    assert domain.payment_ids_in("thanh toan le phi") == []


def test_receipt_numbers_follow_the_format() -> None:
    assert domain.receipt_number("BL{yy}-{sequence:07d}", unit="U", year=2025, sequence=42) == "BL25-0000042"


# ---- assessment ------------------------------------------------------------------------------------

TAM_TRU = {"code": "CT-TTU", "name": "Lệ phí đăng ký tạm trú", "amount": 15000, "unit": "per_case", "online_amount": 7000,
           "exemptions": ["art4_circular_75_2022"]}  # fmt: skip
CERTIFIED = {"code": "CT-BS", "name": "Lệ phí chứng thực bản sao", "amount": 2000, "unit": "per_page", "reduced_from_page": 3,
             "reduced_amount": 1000, "cap_per_copy": 200000}  # fmt: skip
EXTRACT = {"code": "HT-TL", "name": "Phí cấp bản sao trích lục", "amount": 8000, "unit": "per_copy",
           "exemptions": ["poor_household"]}  # fmt: skip


def test_reception_assesses_per_case_with_the_online_amount() -> None:
    lines = domain.fee_lines([TAM_TRU])
    assert domain.assess_at_reception(lines, online=False, pages=None, copies=1, exemption=None).total == 15000
    assert domain.assess_at_reception(lines, online=True, pages=None, copies=1, exemption=None).total == 7000


def test_an_exempt_applicant_owes_nothing_and_needs_no_payment() -> None:
    assessment = domain.assess_at_reception(
        domain.fee_lines([EXTRACT]), online=False, pages=None, copies=3, exemption="poor_household"
    )
    assert not assessment.payable and assessment.items[0].exempted_by == "poor_household"


def test_per_copy_lines_multiply_by_the_copies() -> None:
    assert domain.assess_at_reception(domain.fee_lines([EXTRACT]), online=False, pages=None, copies=3, exemption=None).total == 24000


def test_per_page_lines_wait_for_the_pages_then_apply_the_lower_rate_and_the_cap() -> None:
    lines = domain.fee_lines([CERTIFIED])
    waiting = domain.assess_at_reception(lines, online=False, pages=None, copies=1, exemption=None)
    assert waiting.waiting == ("CT-BS",) and not waiting.payable
    assert domain.assess_pages(lines, online=False, pages=10, copies=1, exemption=None).total == 12000
    assert domain.assess_pages(lines, online=False, pages=500, copies=2, exemption=None).total == 400000


def test_a_free_procedure_needs_no_payment() -> None:
    free = domain.fee_lines([{"code": "HT-KS", "name": "Lệ phí đăng ký khai sinh", "amount": 0}])
    assert not domain.assess_at_reception(free, online=False, pages=None, copies=1, exemption=None).payable


def test_without_lines_the_preliminary_fee_is_one_line() -> None:
    assert domain.preliminary_lines(0) == ()
    [line] = domain.preliminary_lines(15000)
    assert line.amount == 15000


def test_fee_lines_round_trip_through_json() -> None:
    lines = domain.fee_lines([TAM_TRU, CERTIFIED, EXTRACT])
    assert domain.fee_lines([domain.fee_line_json(line) for line in lines]) == lines


# ---- states ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "wanted"),
    [("pending", PaymentStatus.PAID), ("pending", PaymentStatus.FAILED), ("pending", PaymentStatus.EXPIRED), ("paid", PaymentStatus.REFUNDED)],
)
def test_allowed_transitions(current: str, wanted: PaymentStatus) -> None:
    assert domain.transition(current, wanted) is wanted


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("paid", PaymentStatus.PAID),
        ("pending", PaymentStatus.REFUNDED),
        ("expired", PaymentStatus.PAID),
        ("failed", PaymentStatus.PAID),
        ("refunded", PaymentStatus.PAID),
    ],
)
def test_nothing_is_paid_twice_and_closed_requests_stay_closed(current: str, wanted: PaymentStatus) -> None:
    with pytest.raises(domain.IllegalTransition):
        domain.transition(current, wanted)


# ---- transfers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "due", "amount", "currency", "failed", "outcome"),
    [
        ("pending", 15000, 15000, "VND", False, TransferOutcome.CONFIRMED),
        ("pending", 15000, 10000, "VND", False, TransferOutcome.AMOUNT_MISMATCH),
        ("pending", 15000, 20000, "VND", False, TransferOutcome.AMOUNT_MISMATCH),
        ("pending", 15000, 15000, "USD", False, TransferOutcome.AMOUNT_MISMATCH),
        ("paid", 15000, 15000, "VND", False, TransferOutcome.NOT_PAYABLE),
        ("expired", 15000, 15000, "VND", False, TransferOutcome.NOT_PAYABLE),
        (None, None, 15000, "VND", False, TransferOutcome.UNMATCHED),
        ("pending", 15000, 0, "VND", True, TransferOutcome.FAILED),
    ],
)
def test_what_a_transfer_does_to_a_request(
    status: str | None, due: int | None, amount: int, currency: str, failed: bool, outcome: TransferOutcome
) -> None:
    assert domain.judge_transfer(payment_status=status, due=due, amount=amount, currency=currency, provider_failed=failed) is outcome


def test_mismatch_reasons_say_which_way() -> None:
    assert domain.mismatch_reason(due=15000, amount=10000, currency="VND") == "underpaid: received 10000 VND, due 15000 VND"
    assert domain.mismatch_reason(due=15000, amount=20000, currency="VND").startswith("overpaid")
    assert domain.mismatch_reason(due=15000, amount=15000, currency="USD") == "currency USD instead of VND"


# ---- statements ------------------------------------------------------------------------------------


def test_a_statement_reads_dates_amounts_references_and_ids() -> None:
    text = (
        "date,amount,reference,transaction_id\n"
        "2025-03-04,15000,MC4F7K2Q9PXA LE PHI,FT001\n"
        '04/03/2025,"1.250.000",memo,FT002\n'
        "2025-03-04,8000.00,,FT003\n"
        "\n"
    )
    lines = domain.parse_statement(text)
    assert [(l.booked_on, l.amount, l.transaction_id) for l in lines] == [
        (date(2025, 3, 4), 15000, "FT001"), (date(2025, 3, 4), 1250000, "FT002"), (date(2025, 3, 4), 8000, "FT003"),
    ]  # fmt: skip
    assert lines[0].reference == "MC4F7K2Q9PXA LE PHI" and lines[0].line == 2


def test_semicolons_and_vietnamese_headers_are_read_too() -> None:
    lines = domain.parse_statement("Ngày;Số tiền;Nội dung;Mã giao dịch\n2025-03-04;15.000;abc;X1\n")
    assert lines[0].amount == 15000 and lines[0].transaction_id == "X1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("date,amount,reference\n", "transaction_id"),
        ("date,amount,reference,transaction_id\n", "no lines"),
        ("date,amount,reference,transaction_id\n2025-13-01,1,r,T\n", "row 2"),
        ("date,amount,reference,transaction_id\n2025-03-01,15.5,r,T\n", "row 2: '15.5'"),
        ("date,amount,reference,transaction_id\n2025-03-01,1,r,\n", "transaction_id is empty"),
        ("date,amount,reference,transaction_id\n2025-03-01,1,r,T\n2025-03-01,2,r,T\n", "repeats row 2"),
    ],
)
def test_a_bad_statement_names_the_row_and_the_column(text: str, message: str) -> None:
    with pytest.raises(domain.StatementError, match=message):
        domain.parse_statement(text)


# ---- reconciliation -----------------------------------------------------------------------------------


def test_the_day_report_sorts_lines_into_matched_missing_and_disagreeing() -> None:
    recorded = {
        "A": Recorded("A", 15000, "confirmed", "MC1", 15000),
        "B": Recorded("B", 7000, "amount_mismatch", "MC2", 15000),
        "C": Recorded("C", 9000, "unmatched"),
        "D": Recorded("D", 20000, "confirmed", "MC4", 20000),
    }
    report = domain.reconcile([("A", 15000), ("B", 7000), ("C", 9000), ("D", 25000), ("E", 1000)], recorded, ["A", "F"])
    assert report.matched == ("A",)
    assert report.disagrees == ("B", "D")
    assert report.bank_only == ("C", "E")
    assert report.service_only == ("F",)
    assert report.verdicts["E"] is LineVerdict.BANK_ONLY
