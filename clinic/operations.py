"""What operators ask of Kafka: consumer lag, topic ends, dead letters and their replay, live events.

The CLI (`clinic lag`, `clinic dlq`, `clinic tail`, `clinic monitor`) is a thin layer over these.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAuthorizationFailedError
from aiokafka.structs import OffsetAndMetadata

from shared.contracts import DLQ_SUFFIX
from shared.runtime.kafka_client import Kafka

REPLAY_SERVICE = "dlq-replay"
REPLAY_GROUP = f"clinic.{REPLAY_SERVICE}"
"""The replay's progress group; a deployment with a topic prefix uses ``Settings.group_id(REPLAY_SERVICE)``."""
DLQ_HEADERS = ("dlq_reason", "dlq_error", "dlq_topic", "dlq_partition", "dlq_offset", "dlq_group", "dlq_service", "dlq_failed_at")


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)

    @property
    def service(self) -> str:
        return self.group.rsplit("clinic.", 1)[-1] if "clinic." in self.group else self.group


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    error: str
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    service: str
    failed_at: str
    event_id: str | None
    event_type: str | None
    record: ConsumerRecord
    replayed_from: str | None = None
    """Set when a replayed dead letter failed again: the dead letter (topic:partition:offset) it was replayed from."""

    @classmethod
    def of(cls, record: ConsumerRecord) -> DeadLetter:
        headers = _headers(record)
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", "replace") if record.key else None,
            reason=headers.get("dlq_reason", "?"),
            error=headers.get("dlq_error", ""),
            original_topic=headers.get("dlq_topic", record.topic.removesuffix(DLQ_SUFFIX)),
            original_partition=_int(headers.get("dlq_partition")),
            original_offset=_int(headers.get("dlq_offset")),
            service=headers.get("dlq_service", "?"),
            failed_at=headers.get("dlq_failed_at", ""),
            event_id=headers.get("ce_id"),
            event_type=headers.get("ce_type"),
            record=record,
            replayed_from=headers.get("dlq_replayed_from"),
        )


@contextlib.asynccontextmanager
async def admin(kafka: Kafka) -> AsyncIterator[AIOKafkaAdminClient]:
    client = kafka.admin(client_id="clinic-cli", request_timeout_ms=10000)
    try:  # a failed start is closed too, so nothing is left for the garbage collector to warn about
        await client.start()
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def reader(kafka: Kafka, group_id: str | None = None) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = kafka.consumer(group_id=group_id, enable_auto_commit=False, client_id="clinic-cli", request_timeout_ms=10000)
    try:
        await consumer.start()
        yield consumer
    finally:
        await _stop(consumer)


@contextlib.asynccontextmanager
async def writer(kafka: Kafka) -> AsyncIterator[AIOKafkaProducer]:
    producer = kafka.producer(enable_idempotence=True, acks="all", client_id="clinic-cli", request_timeout_ms=10000)
    try:
        await producer.start()
        yield producer
    finally:
        await producer.stop()


async def topics(kafka: Kafka, prefix: str = "") -> list[str]:
    async with admin(kafka) as client:
        names = await client.list_topics()
    return sorted(t for t in names if t.startswith(f"{prefix}clinic.") and not t.startswith("__"))


async def end_offsets(consumer: AIOKafkaConsumer, names: Iterable[str]) -> dict[TopicPartition, int]:
    partitions = []
    for topic in names:
        found = consumer.partitions_for_topic(topic)
        if found is None:
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(topic) or set()
        partitions.extend(TopicPartition(topic, p) for p in sorted(found))
    return await consumer.end_offsets(partitions) if partitions else {}


async def consumer_lag(kafka: Kafka, prefix: str = "", group: str | None = None) -> list[PartitionLag]:
    """Lag of every clinic consumer group (or one), per partition of the topics it has committed on."""
    async with admin(kafka) as client:
        groups = [group] if group else sorted(g[0] for g in await client.list_consumer_groups() if g[0].startswith(f"{prefix}clinic."))
        committed = {g: await client.list_consumer_group_offsets(g) for g in groups}
    async with reader(kafka) as consumer:
        rows = []
        for name, offsets in committed.items():
            ends = await end_offsets(consumer, {tp.topic for tp in offsets})
            for tp, end in sorted(ends.items(), key=lambda item: (item[0].topic, item[0].partition)):
                meta = offsets.get(tp)
                rows.append(PartitionLag(name, tp.topic, tp.partition, meta.offset if meta and meta.offset >= 0 else None, end))
    return rows


