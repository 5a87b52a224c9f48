"""The drift check's pure parts: manifest chunks, their size on the wire, the window re-announced, the subscription."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from motcua.cli import main
from shared.consumer import Subscription
from shared.drift import MANIFEST, chunks, handled_types, recent_since, with_manifests
from shared.envelope import MAX_EVENT_BYTES, Envelope
from shared.events import (
    REGISTRY,
    CaseAssigned,
    DossierReceived,
    Fact,
    ManifestEntry,
    OutboxManifest,
)
from shared.settings import ServiceSettings


def _row(id_: int, day: date) -> SimpleNamespace:
    return SimpleNamespace(id=id_, day=day, event_id=str(uuid.uuid4()), type=DossierReceived.type)


def test_chunks_keep_one_day_each_and_at_most_the_chunk_size_in_outbox_order() -> None:
    d1, d2 = date(2026, 12, 2), date(2026, 12, 3)
    rows = [_row(i, d1) for i in range(1, 6)] + [_row(i, d2) for i in range(6, 9)]
    got = [(day, [r.id for r in chunk]) for day, chunk in chunks(rows, 2)]
    assert got == [(d1, [1, 2]), (d1, [3, 4]), (d1, [5]), (d2, [6, 7]), (d2, [8])]


def test_the_largest_manifest_the_settings_allow_travels_well_under_the_consumers_limit() -> None:
    longest = max(REGISTRY, key=len)
    size = ServiceSettings.model_fields["drift_manifest_chunk"].metadata[-1].le  # the setting's upper bound
    manifest = OutboxManifest(
        producer="digitization",
        day=date(2026, 12, 3),
        first_id=10**12,
        last_id=10**12 + size,
        events=[ManifestEntry(id=str(uuid.uuid4()), type=longest, row=10**12 + i) for i in range(size)],
        occurred_at=datetime.now(UTC),
    )
    envelope = Envelope.wrap(manifest, source="/motcua/digitization", time=datetime.now(UTC), traceparent=None, actor="drift")
    body = envelope.kafka_value()
    assert len(body) < MAX_EVENT_BYTES / 2
    read = Envelope.from_kafka(body, envelope.kafka_headers())
    assert read.event() == manifest and read.subject == "digitization/2026-12-03"


def test_a_manifest_goes_on_its_producers_topic_and_refuses_more_than_a_chunk() -> None:
    entry = ManifestEntry(id=str(uuid.uuid4()), type=CaseAssigned.type, row=1)
    now = datetime.now(UTC)
    manifest = OutboxManifest(producer="workflow", day=date(2026, 12, 3), first_id=1, last_id=1, events=[entry], occurred_at=now)
    assert manifest.producer == "workflow" and MANIFEST == "vn.motcua.outbox.manifest.v1"
    with pytest.raises(ValidationError):
        OutboxManifest(producer="workflow", day=date(2026, 12, 3), first_id=1, last_id=1, events=[entry] * 2001, occurred_at=now)
    with pytest.raises(ValidationError):
        OutboxManifest(producer="workflow", day=date(2026, 12, 3), first_id=1, last_id=1, events=[], occurred_at=now)


def test_only_the_platforms_own_facts_may_be_published_by_every_producer() -> None:
    with pytest.raises(ValueError, match="unknown producer"):

        class Stray(Fact, type="vn.motcua.test.stray.v1", producer="nobody"):
            pass

    assert "vn.motcua.test.stray.v1" not in REGISTRY


def test_the_recent_window_starts_at_midnight_in_vietnam() -> None:
    now = datetime(2026, 12, 3, 18, 30, tzinfo=UTC)  # already 4 December, 01:30, in Hà Nội
    assert recent_since(now, 1).isoformat() == "2026-12-04T00:00:00+07:00"
    assert recent_since(now, 2).isoformat() == "2026-12-03T00:00:00+07:00"


def test_every_subscription_gets_the_manifests_of_its_producers_and_compares_only_what_it_handles() -> None:
    async def handler(tx, event, envelope) -> None:
        del tx, event, envelope

    plain = Subscription(producers=("intake", "payments"), handlers={DossierReceived: handler})
    listened = with_manifests(plain)
    assert listened.producers == plain.producers
    assert set(listened.handlers) == {DossierReceived, OutboxManifest}
    assert listened.handlers[DossierReceived] is handler
    assert handled_types(listened) == handled_types(plain) == {DossierReceived.type}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--url", "nowhere"], "--url nowhere: expected NAME=URL"),
        (["--url", "ledger=http://x"], "--url ledger=http://x: expected NAME=URL"),
        (["--service", "ledger"], "no service ledger"),
    ],
)
def test_the_drift_command_refuses_what_it_cannot_ask(args: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "check", *args]) == 2
    assert said in capsys.readouterr().err
