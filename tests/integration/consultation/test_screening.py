"""The consultation service against the real broker and store: the decisions it publishes."""

from __future__ import annotations

from datetime import timedelta

from clinic.polling import eventually
from services.consultation.app import create_service
from shared.clock import ManualClock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import (
    AllergyTestRecorded,
    ConsultationApproved,
    ConsultationDeferred,
    ConsultationRecorded,
    ConsultationRejected,
    ConsultationReviewed,
    LabResultsRecorded,
)
from shared.envelope import new_event
from tests.unit.consultation.factories import GOOD_LABS, NOW, lab, recorded

DECISIONS = (ConsultationApproved, ConsultationDeferred, ConsultationRejected)


def escalation(who: dict[str, str], tag: str, session: str, grade: int, reasons: list[str], suspects: list[str]) -> AdverseEventEscalated:
    """An AdverseEventEscalated from aftercare for this test's patient."""
    run = who["patient_id"].removeprefix(f"pt_{tag}")
    return AdverseEventEscalated(
        escalation_id=f"esc_{tag}{run}",
        patient_id=who["patient_id"],
        session_id=f"ses_{tag}{run}_{session}",
        report_id=f"sfx_{tag}{run}",
        symptom="allergic_reaction",
        grade=grade,
        onset_at=NOW,
        escalated_at=NOW,
        reasons=reasons,
        suspect_ingredients=suspects,
    )


def ids(run_id: str, tag: str) -> dict[str, str]:
    return {"patient_id": f"pt_{tag}{run_id}", "consultation_id": f"cons_{tag}{run_id}"}


async def decisions(bus, patient_id: str) -> list:
    found = []
    for model in DECISIONS:
        found += await bus.events(model, lambda d: d.patient_id == patient_id)
    return found


async def handled(service, model, count: int = 1) -> bool:
    return service.stats.handled.get(model.event_type, 0) + service.stats.dead_lettered.get(model.event_type, 0) >= count


async def test_a_recorded_consultation_is_approved_with_a_plan_and_its_course(settings, bus, run_id):
    who = ids(run_id, "APPROVE")
    async with create_service(settings, ManualClock(NOW)) as service:
        sent = await bus.publish(recorded(**who))
        [approved] = await bus.wait_for(ConsultationApproved, lambda d: d.patient_id == who["patient_id"])
        stored = await service.db["consultations"].find_one({"_id": who["consultation_id"]})

    data = approved.data
    assert data.course_id == f"crs_APPROVE{run_id}"
    assert data.rule_set_version == "2026.11-1"
    assert (data.plan.sessions, data.plan.interval_days, data.plan.earliest_start) == (6, 14, NOW.date())
    assert "minoxidil" in [d.ingredient for d in data.plan.cocktail]
    assert (approved.causation_id, approved.correlation_id, approved.source) == (sent.id, sent.id, "/clinic/consultation")
    assert approved.subject == who["consultation_id"]
    assert stored["status"] == "approved"
    assert [d["event_type"] for d in stored["decisions"]] == [ConsultationApproved.event_type]


async def test_a_pregnant_patient_is_rejected(settings, bus, run_id):
    who = ids(run_id, "PREG")
    async with create_service(settings, ManualClock(NOW)):
        await bus.publish(recorded(**who, pregnant=True))
        [rejected] = await bus.wait_for(ConsultationRejected, lambda d: d.patient_id == who["patient_id"])

    assert [(r.rule_id, r.outcome) for r in rejected.data.rules_fired] == [("contra.pregnancy", "reject")]
    assert rejected.data.rejected_by is None
    assert await bus.events(ConsultationApproved, lambda d: d.patient_id == who["patient_id"]) == []


async def test_missing_labs_defer_and_the_lab_results_approve_later_even_after_a_restart(settings, bus, run_id):
    who = ids(run_id, "LABS")
    without_ferritin = [lab(*row) for row in GOOD_LABS if row[0] != "ferritin"]
    clock = ManualClock(NOW)
    async with create_service(settings, clock):
        await bus.publish(recorded(**who, lab_results=without_ferritin))
        [deferred] = await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])

    assert [(m.requirement, m.lab_test) for m in deferred.data.missing] == [("lab_result", "ferritin")]

    clock.advance(timedelta(days=3))
    async with create_service(settings, clock):
        ferritin = LabResultsRecorded(**who, recorded_at=clock.now(), results=[lab("ferritin", 64.0, "ng/mL", clock.now())])
        await bus.publish(ferritin)
        [approved] = await bus.wait_for(ConsultationApproved, lambda d: d.patient_id == who["patient_id"])

    assert approved.data.plan.earliest_start == (NOW + timedelta(days=3)).date()
    assert len(await decisions(bus, who["patient_id"])) == 2


