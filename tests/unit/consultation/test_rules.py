"""Every screening rule on its own, at the edges of its ranges."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.consultation import rules
from services.consultation.config import ConsultationConfig
from tests.unit.consultation.factories import NOW, lab, recorded

CONFIG = ConsultationConfig()
RULE_SET = CONFIG.rule_set
TODAY = NOW.date()


def fired(findings) -> list[str]:
    return [f.rule_id for f in findings]


@pytest.mark.parametrize(
    ("kind", "severity", "sex", "problem"),
    [
        ("androgenetic_alopecia", {"scale": "norwood", "value": 3}, "male", None),
        ("androgenetic_alopecia", {"scale": "ludwig", "value": 2}, "female", None),
        ("androgenetic_alopecia", {"scale": "ludwig", "value": 2}, "male", "severity-scale-mismatch"),
        ("androgenetic_alopecia", {"scale": "norwood", "value": 3}, "female", "severity-scale-mismatch"),
        ("androgenetic_alopecia", {"scale": "ludwig", "value": 1}, "unknown", None),
        ("androgenetic_alopecia", {"scale": "norwood", "value": 5}, "other", None),
        ("androgenetic_alopecia", {"scale": "salt", "value": 30}, "male", "severity-scale-mismatch"),
        ("androgenetic_alopecia", None, "male", "severity-missing"),
        ("alopecia_areata", {"scale": "salt", "value": 30}, "female", None),
        ("alopecia_areata", {"scale": "norwood", "value": 2}, "male", "severity-scale-mismatch"),
        ("alopecia_areata", None, "male", "severity-missing"),
        ("telogen_effluvium", None, "female", None),
        ("telogen_effluvium", {"scale": "ludwig", "value": 2}, "female", "severity-not-applicable"),
        ("scarring_alopecia", None, "male", None),
        ("hair_quality", {"scale": "salt", "value": 10}, "male", "severity-not-applicable"),
    ],
)
def test_a_severity_scale_must_fit_the_hair_loss_type_and_sex(kind, severity, sex, problem):
    assert rules.assessment_problem(recorded(hair_loss_type=kind, severity=severity, sex_at_birth=sex)) == problem


@pytest.mark.parametrize(
    ("kind", "severity", "rule"),
    [
        ("scarring_alopecia", None, ["suitability.scarring_alopecia"]),
        ("alopecia_areata", {"scale": "salt", "value": 40}, ["suitability.alopecia_areata"]),
        ("other", None, ["suitability.other_hair_loss"]),
        ("androgenetic_alopecia", {"scale": "norwood", "value": 3}, []),
        ("telogen_effluvium", None, []),
        ("hair_quality", None, []),
    ],
)
def test_suitability_depends_on_the_hair_loss_type(kind, severity, rule):
    assert fired(rules.suitability(recorded(hair_loss_type=kind, severity=severity))) == rule


def test_pregnancy_and_breastfeeding_are_contraindications():
    assert fired(rules.contraindications(recorded(pregnant=True))) == ["contra.pregnancy"]
    assert fired(rules.contraindications(recorded(breastfeeding=True))) == ["contra.breastfeeding"]
    assert fired(rules.contraindications(recorded())) == []


@pytest.mark.parametrize(("condition", "rule"), [("active_infection", ["scalp.active_infection"]), ("open_wound", ["scalp.open_wound"]), ("dandruff", []), ("healthy", [])])
def test_an_infected_or_wounded_scalp_must_heal_first(condition, rule):
    findings = rules.scalp(recorded(scalp_condition=condition))
    assert fired(findings) == rule
    assert all(f.requirement == "scalp_condition_resolved" for f in findings)


def test_bleeding_disorder_and_immunosuppression_need_review():
    assert fired(rules.medical_history(recorded(history={"bleeding_disorder": True}))) == ["review.bleeding_disorder"]
    assert fired(rules.medical_history(recorded(history={"immunosuppressed": True}))) == ["review.immunosuppressed"]
    assert fired(rules.medical_history(recorded(history={"autoimmune_disease": True}))) == []


def test_consent_and_expectations_are_each_required():
    assert fired(rules.consent(recorded(consent_given=False))) == ["consent.not_given"]
    assert fired(rules.consent(recorded(expectations_discussed=False))) == ["consent.expectations_not_discussed"]
    assert fired(rules.consent(recorded())) == []


def labs_of(*rows):
    return recorded(lab_results=[lab(*row) for row in rows]).lab_results


GOOD = {"ferritin": (80.0, "ng/mL"), "vitamin_d": (40.0, "ng/mL"), "zinc": (90.0, "ug/dL"), "tsh": (1.8, "mIU/L")}


def with_one(test: str, value: float, unit: str, measured_at=NOW):
    rows = [(t, v, u) for t, (v, u) in GOOD.items() if t != test]
    return [*labs_of(*rows), *labs_of((test, value, unit, measured_at))]


def test_every_missing_lab_result_is_named():
    findings = rules.labs(labs_of(("zinc", 90.0, "ug/dL")), RULE_SET, NOW)
    assert fired(findings) == ["labs.ferritin_missing", "labs.vitamin_d_missing", "labs.tsh_missing"]
    assert [f.lab_test for f in findings] == ["ferritin", "vitamin_d", "tsh"]
    assert {f.requirement for f in findings} == {"lab_result"}


@pytest.mark.parametrize(
    ("test", "value", "unit", "out_of_range"),
    [
        ("ferritin", 29.99, "ng/mL", True),
        ("ferritin", 30.0, "ng/mL", False),
        ("ferritin", 400.0, "ug/L", False),
        ("ferritin", 400.01, "ug/L", True),
        ("vitamin_d", 29.9, "ng/mL", True),
        ("vitamin_d", 30.0, "ng/mL", False),
        ("vitamin_d", 100.0, "ng/mL", False),
        ("vitamin_d", 100.1, "ng/mL", True),
        ("vitamin_d", 74.9, "nmol/L", True),
        ("vitamin_d", 75.0, "nmol/L", False),
        ("vitamin_d", 250.0, "nmol/L", False),
        ("vitamin_d", 250.1, "nmol/L", True),
        ("zinc", 69.9, "ug/dL", True),
        ("zinc", 70.0, "ug/dL", False),
        ("zinc", 120.0, "ug/dL", False),
        ("zinc", 120.1, "ug/dL", True),
        ("zinc", 10.6, "umol/L", True),
        ("zinc", 10.7, "umol/L", False),
        ("zinc", 18.4, "umol/L", False),
        ("zinc", 18.5, "umol/L", True),
        ("tsh", 0.39, "mIU/L", True),
        ("tsh", 0.4, "mIU/L", False),
        ("tsh", 4.0, "mIU/L", False),
        ("tsh", 4.01, "mIU/L", True),
    ],
)
def test_a_lab_result_outside_its_inclusive_range_defers(test, value, unit, out_of_range):
    findings = rules.labs(with_one(test, value, unit), RULE_SET, NOW)
    assert fired(findings) == ([f"labs.{test}_out_of_range"] if out_of_range else [])


def test_a_result_older_than_the_maximum_age_counts_as_missing():
    limit = NOW - timedelta(days=RULE_SET.lab_max_age_days)
    assert fired(rules.labs(with_one("tsh", 1.8, "mIU/L", limit), RULE_SET, NOW)) == []
    too_old = limit - timedelta(seconds=1)
    assert fired(rules.labs(with_one("tsh", 1.8, "mIU/L", too_old), RULE_SET, NOW)) == ["labs.tsh_missing"]


def test_the_latest_result_of_a_test_counts():
    low_then_normal = [*with_one("ferritin", 12.0, "ng/mL", NOW - timedelta(days=20)), *labs_of(("ferritin", 55.0, "ng/mL", NOW - timedelta(days=1)))]
    normal_then_low = [*with_one("ferritin", 55.0, "ng/mL", NOW - timedelta(days=20)), *labs_of(("ferritin", 12.0, "ng/mL", NOW - timedelta(days=1)))]
    assert fired(rules.labs(low_then_normal, RULE_SET, NOW)) == []
    assert fired(rules.labs(normal_then_low, RULE_SET, NOW)) == ["labs.ferritin_out_of_range"]


def test_an_allergy_test_is_required_for_ingredients_never_received():
    facts = recorded(previously_received_ingredients=["biotin"])
    [finding] = rules.allergy_test(facts, ["minoxidil", "biotin", "zinc"], set(), RULE_SET)
    assert (finding.rule_id, finding.requirement, finding.ingredients) == ("allergy.test_required", "allergy_test", ("minoxidil", "zinc"))


def test_a_history_of_allergies_requires_a_test_of_every_ingredient():
    facts = recorded(previously_received_ingredients=["biotin", "zinc"], history={"history_of_allergies": True})
    [finding] = rules.allergy_test(facts, ["biotin", "zinc"], set(), RULE_SET)
    assert finding.ingredients == ("biotin", "zinc")
    lenient = RULE_SET.model_copy(update={"test_all_ingredients_on_allergy_history": False})
    assert rules.allergy_test(facts, ["biotin", "zinc"], set(), lenient) == []


def test_a_negative_allergy_test_satisfies_the_requirement_and_nothing_else_does():
    facts = recorded(previously_received_ingredients=[])
    assert rules.allergy_test(facts, ["minoxidil"], {"minoxidil"}, RULE_SET) == []
    [finding] = rules.allergy_test(facts, ["minoxidil", "zinc"], {"minoxidil"}, RULE_SET)
    assert finding.ingredients == ("zinc",)
    assert rules.allergy_test(recorded(), ["biotin"], set(), RULE_SET) == []


def meds(*rows):
    return recorded(current_medications=[{"category": c, "stopped_on": s and s.isoformat()} for c, s in rows]).current_medications


@pytest.mark.parametrize("category", ["aspirin", "nsaid"])
def test_aspirin_or_nsaids_still_taken_defer_until_a_washout_from_today(category):
    [finding] = rules.blood_thinners(meds((category, None)), TODAY, 7)
    assert (finding.rule_id, finding.requirement, finding.not_before) == ("meds.blood_thinner_washout", "washout", TODAY + timedelta(days=8))


@pytest.mark.parametrize(
    ("stopped_days_ago", "first_session_in_days"),
    [(0, 8), (1, 7), (7, 1), (8, None), (30, None)],
)
def test_a_recently_stopped_blood_thinner_delays_the_first_session_until_the_washout_ends(stopped_days_ago, first_session_in_days):
    findings = rules.blood_thinners(meds(("aspirin", TODAY - timedelta(days=stopped_days_ago))), TODAY, 7)
    if first_session_in_days is None:
        assert findings == []
    else:
        [finding] = findings
        assert (finding.rule_id, finding.not_before) == ("meds.washout_in_progress", TODAY + timedelta(days=first_session_in_days))


def test_the_longest_washout_of_several_blood_thinners_counts():
    [finding] = rules.blood_thinners(meds(("aspirin", TODAY - timedelta(days=5)), ("nsaid", TODAY - timedelta(days=1))), TODAY, 7)
    assert finding.not_before == TODAY + timedelta(days=7)


@pytest.mark.parametrize(
    ("category", "stopped_on", "review"),
    [
        ("anticoagulant_prescribed", None, True),
        ("antiplatelet_prescribed", None, True),
        ("anticoagulant_prescribed", TODAY - timedelta(days=7), True),
        ("anticoagulant_prescribed", TODAY - timedelta(days=8), False),
        ("finasteride", None, False),
    ],
)
def test_prescribed_anticoagulants_need_the_clinicians_review(category, stopped_on, review):
    assert fired(rules.anticoagulants(meds((category, stopped_on)), TODAY, 7)) == (["review.anticoagulant"] if review else [])


def test_an_anaesthetic_allergy_rules_out_the_numbing_cream():
    assert fired(rules.numbing_cream(recorded(known_allergies=["lidocaine"]), CONFIG.precautions)) == ["precaution.numbing_cream_allergy"]
    assert fired(rules.numbing_cream(recorded(known_allergies=["biotin"]), CONFIG.precautions)) == []


def test_the_washout_uses_the_configured_days():
    assert rules.blood_thinners(meds(("nsaid", None)), date(2026, 1, 1), 3)[0].not_before == date(2026, 1, 5)
