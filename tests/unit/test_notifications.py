"""Applicant notifications, the pure part: templates, SMS length, backoff, who is owed what."""

from __future__ import annotations

import importlib.util
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.workflow import notifications as n
from services.workflow.notifications import Channel, Kind, RenderContext, Template
from services.workflow.senders import message_id
from services.workflow.settings import WorkflowSettings
from shared.events import CaseApologyIssued, CaseApproved, CaseResultReady, CaseReturned, CaseSupplementRequested

MIGRATION = Path(__file__).resolve().parents[2] / "services/workflow/migrations/versions/0003_notifications.py"
CTX = RenderContext(
    public_base_url="https://dvc.example/",
    rating_link_secret="s" * 32,
    one_stop_name="Bộ phận Tiếp nhận và Trả kết quả",
    unit_names={"000.00.12.H56": "UBND PHƯỜNG BẾN NGHÉ"},
)
NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def _seed() -> list[tuple[str, str, str | None, str]]:
    spec = importlib.util.spec_from_file_location("notifications_migration", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SEED


# ---- templates ----------------------------------------------------------------------------------


def test_the_migration_seeds_one_valid_template_per_kind_and_channel() -> None:
    seed = _seed()
    assert sorted((k, c) for k, c, _, _ in seed) == sorted((k.value, c.value) for k in Kind for c in Channel)
    for kind, channel, subject, body in seed:
        n.check_template(Template(Kind(kind), Channel(channel), body, subject))


@pytest.mark.parametrize(("kind", "channel", "subject", "body"), _seed())
def test_every_seeded_template_renders_the_sample_dossier_in_vietnamese(kind: str, channel: str, subject: str | None, body: str) -> None:
    rendered = n.render(Template(Kind(kind), Channel(channel), body, subject), n.SAMPLE_FACTS, CTX)
    assert "{" not in rendered.body and "000.00.12.H56-261126-0001" in rendered.body
    assert any(c in rendered.body for c in "ồơđãệả"), rendered.body  # diacritics kept
    if channel == "sms":
        assert (rendered.subject, rendered.encoding) == (None, "ucs2") and rendered.segments >= 1
    else:
        assert rendered.subject and "{" not in rendered.subject and rendered.segments == 0


def test_rendering_fills_the_dossier_fields_in_vietnam_time_and_signs_the_links() -> None:
    template = Template(
        Kind.RETURNED,
        Channel.EMAIL,
        "Kính gửi {applicant_name}: hồ sơ {dossier_code} trả lúc {returned_at}, hẹn {appointment_at}, tại {unit_name}. {rating_url}",
        "Hồ sơ {dossier_code}",
    )
    rendered = n.render(template, n.SAMPLE_FACTS, CTX)
    signature = n.rating_signature(CTX.rating_link_secret, "000.00.12.H56-261126-0001")
    assert rendered.body == (
        "Kính gửi Nguyễn Thị Hồng Nhung: hồ sơ 000.00.12.H56-261126-0001 trả lúc 14:00 ngày 27/11/2026, "
        "hẹn 17:00 ngày 27/11/2026, tại UBND PHƯỜNG BẾN NGHÉ. "
        f"https://dvc.example/trang/theo-doi/000.00.12.H56-261126-0001?sig={signature}#danh-gia"  # the page, at its rating form
    )
    assert rendered.subject == "Hồ sơ 000.00.12.H56-261126-0001"


def test_result_ready_says_where_to_collect_and_the_fee() -> None:
    template = Template(Kind.RESULT_READY, Channel.SMS, "{collect_note} {fee_note}")
    counter = n.render(template, {**n.SAMPLE_FACTS, "fee_paid": 0, "fee_outstanding": 50000}, CTX).body
    assert counter == (
        "Mời ông/bà mang giấy tiếp nhận đến nhận kết quả tại Bộ phận Tiếp nhận và Trả kết quả, UBND PHƯỜNG BẾN NGHÉ. "
        "Phí, lệ phí cần nộp khi nhận kết quả: 50.000 đồng."
    )
    postal = n.render(template, {**n.SAMPLE_FACTS, "return_channel": "postal", "fee_paid": 1200000}, CTX).body
    assert postal == "Kết quả sẽ được gửi qua dịch vụ bưu chính đến địa chỉ ông/bà đã đăng ký. Phí, lệ phí 1.200.000 đồng đã được thanh toán."
    free = n.render(template, {**n.SAMPLE_FACTS, "return_channel": "online", "fee_paid": 0}, CTX).body
    assert free == "Kết quả điện tử đã có trong tài khoản của ông/bà trên Cổng Dịch vụ công."


def test_a_field_the_kind_does_not_have_is_refused() -> None:
    with pytest.raises(n.TemplateError, match=r"\{rating_url\}"):
        n.check_template(Template(Kind.ACCEPTED, Channel.SMS, "Đánh giá: {rating_url}"))
    with pytest.raises(n.TemplateError, match="unknown"):
        n.check_template(Template(Kind.RETURNED, Channel.SMS, "{__class__}{dossier_code.upper}"))
    with pytest.raises(n.TemplateError, match="subject"):
        n.check_template(Template(Kind.ACCEPTED, Channel.EMAIL, "Hồ sơ {dossier_code}", "  "))


def test_text_in_braces_that_is_no_placeholder_stays_as_written() -> None:
    assert n.fill("{dossier_code} {Mã} {x-y}", {"dossier_code": "A"}) == "A {Mã} {x-y}"


# ---- SMS length ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "gsm7", 1),
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("Ho so da duoc tiep nhan @£$¥èéùìò", "gsm7", 1),
        ("€" * 80, "gsm7", 1),  # an extension character takes two septets: 160
        ("€" * 81, "gsm7", 2),
        ("a" + "[" * 80, "gsm7", 2),  # 161 septets
        ("a" * 152 + "]" + "b" * 152, "gsm7", 3),  # 306 septets, but the escape pair never splits: 152 | 153 | 1
        ("ệ" * 70, "ucs2", 1),
        ("ệ" * 71, "ucs2", 2),
        ("ệ" * 134, "ucs2", 2),
        ("ệ" * 135, "ucs2", 3),
        ("a" * 159 + "đ", "ucs2", 3),  # one Vietnamese letter turns 160 characters into UCS-2: 160 / 67
        ("😀" * 35, "ucs2", 1),  # outside the BMP: two UTF-16 code units each
        ("😀" * 36, "ucs2", 2),
        ("a" * 66 + "😀" + "a" * 66, "ucs2", 3),  # 134 units, but the surrogate pair never splits: 66 | 67 | 1
    ],
)
def test_sms_segments_follow_gsm7_and_ucs2_limits(text: str, encoding: str, segments: int) -> None:
    assert n.sms_encoding(text) == encoding
    assert n.sms_segments(text) == segments


