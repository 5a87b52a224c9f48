"""A revoked certified copy: its check page says so (when and why) and calls it not valid; the command and the event.

The browser test (tests/e2e/test_pages_digitization.py) revokes a copy through the API and reloads its page;
tests/e2e/test_copy_revocation.py drives the route itself (roles, idempotency, 409, 404) and reporting's timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from services.digitization import pages, signing
from services.digitization import store as digitization_store
from services.digitization.models import RevokeCopy
from services.digitization.settings import DigitizationSettings
from shared.events import CopyRevoked, event_class

UNIT = "000.00.12.H56"
SIGNED = datetime(2026, 3, 2, 1, 5, tzinfo=UTC)  # 08 giờ 05 phút in Việt Nam
REVOKED = datetime(2026, 3, 9, 2, 30, tzinfo=UTC)  # 09 giờ 30 phút
SCRIPT = "<script>alert(1)</script>"


def copy_row(**revocation: object) -> digitization_store.Document:
    sa.orm.configure_mappers()
    return digitization_store.Document.model_construct(
        id="6f1c2d3e-0000-4000-8000-000000000002", dossier_code=f"{UNIT}-260302-0002", unit=UNIT, kind="certified_copy",
        paper_name="Bằng tốt nghiệp đại học", owner_key="k" * 64, owner_hint="*********567", sha256="cd" * 32,
        signer="UBND phường Phú Hội", certificate_serial="1A2B", signed_at=SIGNED, copy_number="00002/2026-SCT/BSĐT",
        **revocation,
    )  # fmt: skip


def intact() -> signing.SignatureCheck:
    report = signing.SignatureReport(
        field="motcua-copy-2", valid=True, intact=True, trusted=True, signer="UBND phường Phú Hội", certificate_serial="1A2B",
        signing_time=SIGNED, covers_whole_file=True, modified_after_signing=False, changes_allowed=True, summary="ok",
    )  # fmt: skip
    return signing.SignatureCheck(sha256="cd" * 32, sha256_matches=True, reports=[report])


def render(doc: digitization_store.Document) -> tuple[pages.CopyCheckView, str]:
    view = pages.copy_check_view(doc, intact(), DigitizationSettings(environment="test"))
    return view, pages.PAGES.html("copy_check.html", {"v": view, "unit_name": view.agency})


def test_a_copy_nobody_revoked_says_so_and_stays_valid() -> None:
    view, html = render(copy_row())
    assert view.verdict.valid and not view.verdict.revoked
    assert "Chưa ghi nhận việc thu hồi bản sao này." in html and "đã bị thu hồi" not in html


def test_a_revoked_copy_with_an_intact_signature_is_not_valid_and_says_when_and_why() -> None:
    view, html = render(copy_row(revoked_at=REVOKED, revoked_by="lanh-dao@example", revocation_reason=f"Cấp nhầm {SCRIPT}"))
    assert not view.verdict.valid and view.verdict.revoked and view.verdict.problems == ()
    assert view.signature_valid, "the signature itself is still intact: the page says so in its facts"
    assert 'id="hieu-luc">Không hợp lệ<' in html and "<strong>Bản sao đã bị thu hồi</strong>" in html
    assert "09 giờ 30 phút, ngày 09 tháng 3 năm 2026" in html
    assert "Cấp nhầm &lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html
    assert 'id="ly-do"' not in html, "no signature problem is listed for a copy whose signature is intact"
    assert "lanh-dao@example" not in html, "who revoked it is the register's, not the public's"
    for private in ("567", "Bằng tốt nghiệp", f"{UNIT}-260302-0002", "k" * 64):
        assert private not in html


def test_a_revocation_needs_a_reason() -> None:
    assert RevokeCopy(reason="  Cấp nhầm người  ").reason == "Cấp nhầm người"
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(ValidationError):
            RevokeCopy(reason=reason)


def test_copy_revoked_is_a_registered_dossier_event() -> None:
    assert event_class("vn.motcua.copy.revoked.v1") is CopyRevoked
    event = CopyRevoked(
        dossier_code=f"{UNIT}-260302-0002", unit=UNIT, occurred_at=REVOKED, document_id="6f1c2d3e-0000-4000-8000-000000000002",
        reason="Cấp nhầm người", revoked_by="lanh-dao@example",
    )  # fmt: skip
    assert event.subject == f"{UNIT}-260302-0002"


@pytest.mark.parametrize("service", ["payments", "workflow"])
async def test_services_that_listen_to_digitization_without_a_handler_ignore_it_rather_than_dead_letter_it(service: str) -> None:
    """Payments and workflow read digitization's topic for other events: ``copy.revoked`` is known, so ignored.

    (Reporting chains every dossier event, ``copy.revoked`` included: tests/e2e/test_copy_revocation.py.)
    """
    from unittest.mock import MagicMock

    from aiokafka import ConsumerRecord

    from services.payments import handlers as payments
    from services.payments.settings import PaymentsSettings
    from services.workflow import handlers as workflow
    from services.workflow.settings import WorkflowSettings
    from shared.consumer import EventConsumer
    from shared.envelope import Envelope
    from shared.events import DIGITIZATION

    module, settings = {"payments": (payments, PaymentsSettings), "workflow": (workflow, WorkflowSettings)}[service]
    subscription = module.subscriptions(MagicMock())
    assert DIGITIZATION in subscription.producers and CopyRevoked not in subscription.handlers
    event = CopyRevoked(
        dossier_code=f"{UNIT}-260302-0002", unit=UNIT, occurred_at=REVOKED, document_id="6f1c2d3e-0000-4000-8000-000000000002",
        reason="Cấp nhầm người", revoked_by="lanh-dao@example",
    )  # fmt: skip
    envelope = Envelope.wrap(event, source="/motcua/digitization", time=REVOKED, traceparent=None, actor="lanh-dao@example")
    record = ConsumerRecord(
        topic="digitization", partition=0, offset=7, timestamp=0, timestamp_type=0, key=event.subject.encode(),
        value=envelope.kafka_value(), checksum=None, serialized_key_size=0, serialized_value_size=0,
        headers=envelope.kafka_headers(),
    )  # fmt: skip
    db = MagicMock()  # a dead letter or a handler would need the database: neither may happen
    consumer = EventConsumer(settings(environment="test"), db, subscription)  # type: ignore[call-arg]
    await consumer.handle_record(record)
    assert db.mock_calls == []
