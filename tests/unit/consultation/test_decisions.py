"""Whole decisions: approve with a plan, defer with exactly what is missing, reject with reasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.consultation.config import ConsultationConfig
from services.consultation.domain import course_id, decide, rescreen
from services.consultation.state import AllergyTest, Sensitivity
from tests.unit.consultation.factories import NOW, consultation, lab, patient, recorded, review

CONFIG = ConsultationConfig()
TODAY = NOW.date()


def decided(file=None, pat=None, config=CONFIG, now=NOW):
    return decide(file or consultation(), pat or patient(), config, now)


def fired(decision) -> dict[str, str]:
    return {r.rule_id: r.outcome for r in decision.event.rules_fired}


def test_a_patient_who_passes_every_rule_is_approved_with_the_template_plan():
    decision = decided()

    assert decision.status == "approved"
    approved = decision.event
    assert approved.course_id == "crs_FACTORY01" == course_id("cons_FACTORY01")
    assert approved.rule_set_version == "2026.11-1"
    plan = approved.plan
    assert (plan.sessions, plan.interval_days, plan.depth_mm, plan.technique, plan.pattern, plan.maintenance_interval_weeks) == (6, 14, 2.0, "gun", "grid", 12)
    assert plan.earliest_start == TODAY
    assert [d.ingredient for d in plan.cocktail] == ["hyaluronic_acid", "biotin", "dexpanthenol", "minoxidil", "saw_palmetto", "zinc"]
    assert (plan.precautions.avoid_aspirin_nsaids_days, plan.precautions.avoid_alcohol_days) == (7, 2)
    assert plan.precautions.numbing_cream_minutes_before == 45
    assert plan.precautions.anticoagulant_clinician_review is False
    assert plan.concurrent_treatments == ("finasteride",)
    assert approved.rules_fired == ()


@pytest.mark.parametrize(("change", "rule"), [({"pregnant": True}, "contra.pregnancy"), ({"breastfeeding": True}, "contra.breastfeeding")])
def test_pregnancy_or_breastfeeding_rejects_even_when_a_clinician_clears_it(change, rule):
    file = consultation(recorded(**change), reviews=(review(rule),))
    decision = decided(file)
    assert decision.status == "rejected"
    [outcome] = decision.event.rules_fired
    assert (outcome.rule_id, outcome.outcome, outcome.cleared_by) == (rule, "reject", None)
    assert decision.event.rejected_by is None


def test_scarring_alopecia_is_rejected_with_referral_to_a_dermatologist():
    decision = decided(consultation(recorded(hair_loss_type="scarring_alopecia", severity=None)))
    assert decision.status == "rejected"
    assert decision.event.referral == "dermatologist"
    assert "suitability.scarring_alopecia" in fired(decision)


def test_a_rejection_still_lists_every_other_rule_that_fired():
    decision = decided(consultation(recorded(pregnant=True, scalp_condition="active_infection", known_allergies=["zinc"])))
    assert fired(decision) == {"contra.pregnancy": "reject", "allergy.known_allergen": "exclude_ingredient", "scalp.active_infection": "defer"}


def test_alopecia_areata_waits_for_the_clinicians_review_and_is_approved_after_it():
    facts = recorded(hair_loss_type="alopecia_areata", severity={"scale": "salt", "value": 30}, sex_at_birth="female", previously_received_ingredients=["hyaluronic_acid", "biotin", "copper_peptide"])
    pending = decided(consultation(facts))
    assert pending.status == "deferred"
    assert [(m.requirement, m.rule_id) for m in pending.event.missing] == [("clinician_review", "suitability.alopecia_areata")]

    approved = decided(consultation(facts, reviews=(review("suitability.alopecia_areata"),)))
    assert approved.status == "approved"
    [outcome] = approved.event.rules_fired
    assert (outcome.cleared_by, outcome.cleared_reason) == ("clin_0077", "clinical_judgement")
    assert (approved.event.plan.pattern, approved.event.plan.interval_days) == ("points", 21)


def test_a_deferral_lists_exactly_what_is_missing():
    facts = recorded(lab_results=[], previously_received_ingredients=["biotin"], scalp_condition="active_infection", current_medications=[{"category": "aspirin"}])
    decision = decided(consultation(facts))
    assert decision.status == "deferred"
    missing = {m.rule_id: m for m in decision.event.missing}
    assert set(missing) == {
        "scalp.active_infection",
        "labs.ferritin_missing",
        "labs.vitamin_d_missing",
        "labs.zinc_missing",
        "labs.tsh_missing",
        "allergy.test_required",
        "meds.blood_thinner_washout",
    }
    assert missing["labs.zinc_missing"].lab_test == "zinc"
    assert missing["allergy.test_required"].ingredients == ("dexpanthenol", "hyaluronic_acid", "minoxidil", "saw_palmetto", "zinc")
    assert missing["meds.blood_thinner_washout"].not_before == TODAY + timedelta(days=8)
    assert missing["scalp.active_infection"].requirement == "scalp_condition_resolved"


def test_a_positive_allergy_test_excludes_the_ingredient_from_the_plan():
    pat = patient(allergy_tests=(AllergyTest(ingredient="saw_palmetto", result="positive", tested_at=NOW, consultation_id="cons_FACTORY01"),))
    decision = decided(pat=pat)
    assert decision.status == "approved"
    assert "saw_palmetto" not in [d.ingredient for d in decision.event.plan.cocktail]
    assert [(e.ingredient, e.reason) for e in decision.event.excluded_ingredients] == [("saw_palmetto", "positive_allergy_test")]


def test_a_recorded_sensitivity_excludes_the_ingredient_from_every_later_plan():
    pat = patient(sensitivities=(Sensitivity(ingredient="biotin", escalation_id="esc_FACTORY01", escalated_at=NOW),))
    decision = decided(pat=pat)
    assert decision.status == "approved"
    assert "biotin" not in [d.ingredient for d in decision.event.plan.cocktail]
    assert fired(decision) == {"allergy.recorded_sensitivity": "exclude_ingredient"}


def test_a_known_allergy_to_an_essential_ingredient_rejects_and_cannot_be_cleared():
    file = consultation(recorded(known_allergies=["minoxidil"]), reviews=(review("contra.essential_ingredient_allergy"),))
    decision = decided(file)
    assert decision.status == "rejected"
    assert fired(decision)["contra.essential_ingredient_allergy"] == "reject"


def test_a_negative_allergy_test_clears_the_requirement():
    facts = recorded(previously_received_ingredients=["hyaluronic_acid", "biotin", "dexpanthenol", "saw_palmetto", "zinc"])
    assert decided(consultation(facts)).status == "deferred"
    pat = patient(allergy_tests=(AllergyTest(ingredient="minoxidil", result="negative", tested_at=NOW, consultation_id="cons_FACTORY01"),))
    assert decided(consultation(facts), pat).status == "approved"
    inconclusive = patient(allergy_tests=(AllergyTest(ingredient="minoxidil", result="inconclusive", tested_at=NOW, consultation_id="cons_FACTORY01"),))
    assert decided(consultation(facts), inconclusive).status == "deferred"


def test_a_clinician_override_clears_deferrals_and_is_recorded_with_who_and_why():
    facts = recorded(lab_results=[])
    labs = tuple(f"labs.{t}_missing" for t in ("ferritin", "vitamin_d", "zinc", "tsh"))
    decision = decided(consultation(facts, reviews=(review(*labs, clinician="clin_0099"),)))
    assert decision.status == "approved"
    assert {(r.rule_id, r.cleared_by, r.cleared_reason) for r in decision.event.rules_fired} == {(rule, "clin_0099", "clinical_judgement") for rule in labs}


def test_consent_and_expectations_cannot_be_overridden():
    facts = recorded(consent_given=False, expectations_discussed=False)
    decision = decided(consultation(facts, reviews=(review("consent.not_given", "consent.expectations_not_discussed"),)))
    assert decision.status == "deferred"
    assert {m.requirement for m in decision.event.missing} == {"consent", "expectations_discussion"}


def test_a_cleared_anticoagulant_review_is_approved_with_the_review_precaution():
    facts = recorded(current_medications=[{"category": "anticoagulant_prescribed"}])
    assert decided(consultation(facts)).status == "deferred"
    approved = decided(consultation(facts, reviews=(review("review.anticoagulant"),)))
    assert approved.status == "approved"
    assert approved.event.plan.precautions.anticoagulant_clinician_review is True


def test_a_washout_in_progress_sets_the_earliest_start():
    facts = recorded(current_medications=[{"category": "nsaid", "stopped_on": (TODAY - timedelta(days=2)).isoformat()}])
    decision = decided(consultation(facts))
    assert decision.status == "approved"
    assert decision.event.plan.earliest_start == TODAY + timedelta(days=6)
    assert fired(decision) == {"meds.washout_in_progress": "note"}


def test_an_anaesthetic_allergy_means_no_numbing_cream():
    decision = decided(consultation(recorded(known_allergies=["lidocaine"])))
    assert decision.event.plan.precautions.numbing_cream_minutes_before is None


def test_the_latest_clinician_adjustments_set_the_plan():
    earlier = review(at=NOW - timedelta(hours=2), plan_adjustments={"sessions": 10, "interval_days": 7})
    later = review(at=NOW - timedelta(hours=1), plan_adjustments={"sessions": 3, "depth_mm": 1.0})
    plan = decided(consultation(reviews=(later, earlier))).event.plan
    assert (plan.sessions, plan.interval_days, plan.depth_mm, plan.maintenance_interval_weeks) == (3, 7, 1.0, 12)


def test_a_clinician_who_rejects_is_named_on_the_rejection():
    decision = decided(consultation(reviews=(review(decision="reject", clinician="clin_0101", reason="patient_declined"),)))
    assert decision.status == "rejected"
    assert decision.event.rejected_by == "clin_0101"
    assert fired(decision) == {"review.clinician_rejected": "reject"}


def test_the_clinic_can_change_a_rules_outcome_in_configuration():
    data = CONFIG.model_dump(mode="json")
    data["rule_set"]["rules"]["suitability.alopecia_areata"]["outcome"] = "reject"
    data["rule_set"]["version"] = "2026.11-2"
    strict = ConsultationConfig.model_validate(data)
    facts = recorded(hair_loss_type="alopecia_areata", severity={"scale": "salt", "value": 30})
    decision = decided(consultation(facts, reviews=(review("suitability.alopecia_areata"),)), config=strict)
    assert (decision.status, decision.event.rule_set_version) == ("rejected", "2026.11-2")


def test_today_is_the_clinics_day_not_utcs():
    data = CONFIG.model_dump(mode="json") | {"timezone": "Pacific/Auckland"}
    late_evening_utc = NOW.replace(hour=23)
    plan = decided(config=ConsultationConfig.model_validate(data), now=late_evening_utc).event.plan
    assert plan.earliest_start == date(2026, 11, 3)


def test_a_rescreen_with_nothing_new_publishes_nothing():
    file = consultation(recorded(lab_results=[]))
    first = rescreen(file, patient(), CONFIG, NOW)
    assert first.event is not None and first.file.status == "deferred"

    again = rescreen(first.file, patient(), CONFIG, NOW + timedelta(days=1))
    assert again.event is None
    assert again.file == first.file


def test_a_washout_deferral_rescreened_another_day_publishes_nothing_although_its_date_moves():
    first = rescreen(consultation(recorded(current_medications=[{"category": "aspirin"}])), patient(), CONFIG, NOW)
    assert first.event.missing[0].not_before == TODAY + timedelta(days=8)
    assert rescreen(first.file, patient(), CONFIG, NOW + timedelta(days=2)).event is None


def test_a_rescreen_that_changes_what_is_missing_publishes_the_new_deferral():
    first = rescreen(consultation(recorded(lab_results=[])), patient(), CONFIG, NOW)
    partial = patient().with_labs(recorded(lab_results=[lab("ferritin", 70.0, "ng/mL")]).lab_results)
    second = rescreen(first.file, partial, CONFIG, NOW)
    assert second.event is not None
    assert "labs.ferritin_missing" not in {m.rule_id for m in second.event.missing}
    assert len(second.file.decisions) == 2


def test_a_decided_consultation_is_never_decided_again():
    approved = rescreen(consultation(), patient(), CONFIG, NOW)
    assert approved.file.status == "approved"
    pregnant = approved.file.model_copy(update={"facts": recorded(pregnant=True)})
    assert rescreen(pregnant, patient(), CONFIG, NOW).event is None


def test_an_unrecorded_consultation_is_not_screened():
    file = consultation().model_copy(update={"facts": None})
    assert rescreen(file, patient(), CONFIG, NOW).event is None
