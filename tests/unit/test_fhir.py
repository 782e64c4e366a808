"""The FHIR R4 export built from a patient's events, checked against HL7's R4 JSON Schema (tests/support/fhir_schema.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clinic.fhir import COURSE, SESSION, _instant, bundle
from shared.contracts import REGISTRY, examples
from shared.envelope import CloudEvent, new_event
from tests.support import fhir_schema

PATIENT = "pt_7Q2M9K4X"
COURSE_ID = "crs_5D0B7E11"
T0 = datetime(2026, 3, 5, 14, 0, tzinfo=UTC)


def event(name: str, minutes: int, **fields: Any) -> CloudEvent:
    cls = REGISTRY.by_name(name)
    data = cls.model_validate({**examples(cls)[0], "patient_id": PATIENT, **fields})
    return new_event(data, source="/clinic/tests", time=T0 + timedelta(minutes=minutes))


def session(n: int) -> str:
    return f"ses_5D0B7E11_{n:02d}"


def course_events() -> list[CloudEvent]:
    """Approved; sessions 1-4 booked; 1 moved then completed (with its consumption); 2 cancelled and not rebooked;
    3 no-show; 5 only consumed (its completion past retention); two side effects on 1, one escalated; an
    escalation alone (its report past retention) on session 5; another patient's event."""
    booked = [event("SessionScheduled", 10 + n, session_id=session(n), sequence=n, scheduled_for=_instant(datetime(2026, 3, 9, 9, tzinfo=UTC) + timedelta(days=7 * n))) for n in range(1, 5)]
    return [
        event("ConsultationApproved", 0, course_id=COURSE_ID),
        *booked,
        event("SessionRescheduled", 20, session_id=session(1), sequence=1, previous_start="2026-03-16T09:00:00Z",
              scheduled_for="2026-03-17T10:30:00Z", reason="clinic_closure"),
        event("SessionCompleted", 30, session_id=session(1), completed_at="2026-03-17T11:10:00Z"),
        event("StockConsumed", 31, session_id=session(1), consumed_at="2026-03-17T11:10:00Z"),
        event("SideEffectReported", 40, session_id=session(1), report_id="sfx_5D0B7E11_01A", onset_at="2026-03-17T12:00:00Z"),
        event("SideEffectReported", 41, session_id=session(1), report_id="sfx_5D0B7E11_01B", symptom="allergic_reaction", grade=3,
              onset_at="2026-03-17T13:00:00Z", reported_at="2026-03-17T15:00:00Z", still_present=True, reported_by="patient_app", check_in_id=None),
        event("AdverseEventEscalated", 42, session_id=session(1), course_id=COURSE_ID, report_id="sfx_5D0B7E11_01B", escalation_id="esc_5D0B7E11_01B",
              grade=3, reasons=["allergic_reaction", "grade_3_or_above"], suspect_ingredients=["biotin"],
              lots=[{"ingredient": "hyaluronic_acid", "lot_number": "HA-2026-0117"}]),
        event("SessionCancelled", 50, session_id=session(2), scheduled_for="2026-03-23T09:00:00Z", cancelled_at="2026-03-20T08:00:00Z", rebook=False),
        event("SessionNoShow", 60, session_id=session(3), scheduled_for="2026-03-30T09:00:00Z", recorded_at="2026-03-30T09:30:00Z"),
        event("StockConsumed", 70, session_id=session(5), consumed_at="2026-04-13T09:40:00Z",
              consumed=[{"ingredient": "zinc", "lot_number": "ZN-2026-0001", "amount": 1.5, "reserved_amount": 1.5, "unit": "mg"}]),
        event("AdverseEventEscalated", 80, session_id=session(5), course_id=COURSE_ID, report_id="sfx_5D0B7E11_05A", escalation_id="esc_5D0B7E11_05A",
              symptom="infection", reasons=["infection"], suspect_ingredients=["dexpanthenol"], lots=[{"ingredient": "zinc", "lot_number": "ZN-2026-0001"}]),
        event("SessionScheduled", 90, patient_id="pt_OTHER0001", session_id="ses_OTHER0001_01"),
    ]


@pytest.fixture(scope="module")
def exported() -> dict[str, Any]:
    return bundle(PATIENT, reversed(course_events()), now=T0 + timedelta(days=60))


def resources(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == kind]


def identified(document: dict[str, Any], kind: str, system: str, value: str) -> list[dict[str, Any]]:
    found = []
    for resource in resources(document, kind):
        ids = resource.get("identifier", [])
        if {"system": system, "value": value} in (ids if isinstance(ids, list) else [ids]):
            found.append(resource)
    return found


