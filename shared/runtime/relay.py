"""Outbox relay: publishes the events that were not published with their cause, once they are due.

Events due now are published by the consumer right after their effects are applied; what reaches the
outbox is what waits: delayed events (reminders, check-ins), the events of periodic jobs, and rows the
broker refused. The relay keeps the due times of the rows it is responsible for in memory (a heap), so
finding what is due costs nothing per event; each due row is read by ``_id``, published and deleted.
The heap is filled from one read of the outbox at start, whenever this instance's partitions change,
and every ``rescan_seconds`` as a safety net; it is fed directly by the rows this process stores.

At least once: a crash after sending and before deleting re-sends on restart, with the same CloudEvents
id, which every consumer's inbox deduplicates. With several instances of a service, each relays the rows
caused on the partitions it owns (and rows of periodic jobs, which any may relay).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import DeleteOne

from shared.clock import Clock
from shared.runtime.metrics import OUTBOX_FAILED, OUTBOX_PUBLISHED
from shared.runtime.retry import backoff, is_transient
from shared.runtime.store import OUTBOX, Database, OutboxStatus, by_ids
from shared.runtime.tracing import Tracing, finish

log = logging.getLogger("clinic.relay")
MAX_ATTEMPTS = 5

Due = tuple[datetime, int, str, "int | None"]
"""A heap entry: due time, sequence (ties keep their order), row id, inbound partition."""


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        broker: KafkaBroker,
        clock: Clock,
        *,
        service: str,
        owned: Callable[[], set[int]] = set,
        poll_seconds: float,
        batch_size: int,
        retry_cap: float,
        rescan_seconds: float = 300.0,
        ensure_topics: Callable[[Iterable[str]], Awaitable[None]] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.tracing = tracing
        self.service = service
        self.owned = owned
        self.db = db
        self.broker = broker
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.retry_cap = retry_cap
        self.rescan_seconds = rescan_seconds
        self.ensure_topics = ensure_topics
        self.published = 0
        self.set_aside = 0
        """Rows refused MAX_ATTEMPTS times, as of the last read of the outbox."""
        self._due: list[Due] = []
        self._wake = asyncio.Event()
        self._loaded_for: frozenset[int] | None = None
        self._loaded_at = 0.0

    def nudge(self) -> None:
        self._wake.set()

    def schedule(self, rows: Iterable[dict[str, Any]]) -> None:
        """Rows this process just stored in the outbox."""
        for row in rows:
            heapq.heappush(self._due, _entry(row))
        self.nudge()

    async def load(self) -> None:
        """Read the whole outbox once: it holds only unpublished rows, so it stays small."""
        owned = frozenset(self.owned())
        rows = await self.db[OUTBOX].find({}, {"due_at": 1, "seq": 1, "partition": 1, "status": 1}).to_list()
        pending = [r for r in rows if r.get("status") == OutboxStatus.PENDING.value]
        self._due = [_entry(r) for r in pending if r.get("partition") is None or r["partition"] in owned]
        heapq.heapify(self._due)
        self.set_aside = len(rows) - len(pending)
        self._loaded_for = owned
        self._loaded_at = time.monotonic()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                if self._loaded_for != frozenset(self.owned()) or time.monotonic() - self._loaded_at > self.rescan_seconds:
                    await self.load()
                sent = await self.publish_due()
                failures = 0
            except Exception as error:
                if not is_transient(error):
                    log.exception("outbox relay round failed")
                else:
                    log.warning("outbox relay waiting for broker/store: %s", error.__class__.__name__)
                failures += 1
                await asyncio.sleep(backoff(failures, self.retry_cap))
                continue
            if sent >= self.batch_size:
                continue
            # ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` swallows a cancellation
            # that arrives in the same loop step as the wake-up, and the relay then outlived its
            # service's stop (docs/liveness.md, cause 7).
            try:
                async with asyncio.timeout(self._idle_seconds()):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    def _idle_seconds(self) -> float:
        if not self._due:
            return self.poll_seconds
        until = (self._due[0][0] - self.clock.now()).total_seconds()
        return max(0.0, min(self.poll_seconds, until))

    async def publish_due(self) -> int:
        """Publish up to ``batch_size`` due rows; returns how many were due."""
        now, owned = self.clock.now(), self.owned()
        entries: list[Due] = []
        while self._due and self._due[0][0] <= now and len(entries) < self.batch_size:
            entry = heapq.heappop(self._due)
            if entry[3] is None or entry[3] in owned:  # another instance relays the rest (read again if they come back)
                entries.append(entry)
        if not entries:
            return 0
        try:
            stored = await by_ids(self.db[OUTBOX], (entry[2] for entry in entries))
            found = [stored.get(entry[2]) for entry in entries]  # in the order they fell due
        except Exception:
            self.schedule(_row_of(e) for e in entries)
            raise
        rows = [row for row in found if row is not None and row["status"] == OutboxStatus.PENDING.value]  # None: cancelled or relayed
        if self.ensure_topics is not None:
            try:
                await self.ensure_topics(row["topic"] for row in rows)
            except Exception:
                self.schedule(rows)
                raise
        results = await publish(self.broker, rows, self.tracing)
        sent = [row for row, error in zip(rows, results, strict=True) if error is None]
        if sent:
            await self.db[OUTBOX].bulk_write([DeleteOne({"_id": row["_id"]}) for row in sent], ordered=False)
            self.published += len(sent)
            OUTBOX_PUBLISHED.labels(self.service).inc(len(sent))
        refused = [(row, error) for row, error in zip(rows, results, strict=True) if error is not None]
        transient = [row for row, error in refused if is_transient(error)]
        if transient:  # the broker is away: keep them due and let run() back off
            self.schedule(transient)
            raise next(error for _, error in refused if is_transient(error))
        for row, error in refused:
            await self._refused(row, error)
        return len(entries)

    async def _refused(self, row: dict[str, Any], error: BaseException) -> None:
        attempts = row.get("attempts", 0) + 1
        status = OutboxStatus.FAILED.value if attempts >= MAX_ATTEMPTS else OutboxStatus.PENDING.value
        retry_at = self.clock.now() + timedelta(seconds=min(self.retry_cap, 2**attempts))  # later rows go first meanwhile
        update = {"attempts": attempts, "status": status, "error": error.__class__.__name__, "due_at": retry_at}
        await self.db[OUTBOX].update_one({"_id": row["_id"]}, {"$set": update})
        if status == OutboxStatus.FAILED.value:
            self.set_aside += 1
            OUTBOX_FAILED.labels(self.service).inc()
        else:
            self.schedule([{**row, **update}])
        log.error("outbox event %s (%s) not published: %s; attempt %d, now %s", row["_id"], row["type"], error.__class__.__name__, attempts, status)

    async def backlog(self) -> int:
        now = self.clock.now()
        return sum(1 for entry in self._due if entry[0] <= now)


async def publish(broker: KafkaBroker, rows: list[dict[str, Any]], tracing: Tracing | None = None) -> list[BaseException | None]:
    """Send the rows in their order and wait for the broker's acknowledgements; one result per row,
    None when it was written. Used by the relay and by the consumer for the events due at once.
    With ``tracing``, each publication is a PRODUCER span whose context goes out as ``traceparent``."""
    sending = tracing.producing(rows) if tracing is not None else [(None, dict(row["headers"])) for row in rows]
    pending = []
    for row, (_, headers) in zip(rows, sending, strict=True):
        try:
            pending.append(await _send(broker, row, headers))
        except Exception as error:  # refused before it was queued (too large, say): this row's result
            pending.append(_failed_future(error))
    results = await asyncio.gather(*pending, return_exceptions=True)
    errors = [result if isinstance(result, BaseException) else None for result in results]
    for (span, _), failure in zip(sending, errors, strict=True):
        finish(span, failure)
    return errors


async def _send(broker: KafkaBroker, row: dict[str, Any], headers: dict[str, str]) -> Any:
    return await broker.publish(
        bytes(row["value"]),
        topic=row["topic"],
        key=row["key"].encode() if row.get("key") else None,
        headers=headers,
        correlation_id=row.get("correlation_id"),
        no_confirm=True,
    )


def _entry(row: dict[str, Any]) -> Due:
    return (row["due_at"], row.get("seq", 0), row["_id"], row.get("partition"))


def _row_of(entry: Due) -> dict[str, Any]:
    return {"due_at": entry[0], "seq": entry[1], "_id": entry[2], "partition": entry[3]}


def _failed_future(error: BaseException) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future
