"""The consume pipeline: one batch of records, decoded, deduplicated against the inbox (one read for the
batch), each handled (with retries), its effects recorded and applied and its due events published; then
one inbox update for the batch, one offset commit, and one log line per record. Records it cannot accept are
dead-lettered. Rebalances during a batch: see ``shared.runtime.assignment`` and docs/liveness.md."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import StatusCode
from pymongo.errors import PyMongoError

from shared.contracts import topic_of
from shared.envelope import CloudEvent, InvalidEvent, decode
from shared.runtime import metrics, store, tracing
from shared.runtime.assignment import Assignment
from shared.runtime.context import Context
from shared.runtime.dead_letters import DeadLetters
from shared.runtime.kafka import Topics
from shared.runtime.registry import AnyHandler, Handlers, Rejected
from shared.runtime.relay import publish
from shared.runtime.retry import backoff, is_transient

D = TypeVar("D")


@dataclass
class Batch:
    """What the records of one consumed batch did, settled together when the batch is done."""

    generation: int
    """The assignment the batch was taken under; a rebalance since then makes its offsets another's."""
    applied: list[dict[str, Any]] = field(default_factory=list)
    """Inbox documents whose effects were applied and events published in this batch."""
    keys: set[str] = field(default_factory=set)
    known: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """Inbox documents read for the whole batch before handling it (None: not handled before); each is
    used once, by the first attempt at its event (a retry or a second delivery reads its own)."""
    lines: list[dict[str, Any]] = field(default_factory=list)
    done: set[tuple[str, int, int]] = field(default_factory=set)
    """(topic, partition, offset) of the records handled (or dead-lettered) to the end."""


@dataclass(frozen=True)
class Arrival:
    """A consumed record, decoded (``event``) or not (``invalid``, the reason it goes to dead letters)."""

    record: ConsumerRecord
    event: CloudEvent[Any] | None
    invalid: InvalidEvent | None
    decoding: float
    """Seconds the decoding took, counted in the event's handling time."""

    @classmethod
    def of(cls, record: ConsumerRecord, max_bytes: int | None) -> Arrival:
        started = time.perf_counter()
        try:
            return cls(record, decode(record.value, record.headers, max_bytes=max_bytes), None, time.perf_counter() - started)
        except InvalidEvent as error:
            return cls(record, None, error, time.perf_counter() - started)


@dataclass
class Stats:
    handled: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)

    def count(self, table: dict[str, int], event_type: str) -> None:
        table[event_type] = table.get(event_type, 0) + 1


