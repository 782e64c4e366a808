"""The partitions one service instance owns, and the rebalances that change them (docs/liveness.md).

Counts assignments (a batch taken under an older one does not commit), the offset after the records
handled to the end per partition, what was committed, the partitions being taken away; commits only
partitions still owned, and commits revoked ones before they go. Also the consumer lag series of the
partitions owned (``clinic_consumer_lag``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from shared.runtime import metrics
from shared.runtime.context import Context


class Assignment:
    def __init__(self, context: Context[Any], consumer: Callable[[], Any]) -> None:
        self.context = context
        self.consumer = consumer
        """The consumer (aiokafka's, through FastStream's subscriber), None before it exists."""
        self.generation = 0
        """Counts assignments; a batch taken under an older one does not commit."""
        self.handled: dict[TopicPartition, int] = {}
        """Per partition of the current assignment, the offset after the records handled to the end."""
        self.committed: dict[TopicPartition, int] = {}
        self.revoking: set[TopicPartition] = set()
        """Partitions being taken away: their records not started yet are left to the next owner."""
        self.idle = asyncio.Event()
        self.idle.set()
        self.batch_since: float | None = None
        self.rebalance_since: float | None = None
        self.lag_series: set[TopicPartition] = set()
        """Partitions this instance has a clinic_consumer_lag series for."""

    def owned_partitions(self) -> set[int]:
        """Partition numbers this instance owns (and is not giving up in a rebalance under way)."""
        consumer = self.consumer()
        if consumer is None:
            return set()
        return {tp.partition for tp in consumer.assignment() if tp not in self.revoking}

    def giving_up(self, record: ConsumerRecord, generation: int) -> bool:
        return generation != self.generation or TopicPartition(record.topic, record.partition) in self.revoking

    def advance(self, records: tuple[ConsumerRecord, ...], done: set[tuple[str, int, int]]) -> None:
        """Per partition, the offset after the records handled without a gap."""
        by_partition: dict[TopicPartition, list[int]] = {}
        for record in records:
            by_partition.setdefault(TopicPartition(record.topic, record.partition), []).append(record.offset)
        for tp, offsets in by_partition.items():
            following = None
            for offset in sorted(offsets):
                if (tp.topic, tp.partition, offset) not in done:
                    break
                following = offset + 1
            if following is not None and following > self.handled.get(tp, -1):
                self.handled[tp] = following

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the handled offsets of the partitions this instance still owns (never another's).

        Partitions being revoked are committed by ``on_revoked`` (``only``) while the group still
        accepts it, never by a batch that finishes after that: such a late commit would be refused with
        the old generation, and aiokafka answers that refusal by resetting the member mid-join."""
        consumer = self.consumer()
        if consumer is None:
            return
        owned = consumer.assignment()
        wanted = only if only is not None else {tp for tp in self.handled if tp not in self.revoking}
        offsets = {tp: offset for tp, offset in self.handled.items() if tp in owned and tp in wanted and offset > self.committed.get(tp, -1)}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:  # rebalanced away: the next owner redelivers, the inbox makes it harmless
            self.context.log.warning("offset commit refused after a rebalance", extra={"error": error.__class__.__name__, "partitions": len(offsets)})
        except KafkaError as error:
            self.context.log.warning("offset commit failed", extra={"error": error.__class__.__name__, "partitions": len(offsets)})
        else:
            self.committed.update(offsets)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Called by the consumer before it rejoins its group: the partitions are still ours until this
        returns. Records of these partitions not started yet are left to the next owner; the ones
        started may finish (for up to ``consumer_revoke_wait_seconds``); what is handled is committed."""
        settings, log = self.context.settings, self.context.log
        self.rebalance_since = self.rebalance_since or time.monotonic()
        self.drop_lag(revoked)
        if not revoked:
            return
        self.revoking |= revoked
        if not self.idle.is_set():
            try:
                async with asyncio.timeout(settings.consumer_revoke_wait_seconds):  # not wait_for: cause 7
                    await self.idle.wait()
            except TimeoutError:
                log.warning(
                    "partitions revoked while records are still being handled; their next owner gets them again",
                    extra={"partitions": len(revoked), "waited": settings.consumer_revoke_wait_seconds},
                )
        try:  # bounded: with the broker away a commit waits for it, and the group would wait for us
            async with asyncio.timeout(settings.consumer_revoke_wait_seconds):
                await self.commit(only=revoked)
        except TimeoutError:
            log.warning("offsets of revoked partitions not committed in time; their next owner gets those records again", extra={"partitions": len(revoked)})
        log.info("partitions revoked", extra={"partitions": len(revoked), "committed": sum(1 for tp in revoked if tp in self.committed)})

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """A new assignment: positions restart from the committed offsets, so the bookkeeping does too."""
        self.generation += 1
        self.handled.clear()
        self.committed.clear()
        self.revoking.clear()
        self.drop_lag(self.lag_series - assigned)
        self.rebalance_since = None
        if self.context.relay is not None:
            self.context.relay.nudge()
        self.context.log.info("partitions assigned", extra={"partitions": len(assigned), "generation": self.generation})

    async def refresh_lag(self) -> None:
        consumer = self.consumer()
        if consumer is None:
            return
        assigned = set(consumer.assignment())
        self.drop_lag(self.lag_series - assigned)  # revoked while no listener call reached us
        for partition in assigned:
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            with contextlib.suppress(Exception):
                lag = max(0, highwater - await consumer.position(partition))
                metrics.CONSUMER_LAG.labels(self.context.name, partition.topic, str(partition.partition)).set(lag)
                self.lag_series.add(partition)

    def drop_lag(self, partitions: set[TopicPartition]) -> None:
        """Remove the lag series of partitions this instance no longer owns: their lag is the new
        owner's to report, and a stale series would alert on a partition nobody here consumes."""
        for partition in partitions & self.lag_series:
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self.context.name, partition.topic, str(partition.partition))
            self.lag_series.discard(partition)


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped: its base class is Any
    """Hands the consumer's rebalance callbacks to the assignment (aiokafka awaits them in its coordinator)."""

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.assignment.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assignment.on_assigned(set(assigned))
