"""Events the broker kept refusing are set aside, never dropped: an operator lists them and sends them again."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from shared.envelope import decode, encode, new_event
from shared.runtime.store import OUTBOX
from tests.support import probe
from tests.support.cli import clinic


def set_aside_row(bus, event, value: bytes) -> dict:
    _, headers = encode(event)
    return {
        "_id": event.id, "status": "failed", "topic": bus.topic(probe.OUTBOUND), "type": event.type, "key": event.key,
        "value": value, "headers": {k: v.decode() for k, v in headers}, "correlation_id": event.correlation_id,
        "due_at": datetime(2026, 1, 1, tzinfo=UTC), "created_at": datetime(2026, 1, 1, tzinfo=UTC), "seq": 0, "partition": None,
        "attempts": 5, "error": "MessageSizeTooLargeError",
    }


async def test_set_aside_events_are_listed_and_sent_again_with_their_ids(settings, bus, run_id):
    fixed = new_event(probe.outbound(f"pt_ASIDE{run_id}"), source="/clinic/aftercare")
    still_too_big = new_event(probe.outbound(f"pt_HUGE{run_id}"), source="/clinic/aftercare")
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value())
    outbox = client[settings.database("aftercare")][OUTBOX]
    try:
        await outbox.insert_many([set_aside_row(bus, fixed, encode(fixed)[0]), set_aside_row(bus, still_too_big, b"x" * 2_000_000)])

        code, out, err = await clinic(settings, "outbox", "list", "aftercare", "--json")
        assert code == 0, err
        assert {row["id"]: row["attempts"] for row in json.loads(out)} == {fixed.id: 5, still_too_big.id: 5}

        code, out, err = await clinic(settings, "outbox", "redrive", "aftercare")
        left = [row["_id"] for row in await outbox.find({}).to_list()]
    finally:
        await client.close()

    assert code == 1, "one event was refused again"
    assert f"sent {fixed.id}" in out and f"refused again (MessageSizeTooLargeError) {still_too_big.id}" in out
    assert left == [still_too_big.id], "what went out leaves the outbox; what was refused stays set aside"
    [record] = await bus.records(bus.topic(probe.OUTBOUND))
    assert decode(record.value, record.headers) == fixed


async def test_an_unknown_service_is_refused_in_one_line(settings):
    code, _, err = await clinic(settings, "outbox", "list", "billing")
    assert code == 2 and "unknown service 'billing'" in err and "Traceback" not in err
