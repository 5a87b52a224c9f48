"""Payments rules: fee assessment into payment requests, the VietQR (EMVCo) payload, payment states,
matching transfers to requests, bank statements and their reconciliation, receipt numbers.

Pure: no I/O, no clock, no randomness (times and random bytes come in as arguments).
"""

from __future__ import annotations

import base64
import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, Literal, Protocol

from shared.clock import VN_TZ
from shared.fees import FeeItem, FeeLine, FeeUnit, PagesNeeded, assess

# ---- fee assessment ---------------------------------------------------------------------------


def fee_line(data: Mapping[str, Any]) -> FeeLine:
    """A fee line from the catalog's JSON (DOMAIN §6: code, name, amount, unit, online amount, per-page rates, cap, exemptions)."""
    return FeeLine(
        code=str(data["code"]),
        name=str(data["name"]),
        amount=int(data["amount"]),
        unit=FeeUnit(data.get("unit") or "per_case"),
        online_amount=None if data.get("online_amount") is None else int(data["online_amount"]),
        reduced_from_page=None if data.get("reduced_from_page") is None else int(data["reduced_from_page"]),
        reduced_amount=None if data.get("reduced_amount") is None else int(data["reduced_amount"]),
        cap_per_copy=None if data.get("cap_per_copy") is None else int(data["cap_per_copy"]),
        exemptions=tuple(str(e) for e in data.get("exemptions") or ()),
    )


def fee_lines(data: Iterable[Mapping[str, Any]]) -> tuple[FeeLine, ...]:
    """Every line of a procedure version."""
    return tuple(fee_line(d) for d in data)


def fee_line_json(line: FeeLine) -> dict[str, Any]:
    """A fee line as the catalog stores it."""
    return {
        "code": line.code,
        "name": line.name,
        "amount": line.amount,
        "unit": line.unit.value,
        "online_amount": line.online_amount,
        "reduced_from_page": line.reduced_from_page,
        "reduced_amount": line.reduced_amount,
        "cap_per_copy": line.cap_per_copy,
        "exemptions": list(line.exemptions),
    }


def item_json(item: FeeItem) -> dict[str, Any]:
    """One assessed line of a payment request."""
    return {"code": item.code, "name": item.name, "quantity": item.quantity, "amount": item.amount, "exempted_by": item.exempted_by}


def preliminary_lines(fee_due: int) -> tuple[FeeLine, ...]:
    """A producer that sent no fee lines (older events) still said what is due: one line of that amount."""
    return (FeeLine("FEE", "Phí, lệ phí", fee_due),) if fee_due > 0 else ()


@dataclass(frozen=True)
class Assessment:
    """What one assessment found: the items to request now and the per-page lines still waiting for pages."""

    items: tuple[FeeItem, ...] = ()
    waiting: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Sum of the items, VND."""
        return sum(i.amount for i in self.items)

    @property
    def payable(self) -> bool:
        """True when a payment must be requested (exempt or free dossiers need none)."""
        return self.total > 0


def assess_at_reception(
    lines: Sequence[FeeLine], *, online: bool, pages: int | None, copies: int, exemption: str | None
) -> Assessment:
    """Every line that can be assessed when the dossier is received; per-page lines wait unless the pages are known."""
    items: list[FeeItem] = []
    waiting: list[str] = []
    for line in lines:
        try:
            items.extend(assess([line], online=online, pages=pages, copies=copies, exemption=exemption))
        except PagesNeeded:
            waiting.append(line.code)
    return Assessment(items=tuple(items), waiting=tuple(waiting))


def assess_pages(
    lines: Sequence[FeeLine], *, online: bool, pages: int, copies: int, exemption: str | None
) -> Assessment:
    """The per-page lines once a certified copy's pages are counted (the cap applies per copy)."""
    per_page = [line for line in lines if line.unit is FeeUnit.PER_PAGE]
    return Assessment(items=tuple(assess(per_page, online=online, pages=pages, copies=copies, exemption=exemption)))