def test_a_vietnamese_sms_is_measured_in_ucs2() -> None:
    rendered = n.render(Template(Kind.ACCEPTED, Channel.SMS, "Hồ sơ {dossier_code} đã được tiếp nhận."), n.SAMPLE_FACTS, CTX)
    assert (rendered.encoding, rendered.segments) == ("ucs2", 1)
    longer = n.render(Template(Kind.ACCEPTED, Channel.SMS, "Hồ sơ {dossier_code} của {applicant_name}: {procedure_name}, hẹn {appointment_at}."), n.SAMPLE_FACTS, CTX)
    assert len(longer.body) > 70 and longer.segments == 2


# ---- retries ----------------------------------------------------------------------------------------


def test_backoff_doubles_is_jittered_and_never_passes_the_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 40):
        ceiling = min(300.0, 5.0 * 2 ** (attempt - 1))
        waits = [n.backoff_seconds(attempt, initial=5, cap=300, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered: many failures together do not come back together
    assert max(n.backoff_seconds(1000, initial=5, cap=300) for _ in range(100)) <= 300


def test_the_lease_must_outlast_a_send_and_the_cap_the_first_wait() -> None:
    with pytest.raises(ValueError, match="lease"):
        WorkflowSettings(notification_lease_seconds=10, notification_send_timeout_seconds=30)
    with pytest.raises(ValueError, match="backoff"):
        WorkflowSettings(notification_backoff_initial_seconds=60, notification_backoff_max_seconds=10)


# ---- who is owed what --------------------------------------------------------------------------------


def test_the_applicants_choice_decides_and_no_choice_owes_nothing() -> None:
    assert n.recipient("email", "a@b.vn", "0912345678") == (Channel.EMAIL, "a@b.vn")
    assert n.recipient("sms", "a@b.vn", "0912 345.678") == (Channel.SMS, "+84912345678")
    assert n.recipient(None, "a@b.vn", "0912345678") is None
    assert n.recipient("sms", "a@b.vn", None) is None
    assert [n.normalize_phone(p) for p in ("+84 912 345 678", "84912345678", "0912-345-678")] == ["+84912345678"] * 3


def _base(code: str = "X") -> dict:
    return {"dossier_code": code, "unit": "U", "occurred_at": NOW}


def test_which_events_owe_a_notification() -> None:
    supplement = CaseSupplementRequested(**_base(), reason="Thiếu giấy", requested_items=["Giấy khai sinh"])
    ready = CaseResultReady(**_base(), finished_at=NOW, timeliness="on_time")
    returned = CaseReturned(**_base(), returned_at=NOW, return_channel="counter", timeliness="on_time")
    apology = CaseApologyIssued(**_base(), reason="Chờ xác minh", new_appointment_at=NOW, timely=True, deadline_at=NOW)
    approved = CaseApproved(**_base(), approved_by="ct")
    assert n.owed_kinds([supplement, ready, approved, apology, returned]) == [
        Kind.SUPPLEMENT_REQUESTED, Kind.RESULT_READY, None, Kind.APOLOGY_ISSUED, Kind.RETURNED,
    ]  # fmt: skip
    on_the_spot = returned.model_copy(update={"on_the_spot": True})
    assert n.owed_kinds([approved, ready, on_the_spot]) == [None, None, Kind.RETURNED]


def test_the_snapshot_keeps_the_facts_of_the_event() -> None:
    case = {
        "code": "X", "unit": "U", "receiving_unit": "000.00.12.H56", "applicant_name": "Lê Văn Tám", "procedure_name": "Khai sinh",
        "received_at": NOW, "appointment_at": NOW, "due_at_rescheduled": None, "requested_return_channel": "postal",
    }  # fmt: skip
    apology = CaseApologyIssued(**_base(), reason="Chờ xác minh", new_appointment_at=NOW, timely=False, deadline_at=NOW)
    snapshot = n.facts(Kind.APOLOGY_ISSUED, case, apology)
    assert snapshot["unit"] == "000.00.12.H56" and snapshot["apology_reason"] == "Chờ xác minh"
    assert snapshot["new_appointment_at"] == NOW.isoformat()
    ready = CaseResultReady(**_base(), finished_at=NOW, timeliness="on_time")
    assert n.facts(Kind.RESULT_READY, case, ready, fee_paid=8000)["return_channel"] == "postal"


def test_the_message_id_is_stable_and_in_the_senders_domain() -> None:
    assert message_id("abc", "Bộ phận Một cửa <motcua@benghe.gov.vn>") == "<abc@benghe.gov.vn>"
    assert message_id("abc", "") == "<abc@motcua.local>"


def test_intake_refuses_a_chosen_channel_without_its_contact() -> None:
    from pydantic import ValidationError

    from services.intake.models import ReceiveDossier

    with pytest.raises(ValidationError, match="notify_by: e-mail notifications need applicant.email"):
        ReceiveDossier(procedure_code="1.004194", applicant={"name": "Lê Văn Tám", "phone": "0912345678"}, notify_by="email")
    with pytest.raises(ValidationError, match="notify_by: SMS notifications need applicant.phone"):
        ReceiveDossier(procedure_code="1.004194", applicant_name="Lê Văn Tám", notify_by="sms")
    chosen = ReceiveDossier(procedure_code="1.004194", applicant={"name": "Lê Văn Tám", "phone": "0912345678"}, notify_by="sms")
    assert chosen.notify_by == "sms" and ReceiveDossier(procedure_code="1.004194", applicant_name="A").notify_by is None


def test_a_long_vietnamese_subject_survives_encoding_with_its_spaces() -> None:
    """Python 3.11's default e-mail policy loses the spaces where it folds encoded words; the mailer must not."""
    import email
    import email.policy

    from aiosmtplib.email import flatten_message

    from services.workflow.senders import SmtpMailer

    subject = "Hồ sơ 000.00.56.TB88B82-261126-0002: thư xin lỗi và hẹn lại ngày trả kết quả"
    mailer = SmtpMailer(WorkflowSettings(smtp_from="Bộ phận Một cửa <motcua@benghe.gov.vn>"), timeout=1)
    message = mailer.message(to="a@b.vn", subject=subject, body="Kính gửi ông/bà,\nLý do: chờ xác minh", message_id="<x@benghe.gov.vn>", now_header="Thu, 26 Nov 2026 01:00:00 +0000")
    parsed = email.message_from_bytes(flatten_message(message), policy=email.policy.default)
    assert str(parsed["Subject"]) == subject
    assert str(parsed["From"]) == "Bộ phận Một cửa <motcua@benghe.gov.vn>"
    assert parsed.get_content() == "Kính gửi ông/bà,\nLý do: chờ xác minh"
    assert parsed["Message-ID"] == "<x@benghe.gov.vn>"
