"""An event with more items than its contract allows is refused on arrival: dead-lettered as
schema-invalid, nothing stored, the next patient's event handled as usual."""

from __future__ import annotations

import json

from clinic.polling import eventually
from services.consultation.app import create_service
from shared.clock import ManualClock
from shared.contracts.base import LINES
from shared.contracts.consultation import ConsultationRecorded
from shared.envelope import encode, new_event
from tests.integration.consultation.test_screening import decisions, ids
from tests.unit.consultation.factories import NOW, recorded


async def test_a_consultation_with_too_many_lab_results_is_dead_lettered_as_schema_invalid(settings, bus, run_id):
    big, fine = ids(run_id, "BIG"), ids(run_id, "FINE")
    event = new_event(recorded(**big), source="/clinic/ehr")
    value, headers = encode(event)
    oversized = json.loads(value)
    oversized["lab_results"] = [{"test": "ferritin", "value": 60.0 + i, "unit": "ng/mL", "measured_at": NOW.isoformat()} for i in range(LINES + 1)]
    async with create_service(settings, ManualClock(NOW)) as service:
        await bus.send(bus.topic(ConsultationRecorded), json.dumps(oversized).encode(), headers, key=big["patient_id"])
        await bus.publish(recorded(**fine))
        [dead] = await eventually(lambda: bus.dead_letters(ConsultationRecorded), what="the oversized consultation dead-lettered")
        decided = await eventually(lambda: decisions(bus, fine["patient_id"]), what="the other patient decided")
        stored = await service.db["consultations"].count_documents({"_id": big["consultation_id"]})

    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq_reason"] == "schema-invalid" and headers["ce_id"] == event.id
    assert f"at most {LINES} items" in headers["dlq_error"] and "lab_results" in headers["dlq_error"]
    assert stored == 0 and await decisions(bus, big["patient_id"]) == [] and len(decided) == 1


async def test_a_padded_consultation_is_dead_lettered_as_oversized_and_an_unknown_field_as_schema_invalid(settings, bus, run_id):
    padded, unknown, fine = ids(run_id, "PAD"), ids(run_id, "UNK"), ids(run_id, "OK")
    padded_event, unknown_event = new_event(recorded(**padded), source="/clinic/ehr"), new_event(recorded(**unknown), source="/clinic/ehr")
    padded_value, padded_headers = encode(padded_event)
    unknown_value, unknown_headers = encode(unknown_event)
    async with create_service(settings, ManualClock(NOW)) as service:
        await bus.send(bus.topic(ConsultationRecorded), json.dumps(json.loads(padded_value) | {"notes": "x" * 900 * 1024}).encode(),
                       padded_headers, key=padded["patient_id"])
        await bus.send(bus.topic(ConsultationRecorded), json.dumps(json.loads(unknown_value) | {"nickname": "Jo"}).encode(),
                       unknown_headers, key=unknown["patient_id"])
        await bus.publish(recorded(**fine))
        dead = await eventually(lambda: _at_least(bus.dead_letters(ConsultationRecorded), 2), what="both consultations dead-lettered")
        decided = await eventually(lambda: decisions(bus, fine["patient_id"]), what="the other patient decided")
        stored = await service.db["consultations"].count_documents({"_id": {"$in": [padded["consultation_id"], unknown["consultation_id"]]}})

    reasons = {h["ce_id"]: h for h in ({k: v.decode() for k, v in record.headers} for record in dead)}
    assert reasons[padded_event.id]["dlq_reason"] == "oversized" and "CLINIC_MAX_EVENT_BYTES" in reasons[padded_event.id]["dlq_error"]
    assert reasons[unknown_event.id]["dlq_reason"] == "schema-invalid"
    assert reasons[unknown_event.id]["dlq_error"].startswith("nickname: unknown field")
    assert stored == 0 and await decisions(bus, padded["patient_id"]) == [] and len(decided) == 1


async def _at_least(records, count):
    found = await records
    return found if len(found) >= count else None