# ---- payment states -----------------------------------------------------------------------------


class PaymentStatus(StrEnum):
    """The life of a payment request: pending → paid / failed / expired; paid → refunded."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"


TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset({PaymentStatus.PAID, PaymentStatus.FAILED, PaymentStatus.EXPIRED}),
    PaymentStatus.PAID: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.EXPIRED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}


class IllegalTransition(ValueError):
    """The payment cannot move from its status to the one asked for."""

    def __init__(self, current: PaymentStatus, wanted: PaymentStatus) -> None:
        super().__init__(f"a {current.value} payment cannot become {wanted.value}")
        self.current = current
        self.wanted = wanted


def transition(current: PaymentStatus | str, wanted: PaymentStatus) -> PaymentStatus:
    """The new status, or IllegalTransition."""
    current = PaymentStatus(current)
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(current, wanted)
    return wanted


# ---- identifiers and references -----------------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PAYMENT_ID_PREFIX = "MC"
PAYMENT_ID_RE = re.compile(rf"{PAYMENT_ID_PREFIX}[{CROCKFORD}]{{10}}")
_B32_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CROCKFORD)


def payment_id(random_bytes: bytes) -> str:
    """``MC`` and 10 Crockford base-32 characters (50 random bits): short enough for a transfer memo."""
    if len(random_bytes) < 7:
        raise ValueError("a payment id needs at least 7 random bytes")
    return PAYMENT_ID_PREFIX + base64.b32encode(random_bytes[:7]).decode()[:10].translate(_B32_TO_CROCKFORD)


def payment_ids_in(text: str) -> list[str]:
    """Payment ids a transfer memo carries (banks upper-case, strip or re-space memos: read them loosely)."""
    compact = re.sub(r"[^0-9A-Z]", "", ascii_text(text))
    return list(dict.fromkeys(PAYMENT_ID_RE.findall(compact)))


def ascii_text(text: str) -> str:
    """Upper-case ASCII without Vietnamese diacritics ("Đăng ký tạm trú" → "DANG KY TAM TRU"), as EMVCo and bank memos want."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = "".join(c if 32 <= ord(c) < 127 else " " for c in text)
    return " ".join(text.upper().split())


def receipt_number(fmt: str, *, unit: str, year: int, sequence: int) -> str:
    """The printed receipt number (the sequence runs per unit and calendar year)."""
    return fmt.format(unit=unit, year=year, yy=year % 100, sequence=sequence)


# ---- VietQR: EMVCo merchant-presented payload (DOMAIN §5.1) -------------------------------------

NAPAS_GUID = "A000000727"
SERVICE_ACCOUNT = "QRIBFTTA"
SERVICE_CARD = "QRIBFTTC"
CURRENCY_VND = "704"
MAX_SUBFIELD = 25


class QrError(ValueError):
    """A value cannot go into the payload as given."""


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no xorout (check value of b"123456789" is 0x29B1)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def tlv(tag: str, value: str) -> str:
    """``ID(2) + LEN(2, decimal) + VALUE``."""
    if not re.fullmatch(r"\d{2}", tag):
        raise QrError(f"tag {tag!r}: two digits")
    if not value:
        raise QrError(f"tag {tag}: empty value")
    if len(value) > 99:
        raise QrError(f"tag {tag}: {len(value)} characters, at most 99")
    if any(not 32 <= ord(c) < 127 for c in value):
        raise QrError(f"tag {tag}: ASCII only (use ascii_text)")
    return f"{tag}{len(value):02d}{value}"


def with_crc(body: str) -> str:
    """Append ``6304`` and the CRC computed over everything including ``6304``."""
    head = body + "6304"
    return head + f"{crc16_ccitt_false(head.encode('ascii')):04X}"


