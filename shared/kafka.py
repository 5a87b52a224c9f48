"""aiokafka producer and consumer factories, and topic creation."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from shared.settings import ServiceSettings

log = logging.getLogger("motcua.kafka")


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica; idempotence per settings (Tansu refuses it)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
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
        bootstrap_servers=settings.kafka_bootstrap_servers,
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


async def ensure_topics(settings: ServiceSettings, topics: list[str]) -> None:
    """Create the topics that do not exist yet (a restarted in-memory broker starts empty)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        new = [NewTopic(name=t, num_partitions=settings.kafka_topic_partitions, replication_factor=1) for t in missing]
        response = await admin.create_topics(new)
        for entry in response.topic_errors:
            topic, code = entry[0], entry[1]
            if code not in (0, TopicAlreadyExistsError.errno):
                raise for_code(code)(f"cannot create topic {topic}")
        log.info("created topics %s", missing)
    finally:
        await admin.close()