async def read_to_end(consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int]) -> list[ConsumerRecord]:
    """Records from the given start offsets up to the ends as they are now."""
    if not starts:
        return []
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    return await read_more(consumer, dict(starts))


async def read_more(consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int], timeout: float = 30.0) -> list[ConsumerRecord]:
    """Read the assigned partitions from where the consumer is up to (at least) their ends as they are now.

    Every record the consumer hands over is returned, including any written after the ends were asked
    for: the consumer's position has moved past them, so a record held back here would never be read
    again by a caller that reads on from here (the test readers do; this dropped events before).
    Positions are tracked from the records read (seeking explicitly when unknown), not asked of the
    consumer: asking can wait a long time on a just-created topic whose partition leaders are still
    being elected. A stall past ``timeout`` raises instead of hanging."""
    partitions = sorted(consumer.assignment())
    if not partitions:
        return []
    missing = [tp for tp in partitions if tp not in positions]
    if missing:
        for tp, offset in (await consumer.beginning_offsets(missing)).items():
            positions[tp] = offset
            consumer.seek(tp, offset)
    ends = await consumer.end_offsets(partitions)
    records: list[ConsumerRecord] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while [tp for tp in partitions if positions[tp] < ends[tp]]:
        if asyncio.get_running_loop().time() > deadline:
            behind = {f"{tp.topic}[{tp.partition}]": ends[tp] - positions[tp] for tp in partitions if positions[tp] < ends[tp]}
            raise TimeoutError(f"reading stalled for {timeout:.0f}s; records still to read: {behind}")
        for tp, batch in (await consumer.getmany(timeout_ms=200, max_records=1000)).items():
            records.extend(batch)
            if batch:
                positions[tp] = batch[-1].offset + 1
    return records


async def dead_letters(kafka: Kafka, prefix: str = "", topic: str | None = None) -> list[DeadLetter]:
    names = [topic] if topic else [t for t in await topics(kafka, prefix) if t.endswith(DLQ_SUFFIX)]
    async with reader(kafka) as consumer:
        ends = await end_offsets(consumer, names)
        records = await read_to_end(consumer, {tp: 0 for tp in ends})
    return [DeadLetter.of(r) for r in sorted(records, key=lambda r: (r.topic, r.timestamp, r.partition, r.offset))]


@dataclass(frozen=True)
class Selection:
    """Which dead letters a replay takes; every given criterion must match. Empty: all of them."""

    reasons: frozenset[str] = frozenset()
    event_ids: frozenset[str] = frozenset()
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.reasons or letter.reason in self.reasons)
            and (not self.event_ids or letter.event_id in self.event_ids)
            and (self.partition is None or letter.partition == self.partition)
            and (self.from_offset is None or letter.offset >= self.from_offset)
            and (self.to_offset is None or letter.offset <= self.to_offset)
        )


async def replay(
    kafka: Kafka, dlq: str, *, dry_run: bool = False, selection: Selection = Selection(), again: bool = False, group: str = REPLAY_GROUP,
) -> list[DeadLetter]:
    """Re-publish the selected dead letters of one DLQ topic not replayed before to their original topic.

    Progress is the replay group's committed offset on the DLQ topic: everything before it was replayed.
    Letters replayed beyond a letter left behind (a narrower selection) are named in the commit's
    metadata, so no run replays a dead letter twice unless ``again`` asks to. The original headers
    travel back (so does the CloudEvents id, which the consumer's inbox deduplicates), minus the dlq_*
    ones, plus where it was replayed from.
    """
    async with admin(kafka) as client:
        progress = await client.list_consumer_group_offsets(group)
    async with reader(kafka, group_id=group) as consumer:
        ends = await end_offsets(consumer, [dlq])
        committed = {tp: _progress(progress.get(tp)) for tp in ends}
        letters = [DeadLetter.of(r) for r in await read_to_end(consumer, {tp: 0 if again else committed[tp][0] for tp in ends})]
        done = {tp: set(replayed) for tp, (_, replayed) in committed.items()}
        chosen = [letter for letter in letters if selection.matches(letter) and (again or letter.offset not in done[_tp(letter)])]
        if dry_run or not chosen:
            return chosen
        async with writer(kafka) as producer:
            for letter in chosen:
                headers = [(k, v) for k, v in letter.record.headers if k not in DLQ_HEADERS]
                headers.append(("dlq_replayed_from", f"{letter.topic}:{letter.partition}:{letter.offset}".encode()))
                await producer.send_and_wait(letter.original_topic, letter.record.value, key=letter.record.key, headers=headers)
                done[_tp(letter)].add(letter.offset)
        commits = {}
        for tp, (offset, _) in committed.items():
            for position in sorted(letter.offset for letter in letters if _tp(letter) == tp and letter.offset >= offset):
                if position not in done[tp]:  # the offset moves over replayed letters up to the first one left behind
                    break
                offset = position + 1
            commits[tp] = OffsetAndMetadata(offset, _metadata(sorted(o for o in done[tp] if o >= offset)))
        await consumer.commit(commits)
    return chosen