@dataclass(frozen=True)
class VietQR:
    """What a VietQR code says: where to pay, how much, and what to write on the transfer."""

    bank_bin: str
    account: str
    amount: int | None = None
    card: bool = False
    bill_number: str | None = None
    reference_label: str | None = None
    terminal_label: str | None = None
    purpose: str | None = None
    merchant_category: str | None = None
    merchant_name: str | None = None
    merchant_city: str | None = None


def _additional(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_SUBFIELD:
        raise QrError(f"{name}: {len(value)} characters, EMVCo allows {MAX_SUBFIELD}")
    return value


def encode(qr: VietQR) -> str:
    """The payload string: dynamic (``12``) when an amount is set, static (``11``) otherwise."""
    if not re.fullmatch(r"\d{6}", qr.bank_bin):
        raise QrError("bank_bin: six digits")
    if not re.fullmatch(r"[0-9A-Za-z]{1,19}", qr.account):
        raise QrError("account: 1 to 19 letters or digits")
    if qr.amount is not None and qr.amount <= 0:
        raise QrError("amount: a positive whole number of VND")
    beneficiary = tlv("00", qr.bank_bin) + tlv("01", qr.account)
    merchant = tlv("00", NAPAS_GUID) + tlv("01", beneficiary) + tlv("02", SERVICE_CARD if qr.card else SERVICE_ACCOUNT)
    parts = [tlv("00", "01"), tlv("01", "11" if qr.amount is None else "12"), tlv("38", merchant)]
    if qr.merchant_category:
        parts.append(tlv("52", qr.merchant_category))
    parts.append(tlv("53", CURRENCY_VND))
    if qr.amount is not None:
        parts.append(tlv("54", str(qr.amount)))
    parts.append(tlv("58", "VN"))
    if qr.merchant_name:
        parts.append(tlv("59", qr.merchant_name[:MAX_SUBFIELD]))
    if qr.merchant_city:
        parts.append(tlv("60", qr.merchant_city[:15]))
    extra = [
        (sub, value)
        for sub, value in (
            ("01", _additional("bill_number", qr.bill_number)),
            ("05", _additional("reference_label", qr.reference_label)),
            ("07", _additional("terminal_label", qr.terminal_label)),
            ("08", _additional("purpose", qr.purpose)),
        )
        if value
    ]
    if extra:
        parts.append(tlv("62", "".join(tlv(sub, value) for sub, value in extra)))
    return with_crc("".join(parts))


def parse_tlv(text: str) -> dict[str, str]:
    """One level of ``ID LEN VALUE`` fields; QrError when the lengths do not add up."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(text):
        if i + 4 > len(text) or not text[i : i + 4].isdigit():
            raise QrError(f"malformed field at position {i}")
        tag, length = text[i : i + 2], int(text[i + 2 : i + 4])
        value = text[i + 4 : i + 4 + length]
        if len(value) != length:
            raise QrError(f"field {tag} is cut short")
        fields[tag] = value
        i += 4 + length
    return fields


def decode(payload: str) -> dict[str, Any]:
    """Read a payload back (CRC checked): what a banking app shows before the citizen confirms."""
    if len(payload) < 8 or payload[-8:-4] != "6304":
        raise QrError("no CRC field at the end")
    if with_crc(payload[:-8]) != payload:
        raise QrError("CRC does not match")
    top = parse_tlv(payload[:-8])
    merchant = parse_tlv(top.get("38", ""))
    beneficiary = parse_tlv(merchant.get("01", ""))
    extra = parse_tlv(top.get("62", ""))
    return {
        "dynamic": top.get("01") == "12",
        "guid": merchant.get("00"),
        "bank_bin": beneficiary.get("00"),
        "account": beneficiary.get("01"),
        "service": merchant.get("02"),
        "currency": top.get("53"),
        "amount": int(top["54"]) if "54" in top else None,
        "country": top.get("58"),
        "bill_number": extra.get("01"),
        "reference_label": extra.get("05"),
        "terminal_label": extra.get("07"),
        "purpose": extra.get("08"),
    }


def fee_qr(
    *, bank_bin: str, account: str, card: bool, amount: int, dossier_code: str, payment: str, procedure_name: str
) -> VietQR:
    """The dynamic QR of one payment request (DOMAIN §5.1 rules).

    The dossier code is the bill number when it fits (25 characters); the payment id is the
    reference label and opens the purpose, because banking apps copy the purpose into the transfer
    memo, and the memo is what the bank's confirmation and statement carry back for matching.
    """
    purpose = ascii_text(f"{payment} {procedure_name}")[:MAX_SUBFIELD].rstrip()
    bill = dossier_code if len(dossier_code) <= MAX_SUBFIELD and dossier_code.isascii() else payment
    return VietQR(
        bank_bin=bank_bin, account=account, card=card, amount=amount, bill_number=bill, reference_label=payment, purpose=purpose
    )


class Payable(Protocol):
    """What a payment request's QR is made of."""

    id: str
    dossier_code: str
    procedure_name: str
    amount: int
    bank_bin: str | None
    account: str | None
    card: bool


def qr_payload(payment: Payable) -> str | None:
    """The VietQR payload of a payment (None when its unit has no collection account configured)."""
    if not payment.bank_bin or not payment.account:
        return None
    return encode(
        fee_qr(
            bank_bin=payment.bank_bin, account=payment.account, card=payment.card, amount=payment.amount,
            dossier_code=payment.dossier_code, payment=payment.id, procedure_name=payment.procedure_name,
        )
    )  # fmt: skip


# NAPAS BINs of the banks that hold most collection accounts, named on the payment page; others show their BIN.
BANK_NAMES = {
    "970405": "Agribank – Ngân hàng Nông nghiệp và Phát triển Nông thôn Việt Nam",
    "970415": "VietinBank – Ngân hàng TMCP Công Thương Việt Nam",
    "970418": "BIDV – Ngân hàng TMCP Đầu tư và Phát triển Việt Nam",
    "970436": "Vietcombank – Ngân hàng TMCP Ngoại thương Việt Nam",
    "970407": "Techcombank – Ngân hàng TMCP Kỹ thương Việt Nam",
    "970422": "MB – Ngân hàng TMCP Quân đội",
    "970432": "VPBank – Ngân hàng TMCP Việt Nam Thịnh Vượng",
    "970416": "ACB – Ngân hàng TMCP Á Châu",
    "970403": "Sacombank – Ngân hàng TMCP Sài Gòn Thương Tín",
    "970423": "TPBank – Ngân hàng TMCP Tiên Phong",
}


def bank_name(bank_bin: str) -> str:
    """The bank of a NAPAS BIN, in words (``Ngân hàng có mã BIN 970499`` when it is not one of the usual ones)."""
    return BANK_NAMES.get(bank_bin, f"Ngân hàng có mã BIN {bank_bin}")


# A payment's status as the citizen reads it.
STATUS_WORDS = {
    PaymentStatus.PENDING: "Chờ thanh toán",
    PaymentStatus.PAID: "Đã thanh toán",
    PaymentStatus.FAILED: "Thanh toán không thành công",
    PaymentStatus.EXPIRED: "Đã hết hạn thanh toán",
    PaymentStatus.REFUNDED: "Đã hoàn trả",
}


# ---- transfers: what a confirmation does to a request --------------------------------------------

# The provider (and source) of a fee taken in cash at the counter.
COUNTER = "counter"


@dataclass(frozen=True)
class ReportedTransfer:
    """A transfer as a callback or a statement line reports it."""

    provider: str
    transaction_id: str
    amount: int
    currency: str
    reference: str
    occurred_at: datetime
    source: Literal["callback", "statement"]
    account: str | None = None
    payment_id: str | None = None
    failed: bool = False
    message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)



