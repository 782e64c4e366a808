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

from aiokafka import ConsumerRecord
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.clock import Clock, SystemClock
from shared.contracts import EventData, dlq_topic, topic_of
from shared.envelope import CloudEvent, InvalidEvent, decode
from shared.runtime import metrics, store
from shared.runtime.effects import Effects
from shared.runtime.kafka import ensure_topics, make_broker
from shared.runtime.kafka_client import Kafka, check_group, denial, topic_configs
from shared.runtime.relay import OutboxRelay, publish
from shared.runtime.retry import backoff, is_transient
from shared.settings import Settings, redact

D = TypeVar("D")
Handler = Callable[[CloudEvent, Any], Awaitable[Effects]]
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


Job = Callable[[Any, datetime], Awaitable[list[tuple[str, Effects]]]]


class Handlers:
    """The events a service reacts to, like a FastStream router but with our unit of work."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.by_type: dict[str, tuple[type[EventData], Handler]] = {}
        self.jobs: dict[str, tuple[float, Job]] = {}

    def every(self, seconds: float) -> Callable[[Job], Job]:
        """A periodic scan (expiring lots, overdue check-ins). The job returns (key, effects) pairs;
        each key is applied once ever, like an event id, so a scan that runs twice changes nothing."""

        def register(job: Job) -> Job:
            self.jobs[job.__name__] = (seconds, job)
            return job

        return register

    def on(self, model: type[EventData]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
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

    applied: list[dict[str, Any]] = field(default_factory=list)
    """Inbox documents whose effects were applied and events published in this batch."""
    keys: set[str] = field(default_factory=set)
    lines: list[dict[str, Any]] = field(default_factory=list)


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
    ) -> None:
        self.name = handlers.service
        self.handlers = handlers
        self.settings = settings or Settings()
        self.clock = clock or SystemClock(timedelta(seconds=self.settings.clock_offset_seconds))
        self.source = f"/clinic/{self.name}"
        self.log = logging.getLogger(f"clinic.{self.name}")
        self.stats = Stats()
        self._dependencies = dependencies
        self._client: AsyncMongoClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.broker: KafkaBroker | None = None
        self.relay: OutboxRelay | None = None
        self.deps: D | None = None
        self.db: AsyncDatabase | None = None
        self._subscriber: Any = None
        self._http: Any = None

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
        self._client = store.connect(s.mongodb_url.get_secret_value(), f"clinic-{self.name}", service=self.name)
        self.db = store.database(self._client, s.database(self.name))
        await self._until_ready("store", lambda: store.ensure_indexes(self.db))
        self.deps = await self._dependencies(Runtime(self.name, self.db, self.clock, s))
        own_topics = [topic_of(m, s.topic_prefix) for m in _produced(self.name)]
        every_topic = sorted({*self.topics, *map(dlq_topic, self.topics), *own_topics})
        kafka = Kafka.of(s)
        await self._until_ready("broker", lambda: ensure_topics(
            kafka.bootstrap, every_topic, s.topic_partitions, s.topic_replication, options=kafka.options, configs=topic_configs(s, every_topic),
        ))
        await self._until_ready("broker", lambda: check_group(kafka, self.group_id))
        self.broker = make_broker(s, client_id=f"clinic-{self.name}-{s.instance_id}")
        self._subscriber = self.broker.subscriber(
            *self.topics,
            group_id=self.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            decoder=_raw_body,
            batch=True,
            max_records=s.consume_batch_size,
            batch_timeout_ms=s.consume_wait_ms,
            title=f"{self.name}",
        )
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
        if self._client is not None:
            await self._client.close()
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

    def _owned_partitions(self) -> set[int]:
        consumer = getattr(self._subscriber, "consumer", None)
        return {tp.partition for tp in consumer.assignment()} if consumer is not None else set()

    async def readiness(self) -> dict[str, bool]:
        """Ready = store and broker answer and this instance's consumer has partitions assigned."""
        try:
            await asyncio.wait_for(self.db.command("ping"), 2)
            store_ok = True
        except Exception:
            store_ok = False
        broker_ok = self.broker is not None and await self.broker.ping(timeout=2)
        consumer = getattr(self._subscriber, "consumer", None)
        assigned = bool(consumer is not None and consumer.assignment())
        return {"store": store_ok, "broker": bool(broker_ok), "consumer_assigned": assigned}

    async def refresh_gauges(self) -> None:
        if self.relay is not None:
            with contextlib.suppress(Exception):
                metrics.OUTBOX_BACKLOG.labels(self.name).set(await self.relay.backlog())
            metrics.OUTBOX_SET_ASIDE.labels(self.name).set(self.relay.set_aside)
        consumer = getattr(self._subscriber, "consumer", None)
        if consumer is None:
            return
        for partition in consumer.assignment():
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            with contextlib.suppress(Exception):
                lag = max(0, highwater - await consumer.position(partition))
                metrics.CONSUMER_LAG.labels(self.name, partition.topic, str(partition.partition)).set(lag)

    async def run_jobs(self) -> int:
        """Run every periodic job once now (tests call this after moving the clock)."""
        count = 0
        for job_name, (_, job) in self.handlers.jobs.items():
            count += await self._run_job(job_name, job)
        return count

    async def _run_job(self, job_name: str, job: Job) -> int:
        applied = 0
        for key, effects in await job(self.deps, self.clock.now()):
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
        then one inbox update for the batch and one offset commit."""
        records: tuple[ConsumerRecord, ...] = message.raw_message  # type: ignore[assignment]
        chains: dict[Any, list[ConsumerRecord]] = {}
        for record in records:  # the key is the patient: their events stay in order
            chains.setdefault(record.key if record.key is not None else (record.topic, record.partition), []).append(record)
        batch = Batch()
        limit = asyncio.Semaphore(self.settings.consume_concurrency)

        async def run(chain: list[ConsumerRecord]) -> None:
            async with limit:
                for record in chain:
                    await self._consume_one(record, batch)

        await asyncio.gather(*(run(chain) for chain in chains.values()))
        await self._until_ready("store", lambda: store.mark_applied(self.db, batch.applied, self.clock.now()))
        await self._commit(message)
        for fields in batch.lines:
            self._account(fields)

    async def _consume_one(self, record: ConsumerRecord, batch: Batch) -> None:
        started = time.perf_counter()
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        fields: dict[str, Any] = {**where}
        try:
            event = decode(record.value, record.headers)
            fields.update(event_id=event.id, type=event.type, correlation=event.correlation_id, patient=event.key)
            if topic_of(event.type, self.settings.topic_prefix) != record.topic:
                raise InvalidEvent("wrong-topic", f"{event.type} does not belong on {record.topic}")
            outcome = await self._handle_with_retries(event, where, batch)
        except (InvalidEvent, Rejected) as error:
            outcome = "dead-lettered"
            fields["reason"] = error.reason
            await self._dead_letter(record, error.reason, error.detail)
        except Exception as error:  # never let a record pass uncommitted-but-skipped: dead-letter it
            outcome = "dead-lettered"
            fields["reason"] = "internal-error"
            self.log.warning("unexpected failure before handling", extra={**where, "error": error.__class__.__name__})
            await self._dead_letter(record, "internal-error", error.__class__.__name__)
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
        metrics.HANDLER_SECONDS.labels(self.name, event_type).observe(seconds)
        fields["ms"] = round(seconds * 1000, 1)
        self.log.log(logging.WARNING if outcome == "dead-lettered" else logging.INFO, "event", extra=fields)

    async def _handle_with_retries(self, event: CloudEvent, where: dict[str, Any], batch: Batch) -> str:
        model, handler = self.handlers.by_type[event.type]
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
            results = await publish(self.broker, rows)
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

    async def _commit(self, message: KafkaMessage) -> None:
        try:
            await message.ack()
        except Exception as error:  # rebalanced away: the next owner redelivers, the inbox makes it harmless
            self.log.warning("offset commit failed", extra={"error": error.__class__.__name__})

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


def _where(record: ConsumerRecord) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


async def _raw_body(message: Any) -> bytes:
    return message.body


def _produced(service: str) -> list[type[EventData]]:
    from shared.contracts import REGISTRY

    return REGISTRY.produced_by(service)

