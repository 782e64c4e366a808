"""`clinic export fhir`: a patient's events published to the real topics come back as a FHIR R4 Bundle that
validates against HL7's R4 JSON Schema; an unknown patient is one line and exit status 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contracts import REGISTRY, examples
from tests.support import fhir_schema
from tests.support.cli import clinic


def data(name: str, **fields: Any) -> Any:
    cls = REGISTRY.by_name(name)
    return cls.model_validate({**examples(cls)[0], **fields})


async def test_a_patients_published_course_exports_as_a_valid_fhir_bundle(settings, bus, run_id, tmp_path):
    patient, other, course = f"pt_FHIR{run_id.upper()}", f"pt_OTHR{run_id.upper()}", f"crs_FHIR{run_id.upper()}"
    first, second = f"ses_FHIR{run_id.upper()}_01", f"ses_FHIR{run_id.upper()}_02"
    now = datetime.now(UTC).replace(microsecond=0)
    at = {n: (now + timedelta(days=7 * n)).isoformat() for n in range(3)}
    journey = [
        data("ConsultationApproved", patient_id=patient, course_id=course, approved_at=at[0]),
        data("SessionScheduled", patient_id=patient, course_id=course, session_id=first, sequence=1, scheduled_for=at[1]),
        data("SessionScheduled", patient_id=patient, course_id=course, session_id=second, sequence=2, scheduled_for=at[2]),
        data("SessionCompleted", patient_id=patient, course_id=course, session_id=first, completed_at=at[1]),
        data("StockConsumed", patient_id=patient, course_id=course, session_id=first, consumed_at=at[1]),
        data("SessionCancelled", patient_id=patient, course_id=course, session_id=second, scheduled_for=at[2], cancelled_at=at[1], rebook=False),
        data("SideEffectReported", patient_id=patient, session_id=first, report_id=f"sfx_FHIR{run_id.upper()}_01", onset_at=at[1], reported_at=at[1]),
        data("AdverseEventEscalated", patient_id=patient, course_id=course, session_id=first, report_id=f"sfx_FHIR{run_id.upper()}_01",
             escalation_id=f"esc_FHIR{run_id.upper()}_01", onset_at=at[1], escalated_at=at[1]),
        data("SessionScheduled", patient_id=other, course_id=course, session_id=f"ses_OTHR{run_id.upper()}_01"),
    ]
    published = [await bus.publish(event) for event in journey]
    await bus.send_event(published[1])  # at-least-once: the same event twice

    target = tmp_path / "bundle.json"
    code, out, err = await clinic(settings, "export", "fhir", patient, "--output", str(target), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["events"] == 8 and summary["resources"] == {
        "Patient": 1, "CarePlan": 1, "Appointment": 2, "MedicationAdministration": 3, "AdverseEvent": 1,
    }
    exported = json.loads(target.read_text())
    assert exported["type"] == "collection" and fhir_schema.errors(exported) == []
    statuses = [(e["resource"]["id"], e["resource"]["status"]) for e in exported["entry"] if e["resource"]["resourceType"] == "Appointment"]
    assert statuses == [(first.replace("_", "-"), "booked"), (first.replace("_", "-"), "fulfilled"),
                        (second.replace("_", "-"), "booked"), (second.replace("_", "-"), "cancelled")]
    lots = {e["resource"]["contained"][0]["batch"]["lotNumber"] for e in exported["entry"] if e["resource"]["resourceType"] == "MedicationAdministration"}
    assert lots == {line.lot_number for line in journey[3].lots_used}
    assert other not in target.read_text()

    code, out, err = await clinic(settings, "export", "fhir", patient)  # to standard output
    assert code == 0, err
    assert {k: v for k, v in json.loads(out).items() if k != "timestamp"} == {k: v for k, v in exported.items() if k != "timestamp"}

    code, out, err = await clinic(settings, "export", "fhir", f"pt_NONE{run_id.upper()}")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and f"no events of patient pt_NONE{run_id.upper()}" in err
