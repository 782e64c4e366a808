"""The service's own database: inbox (dedup and write-ahead record of effects) and outbox.

Only single-document atomicity and unique ``_id``s are relied on: MongoDB without a replica set has no
multi-document transactions, and neither does the local FerretDB stand-in. Every read and write here
is addressed by ``_id`` (the one filter the local store serves from an index), so the cost of an event
does not grow with the number of events handled before it.

Life of an inbound event:
1. ``inbox`` gets one document, ``_id`` = source + event id, holding every write and every outgoing
   event (already encoded) the handler decided on, packed into one BSON binary field (``effects``, see
   ``pack``). Status ``recorded``. Atomic: one insert.
2. The writes are applied (each idempotent), delayed events go into ``outbox`` under their
   deterministic ids, cancelled delayed events are removed.
3. The events due now are published by the consumer itself (idempotent producer, ``acks=all``).
4. The inbox document becomes ``applied`` (one bulk update for a whole batch of events); only then is
   the Kafka offset committed.
Steps 1 and 2 of the events a process handles at once (different patients' events of one batch) go to the
store together: their records in one insert, their writes in one ordered request per collection
(``GroupCommit``, shared/runtime/locks.py); a record or write the store refuses is then made alone, so a
refusal is only its own event's. A group's commands run under the trace of its first event.
A redelivered event whose inbox document is ``applied`` changes nothing; one that is still ``recorded``
(the process died in steps 2-4) has its recorded effects applied and its events published again (same
ids, so consumers drop the repeats), not recomputed.

The outbox therefore holds only what is not published yet: delayed events (reminders, check-ins), the
events of periodic jobs, and rows set aside after repeated refusals. Published rows are deleted.
"""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeAlias

import bson
from bson.binary import Binary
from bson.codec_options import CodecOptions, TypeRegistry
from pymongo import AsyncMongoClient, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, InvalidURI, OperationFailure

from shared.envelope import CloudEvent, encode, new_event
from shared.runtime.effects import Delete, Effects, Insert, Merge, Put, Write
from shared.runtime.locks import GroupCommit
from shared.runtime.metrics import STORE_COMMANDS
from shared.runtime.retry import is_transient
from shared.runtime.tracing import current_traceparent
from shared.settings import redact

INBOX = "inbox"
OUTBOX = "outbox"
EFFECTS = "effects"
"""The inbox record's packed writes, outgoing rows and cancellations, dropped once they are applied."""
DROPPED_WHEN_APPLIED = {EFFECTS: "", "writes": "", "outbox": "", "cancel": ""}
"""``$unset`` of an applied record: its packed effects, and the fields records held before they were packed."""
DUPLICATE_KEY = 11000
UNAUTHORIZED, AUTHENTICATION_FAILED = 13, 18
Database: TypeAlias = AsyncDatabase[dict[str, Any]]
"""A service's database: documents are plain dicts."""
Collection: TypeAlias = AsyncCollection[dict[str, Any]]
_NAMESPACE = uuid.UUID("0b5c3e52-7c1e-4a55-9d0f-6a1f4a8e2c10")


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    FAILED = "failed"
    """Refused by the broker MAX_ATTEMPTS times; kept for an operator to look at and re-drive."""


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


CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, tzinfo=UTC, type_registry=TypeRegistry(fallback_encoder=_fallback))


def pack(fields: dict[str, Any]) -> Binary:
    """Fields a reader only ever needs whole, as one BSON binary value.

    The embedded store (FerretDB v1 on SQLite) keeps documents as JSON with a schema and decodes every
    element of a document it reads, also to update it: its cost grows with the number of fields and array
    items, not with bytes (a document of 1,300 nested elements took 23 ms to read, the same 21 KB packed
    into one value 2 ms). So what is only read whole (an inbox record's effects, a week's demand) is
    stored packed; what operators query or an update addresses by path stays a field."""
    return Binary(bson.encode(fields, codec_options=CODEC))


def unpack(value: Any) -> dict[str, Any]:
    return bson.decode(bytes(value), codec_options=CODEC)


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


