"""The runtime every service uses: consume, deduplicate, decide, record, apply, commit, relay.

A service is a set of handlers (``Handlers``) and a function that builds its dependencies. The runtime
owns the rest: one consumer per service instance over all the topics it reacts to (range-assigned, so
one patient's events on every topic reach the same instance), the inbox and outbox, dead letters,
retries, and the one log line per handled event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import StatusCode
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.clock import Clock, SystemClock
from shared.contracts import EventData, dlq_topic, topic_of
from shared.envelope import CloudEvent, InvalidEvent, decode
from shared.runtime import metrics, store, tracing
from shared.runtime.effects import Effects
from shared.runtime.kafka import Topics, make_broker
from shared.runtime.kafka_client import Kafka, check_group, denial
from shared.runtime.relay import OutboxRelay, publish
from shared.runtime.retry import backoff, is_transient
from shared.runtime.tracing import Tracing
from shared.settings import Settings, redact

D = TypeVar("D")
E = TypeVar("E", bound=EventData)
Handler = Callable[[CloudEvent[E], D], Awaitable[Effects]]
"""A reaction to one event type: ``Handler[SessionCompleted, Deps]``; bare ``Handler`` is any of them."""
log = logging.getLogger("clinic.runtime")


class Rejected(Exception):
    """The event is well-formed but cannot be applied (unknown session, impossible data).

    Raised by a handler before it returns effects, so nothing is applied; the event is dead-lettered
    with this reason.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Job = Callable[[D, datetime], Awaitable[list[tuple[str, Effects]]]]
"""A periodic scan: the (key, effects) pairs it found at the given time."""


class Handlers(Generic[D]):
    """The events a service reacts to, like a FastStream router but with our unit of work.

    ``Handlers[Deps]("aftercare")``: each handler takes the decoded event typed by the contract it is
    registered for (``CloudEvent[SessionCompleted]``) and the service's dependencies ``Deps``."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.by_type: dict[str, tuple[type[EventData], Handler]] = {}
        self.jobs: dict[str, tuple[float, Job]] = {}

    def every(self, seconds: float) -> Callable[[Job[D]], Job[D]]:
        """A periodic scan (expiring lots, overdue check-ins). The job returns (key, effects) pairs;
        each key is applied once ever, like an event id, so a scan that runs twice changes nothing."""

        def register(job: Job[D]) -> Job[D]:
            self.jobs[job.__name__] = (seconds, job)
            return job

        return register

    def on(self, model: type[E]) -> Callable[[Handler[E, D]], Handler[E, D]]:
        def register(handler: Handler[E, D]) -> Handler[E, D]:
            if model.event_type in self.by_type:
                raise ValueError(f"{self.service} handles {model.event_type} twice")
            self.by_type[model.event_type] = (model, handler)
            return handler

        return register


@dataclass
class Runtime:
    """What dependency builders get: the service's own database, its clock and its settings."""

    name: str
    db: AsyncDatabase
    clock: Clock
    settings: Settings


@dataclass
class Batch:
    """What the records of one consumed batch did, settled together when the batch is done."""

    generation: int
    """The assignment the batch was taken under; a rebalance since then makes its offsets another's."""
    applied: list[dict[str, Any]] = field(default_factory=list)
    """Inbox documents whose effects were applied and events published in this batch."""
    keys: set[str] = field(default_factory=set)
    lines: list[dict[str, Any]] = field(default_factory=list)
    done: set[tuple[str, int, int]] = field(default_factory=set)
    """(topic, partition, offset) of the records handled (or dead-lettered) to the end."""


@dataclass
class Stats:
    handled: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)

    def count(self, table: dict[str, int], event_type: str) -> None:
        table[event_type] = table.get(event_type, 0) + 1


