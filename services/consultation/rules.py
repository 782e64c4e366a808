"""The screening rules: each looks at the facts and says which rule ids fire (outcomes come from config)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from services.consultation.config import SCALES_OF_TYPE, Precautions, RuleSet, lab_rule
from shared.contracts.consultation import ConsultationRecorded, HairLossType, LabResult, Medication, MedicationCategory, ScalpCondition

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
        scales = {"male": ("norwood",), "female": ("ludwig",)}.get(facts.sex_at_birth, scales)
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


def numbing_cream(facts: ConsultationRecorded, precautions: Precautions) -> list[Finding]:
    if precautions.numbing_cream_minutes is not None and set(facts.known_allergies) & set(precautions.anaesthetic_allergens):
        return [Finding("precaution.numbing_cream_allergy")]
    return []