def connect(url: str, app_name: str, service: str | None = None, listeners: Sequence[monitoring.CommandListener] = ()) -> AsyncMongoClient[dict[str, Any]]:
    """One client per process; PyMongo pools connections. Short server selection so failures surface.
    With ``service``, every command is counted in the metrics under that name; ``listeners`` are
    further command listeners (the tracing's store spans)."""
    listeners = [*([CommandCounter(service)] if service else []), *listeners]
    try:
        return AsyncMongoClient(url, appname=app_name, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, tz_aware=True, event_listeners=listeners)
    except ValueError as error:  # the URI parser raises plain ValueErrors too; say which setting, never its value
        raise InvalidURI(f"MONGODB_URL is not a valid connection string: {redact(str(error))}") from None


def refusal(error: BaseException, database: str | None = None) -> str | None:
    """One line saying which credential or role is missing when the store refused us; None otherwise."""
    code = error.code if isinstance(error, OperationFailure) else None
    if code == AUTHENTICATION_FAILED:
        return "the store refused the credentials in MONGODB_URL: check its user, password and authSource"
    if code == UNAUTHORIZED:
        where = f"database {database}: it needs the role readWrite on {database}" if database else "that database: it needs a role on it (README, Security)"
        return f"the store's user in MONGODB_URL may not use {where}"
    return None


class _KeptCollections(AsyncDatabase[dict[str, Any]]):
    """A database that makes each collection object once. PyMongo builds a new ``AsyncCollection`` (name
    checks, options resolved from the database) on every ``db[name]``, which was 2-5% of a service's CPU
    at a handful of look-ups per event; a collection object holds no state of its own, so one per name
    serves every caller. ``get_collection`` with other options still makes a fresh one."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], name: str) -> None:
        super().__init__(client, name, codec_options=CODEC)
        self._kept: dict[str, Collection] = {}

    def __getitem__(self, name: str) -> Collection:
        kept = self._kept.get(name)
        if kept is None:
            kept = self._kept[name] = super().__getitem__(name)
        return kept


def database(client: AsyncMongoClient[dict[str, Any]], name: str) -> Database:
    return _KeptCollections(client, name)


async def ensure_indexes(db: Database) -> None:
    """Nothing to create: the inbox and the outbox are only ever addressed by ``_id``. Touching the
    store here makes start-up wait until it answers."""
    await db.command("ping")


def derived_id(*parts: object) -> str:
    """Deterministic id: the same cause always yields the same id, so re-applying deduplicates."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


def inbox_id(event: CloudEvent[Any]) -> str:
    return f"{event.source}|{event.id}"


def outgoing(
    cause: CloudEvent[Any] | None, effects: Effects, source: str, now: datetime, topic_prefix: str, seed: str = "", partition: int | None = None
) -> list[dict[str, Any]]:
    """Outbox rows for the effects' events, encoded now so the relay only has to send bytes.

    ``partition`` is the inbound partition that caused them: the instance that owns that partition
    relays them, so several instances of a service do not all publish the same rows."""
    rows = []
    traceparent = current_traceparent()  # the span handling the cause, when spans are recorded
    for index, emit in enumerate(effects.events):
        event_id = emit.id or derived_id(cause.id if cause else seed, index, emit.data.event_type)
        if cause is not None:
            event = cause.caused(emit.data, source=source, id=event_id, time=now, traceparent=traceparent)
        else:
            event = new_event(emit.data, source=source, id=event_id, time=now, traceparent=traceparent)
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


async def record(db: Database, key: str, event: CloudEvent[Any] | None, effects: Effects, rows: list[dict[str, Any]], now: datetime, where: dict[str, Any]) -> dict[str, Any]:
    """Step 1: the write-ahead inbox document. Returns the stored document (ours or an earlier one)."""
    recorded = {"writes": [_write_doc(w) for w in effects.writes], "outbox": rows, "cancel": list(effects.cancel)}
    document = {
        "_id": key,
        "status": "recorded",
        "type": event.type if event else None,
        "outcome": effects.outcome,
        "received_at": now,
        **where,
        "event_ids": [r["_id"] for r in rows],
        EFFECTS: pack(recorded),
    }
    inserted = await _RECORDS.submit(id(db), (db, document))
    if isinstance(inserted, Exception):
        raise inserted
    if not inserted:  # the key is taken: an earlier attempt recorded this event
        existing = await inbox_record(db, key)
        if existing is not None:
            return existing
        await db[INBOX].insert_one(document)  # gone since (the inbox aged it out): ours, or the store's refusal
    return {**document, **recorded}


