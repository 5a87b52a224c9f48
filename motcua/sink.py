"""The local stack's mail and SMS sink: an SMTP server and an SMS gateway that deliver nothing and keep everything.

``motcua run`` starts both on 127.0.0.1 and points workflow's notification sender at them (``WORKFLOW_SMTP_HOST``,
``_PORT``, ``_TLS=none``, ``WORKFLOW_SMS_PROVIDER_URL``), so the applicant's e-mails and SMS of a dossier's whole life
can be read on the machine: ``motcua messages`` lists them decoded. Each message is one file under
``$MOTCUA_HOME/messages``: an e-mail as it arrived (``<time>-email.eml``), an SMS as the gateway's JSON request with
its headers (``<time>-sms.json``). The SMS gateway answers like a real one (``{"message_id": …}``) and, like one that
de-duplicates, keeps a message sent again under the same ``Idempotency-Key`` once.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

SMS_PATH = "/motcua-demo/sms"  # the marker makes the URL a demonstration value production refuses
MAX_SMS_BODY = 64 * 1024


class MessageStore:
    """The folder of kept messages; file names sort in arrival order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.RLock()  # keep_sms holds it while it names the file
        self._last = 0

    def _name(self, kind: str, suffix: str) -> Path:
        with self._lock:  # strictly increasing, even for two messages in the same nanosecond
            stamp = max(time.time_ns(), self._last + 1)
            self._last = stamp
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{stamp}-{kind}{suffix}"

    def keep_email(self, raw: bytes) -> Path:
        """An e-mail as it arrived."""
        path = self._name("email", ".eml")
        path.write_bytes(raw)
        return path

    def keep_sms(self, request: dict[str, Any], key: str | None) -> tuple[Path, bool]:
        """An SMS request; (its file, whether it is new): a repeated ``Idempotency-Key`` is the same message."""
        with self._lock:
            if key:
                for earlier in self.folder.glob("*-sms.json"):
                    if json.loads(earlier.read_text(encoding="utf-8")).get("idempotency_key") == key:
                        return earlier, False
            path = self._name("sms", ".json")
            record = {"received_at": datetime.now(UTC).isoformat(), "idempotency_key": key, **request}
            path.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
            return path, True


class _MailHandler:
    """aiosmtpd's handler: every message accepted is kept."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        self.store.keep_email(bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


def _sms_handler(store: MessageStore) -> type[BaseHTTPRequestHandler]:
    class SmsHandler(BaseHTTPRequestHandler):
        """``POST /motcua-demo/sms`` with ``{"to", "text", "reference"}``: kept, answered with a message id."""

        def log_message(self, format: str, *args: Any) -> None:  # the base class's name
            """Quiet: the stack's output is for people."""

        def _answer(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # http.server's hook name
            if self.path.split("?")[0] != SMS_PATH:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"the SMS sink listens on {SMS_PATH}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_SMS_BODY:
                self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "too large"})
                return
            try:
                request = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(HTTPStatus.BAD_REQUEST, {"error": "the body is not JSON"})
                return
            if not isinstance(request, dict) or not request.get("to") or not isinstance(request.get("text"), str):
                self._answer(HTTPStatus.BAD_REQUEST, {"error": 'expected {"to": "+849…", "text": "…", "reference": "…"}'})
                return
            path, _ = store.keep_sms(request, self.headers.get("Idempotency-Key"))
            self._answer(HTTPStatus.OK, {"message_id": path.stem})

    return SmsHandler


class MessageSink:
    """The SMTP server and the SMS gateway, each in a thread of its own; ``stop`` stops both."""

    def __init__(self, folder: Path, *, smtp_port: int, sms_port: int, host: str = "127.0.0.1") -> None:
        self.store = MessageStore(folder)
        self.host = host
        self.smtp_port = smtp_port
        self.sms_port = sms_port
        self._smtp: Controller | None = None
        self._http: ThreadingHTTPServer | None = None

    @property
    def sms_url(self) -> str:
        """Where the SMS gateway takes messages."""
        return f"http://{self.host}:{self.sms_port}{SMS_PATH}"

    def start(self) -> None:
        """Listen on both ports (an error names the port taken)."""
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per connection is noise here
        try:
            self._http = ThreadingHTTPServer((self.host, self.sms_port), _sms_handler(self.store))
        except OSError as exc:
            raise RuntimeError(f"the SMS sink cannot listen on {self.host}:{self.sms_port}: {exc}") from exc
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="motcua-sms-sink", daemon=True).start()
        self._smtp = Controller(_MailHandler(self.store), hostname=self.host, port=self.smtp_port)
        try:
            self._smtp.start()
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"the mail sink cannot listen on {self.host}:{self.smtp_port}: {exc}") from exc

    def stop(self) -> None:
        """Stop listening (kept messages stay)."""
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


# ---- reading the kept messages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One kept message, decoded."""

    at: datetime
    channel: str  # "e-mail" or "SMS"
    to: str
    subject: str | None
    sender: str | None
    text: str
    path: Path


def _when(path: Path) -> datetime:
    stamp = re.match(r"\d+", path.name)
    return datetime.fromtimestamp(int(stamp.group()) / 1e9, UTC) if stamp else datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _email(path: Path) -> Message:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else ""
    return Message(
        at=_when(path), channel="e-mail", to=str(parsed.get("To", "")), subject=str(parsed.get("Subject", "")),
        sender=str(parsed.get("From", "")), text=text.strip(), path=path,
    )  # fmt: skip


def _sms(path: Path) -> Message:
    record = json.loads(path.read_text(encoding="utf-8"))
    return Message(at=_when(path), channel="SMS", to=str(record.get("to", "")), subject=None, sender=None,
                   text=str(record.get("text", "")).strip(), path=path)  # fmt: skip


def read_messages(folder: Path) -> Iterator[Message]:
    """Every kept message in arrival order."""
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.endswith("-email.eml"):
            yield _email(path)
        elif path.name.endswith("-sms.json"):
            yield _sms(path)


def format_message(message: Message, *, tz: Any = None) -> str:
    """A message as ``motcua messages`` prints it: a heading line, then its words indented."""
    at = message.at.astimezone(tz) if tz else message.at
    lines = [f"── {at:%Y-%m-%d %H:%M:%S}  {message.channel} to {message.to}"]
    if message.sender:
        lines.append(f"   From: {message.sender}")
    if message.subject:
        lines.append(f"   Subject: {message.subject}")
    lines += [f"   {line}".rstrip() for line in message.text.splitlines()]
    return "\n".join(lines)
