"""Consultation's handlers in-process (tests/support/unit_of_work.py): each handler's main rule and the ways
it refuses input, in milliseconds and without the broker or the store."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from services.consultation.app import create_service
from services.consultation.handlers import Deps
from services.consultation.repository import CONSULTATIONS, PATIENTS, WASHOUTS
from shared.clock import ManualClock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import (
    AllergyTestRecorded,
    ConsultationApproved,
    ConsultationDeferred,
    ConsultationRejected,
    ConsultationReviewApplied,
    ConsultationReviewed,
    ConsultationWashoutEnded,
    LabResultsRecorded,
    MedicationStopped,
)
from shared.settings import Settings
from tests.support.unit_of_work import UnitOfWork
from tests.unit.consultation.factories import AGA_MODERATE, CONSULTATION, GOOD_LABS, NOW, PATIENT, lab, recorded

WHO = {"patient_id": PATIENT, "consultation_id": CONSULTATION}


async def work() -> UnitOfWork[Deps]:
    return await UnitOfWork.of(create_service(Settings(), ManualClock(NOW)))


def review(*rule_ids: str, decision: str = "clear", **changes: Any) -> ConsultationReviewed:
    return ConsultationReviewed.model_validate(
        {**WHO, "clinician_id": "clin_0077", "reviewed_at": NOW, "decision": decision, "rule_ids": rule_ids, "reason": "clinical_judgement", **changes}
    )


def allergy_test(**results: str) -> AllergyTestRecorded:
    lines = [{"ingredient": code, "result": result} for code, result in results.items()]
    return AllergyTestRecorded(**WHO, clinician_id="clin_0042", tested_at=NOW, recorded_at=NOW, results=lines)


def escalation(*suspects: str) -> AdverseEventEscalated:
    return AdverseEventEscalated(
        escalation_id="esc_FACTORY01",
        patient_id=PATIENT,
        session_id="ses_FACTORY01_02",
        report_id="sfx_FACTORY01",
        symptom="allergic_reaction",
        grade=2,
        onset_at=NOW,
        escalated_at=NOW,
        reasons=["allergic_reaction"],
        suspect_ingredients=suspects,
    )


# ConsultationRecorded


async def test_a_recorded_consultation_is_approved_once_with_its_course_and_the_patient_file_follows():
    uow = await work()

    first = await uow.handle(recorded())
    again = await uow.handle(recorded())

    [approved] = first.emitted(ConsultationApproved)
    assert (approved.course_id, approved.plan.sessions, approved.plan.earliest_start) == ("crs_FACTORY01", 6, NOW.date())
    assert first.outcome == "approved" and first.claims == [], "consultation claims nothing shared: every write is an Effect"
    assert uow.db.documents(CONSULTATIONS)[CONSULTATION]["status"] == "approved"
    assert uow.db.documents(PATIENTS) == {}, "an approval closes nothing that was open: the patient's file is not written"
    assert again.outcome == "already-decided" and again.events == []


async def test_an_absolute_contraindication_rejects():
    uow = await work()

    handled = await uow.handle(recorded(pregnant=True))

    [rejected] = handled.emitted(ConsultationRejected)
    assert [(r.rule_id, r.outcome) for r in rejected.rules_fired] == [("contra.pregnancy", "reject")]
    assert handled.outcome == "rejected" and handled.emitted(ConsultationApproved) == []


async def test_a_deferral_opens_the_consultation_on_the_patients_file_and_a_resend_publishes_nothing():
    uow = await work()

    first = await uow.handle(recorded(lab_results=[]))
    again = await uow.handle(recorded(lab_results=[]))

    [deferred] = first.emitted(ConsultationDeferred)
    assert {m.lab_test for m in deferred.missing} == {"ferritin", "vitamin_d", "zinc", "tsh"}
    assert uow.db.documents(PATIENTS)[PATIENT]["open_consultations"] == [CONSULTATION]
    assert again.outcome == "unchanged" and again.events == []


async def test_contradictory_severity_is_rejected_with_nothing_written():
    uow = await work()

    mismatch = await uow.handle(recorded(sex_at_birth="female"))  # a Norwood scale for a woman
    not_applicable = await uow.handle(recorded(hair_loss_type="telogen_effluvium"))
    missing = await uow.handle(recorded(severity=None))

    reasons = [h.rejected.reason if h.rejected else None for h in (mismatch, not_applicable, missing)]
    assert reasons == ["severity-scale-mismatch", "severity-not-applicable", "severity-missing"]
    assert uow.db.writes == []


async def test_a_consultation_filed_under_another_patient_is_rejected():
    uow = await work()
    await uow.handle(recorded(lab_results=[]))

    handled = await uow.handle(recorded(patient_id="pt_SOMEONE02", lab_results=[]))

    assert handled.rejected is not None and handled.rejected.reason == "patient-mismatch"
    assert handled.effects.writes == []


# ConsultationReviewed


async def test_a_clinicians_review_clears_what_waited_for_it_and_approves():
    uow = await work()
    await uow.handle(recorded(history={"bleeding_disorder": True}))

    handled = await uow.handle(review("review.bleeding_disorder", plan_adjustments={"sessions": 4}))

    [approved] = handled.emitted(ConsultationApproved)
    [cleared] = [r for r in approved.rules_fired if r.rule_id == "review.bleeding_disorder"]
    assert (cleared.cleared_by, approved.plan.sessions) == ("clin_0077", 4)
    assert uow.db.documents(PATIENTS)[PATIENT]["open_consultations"] == [], "the approval closes it on the patient's file"


async def test_a_review_naming_an_unknown_rule_is_rejected_with_nothing_written():
    uow = await work()

    handled = await uow.handle(review("labs.unheard_of_rule"))

    assert handled.rejected is not None and handled.rejected.reason == "unknown-rule"
    assert uow.db.writes == []


async def test_a_review_after_the_final_decision_is_kept_for_the_audit_and_changes_nothing():
    uow = await work()
    await uow.handle(recorded(pregnant=True))

    handled = await uow.handle(review("contra.pregnancy"))

    assert handled.outcome == "already-decided"
    [applied] = handled.emitted(ConsultationReviewApplied)
    assert [type(e.data) for e in handled.events] == [ConsultationReviewApplied], "no new decision, only the review's answer"
    assert (applied.result, applied.status, applied.cleared, applied.not_cleared) == ("unchanged", "rejected", (), ("contra.pregnancy",))
    stored = uow.db.documents(CONSULTATIONS)[CONSULTATION]
    assert (stored["status"], len(stored["reviews"])) == ("rejected", 1)


async def test_every_review_is_answered_with_what_it_cleared_and_the_decision_that_followed():
    uow = await work()
    await uow.handle(recorded(history={"bleeding_disorder": True, "immunosuppressed": True}))

    partial = await uow.handle(review("review.bleeding_disorder"))
    idle = await uow.handle(review("scalp.active_infection"))  # clears a rule that did not fire
    final = await uow.handle(review("review.immunosuppressed", plan_adjustments={"sessions": 4}))

    [first] = partial.emitted(ConsultationReviewApplied)
    assert (first.cleared, first.result, first.status, first.plan_adjusted) == (("review.bleeding_disorder",), "deferred", "deferred", False)
    assert [m.rule_id for m in partial.emitted(ConsultationDeferred)[0].missing] == ["review.immunosuppressed"]
    [nothing] = idle.emitted(ConsultationReviewApplied)
    assert (nothing.result, nothing.status, idle.outcome) == ("unchanged", "deferred", "unchanged")
    assert [type(e.data) for e in idle.events] == [ConsultationReviewApplied]
    [second] = final.emitted(ConsultationReviewApplied)
    assert (second.result, second.status, second.plan_adjusted) == ("approved", "approved", True)
    assert [type(e.data) for e in final.events] == [ConsultationApproved, ConsultationReviewApplied]


async def test_a_review_before_the_assessment_is_answered_as_pending():
    uow = await work()

    handled = await uow.handle(review("review.bleeding_disorder"))

    [applied] = handled.emitted(ConsultationReviewApplied)
    assert (applied.result, applied.status) == ("unchanged", "pending")


async def test_a_clinicians_reject_rejects_the_consultation():
    uow = await work()
    await uow.handle(recorded(history={"bleeding_disorder": True}))

    handled = await uow.handle(review(decision="reject"))

    [rejected] = handled.emitted(ConsultationRejected)
    assert rejected.rejected_by == "clin_0077"


# LabResultsRecorded


async def test_lab_results_re_screen_the_open_consultation_they_complete():
    uow = await work()
    await uow.handle(recorded(lab_results=[lab(*row) for row in GOOD_LABS if row[0] != "ferritin"]))

    handled = await uow.handle(LabResultsRecorded(**WHO, recorded_at=NOW, results=[lab("ferritin", 64.0, "ng/mL")]))

    assert len(handled.emitted(ConsultationApproved)) == 1
    patient = uow.db.documents(PATIENTS)[PATIENT]
    assert ([r["test"] for r in patient["lab_results"]], patient["open_consultations"]) == (["ferritin"], [])


async def test_lab_results_that_change_no_decision_are_kept_and_publish_nothing():
    uow = await work()
    await uow.handle(recorded(consent_given=False))

    handled = await uow.handle(LabResultsRecorded(**WHO, recorded_at=NOW, results=[lab("ferritin", 64.0, "ng/mL")]))

    assert handled.outcome == "unchanged" and handled.events == []
    assert [r["test"] for r in uow.db.documents(PATIENTS)[PATIENT]["lab_results"]] == ["ferritin"]


async def test_lab_results_filed_under_another_patients_consultation_are_rejected():
    uow = await work()
    await uow.handle(recorded(lab_results=[]))

    handled = await uow.handle(LabResultsRecorded(patient_id="pt_SOMEONE02", consultation_id=CONSULTATION, recorded_at=NOW, results=[lab("ferritin", 64.0, "ng/mL")]))

    assert handled.rejected is not None and handled.rejected.reason == "patient-mismatch"
    assert handled.effects.writes == []


# AllergyTestRecorded


async def test_allergy_tests_approve_without_the_ingredient_that_tested_positive():
    uow = await work()
    deferral = await uow.handle(recorded(previously_received_ingredients=["hyaluronic_acid", "biotin", "dexpanthenol", "zinc"]))
    assert deferral.emitted(ConsultationDeferred)[0].missing[0].ingredients == ("minoxidil", "saw_palmetto")

    handled = await uow.handle(allergy_test(minoxidil="negative", saw_palmetto="positive"))

    [approved] = handled.emitted(ConsultationApproved)
    assert [(e.ingredient, e.reason) for e in approved.excluded_ingredients] == [("saw_palmetto", "positive_allergy_test")]
    assert "saw_palmetto" not in [d.ingredient for d in approved.plan.cocktail]


async def test_an_allergy_test_of_an_ingredient_outside_the_formulary_is_rejected_with_nothing_written():
    uow = await work()

    handled = await uow.handle(allergy_test(unobtainium="negative"))

    assert handled.rejected is not None and handled.rejected.reason == "unknown-ingredient"
    assert uow.db.writes == []


# AdverseEventEscalated


async def test_an_escalation_records_the_sensitivity_and_re_screens_every_open_consultation():
    uow = await work()
    await uow.handle(recorded(consent_given=False))

    handled = await uow.handle(escalation("dexpanthenol", "minoxidil"))

    assert uow.db.documents(PATIENTS)[PATIENT]["sensitivities"][0]["ingredient"] == "dexpanthenol"
    [deferred] = handled.emitted(ConsultationDeferred)
    fired = {r.rule_id for r in deferred.rules_fired}
    assert {"allergy.recorded_sensitivity", "review.essential_ingredient_sensitivity"} <= fired


async def test_an_escalation_without_suspects_changes_nothing_and_a_later_plan_leaves_the_suspect_out():
    uow = await work()

    nothing = await uow.handle(escalation())
    await uow.handle(escalation("dexpanthenol"))
    later = await uow.handle(recorded())

    assert nothing.outcome == "no-suspect-ingredient" and nothing.effects.writes == []
    [approved] = later.emitted(ConsultationApproved)
    assert "dexpanthenol" not in [d.ingredient for d in approved.plan.cocktail]
    assert set(AGA_MODERATE) - {d.ingredient for d in approved.plan.cocktail} == {"dexpanthenol"}


# MedicationStopped


def stopped(category: str, stopped_on: date, **changes: Any) -> MedicationStopped:
    return MedicationStopped.model_validate({"patient_id": PATIENT, "category": category, "stopped_on": stopped_on, "recorded_at": NOW, **changes})


async def test_a_medication_stopped_re_screens_the_consultation_deferred_for_it():
    uow = await work()
    deferral = await uow.handle(recorded(current_medications=[{"category": "aspirin", "stopped_on": None}]))
    assert deferral.emitted(ConsultationDeferred)[0].missing[0].requirement == "washout"

    handled = await uow.handle(stopped("aspirin", NOW.date()))

    [approved] = handled.emitted(ConsultationApproved)
    assert approved.plan.earliest_start == NOW.date() + timedelta(days=8), "the first session waits for the washout"
    assert "meds.washout_in_progress" in {r.rule_id for r in approved.rules_fired}
    patient = uow.db.documents(PATIENTS)[PATIENT]
    assert (patient["stopped_medications"][0]["category"], patient["open_consultations"]) == ("aspirin", [])


async def test_a_stop_of_another_medication_or_code_changes_nothing():
    uow = await work()
    await uow.handle(recorded(current_medications=[{"category": "aspirin", "atc_code": "B01AC06", "stopped_on": None}]))

    other = await uow.handle(stopped("nsaid", NOW.date()))
    other_code = await uow.handle(stopped("aspirin", NOW.date(), atc_code="N02BA01"))

    assert (other.outcome, other.events, other_code.outcome, other_code.events) == ("unchanged", [], "unchanged", [])


async def test_a_stop_recorded_before_the_assessment_does_not_stop_what_the_assessment_says_is_taken():
    uow = await work()
    await uow.handle(stopped("aspirin", NOW.date() - timedelta(days=30), recorded_at=NOW - timedelta(days=30)))

    handled = await uow.handle(recorded(current_medications=[{"category": "aspirin", "stopped_on": None}]))

    assert handled.outcome == "deferred"


# The washout check and ConsultationWashoutEnded


def anticoagulant_stopped(days_ago: int) -> list[dict[str, Any]]:
    return [{"category": "anticoagulant_prescribed", "stopped_on": (NOW.date() - timedelta(days=days_ago)).isoformat()}]


async def test_a_deferral_that_lapses_by_itself_is_listed_under_its_day_and_re_screened_then():
    uow = await work()
    deferral = await uow.handle(recorded(current_medications=anticoagulant_stopped(2)))
    ends = NOW.date() + timedelta(days=6)  # stopped 2 days ago, 7-day washout: from day 8 after the stop

    assert deferral.outcome == "deferred"
    assert uow.db.documents(WASHOUTS) == {ends.isoformat(): {"_id": ends.isoformat(), CONSULTATION: PATIENT}}
    assert uow.db.documents(CONSULTATIONS)[CONSULTATION]["washout_ends"] == ends.isoformat()

    early = await uow.run_jobs(NOW + timedelta(days=5))
    found = await uow.run_jobs(NOW + timedelta(days=6))

    assert early == {"check_washouts": []}
    [(key, effects), (day_key, _)] = found["check_washouts"]
    assert (key, day_key) == (f"washout|{ends.isoformat()}|{CONSULTATION}", f"washout-day|{ends.isoformat()}")
    [ended] = [e.data for e in effects.events]
    assert isinstance(ended, ConsultationWashoutEnded) and ended.washout_ended_on == ends
    assert uow.db.documents(WASHOUTS) == {}, "the day's list is answered and deleted"

    uow.service.clock.set(NOW + timedelta(days=6))  # type: ignore[attr-defined]
    handled = await uow.handle(ended)
    assert handled.outcome == "approved" and len(handled.emitted(ConsultationApproved)) == 1


async def test_a_washout_day_of_a_consultation_decided_since_publishes_nothing():
    uow = await work()
    await uow.handle(recorded(current_medications=anticoagulant_stopped(2)))
    await uow.handle(review("review.anticoagulant"))

    found = await uow.run_jobs(NOW + timedelta(days=6))

    assert [key for key, _ in found["check_washouts"]] == [f"washout-day|{(NOW.date() + timedelta(days=6)).isoformat()}"]


async def test_a_medication_still_taken_is_not_listed_and_its_stop_lists_the_deferral():
    uow = await work()
    taken = [{"category": "anticoagulant_prescribed", "stopped_on": None}]
    await uow.handle(recorded(current_medications=taken))
    assert uow.db.documents(WASHOUTS) == {}, "a medication still taken lapses by nothing but its stop"

    handled = await uow.handle(stopped("anticoagulant_prescribed", NOW.date()))

    assert handled.outcome == "unchanged" and handled.events == [], "still within the washout: the review is still needed"
    ends = (NOW.date() + timedelta(days=8)).isoformat()
    assert uow.db.documents(WASHOUTS) == {ends: {"_id": ends, CONSULTATION: PATIENT}}
