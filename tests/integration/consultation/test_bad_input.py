"""Contradictory or impossible input is dead-lettered with a reason and never half-applied; overrides
never silence an absolute contraindication."""

from __future__ import annotations

import json

from clinic.polling import eventually
from services.consultation.app import create_service
from shared.clock import ManualClock
from shared.contracts.consultation import (
    AllergyTestRecorded,
    ConsultationApproved,
    ConsultationDeferred,
    ConsultationRecorded,
    ConsultationRejected,
    ConsultationReviewed,
)
from shared.envelope import encode, new_event
from tests.integration.consultation.test_screening import decisions, escalation, handled, ids
from tests.unit.consultation.factories import NOW, recorded


def reasons(records) -> list[str]:
    return sorted(dict(r.headers)["dlq_reason"].decode() for r in records)


def review(who: dict[str, str], *rule_ids: str, **changes) -> ConsultationReviewed:
    return ConsultationReviewed(**who, clinician_id="clin_0077", reviewed_at=NOW, decision="clear", rule_ids=rule_ids, reason="clinical_judgement", **changes)


async def test_contradictory_or_impossible_input_is_dead_lettered_and_nothing_is_applied(settings, bus, run_id):
    who = ids(run_id, "BAD")
    other = ids(run_id, "OTHER")
    oversized = new_event(review(who, "labs.ferritin_missing", plan_adjustments={"sessions": 10}), source="/clinic/ehr")
    value, headers = encode(oversized)
    eleven_sessions = json.loads(value)
    eleven_sessions["plan_adjustments"]["sessions"] = 11
    async with create_service(settings, ManualClock(NOW)) as service:
        await bus.publish(recorded(**who, sex_at_birth="female"))  # Norwood scale for a woman
        await bus.publish(recorded(**other, hair_loss_type="telogen_effluvium"))  # a scale where none applies
        await bus.send(bus.topic(ConsultationReviewed), json.dumps(eleven_sessions).encode(), headers, key=who["patient_id"])
        await bus.publish(review(who, "labs.unheard_of_rule"))
        await bus.publish(AllergyTestRecorded(**who, clinician_id="clin_0042", tested_at=NOW, recorded_at=NOW, results=[{"ingredient": "unobtainium", "result": "negative"}]))
        recorded_dead = await eventually(lambda: _at_least(bus.dead_letters(ConsultationRecorded), 2), what="two dead assessments")
        reviewed_dead = await eventually(lambda: _at_least(bus.dead_letters(ConsultationReviewed), 2), what="two dead reviews")
        [allergy_dead] = await eventually(lambda: _at_least(bus.dead_letters(AllergyTestRecorded), 1), what="a dead allergy test")
        stored = await service.db["consultations"].count_documents({})
        patients = await service.db["patients"].count_documents({})

    assert reasons(recorded_dead) == ["severity-not-applicable", "severity-scale-mismatch"]
    assert reasons(reviewed_dead) == ["schema-invalid", "unknown-rule"]
    assert reasons([allergy_dead]) == ["unknown-ingredient"]
    assert (stored, patients) == (0, 0)
    assert await decisions(bus, who["patient_id"]) == await decisions(bus, other["patient_id"]) == []


async def test_a_review_never_clears_an_absolute_contraindication(settings, bus, run_id):
    who = ids(run_id, "NOCLEAR")
    async with create_service(settings, ManualClock(NOW)) as service:
        await bus.publish(review(who, "contra.pregnancy"))
        await eventually(lambda: handled(service, ConsultationReviewed), what="the early review handled")
        await bus.publish(recorded(**who, pregnant=True))
        await bus.wait_for(ConsultationRejected, lambda d: d.patient_id == who["patient_id"])
        await bus.publish(review(who, "contra.pregnancy"))
        await eventually(lambda: handled(service, ConsultationReviewed, 2), what="the late review handled")
        published = await decisions(bus, who["patient_id"])
        stored = await service.db["consultations"].find_one({"_id": who["consultation_id"]})

    assert [type(e.data) for e in published] == [ConsultationRejected]
    assert [r["rule_ids"] for r in stored["reviews"]] == [["contra.pregnancy"]] * 2, "both overrides are recorded, neither clears"
    assert stored["status"] == "rejected"


async def test_a_sensitivity_escalated_while_a_consultation_waits_changes_its_next_decision(settings, bus, run_id):
    who = ids(run_id, "WAITING")
    escalated = escalation(who, "WAITING", "01", 3, ["allergic_reaction", "grade_3_or_above"], ["minoxidil"])
    async with create_service(settings, ManualClock(NOW)):
        await bus.publish(recorded(**who, consent_given=False))
        [first] = await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])
        await bus.publish(escalated)
        deferrals = await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"], count=2)

    assert [m.rule_id for m in first.data.missing] == ["consent.not_given"]
    assert [m.rule_id for m in deferrals[1].data.missing] == ["review.essential_ingredient_sensitivity", "consent.not_given"]
    assert await bus.events(ConsultationApproved, lambda d: d.patient_id == who["patient_id"]) == []


async def _at_least(pending, count: int):
    found = await pending
    return found if len(found) >= count else None
