"""The screening rules: each looks at the facts and says which rule ids fire (outcomes come from config),
and the formulation of the cocktail (at the end). Pure: no I/O, the day is passed in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from services.consultation.config import SCALES_OF_TYPE, Band, Formulary, Precautions, RuleSet, Scale, lab_rule
from shared.contracts.consultation import (
    ConsultationRecorded,
    ExcludedIngredient,
    HairLossType,
    LabResult,
    Medication,
    MedicationCategory,
    ScalpCondition,
)
from shared.contracts.plan import DoseLine

Requirement = Literal[
    "lab_result", "allergy_test", "washout", "clinician_review", "scalp_condition_resolved", "consent", "expectations_discussion"
]
BLOOD_THINNERS = (MedicationCategory.ASPIRIN, MedicationCategory.NSAID)
PRESCRIBED_ANTICOAGULANTS = (MedicationCategory.ANTICOAGULANT_PRESCRIBED, MedicationCategory.ANTIPLATELET_PRESCRIBED)


@dataclass(frozen=True)
class Finding:
    """A rule that fired, with what it needs when it defers (its outcome and text come from the rule set)."""

    rule_id: str
    requirement: Requirement = "clinician_review"
    lab_test: str | None = None
    ingredients: tuple[str, ...] = ()
    not_before: date | None = None


def assessment_problem(facts: ConsultationRecorded) -> str | None:
    """A severity that does not fit the type is contradictory data, not a clinical finding: None if fine."""
    scales = SCALES_OF_TYPE.get(facts.hair_loss_type)
    if not scales:
        return "severity-not-applicable" if facts.severity is not None else None
    if facts.severity is None:
        return "severity-missing"
    if facts.hair_loss_type == HairLossType.ANDROGENETIC_ALOPECIA:
        by_sex: dict[str, tuple[Scale, ...]] = {"male": ("norwood",), "female": ("ludwig",)}
        scales = by_sex.get(facts.sex_at_birth, scales)
    return None if facts.severity.scale in scales else "severity-scale-mismatch"


def suitability(facts: ConsultationRecorded) -> list[Finding]:
    rule = {
        HairLossType.SCARRING_ALOPECIA: "suitability.scarring_alopecia",
        HairLossType.ALOPECIA_AREATA: "suitability.alopecia_areata",
        HairLossType.OTHER: "suitability.other_hair_loss",
    }.get(facts.hair_loss_type)
    return [Finding(rule)] if rule else []


def contraindications(facts: ConsultationRecorded) -> list[Finding]:
    return [Finding(rule) for rule, applies in (("contra.pregnancy", facts.pregnant), ("contra.breastfeeding", facts.breastfeeding)) if applies]


def scalp(facts: ConsultationRecorded) -> list[Finding]:
    rule = {ScalpCondition.ACTIVE_INFECTION: "scalp.active_infection", ScalpCondition.OPEN_WOUND: "scalp.open_wound"}.get(facts.scalp_condition)
    return [Finding(rule, "scalp_condition_resolved")] if rule else []


def medical_history(facts: ConsultationRecorded) -> list[Finding]:
    history = facts.medical_history
    flags = (("review.bleeding_disorder", history.bleeding_disorder), ("review.immunosuppressed", history.immunosuppressed))
    return [Finding(rule) for rule, applies in flags if applies]


def consent(facts: ConsultationRecorded) -> list[Finding]:
    findings = []
    if not facts.expectations_discussed:
        findings.append(Finding("consent.expectations_not_discussed", "expectations_discussion"))
    if not facts.consent_given:
        findings.append(Finding("consent.not_given", "consent"))
    return findings


def labs(results: Iterable[LabResult], rule_set: RuleSet, now: datetime) -> list[Finding]:
    oldest = now - timedelta(days=rule_set.lab_max_age_days)
    current = [r for r in results if r.measured_at >= oldest]
    findings = []
    for test, requirement in rule_set.labs.items():
        latest = max((r for r in current if r.test == test), key=lambda r: r.measured_at, default=None)
        if latest is None:
            findings.append(Finding(lab_rule(test, "missing"), "lab_result", lab_test=test))
            continue
        bounds = requirement.ranges.get(latest.unit)
        if bounds is None or not bounds.low <= latest.value <= bounds.high:
            findings.append(Finding(lab_rule(test, "out_of_range"), "lab_result", lab_test=test))
    return findings


def allergy_test(facts: ConsultationRecorded, ingredients: Iterable[str], tested_negative: set[str], rule_set: RuleSet) -> list[Finding]:
    """Required with a history of allergies (every ingredient) or for ingredients never received before."""
    test_all = facts.medical_history.history_of_allergies and rule_set.test_all_ingredients_on_allergy_history
    untested = [
        code
        for code in ingredients
        if code not in tested_negative and (test_all or code not in facts.previously_received_ingredients)
    ]
    return [Finding("allergy.test_required", "allergy_test", ingredients=tuple(sorted(untested)))] if untested else []


def blood_thinners(medications: Iterable[Medication], today: date, washout_days: int) -> list[Finding]:
    """Aspirin/NSAIDs: still taken defers (washout from today); stopped recently delays the first session."""
    taken = [m for m in medications if m.category in BLOOD_THINNERS]
    first_free = timedelta(days=washout_days + 1)
    if any(m.stopped_on is None for m in taken):
        return [Finding("meds.blood_thinner_washout", "washout", not_before=today + first_free)]
    ends = [m.stopped_on + first_free for m in taken if m.stopped_on is not None and m.stopped_on + first_free > today]
    return [Finding("meds.washout_in_progress", not_before=max(ends))] if ends else []


def anticoagulants(medications: Iterable[Medication], today: date, washout_days: int) -> list[Finding]:
    """Prescribed anticoagulants are never simply stopped: taken now, or stopped within the washout, need review."""
    recent = [
        m
        for m in medications
        if m.category in PRESCRIBED_ANTICOAGULANTS and (m.stopped_on is None or m.stopped_on + timedelta(days=washout_days + 1) > today)
    ]
    return [Finding("review.anticoagulant")] if recent else []


def anticoagulant_washout_ends(medications: Iterable[Medication], today: date, washout_days: int) -> date | None:
    """The day ``review.anticoagulant`` stops firing by itself: when every prescribed anticoagulant in its
    washout has been stopped, the day after the last washout ends; None while one is still taken."""
    recent = [m for m in medications if m.category in PRESCRIBED_ANTICOAGULANTS]
    if any(m.stopped_on is None for m in recent):
        return None
    ends = [m.stopped_on + timedelta(days=washout_days + 1) for m in recent if m.stopped_on is not None]
    return max((end for end in ends if end > today), default=None)


def numbing_cream(facts: ConsultationRecorded, precautions: Precautions) -> list[Finding]:
    if precautions.numbing_cream_minutes is not None and set(facts.known_allergies) & set(precautions.anaesthetic_allergens):
        return [Finding("precaution.numbing_cream_allergy")]
    return []


# Formulating the customized cocktail: the formulary's doses for the type and band, minus exclusions.
#
# An essential ingredient (one the plan for that type cannot do without) that must be left out:
# - known allergy or positive allergy test -> reject (``contra.essential_ingredient_allergy``): an allergy
#   to a cocktail ingredient is an absolute contraindication, and the plan is not worth giving without it;
# - sensitivity recorded after an adverse event -> clinician's review
#   (``review.essential_ingredient_sensitivity``): the suspect list of an escalation names every
#   ingredient of that session, so it is a suspicion, not a diagnosis. A clinician who clears the review
#   keeps the ingredient in the plan ("no future plan contains it without review").
# A non-essential ingredient is simply left out, and the exclusion is listed with its rule.
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
