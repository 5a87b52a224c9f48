"""Delivering applicant notifications: e-mail over SMTP, SMS through a provider, at least once.

The loop claims due notifications with ``FOR UPDATE SKIP LOCKED`` and, in that short transaction,
records the attempt as ``sending`` and leases the row (``next_attempt_at`` moves a lease ahead).
The provider is called outside any transaction, several sends at once, each bounded by a
timeout, so one slow or failing provider holds up neither the database nor the other dossiers.
The outcome is written in a second transaction: sent, or a retry after a capped, jittered backoff
(given up after the last attempt, or at once when the provider refuses the message for good).

At least once, not exactly once: a sender killed after the provider took the message but before
the outcome was written leaves the attempt ``sending``; when the lease expires the row is claimed
again, that attempt is marked ``interrupted`` and the message goes out a second time. Both sends
carry the notification id (SMS ``Idempotency-Key`` header and ``reference``, e-mail ``Message-ID``),
so a provider or a mail client can drop the duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import Protocol

import aiosmtplib
import httpx
from prometheus_client import Counter, Gauge

from services.workflow import notifications, store
from services.workflow.notifications import Channel, RenderContext, Status, Template
from services.workflow.settings import WorkflowSettings
from shared.db import Database

log = logging.getLogger("motcua.workflow.notifications")

SENT = Counter("motcua_notifications_sent_total", "Notifications a provider accepted", ["channel", "kind"])
FAILED = Counter(
    "motcua_notification_failures_total",
    "Failed delivery attempts, by whether the notification will be retried or was given up",
    ["channel", "kind", "outcome"],
)
BACKLOG = Gauge("motcua_notification_backlog", "Notifications owed and not yet accepted by a provider", ["channel"])
OLDEST_AGE = Gauge("motcua_notification_oldest_age_seconds", "Age of the oldest notification not yet accepted")


class DeliveryError(Exception):
    """A provider did not take the message; ``permanent`` when trying again cannot help (a refused address)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    """Sends one e-mail; returns the provider's id for it (if any) or raises ``DeliveryError``."""

    async def send(self, *, to: str, subject: str, body: str, message_id: str) -> str | None: ...


class SmsProvider(Protocol):
    """Sends one SMS; ``reference`` is the notification id, the same on every retry (for de-duplication)."""

    async def send(self, *, to: str, text: str, reference: str) -> str | None: ...


