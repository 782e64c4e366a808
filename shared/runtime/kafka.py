"""Kafka plumbing shared by services and the CLI: the broker factory and topic creation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import errors
from aiokafka.admin import NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from shared.runtime.kafka_client import Kafka, broker_security
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
        security=broker_security(settings),
    )


async def ensure_topics(
    bootstrap: str, topics: list[str], partitions: int, replication: int = 1, *,
    options: Mapping[str, Any] | None = None, configs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet (with ``configs[topic]``, see ``topic_configs``). Returns
    those created. ``options`` are the client's security options (``Kafka.options``). A refusal (no
    CREATE grant on a topic, an invalid config) is raised as the broker's error, naming the topic."""
    admin = Kafka(bootstrap, options or {}).admin(client_id="clinic-admin")
    try:  # a failed start is closed too
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            response = await admin.create_topics([NewTopic(t, partitions, replication, topic_configs=dict((configs or {}).get(t, {}))) for t in missing])
            for topic, code, *_ in response.topic_errors:
                error = errors.for_code(code)
                if error is not errors.NoError and error is not errors.TopicAlreadyExistsError:  # created meanwhile: fine
                    raise error(topic)
            log.debug("created topics", extra={"count": len(missing)})
        return missing
    finally:
        await admin.close()
