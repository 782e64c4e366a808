"""Kafka as another clinic system sees it: publish validated events, read what the services published.

Used by the sample journey (`clinic run`), the end-to-end tests and the integration tests; an
integrator's Python code can use it the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from clinic.operations import read_more
from clinic.polling import eventually
from shared.contracts import EventData, dlq_topic, topic_of
from shared.envelope import CloudEvent, decode, encode, new_event
from shared.runtime.kafka import ensure_topics
from shared.runtime.kafka_client import Kafka, close_within


class EventClient:
    """Before it first publishes to or reads a topic, it creates the topic (with ``partitions``) if it
    does not exist: the broker creates none on demand, and another clinic system may publish its first
    event before the service that consumes it has started."""

    def __init__(self, kafka: Kafka | str, prefix: str, partitions: int = 3) -> None:
        """``kafka``: ``Kafka.of(settings)`` (a bare bootstrap string connects with PLAINTEXT)."""
        self.kafka = kafka if isinstance(kafka, Kafka) else Kafka.of(kafka)
        self.bootstrap = self.kafka.bootstrap
        self.prefix = prefix
        self.partitions = partitions
        self.producer = self.kafka.producer(enable_idempotence=True, acks="all")
        self._readers: dict[str, tuple[AIOKafkaConsumer, list[ConsumerRecord], dict[TopicPartition, int]]] = {}
        self._topics: set[str] = set()

    async def start(self) -> None:
        try:
            await self.producer.start()
        except Exception:  # a broker that does not answer: close what was opened, then say so
            await self.producer.stop()
            raise

    async def stop(self) -> None:
        await self.producer.stop()
        for consumer, _, _ in self._readers.values():
            await close_within(consumer, "event client reader")

    async def __aenter__(self) -> EventClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def topic(self, model: type[EventData] | str) -> str:
        return topic_of(model, self.prefix)

    async def publish(self, data: EventData, *, source: str = "/clinic/tests", **attributes: Any) -> CloudEvent:
        event = new_event(data, source=source, **attributes)
        await self.send_event(event)
        return event

    async def send_event(self, event: CloudEvent) -> None:
        value, headers = encode(event)
        await self.send(self.topic(event.type), value, headers, key=event.key)

    async def send(self, topic: str, value: bytes | None, headers: list[tuple[str, bytes]], key: str | None = None) -> None:
        await self.ensure(topic)
        await self.producer.send_and_wait(topic, value, key=key.encode() if key else None, headers=headers)

    async def ensure(self, *topics: str) -> None:
        """Create the topics that do not exist yet (once per client and topic)."""
        new = [t for t in topics if t not in self._topics]
        if new:
            await ensure_topics(self.bootstrap, new, self.partitions, options=self.kafka.options)
            self._topics.update(new)

    async def records(self, topic: str, attempt_seconds: float = 8.0, attempts: int = 3) -> list[ConsumerRecord]:
        """Every record on the topic up to its current end (read from the beginning, without a group).

        A read that stalls (seen on a just-created topic while its partition leaders settle) is
        abandoned and retried with a fresh reader, rather than trusted to honour cancellation."""
        for attempt in range(1, attempts + 1):
            task = asyncio.ensure_future(self._read(topic))
            done, _ = await asyncio.wait({task}, timeout=attempt_seconds)
            if task in done:
                return task.result()
            task.cancel()
            self._readers.pop(topic, None)  # abandoned, not stopped: stopping may stall the same way
            if attempt == attempts:
                raise TimeoutError(f"reading {topic} stalled {attempts} times for {attempt_seconds:.0f}s")
        return []

    async def _read(self, topic: str) -> list[ConsumerRecord]:
        if topic not in self._readers:
            await self.ensure(topic)
            consumer = self.kafka.consumer(enable_auto_commit=False)
            try:
                await consumer.start()
                partitions = await eventually(lambda: _partitions(consumer, topic), what=f"metadata of {topic}")
            except Exception:
                await close_within(consumer, "event client reader")
                raise
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            self._readers[topic] = (consumer, [], {})
        consumer, seen, positions = self._readers[topic]
        seen.extend(await read_more(consumer, positions))
        return list(seen)

    async def events(self, model: type[EventData], where: Callable[[Any], bool] = lambda data: True) -> list[CloudEvent]:
        found = []
        for record in await self.records(self.topic(model)):
            event = decode(record.value, record.headers)
            if where(event.data):
                found.append(event)
        return found

    async def wait_for(self, model: type[EventData], where: Callable[[Any], bool] = lambda data: True, *, count: int = 1, timeout: float = 30.0) -> list[CloudEvent]:
        async def probe() -> list[CloudEvent] | None:
            found = await self.events(model, where)
            return found if len(found) >= count else None

        return await eventually(probe, timeout=timeout, what=f"{count} x {model.__name__}")

    async def dead_letters(self, model: type[EventData]) -> list[ConsumerRecord]:
        return await self.records(dlq_topic(self.topic(model)))


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int] | None:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic)
