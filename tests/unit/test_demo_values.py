"""Settings: production refuses the demonstration values that ``make run`` configures (motcua/demo.py).

The values are read from the environment exactly as ``motcua run`` hands them to the services; each one that marks a
demonstration (a collection account no bank holds, a bank's callback secret, the portal's webhook secret, the sinks'
sender, URL and token) makes the service that reads it refuse to start in production, and the whole set starts in
development, which is what ``make run`` uses.
"""

from __future__ import annotations

import json

import pytest

from motcua import demo
from motcua.registry import SERVICES, settings_class
from motcua.sink import SMS_PATH
from services.intake.settings import IntakeSettings
from services.payments.settings import PaymentsSettings
from shared.settings import is_demonstration
from services.workflow.settings import WorkflowSettings
from shared.settings import ServiceSettings

MAKE_RUN = demo.environment_of(demo.groups(smtp_port=8025, sms_url=f"http://127.0.0.1:8026{SMS_PATH}"))
# What a production pod of each service needs besides (its other settings have defaults).
PRODUCTION = {
    "ENVIRONMENT": "production",
    "KAFKA_SECURITY_PROTOCOL": "SSL",
    "JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
    "WORKFLOW_RATING_LINK_SECRET": "9c1f0e7a4b2d8e6f1a3c5b7d9e0f2a4c6b8d0e1f",
    "WORKFLOW_PAGE_FORM_SECRET": "2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e0b2d4f6a8c",
}
# Each variable make run sets that production refuses, the service that reads it, and the setting its refusal names.
REFUSED = {
    "PAYMENTS_COLLECTION_ACCOUNT": (PaymentsSettings, "COLLECTION_ACCOUNT is the local stack's demonstration account"),
    "PAYMENTS_CALLBACK_SECRETS": (PaymentsSettings, "CALLBACK_SECRETS\\['demo-bank'\\] is the local stack's demonstration secret"),
    "INTAKE_PORTAL_WEBHOOK_SECRET": (IntakeSettings, "PORTAL_WEBHOOK_SECRET is a demonstration value"),
    "WORKFLOW_SMTP_FROM": (WorkflowSettings, "SMTP_FROM is a demonstration value"),
    "WORKFLOW_SMS_PROVIDER_URL": (WorkflowSettings, "SMS_PROVIDER_URL is a demonstration value"),
    "WORKFLOW_SMS_PROVIDER_TOKEN": (WorkflowSettings, "SMS_PROVIDER_TOKEN is a demonstration value"),
}


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A production environment, with nothing of make run's in it."""
    for name in {*MAKE_RUN, *PRODUCTION}:
        monkeypatch.delenv(name, raising=False)
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_every_value_make_run_invents_is_refused_by_some_service() -> None:
    # The sink's address and port are not secrets and may well be a production relay's; all the rest is marked.
    unmarked = {name for name, value in MAKE_RUN.items() if not is_demonstration(value)}
    assert unmarked == {"WORKFLOW_SMTP_HOST", "WORKFLOW_SMTP_PORT", "WORKFLOW_SMTP_TLS"}
    assert set(MAKE_RUN) - unmarked == set(REFUSED)


@pytest.mark.parametrize("variable", sorted(REFUSED))
def test_production_refuses_to_start_with_a_demonstration_value(production: pytest.MonkeyPatch, variable: str) -> None:
    settings, message = REFUSED[variable]
    settings()  # production as configured starts
    production.setenv(variable, MAKE_RUN[variable])
    with pytest.raises(ValueError, match=message):
        settings()


def test_the_whole_make_run_environment_starts_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in MAKE_RUN.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ENVIRONMENT", "development")
    loaded: dict[str, ServiceSettings] = {name: settings_class(name)() for name in SERVICES}
    payments = loaded["payments"]
    assert isinstance(payments, PaymentsSettings) and payments.collection_account is not None
    assert payments.collection_account.account == "MOTCUADEMO" and payments.callback_secrets == {"demo-bank": demo.BANK_SECRET}
    intake = loaded["intake"]
    assert isinstance(intake, IntakeSettings) and intake.portal_webhook_secret == demo.PORTAL_SECRET
    workflow = loaded["workflow"]
    assert isinstance(workflow, WorkflowSettings)
    assert (workflow.smtp_host, workflow.smtp_port, workflow.smtp_tls) == ("127.0.0.1", 8025, "none")
    assert workflow.sms_provider_url == f"http://127.0.0.1:8026{SMS_PATH}"


def test_a_demonstration_account_of_one_unit_or_a_disguised_mark_is_refused_too(production: pytest.MonkeyPatch) -> None:
    production.setenv("PAYMENTS_UNIT_COLLECTION_ACCOUNTS", json.dumps({"000.00.12.H56": demo.COLLECTION_ACCOUNT}))
    with pytest.raises(ValueError, match="UNIT_COLLECTION_ACCOUNTS\\['000.00.12.H56'\\] is the local stack's demonstration account"):
        PaymentsSettings()
    production.delenv("PAYMENTS_UNIT_COLLECTION_ACCOUNTS")
    production.setenv("PAYMENTS_CALLBACK_SECRETS", json.dumps({"vietinbank": "Motcua_Demo bank secret, copied"}))
    with pytest.raises(ValueError, match="demonstration secret"):
        PaymentsSettings()
    production.setenv("INTAKE_PORTAL_SYNC_SECRET", "MOTCUA-DEMO-portal-sync")
    with pytest.raises(ValueError, match="PORTAL_SYNC_SECRET is a demonstration value"):
        IntakeSettings()


def test_real_values_start_in_production(production: pytest.MonkeyPatch) -> None:
    production.setenv("PAYMENTS_COLLECTION_ACCOUNT", json.dumps({"bin": "970415", "account": "113366668888", "name": "UBND PHƯỜNG BẾN NGHÉ"}))
    production.setenv("PAYMENTS_CALLBACK_SECRETS", json.dumps({"vietinbank": "5f0c9a1e7b3d2c8a4e6f1b0d"}))
    production.setenv("INTAKE_PORTAL_WEBHOOK_SECRET", "a3e1c9f7b5d2e8a6c4f0b1d3")
    production.setenv("WORKFLOW_SMTP_HOST", "127.0.0.1")  # a relay beside the pod is a production set-up
    production.setenv("WORKFLOW_SMTP_PORT", "25")
    production.setenv("WORKFLOW_SMTP_TLS", "none")
    production.setenv("WORKFLOW_SMS_PROVIDER_URL", "https://sms.province.example/v1/sms")
    payments = PaymentsSettings()
    assert payments.collection_account is not None and payments.collection_account.account == "113366668888"
    assert IntakeSettings().portal_webhook_secret == "a3e1c9f7b5d2e8a6c4f0b1d3"
    assert WorkflowSettings().smtp_host == "127.0.0.1"