class SmtpMailer:
    """E-mail through an SMTP server (plain, STARTTLS or implicit TLS; login when credentials are set)."""

    def __init__(self, settings: WorkflowSettings, *, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout

    def message(self, *, to: str, subject: str, body: str, message_id: str, now_header: str) -> MIMEText:
        """The MIME message: UTF-8 text, headers encoded per RFC 2047, a Message-ID stable across retries.

        Built with the compat32 classes on purpose: Python 3.11's default policy folds a long
        encoded subject at word boundaries and drops the spaces there ("trả kếtquả").
        """
        message = MIMEText(body, "plain", "utf-8")
        name, address = parseaddr(self.settings.smtp_from)
        message["From"] = formataddr((name, address), charset="utf-8")
        message["To"] = to
        message["Subject"] = Header(subject, "utf-8")
        message["Date"] = now_header
        message["Message-ID"] = message_id
        return message

    async def send(self, *, to: str, subject: str, body: str, message_id: str) -> str | None:
        if not self.settings.smtp_host:
            raise DeliveryError("e-mail is not configured (WORKFLOW_SMTP_HOST is empty)")
        message = self.message(to=to, subject=subject, body=body, message_id=message_id, now_header=format_datetime(datetime.now(UTC)))
        tls = self.settings.smtp_tls
        try:
            await aiosmtplib.send(
                message,
                hostname=self.settings.smtp_host,
                port=self.settings.smtp_port,
                username=self.settings.smtp_username or None,
                password=self.settings.smtp_password or None,
                use_tls=tls == "tls",
                start_tls=True if tls == "starttls" else False,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise DeliveryError(f"recipient refused: {exc}", permanent=all(500 <= c < 600 for c in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600 and exc.code != 552) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        return message_id


class HttpSmsProvider:
    """An SMS gateway over HTTP: ``POST {url}`` with a bearer token and a JSON body.

    Body: ``{"to": "+849…", "text": "…", "reference": "<notification id>"}``; the same id goes in the
    ``Idempotency-Key`` header. 2xx is taken; 4xx (but 408 and 429) is a refusal for good; anything
    else is retried.
    """

    def __init__(self, settings: WorkflowSettings, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def send(self, *, to: str, text: str, reference: str) -> str | None:
        if not self.settings.sms_provider_url:
            raise DeliveryError("SMS is not configured (WORKFLOW_SMS_PROVIDER_URL is empty)")
        headers = {"Idempotency-Key": reference}
        if self.settings.sms_provider_token:
            headers["Authorization"] = f"Bearer {self.settings.sms_provider_token}"
        try:
            response = await self._client.post(
                self.settings.sms_provider_url, json={"to": to, "text": text, "reference": reference}, headers=headers
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
            raise DeliveryError(f"HTTP {response.status_code}: {response.text[:500]}", permanent=permanent)
        try:
            return str(response.json().get("message_id") or "") or None
        except ValueError:
            return None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


@dataclass(frozen=True)
class Claimed:
    """A notification this sender holds the lease of, ready to send."""

    id: str
    number: int
    kind: str
    channel: str
    recipient: str
    subject: str | None
    body: str


class NotificationSender:
    """Background loop owned by workflow's lifespan: claims, sends (several at once), records."""

    name = "notification sender"

    def __init__(
        self,
        db: Database,
        settings: WorkflowSettings,
        context: RenderContext,
        *,
        mailer: Mailer | None = None,
        sms: SmsProvider | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.context = context
        timeout = settings.notification_send_timeout_seconds
        self.mailer: Mailer = mailer or SmtpMailer(settings, timeout=timeout)
        self.sms: SmsProvider = sms or HttpSmsProvider(settings, timeout=timeout)
        self._stopping = asyncio.Event()
        # Sends in flight, per channel: a provider that hangs fills only its own channel's slots.
        self._inflight: dict[Channel, set[asyncio.Task[None]]] = {channel: set() for channel in Channel}

    async def run(self) -> None:
        """Send until stopped; at stop, give the sends in flight a moment, then leave them to the lease."""
        stop = asyncio.create_task(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                try:
                    for channel, inflight in self._inflight.items():
                        free = min(self.settings.notification_concurrency - len(inflight), self.settings.notification_batch_size)
                        for claimed in await self.claim(free, channel):
                            task = asyncio.create_task(self.deliver(claimed), name=f"notify-{claimed.id}")
                            inflight.add(task)
                            task.add_done_callback(inflight.discard)
                    await self.report_backlog()
                except Exception as exc:  # noqa: BLE001 - the database may be away; the next round retries
                    log.warning("notification round failed: %s", exc)
                await asyncio.wait(
                    {stop, *self._tasks()}, timeout=self.settings.notification_interval_seconds, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            stop.cancel()
            await self._drain()
            if isinstance(self.sms, HttpSmsProvider):
                await self.sms.aclose()

    def _tasks(self) -> set[asyncio.Task[None]]:
        return set().union(*self._inflight.values())

    async def _drain(self) -> None:
        """Let the sends in flight finish for a few seconds; cancelled ones stay ``sending`` and go again after the lease."""
        tasks = self._tasks()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=min(self.settings.notification_send_timeout_seconds, 5.0))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def stop(self) -> None:
        """Stop claiming; the sends in flight finish."""
        self._stopping.set()

    async def claim(self, limit: int, channel: Channel) -> list[Claimed]:
        """Lease a channel's due notifications, render those not rendered yet, open an attempt for each (one transaction)."""
        if limit <= 0:
            return []
        async with self.db.unit_of_work(actor="workflow-notify") as tx:
            now = tx.db.clock.now()
            rows = await store.claim_notifications(session=tx.session, now=now, limit=limit, channel=channel.value)
            if not rows:
                return []
            templates = {(t.kind, t.channel): t for t in await store.templates(session=tx.session)}
            claimed = []
            for row in rows:
                await store.interrupt_attempts(session=tx.session, notification_id=row.id, now=now)
                row.attempts += 1
                if row.body is None and not self._render(row, templates.get((row.kind, row.channel))):
                    tx.session.add(store.NotificationAttempt(
                        notification_id=row.id, number=row.attempts, started_at=now, finished_at=now, outcome="failed", error=row.last_error
                    ))  # fmt: skip
                    FAILED.labels(row.channel, row.kind, "gave_up").inc()
                    tx.session.add(row)
                    continue
                lease = self.settings.notification_lease_seconds
                row.next_attempt_at = now + timedelta(seconds=lease)
                tx.session.add(row)
                tx.session.add(store.NotificationAttempt(notification_id=row.id, number=row.attempts, started_at=now, outcome="sending"))
                claimed.append(Claimed(row.id, row.attempts, row.kind, row.channel, row.recipient, row.subject, row.body or ""))
            return claimed

    def _render(self, row: store.Notification, template: store.NotificationTemplate | None) -> bool:
        """Fill the row's words once (retries send the same text); False, and the row given up, when it cannot be."""
        if template is None:
            row.status, row.last_error = Status.FAILED.value, f"no template for {row.kind} / {row.channel}"
            return False
        try:
            rendered = notifications.render(
                Template(notifications.Kind(row.kind), Channel(row.channel), template.body, template.subject), row.facts, self.context
            )
        except (ValueError, KeyError) as exc:
            row.status, row.last_error = Status.FAILED.value, f"template cannot be rendered: {exc}"
            return False
        row.subject, row.body, row.encoding, row.segments = rendered.subject, rendered.body, rendered.encoding, rendered.segments
        return True

    async def deliver(self, claimed: Claimed) -> None:
        """Send one claimed notification and record the outcome; a crash here leaves it to the lease."""
        error: DeliveryError | None = None
        provider_id: str | None = None
        try:
            provider_id = await asyncio.wait_for(self._send(claimed), timeout=self.settings.notification_send_timeout_seconds)
        except DeliveryError as exc:
            error = exc
        except TimeoutError:
            error = DeliveryError(f"no answer within {self.settings.notification_send_timeout_seconds:g}s")
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is retried like a transient one
            error = DeliveryError(f"{type(exc).__name__}: {exc}")
        try:
            await self.record(claimed, error, provider_id)
        except Exception as exc:  # noqa: BLE001 - the lease expires and the notification is sent again
            log.warning("could not record notification %s attempt %d: %s", claimed.id, claimed.number, exc)

    async def _send(self, claimed: Claimed) -> str | None:
        if claimed.channel == Channel.EMAIL:
            return await self.mailer.send(
                to=claimed.recipient, subject=claimed.subject or "", body=claimed.body, message_id=message_id(claimed.id, self.settings.smtp_from)
            )
        return await self.sms.send(to=claimed.recipient, text=claimed.body, reference=claimed.id)

    async def record(self, claimed: Claimed, error: DeliveryError | None, provider_id: str | None) -> None:
        """Write the attempt's outcome; a failure is retried after a backoff unless it was the last or a refusal."""
        async with self.db.unit_of_work(actor="workflow-notify") as tx:
            now = tx.db.clock.now()
            row = await store.get_notification(session=tx.session, notification_id=claimed.id)
            outcome = "sent" if error is None else "failed"
            await store.finish_attempt(
                session=tx.session, notification_id=claimed.id, number=claimed.number, now=now, outcome=outcome,
                error=str(error)[:2000] if error else None, provider_id=provider_id,
            )  # fmt: skip
            if row is None or row.status != Status.PENDING:
                return  # another sender's attempt (after a lease expiry) settled it already
            if error is None:
                row.status, row.sent_at, row.last_error, row.provider_message_id = Status.SENT.value, now, None, provider_id
                SENT.labels(row.channel, row.kind).inc()
            elif row.attempts != claimed.number:
                return  # the row was claimed again meanwhile: the newer attempt decides
            elif error.permanent or row.attempts >= self.settings.notification_max_attempts:
                row.status, row.last_error = Status.FAILED.value, str(error)[:2000]
                FAILED.labels(row.channel, row.kind, "gave_up").inc()
            else:
                delay = notifications.backoff_seconds(
                    row.attempts, initial=self.settings.notification_backoff_initial_seconds, cap=self.settings.notification_backoff_max_seconds
                )
                row.next_attempt_at, row.last_error = now + timedelta(seconds=delay), str(error)[:2000]
                FAILED.labels(row.channel, row.kind, "retry").inc()
            tx.session.add(row)

    async def report_backlog(self) -> None:
        """Refresh the backlog gauges."""
        async with self.db.sessions() as session:
            counts, age = await store.notification_backlog(session=session, now=self.db.clock.now())
        for channel in Channel:
            BACKLOG.labels(channel.value).set(counts.get(channel.value, 0))
        OLDEST_AGE.set(age)


def message_id(notification_id: str, sender: str) -> str:
    """``<notification id@sender's domain>``: the same on every retry, so a duplicate is recognisable."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "motcua.local"
    return f"<{notification_id}@{domain}>"


def new_id() -> str:
    """A notification id."""
    return str(uuid.uuid4())
