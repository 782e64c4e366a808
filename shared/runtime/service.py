"""The runtime every service uses: consume, deduplicate, decide, record, apply, commit, relay.

A service is a set of handlers (``Handlers``) and a function that builds its dependencies. The runtime
owns the rest: one consumer per service instance over all the topics it reacts to (range-assigned, so
one patient's events on every topic reach the same instance), the inbox and outbox, dead letters,
retries, and the one log line per handled event.

This module is the lifecycle (start, stop, readiness) and the wiring of the parts: the consume
pipeline (``pipeline``), the partitions owned and their rebalances (``assignment``), dead letters
(``dead_letters``), periodic jobs (``jobs``), the health endpoints (``http``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

from aiokafka import TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, Topic
from pymongo import AsyncMongoClient

from shared.clock import Clock, SystemClock
from shared.contracts import REGISTRY, EventData, dlq_topic, topic_of
from shared.runtime import metrics, store
from shared.runtime.assignment import Assignment, Rebalance
from shared.runtime.context import Context
from shared.runtime.dead_letters import DeadLetters
from shared.runtime.effects import Effects
from shared.runtime.http import serve
from shared.runtime.jobs import Jobs
from shared.runtime.kafka import Topics, make_broker, prompt
from shared.runtime.kafka_client import Kafka, check_group, close_within
from shared.runtime.pipeline import Pipeline, Stats
from shared.runtime.registry import Handlers, Runtime
from shared.runtime.relay import OutboxRelay
from shared.runtime.store import Database
from shared.runtime.tracing import Tracing
from shared.settings import Settings

D = TypeVar("D")

STOP_SECONDS = 30.0
"""How long a stopping service waits for its own tasks, and then for its broker, before it goes on without them."""


async def stop_tasks(tasks: list[asyncio.Task[Any]], log: logging.Logger, seconds: float = STOP_SECONDS) -> None:
    """Cancel ``tasks`` and wait for them, at most ``seconds``. A task still running then is named in an
    error log with the line it waits on, and left behind: a stop that never ends hides the fault it
    is stuck on, and keeps the process (and its consumer group membership) alive."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        frames = task.get_stack()
        where = f"{frames[-1].f_code.co_filename}:{frames[-1].f_lineno}" if frames else "?"
        log.error("task did not stop", extra={"task": task.get_name(), "waiting_at": where, "seconds": seconds})


