"""Formulating the customized cocktail: the formulary's doses for the type and band, minus exclusions.

An essential ingredient (one the plan for that type cannot do without) that must be left out:
- known allergy or positive allergy test -> reject (``contra.essential_ingredient_allergy``): an allergy
  to a cocktail ingredient is an absolute contraindication, and the plan is not worth giving without it;
- sensitivity recorded after an adverse event -> clinician's review
  (``review.essential_ingredient_sensitivity``): the suspect list of an escalation names every
  ingredient of that session, so it is a suspicion, not a diagnosis. A clinician who clears the review
  keeps the ingredient in the plan ("no future plan contains it without review").
A non-essential ingredient is simply left out, and the exclusion is listed with its rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.consultation.config import Band, Formulary
from services.consultation.rules import Finding
from shared.contracts.consultation import ExcludedIngredient, HairLossType
from shared.contracts.plan import DoseLine

EXCLUSION_RULES = {
    "known_allergy": "allergy.known_allergen",
    "positive_allergy_test": "allergy.positive_test",
    "recorded_sensitivity": "allergy.recorded_sensitivity",
}
ESSENTIAL_SENSITIVITY = "review.essential_ingredient_sensitivity"


@dataclass(frozen=True)
class Exclusions:
    known_allergies: frozenset[str] = frozenset()
    positive_tests: frozenset[str] = frozenset()
    sensitivities: frozenset[str] = frozenset()

    def reason(self, code: str) -> str | None:
        if code in self.known_allergies:
            return "known_allergy"
        if code in self.positive_tests:
            return "positive_allergy_test"
        if code in self.sensitivities:
            return "recorded_sensitivity"
        return None


@dataclass(frozen=True)
class Formulation:
    cocktail: tuple[DoseLine, ...] = ()
    excluded: tuple[ExcludedIngredient, ...] = ()
    findings: tuple[Finding, ...] = ()


def formulate(kind: HairLossType, band: Band, formulary: Formulary, exclusions: Exclusions, cleared: frozenset[str] = frozenset()) -> Formulation:
    cocktail: list[DoseLine] = []
    excluded: list[ExcludedIngredient] = []
    findings: list[Finding] = []
    for ingredient in formulary.ingredients:
        amount = ingredient.doses.get(kind, {}).get(band)
        if amount is None:
            continue
        dose = DoseLine(ingredient=ingredient.code, amount=amount, unit=ingredient.unit)
        reason = exclusions.reason(ingredient.code)
        if reason is None:
            cocktail.append(dose)
            continue
        if kind in ingredient.essential_for:
            if reason != "recorded_sensitivity":
                findings.append(Finding("contra.essential_ingredient_allergy", ingredients=(ingredient.code,)))
            else:
                findings.append(Finding(ESSENTIAL_SENSITIVITY, ingredients=(ingredient.code,)))
                if ESSENTIAL_SENSITIVITY in cleared:
                    cocktail.append(dose)
                    continue
        rule = EXCLUSION_RULES[reason]
        excluded.append(ExcludedIngredient(ingredient=ingredient.code, reason=reason, rule_id=rule))
        findings.append(Finding(rule, ingredients=(ingredient.code,)))
    if not cocktail and not any(f.rule_id in ("contra.essential_ingredient_allergy", ESSENTIAL_SENSITIVITY) for f in findings):
        findings.append(Finding("contra.no_ingredients_left"))
    return Formulation(tuple(cocktail), tuple(excluded), tuple(findings))
