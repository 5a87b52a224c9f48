"""The notification sender against a real Postgres: a provider that never answers does not hold up the others.

The e-mail provider here hangs on every message, longer than the test lasts, and there are more
e-mails due than the sender has slots; the SMS provider answers, but refuses one number for good.
All the SMS still go out, each once (a channel's hanging sends take only that channel's slots), and
one SMS that keeps failing is retried with backoff while the others go. The hung e-mails stay
``sending`` when the sender stops: the lease will hand them to the next sender.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from motcua.devstack import EmbeddedPostgres
from motcua.migrate import upgrade
from services.workflow import notifications, store
from services.workflow.notifications import RenderContext
from services.workflow.senders import DeliveryError, NotificationSender
from services.workflow.settings import WorkflowSettings
from shared.clock import SystemClock
from shared.db import Database
from tests.support.stack import eventually

CTX = RenderContext(public_base_url="http://x", rating_link_secret="s", one_stop_name="Bộ phận Một cửa", unit_names={})
REFUSED = "+84000000000"
FLAKY = "+84911111111"


class HangingMailer:
    """An SMTP server that accepts the connection and never answers."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, *, to: str, subject: str, body: str, message_id: str) -> str | None:
        self.calls += 1
        await asyncio.Event().wait()
        return None


class Gateway:
    """An SMS gateway that takes every message but one number's, and fails another number's first three tries."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.flaky_failures = 3

    async def send(self, *, to: str, text: str, reference: str) -> str | None:
        if to == REFUSED:
            raise DeliveryError("HTTP 400: invalid number", permanent=True)
        if to == FLAKY and self.flaky_failures:
            self.flaky_failures -= 1
            raise DeliveryError("HTTP 503: busy")
        self.sent.append((reference, to, text))
        return f"gw-{len(self.sent)}"


@pytest.fixture(scope="module")
async def db(postgres: EmbeddedPostgres) -> AsyncIterator[Database]:
    name = f"motcua_workflow_notify_{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(postgres.ensure_database, name)
    url = postgres.dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, "workflow", url)
    database = Database(url, service="workflow", namespace="notifytest", clock=SystemClock(), pool_size=4)
    yield database
    await database.dispose()


async def _owe(db: Database, channel: str, recipient: str, kind: str = "accepted") -> str:
    now = datetime.now(UTC)
    values = {
        "id": str(uuid.uuid4()), "case_code": f"C-{uuid.uuid4().hex[:8]}", "event_id": str(uuid.uuid4()), "kind": kind,
        "channel": channel, "recipient": recipient, "facts": notifications.SAMPLE_FACTS, "status": "pending",
        "next_attempt_at": now, "created_at": now,
    }  # fmt: skip
    async with db.unit_of_work() as tx:
        assert await store.add_notification(session=tx.session, values=values)
        assert not await store.add_notification(session=tx.session, values={**values, "id": str(uuid.uuid4())})  # one per event
    return values["id"]


async def _rows(db: Database, ids: list[str]) -> list[tuple[store.Notification, list[store.NotificationAttempt]]]:
    """Each notification with its attempts (every one here is its dossier's only notification)."""
    async with db.sessions() as session:
        found = []
        for notification_id in ids:
            row = await session.get(store.Notification, notification_id, populate_existing=True)
            assert row is not None
            found.extend(await store.notifications_of(session=session, code=row.case_code))
        return found


async def test_a_provider_that_never_answers_does_not_hold_up_the_others(db: Database) -> None:
    settings = WorkflowSettings(
        notification_interval_seconds=0.05, notification_concurrency=2, notification_send_timeout_seconds=600,
        notification_lease_seconds=900, notification_backoff_initial_seconds=0.05, notification_backoff_max_seconds=0.1,
    )  # fmt: skip
    emails = [await _owe(db, "email", f"dan{i}@example.vn") for i in range(6)]
    flaky = await _owe(db, "sms", FLAKY)
    texts = [await _owe(db, "sms", f"+8491234567{i}") for i in range(8)]
    refused = await _owe(db, "sms", REFUSED)
    mailer, gateway = HangingMailer(), Gateway()
    sender = NotificationSender(db, settings, CTX, mailer=mailer, sms=gateway)
    task = asyncio.create_task(sender.run())
    try:

        async def all_sms_settled() -> bool:
            rows = await _rows(db, [flaky, *texts, refused])
            return all(n.status != "pending" for n, _ in rows)

        await eventually(all_sms_settled, timeout=60)
        assert mailer.calls == settings.notification_concurrency  # every e-mail slot is held by a hung send
    finally:
        await sender.stop()
        await task

    assert sorted(ref for ref, _, _ in gateway.sent) == sorted([flaky, *texts])  # each SMS once
    [(retried, attempts)] = await _rows(db, [flaky])
    assert retried.status == "sent" and [a.outcome for a in attempts] == ["failed", "failed", "failed", "sent"]
    assert {text for _, _, text in gateway.sent} == {"Hồ sơ 000.00.12.H56-261126-0001 đã được tiếp nhận. Hẹn trả kết quả: 17:00 ngày 27/11/2026."}
    for notification, attempts in await _rows(db, texts):
        assert notification.status == "sent" and notification.provider_message_id and notification.body
        assert [a.outcome for a in attempts] == ["sent"]
    [(gave_up, attempts)] = await _rows(db, [refused])
    assert gave_up.status == "failed" and [a.outcome for a in attempts] == ["failed"] and "invalid number" in (gave_up.last_error or "")
    held = await _rows(db, emails)
    assert all(n.status == "pending" for n, _ in held)
    assert sorted([a.outcome for a in attempts] for _, attempts in held) == [[]] * 4 + [["sending"]] * 2