class Pipeline(Generic[D]):
    def __init__(self, context: Context[D], handlers: Handlers[D], assignment: Assignment, dead_letters: DeadLetters, topics: Topics, stats: Stats) -> None:
        self.context = context
        self.handlers = handlers
        self.assignment = assignment
        self.dead_letters = dead_letters
        self.topics = topics
        self.stats = stats

    async def consume(self, body: Any, message: KafkaMessage) -> None:
        """One batch of records: each patient's records in order, different patients concurrently;
        then one inbox update for the batch and one offset commit.

        When a rebalance takes partitions away meanwhile, the records of those partitions not started
        yet are left alone (their next owner gets them from the last committed offset); the revocation
        waits for the ones started, and the offsets of what was handled are committed before the
        partitions go (see ``Assignment.on_revoked``)."""
        context, assignment = self.context, self.assignment
        records: tuple[ConsumerRecord, ...] = message.raw_message
        batch = Batch(assignment.generation)
        assignment.idle.clear()
        assignment.batch_since = time.monotonic()
        try:
            arrived = [Arrival.of(record, context.settings.max_event_bytes) for record in records]
            await self.recall(arrived, batch)
            chains: dict[Any, list[Arrival]] = {}
            for arrival in arrived:  # the key is the patient: their events stay in order
                record = arrival.record
                chains.setdefault(record.key if record.key is not None else (record.topic, record.partition), []).append(arrival)
            limit = asyncio.Semaphore(context.settings.consume_concurrency or self.handlers.concurrency)

            async def run(chain: list[Arrival]) -> None:
                async with limit:
                    for arrival in chain:
                        record = arrival.record
                        if assignment.giving_up(record, batch.generation):
                            return  # the rest of this patient's records too: they stay in order for the next owner
                        await self.consume_one(arrival, batch)
                        batch.done.add((record.topic, record.partition, record.offset))

            await asyncio.gather(*(run(chain) for chain in chains.values()))
            await context.until_ready("store", lambda: store.mark_applied(context.database, batch.applied, context.clock.now()))
            if batch.generation == assignment.generation:
                assignment.advance(records, batch.done)
                await assignment.commit()
        finally:
            assignment.batch_since = None
            assignment.idle.set()
        for fields in batch.lines:
            self.account(fields)

    async def recall(self, arrived: list[Arrival], batch: Batch) -> None:
        """Read what the inbox knows of the batch's events in one round trip (``_id`` ``$in``), rather than
        one read per event. A store that does not answer is left to each event's own read and retries."""
        keys = [store.inbox_id(a.event) for a in arrived if a.event is not None]
        if not keys:
            return
        try:
            batch.known = await store.inbox_records(self.context.database, keys)
        except PyMongoError as error:
            self.context.log.warning("inbox read for the batch failed; each event reads its own", extra={"error": error.__class__.__name__})

    async def consume_one(self, arrival: Arrival, batch: Batch) -> None:
        context = self.context
        started = time.perf_counter() - arrival.decoding
        record, event, invalid = arrival.record, arrival.event, arrival.invalid
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        fields: dict[str, Any] = {**where}
        # the CONSUMER span, child of the producer's (the event's traceparent; see shared/runtime/tracing.py)
        with context.tracing.consuming(record, event.traceparent if event else None, context.group_id) as span:
            fields.update(tracing.ids())  # the event's log line is written after the commit, outside the span
            try:
                if invalid is not None:
                    raise invalid
                assert event is not None
                tracing.describe(span, event.type, event.id, event.source)
                fields.update(event_id=event.id, type=event.type, correlation=event.correlation_id, patient=event.key)
                if topic_of(event.type, context.settings.topic_prefix) != record.topic:
                    raise InvalidEvent("wrong-topic", f"{event.type} does not belong on {record.topic}")
                outcome = await self.handle_with_retries(event, where, batch)
            except (InvalidEvent, Rejected) as error:
                outcome = "dead-lettered"
                fields["reason"] = error.reason
                span.set_status(StatusCode.ERROR, error.reason)
                await self.dead_letters.send(record, error.reason, error.detail)
            except Exception as error:  # never let a record pass uncommitted-but-skipped: dead-letter it
                outcome = "dead-lettered"
                fields["reason"] = "internal-error"
                span.set_status(StatusCode.ERROR, "internal-error")
                context.log.warning("unexpected failure before handling", extra={**where, "error": error.__class__.__name__})
                await self.dead_letters.send(record, "internal-error", error.__class__.__name__)
            span.set_attribute("clinic.outcome", outcome)
        batch.lines.append({**fields, "outcome": outcome, "seconds": time.perf_counter() - started})

    def account(self, fields: dict[str, Any]) -> None:
        """Metrics and the one log line of a handled event, once its offset is committed."""
        name = self.context.name
        event_type, outcome, seconds = fields.get("type", "undecodable"), fields["outcome"], fields.pop("seconds")
        if outcome == "dead-lettered":
            self.stats.count(self.stats.dead_lettered, event_type)
            metrics.DEAD_LETTERED.labels(name, fields["topic"], fields["reason"]).inc()
        else:
            self.stats.count(self.stats.handled, event_type)
        metrics.HANDLED.labels(name, event_type, outcome).inc()
        metrics.HANDLER_DURATION.labels(name, event_type).observe(seconds)
        metrics.HANDLER_SECONDS.labels(name, event_type).observe(seconds)  # deprecated name, one release
        fields["ms"] = round(seconds * 1000, 1)
        self.context.log.log(logging.WARNING if outcome == "dead-lettered" else logging.INFO, "event", extra=fields)

    async def handle_with_retries(self, event: CloudEvent[Any], where: dict[str, Any], batch: Batch) -> str:
        context = self.context
        _model, handler = self.handlers.by_type[event.type]
        failures = transient = 0
        while True:
            try:
                return await self.handle(event, handler, where, batch)
            except (Rejected, asyncio.CancelledError):
                raise
            except Exception as error:
                metrics.FAILED.labels(context.name, event.type, "transient" if is_transient(error) else "error").inc()
                if is_transient(error):
                    transient += 1
                    context.log.warning("transient failure, retrying", extra={"event_id": event.id, "error": error.__class__.__name__, "attempt": transient})
                    await context.pause(backoff(transient, context.settings.retry_max_seconds))
                    continue
                failures += 1
                # the class only: exception messages (a duplicate key's value, a validator's input) may
                # carry clinical data; the traceback is there at DEBUG for whoever fixes the defect
                context.log.warning("handler failed", extra={"event_id": event.id, "type": event.type, "attempt": failures, "error": error.__class__.__name__})
                context.log.debug("handler failure detail", exc_info=error)
                if failures >= context.settings.handler_attempts:
                    raise Rejected("handler-error", error.__class__.__name__) from error
                await context.pause(backoff(failures, context.settings.retry_max_seconds))

    async def handle(self, event: CloudEvent[Any], handler: AnyHandler, where: dict[str, Any], batch: Batch) -> str:
        context = self.context
        db = context.database
        key = store.inbox_id(event)
        if key in batch.keys:  # delivered twice within one batch
            return "duplicate"
        if key in batch.known:  # read with the batch; opened here, so a record that cannot be read fails this event only
            read = batch.known.pop(key)
            document = None if read is None else store.unpacked(read)
        else:
            document = await store.inbox_record(db, key)
        if document is not None and document["status"] == "applied":
            return "duplicate"
        now = context.clock.now()
        if document is None:
            effects = await handler(event, context.dependencies)
            rows = store.outgoing(event, effects, context.source, now, context.settings.topic_prefix, partition=where.get("partition"))
            document = await store.record(db, key, event, effects, rows, now, where)
        if document["status"] != "applied":
            # due-ness is judged now, after the handler: an event it made due at its own "now" (an overdue
            # reminder falls due at once) is published here, not stored for the relay to read and delete
            inline, stored = await store.apply(db, document, context.clock.now())
            await self.publish(inline)
            if context.relay is not None:
                context.relay.schedule(stored)
            batch.keys.add(key)
            batch.applied.append(document)
        return str(document["outcome"])

    async def publish(self, rows: list[dict[str, Any]]) -> None:
        """The events due now, before the offset is committed. A broker that is away is waited for; a row
        it refuses (too large, say) goes to the outbox, where the relay retries it and then sets it aside."""
        context = self.context
        attempt = 0
        while rows:
            try:
                await self.topics.ensure(row["topic"] for row in rows)
            except Exception as error:
                if not is_transient(error):
                    raise
                attempt += 1
                context.log.warning("topic check failed, retrying", extra={"error": error.__class__.__name__, "attempt": attempt})
                await context.pause(backoff(attempt, context.settings.retry_max_seconds))
                continue
            results = await publish(context.kafka, rows, context.tracing)
            metrics.OUTBOX_PUBLISHED.labels(context.name).inc(sum(1 for error in results if error is None))
            refused = [(row, failure) for row, failure in zip(rows, results, strict=True) if failure is not None]
            rows = [row for row, failure in refused if is_transient(failure)]
            for row, failure in refused:
                if not is_transient(failure):
                    context.log.error("event refused by the broker, kept in the outbox", extra={"event_id": row["_id"], "error": failure.__class__.__name__})
                    await store.keep(context.database, row, failure)
                    if context.relay is not None:
                        context.relay.schedule([row])
            if rows:
                attempt += 1
                context.log.warning("publish failed, retrying", extra={"error": refused[0][1].__class__.__name__, "attempt": attempt})
                await context.pause(backoff(attempt, context.settings.retry_max_seconds))
