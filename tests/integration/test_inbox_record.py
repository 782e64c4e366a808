"""The inbox record on the real store: its effects packed into one value, applied once, then dropped; a
record written before they were packed (still ``recorded`` when a deployment is upgraded) is applied too,
also when it is settled in one batch with new ones. The events a process handles at once are recorded in one
insert and applied in one write per collection, and a write the store refuses fails only its own event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pymongo import monitoring

from shared.runtime import Effects
from shared.runtime.retry import is_transient
from shared.runtime.store import EFFECTS, INBOX, OUTBOX, apply, connect, database, inbox_record, mark_applied, record

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
LATER = datetime(2026, 3, 9, 9, tzinfo=UTC)


def row(event_id: str, due_at: datetime) -> dict:
    return {"_id": event_id, "status": "pending", "topic": "t", "type": "clinic.x.v1", "key": "pt_A", "value": b"{}", "headers": {}, "due_at": due_at, "seq": 1}


async def test_a_record_packs_its_effects_applies_them_and_drops_them_once_applied(settings, run_id):
    client = connect(settings.mongodb_url.get_secret_value(), "test-inbox-record")
    try:
        db = database(client, f"{settings.database_prefix}inbox{run_id}")
        effects = Effects().put("things", "a", {"n": 1}).merge("things", "b", n=2)
        stored = await record(db, "src|e1", None, effects, [row("now", NOW), row("later", LATER)], NOW, {"partition": 0})
        raw = await db[INBOX].find_one({"_id": "src|e1"})
        again = await record(db, "src|e1", None, Effects(), [], NOW, {})  # a redelivery finds the first record
        inline, kept = await apply(db, again, NOW)
        await mark_applied(db, [stored], NOW)
        applied = await db[INBOX].find_one({"_id": "src|e1"})
        things = await db["things"].find({}).sort("_id", 1).to_list()
        outbox = await db[OUTBOX].find({}).to_list()
    finally:
        await client.close()

    assert set(raw) == {"_id", "status", "type", "outcome", "received_at", "partition", "event_ids", EFFECTS}
    assert raw["event_ids"] == ["now", "later"]
    assert [r["_id"] for r in again["outbox"]] == ["now", "later"] and len(again["writes"]) == 2
    assert [r["_id"] for r in inline] == ["now"] and [r["_id"] for r in kept] == ["later"]
    assert things == [{"_id": "a", "n": 1}, {"_id": "b", "n": 2}]
    assert [r["_id"] for r in outbox] == ["later"] and outbox[0]["value"] == b"{}"
    assert applied["status"] == "applied" and EFFECTS not in applied and applied["event_ids"] == ["now", "later"]


async def test_a_record_written_before_effects_were_packed_is_still_applied(settings, run_id):
    client = connect(settings.mongodb_url.get_secret_value(), "test-inbox-record")
    try:
        db = database(client, f"{settings.database_prefix}inbox{run_id}")
        legacy = {
            "_id": "src|old",
            "status": "recorded",
            "type": "clinic.x.v1",
            "outcome": "done",
            "received_at": NOW,
            "writes": [{"op": "put", "c": "things", "id": "c", "doc": {"n": 3}}],
            "outbox": [row("old-later", LATER)],
            "cancel": [],
        }
        await db[INBOX].insert_one(legacy)
        found = await inbox_record(db, "src|old")
        _, kept = await apply(db, found, NOW)
        fresh = [await record(db, f"src|new{i}", None, Effects(), [row(f"new{i}", LATER)], NOW, {}) for i in range(3)]
        await mark_applied(db, [found, *fresh], NOW)  # the old record and new ones settled in one batch
        applied = await db[INBOX].find_one({"_id": "src|old"})
        others = await db[INBOX].find({"_id": {"$in": ["src|new0", "src|new1", "src|new2"]}}).sort("_id", 1).to_list()
        thing = await db["things"].find_one({"_id": "c"})
    finally:
        await client.close()

    assert thing == {"_id": "c", "n": 3} and [r["_id"] for r in kept] == ["old-later"]
    assert applied["status"] == "applied" and "writes" not in applied and "outbox" not in applied
    assert applied["event_ids"] == ["old-later"]  # set by the batch's update, as the record had none
    assert [(d["status"], d["event_ids"], EFFECTS in d) for d in others] == [("applied", [f"new{i}"], False) for i in range(3)]


class Commands(monitoring.CommandListener):
    """The write commands the client sends, as (command, collection, documents or operations)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("insert", "update", "delete"):
            items = event.command.get({"insert": "documents", "update": "updates", "delete": "deletes"}[event.command_name], [])
            self.sent.append((event.command_name, event.command[event.command_name], len(items)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_events_handled_at_once_are_recorded_in_one_insert_and_applied_in_one_write_per_collection(settings, run_id):
    """Five events at once, one of them recorded before (a redelivery): four new records in one insert, the
    fifth gets its earlier record; their writes go in one request per collection, each event's in order."""
    commands = Commands()
    client = connect(settings.mongodb_url.get_secret_value(), "test-inbox-record", listeners=[commands])
    try:
        db = database(client, f"{settings.database_prefix}inbox{run_id}")
        earlier = await record(db, "src|e4", None, Effects().put("things", "e4", {"n": 40}), [], NOW, {})
        commands.sent.clear()

        def effects(n: int) -> Effects:
            return Effects().put("things", f"e{n}", {"n": n}).merge("things", f"e{n}", m=n * 10).put("notes", f"e{n}", {"n": n})

        records = await asyncio.gather(*(record(db, f"src|e{n}", None, effects(n), [row(f"later{n}", LATER)], NOW, {}) for n in range(5)))
        recorded = list(commands.sent)
        commands.sent.clear()
        await asyncio.gather(*(apply(db, document, NOW) for document in records))
        applied = list(commands.sent)
        things = await db["things"].find({}).sort("_id", 1).to_list()
        notes = await db["notes"].count_documents({})
        outbox = await db[OUTBOX].count_documents({})
    finally:
        await client.close()

    assert recorded[0] == ("insert", INBOX, 5), recorded
    assert records[4]["writes"] == earlier["writes"]  # the earlier record, not this attempt's
    assert applied == [("update", "things", 9), ("update", "notes", 4), ("insert", OUTBOX, 4)], applied
    assert things == [{"_id": f"e{n}", "n": n, "m": n * 10} for n in range(4)] + [{"_id": "e4", "n": 40}]
    assert (notes, outbox) == (4, 4)


async def test_a_write_the_store_refuses_fails_only_its_own_event_of_those_applied_together(settings, run_id):
    client = connect(settings.mongodb_url.get_secret_value(), "test-inbox-record")
    try:
        db = database(client, f"{settings.database_prefix}inbox{run_id}")
        good = [await record(db, f"src|g{n}", None, Effects().put("things", f"g{n}", {"n": n}), [], NOW, {}) for n in range(3)]
        bad = await record(db, "src|bad", None, Effects().merge("things", "bad", **{"$n": 1}), [], NOW, {})  # "$n" is no field name
        results = await asyncio.gather(*(apply(db, document, NOW) for document in [good[0], bad, *good[1:]]), return_exceptions=True)
        things = await db["things"].find({}).sort("_id", 1).to_list()
    finally:
        await client.close()

    assert isinstance(results[1], Exception) and not is_transient(results[1])  # FerretDB's answer even surprises PyMongo (KeyError)
    assert [r for n, r in enumerate(results) if n != 1] == [([], [])] * 3
    assert things == [{"_id": f"g{n}", "n": n} for n in range(3)]


async def test_a_record_the_store_refuses_fails_only_its_own_event_of_those_recorded_together(settings, run_id):
    client = connect(settings.mongodb_url.get_secret_value(), "test-inbox-record")
    try:
        db = database(client, f"{settings.database_prefix}inbox{run_id}")
        refused = {"$partition": 1}  # no field name: the store refuses the record
        results = await asyncio.gather(
            *(record(db, f"src|r{n}", None, Effects().put("things", f"r{n}", {"n": n}), [], NOW, refused if n == 1 else {}) for n in range(4)),
            return_exceptions=True,
        )
        kept = await db[INBOX].find({}, {"_id": 1}).sort("_id", 1).to_list()
    finally:
        await client.close()

    assert isinstance(results[1], Exception) and not is_transient(results[1])
    assert [r["_id"] for n, r in enumerate(results) if n != 1] == ["src|r0", "src|r2", "src|r3"]  # type: ignore[index]
    assert [d["_id"] for d in kept] == ["src|r0", "src|r2", "src|r3"]
