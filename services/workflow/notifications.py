"""Applicant notifications (DOMAIN §1.2 rule 6, §1.5): what is owed, how it reads, how long an SMS is. Pure.

A notification is owed when one of five facts happens to a dossier whose applicant chose a
channel (e-mail or SMS) at reception. The handlers write it in the transaction of the fact; a
sender loop delivers it later (``senders.py``). What it says comes from a template an admin may
edit: text with ``{field}`` placeholders, filled with a snapshot of the dossier's fields taken
when the fact happened, so a retry sends the same words.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from services.workflow.domain import rating_signature
from shared.events import (
    CaseApologyIssued,
    CaseResultReady,
    CaseReturned,
    CaseSupplementRequested,
    DossierReceived,
    Event,
)
from shared.vntext import format_vnd

VIETNAM = timezone(timedelta(hours=7), "ICT")


class Kind(StrEnum):
    """Why the applicant is told."""

    ACCEPTED = "accepted"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    RESULT_READY = "result_ready"
    APOLOGY_ISSUED = "apology_issued"
    RETURNED = "returned"


class Channel(StrEnum):
    """How: the contact the applicant chose at reception."""

    EMAIL = "email"
    SMS = "sms"


class Status(StrEnum):
    """A notification's delivery state: pending until a provider accepted it or it was given up."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


KIND_OF_EVENT: dict[type[Event], Kind] = {
    DossierReceived: Kind.ACCEPTED,
    CaseSupplementRequested: Kind.SUPPLEMENT_REQUESTED,
    CaseResultReady: Kind.RESULT_READY,
    CaseApologyIssued: Kind.APOLOGY_ISSUED,
    CaseReturned: Kind.RETURNED,
}

