"""The CloudEvents envelope and the event catalog."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.envelope import DecodeError, Envelope, UnknownEventType
from shared.events import REGISTRY, DossierReceived, json_schemas, write_schemas

NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def make_received(**overrides: object) -> DossierReceived:
    fields = dict(
        dossier_code="000.00.12.H56-250303-0001",
        unit="000.00.12.H56",
        occurred_at=NOW,
        procedure_code="1.004194",
        procedure_name="Đăng ký tạm trú",
        applicant_name="Trần Văn Đức",
        channel="counter",
        received_at=NOW,
        appointment_at=NOW,
    )
    fields.update(overrides)
    return DossierReceived(**fields)


def test_an_event_survives_the_kafka_round_trip_with_its_diacritics() -> None:
    event = make_received()
    envelope = Envelope.wrap(event, source="/motcua/intake", time=NOW, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01", actor="clerk-1")
    back = Envelope.from_kafka(envelope.kafka_value(), envelope.kafka_headers())
    assert back == envelope
    assert back.event() == event
    assert "Trần Văn Đức" in envelope.kafka_value().decode()
    headers = dict(envelope.kafka_headers())
    assert headers["ce_subject"] == b"000.00.12.H56-250303-0001"
    assert headers["ce_type"] == b"vn.motcua.dossier.received.v1"


@pytest.mark.parametrize(
    ("value", "headers", "message"),
    [
        (b"{}", [], "missing CloudEvents headers"),
        (b"not json", None, "missing CloudEvents headers"),
        (b"[1]", "complete", "not a JSON object"),
        (b"{", "complete", "malformed"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(value: bytes, headers: object, message: str) -> None:
    if headers == "complete":
        headers = Envelope.wrap(make_received(), source="s", time=NOW, traceparent=None, actor=None).kafka_headers()
    with pytest.raises(DecodeError, match=message):
        Envelope.from_kafka(value, headers)


def test_an_unknown_type_and_a_schema_mismatch_are_told_apart() -> None:
    good = Envelope.wrap(make_received(), source="s", time=NOW, traceparent=None, actor=None)
    unknown = Envelope(**{**good.__dict__, "type": "vn.motcua.dossier.teleported.v1"})
    with pytest.raises(UnknownEventType):
        unknown.event()
    broken = Envelope(**{**good.__dict__, "data": {**good.data, "channel": "pigeon"}})
    with pytest.raises(DecodeError, match="does not match its schema"):
        broken.event()


def test_events_are_frozen_facts() -> None:
    event = make_received()
    with pytest.raises(ValidationError, match="frozen"):
        event.applicant_name = "someone else"  # type: ignore[misc]


def test_every_event_of_the_design_catalog_is_registered_with_a_versioned_type() -> None:
    expected = {
        "dossier.received", "dossier.supplemented", "dossier.withdrawn", "case.assigned",
        "case.supplement_requested", "case.transferred", "case.transfer_returned", "case.approved",
        "case.rejected", "case.result_ready", "case.returned", "case.deadline_warning", "case.overdue",
        "case.apology_issued", "case.rated", "document.digitized", "document.signed", "document.reused",
        "payment.requested", "payment.confirmed", "payment.refunded", "payment.failed",
    }  # fmt: skip
    registered = {t.removeprefix("vn.motcua.").rsplit(".v", 1)[0] for t in REGISTRY}
    assert expected <= registered
    assert all(t.startswith("vn.motcua.") and t.rsplit(".v", 1)[1].isdigit() for t in REGISTRY)


def test_schemas_are_written_one_file_per_type(tmp_path) -> None:  # noqa: ANN001
    files = write_schemas(tmp_path)
    assert len(files) == len(REGISTRY)
    schema = json.loads((tmp_path / "vn.motcua.dossier.received.v1.schema.json").read_text(encoding="utf-8"))
    assert "applicant_name" in schema["required"]
    assert schema["properties"]["channel"]["enum"] == ["counter", "online", "postal"]
    assert json_schemas()["vn.motcua.payment.confirmed.v1"]["properties"]["channel"]["enum"] == ["online", "counter"]