def test_the_export_is_a_collection_bundle_that_validates_against_the_r4_schema(exported):
    assert exported["resourceType"] == "Bundle" and exported["type"] == "collection"
    assert fhir_schema.errors(exported) == []
    assert {e["resource"]["resourceType"] for e in exported["entry"]} == {"Patient", "CarePlan", "Appointment", "MedicationAdministration", "AdverseEvent"}


@pytest.mark.parametrize("break_it, where", [
    (lambda b: resources(b, "Appointment")[0].update(status=["booked"]), "status"),
    (lambda b: resources(b, "MedicationAdministration")[0].update(lotNumber="HA-2026-0117"), "Additional properties"),
    (lambda b: resources(b, "CarePlan")[0].update(id="crs_5D0B7E11"), "does not match"),
    (lambda b: resources(b, "AdverseEvent")[0].update(date="17 March 2026"), "does not match"),
    (lambda b: b["entry"][0]["resource"].update(resourceType="Patients"), "unknown resourceType"),
])
def test_a_wrong_resource_shape_fails_the_schema(exported, break_it, where):
    broken = copy.deepcopy(exported)
    break_it(broken)
    problems = fhir_schema.errors(broken)
    assert problems and any(where in p for p in problems), problems


def test_the_approved_plan_is_a_care_plan_with_the_cocktail(exported):
    [plan] = identified(exported, "CarePlan", COURSE, COURSE_ID)
    assert plan["status"] == "active" and plan["intent"] == "plan" and plan["period"] == {"start": "2026-03-09"}
    approved = examples(REGISTRY.by_name("ConsultationApproved"))[0]["plan"]
    assert [a["detail"]["productCodeableConcept"]["coding"][0]["code"] for a in plan["activity"]] == [c["ingredient"] for c in approved["cocktail"]]
    assert plan["activity"][0]["detail"]["scheduledTiming"]["repeat"] == {"count": 6, "period": 14, "periodUnit": "d"}
    assert plan["subject"]["reference"] == exported["entry"][0]["fullUrl"]


def test_every_state_of_a_session_is_a_version_of_its_appointment(exported):
    def states(n: int) -> list[tuple[str, str, str | None]]:
        versions = identified(exported, "Appointment", SESSION, session(n))
        assert len({v["id"] for v in versions}) == 1
        return [(v["meta"]["versionId"], v["status"], v.get("start")) for v in versions]

    assert states(1) == [("1", "booked", "2026-03-16T09:00:00Z"), ("2", "booked", "2026-03-17T10:30:00Z"), ("3", "fulfilled", "2026-03-17T10:30:00Z")]
    assert states(2) == [("1", "booked", "2026-03-23T09:00:00Z"), ("2", "cancelled", "2026-03-23T09:00:00Z")]
    assert states(3) == [("1", "booked", "2026-03-30T09:00:00Z"), ("2", "noshow", "2026-03-30T09:00:00Z")]
    assert states(4) == [("1", "booked", "2026-04-06T09:00:00Z")]
    moved = identified(exported, "Appointment", SESSION, session(1))[1]
    assert moved["comment"].startswith("moved from 2026-03-16T09:00:00Z: clinic_closure") and moved["minutesDuration"] == 45
    urls = [e["fullUrl"] for e in exported["entry"] if e["resource"]["resourceType"] == "Appointment" and e["resource"]["id"] == "ses-5D0B7E11-01"]
    assert len(set(urls)) == 1 and len(urls) == 3
    assert not identified(exported, "Appointment", SESSION, "ses_OTHER0001_01")


def test_each_lot_given_is_a_medication_administration_with_its_lot_number(exported):
    given = resources(exported, "MedicationAdministration")
    lots = {(m["contained"][0]["code"]["coding"][0]["code"], m["contained"][0]["batch"]["lotNumber"], m["dosage"]["dose"]["value"]) for m in given}
    assert lots == {("hyaluronic_acid", "HA-2026-0117", 20.0), ("biotin", "BIO-2026-0311", 5.0), ("minoxidil", "MNX-2026-0208", 2.0), ("zinc", "ZN-2026-0001", 1.5)}
    from_completion = [m for m in given if m["contained"][0]["batch"]["lotNumber"] == "HA-2026-0117"]
    assert len(from_completion) == 1 and from_completion[0]["effectiveDateTime"] == "2026-03-17T11:10:00Z"
    assert from_completion[0]["performer"][0]["actor"]["identifier"]["value"] == "clin_0107"
    assert from_completion[0]["dosage"]["dose"]["code"] == "mg"


