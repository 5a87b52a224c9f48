"""aiokafka producer, consumer and admin factories (one place for transport security), and the topic policy."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context

from shared.settings import ServiceSettings

log = logging.getLogger("motcua.kafka")

# CreateTopics with replication factor -1 (and no assignment): the broker applies its own default.replication.factor
# (KIP-464). aiokafka's NewTopic refuses -1 without an assignment, an older rule, so the value is set after it.
CLUSTER_DEFAULT_REPLICATION = -1


class MissingTopicsError(RuntimeError):
    """Topics a production service needs do not exist; it never creates them (the topic operator does)."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        super().__init__(
            f"Kafka topic(s) {', '.join(topics)} do not exist; in production the services never create topics: "
            "declare them as KafkaTopic resources (deploy/k8s/base/kafka) so they get the cluster's replication"
        )


def connection_options(settings: ServiceSettings) -> dict[str, Any]:
    """What every Kafka client of this service is given: bootstrap servers, transport and authentication."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings)
    if settings.kafka_security_protocol == "SASL_SSL":
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options


def ssl_context(settings: ServiceSettings) -> ssl.SSLContext:
    """Checks the broker's certificate and host name against KAFKA_SSL_CAFILE (the system's CAs when unset).

    With KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE the client also presents its own certificate (mutual TLS).
    """
    return create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica; idempotence per settings (Tansu refuses it)."""
    return AIOKafkaProducer(
        **connection_options(settings),
        client_id=f"motcua-{settings.service}-relay",
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=2,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
    )


def make_consumer(settings: ServiceSettings, topics: list[str]) -> AIOKafkaConsumer:
    """A consumer in the service's group that commits offsets only by hand."""
    return AIOKafkaConsumer(
        *topics,
        **connection_options(settings),
        client_id=f"motcua-{settings.service}-consumer",
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(settings.kafka_session_timeout_ms // 5, 100),
        metadata_max_age_ms=5000,
        max_poll_records=500,
        retry_backoff_ms=200,
    )


def make_admin(settings: ServiceSettings) -> AIOKafkaAdminClient:
    """An admin client with the same transport and credentials as the producer and the consumer."""
    return AIOKafkaAdminClient(
        **connection_options(settings), client_id=f"motcua-{settings.service}-admin", request_timeout_ms=10000
    )


async def ensure_topics(settings: ServiceSettings, topics: list[str]) -> None:
    """Make sure the topics exist, by the topic policy.

    Production never creates a topic: a missing one raises :class:`MissingTopicsError` naming it (the topic
    operator owns topics, with the cluster's replication and ``min.insync.replicas``). Development and test stacks
    create missing topics (a restarted in-memory broker starts empty) with the cluster's default replication
    factor, never a hard-coded 1.
    """
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(t for t in set(topics) if t not in existing)
        if not missing:
            return
        if settings.environment == "production":
            raise MissingTopicsError(missing)
        new = []
        for name in missing:
            topic = NewTopic(name=name, num_partitions=settings.kafka_topic_partitions, replication_factor=1)
            topic.replication_factor = CLUSTER_DEFAULT_REPLICATION
            new.append(topic)
        response = await admin.create_topics(new)
        for entry in response.topic_errors:
            topic, code = entry[0], entry[1]
            if code not in (0, TopicAlreadyExistsError.errno):
                raise for_code(code)(
                    f"cannot create topic {topic} with the cluster's default replication factor; "
                    "create it with the broker's tools"
                )
        log.info("created topics %s (the cluster's default replication factor)", missing)
    finally:
        await admin.close()