class Service(Generic[D]):
    def __init__(
        self,
        handlers: Handlers,
        dependencies: Callable[[Runtime], Awaitable[D]],
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        tracer: Tracing | None = None,
    ) -> None:
        self.name = handlers.service
        self.handlers = handlers
        self.settings = settings or Settings()
        self.clock = clock or SystemClock(timedelta(seconds=self.settings.clock_offset_seconds))
        self.source = f"/clinic/{self.name}"
        self.log = logging.getLogger(f"clinic.{self.name}")
        self.tracing = tracer or Tracing(self.name, self.settings)
        """Spans of this service (replace it before ``start`` to export elsewhere, as the tests do)."""
        self.stats = Stats()
        self.dependencies = dependencies
        """Builds what the handlers get (``Deps``) from the runtime: the database, clock and settings."""
        self._client: AsyncMongoClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.broker: KafkaBroker | None = None
        self.relay: OutboxRelay | None = None
        self.deps: D | None = None
        self.db: AsyncDatabase | None = None
        self._subscriber: Any = None
        self._http: Any = None
        self._topics = Topics(self.settings)
        # consuming and rebalances (see docs/liveness.md)
        self._generation = 0
        """Counts assignments; a batch taken under an older one does not commit."""
        self._handled: dict[TopicPartition, int] = {}
        """Per partition of the current assignment, the offset after the records handled to the end."""
        self._committed: dict[TopicPartition, int] = {}
        self._revoking: set[TopicPartition] = set()
        """Partitions being taken away: their records not started yet are left to the next owner."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._batch_since: float | None = None
        self._rebalance_since: float | None = None
        self._lag_series: set[TopicPartition] = set()
        """Partitions this instance has a clinic_consumer_lag series for."""

    @property
    def topics(self) -> list[str]:
        return [topic_of(t, self.settings.topic_prefix) for t in self.handlers.by_type]

    @property
    def group_id(self) -> str:
        return self.settings.group_id(self.name)

    async def start(self) -> None:
        s = self.settings
        self._stopping.clear()
        if s.http_port is not None:  # first, so a taken port fails fast and readiness is visible while starting
            from shared.runtime.http import serve

            self._http = await serve(self, s.http_host, s.http_port)
        listener = self.tracing.listener()
        self._client = store.connect(s.mongodb_url.get_secret_value(), f"clinic-{self.name}", service=self.name, listeners=[listener] if listener else [])
        self.db = store.database(self._client, s.database(self.name))
        await self._until_ready("store", lambda: store.ensure_indexes(self.db))
        self.deps = await self.dependencies(Runtime(self.name, self.db, self.clock, s))
        own_topics = [topic_of(m, s.topic_prefix) for m in _produced(self.name)]
        every_topic = sorted({*self.topics, *map(dlq_topic, self.topics), *own_topics})
        # every topic, served with its leaders, before the consumer subscribes (docs/liveness.md)
        await self._until_ready("broker", lambda: self._topics.ensure(every_topic))
        await self._until_ready("broker", lambda: check_group(Kafka.of(s), self.group_id))
        self.broker = make_broker(s, client_id=f"clinic-{self.name}-{s.instance_id}")
        self._subscriber = self.broker.subscriber(
            # created above with the deployment's partitions; FastStream would create missing ones with 1
            *(Topic(t, declare=False) for t in self.topics),
            group_id=self.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=s.consumer_session_timeout_ms,
            heartbeat_interval_ms=s.consumer_heartbeat_interval_ms,
            rebalance_timeout_ms=s.consumer_rebalance_timeout_ms,
            max_poll_interval_ms=s.consumer_max_poll_interval_ms,
            listener=_Rebalance(self),
            decoder=_raw_body,
            batch=True,
            max_records=s.consume_batch_size,
            batch_timeout_ms=s.consume_wait_ms,
            title=f"{self.name}",
        )
        self._rebalance_since = time.monotonic()  # until the first assignment
        self._subscriber(self._consume)
        await self._until_ready("broker", self.broker.start)
        self.relay = OutboxRelay(
            self.db,
            self.broker,
            self.clock,
            service=self.name,
            owned=self._owned_partitions,
            poll_seconds=s.relay_poll_seconds,
            batch_size=s.relay_batch_size,
            retry_cap=s.retry_max_seconds,
            ensure_topics=self._topics.ensure,
            tracing=self.tracing,
        )
        await self._until_ready("store", self.relay.load)
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-relay"))
        for job_name, (seconds, job) in self.handlers.jobs.items():
            self._tasks.append(asyncio.create_task(self._every(job_name, seconds, job), name=f"{self.name}-{job_name}"))
        self.log.info("started", extra={"group": self.group_id, "topics": len(self.topics), "instance": s.instance_id, "http": s.http_port})

    async def stop(self) -> None:
        self._stopping.set()
        if self._http is not None:
            server, task = self._http
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)
            self._http = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.broker is not None:
            await self.broker.stop()
        self._drop_lag(set(self._lag_series))
        if self._client is not None:
            await self._client.close()
        await self.tracing.flush()
        self.log.info("stopped")

    async def __aenter__(self) -> Service[D]:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run_forever(self) -> None:
        """Entry point of the service process: start, serve until SIGINT/SIGTERM, stop cleanly."""
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        starting = asyncio.create_task(self.start())
        stopping = asyncio.create_task(done.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a start-up failure ends the process with its message
                await stopping
            else:  # stopped while still waiting for the broker or store
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
        finally:
            stopping.cancel()
            await self.stop()

    def _consumer(self) -> Any:
        return getattr(self._subscriber, "consumer", None)

    def _owned_partitions(self) -> set[int]:
        """Partition numbers this instance owns (and is not giving up in a rebalance under way)."""
        consumer = self._consumer()
        if consumer is None:
            return set()
        return {tp.partition for tp in consumer.assignment() if tp not in self._revoking}

    async def readiness(self) -> dict[str, bool]:
        """Ready = this instance can make progress: the store and the broker answer, its consumer owns
        partitions (not in the middle of a rebalance), and its consume loop runs with no batch and no
        rebalance taking longer than ``consumer_stall_seconds``."""
        store_ok, broker_ok = await asyncio.gather(self._store_answers(), self._broker_answers())
        consumer = self._consumer()
        assigned = bool(consumer is not None and consumer.assignment()) and self._rebalance_since is None
        return {"store": store_ok, "broker": broker_ok, "consumer_assigned": assigned, "consumer_progressing": self._progressing()}

    async def _store_answers(self) -> bool:
        if self.db is None:
            return False
        try:
            await asyncio.wait_for(self.db.command("ping"), 2)
            return True
        except Exception:
            return False

    async def _broker_answers(self) -> bool:
        if self.broker is None:
            return False
        try:
            return bool(await self.broker.ping(timeout=2))
        except Exception:
            return False

    def _progressing(self) -> bool:
        """The consume loop runs, and neither the batch in hand nor a rebalance has stalled it."""
        tasks = getattr(self._subscriber, "tasks", None) or []
        if not any(not task.done() for task in tasks):
            return False
        limit, now = self.settings.consumer_stall_seconds, time.monotonic()
        return all(since is None or now - since <= limit for since in (self._batch_since, self._rebalance_since))

    async def refresh_gauges(self) -> None:
        if self.relay is not None:
            with contextlib.suppress(Exception):
                metrics.OUTBOX_BACKLOG.labels(self.name).set(await self.relay.backlog())
            metrics.OUTBOX_SET_ASIDE.labels(self.name).set(self.relay.set_aside)
        consumer = getattr(self._subscriber, "consumer", None)
        if consumer is None:
            return
        assigned = set(consumer.assignment())
        self._drop_lag(self._lag_series - assigned)  # revoked while no listener call reached us
        for partition in assigned:
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            with contextlib.suppress(Exception):
                lag = max(0, highwater - await consumer.position(partition))
                metrics.CONSUMER_LAG.labels(self.name, partition.topic, str(partition.partition)).set(lag)
                self._lag_series.add(partition)

    def _drop_lag(self, partitions: set[TopicPartition]) -> None:
        """Remove the lag series of partitions this instance no longer owns: their lag is the new
        owner's to report, and a stale series would alert on a partition nobody here consumes."""
        for partition in partitions & self._lag_series:
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self.name, partition.topic, str(partition.partition))
            self._lag_series.discard(partition)

    async def run_jobs(self) -> int:
        """Run every periodic job once now (tests call this after moving the clock)."""
        count = 0
        for job_name, (_, job) in self.handlers.jobs.items():
            count += await self._run_job(job_name, job)
        return count

    async def _run_job(self, job_name: str, job: Job) -> int:
        applied = 0
        for key, effects in await job(self.deps, self.clock.now()):
            with self.tracing.tracer.start_as_current_span(f"{self.name} job {job_name}"):  # the trace its events start
                outcome = await self.execute(f"job|{job_name}|{key}", effects)
            if outcome != "duplicate":
                applied += 1
                self.log.info("job", extra={"job": job_name, "key": key, "outcome": outcome})
        return applied

    async def _every(self, job_name: str, seconds: float, job: Job) -> None:
        failures = 0
        while True:
            try:
                await self._run_job(job_name, job)
                failures = 0
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                self.log.warning("job failed, retrying", extra={"job": job_name, "error": error.__class__.__name__, "attempt": failures})
                await asyncio.sleep(backoff(failures, self.settings.retry_max_seconds))

    async def execute(self, key: str, effects: Effects) -> str:
        """Apply effects that no inbound event caused, once per key (the key plays the event id's part)."""
        existing = await self.db[store.INBOX].find_one({"_id": key}, {"status": 1})
        if existing is not None and existing["status"] == "applied":
            return "duplicate"
        now = self.clock.now()
        rows = store.outgoing(None, effects, self.source, now, self.settings.topic_prefix, seed=key)
        document = await store.record(self.db, key, None, effects, rows, now, {"origin": "job"})
        if document["status"] != "applied":
            _, stored = await store.apply(self.db, document, now, publish_inline=False)
            await store.mark_applied(self.db, [document], now)
            if self.relay is not None:
                self.relay.schedule(stored)
        return document["outcome"]

    # -- consuming ---------------------------------------------------------------------------------

    async def _consume(self, body: Any, message: KafkaMessage) -> None:
        """One batch of records: each patient's records in order, different patients concurrently;
        then one inbox update for the batch and one offset commit.

        When a rebalance takes partitions away meanwhile, the records of those partitions not started
        yet are left alone (their next owner gets them from the last committed offset); the revocation
        waits for the ones started, and the offsets of what was handled are committed before the
        partitions go (see ``_on_revoked``)."""
        records: tuple[ConsumerRecord, ...] = message.raw_message  # type: ignore[assignment]
        batch = Batch(self._generation)
        self._idle.clear()
        self._batch_since = time.monotonic()
        try:
            chains: dict[Any, list[ConsumerRecord]] = {}
            for record in records:  # the key is the patient: their events stay in order
                chains.setdefault(record.key if record.key is not None else (record.topic, record.partition), []).append(record)
            limit = asyncio.Semaphore(self.settings.consume_concurrency)

            async def run(chain: list[ConsumerRecord]) -> None:
                async with limit:
                    for record in chain:
                        if self._giving_up(record, batch):
                            return  # the rest of this patient's records too: they stay in order for the next owner
                        await self._consume_one(record, batch)
                        batch.done.add((record.topic, record.partition, record.offset))

            await asyncio.gather(*(run(chain) for chain in chains.values()))
            await self._until_ready("store", lambda: store.mark_applied(self.db, batch.applied, self.clock.now()))
            if batch.generation == self._generation:
                self._advance(records, batch)
                await self._commit()
        finally:
            self._batch_since = None
            self._idle.set()
        for fields in batch.lines:
            self._account(fields)

    def _giving_up(self, record: ConsumerRecord, batch: Batch) -> bool:
        return batch.generation != self._generation or TopicPartition(record.topic, record.partition) in self._revoking

    def _advance(self, records: tuple[ConsumerRecord, ...], batch: Batch) -> None:
        """Per partition, the offset after the records handled without a gap."""
        by_partition: dict[TopicPartition, list[int]] = {}
        for record in records:
            by_partition.setdefault(TopicPartition(record.topic, record.partition), []).append(record.offset)
        for tp, offsets in by_partition.items():
            following = None
            for offset in sorted(offsets):
                if (tp.topic, tp.partition, offset) not in batch.done:
                    break
                following = offset + 1
            if following is not None and following > self._handled.get(tp, -1):
                self._handled[tp] = following

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the handled offsets of the partitions this instance still owns (never another's).

        Partitions being revoked are committed by ``_on_revoked`` (``only``) while the group still
        accepts it, never by a batch that finishes after that: such a late commit would be refused with
        the old generation, and aiokafka answers that refusal by resetting the member mid-join."""
        consumer = self._consumer()
        if consumer is None:
            return
        owned = consumer.assignment()
        wanted = only if only is not None else {tp for tp in self._handled if tp not in self._revoking}
        offsets = {tp: offset for tp, offset in self._handled.items() if tp in owned and tp in wanted and offset > self._committed.get(tp, -1)}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:  # rebalanced away: the next owner redelivers, the inbox makes it harmless
            self.log.warning("offset commit refused after a rebalance", extra={"error": error.__class__.__name__, "partitions": len(offsets)})
        except KafkaError as error:
            self.log.warning("offset commit failed", extra={"error": error.__class__.__name__, "partitions": len(offsets)})
        else:
            self._committed.update(offsets)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Called by the consumer before it rejoins its group: the partitions are still ours until this
        returns. Records of these partitions not started yet are left to the next owner; the ones
        started may finish (for up to ``consumer_revoke_wait_seconds``); what is handled is committed."""
        self._rebalance_since = self._rebalance_since or time.monotonic()
        self._drop_lag(revoked)
        if not revoked:
            return
        self._revoking |= revoked
        if not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), self.settings.consumer_revoke_wait_seconds)
            except TimeoutError:
                self.log.warning(
                    "partitions revoked while records are still being handled; their next owner gets them again",
                    extra={"partitions": len(revoked), "waited": self.settings.consumer_revoke_wait_seconds},
                )
        try:  # bounded: with the broker away a commit waits for it, and the group would wait for us
            await asyncio.wait_for(self._commit(only=revoked), self.settings.consumer_revoke_wait_seconds)
        except TimeoutError:
            self.log.warning("offsets of revoked partitions not committed in time; their next owner gets those records again", extra={"partitions": len(revoked)})
        self.log.info("partitions revoked", extra={"partitions": len(revoked), "committed": sum(1 for tp in revoked if tp in self._committed)})

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """A new assignment: positions restart from the committed offsets, so the bookkeeping does too."""
        self._generation += 1
        self._handled.clear()
        self._committed.clear()
        self._revoking.clear()
        self._drop_lag(self._lag_series - assigned)
        self._rebalance_since = None
        if self.relay is not None:
            self.relay.nudge()
        self.log.info("partitions assigned", extra={"partitions": len(assigned), "generation": self._generation})

    async def _consume_one(self, record: ConsumerRecord, batch: Batch) -> None:
        started = time.perf_counter()
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        fields: dict[str, Any] = {**where}
        try:
            event: CloudEvent | None = decode(record.value, record.headers, max_bytes=self.settings.max_event_bytes)
            invalid: InvalidEvent | None = None
        except InvalidEvent as error:
            event, invalid = None, error
        # the CONSUMER span, child of the producer's (the event's traceparent; see shared/runtime/tracing.py)
        with self.tracing.consuming(record, event.traceparent if event else None, self.group_id) as span:
            fields.update(tracing.ids())  # the event's log line is written after the commit, outside the span
            try:
                if invalid is not None:
                    raise invalid
                assert event is not None
                tracing.describe(span, event.type, event.id, event.source)
                fields.update(event_id=event.id, type=event.type, correlation=event.correlation_id, patient=event.key)
                if topic_of(event.type, self.settings.topic_prefix) != record.topic:
                    raise InvalidEvent("wrong-topic", f"{event.type} does not belong on {record.topic}")
                outcome = await self._handle_with_retries(event, where, batch)
            except (InvalidEvent, Rejected) as error:
                outcome = "dead-lettered"
                fields["reason"] = error.reason
                span.set_status(StatusCode.ERROR, error.reason)
                await self._dead_letter(record, error.reason, error.detail)
            except Exception as error:  # never let a record pass uncommitted-but-skipped: dead-letter it
                outcome = "dead-lettered"
                fields["reason"] = "internal-error"
                span.set_status(StatusCode.ERROR, "internal-error")
                self.log.warning("unexpected failure before handling", extra={**where, "error": error.__class__.__name__})
                await self._dead_letter(record, "internal-error", error.__class__.__name__)
            span.set_attribute("clinic.outcome", outcome)
        batch.lines.append({**fields, "outcome": outcome, "seconds": time.perf_counter() - started})

    def _account(self, fields: dict[str, Any]) -> None:
        """Metrics and the one log line of a handled event, once its offset is committed."""
        event_type, outcome, seconds = fields.get("type", "undecodable"), fields["outcome"], fields.pop("seconds")
        if outcome == "dead-lettered":
            self.stats.count(self.stats.dead_lettered, event_type)
            metrics.DEAD_LETTERED.labels(self.name, fields["topic"], fields["reason"]).inc()
        else:
            self.stats.count(self.stats.handled, event_type)
        metrics.HANDLED.labels(self.name, event_type, outcome).inc()
        metrics.HANDLER_DURATION.labels(self.name, event_type).observe(seconds)
        metrics.HANDLER_SECONDS.labels(self.name, event_type).observe(seconds)  # deprecated name, one release
        fields["ms"] = round(seconds * 1000, 1)
        self.log.log(logging.WARNING if outcome == "dead-lettered" else logging.INFO, "event", extra=fields)

    async def _handle_with_retries(self, event: CloudEvent, where: dict[str, Any], batch: Batch) -> str:
        _model, handler = self.handlers.by_type[event.type]
        failures = transient = 0
        while True:
            try:
                return await self._handle(event, handler, where, batch)
            except (Rejected, asyncio.CancelledError):
                raise
            except Exception as error:
                metrics.FAILED.labels(self.name, event.type, "transient" if is_transient(error) else "error").inc()
                if is_transient(error):
                    transient += 1
                    self.log.warning("transient failure, retrying", extra={"event_id": event.id, "error": error.__class__.__name__, "attempt": transient})
                    await self._pause(backoff(transient, self.settings.retry_max_seconds))
                    continue
                failures += 1
                # the class only: exception messages (a duplicate key's value, a validator's input) may
                # carry clinical data; the traceback is there at DEBUG for whoever fixes the defect
                self.log.warning("handler failed", extra={"event_id": event.id, "type": event.type, "attempt": failures, "error": error.__class__.__name__})
                self.log.debug("handler failure detail", exc_info=error)
                if failures >= self.settings.handler_attempts:
                    raise Rejected("handler-error", error.__class__.__name__) from error
                await self._pause(backoff(failures, self.settings.retry_max_seconds))

    async def _handle(self, event: CloudEvent, handler: Handler, where: dict[str, Any], batch: Batch) -> str:
        key = store.inbox_id(event)
        if key in batch.keys:  # delivered twice within one batch
            return "duplicate"
        document = await self.db[store.INBOX].find_one({"_id": key})
        if document is not None and document["status"] == "applied":
            return "duplicate"
        now = self.clock.now()
        if document is None:
            effects = await handler(event, self.deps)
            rows = store.outgoing(event, effects, self.source, now, self.settings.topic_prefix, partition=where.get("partition"))
            document = await store.record(self.db, key, event, effects, rows, now, where)
        if document["status"] != "applied":
            inline, stored = await store.apply(self.db, document, now)
            await self._publish(inline)
            if self.relay is not None:
                self.relay.schedule(stored)
            batch.keys.add(key)
            batch.applied.append(document)
        return document["outcome"]

    async def _publish(self, rows: list[dict[str, Any]]) -> None:
        """The events due now, before the offset is committed. A broker that is away is waited for; a row
        it refuses (too large, say) goes to the outbox, where the relay retries it and then sets it aside."""
        attempt = 0
        while rows:
            try:
                await self._topics.ensure(row["topic"] for row in rows)
            except Exception as error:
                if not is_transient(error):
                    raise
                attempt += 1
                self.log.warning("topic check failed, retrying", extra={"error": error.__class__.__name__, "attempt": attempt})
                await self._pause(backoff(attempt, self.settings.retry_max_seconds))
                continue
            results = await publish(self.broker, rows, self.tracing)
            metrics.OUTBOX_PUBLISHED.labels(self.name).inc(sum(1 for error in results if error is None))
            refused = [(row, error) for row, error in zip(rows, results, strict=True) if error is not None]
            rows = [row for row, error in refused if is_transient(error)]
            for row, error in refused:
                if not is_transient(error):
                    self.log.error("event refused by the broker, kept in the outbox", extra={"event_id": row["_id"], "error": error.__class__.__name__})
                    await store.keep(self.db, row, error)
                    if self.relay is not None:
                        self.relay.schedule([row])
            if rows:
                attempt += 1
                self.log.warning("publish failed, retrying", extra={"error": refused[0][1].__class__.__name__, "attempt": attempt})
                await self._pause(backoff(attempt, self.settings.retry_max_seconds))

    async def _dead_letter(self, record: ConsumerRecord, reason: str, detail: str) -> None:
        headers = {name: (value or b"").decode("utf-8", "replace") for name, value in record.headers or ()}
        headers.update(
            {
                "dlq_reason": reason,
                "dlq_error": detail[:1000],
                "dlq_topic": record.topic,
                "dlq_partition": str(record.partition),
                "dlq_offset": str(record.offset),
                "dlq_group": self.group_id,
                "dlq_service": self.name,
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        attempt = 0
        value = record.value or b""
        while True:
            try:
                await self.broker.publish(value, topic=dlq_topic(record.topic), key=record.key, headers=headers)
                return
            except Exception as error:
                if not is_transient(error):
                    if value:  # e.g. too large once the dlq headers are added: keep the facts, drop the body
                        self.log.error("dead letter refused, sending it without its value", extra={"error": error.__class__.__name__, **_where(record)})
                        value = b""
                        headers = {k: v for k, v in headers.items() if k.startswith(("dlq_", "ce_id", "ce_type", "ce_source"))}
                        headers["dlq_value_dropped"] = error.__class__.__name__
                        continue
                    # the record itself stays in its topic at this offset; say where, then move on
                    self.log.error("dead letter could not be written", extra={"error": error.__class__.__name__, **_where(record)})
                    return
                attempt += 1
                self.log.warning("dead-letter publish failed, retrying", extra={"error": error.__class__.__name__, "attempt": attempt})
                await self._pause(backoff(attempt, self.settings.retry_max_seconds))

    async def _pause(self, seconds: float) -> None:
        if self._stopping.is_set():
            raise asyncio.CancelledError
        await asyncio.sleep(seconds)

    async def _until_ready(self, what: str, action: Callable[[], Awaitable[Any]]) -> None:
        attempt = 0
        while True:
            try:
                await action()
                return
            except Exception as error:
                # refused credentials or a missing grant: not ready, and retrying until an operator fixes it
                denied = store.refusal(error, self.settings.database(self.name)) if what == "store" else await denial(error, self.settings)
                if not (denied or is_transient(error)):
                    raise
                attempt += 1
                where = redact(self.settings.mongodb_url if what == "store" else self.settings.kafka_bootstrap_servers)
                message = f"{denied}, retrying" if denied else f"{what} unreachable at {where}, retrying"
                self.log.warning(message, extra={"error": error.__class__.__name__, "attempt": attempt})
                await asyncio.sleep(backoff(attempt, self.settings.retry_max_seconds, base=0.5))


class _Rebalance(ConsumerRebalanceListener):
    """Hands the consumer's rebalance callbacks to the service (aiokafka awaits them in its coordinator)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.service._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.service._on_assigned(set(assigned))


def _where(record: ConsumerRecord) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


async def _raw_body(message: Any) -> bytes:
    return message.body


def _produced(service: str) -> list[type[EventData]]:
    from shared.contracts import REGISTRY

    return REGISTRY.produced_by(service)

