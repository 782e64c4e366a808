"""The service's own database: inbox (dedup and write-ahead record of effects) and outbox.

Only single-document atomicity and unique ``_id``s are relied on: MongoDB without a replica set has no
multi-document transactions, and neither does the local FerretDB stand-in.

Life of an inbound event:
1. ``inbox`` gets one document, ``_id`` = source + event id, holding every write and every outgoing
   event (already encoded) the handler decided on. Status ``recorded``. Atomic: one insert.
2. The writes are applied (each idempotent), outgoing events are inserted into ``outbox`` with their
   deterministic ids, cancelled delayed events are removed. Then the inbox document becomes ``applied``.
3. Only then is the Kafka offset committed.
A redelivered event whose inbox document is ``applied`` changes nothing; one that is still ``recorded``
(the process died during step 2) has its recorded effects applied again, not recomputed.
"""

from __future__ import annotations

import enum
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from bson.codec_options import CodecOptions, TypeRegistry
from pymongo import ASCENDING, AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.envelope import CloudEvent, encode, new_event
from shared.runtime.effects import Delete, Effects, Insert, Merge, Put, Write
from shared.runtime.metrics import STORE_COMMANDS

INBOX = "inbox"
OUTBOX = "outbox"
_NAMESPACE = uuid.UUID("0b5c3e52-7c1e-4a55-9d0f-6a1f4a8e2c10")


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    PUBLISHED = "published"
    FAILED = "failed"


def _fallback(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return value


CODEC = CodecOptions(tz_aware=True, tzinfo=UTC, type_registry=TypeRegistry(fallback_encoder=_fallback))


class CommandCounter(monitoring.CommandListener):
    """Counts every command the client sends (one per round trip) in ``clinic_store_commands_total``."""

    def __init__(self, service: str) -> None:
        self.service = service

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        STORE_COMMANDS.labels(self.service, event.command_name).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def connect(url: str, app_name: str, service: str | None = None) -> AsyncMongoClient:
    """One client per process; PyMongo pools connections. Short server selection so failures surface.
    With ``service``, every command is counted in the metrics under that name."""
    listeners = [CommandCounter(service)] if service else []
    return AsyncMongoClient(url, appname=app_name, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, tz_aware=True, event_listeners=listeners)


def database(client: AsyncMongoClient, name: str) -> AsyncDatabase:
    return client.get_database(name, codec_options=CODEC)


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db[OUTBOX].create_index([("status", ASCENDING), ("due_at", ASCENDING), ("seq", ASCENDING)], name="due")
    await db[INBOX].create_index([("status", ASCENDING)], name="status")


def derived_id(*parts: object) -> str:
    """Deterministic id: the same cause always yields the same id, so re-applying deduplicates."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


def inbox_id(event: CloudEvent) -> str:
    return f"{event.source}|{event.id}"


def outgoing(
    cause: CloudEvent | None, effects: Effects, source: str, now: datetime, topic_prefix: str, seed: str = "", partition: int | None = None
) -> list[dict[str, Any]]:
    """Outbox rows for the effects' events, encoded now so the relay only has to send bytes.

    ``partition`` is the inbound partition that caused them: the instance that owns that partition
    relays them, so several instances of a service do not all publish the same rows."""
    rows = []
    for index, emit in enumerate(effects.events):
        event_id = emit.id or derived_id(cause.id if cause else seed, index, emit.data.event_type)
        if cause is not None:
            event = cause.caused(emit.data, source=source, id=event_id, time=now)
        else:
            event = new_event(emit.data, source=source, id=event_id, time=now)
        value, headers = encode(event)
        rows.append(
            {
                "_id": event_id,
                "status": OutboxStatus.PENDING.value,
                "topic": f"{topic_prefix}{event.type}",
                "type": event.type,
                "key": event.key,
                "value": value,
                # a sub-document, not pairs: FerretDB v1 rejects nested arrays
                "headers": {k: v.decode() for k, v in headers},
                "correlation_id": event.correlation_id,
                "due_at": emit.due_at or now,
                "created_at": now,
                "seq": time.time_ns() + index,
                "partition": partition,
                "attempts": 0,
            }
        )
    return rows


def _write_doc(write: Write) -> dict[str, Any]:
    match write:
        case Put(collection, id, document):
            return {"op": "put", "c": collection, "id": id, "doc": document}
        case Merge(collection, id, fields):
            return {"op": "merge", "c": collection, "id": id, "doc": fields}
        case Insert(collection, document):
            return {"op": "insert", "c": collection, "doc": document}
        case Delete(collection, id):
            return {"op": "delete", "c": collection, "id": id}
    raise TypeError(f"not a write: {write!r}")


async def record(db: AsyncDatabase, key: str, event: CloudEvent | None, effects: Effects, rows: list[dict[str, Any]], now: datetime, where: dict[str, Any]) -> dict[str, Any]:
    """Step 1: the write-ahead inbox document. Returns the stored document (ours or an earlier one)."""
    document = {
        "_id": key,
        "status": "recorded",
        "type": event.type if event else None,
        "outcome": effects.outcome,
        "received_at": now,
        **where,
        "writes": [_write_doc(w) for w in effects.writes],
        "outbox": rows,
        "cancel": list(effects.cancel),
    }
    try:
        await db[INBOX].insert_one(document)
    except DuplicateKeyError:
        existing = await db[INBOX].find_one({"_id": key})
        if existing is not None:
            return existing
        raise
    return document


async def apply(db: AsyncDatabase, document: dict[str, Any], now: datetime) -> None:
    """Step 2: apply recorded effects; every operation is idempotent."""
    for write in document.get("writes", []):
        collection = db[write["c"]]
        match write["op"]:
            case "put":
                await collection.replace_one({"_id": write["id"]}, {**write["doc"], "_id": write["id"]}, upsert=True)
            case "merge":
                await collection.update_one({"_id": write["id"]}, {"$set": write["doc"]}, upsert=True)
            case "insert":
                try:
                    await collection.insert_one(dict(write["doc"]))
                except DuplicateKeyError:
                    pass
            case "delete":
                await collection.delete_one({"_id": write["id"]})
    rows = document.get("outbox", [])
    if rows:
        try:
            await db[OUTBOX].insert_many([dict(r) for r in rows], ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
                raise
    if document.get("cancel"):
        await db[OUTBOX].delete_many({"_id": {"$in": document["cancel"]}, "status": OutboxStatus.PENDING.value})
    await db[INBOX].update_one(
        {"_id": document["_id"]},
        {"$set": {"status": "applied", "applied_at": now, "writes": [], "event_ids": [r["_id"] for r in rows]}, "$unset": {"outbox": ""}},
    )