def test_side_effects_are_adverse_events_and_an_escalation_makes_one_serious_with_its_suspects(exported):
    adverse = {a["identifier"]["value"]: a for a in resources(exported, "AdverseEvent")}
    assert set(adverse) == {"sfx_5D0B7E11_01A", "sfx_5D0B7E11_01B", "sfx_5D0B7E11_05A"}
    mild = adverse["sfx_5D0B7E11_01A"]
    assert "seriousness" not in mild and mild["severity"]["coding"][0]["code"] == "mild" and mild["outcome"]["coding"][0]["code"] == "resolved"
    serious = adverse["sfx_5D0B7E11_01B"]
    assert serious["seriousness"]["coding"][0]["code"] == "serious" and "esc_5D0B7E11_01B" in serious["seriousness"]["text"]
    assert serious["severity"]["coding"][0]["code"] == "severe" and serious["outcome"]["coding"][0]["code"] == "ongoing"
    urls = {e["resource"]["id"]: e["fullUrl"] for e in exported["entry"] if e["resource"]["resourceType"] == "MedicationAdministration"}
    by_lot = {m["contained"][0]["batch"]["lotNumber"]: urls[m["id"]] for m in resources(exported, "MedicationAdministration")}
    assert {s["instance"]["reference"] for s in serious["suspectEntity"]} == {by_lot["HA-2026-0117"], by_lot["BIO-2026-0311"]}
    alone = adverse["sfx_5D0B7E11_05A"]  # its report is gone: the escalation alone; a suspect not administered is contained
    assert alone["event"]["coding"][0]["code"] == "infection" and "recordedDate" not in alone
    assert [c["code"]["coding"][0]["code"] for c in alone["contained"]] == ["dexpanthenol"]
    assert {s["instance"]["reference"] for s in alone["suspectEntity"]} == {by_lot["ZN-2026-0001"], "#suspect1"}


def test_the_export_is_the_same_for_the_same_events_and_ignores_duplicates():
    events = course_events()
    assert bundle(PATIENT, events, now=T0) == bundle(PATIENT, [*events, *events[3:6]], now=T0)


def test_the_faster_one_of_decides_as_jsonschema_does():
    """fhir_schema's validator evaluates oneOf by stopping at each alternative's first error; on a small bundle
    (no contained resources, where jsonschema's own takes seconds) both agree, valid and not."""
    small = bundle(PATIENT, [event("SessionScheduled", 0, session_id=session(1))], now=T0)
    stock = fhir_schema.jsonschema.validators.validator_for(fhir_schema.schema())(fhir_schema.schema())
    wrong = copy.deepcopy(small)
    wrong["entry"][1]["resource"]["participant"][0]["status"] = "maybe"
    assert [stock.is_valid(small), stock.is_valid(wrong)] == [fhir_schema.validator().is_valid(small), fhir_schema.validator().is_valid(wrong)] == [True, False]


def test_export_refuses_what_is_not_a_patient_id_in_one_line(capsys):
    from clinic.cli.main import main

    code = main(["export", "fhir", "pt_not_an_id"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "is not a patient id" in err


@pytest.mark.parametrize(
    ("changes", "status", "end"),
    [
        ([], "active", None),
        ([("TreatmentPaused", {})], "on-hold", None),
        ([("TreatmentPaused", {}), ("TreatmentResumed", {})], "active", None),
        ([("TreatmentPaused", {}), ("TreatmentCourseClosed", {"closed_at": "2026-04-20T10:00:00Z"})], "revoked", "2026-04-20"),
        ([("TreatmentCourseCompleted", {"completed_at": "2026-05-25T09:40:00Z"})], "completed", "2026-05-25"),
    ],
    ids=["running", "paused", "resumed", "closed-on-review", "completed"],
)
def test_the_care_plan_status_follows_the_course(changes, status, end):
    events = [*course_events(), *(event(name, 100 + n, course_id=COURSE_ID, **fields) for n, (name, fields) in enumerate(changes))]
    document = bundle(PATIENT, reversed(events), now=T0 + timedelta(days=90))
    [plan] = identified(document, "CarePlan", COURSE, COURSE_ID)
    assert plan["status"] == status
    assert plan["period"] == {"start": "2026-03-09", **({"end": end} if end else {})}
    assert fhir_schema.errors(document) == []