class TransferOutcome(StrEnum):
    """What became of a reported transfer."""

    CONFIRMED = "confirmed"  # it paid the request
    AMOUNT_MISMATCH = "amount_mismatch"  # under- or over-payment, or another currency: recorded, flagged, not confirmed
    UNMATCHED = "unmatched"  # no request matches the reference: held for manual matching
    NOT_PAYABLE = "not_payable"  # the request is already paid, failed or expired: held (money may be owed back)
    FAILED = "failed"  # the provider reports the attempt failed


HELD = frozenset({TransferOutcome.AMOUNT_MISMATCH, TransferOutcome.UNMATCHED, TransferOutcome.NOT_PAYABLE})


def judge_transfer(
    *, payment_status: PaymentStatus | str | None, due: int | None, amount: int, currency: str, provider_failed: bool = False
) -> TransferOutcome:
    """The outcome of a transfer reported against a request (None when no request matched)."""
    if provider_failed:
        return TransferOutcome.FAILED
    if payment_status is None or due is None:
        return TransferOutcome.UNMATCHED
    if PaymentStatus(payment_status) is not PaymentStatus.PENDING:
        return TransferOutcome.NOT_PAYABLE
    if currency.upper() != "VND" or amount != due:
        return TransferOutcome.AMOUNT_MISMATCH
    return TransferOutcome.CONFIRMED


