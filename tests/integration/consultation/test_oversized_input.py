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
