"""Cocktail formulation: doses by type and band, the band edges, and every kind of exclusion."""

from __future__ import annotations

import pytest

from services.consultation.config import ConsultationConfig, Formulary
from services.consultation.rules import ESSENTIAL_SENSITIVITY, Exclusions, formulate
from shared.contracts.consultation import HairLossType

FORMULARY = ConsultationConfig().formulary
AGA = HairLossType.ANDROGENETIC_ALOPECIA


def doses(formulation) -> dict[str, tuple[float, str]]:
    return {d.ingredient: (d.amount, d.unit.value) for d in formulation.cocktail}


@pytest.mark.parametrize(
    ("scale", "value", "band"),
    [
        ("norwood", 1, "mild"),
        ("norwood", 2, "mild"),
        ("norwood", 3, "moderate"),
        ("norwood", 4, "moderate"),
        ("norwood", 5, "severe"),
        ("norwood", 7, "severe"),
        ("ludwig", 1, "mild"),
        ("ludwig", 2, "moderate"),
        ("ludwig", 3, "severe"),
        ("salt", 0, "mild"),
        ("salt", 24, "mild"),
        ("salt", 25, "moderate"),
        ("salt", 49, "moderate"),
        ("salt", 50, "severe"),
        ("salt", 100, "severe"),
        (None, None, "moderate"),
    ],
)
def test_the_severity_band_follows_the_configured_ranges(scale, value, band):
    assert FORMULARY.band(scale, value) == band


def test_the_cocktail_takes_each_ingredients_dose_for_the_type_and_band():
    assert doses(formulate(AGA, "mild", FORMULARY, Exclusions())) == {
        "hyaluronic_acid": (10.0, "mg"),
        "biotin": (5.0, "mg"),
        "dexpanthenol": (50.0, "mg"),
        "minoxidil": (1.0, "mg"),
        "zinc": (2.0, "mg"),
    }
    severe = doses(formulate(AGA, "severe", FORMULARY, Exclusions()))
    assert severe["minoxidil"] == (2.5, "mg") and severe["saw_palmetto"] == (40.0, "mg") and severe["copper_peptide"] == (1.0, "mg")


def test_telogen_effluvium_gets_its_own_cocktail():
    assert set(doses(formulate(HairLossType.TELOGEN_EFFLUVIUM, "moderate", FORMULARY, Exclusions()))) == {
        "hyaluronic_acid",
        "biotin",
        "b_complex",
        "dexpanthenol",
        "zinc",
    }


@pytest.mark.parametrize(
    ("exclusions", "reason", "rule"),
    [
        (Exclusions(known_allergies=frozenset({"zinc"})), "known_allergy", "allergy.known_allergen"),
        (Exclusions(positive_tests=frozenset({"zinc"})), "positive_allergy_test", "allergy.positive_test"),
        (Exclusions(sensitivities=frozenset({"zinc"})), "recorded_sensitivity", "allergy.recorded_sensitivity"),
    ],
)
def test_a_non_essential_ingredient_the_patient_reacts_to_is_left_out_and_listed(exclusions, reason, rule):
    formulation = formulate(AGA, "moderate", FORMULARY, exclusions)
    assert "zinc" not in doses(formulation)
    assert "minoxidil" in doses(formulation)
    assert [(e.ingredient, e.reason, e.rule_id) for e in formulation.excluded] == [("zinc", reason, rule)]
    assert [f.rule_id for f in formulation.findings] == [rule]


def test_a_known_allergy_outranks_other_reasons_for_the_same_ingredient():
    both = Exclusions(known_allergies=frozenset({"zinc"}), sensitivities=frozenset({"zinc"}))
    assert [e.reason for e in formulate(AGA, "moderate", FORMULARY, both).excluded] == ["known_allergy"]


@pytest.mark.parametrize("exclusions", [Exclusions(known_allergies=frozenset({"minoxidil"})), Exclusions(positive_tests=frozenset({"minoxidil"}))])
def test_an_allergy_to_an_essential_ingredient_rejects(exclusions):
    formulation = formulate(AGA, "moderate", FORMULARY, exclusions)
    assert "contra.essential_ingredient_allergy" in [f.rule_id for f in formulation.findings]
    assert "minoxidil" not in doses(formulation)


def test_a_sensitivity_to_an_essential_ingredient_needs_review_and_a_cleared_review_keeps_it():
    exclusions = Exclusions(sensitivities=frozenset({"minoxidil"}))
    pending = formulate(AGA, "moderate", FORMULARY, exclusions)
    assert [f.rule_id for f in pending.findings] == [ESSENTIAL_SENSITIVITY, "allergy.recorded_sensitivity"]
    assert "minoxidil" not in doses(pending)

    cleared = formulate(AGA, "moderate", FORMULARY, exclusions, frozenset({ESSENTIAL_SENSITIVITY}))
    assert [f.rule_id for f in cleared.findings] == [ESSENTIAL_SENSITIVITY]
    assert doses(cleared)["minoxidil"] == (2.0, "mg")
    assert cleared.excluded == ()


def test_an_essential_ingredient_of_another_type_is_just_left_out():
    formulation = formulate(HairLossType.TELOGEN_EFFLUVIUM, "moderate", FORMULARY, Exclusions(known_allergies=frozenset({"hyaluronic_acid"})))
    assert [f.rule_id for f in formulation.findings] == ["allergy.known_allergen"]


def test_a_cocktail_with_nothing_left_rejects():
    every = frozenset(i.code for i in FORMULARY.ingredients)
    formulation = formulate(HairLossType.OTHER, "moderate", FORMULARY, Exclusions(known_allergies=every))
    assert formulation.cocktail == ()
    assert formulation.findings[-1].rule_id == "contra.no_ingredients_left"


def test_the_formulary_rejects_an_essential_ingredient_without_a_dose_for_every_band():
    data = FORMULARY.model_dump(mode="json")
    minoxidil = next(i for i in data["ingredients"] if i["code"] == "minoxidil")
    del minoxidil["doses"]["androgenetic_alopecia"]["severe"]
    with pytest.raises(ValueError, match="essential minoxidil has no androgenetic_alopecia dose for severe"):
        Formulary.model_validate(data)


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ([{"band": "mild", "low": 0, "high": 24}, {"band": "severe", "low": 26, "high": 100}], "cover 0-100"),
        ([{"band": "mild", "low": 0, "high": 50}, {"band": "severe", "low": 50, "high": 100}], "cover 0-100"),
    ],
)
def test_the_formulary_rejects_bands_with_gaps_or_overlaps(ranges, message):
    data = FORMULARY.model_dump(mode="json")
    data["bands"]["salt"] = ranges
    with pytest.raises(ValueError, match=message):
        Formulary.model_validate(data)


def test_the_formulary_rejects_a_treatable_type_without_a_course():
    data = FORMULARY.model_dump(mode="json")
    del data["courses"]["telogen_effluvium"]
    with pytest.raises(ValueError, match="no course for telogen_effluvium moderate"):
        Formulary.model_validate(data)
