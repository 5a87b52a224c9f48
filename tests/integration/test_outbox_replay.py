"""Outbox replay against a real Postgres and a real broker: asked for, refused, and started by the relay itself.

Sent rows stay in the outbox for OUTBOX_RETENTION_HOURS. A replay puts the rows sent since an instant back in the
relay's queue, which publishes them again in id order; the relay does so by itself when the broker lost records it
had acknowledged (here: the in-memory broker restarted empty).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from motcua.devstack import EmbeddedBroker
from services.intake.settings import IntakeSettings
from shared.db import Database
from shared.outbox import OutboxRelay, ReplayRefused, replay
from tests.support.events import (
    dossier_code,
    header,
    read_topic,
)
from tests.support.outbox import emit_each, life_of, relay_settings
from tests.support.platform import rows, running, scalar
from tests.support.stack import eventually


def _replay_settings(db: Database, broker: EmbeddedBroker, **overrides: object) -> IntakeSettings:
    """The relay checks the broker every 0.5 s, and consumers back off at most 0.5 s."""
    return relay_settings(db, broker, **{"relay_check_seconds": 0.5, "consumer_backoff_max_seconds": 0.5, **overrides})


async def _all_sent(db: Database) -> bool:
    return await scalar(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def _db_now(db: Database) -> datetime:
    return await scalar(db, "SELECT now()")  # type: ignore[return-value]


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_replay_publishes_the_rows_sent_since_an_instant_again_in_order(
    intake_db: Database, broker: EmbeddedBroker
) -> None:
    earlier, later = [dossier_code() for _ in range(3)], [dossier_code() for _ in range(3)]
    replays = _metric("motcua_outbox_replays_total", service="intake", reason="requested")
    async with running(OutboxRelay(_replay_settings(intake_db, broker), intake_db)):
        first = await emit_each(intake_db, [e for c in earlier for e in life_of(c)])
        await eventually(lambda: _all_sent(intake_db))
        since = await _db_now(intake_db)
        second = await emit_each(intake_db, [e for c in later for e in life_of(c)])
        await eventually(lambda: _all_sent(intake_db))

        assert await replay(intake_db, "intake", since, retention_hours=168) == len(second)
        await eventually(lambda: _all_sent(intake_db))

    records = await read_topic(broker.bootstrap_servers, f"{intake_db.namespace}.intake", until=len(first) + 2 * len(second))
    ids = [header(r, "ce_id") for r in records]
    assert sorted(ids) == sorted(first + second + second), "the rows sent since the instant once more, no other"
    types: dict[str, list[str]] = defaultdict(list)
    for record in records:
        types[record.key.decode()].append(header(record, "ce_type"))
    for code in later:
        assert types[code] == [e.type for e in life_of(code)] * 2, f"{code}: the replay keeps each dossier's order"
    assert _metric("motcua_outbox_replays_total", service="intake", reason="requested") == replays + 1


async def test_a_window_that_cannot_be_replayed_is_refused_and_changes_nothing(intake_db: Database) -> None:
    await emit_each(intake_db, life_of(dossier_code()))
    async with intake_db.unit_of_work() as tx:  # as the relay leaves them: sent
        await tx.session.execute(text("UPDATE outbox SET sent_at = now() - interval '1 hour'"))
    sent = await rows(intake_db, "SELECT id, sent_at FROM outbox ORDER BY id")
    now = await _db_now(intake_db)
    refusals = {
        "naive": (now.replace(tzinfo=None), "needs a UTC offset"),
        "future": (now + timedelta(hours=1), "is in the future"),
        "purged": (now - timedelta(hours=2), "OUTBOX_RETENTION_HOURS=1.5"),
    }
    for what, (since, reason) in refusals.items():
        with pytest.raises(ReplayRefused, match=reason):
            await replay(intake_db, "intake", since, retention_hours=1.5)
        assert await rows(intake_db, "SELECT id, sent_at FROM outbox ORDER BY id") == sent, what


async def test_the_relay_replays_by_itself_when_the_broker_lost_what_it_acknowledged(
    intake_db: Database, own_broker: EmbeddedBroker
) -> None:
    replays = _metric("motcua_outbox_replays_total", service="intake", reason="log_truncated")
    topic = f"{intake_db.namespace}.intake"
    async with running(OutboxRelay(_replay_settings(intake_db, own_broker), intake_db)):
        emitted = await emit_each(intake_db, [e for _ in range(4) for e in life_of(dossier_code())])
        await eventually(lambda: _all_sent(intake_db))
        assert len(await read_topic(own_broker.bootstrap_servers, topic, until=len(emitted))) == len(emitted)
        await asyncio.to_thread(own_broker.stop)
        await asyncio.to_thread(own_broker.start)  # empty: what it acknowledged is gone
        await eventually(lambda: _replayed(replays, "log_truncated"), timeout=60)
        await eventually(lambda: _all_sent(intake_db))
        records = await read_topic(own_broker.bootstrap_servers, topic, until=len(emitted))
    assert sorted(header(r, "ce_id") for r in records) == sorted(emitted), "everything published again, once"
    assert _metric("motcua_outbox_replayed_rows_total", service="intake", reason="log_truncated") >= len(emitted)


async def _replayed(before: float, reason: str) -> bool:
    return _metric("motcua_outbox_replays_total", service="intake", reason=reason) > before


async def test_with_automatic_replay_off_the_loss_is_reported_until_an_operator_replays(
    intake_db: Database, own_broker: EmbeddedBroker
) -> None:
    topic = f"{intake_db.namespace}.intake"
    since = await _db_now(intake_db)
    async with running(OutboxRelay(_replay_settings(intake_db, own_broker, relay_auto_replay=False), intake_db)):
        emitted = await emit_each(intake_db, [e for _ in range(3) for e in life_of(dossier_code())])
        await eventually(lambda: _all_sent(intake_db))
        assert _metric("motcua_relay_broker_data_lost", service="intake") == 0
        await asyncio.to_thread(own_broker.stop)
        await asyncio.to_thread(own_broker.start)
        await eventually(lambda: _lost_reported(), timeout=60)
        await asyncio.sleep(2)  # several checks later: still nothing sent again
        assert await scalar(intake_db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        assert _metric("motcua_relay_broker_data_lost", service="intake") == 1

        assert await replay(intake_db, "intake", since, retention_hours=168) == len(emitted)
        await eventually(lambda: _all_sent(intake_db))
        records = await read_topic(own_broker.bootstrap_servers, topic, until=len(emitted))
        await asyncio.sleep(1.5)  # the next checks find nothing missing
        assert _metric("motcua_relay_broker_data_lost", service="intake") == 0
    assert sorted(header(r, "ce_id") for r in records) == sorted(emitted)


async def _lost_reported() -> bool:
    return _metric("motcua_relay_broker_data_lost", service="intake") == 1
