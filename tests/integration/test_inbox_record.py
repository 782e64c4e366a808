"""The inbox record on the real store: its effects packed into one value, applied once, then dropped; a
record written before they were packed (still ``recorded`` when a deployment is upgraded) is applied too,
also when it is settled in one batch with new ones."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.runtime import Effects
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
