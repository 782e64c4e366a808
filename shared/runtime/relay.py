"""Outbox relay: publishes recorded events once they are due, in order, and marks them published.

At least once: a crash after sending and before marking re-sends on restart, with the same CloudEvents
id, which every consumer's inbox deduplicates. With several instances of a service, each relays the rows
caused on the partitions it owns (and rows of periodic jobs, which any may relay); during a rebalance two
may briefly relay the same row, with the same id.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from collections.abc import Callable
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo.asynchronous.database import AsyncDatabase

from shared.clock import Clock
from shared.runtime.metrics import OUTBOX_FAILED, OUTBOX_PUBLISHED
from shared.runtime.retry import backoff, is_transient
from shared.runtime.store import OUTBOX, OutboxStatus

log = logging.getLogger("clinic.relay")
MAX_ATTEMPTS = 5


class OutboxRelay:
    def __init__(
        self,
        db: AsyncDatabase,
        broker: KafkaBroker,
        clock: Clock,
        *,
        service: str,
        owned: Callable[[], set[int]] = set,
        poll_seconds: float,
        batch_size: int,
        retry_cap: float,
    ) -> None:
        self.service = service
        self.owned = owned
        self.db = db
        self.broker = broker
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.retry_cap = retry_cap
        self.published = 0
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
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
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()

    async def publish_due(self) -> int:
        rows = await (
            self.db[OUTBOX]
            .find({"status": OutboxStatus.PENDING.value, "due_at": {"$lte": self.clock.now()}, "partition": {"$in": [None, *sorted(self.owned())]}})
            .sort([("due_at", 1), ("seq", 1)])
            .limit(self.batch_size)
            .to_list()
        )
        if not rows:
            return 0
        pending = []
        for row in rows:
            try:
                pending.append(await self._send(row))
            except Exception as error:  # refused before it was queued (too large, say): this row's result
                pending.append(_failed_future(error))
        results = await asyncio.gather(*pending, return_exceptions=True)
        sent = [row["_id"] for row, result in zip(rows, results, strict=True) if not isinstance(result, BaseException)]
        if sent:
            await self.db[OUTBOX].update_many(
                {"_id": {"$in": sent}},
                {"$set": {"status": OutboxStatus.PUBLISHED.value, "published_at": self.clock.now()}, "$unset": {"value": ""}},
            )
            self.published += len(sent)
            OUTBOX_PUBLISHED.labels(self.service).inc(len(sent))
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                await self._failed(row, result)
        return len(rows)

    async def _send(self, row: dict[str, Any]) -> Any:
        headers = dict(row["headers"])
        return await self.broker.publish(
            bytes(row["value"]),
            topic=row["topic"],
            key=row["key"].encode() if row.get("key") else None,
            headers=headers,
            correlation_id=row.get("correlation_id"),
            no_confirm=True,
        )

    async def _failed(self, row: dict[str, Any], error: BaseException) -> None:
        if is_transient(error):
            raise error
        attempts = row.get("attempts", 0) + 1
        status = OutboxStatus.FAILED.value if attempts >= MAX_ATTEMPTS else OutboxStatus.PENDING.value
        retry_at = self.clock.now() + timedelta(seconds=min(self.retry_cap, 2**attempts))  # later rows go first meanwhile
        update = {"attempts": attempts, "status": status, "error": error.__class__.__name__, "due_at": retry_at}
        await self.db[OUTBOX].update_one({"_id": row["_id"]}, {"$set": update})
        if status == OutboxStatus.FAILED.value:
            OUTBOX_FAILED.labels(self.service).inc()
        log.error("outbox event %s (%s) not published: %s; attempt %d, now %s", row["_id"], row["type"], error.__class__.__name__, attempts, status)

    async def backlog(self) -> int:
        return await self.db[OUTBOX].count_documents({"status": OutboxStatus.PENDING.value, "due_at": {"$lte": self.clock.now()}})


def _failed_future(error: BaseException) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future
