"""Kafka plumbing shared by services and the CLI: the broker factory and topic creation."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber

from shared.runtime.kafka_client import Kafka, broker_security, close_within, topic_configs
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
        # a topic or partition change reaches the group within this, not aiokafka's default 5 minutes
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
        enable_idempotence=True,
        acks="all",
        ack_policy=AckPolicy.MANUAL,
        linger_ms=5,
        graceful_timeout=15.0,
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
        security=broker_security(settings),
    )


class PromptBatches(BatchSubscriber):
    """FastStream's batch subscriber without its pause after an empty poll.

    FastStream asks aiokafka for records with ``batch_timeout_ms`` as the wait, and when that wait ends with
    nothing it sleeps as long again before asking anew. aiokafka's ``getmany`` already returns as soon as
    records arrive, so that pause only delays a record that arrives during it (by up to the wait), and it
    made an idle service poll 25 times a second at the old 20 ms (about 2% of a core each). Here a poll
    that waited its time out is simply followed by the next; only a poll that came back empty at once
    (which aiokafka does not do while running) is followed by the rest of the wait, so nothing can spin.
    With it, ``CLINIC_CONSUME_WAIT_MS`` costs no latency and can be long. This overrides a FastStream method
    (``get_msg``), so the lock pins FastStream and ``tests/unit/test_prompt_batches.py`` checks the override."""

    __slots__ = ()

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord, ...]:
        wait = self.batch_timeout_ms / 1000
        started = time.monotonic()
        batches = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
        if batches:
            return tuple(record for records in batches.values() for record in records)
        rest = wait - (time.monotonic() - started)
        if rest > wait / 2 and self.running:
            await asyncio.sleep(rest)
        return ()


def prompt(subscriber: object) -> None:
    """Make a FastStream batch subscriber a ``PromptBatches`` (same state, one method different)."""
    if type(subscriber) is not BatchSubscriber:
        raise TypeError(f"expected FastStream's BatchSubscriber, got {type(subscriber).__name__}")
    subscriber.__class__ = PromptBatches


async def ensure_topics(
    bootstrap: str, topics: list[str], partitions: int, replication: int = 1, *,
    options: Mapping[str, Any] | None = None, configs: Mapping[str, Mapping[str, str]] | None = None, timeout: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet (with ``configs[topic]``, see ``topic_configs``), then wait
    until the broker serves metadata for every one of them with a leader for each partition. Returns
    those created here. ``options`` are the client's security options (``Kafka.options``).

    The broker runs without automatic topic creation, so whoever needs a topic creates it first (the
    services their inbound, dead-letter and outbound topics; the event client and the CLI what they
    publish to or read). Waiting until the topics are served matters as much as creating them: the
    controller confirms a creation before the broker's metadata cache has it, and a consumer group
    leader that computes the assignment in that window leaves the missing topic unassigned until its
    next metadata refresh (``metadata_max_age_ms``) -- the stall docs/liveness.md describes.

    A topic another process created in the meantime counts as existing; any other refusal (no CREATE
    grant, replication factor too high, an invalid name or config) is raised, naming the topic. A broker
    that does not serve them in ``timeout`` raises ``KafkaTimeoutError``, which callers treat as transient.
    """
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return []
    admin = Kafka(bootstrap, options or {}).admin(client_id="clinic-admin")
    try:  # a failed start is closed too
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        created: list[str] = []
        if missing:
            response = await admin.create_topics([NewTopic(t, partitions, replication, topic_configs=dict((configs or {}).get(t, {}))) for t in missing])
            for topic, code, *message in response.topic_errors:
                error = errors.for_code(code)
                if error is errors.NoError:
                    created.append(topic)
                elif error is errors.TopicAuthorizationFailedError:  # refusal() names the topic and the grant
                    raise error(topic)
                elif error is not errors.TopicAlreadyExistsError:  # created by someone else meanwhile: fine
                    raise error(f"creating topic {topic}: {message[0] if message and message[0] else error.__name__}")
            log.debug("created topics", extra={"count": len(created)})
        await _until_served(admin, wanted, timeout)
        return created
    finally:
        await close_within(admin, "topic check")


async def _until_served(admin: AIOKafkaAdminClient, topics: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(topics)
    while True:
        described = await admin.describe_topics(waiting)
        waiting = [t["topic"] for t in described if not _served(t)]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise errors.KafkaTimeoutError(f"{len(waiting)} topics not served with a leader for every partition after {timeout:.0f}s, e.g. {waiting[0]}")
        await asyncio.sleep(0.1)


def _served(topic: dict[str, Any]) -> bool:
    partitions = topic.get("partitions") or []
    return topic.get("error_code") == 0 and bool(partitions) and all(p.get("error_code") == 0 and p.get("leader", -1) >= 0 for p in partitions)


class Topics:
    """The topics one process has made sure exist. Any other topic it is about to publish to is created
    first, once (the broker creates none on demand): an event type its service does not declare, a
    deployment whose topics were deleted. After the first time it costs nothing."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.known: set[str] = set()

    async def ensure(self, topics: Iterable[str]) -> None:
        missing = sorted(set(topics) - self.known)
        if missing:
            s = self.settings
            kafka = Kafka.of(s)
            await ensure_topics(kafka.bootstrap, missing, s.topic_partitions, s.topic_replication, options=kafka.options, configs=topic_configs(s, missing))
            self.known.update(missing)