class Service(Generic[D]):
    def __init__(
        self,
        handlers: Handlers[D],
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
        self.context: Context[D] = Context(self.name, self.settings, self.clock, self.log, tracer or Tracing(self.name, self.settings))
        """What the parts share: the connections made by ``start``, the log, the spans, the stop signal."""
        self.stats = Stats()
        self.dependencies = dependencies
        """Builds what the handlers get (``Deps``) from the runtime: the database, clock and settings."""
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriber: Any = None
        self._http: Any = None
        self._topics = Topics(self.settings)
        # consuming and rebalances (see docs/liveness.md)
        self.assignment = Assignment(self.context, self._consumer)
        self.dead_letters = DeadLetters(self.context)
        self.pipeline = Pipeline(self.context, handlers, self.assignment, self.dead_letters, self._topics, self.stats)
        self.jobs = Jobs(self.context, handlers)

    # the connections, kept in the context the parts share
    @property
    def tracing(self) -> Tracing:
        """Spans of this service (replace it before ``start`` to export elsewhere, as the tests do)."""
        return self.context.tracing

    @tracing.setter
    def tracing(self, tracing: Tracing) -> None:
        self.context.tracing = tracing

    @property
    def db(self) -> Database | None:
        return self.context.db

    @property
    def broker(self) -> KafkaBroker | None:
        return self.context.broker

    @property
    def relay(self) -> OutboxRelay | None:
        return self.context.relay

    @property
    def deps(self) -> D | None:
        return self.context.deps

    @property
    def topics(self) -> list[str]:
        return [topic_of(t, self.settings.topic_prefix) for t in self.handlers.by_type]

    @property
    def consumed(self) -> list[type[EventData]]:
        """The contracts this service reacts to (its AsyncAPI document's receive operations)."""
        return [model for model, _ in self.handlers.by_type.values()]

    @property
    def group_id(self) -> str:
        return self.settings.group_id(self.name)

    async def start(self) -> None:
        s, context = self.settings, self.context
        context.stopping.clear()
        if s.http_port is not None:  # first, so a taken port fails fast and readiness is visible while starting
            self._http = await serve(self, s.http_host, s.http_port)
        listener = self.tracing.listener()
        self._client = store.connect(s.mongodb_url.get_secret_value(), f"clinic-{self.name}", service=self.name, listeners=[listener] if listener else [])
        db = context.db = store.database(self._client, s.database(self.name))
        await context.until_ready("store", lambda: store.ensure_indexes(db))
        context.deps = await self.dependencies(Runtime(self.name, db, self.clock, s))
        own_topics = [topic_of(m, s.topic_prefix) for m in REGISTRY.produced_by(self.name)]
        every_topic = sorted({*self.topics, *map(dlq_topic, self.topics), *own_topics})
        # every topic, served with its leaders, before the consumer subscribes (docs/liveness.md)
        await context.until_ready("broker", lambda: self._topics.ensure(every_topic))
        await context.until_ready("broker", lambda: check_group(Kafka.of(s), self.group_id))
        broker = context.broker = make_broker(s, client_id=f"clinic-{self.name}-{s.instance_id}")
        self._subscriber = broker.subscriber(
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
            listener=Rebalance(self.assignment),
            decoder=_raw_body,
            batch=True,
            max_records=s.consume_batch_size,
            batch_timeout_ms=s.consume_wait_ms,
            title=f"{self.name}",
        )
        prompt(self._subscriber)  # no pause after an empty poll (shared/runtime/kafka.py)
        self.assignment.rebalance_since = time.monotonic()  # until the first assignment
        self._subscriber(self.pipeline.consume)
        await context.until_ready("broker", broker.start)
        relay = context.relay = OutboxRelay(
            db,
            broker,
            self.clock,
            service=self.name,
            owned=self._owned_partitions,
            poll_seconds=s.relay_poll_seconds,
            batch_size=s.relay_batch_size,
            retry_cap=s.retry_max_seconds,
            ensure_topics=self._topics.ensure,
            tracing=self.tracing,
        )
        await context.until_ready("store", relay.load)
        self._tasks.append(asyncio.create_task(relay.run(), name=f"{self.name}-relay"))
        self._tasks.extend(self.jobs.tasks())
        self.log.info("started", extra={"group": self.group_id, "topics": len(self.topics), "instance": s.instance_id, "http": s.http_port})

    async def stop(self) -> None:
        self.context.stopping.set()
        if self._http is not None:
            server, task = self._http
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)
            self._http = None
        await stop_tasks(self._tasks, self.log)
        self._tasks.clear()
        if self.broker is not None:
            await close_within(self.broker, f"{self.name} broker", STOP_SECONDS)
        self.assignment.drop_lag(set(self.assignment.lag_series))
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
        return self.assignment.owned_partitions()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.assignment.on_revoked(revoked)

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assignment.on_assigned(assigned)

    async def readiness(self) -> dict[str, bool]:
        """Ready = this instance can make progress: the store and the broker answer, its consumer owns
        partitions (not in the middle of a rebalance), and its consume loop runs with no batch and no
        rebalance taking longer than ``consumer_stall_seconds``."""
        store_ok, broker_ok = await asyncio.gather(self._store_answers(), self._broker_answers())
        consumer = self._consumer()
        assigned = bool(consumer is not None and consumer.assignment()) and self.assignment.rebalance_since is None
        return {"store": store_ok, "broker": broker_ok, "consumer_assigned": assigned, "consumer_progressing": self._progressing()}

    def attention(self) -> dict[str, int]:
        """Figures that do not stop this instance but need an operator: outbox events set aside after repeated
        refusals (`clinic outbox list/redrive`) and replayed dead letters that failed again (`clinic dlq list`)."""
        return {
            "outbox_set_aside": self.relay.set_aside if self.relay is not None else 0,
            "dead_letter_replays_failed": self.dead_letters.replays_failed,
        }

    async def _store_answers(self) -> bool:
        if self.db is None:
            return False
        try:
            async with asyncio.timeout(2):
                await self.db.command("ping")
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
        return all(since is None or now - since <= limit for since in (self.assignment.batch_since, self.assignment.rebalance_since))

    async def refresh_gauges(self) -> None:
        if self.relay is not None:
            with contextlib.suppress(Exception):
                metrics.OUTBOX_BACKLOG.labels(self.name).set(await self.relay.backlog())
            metrics.OUTBOX_SET_ASIDE.labels(self.name).set(self.relay.set_aside)
        await self.assignment.refresh_lag()

    async def run_jobs(self) -> int:
        """Run every periodic job once now (tests call this after moving the clock)."""
        return await self.jobs.run_all()

    async def execute(self, key: str, effects: Effects) -> str:
        """Apply effects that no inbound event caused, once per key (the key plays the event id's part)."""
        return await self.jobs.execute(key, effects)


async def _raw_body(message: Any) -> bytes:
    body: bytes = message.body
    return body
