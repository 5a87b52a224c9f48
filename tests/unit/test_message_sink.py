"""The local stack's mail and SMS sink (motcua/sink.py): what arrives is kept, and read back decoded.

The e-mail is the very message workflow's sender builds (``SmtpMailer.message``: RFC 2047 headers, UTF-8 body) sent
over SMTP; the SMS is the request workflow's gateway client makes. ``motcua messages`` prints them in arrival order,
Vietnamese as written.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import httpx
import pytest

from motcua.cli import main
from motcua.devstack import free_port
from motcua.sink import SMS_PATH, MessageSink, read_messages
from services.workflow.senders import SmtpMailer
from services.workflow.settings import WorkflowSettings

SUBJECT = "Hồ sơ 000.00.12.H56-261203-0001 đã được tiếp nhận"
BODY = "Kính gửi ông/bà Phạm Đức Hùng,\n\nHồ sơ của ông/bà đã được tiếp nhận.\nHẹn trả kết quả: 17 giờ 00 phút, ngày 08 tháng 12 năm 2026"
SMS = "Hồ sơ 000.00.12.H56-261203-0002 đã được tiếp nhận. Hẹn trả kết quả: 17 giờ 00 phút, ngày 08 tháng 12 năm 2026."


@pytest.fixture
def sink(tmp_path: Path) -> MessageSink:
    running = MessageSink(tmp_path / "messages", smtp_port=free_port(), sms_port=free_port())
    running.start()
    yield running  # type: ignore[misc]
    running.stop()


def test_an_email_and_an_sms_are_kept_and_read_back_decoded(sink: MessageSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    settings = WorkflowSettings(environment="test", smtp_from="Bộ phận Một cửa – minh họa <motcua@motcua-demo.localhost>")
    mime = SmtpMailer(settings, timeout=5).message(
        to="hung.pham@example.vn", subject=SUBJECT, body=BODY, message_id="<n1@motcua-demo.localhost>",
        now_header="Thu, 03 Dec 2026 09:30:00 +0700",
    )  # fmt: skip
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as smtp:
        smtp.sendmail("motcua@motcua-demo.localhost", ["hung.pham@example.vn"], mime.as_bytes())
    sms = {"to": "+84912345678", "text": SMS, "reference": "n2"}
    first = httpx.post(sink.sms_url, json=sms, headers={"Idempotency-Key": "n2", "Authorization": "Bearer t"}, timeout=10)
    again = httpx.post(sink.sms_url, json=sms, headers={"Idempotency-Key": "n2"}, timeout=10)
    assert first.status_code == again.status_code == 200
    assert first.json()["message_id"] == again.json()["message_id"]  # one message per key, as a de-duplicating gateway

    mail, text = read_messages(tmp_path / "messages")
    assert (mail.channel, mail.to, mail.subject, mail.text) == ("e-mail", "hung.pham@example.vn", SUBJECT, BODY)
    assert mail.sender == "Bộ phận Một cửa – minh họa <motcua@motcua-demo.localhost>"
    assert (text.channel, text.to, text.text) == ("SMS", "+84912345678", SMS)

    monkeypatch.setenv("MOTCUA_HOME", str(tmp_path))
    assert main(["messages"]) == 0
    listing = capsys.readouterr().out
    assert f"e-mail to hung.pham@example.vn\n   From: Bộ phận Một cửa – minh họa <motcua@motcua-demo.localhost>\n   Subject: {SUBJECT}\n" in listing
    assert "   Kính gửi ông/bà Phạm Đức Hùng,\n\n   Hồ sơ của ông/bà đã được tiếp nhận.\n" in listing
    assert f"SMS to +84912345678\n   {SMS}\n" in listing
    assert listing.index("e-mail to") < listing.index("SMS to") and "2 message(s) in" in listing
    assert main(["messages", "--last", "1"]) == 0
    assert capsys.readouterr().out.count("── ") == 1


def test_the_sms_sink_refuses_what_a_gateway_would(sink: MessageSink, tmp_path: Path) -> None:
    base = sink.sms_url.removesuffix(SMS_PATH)
    assert httpx.post(f"{base}/v1/sms", json={"to": "+84912345678", "text": "x"}, timeout=10).status_code == 404
    assert httpx.post(sink.sms_url, content=b"not json", timeout=10).status_code == 400
    assert httpx.post(sink.sms_url, json={"text": "no recipient"}, timeout=10).status_code == 400
    assert list(read_messages(tmp_path / "messages")) == []


def test_no_messages_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MOTCUA_HOME", str(tmp_path))
    assert main(["messages"]) == 0
    assert capsys.readouterr().out.startswith(f"no messages in {tmp_path / 'messages'}")
