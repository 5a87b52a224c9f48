"""``motcua run`` (what ``make run`` calls) shows the main job on its own defaults, end to end.

The command runs as a person runs it, in a process of its own with a ``MOTCUA_HOME`` of its own (free ports instead of
the usual ones, so it never meets a stack already running on the machine). What it prints is read and used as it is:

- the demonstration values: the collection account, the bank's callback secret, the portal's webhook secret, the mail
  and SMS sink;
- a fee received at the counter gets a VietQR into the demonstration account, and its page says so;
- the printed one-line ``curl`` (bash and openssl), given the payment's id and amount, signs a bank's confirmation
  that pays it; the page then says "Đã thanh toán";
- the portal's webhook, signed with the printed secret, receives a dossier (it answered 503 without one);
- the applicant's e-mail and SMS reach the sink, and ``motcua messages`` lists them decoded, Vietnamese readable;
- Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from motcua import demo
from motcua.devstack import free_port
from motcua.registry import SERVICES
from services.payments import domain
from shared.webhooks import signature as webhook_signature
from tests.support.stack import eventually

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
UNIT = "000.00.12.H56"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
READY = "Ctrl-C stops everything."


@dataclass
class Run:
    """The ``motcua run`` process, its home, its ports and every line it printed so far."""

    process: subprocess.Popen[str]
    home: Path
    ports: dict[str, int]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def motcua(self, *args: str) -> str:
        """Another ``motcua`` command beside the running stack, as a person would type it."""
        done = subprocess.run([sys.executable, "-m", "motcua.cli", *args], env=self.env, cwd=REPO, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout


def _read(run: Run) -> None:
    assert run.process.stdout is not None
    for line in run.process.stdout:
        run.lines.append(line.rstrip("\n"))
        if line.strip() == READY:
            run.ready.set()
    run.ready.set()  # it exited: stop waiting


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    """``motcua run`` on free ports; killed at the end if the test did not stop it."""
    home = tmp_path / "motcua-home"
    ports = {name: free_port() for name in (*SERVICES, "pg", "kafka", "smtp", "sms")}
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("INTAKE_", "WORKFLOW_", "DIGITIZATION_", "PAYMENTS_", "REPORTING_", "MOTCUA_"))
    }  # fmt: skip
    env |= {"MOTCUA_HOME": str(home), **{f"{name.upper()}_PORT": str(ports[name]) for name in SERVICES}}
    command = [
        sys.executable, "-m", "motcua.cli", "run", "--pg-port", str(ports["pg"]), "--kafka-port", str(ports["kafka"]),
        "--smtp-port", str(ports["smtp"]), "--sms-port", str(ports["sms"]), "--timeout", "180",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip
    running = Run(process=process, home=home, ports=ports, env=env)
    threading.Thread(target=_read, args=(running,), daemon=True).start()
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def printed(output: str, label: str) -> str:
    """The rest of the banner line that starts with ``label``."""
    match = re.search(rf"^  {re.escape(label)} +(.+)$", output, re.MULTILINE)
    assert match, f"no line for {label!r} in:\n{output}"
    return match.group(1)


async def test_make_run_shows_a_fees_whole_life_and_the_applicants_messages_on_its_defaults(run: Run) -> None:
    assert run.ready.wait(timeout=300), run.output
    assert run.process.poll() is None, f"motcua run exited:\n{run.output}"
    out = run.output
    smtp, sms_url = run.ports["smtp"], f"http://127.0.0.1:{run.ports['sms']}/motcua-demo/sms"

    # What it printed: every demonstration value, labelled as such.
    assert "demonstration values of this local stack (production refuses every one of them):" in out
    account = printed(out, "collection account")
    assert 'bank BIN 970415, account MOTCUADEMO, "TÀI KHOẢN MINH HỌA – KHÔNG CHUYỂN TIỀN"' in account
    assert printed(out, "bank callbacks") == f"provider demo-bank, HMAC secret {demo.BANK_SECRET} (PAYMENTS_CALLBACK_SECRETS)"
    assert printed(out, "portal webhook").startswith(f"HMAC secret {demo.PORTAL_SECRET}")
    assert printed(out, "mail sink").startswith(f"SMTP on 127.0.0.1:{smtp}, no TLS")
    assert printed(out, "SMS sink").startswith(sms_url)
    assert printed(out, "messages").startswith(".venv/bin/motcua messages")
    [curl] = [line.strip() for line in run.lines if line.startswith("  P=")]
    assert curl.startswith(f"P={demo.PAYMENT_PLACEHOLDER} A={demo.AMOUNT_PLACEHOLDER} ")
    assert f"{run.url('payments')}/api/v1/payments/callbacks/demo-bank" in curl

    clerk_token = (await asyncio.to_thread(run.motcua, "token", "--role", "clerk", "--unit", UNIT)).strip()
    clerk = {"Authorization": f"Bearer {clerk_token}"}
    async with httpx.AsyncClient(timeout=30) as http:
        # A fee-bearing dossier at the counter; the applicant wants e-mail. Another wants SMS.
        received = []
        for applicant, notify_by in (
            ({"name": "Phạm Đức Hùng", "email": "hung.pham@example.vn"}, "email"),
            ({"name": "Trần Thị Ngọc Ánh", "phone": "0912 345 678"}, "sms"),
        ):
            response = await http.post(f"{run.url('intake')}/api/v1/dossiers", headers=clerk, json={
                "procedure_code": "1.004194", "applicant": applicant, "channel": "counter", "notify_by": notify_by})  # fmt: skip
            assert response.status_code == 201, response.text
            received.append(response.json()["code"])
        mail_code, sms_code = received

        # Its fee has a VietQR into the demonstration account, and its page says the account is not a real one.
        async def _fee() -> dict | None:
            answer = await http.get(f"{run.url('payments')}/api/v1/payments", params={"dossier_code": mail_code}, headers=clerk)
            return (answer.json()["data"] or [None])[0]

        fee = await eventually(_fee)
        assert fee["status"] == "pending" and fee["amount"] == 15_000
        fields = domain.decode(fee["qr_payload"])
        assert (fields["bank_bin"], fields["account"], fields["amount"]) == ("970415", "MOTCUADEMO", 15_000)
        assert fee["payment_page_url"] == f"{run.url('payments')}/nop-phi/{fee['id']}"
        page = await http.get(fee["payment_page_url"])
        assert page.status_code == 200 and "Tài khoản minh họa." in page.text and "Chờ thanh toán" in page.text

        # The printed curl, given the payment's id and amount, is the bank confirming it.
        line = curl.replace(f"P={demo.PAYMENT_PLACEHOLDER} A={demo.AMOUNT_PLACEHOLDER}", f"P={fee['id']} A={fee['amount']}", 1)
        done = await asyncio.to_thread(subprocess.run, ["bash", "-c", line], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert (answer["outcome"], answer["payment_status"], answer["payment_id"]) == ("confirmed", "paid", fee["id"])
        page = await http.get(fee["payment_page_url"])
        assert "Đã thanh toán" in page.text and answer["receipt_number"] in page.text

        # The portal's webhook takes a dossier signed with the printed secret (without one it answered 503).
        body = {"portal_dossier_id": f"DVC-{time.time_ns()}", "unit": UNIT, "procedure_code": "1.004194",
                "applicant": {"kind": "citizen", "name": "Lê Văn Tám"}, "submitted_at": datetime.now(VN).isoformat(),
                "return_channel": "online"}  # fmt: skip
        raw = json.dumps(body, ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        portal = await http.post(f"{run.url('intake')}/api/v1/portal/dossiers", content=raw, headers={
            "X-Portal-Timestamp": stamp, "X-Portal-Signature": webhook_signature(demo.PORTAL_SECRET, stamp, raw),
            "Content-Type": "application/json"})  # fmt: skip
        assert portal.status_code == 201, portal.text

    # The applicants' messages reach the sink; `motcua messages` lists them decoded.
    async def _listed() -> str | None:
        listing = await asyncio.to_thread(run.motcua, "messages")
        return listing if mail_code in listing and sms_code in listing else None

    listing = await eventually(_listed, timeout=90, interval=1)
    assert "e-mail to hung.pham@example.vn" in listing
    assert f"Subject: Hồ sơ {mail_code} đã được tiếp nhận" in listing
    assert "Kính gửi ông/bà Phạm Đức Hùng," in listing and "Hồ sơ của ông/bà đã được tiếp nhận." in listing
    assert "From: Bộ phận Một cửa – minh họa <motcua@motcua-demo.localhost>" in listing
    assert f"SMS to +84912345678\n   Hồ sơ {sms_code} đã được tiếp nhận. Hẹn trả kết quả: " in listing
    assert (run.home / "messages").is_dir() and len(list((run.home / "messages").iterdir())) >= 2
    last = await asyncio.to_thread(run.motcua, "messages", "--last", "1")
    assert last.count("── ") == 1

    # Ctrl-C stops everything.
    run.process.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(run.process.wait, 90) == 0
    await asyncio.sleep(0.2)  # the reader thread takes the last line
    assert run.lines[-1] == "stopped.", run.output
