"""What operators ask of a service's outbox: the events it set aside, and sending them again.

An event the broker refused ``MAX_ATTEMPTS`` times (too large, say) stays in the service's ``outbox``
collection with status ``failed``: nothing is dropped silently. After the cause is fixed (a larger
``max.message.bytes`` on the topic, for instance) ``redrive`` publishes the rows again, with their
original ids, and removes those that went out. Reading the whole outbox is fine here: it holds only
what is not published yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.runtime.kafka import ensure_topics
from shared.runtime.kafka_client import Kafka
from shared.runtime.store import OUTBOX, OutboxStatus


@dataclass(frozen=True)
class SetAside:
    id: str
    type: str
    topic: str
    key: str | None
    attempts: int
    error: str
    due_at: datetime
    size: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> SetAside:
        return cls(row["_id"], row["type"], row["topic"], row.get("key"), row.get("attempts", 0), row.get("error", ""), row["due_at"], len(row.get("value", b"")))


async def set_aside(db: AsyncDatabase, ids: list[str] | None = None) -> list[SetAside]:
    rows = await db[OUTBOX].find({"status": OutboxStatus.FAILED.value}).to_list()
    return sorted((SetAside.of(r) for r in rows if not ids or r["_id"] in ids), key=lambda r: r.due_at)


async def redrive(db: AsyncDatabase, kafka: Kafka, ids: list[str] | None = None, *, partitions: int = 3, dry_run: bool = False) -> list[tuple[SetAside, str | None]]:
    """Publish the set-aside rows (all, or those named); returns each with None when it went out, or
    the error's class when the broker refused it again (it then stays set aside)."""
    chosen = await set_aside(db, ids)
    if dry_run or not chosen:
        return [(row, None) for row in chosen]
    # the broker creates no topic on demand, and a deployment's topics may have been re-created meanwhile
    await ensure_topics(kafka.bootstrap, sorted({row.topic for row in chosen}), partitions, options=kafka.options, timeout=10.0)
    producer = kafka.producer(enable_idempotence=True, acks="all")
    results = []
    try:  # a failed start is stopped too (no "Unclosed AIOKafkaProducer" on the way out)
        await producer.start()
        for row in chosen:
            document = await db[OUTBOX].find_one({"_id": row.id})
            if document is None:  # the service sent it meanwhile
                continue
            try:
                await producer.send_and_wait(
                    document["topic"], bytes(document["value"]), key=row.key.encode() if row.key else None,
                    headers=[(k, v.encode()) for k, v in document["headers"].items()],
                )
            except Exception as error:  # refused again: keep it, say why
                await db[OUTBOX].update_one({"_id": row.id}, {"$set": {"error": error.__class__.__name__}})
                results.append((row, error.__class__.__name__))
                continue
            await db[OUTBOX].delete_one({"_id": row.id})
            results.append((row, None))
    finally:
        await producer.stop()
    return results
