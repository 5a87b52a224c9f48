"""The services talk to Kafka over TLS: a dossier received by intake reaches workflow through a TLS-only broker.

The broker is the local Tansu behind a TLS listener (motcua/devstack.py explains why the TLS is terminated in front
of it); its certificate is signed by a CA made here. A client that does not trust that CA, or that speaks plaintext,
gets nothing from it. The same stack serves intake's /metrics on a port of its own (METRICS_PORT), and a production
service whose topic does not exist refuses to start, naming the topic.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.helpers import create_ssl_context
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.kafka import connection_options, ensure_topics, make_admin
from shared.settings import ServiceSettings
from tests.support.stack import Stack, eventually, random_unit


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _authority(folder: Path, common_name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA; its certificate's PEM file, its key and its certificate."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False)
    cert = (
        x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{common_name.replace(' ', '-')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def _server_certificate(folder: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[Path, Path]:
    """The broker's certificate for 127.0.0.1 and localhost, signed by the CA: (certificate, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder().subject_name(_name("motcua-kafka")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / "broker.pem", folder / "broker.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The cluster CA, the broker's certificate and key, and a CA that signed nothing of ours."""
    folder = tmp_path_factory.mktemp("pki")
    ca_path, ca_key, ca = _authority(folder, "motcua test cluster CA")
    cert, key = _server_certificate(folder, ca_key, ca)
    stranger, _, _ = _authority(folder, "some other CA")
    return {"ca": ca_path, "cert": cert, "key": key, "stranger": stranger}


@pytest.fixture(scope="module")
def tls_broker(pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A second local broker whose only listener is TLS."""
    server = EmbeddedBroker(port=free_port(), log_path=tmp_path_factory.mktemp("tls-broker") / "broker.log",
                            tls=(pki["cert"], pki["key"]))
    server.start()
    yield server
    server.stop()


def _tls_env(pki: dict[str, Path]) -> dict[str, str]:
    return {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(pki["ca"])}


