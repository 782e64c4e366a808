"""Consultation answers every review, re-screens when the EHR reports a medication stopped, and re-screens
by itself when a deferral's washout ends (its daily check, read by ``_id``, publishes once)."""

from __future__ import annotations

from datetime import timedelta

from clinic.polling import eventually
from services.consultation.app import create_service
from services.consultation.repository import CONSULTATIONS, WASHOUTS
from shared.clock import ManualClock
from shared.contracts.consultation import (
    ConsultationApproved,
    ConsultationDeferred,
    ConsultationReviewApplied,
    ConsultationReviewed,
    ConsultationWashoutEnded,
    MedicationStopped,
)
from tests.integration.consultation.test_screening import handled, ids
from tests.support.store_commands import watching
from tests.unit.consultation.factories import NOW, recorded


async def test_a_review_that_changes_no_decision_is_answered(settings, bus, run_id):
    who = ids(run_id, "REVANS")
    async with create_service(settings, ManualClock(NOW)):
        await bus.publish(recorded(**who, consent_given=False, history={"bleeding_disorder": True}))
        await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])
        review = ConsultationReviewed(**who, clinician_id="clin_0077", reviewed_at=NOW, decision="clear", rule_ids=["contra.pregnancy"], reason="clinical_judgement")
        sent = await bus.publish(review)
        [answer] = await bus.wait_for(ConsultationReviewApplied, lambda d: d.patient_id == who["patient_id"])
        deferrals = await bus.events(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])

    assert (answer.data.result, answer.data.status, answer.data.not_cleared, answer.data.cleared) == ("unchanged", "deferred", ("contra.pregnancy",), ())
    assert answer.causation_id == sent.id and len(deferrals) == 1


async def test_a_medication_stopped_approves_the_consultation_deferred_for_it(settings, bus, run_id):
    who = ids(run_id, "MEDSTOP")
    async with create_service(settings, ManualClock(NOW)):
        await bus.publish(recorded(**who, current_medications=[{"category": "nsaid", "stopped_on": None}]))
        [deferred] = await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])
        await bus.publish(MedicationStopped(patient_id=who["patient_id"], category="nsaid", stopped_on=NOW.date(), recorded_at=NOW))
        [approved] = await bus.wait_for(ConsultationApproved, lambda d: d.patient_id == who["patient_id"])

    assert [m.requirement for m in deferred.data.missing] == ["washout"]
    assert approved.data.plan.earliest_start == NOW.date() + timedelta(days=8)


async def test_a_deferral_whose_washout_ends_is_re_screened_by_the_daily_check_once(settings, bus, run_id):
    who = ids(run_id, "WASHOUT")
    stopped_on = NOW.date() - timedelta(days=2)
    ends = NOW.date() + timedelta(days=6)
    clock = ManualClock(NOW)
    with watching(settings.database("consultation"), {CONSULTATIONS, WASHOUTS}) as commands:
        async with create_service(settings, clock) as service:
            await bus.publish(recorded(**who, current_medications=[{"category": "anticoagulant_prescribed", "stopped_on": stopped_on.isoformat()}]))
            [deferred] = await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == who["patient_id"])
            listed = await service.db[WASHOUTS].find_one({"_id": ends.isoformat()})
            clock.set(NOW + timedelta(days=5))
            assert await service.run_jobs() == 0, "the day has not come"
            clock.set(NOW + timedelta(days=6, hours=1))
            first = await service.run_jobs()
            again = await service.run_jobs()
            [ended] = await bus.wait_for(ConsultationWashoutEnded, lambda d: d.patient_id == who["patient_id"])
            [approved] = await bus.wait_for(ConsultationApproved, lambda d: d.patient_id == who["patient_id"])
            await eventually(lambda: handled(service, ConsultationWashoutEnded), what="the washout's end handled")
            left = await service.db[WASHOUTS].find_one({"_id": ends.isoformat()})

    assert [r.rule_id for r in deferred.data.rules_fired if r.outcome == "review"] == ["review.anticoagulant"]
    assert listed is not None and listed[who["consultation_id"]] == who["patient_id"]
    assert (first, again) == (2, 0), "the consultation's washout end and the day's deletion, once"
    assert ended.data.washout_ended_on == ends and approved.causation_id == ended.id
    assert approved.data.plan.earliest_start == ends
    assert left is None, "the answered day's list is deleted"
    assert [c for c in commands if c.scans] == [], "the check reads each day's list and each consultation by _id"
