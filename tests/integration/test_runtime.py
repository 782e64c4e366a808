"""The runtime against the real broker and store: envelope, inbox, dead letters, retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from bson import Binary
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect

from clinic.polling import eventually
from shared.envelope import decode, encode, new_event, with_extensions
from shared.runtime import Rejected
from shared.runtime.store import EFFECTS, INBOX, OUTBOX, connect, database, inbox_id
from tests.support import probe
from tests.support.settle import settle


def header(record, name: str) -> str:
    return dict(record.headers)[name].decode()


async def test_a_cloudevent_comes_back_from_kafka_with_every_attribute_intact(bus, run_id):
    sent = with_extensions(
        new_event(
            probe.inbound(f"pt_ROUND{run_id}"),
            source="/clinic/ehr",
            correlation_id=f"corr-{run_id}",
            causation_id=f"cause-{run_id}",
            traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        clinicsite="north",
    )
    await bus.send_event(sent)

    [record] = await bus.records(bus.topic(sent.type))
    received = decode(record.value, record.headers)

    assert received == sent
    assert record.key == f"pt_ROUND{run_id}".encode()
    assert header(record, "ce_specversion") == "1.0"
    assert header(record, "content-type") == "application/json"


async def test_a_structured_mode_event_from_a_plain_producer_is_decoded_and_handled(settings, bus, run_id):
    patient = f"pt_STRUCT{run_id}"
    document = {
        "specversion": "1.0",
        "id": f"structured-{run_id}",
        "source": "/clinic/patient-app",
        "type": probe.INBOUND.event_type,
        "time": "2026-03-03T10:00:00Z",
        "datacontenttype": "application/json",
        "data": json.loads(probe.inbound(patient).model_dump_json()),
    }
    await bus.ensure(bus.topic(probe.INBOUND))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            bus.topic(probe.INBOUND),
            json.dumps(document).encode(),
            key=patient.encode(),
            headers=[("content-type", b"application/cloudevents+json; charset=utf-8")],
        )
    finally:
        await producer.stop()

    async with probe.create(settings):
        [escalated] = await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)

    assert escalated.causation_id == f"structured-{run_id}"
    assert escalated.correlation_id == f"structured-{run_id}"
    assert escalated.source == "/clinic/probe"


async def test_an_idle_service_takes_an_event_without_waiting_for_its_poll_to_end(settings, bus, run_id):
    """``PromptBatches`` (shared/runtime/kafka.py) rests on aiokafka's ``getmany`` returning as soon as
    records arrive. With polls of ten minutes, an event sent to an idle service is handled within the
    test's usual deadline only if that holds."""
    settings = settings.model_copy(update={"consume_wait_ms": 600_000})
    first, second = (new_event(probe.inbound(f"pt_POLL{n}{run_id}"), source="/clinic/patient-app") for n in (1, 2))
    await bus.send_event(first)
    async with probe.create(settings) as service:
        await settle(service, (probe.INBOUND, 1))  # assigned, and polling again with nothing there
        await bus.send_event(second)
        await settle(service, (probe.INBOUND, 2))
    assert second.id in probe.calls


async def test_the_same_event_delivered_twice_has_its_effect_once(settings, bus, run_id):
    patient = f"pt_TWICE{run_id}"
    event = new_event(probe.inbound(patient), source="/clinic/patient-app")
    await bus.send_event(event)
    await bus.send_event(event)

    async with probe.create(settings) as service:
        await settle(service, (probe.INBOUND, 2))
        published = await bus.events(probe.OUTBOUND, lambda d: d.patient_id == patient)
        inbox = await service.db[INBOX].find_one({"_id": f"{event.source}|{event.id}"})

    assert len(published) == 1
    assert probe.calls.count(event.id) == 1
    assert inbox["status"] == "applied"


async def test_malformed_and_schema_invalid_messages_are_dead_lettered_and_the_next_one_is_handled(settings, bus, run_id):
    topic = bus.topic(probe.INBOUND)
    patient = f"pt_DLQ{run_id}"
    await bus.send(topic, b"{this is not json", [("content-type", b"application/json")], key=patient)
    invalid = new_event(probe.inbound(patient), source="/clinic/patient-app")
    value, headers = encode(invalid)
    broken = json.loads(value) | {"grade": 9}
    await bus.send(topic, json.dumps(broken).encode(), headers, key=patient)
    await bus.publish(probe.inbound(patient))

    async with probe.create(settings):
        await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
        dead = await eventually(lambda: _at_least(bus.dead_letters(probe.INBOUND), 2), what="two dead letters")

    malformed, schema_invalid = sorted(dead, key=lambda r: int(header(r, "dlq_offset")))
    assert header(malformed, "dlq_reason") == "malformed"
    assert header(schema_invalid, "dlq_reason") == "schema-invalid"
    assert "grade" in header(schema_invalid, "dlq_error")
    assert header(schema_invalid, "dlq_topic") == topic
    assert header(schema_invalid, "ce_id") == invalid.id, "the original headers travel with the dead letter"
    assert header(malformed, "dlq_partition") == header(schema_invalid, "dlq_partition")
    assert malformed.value == b"{this is not json"
    assert [int(header(r, "dlq_offset")) for r in (malformed, schema_invalid)] == [0, 1]