async def _insert_records(_db: int, records: list[tuple[Database, dict[str, Any]]]) -> list[bool | Exception]:
    """The write-ahead records of the events a process handles at once, in one unordered insert; False for
    a record whose ``_id`` was taken. A failure of another kind is each record's own: each is then inserted
    alone (an oversized record fails its own event, not its neighbours')."""
    db, documents = records[0][0], [document for _, document in records]
    if len(documents) > 1:
        failed = await _own_failure(db[INBOX].insert_many(documents, ordered=False))
        if failed is None:
            return [True] * len(documents)
        details = failed.details if isinstance(failed, BulkWriteError) else {}
        problems = details.get("writeErrors", [])
        if problems and not details.get("writeConcernErrors") and all(p.get("code") == DUPLICATE_KEY for p in problems):
            refused = {p["index"] for p in problems}
            return [index not in refused for index in range(len(documents))]
    return list(await asyncio.gather(*(_insert_record(db, document) for document in documents)))


async def _insert_record(db: Database, document: dict[str, Any]) -> bool | Exception:
    """One record: False when its ``_id`` is taken, else its own failure or True."""
    failed = await _own_failure(db[INBOX].insert_one(document))
    if isinstance(failed, DuplicateKeyError):
        return False
    return True if failed is None else failed


async def _own_failure(work: Awaitable[Any]) -> Exception | None:
    """None when ``work`` succeeds; its failure when that is its own (``record`` or ``apply`` raises it for
    its event). A transient one is raised, for the whole group to retry."""
    try:
        await work
    except Exception as error:
        if is_transient(error):
            raise
        return error
    return None


_RECORDS: GroupCommit[int, tuple[Database, dict[str, Any]], bool | Exception] = GroupCommit(_insert_records, "inbox-records")
"""Step 1 of the events a process handles at once, by database object (two clients' objects of one database
compare equal, and each instance writes through its own client)."""


async def inbox_record(db: Database, key: str) -> dict[str, Any] | None:
    """The inbox document of an event, its recorded effects unpacked (``writes``, ``outbox``, ``cancel``)."""
    document = await db[INBOX].find_one({"_id": key})
    return None if document is None else unpacked(document)


