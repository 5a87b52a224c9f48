"""Kafka transport settings: production refuses plaintext, SASL needs its user, every client gets the same options."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.kafka import connection_options
from shared.settings import ServiceSettings

KEY = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
PRODUCTION = {"environment": "production", "jwt_public_key": KEY}


def test_production_refuses_plaintext_kafka_and_says_what_to_set() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SECURITY_PROTOCOL=PLAINTEXT is refused in production: set SSL or SASL_SSL"):
        ServiceSettings(**PRODUCTION)
    assert ServiceSettings(**PRODUCTION, kafka_security_protocol="SSL").kafka_security_protocol == "SSL"


def test_development_and_test_stacks_keep_plaintext_by_default() -> None:
    for environment in ("development", "test"):
        assert ServiceSettings(environment=environment).kafka_security_protocol == "PLAINTEXT"


def test_sasl_needs_a_user_and_a_password() -> None:
    with pytest.raises(ValidationError, match="SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        ServiceSettings(**PRODUCTION, kafka_security_protocol="SASL_SSL", kafka_sasl_username="motcua-intake")
    settings = ServiceSettings(
        **PRODUCTION, kafka_security_protocol="SASL_SSL", kafka_sasl_username="motcua-intake", kafka_sasl_password="p" * 32
    )
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"


def test_a_client_certificate_needs_its_key_and_tls(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together"):
        ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_certfile=tmp_path / "client.pem")
    with pytest.raises(ValidationError, match="KAFKA_SSL_CERTFILE needs KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"):
        ServiceSettings(kafka_ssl_certfile=tmp_path / "client.pem", kafka_ssl_keyfile=tmp_path / "client.key")


def test_the_metrics_port_must_differ_from_the_main_one() -> None:
    with pytest.raises(ValidationError, match="METRICS_PORT must differ from PORT"):
        ServiceSettings(port=8080, metrics_port=8080)
    assert ServiceSettings(port=8080, metrics_port=9464).metrics_port == 9464


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "motcua-intake")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-a-secret")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", "/etc/motcua/kafka/ca.crt")
    monkeypatch.setenv("METRICS_PORT", "9464")
    settings = ServiceSettings()
    assert (settings.kafka_sasl_mechanism, settings.kafka_sasl_username) == ("SCRAM-SHA-256", "motcua-intake")
    assert settings.kafka_ssl_cafile == Path("/etc/motcua/kafka/ca.crt") and settings.metrics_port == 9464


def test_plaintext_clients_get_no_tls_and_no_credentials() -> None:
    options = connection_options(ServiceSettings(kafka_bootstrap_servers="kafka:9092"))
    assert options == {"bootstrap_servers": "kafka:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_clients_verify_the_broker_and_authenticate() -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="motcua-payments", kafka_sasl_password="s" * 32
    )
    options = connection_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "motcua-payments", "s" * 32)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_missing_ca_file_fails_at_once(tmp_path: Path) -> None:
    settings = ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "nowhere.pem")
    with pytest.raises(FileNotFoundError):
        connection_options(settings)