def mismatch_reason(*, due: int, amount: int, currency: str) -> str:
    """A sentence for people and the ``payment.failed`` event."""
    if currency.upper() != "VND":
        return f"currency {currency} instead of VND"
    kind = "underpaid" if amount < due else "overpaid"
    return f"{kind}: received {amount} VND, due {due} VND"


# ---- bank statements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    """One credit of a bank statement."""

    line: int
    booked_on: date
    amount: int
    reference: str
    transaction_id: str
    currency: str = "VND"


def day_start(day: date) -> datetime:
    """The first instant of a day in Vietnam (statements book by local day)."""
    return datetime.combine(day, time(0, 0), VN_TZ)


class StatementError(ValueError):
    """The statement cannot be read; the message names the row and the column."""


_COLUMNS = {
    "date": ("date", "booked_on", "booking_date", "ngay", "ngày"),
    "amount": ("amount", "so_tien", "số tiền", "credit"),
    "reference": ("reference", "description", "noi_dung", "nội dung", "memo"),
    "transaction_id": ("transaction_id", "transaction id", "txn_id", "ma_giao_dich", "mã giao dịch"),
    "currency": ("currency", "ccy", "loai_tien"),
}


def parse_amount(text: str) -> int:
    """Whole VND: ``15000``, ``15,000``, ``15.000`` or ``15000.00``; ValueError otherwise."""
    raw = text.strip().replace(" ", "").replace("\u00a0", "")
    if re.fullmatch(r"\d+", raw):
        return int(raw)
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", raw) and len({c for c in raw if not c.isdigit()}) == 1:
        return int(re.sub(r"\D", "", raw))
    if match := re.fullmatch(r"(\d+)[.,]0{1,2}", raw):
        return int(match.group(1))
    raise ValueError(f"{text!r} is not a whole amount of VND")


def parse_day(text: str) -> date:
    """``2025-03-04`` or ``04/03/2025``."""
    raw = text.strip()
    try:
        if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", raw):
            day, month, year = (int(p) for p in raw.split("/"))
            return date(year, month, day)
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)") from None