async def inbox_records(db: Database, keys: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """The inbox documents of several events in one round trip, as stored (``unpacked`` opens one, when
    its event is handled); None for those the inbox does not hold."""
    wanted = list(keys)
    found = await by_ids(db[INBOX], wanted)
    return {key: found.get(key) for key in wanted}


async def by_ids(collection: Collection, ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    """The documents with these ``_id``s that exist, by ``_id``, in one read (``$in``, which MongoDB and our
    FerretDB build both serve from the ``_id`` index; infra/local.py, FERRETDB_ID_FILTER)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    return {document["_id"]: document async for document in collection.find({"_id": {"$in": wanted}})}


def unpacked(document: dict[str, Any]) -> dict[str, Any]:
    """An inbox document with its recorded effects unpacked (``writes``, ``outbox``, ``cancel``)."""
    if EFFECTS in document:
        document.update(unpack(document.pop(EFFECTS)))
    return document


async def apply(db: Database, document: dict[str, Any], now: datetime, *, publish_inline: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Step 2: apply recorded effects; every operation is idempotent. Returns the rows the caller
    publishes itself (with ``publish_inline``, those due now) and the rows stored in the outbox.
    The effects of the events a process handles at once are applied together (``_apply_group``)."""
    rows = document.get("outbox", [])
    inline = [r for r in rows if publish_inline and r["due_at"] <= now]
    stored = [r for r in rows if not (publish_inline and r["due_at"] <= now)]
    steps = _batches(document.get("writes", []))
    if stored:
        steps.append((OUTBOX, [InsertOne(dict(r)) for r in stored]))
    if document.get("cancel"):
        steps.append((OUTBOX, [DeleteOne({"_id": id}) for id in document["cancel"]]))
    if steps and (failed := await _APPLIES.submit(id(db), (db, steps))) is not None:
        raise failed
    return inline, stored


async def _apply_group(_db: int, applies: list[tuple[Database, list[tuple[str, list[Any]]]]]) -> list[Exception | None]:
    """Several events' writes, one ordered bulk request per collection: each event's writes to one
    collection keep their order (the events are different patients', handled at once, so no order
    between them is owed). When the group's request fails, each event applies its own writes alone, so
    that a failure is its own event's."""
    db, groups = applies[0][0], [steps for _, steps in applies]
    if len(groups) > 1:
        merged: dict[str, list[Any]] = {}
        for steps in groups:
            for collection, operations in steps:
                merged.setdefault(collection, []).extend(operations)
        if await _own_failure(_apply_steps(db, list(merged.items()))) is None:
            return [None] * len(groups)
    return list(await asyncio.gather(*(_own_failure(_apply_steps(db, steps)) for steps in groups)))


async def _apply_steps(db: Database, steps: list[tuple[str, list[Any]]]) -> None:
    for collection, operations in steps:
        await _bulk(db[collection], operations)


_APPLIES: GroupCommit[int, tuple[Database, list[tuple[str, list[Any]]]], Exception | None] = GroupCommit(_apply_group, "effects")
"""Step 2 of the events a process handles at once, by database object (as ``_RECORDS``)."""


async def keep(db: Database, row: dict[str, Any], error: BaseException) -> None:
    """An event the broker refused when it was due: into the outbox, counted as one failed attempt."""
    await db[OUTBOX].replace_one({"_id": row["_id"]}, {**row, "attempts": 1, "error": error.__class__.__name__}, upsert=True)


async def mark_applied(db: Database, documents: list[dict[str, Any]], now: datetime) -> None:
    """Step 4, for several inbox documents in one round trip: effects applied, events published.

    One statement for the batch (``_id`` ``$in``): our FerretDB build writes the documents one statement
    modifies in one transaction (infra/local.py, FERRETDB_UPDATE_BATCH), where a statement per document
    cost a commit each. A record written before ``event_ids`` was part of it gets them set on its own."""
    if not documents:
        return
    applied, dropped = {"status": "applied", "applied_at": now}, DROPPED_WHEN_APPLIED
    listed: list[str] = []
    unlisted: list[UpdateOne] = []
    for document in documents:
        event_ids = [r["_id"] for r in document.get("outbox", [])]
        if document.get("event_ids") == event_ids:
            listed.append(document["_id"])
        else:
            unlisted.append(UpdateOne({"_id": document["_id"]}, {"$set": {**applied, "event_ids": event_ids}, "$unset": dropped}))
    operations = [UpdateMany({"_id": {"$in": listed}}, {"$set": applied, "$unset": dropped})] if listed else []
    await db[INBOX].bulk_write([*operations, *unlisted], ordered=False)


def _batches(writes: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """Consecutive writes to one collection go in one bulk request, in their order."""
    batches: list[tuple[str, list[Any]]] = []
    for write in writes:
        operation = _operation(write)
        if batches and batches[-1][0] == write["c"]:
            batches[-1][1].append(operation)
        else:
            batches.append((write["c"], [operation]))
    return batches


def _operation(write: dict[str, Any]) -> Any:
    match write["op"]:
        case "put":
            return ReplaceOne({"_id": write["id"]}, {**write["doc"], "_id": write["id"]}, upsert=True)
        case "merge":
            return UpdateOne({"_id": write["id"]}, {"$set": write["doc"]}, upsert=True)
        case "insert":
            return InsertOne(dict(write["doc"]))
        case "delete":
            return DeleteOne({"_id": write["id"]})
    raise ValueError(f"unknown write {write['op']!r}")


async def _bulk(collection: Any, operations: list[Any]) -> None:
    """Ordered, so writes to one document land in the order decided; an insert that finds its document
    already there (a re-applied record) is skipped and the rest still run."""
    while operations:
        try:
            await collection.bulk_write(operations, ordered=True)
            return
        except BulkWriteError as error:
            failed = error.details.get("writeErrors", [])
            if not failed or failed[0].get("code") != DUPLICATE_KEY or not isinstance(operations[failed[0]["index"]], InsertOne):
                raise
            operations = operations[failed[0]["index"] + 1 :]