def _tp(letter: DeadLetter) -> TopicPartition:
    return TopicPartition(letter.topic, letter.partition)


_REPLAYED = "replayed-offsets:"


def _progress(committed: OffsetAndMetadata | None) -> tuple[int, frozenset[int]]:
    if committed is None or committed.offset < 0:
        return 0, frozenset()
    listed = committed.metadata[len(_REPLAYED):] if committed.metadata.startswith(_REPLAYED) else ""
    return committed.offset, frozenset(int(o) for o in listed.split(",") if o.isdigit())


def _metadata(replayed_beyond: list[int]) -> str:
    text = _REPLAYED + ",".join(map(str, replayed_beyond))
    # the broker keeps at most offset.metadata.max.bytes (4096 by default); past that, those letters may be
    # replayed once more by a later run, which the consumers' inboxes absorb (same CloudEvents id)
    return text if len(text) <= 3500 else f"replayed {datetime.now(UTC).isoformat()}"


class NotFound(LookupError):
    """A topic or partition the broker does not have."""


async def follow(
    kafka: Kafka, names: list[str], *, start: str | int = "latest", partition: int | None = None, to_end: bool = False,
    positioned: asyncio.Event | None = None,
) -> AsyncIterator[ConsumerRecord]:
    """Records of the topics (or of one partition of each) from ``start`` ("earliest", "latest" or an
    offset) as they arrive; with ``to_end``, only up to the ends as they were when it started.
    ``positioned`` is set once the starting offsets are fixed, so a caller can publish without missing anything."""
    async with reader(kafka) as consumer:
        partitions = await _existing_partitions(consumer, names, partition)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        begins = await consumer.beginning_offsets(partitions) if partitions else {}
        positions = {}
        for tp in partitions:
            wanted = {"earliest": begins[tp], "latest": ends[tp]}.get(start, start) if isinstance(start, str) else start
            positions[tp] = max(begins[tp], wanted)
            consumer.seek(tp, positions[tp])
        if positioned is not None:
            positioned.set()
        while not (to_end and all(positions[tp] >= ends[tp] for tp in partitions)):
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            if to_end and not batches:  # past the last record there may be markers no record stands for
                for tp in partitions:
                    positions[tp] = max(positions[tp], await consumer.position(tp))
            ready = []
            for tp, batch in batches.items():
                positions[tp] = batch[-1].offset + 1
                ready.extend(r for r in batch if not to_end or r.offset < ends[tp])
            for record in sorted(ready, key=lambda r: r.timestamp):
                yield record
            await asyncio.sleep(0)


async def _existing_partitions(consumer: AIOKafkaConsumer, names: list[str], partition: int | None) -> list[TopicPartition]:
    chosen = []
    for topic in names:
        found = consumer.partitions_for_topic(topic)
        if found is None:
            consumer._client.add_topic(topic)
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(topic)
            if topic in consumer._client.cluster.unauthorized_topics:
                raise TopicAuthorizationFailedError(topic)
        if not found:
            raise NotFound(f"topic {topic} does not exist (nothing was ever published to it)")
        if partition is not None and partition not in found:
            raise NotFound(f"topic {topic} has no partition {partition} (it has {len(found)}: 0-{max(found)})")
        chosen.extend(TopicPartition(topic, p) for p in sorted(found) if partition in (None, p))
    return chosen


async def _stop(consumer: AIOKafkaConsumer) -> None:
    # aiokafka's group-less coordinator can surface the cancellation of its own internal task on stop
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
