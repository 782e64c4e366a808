"""Kafka plumbing shared by services and the CLI: the broker factory and topic creation."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from shared.settings import Settings

log = logging.getLogger("clinic.kafka")


def make_broker(settings: Settings, *, client_id: str) -> KafkaBroker:
    """A broker whose producer is idempotent with acks=all and whose consumers commit only when told.

    FastStream's Kafka default (ACK_FIRST) commits before the handler runs; that would lose an event
    whose handler then failed, so the policy is explicit here and the runtime acknowledges after the
    handler's effects are durable.
    """
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        ack_policy=AckPolicy.MANUAL,
        linger_ms=5,
        graceful_timeout=15.0,
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
    )


async def ensure_topics(bootstrap: str, topics: list[str], partitions: int, replication: int = 1) -> list[str]:
    """Create the topics that do not exist yet. Returns those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="clinic-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
            except TopicAlreadyExistsError:
                pass
            log.debug("created topics", extra={"count": len(missing)})
        return missing
    finally:
        await admin.close()