def parse_statement(text: str, *, max_lines: int = 10_000) -> list[StatementLine]:
    """A CSV statement with a header row: date, amount, reference, transaction id (currency optional)."""
    sample = text.lstrip("\ufeff")
    if not sample.strip():
        raise StatementError("the statement is empty")
    try:
        dialect = csv.Sniffer().sniff(sample.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(sample), dialect)
    header = [h.strip().lower() for h in next(reader)]
    where: dict[str, int] = {}
    for name, aliases in _COLUMNS.items():
        for i, heading in enumerate(header):
            if heading in aliases:
                where[name] = i
                break
    missing = [name for name in ("date", "amount", "reference", "transaction_id") if name not in where]
    if missing:
        raise StatementError(f"header: missing column(s) {', '.join(missing)} (found {', '.join(header)})")
    lines: list[StatementLine] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(lines) >= max_lines:
            raise StatementError(f"more than {max_lines} lines: split the statement")

        def cell(name: str, row: list[str] = row, number: int = number) -> str:
            index = where[name]
            if index >= len(row):
                raise StatementError(f"row {number}: no {name} column")
            return row[index].strip()

        try:
            booked_on = parse_day(cell("date"))
            amount = parse_amount(cell("amount"))
        except ValueError as exc:
            raise StatementError(f"row {number}: {exc}") from None
        txn = cell("transaction_id")
        if not txn:
            raise StatementError(f"row {number}: transaction_id is empty")
        if len(txn) > 128:
            raise StatementError(f"row {number}: transaction_id longer than 128 characters")
        if txn in seen:
            raise StatementError(f"row {number}: transaction_id {txn!r} repeats row {seen[txn]}")
        seen[txn] = number
        currency = cell("currency").upper() if "currency" in where else "VND"
        lines.append(StatementLine(number, booked_on, amount, cell("reference")[:500], txn, currency or "VND"))
    if not lines:
        raise StatementError("the statement has a header but no lines")
    return lines


# ---- reconciliation ---------------------------------------------------------------------------


class LineVerdict(StrEnum):
    """A statement line judged against what the service recorded."""

    MATCHED = "matched"  # the bank and the service agree: a request was paid by this transfer
    BANK_ONLY = "bank_only"  # money in the bank that paid no request (unknown reference, or nothing payable)
    DISAGREES = "disagrees"  # the amounts differ between the statement, the confirmation and the request


@dataclass(frozen=True)
class Recorded:
    """A transfer as the service recorded it, with the request it paid (if any)."""

    transaction_id: str
    amount: int
    outcome: str
    payment_id: str | None = None
    payment_amount: int | None = None
    source: str = "callback"


def judge_line(line_amount: int, recorded: Recorded | None) -> LineVerdict:
    """Matched only when the statement, the recorded transfer and the request it paid agree."""
    if recorded is None:
        return LineVerdict.BANK_ONLY
    if recorded.amount != line_amount or recorded.outcome == TransferOutcome.AMOUNT_MISMATCH:
        return LineVerdict.DISAGREES
    if recorded.outcome == TransferOutcome.CONFIRMED and recorded.payment_amount == line_amount:
        return LineVerdict.MATCHED
    if recorded.outcome == TransferOutcome.CONFIRMED:
        return LineVerdict.DISAGREES
    return LineVerdict.BANK_ONLY


@dataclass(frozen=True)
class DayReport:
    """One provider's day: what matched, what only one side has, and what disagrees."""

    matched: tuple[str, ...] = ()
    bank_only: tuple[str, ...] = ()
    service_only: tuple[str, ...] = ()
    disagrees: tuple[str, ...] = ()
    verdicts: dict[str, LineVerdict] = field(default_factory=dict)


def reconcile(
    lines: Sequence[tuple[str, int]], recorded: Mapping[str, Recorded], confirmed_that_day: Iterable[str]
) -> DayReport:
    """Statement lines ``(transaction id, amount)`` against the recorded transfers; the service's confirmed
    transfers of the day that no statement line carries are missing on the bank's side."""
    verdicts = {txn: judge_line(amount, recorded.get(txn)) for txn, amount in lines}
    on_statement = set(verdicts)
    return DayReport(
        matched=tuple(t for t, v in verdicts.items() if v is LineVerdict.MATCHED),
        bank_only=tuple(t for t, v in verdicts.items() if v is LineVerdict.BANK_ONLY),
        service_only=tuple(t for t in confirmed_that_day if t not in on_statement),
        disagrees=tuple(t for t, v in verdicts.items() if v is LineVerdict.DISAGREES),
        verdicts=verdicts,
    )
