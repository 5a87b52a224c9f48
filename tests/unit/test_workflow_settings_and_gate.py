"""Workflow settings refuse placeholder secrets in production; the result gate reads payments in any order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.workflow import domain, store
from services.workflow.handlers import to_state
from services.workflow.settings import WorkflowSettings

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
KEY = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"


def test_production_refuses_a_placeholder_rating_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")  # production refuses plaintext Kafka
    monkeypatch.setenv("JWT_PUBLIC_KEY", KEY)
    monkeypatch.setenv("WORKFLOW_PAGE_FORM_SECRET", "f" * 40)
    for placeholder in ("dev", "changeme", "short-but-not-placeholder"):
        monkeypatch.setenv("WORKFLOW_RATING_LINK_SECRET", placeholder)
        with pytest.raises(ValueError, match="WORKFLOW_RATING_LINK_SECRET"):
            WorkflowSettings()
    monkeypatch.setenv("WORKFLOW_RATING_LINK_SECRET", "k" * 40)
    assert WorkflowSettings().rating_link_secret == "k" * 40


def test_sweep_and_warning_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKFLOW_SWEEP_INTERVAL_SECONDS", "30")
    monkeypatch.setenv("WORKFLOW_WARNING_THRESHOLD_WORKING_HOURS", "16")
    monkeypatch.setenv("WORKFLOW_RUN_SWEEP", "false")
    settings = WorkflowSettings()
    assert (settings.sweep_interval_seconds, settings.warning_threshold_working_hours, settings.run_sweep) == (30, 16, False)
    assert not hasattr(settings, "feedback_deadline_working_days")  # the law in force says it (shared.rules), not a setting


def _case(**overrides: object) -> store.Case:
    values: dict[str, object] = {
        "code": "000.00.12.H56-260302-0001",
        "unit": "000.00.12.H56",
        "procedure_code": "1.004194",
        "procedure_name": "Đăng ký tạm trú",
        "applicant_name": "A",
        "channel": "counter",
        "status": "approved",
        "received_at": T0,
        "due_at": T0 + timedelta(days=3),
        "due_at_original": T0 + timedelta(days=3),
        "approved_at": T0,
    }
    values.update(overrides)
    return store.Case(**values)


def _payment(pid: str, **times: datetime) -> store.CasePayment:
    return store.CasePayment(case_code="000.00.12.H56-260302-0001", payment_id=pid, **times)


def test_no_fee_means_nothing_to_pay() -> None:
    state = to_state(_case(), T0, [])
    assert not state.fee_due and domain.gate_missing(state) == []


def test_a_fee_assessed_at_intake_waits_for_a_confirmed_payment() -> None:
    assert domain.gate_missing(to_state(_case(fee_due_amount=50_000), T0, [])) == ["payment"]
    paid = [_payment("p1", requested_at=T0, confirmed_at=T0 + timedelta(hours=1))]
    assert domain.gate_missing(to_state(_case(fee_due_amount=50_000), T0, paid)) == []


def test_a_confirmation_that_arrives_before_its_request_still_counts() -> None:
    assert to_state(_case(), T0, [_payment("p1", confirmed_at=T0)]).paid_at == T0


def test_every_live_request_must_be_paid_and_a_replaced_one_no_longer_counts() -> None:
    payments = [_payment("p1", requested_at=T0, confirmed_at=T0), _payment("p2", requested_at=T0)]
    assert domain.gate_missing(to_state(_case(), T0, payments)) == ["payment"]
    expired = [_payment("p1", requested_at=T0, replaced_at=T0), _payment("p2", requested_at=T0, confirmed_at=T0)]
    assert domain.gate_missing(to_state(_case(), T0, expired)) == []


def test_a_refunded_payment_is_neither_due_nor_paid() -> None:
    state = to_state(_case(), T0, [_payment("p1", requested_at=T0, confirmed_at=T0, refunded_at=T0)])
    assert not state.fee_due and state.paid_at is None
