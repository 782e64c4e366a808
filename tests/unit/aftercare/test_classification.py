from datetime import timedelta

import pytest

from services.aftercare.config import EscalationRules
from services.aftercare.side_effects import Category, classify
from shared.contracts.aftercare import Symptom
from tests.unit.aftercare.factories import report

RULES = EscalationRules()
MILD = [Symptom.PAIN, Symptom.REDNESS, Symptom.SWELLING, Symptom.BRUISING, Symptom.ITCHING]


@pytest.mark.parametrize("symptom", MILD)
@pytest.mark.parametrize("grade", [1, 2])
def test_expected_symptoms_below_grade_3_are_expected_and_mild(symptom, grade):
    result = classify(report(symptom, grade), RULES)
    assert (result.category, result.reasons) == (Category.EXPECTED, ())


@pytest.mark.parametrize("symptom", list(Symptom))
@pytest.mark.parametrize("grade", [3, 4, 5])
def test_any_symptom_at_grade_3_or_above_is_serious(symptom, grade):
    result = classify(report(symptom, grade), RULES)
    assert result.category is Category.SERIOUS
    assert "grade_3_or_above" in result.reasons


@pytest.mark.parametrize(("symptom", "reason"), [(Symptom.ALLERGIC_REACTION, "allergic_reaction"), (Symptom.INFECTION, "infection")])
def test_an_allergic_reaction_or_infection_is_serious_at_grade_1(symptom, reason):
    result = classify(report(symptom, 1), RULES)
    assert (result.category, result.reasons) == (Category.SERIOUS, (reason,))


@pytest.mark.parametrize("symptom", [Symptom.HEADACHE, Symptom.OTHER])
def test_a_mild_symptom_not_on_the_expected_list_is_unexpected_but_not_escalated(symptom):
    result = classify(report(symptom, 2), RULES)
    assert (result.category, result.reasons) == (Category.UNEXPECTED, ())


def test_every_reason_met_is_named_in_a_fixed_order():
    result = classify(report(Symptom.INFECTION, 4, lasted=timedelta(days=8)), RULES)
    assert result.reasons == ("infection", "grade_3_or_above", "persisting")


def test_a_symptom_still_present_exactly_at_the_limit_is_not_yet_persisting():
    assert classify(report(lasted=timedelta(days=7)), RULES).category is Category.EXPECTED


def test_a_symptom_still_present_just_beyond_the_limit_is_persisting():
    result = classify(report(lasted=timedelta(days=7, minutes=1)), RULES)
    assert (result.category, result.reasons) == (Category.SERIOUS, ("persisting",))


def test_a_long_symptom_that_has_resolved_is_not_persisting():
    assert classify(report(lasted=timedelta(days=10), still_present=False), RULES).category is Category.EXPECTED


def test_thresholds_come_from_configuration():
    strict = EscalationRules(escalate_from_grade=2, persisting_after_days=2, serious_symptoms=frozenset({Symptom.INFECTION}))
    assert classify(report(Symptom.REDNESS, 2), strict).reasons == ("grade_3_or_above",)
    assert classify(report(lasted=timedelta(days=2, seconds=1)), strict).reasons == ("persisting",)
    assert classify(report(Symptom.ALLERGIC_REACTION, 1), strict).category is Category.UNEXPECTED


def test_a_symptom_can_be_removed_from_the_expected_list():
    rules = EscalationRules(expected_symptoms=frozenset({Symptom.PAIN}))
    assert classify(report(Symptom.BRUISING, 1), rules).category is Category.UNEXPECTED