async def test_a_positive_allergy_test_excludes_the_ingredient_from_the_plan(settings, bus, run_id):
    who = ids(run_id, "ALLERGY")
    async with create_service(settings, ManualClock(NOW)):
        await bus.publish(recorded(**who, previously_received_ingredients=["hyaluronic_acid", "biotin", "dexpanthenol", "zinc"]))
        [deferred] = await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])
        assert deferred.data.missing[0].ingredients == ("minoxidil", "saw_palmetto")

        results = [{"ingredient": "minoxidil", "result": "negative"}, {"ingredient": "saw_palmetto", "result": "positive"}]
        await bus.publish(AllergyTestRecorded(**who, clinician_id="clin_0042", tested_at=NOW, recorded_at=NOW, results=results))
        [approved] = await bus.wait_for(ConsultationApproved, lambda d: d.patient_id == who["patient_id"])

    assert "saw_palmetto" not in [d.ingredient for d in approved.data.plan.cocktail]
    assert [(e.ingredient, e.reason) for e in approved.data.excluded_ingredients] == [("saw_palmetto", "positive_allergy_test")]


async def test_an_escalated_adverse_event_keeps_the_suspect_ingredient_out_of_the_next_plan(settings, bus, run_id):
    who = ids(run_id, "ESCALATE")
    escalated = escalation(who, "ESCALATE", "02", 2, ["allergic_reaction"], ["dexpanthenol"])
    async with create_service(settings, ManualClock(NOW)) as service:
        await bus.publish(escalated)
        await eventually(lambda: service.db["patients"].find_one({"_id": who["patient_id"], "sensitivities.ingredient": "dexpanthenol"}), what="sensitivity recorded")
        await bus.publish(recorded(**who))
        [approved] = await bus.wait_for(ConsultationApproved, lambda d: d.patient_id == who["patient_id"])

    assert "dexpanthenol" not in [d.ingredient for d in approved.data.plan.cocktail]
    assert [(r.rule_id, r.outcome) for r in approved.data.rules_fired] == [("allergy.recorded_sensitivity", "exclude_ingredient")]


async def test_the_same_event_delivered_twice_gives_one_decision(settings, bus, run_id):
    who = ids(run_id, "TWICE")
    event = new_event(recorded(**who), source="/clinic/ehr")
    await bus.send_event(event)
    await bus.send_event(event)
    async with create_service(settings, ManualClock(NOW)) as service:
        await eventually(lambda: handled(service, ConsultationRecorded, 2), what="both deliveries handled")
        published = await decisions(bus, who["patient_id"])

    assert [type(e.data) for e in published] == [ConsultationApproved]


async def test_a_resent_assessment_that_changes_nothing_publishes_no_new_deferral(settings, bus, run_id):
    who = ids(run_id, "RESEND")
    facts = recorded(**who, lab_results=[])
    async with create_service(settings, ManualClock(NOW)) as service:
        await bus.publish(facts, source="/clinic/ehr")
        await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])
        await bus.publish(facts, source="/clinic/ehr")
        await eventually(lambda: handled(service, ConsultationRecorded, 2), what="the resent assessment handled")
        published = await decisions(bus, who["patient_id"])

    assert [type(e.data) for e in published] == [ConsultationDeferred]


async def test_a_clinicians_review_clears_alopecia_areata_and_sets_the_plan(settings, bus, run_id):
    who = ids(run_id, "REVIEW")
    facts = recorded(**who, hair_loss_type="alopecia_areata", severity={"scale": "salt", "value": 60}, previously_received_ingredients=["hyaluronic_acid", "biotin", "copper_peptide"])
    review = ConsultationReviewed(
        **who,
        clinician_id="clin_0077",
        reviewed_at=NOW,
        decision="clear",
        rule_ids=["suitability.alopecia_areata"],
        reason="specialist_clearance",
        plan_adjustments={"sessions": 4},
    )
    async with create_service(settings, ManualClock(NOW)):
        await bus.publish(facts)
        await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])
        await bus.publish(review)
        [approved] = await bus.wait_for(ConsultationApproved, lambda d: d.patient_id == who["patient_id"])

    [cleared] = approved.data.rules_fired
    assert (cleared.rule_id, cleared.cleared_by, cleared.cleared_reason) == ("suitability.alopecia_areata", "clin_0077", "specialist_clearance")
    assert (approved.data.plan.sessions, approved.data.plan.pattern) == (4, "points")