# Placeholders every template may use, and those only its kind has.
COMMON_FIELDS = frozenset(
    {"dossier_code", "applicant_name", "procedure_name", "received_at", "appointment_at", "one_stop_name", "unit_name", "lookup_url"}
)
KIND_FIELDS: dict[Kind, frozenset[str]] = {
    Kind.ACCEPTED: frozenset(),
    Kind.SUPPLEMENT_REQUESTED: frozenset({"supplement_reason", "supplement_items"}),
    Kind.RESULT_READY: frozenset({"finished_at", "collect_note", "fee_note"}),
    Kind.APOLOGY_ISSUED: frozenset({"apology_reason", "new_appointment_at"}),
    Kind.RETURNED: frozenset({"returned_at", "rating_url"}),
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class TemplateError(ValueError):
    """A template names a field its kind does not have."""


@dataclass(frozen=True)
class Template:
    """The words of one kind on one channel (subject for e-mail only)."""

    kind: Kind
    channel: Channel
    body: str
    subject: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A message ready to send, with its SMS measure (``segments`` is 0 for e-mail)."""

    subject: str | None
    body: str
    encoding: str | None
    segments: int


@dataclass(frozen=True)
class RenderContext:
    """What the words need besides the dossier: the office's names and the applicant's signed links."""

    public_base_url: str
    rating_link_secret: str
    one_stop_name: str
    unit_names: Mapping[str, str]


# The applicant's page of a dossier (pages.py): ``/trang/theo-doi/{code}?sig=...``; its rating and feedback forms
# are parts of it (``#danh-gia``, ``#phan-anh``) and post to ``.../danh-gia`` and ``.../phan-anh``.
CASE_PAGE = "/trang/theo-doi"
RATING_PART = "danh-gia"
FEEDBACK_PART = "phan-anh"


@dataclass(frozen=True)
class SignedLinks:
    """The applicant's links to a dossier (status, rating, feedback), each carrying the dossier's signature."""

    signature: str
    status_url: str
    rating_url: str
    feedback_url: str


def case_page_path(code: str) -> str:
    """The path of the dossier's page (the code quoted as a path segment)."""
    return f"{CASE_PAGE}/{quote(code, safe='')}"


def signed_links(ctx: RenderContext, code: str) -> SignedLinks:
    """The dossier's signed links, as notifications, forms and officials hand them to the applicant.

    All three open the dossier's page for people (status and steps; after return the rating form; the feedback
    form), the rating and feedback links at their form.
    """
    signature = rating_signature(ctx.rating_link_secret, code)
    page = f"{ctx.public_base_url.rstrip('/')}{case_page_path(code)}?sig={signature}"
    return SignedLinks(
        signature=signature,
        status_url=page,
        rating_url=f"{page}#{RATING_PART}",
        feedback_url=f"{page}#{FEEDBACK_PART}",
    )


# ---- what is owed -----------------------------------------------------------------------------


def kind_of(event: Event) -> Kind | None:
    """The notification an event causes, if any."""
    return KIND_OF_EVENT.get(type(event))


def owed_kinds(events: list[Event]) -> list[Kind | None]:
    """The notification each of a decision's events causes (None: none), in the events' order.

    "Result ready" is not sent when the same decision returned the result on the spot (4 tại chỗ):
    the applicant is at the counter holding it.
    """
    on_the_spot = any(isinstance(e, CaseReturned) and e.on_the_spot for e in events)
    kinds = [kind_of(e) for e in events]
    return [None if on_the_spot and k is Kind.RESULT_READY else k for k in kinds]


def recipient(notify_by: str | None, email: str | None, phone: str | None) -> tuple[Channel, str] | None:
    """The channel and address the applicant chose, or None: nothing is owed without a choice and its contact."""
    if notify_by == Channel.EMAIL and email:
        return Channel.EMAIL, email
    if notify_by == Channel.SMS and phone:
        return Channel.SMS, normalize_phone(phone)
    return None


def normalize_phone(phone: str) -> str:
    """A Vietnamese number as the providers take it: +84 and the digits (``0912 345 678`` → ``+84912345678``)."""
    digits = re.sub(r"[^0-9+]", "", phone)
    if digits.startswith("+"):
        return digits
    if digits.startswith("84"):
        return "+" + digits
    if digits.startswith("0"):
        return "+84" + digits[1:]
    return digits


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def facts(kind: Kind, case: Mapping[str, Any], event: Event, *, fee_paid: int = 0, fee_outstanding: int = 0) -> dict[str, Any]:
    """The snapshot of the dossier a notification is rendered from (JSON-ready), taken when the fact happens."""
    snapshot: dict[str, Any] = {
        "dossier_code": case["code"],
        "unit": case.get("receiving_unit") or case["unit"],
        "applicant_name": case["applicant_name"],
        "procedure_name": case["procedure_name"],
        "received_at": _iso(case.get("received_at")),
        "appointment_at": _iso(case.get("due_at_rescheduled") or case.get("appointment_at")),
    }
    if isinstance(event, CaseSupplementRequested):
        snapshot |= {"supplement_reason": event.reason, "supplement_items": list(event.requested_items)}
    elif isinstance(event, CaseResultReady):
        snapshot |= {
            "finished_at": _iso(event.finished_at),
            "return_channel": case.get("requested_return_channel") or "counter",
            "fee_paid": fee_paid,
            "fee_outstanding": fee_outstanding,
        }
    elif isinstance(event, CaseApologyIssued):
        snapshot |= {"apology_reason": event.reason, "new_appointment_at": _iso(event.new_appointment_at)}
    elif isinstance(event, CaseReturned):
        snapshot |= {"returned_at": _iso(event.returned_at)}
    return snapshot


# ---- rendering ----------------------------------------------------------------------------------


def format_time(value: str | datetime | None) -> str:
    """``17:00 ngày 10/12/2026``, in Vietnam's time, as Form 01 prints it."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(VIETNAM)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}"


def format_money(amount: int) -> str:
    """``50.000 đồng``: dots between thousands, as Vietnamese writes amounts."""
    return f"{format_vnd(amount)} đồng"


def _collect_note(snapshot: Mapping[str, Any], ctx: RenderContext, unit_name: str) -> str:
    channel = snapshot.get("return_channel") or "counter"
    if channel == "postal":
        return "Kết quả sẽ được gửi qua dịch vụ bưu chính đến địa chỉ ông/bà đã đăng ký."
    if channel == "online":
        return "Kết quả điện tử đã có trong tài khoản của ông/bà trên Cổng Dịch vụ công."
    return f"Mời ông/bà mang giấy tiếp nhận đến nhận kết quả tại {ctx.one_stop_name}, {unit_name}."


def _fee_note(snapshot: Mapping[str, Any]) -> str:
    outstanding, paid = int(snapshot.get("fee_outstanding") or 0), int(snapshot.get("fee_paid") or 0)
    if outstanding:
        return f"Phí, lệ phí cần nộp khi nhận kết quả: {format_money(outstanding)}."
    if paid:
        return f"Phí, lệ phí {format_money(paid)} đã được thanh toán."
    return ""


def values(snapshot: Mapping[str, Any], ctx: RenderContext) -> dict[str, str]:
    """Every placeholder's text for this snapshot."""
    code = str(snapshot["dossier_code"])
    unit_name = ctx.unit_names.get(str(snapshot.get("unit") or ""), str(snapshot.get("unit") or ""))
    links = signed_links(ctx, code)
    return {
        "dossier_code": code,
        "applicant_name": str(snapshot.get("applicant_name") or ""),
        "procedure_name": str(snapshot.get("procedure_name") or ""),
        "received_at": format_time(snapshot.get("received_at")),
        "appointment_at": format_time(snapshot.get("appointment_at")),
        "one_stop_name": ctx.one_stop_name,
        "unit_name": unit_name,
        "lookup_url": links.status_url,
        "supplement_reason": str(snapshot.get("supplement_reason") or ""),
        "supplement_items": "; ".join(snapshot.get("supplement_items") or []),
        "finished_at": format_time(snapshot.get("finished_at")),
        "collect_note": _collect_note(snapshot, ctx, unit_name),
        "fee_note": _fee_note(snapshot),
        "apology_reason": str(snapshot.get("apology_reason") or ""),
        "new_appointment_at": format_time(snapshot.get("new_appointment_at")),
        "returned_at": format_time(snapshot.get("returned_at")),
        "rating_url": links.rating_url,
    }


def check_template(template: Template) -> None:
    """Refuse a template that names a field its kind does not have, or an e-mail without a subject."""
    allowed = COMMON_FIELDS | KIND_FIELDS[template.kind]
    used = set(_PLACEHOLDER.findall(template.body)) | set(_PLACEHOLDER.findall(template.subject or ""))
    unknown = sorted(used - allowed)
    if unknown:
        raise TemplateError(f"unknown field(s) {', '.join('{' + u + '}' for u in unknown)}; allowed: {', '.join(sorted(allowed))}")
    if template.channel is Channel.EMAIL and not (template.subject or "").strip():
        raise TemplateError("an e-mail template needs a subject")


def fill(text: str, fields: Mapping[str, str]) -> str:
    """Put the fields into ``{name}`` placeholders; text that is not a known placeholder stays as written."""
    return _PLACEHOLDER.sub(lambda m: fields.get(m.group(1), m.group(0)), text)


def render(template: Template, snapshot: Mapping[str, Any], ctx: RenderContext) -> Rendered:
    """The message of one notification; SMS text is measured in segments."""
    check_template(template)
    fields = values(snapshot, ctx)
    body = _tidy(fill(template.body, fields))
    if template.channel is Channel.SMS:
        return Rendered(subject=None, body=body, encoding=sms_encoding(body), segments=sms_segments(body))
    return Rendered(subject=_tidy(fill(template.subject or "", fields)), body=body, encoding=None, segments=0)


def _tidy(text: str) -> str:
    """No blank-field debris: spaces before punctuation and runs of blank lines collapse."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return re.sub(r" {2,}", " ", text).strip()


# ---- SMS length (3GPP TS 23.038) ------------------------------------------------------------------

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table: an escape and the character, two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
SINGLE = {"gsm7": 160, "ucs2": 70}
MULTIPART = {"gsm7": 153, "ucs2": 67}  # the rest of each part carries the concatenation header


def sms_encoding(text: str) -> str:
    """``gsm7`` when every character is in the GSM 03.38 tables, else ``ucs2`` (Vietnamese diacritics are not)."""
    return "gsm7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "ucs2"


def _units(text: str, encoding: str) -> list[int]:
    """Each character's size in its encoding: septets for GSM-7, UTF-16 code units for UCS-2."""
    if encoding == "gsm7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def sms_segments(text: str) -> int:
    """How many SMS parts the text takes; an escape pair or a surrogate pair is never split across parts."""
    if not text:
        return 1
    encoding = sms_encoding(text)
    units = _units(text, encoding)
    if sum(units) <= SINGLE[encoding]:
        return 1
    capacity, parts, used = MULTIPART[encoding], 1, 0
    for size in units:
        if used + size > capacity:
            parts, used = parts + 1, 0
        used += size
    return parts


# ---- retries ------------------------------------------------------------------------------------------


def backoff_seconds(attempt: int, *, initial: float, cap: float, rng: random.Random | None = None) -> float:
    """Wait before retry ``attempt`` (1-based): doubling from ``initial``, at most ``cap``, jittered down to half.

    The jitter spreads the retries of many notifications that failed together (a provider outage),
    so they do not all come back at the same instant.
    """
    ceiling = min(cap, initial * math.pow(2, max(attempt - 1, 0)))
    return (rng or random).uniform(ceiling / 2, ceiling)


# A dossier to preview templates with (the admin API shows how long each SMS would be).
SAMPLE_FACTS: dict[str, Any] = {
    "dossier_code": "000.00.12.H56-261126-0001",
    "unit": "000.00.12.H56",
    "applicant_name": "Nguyễn Thị Hồng Nhung",
    "procedure_name": "Đăng ký khai sinh",
    "received_at": "2026-11-26T08:15:00+07:00",
    "appointment_at": "2026-11-27T17:00:00+07:00",
    "supplement_reason": "Thiếu giấy tờ chứng minh nơi cư trú",
    "supplement_items": ["Bản sao giấy chứng sinh"],
    "finished_at": "2026-11-27T10:30:00+07:00",
    "return_channel": "counter",
    "fee_paid": 8000,
    "apology_reason": "Chờ kết quả xác minh của cơ quan phối hợp",
    "new_appointment_at": "2026-12-02T17:00:00+07:00",
    "returned_at": "2026-11-27T14:00:00+07:00",
}


def preview(template: Template, ctx: RenderContext) -> Rendered:
    """The template rendered for the sample dossier: how it reads and, for SMS, how many parts it takes."""
    return render(template, SAMPLE_FACTS, ctx)