@pytest.fixture(scope="module")
async def tls_stack(
    postgres: EmbeddedPostgres, tls_broker: EmbeddedBroker, pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Intake and workflow as real processes whose relay and consumer use the TLS broker; intake's metrics apart."""
    env = {**_tls_env(pki), "INTAKE_METRICS_PORT": str(free_port())}  # only intake reads INTAKE_-prefixed settings
    stack = Stack.isolated(postgres, tls_broker, tmp_path_factory.mktemp("tls-stack"),
                           services=("intake", "workflow"), env=env)
    await stack.start()
    yield stack
    stack.stop()


async def test_a_received_dossier_reaches_workflow_over_tls(tls_stack: Stack) -> None:
    unit = random_unit()
    async with tls_stack.client("intake", "clerk", units=[unit]) as intake:
        response = await intake.post("/api/v1/dossiers", json={
            "procedure_code": "1.004194", "applicant_name": "Trần Văn Đức", "channel": "counter"})
    assert response.status_code == 201, response.text
    code = response.json()["code"]
    async with tls_stack.client("workflow", "specialist", units=[unit]) as workflow:

        async def _case() -> dict | None:
            r = await workflow.get(f"/api/v1/cases/{code}")
            return r.json() if r.status_code == 200 else None

        case = await eventually(_case)
    assert (case["status"], case["applicant_name"]) == ("accepted", "Trần Văn Đức")
    for service in ("intake", "workflow"):
        log = tls_stack.services[service].log_text()
        assert "CERTIFICATE_VERIFY_FAILED" not in log and "SSLError" not in log, log[-2000:]


async def test_the_services_created_their_topics_over_tls(tls_stack: Stack, pki: dict[str, Path]) -> None:
    settings = ServiceSettings(environment="test", kafka_bootstrap_servers=tls_stack.broker.bootstrap_servers,
                               kafka_security_protocol="SSL", kafka_ssl_cafile=pki["ca"])
    admin = make_admin(settings)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    assert {tls_stack.topic("intake"), tls_stack.topic("workflow")} <= topics


async def _bootstrap(**options: object) -> None:
    producer = AIOKafkaProducer(request_timeout_ms=3000, metadata_max_age_ms=3000, **options)  # type: ignore[arg-type]
    try:
        await producer.start()
    finally:
        await producer.stop()


async def test_a_client_that_does_not_trust_the_cluster_ca_is_refused(tls_broker: EmbeddedBroker, pki: dict[str, Path]) -> None:
    trusting = ServiceSettings(environment="test", kafka_bootstrap_servers=tls_broker.bootstrap_servers,
                               kafka_security_protocol="SSL", kafka_ssl_cafile=pki["ca"])
    await _bootstrap(**connection_options(trusting))  # the control: the same call with the right CA connects
    stranger = trusting.model_copy(update={"kafka_ssl_cafile": pki["stranger"]})
    with pytest.raises(KafkaConnectionError):
        await _bootstrap(**connection_options(stranger))
    with pytest.raises(KafkaConnectionError):  # the system's CAs do not know the cluster's CA either
        await _bootstrap(bootstrap_servers=tls_broker.bootstrap_servers, security_protocol="SSL",
                         ssl_context=create_ssl_context())


async def test_a_plaintext_client_gets_nothing_from_the_tls_listener(tls_broker: EmbeddedBroker) -> None:
    with pytest.raises(KafkaConnectionError):
        await _bootstrap(bootstrap_servers=tls_broker.bootstrap_servers)


async def test_metrics_are_on_their_own_port_and_not_on_the_main_one(tls_stack: Stack) -> None:
    intake = tls_stack.services["intake"]
    async with httpx.AsyncClient(timeout=5) as client:
        apart = await client.get(f"http://127.0.0.1:{intake.env['INTAKE_METRICS_PORT']}/metrics")
        main = await client.get(f"{intake.url}/metrics")
        health = await client.get(f"{intake.url}/healthz")
    assert apart.status_code == 200
    assert 'motcua_http_request_duration_seconds_count{method="GET",route="/readyz",service="intake",status="200"}' in apart.text
    assert main.status_code == 404
    assert health.status_code == 200, "the main port still serves everything else"


async def test_production_refuses_to_start_when_its_topic_is_missing(
    postgres: EmbeddedPostgres, tls_broker: EmbeddedBroker, pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = f"missing{uuid.uuid4().hex[:8]}"
    stack = Stack(postgres, tls_broker, tmp_path_factory.mktemp("prod-stack"), namespace=namespace,
                  database_suffix=f"_{namespace}", services=("intake",), environment="production", env=_tls_env(pki))
    await asyncio.to_thread(stack.prepare)
    intake = stack.services["intake"]
    intake.start()
    try:
        code = await asyncio.to_thread(intake.process.wait, 60)  # type: ignore[union-attr]
    finally:
        intake.kill()
    assert code != 0
    log = intake.log_text()
    assert f"{namespace}.intake" in log and "never create topics" in log, intake.log_tail()
    settings = ServiceSettings(environment="test", kafka_bootstrap_servers=tls_broker.bootstrap_servers,
                               kafka_security_protocol="SSL", kafka_ssl_cafile=pki["ca"], kafka_topic_namespace=namespace)
    admin = make_admin(settings)
    await admin.start()
    try:
        assert f"{namespace}.intake" not in await admin.list_topics(), "production created nothing"
    finally:
        await admin.close()
    # The same service outside production creates it, with the cluster's default replication (Tansu: one replica).
    await ensure_topics(settings, [f"{namespace}.intake"])
    admin = make_admin(settings)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([f"{namespace}.intake"])
    finally:
        await admin.close()
    assert described["error_code"] == 0 and len(described["partitions"]) == settings.kafka_topic_partitions
    assert all(len(p["replicas"]) == 1 for p in described["partitions"]), "the single broker's default"