async def test_an_event_on_the_wrong_topic_is_dead_lettered(settings, bus, run_id):
    stray = new_event(probe.outbound(f"pt_STRAY{run_id}"), source="/clinic/aftercare")
    value, headers = encode(stray)
    await bus.send(bus.topic(probe.INBOUND), value, headers, key=stray.key)

    async with probe.create(settings):
        [dead] = await eventually(lambda: bus.dead_letters(probe.INBOUND), what="dead letter")

    assert header(dead, "dlq_reason") == "wrong-topic"


async def test_a_transient_store_failure_is_retried_not_dead_lettered(settings, bus, run_id, monkeypatch):
    failures = iter([AutoReconnect("store went away"), AutoReconnect("still away")])
    original = probe.on_inbound

    async def flaky(event, deps):
        if (error := next(failures, None)) is not None:
            raise error
        return await original(event, deps)

    monkeypatch.setitem(probe.handlers.by_type, probe.INBOUND.event_type, (probe.INBOUND, flaky))
    patient = f"pt_FLAKY{run_id}"
    labels = {"service": "probe", "type": probe.INBOUND.event_type, "kind": "transient"}
    failed_before = REGISTRY.get_sample_value("clinic_events_failed_total", labels) or 0.0
    await bus.publish(probe.inbound(patient))

    async with probe.create(settings):
        await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)

    assert await bus.dead_letters(probe.INBOUND) == []
    assert REGISTRY.get_sample_value("clinic_events_failed_total", labels) == failed_before + 2


@pytest.mark.parametrize(
    ("failure", "reason", "error"),
    [
        (ValueError("a bug near pt_SECRET99 data"), "handler-error", "ValueError"),
        (Rejected("unknown-session", "ses_NOPE0001 was never booked"), "unknown-session", "ses_NOPE0001 was never booked"),
    ],
)
async def test_an_event_its_handler_cannot_apply_is_dead_lettered_with_the_reason(settings, bus, run_id, monkeypatch, failure, reason, error):
    async def failing(event, deps):
        raise failure

    monkeypatch.setitem(probe.handlers.by_type, probe.INBOUND.event_type, (probe.INBOUND, failing))
    settings = settings.model_copy(update={"retry_max_seconds": 0.1})
    await bus.publish(probe.inbound(f"pt_FAIL{run_id}"))

    async with probe.create(settings) as service:
        [dead] = await eventually(lambda: bus.dead_letters(probe.INBOUND), what="dead letter")
        applied = await service.db["notes"].count_documents({})

    assert header(dead, "dlq_reason") == reason
    assert header(dead, "dlq_error") == error, "an exception's message may hold clinical data: only the class travels"
    assert applied == 0


async def test_an_inbox_record_that_cannot_be_opened_fails_its_own_event_not_the_batch(settings, bus, run_id):
    """The batch's inbox read returns the records as stored; each is opened when its event is handled, so
    one that cannot be (its packed effects damaged) dead-letters that event, and the batch goes on."""
    settings = settings.model_copy(update={"retry_max_seconds": 0.1})
    patient = f"pt_BROKEN{run_id}"
    broken = await bus.publish(probe.inbound(patient))
    fine = await bus.publish(probe.inbound(patient))
    client = connect(settings.mongodb_url.get_secret_value(), "test-runtime")
    try:
        db = database(client, settings.database("probe"))
        await db[INBOX].insert_one({"_id": inbox_id(broken), "status": "recorded", "outcome": "done", EFFECTS: Binary(b"not a packed document")})
    finally:
        await client.close()

    async with probe.create(settings) as service:
        [dead] = await eventually(lambda: bus.dead_letters(probe.INBOUND), what="dead letter")
        notes = await eventually(lambda: service.db["notes"].find({}).to_list(), what="the other event's note")

    assert header(dead, "dlq_reason") == "handler-error"
    assert [note["_id"] for note in notes] == [fine.id]


async def _at_least(records, count: int):
    found = await records
    return found if len(found) >= count else None


async def test_an_outbox_event_the_broker_refuses_does_not_hold_back_the_ones_after_it(settings, bus, run_id):
    patient = f"pt_BIG{run_id}"
    giant = {
        "_id": f"giant-{run_id}", "status": "pending", "topic": bus.topic(probe.OUTBOUND), "type": probe.OUTBOUND.event_type,
        "key": patient, "value": b"x" * 2_000_000, "headers": {}, "correlation_id": None,
        "due_at": datetime(2020, 1, 1, tzinfo=UTC), "created_at": datetime(2020, 1, 1, tzinfo=UTC), "seq": 0, "partition": None, "attempts": 0,
    }
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value())
    outbox = client[settings.database("probe")][OUTBOX]
    try:
        await outbox.insert_one(giant)  # waiting from before this start, like a reminder due during a restart
        async with probe.create(settings):
            await bus.publish(probe.inbound(patient))
            [published] = await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
            refused = await eventually(lambda: outbox.find_one({"_id": giant["_id"], "attempts": {"$gte": 1}}), what="refusal recorded")
    finally:
        await client.close()

    assert published.data.patient_id == patient
    assert refused["error"] == "MessageSizeTooLargeError"
