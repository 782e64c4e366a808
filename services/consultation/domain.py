"""Screening a consultation into a decision: approve with a plan, defer with what is missing, or reject.

Pure: the facts, the patient's file, the configuration and the time go in; a decision comes out, with the
contract event to publish (an approval carries the treatment plan, built at the end of this module).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from services.consultation import rules
from services.consultation.config import UNSUITABLE, Band, ConsultationConfig, RuleSet
from services.consultation.rules import Exclusions, Finding, Formulation, formulate
from services.consultation.state import ConsultationFile, PatientFile, Review
from shared.contracts.consultation import ConsultationApproved, ConsultationDeferred, ConsultationRecorded, ConsultationRejected, MissingItem
from shared.contracts.plan import DoseLine, PreTreatmentPrecautions, RuleOutcome, TreatmentPlan

Decided = ConsultationApproved | ConsultationDeferred | ConsultationRejected


@dataclass(frozen=True)
class Decision:
    status: Literal["approved", "deferred", "rejected"]
    event: Decided
    signature: str


@dataclass(frozen=True)
class Rescreen:
    file: ConsultationFile
    event: Decided | None
    """None when the decision is the one already published (or the consultation is not recorded yet)."""


def course_id(consultation_id: str) -> str:
    """One course per consultation, derived from its id: a redelivery can never start a second one."""
    return "crs_" + consultation_id.removeprefix("cons_")


def clearances(reviews: tuple[Review, ...], rule_set: RuleSet) -> dict[str, Review]:
    """Rules a clinician cleared, latest review first; a reject or a non-clearable rule is never cleared."""
    cleared: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: r.reviewed_at):
        if review.decision != "clear":
            continue
        for rule_id in review.rule_ids:
            spec = rule_set.rules.get(rule_id)
            if spec is not None and spec.clearable and spec.outcome in ("defer", "review"):
                cleared[rule_id] = review
    return cleared


def screen(file: ConsultationFile, patient: PatientFile, config: ConsultationConfig, now: datetime) -> tuple[list[Finding], Formulation]:
    facts = file.facts
    assert facts is not None, "only a recorded consultation is screened"
    rule_set, formulary, precautions = config.rule_set, config.formulary, config.precautions
    today = _today(config, now)
    formulation = Formulation()
    if facts.hair_loss_type not in UNSUITABLE:
        band = _band(facts, config)
        exclusions = Exclusions(frozenset(facts.known_allergies), frozenset(patient.positive_tests()), frozenset(patient.sensitive_to()))
        formulation = formulate(facts.hair_loss_type, band, formulary, exclusions, frozenset(clearances(file.reviews, rule_set)))
    cocktail = [dose.ingredient for dose in formulation.cocktail]
    findings = [
        *rules.suitability(facts),
        *rules.contraindications(facts),
        *formulation.findings,
        *rules.scalp(facts),
        *rules.labs((*facts.lab_results, *patient.lab_results), rule_set, now),
        *rules.allergy_test(facts, cocktail, patient.negative_tests(), rule_set),
        *rules.blood_thinners(facts.current_medications, today, precautions.aspirin_nsaid_washout_days),
        *rules.anticoagulants(facts.current_medications, today, precautions.aspirin_nsaid_washout_days),
        *rules.medical_history(facts),
        *rules.numbing_cream(facts, precautions),
        *rules.consent(facts),
    ]
    if any(review.decision == "reject" for review in file.reviews):
        findings.append(Finding("review.clinician_rejected"))
    return findings, formulation


def decide(file: ConsultationFile, patient: PatientFile, config: ConsultationConfig, now: datetime) -> Decision:
    facts = file.facts
    assert facts is not None, "only a recorded consultation is screened"
    rule_set = config.rule_set
    findings, formulation = screen(file, patient, config, now)
    cleared = clearances(file.reviews, rule_set)
    fired = _outcomes(findings, cleared, rule_set)
    common = {"patient_id": file.patient_id, "consultation_id": file.consultation_id, "rule_set_version": rule_set.version, "rules_fired": fired}
    rejects = [rule_set.rules[f.rule_id] for f in findings if rule_set.rules[f.rule_id].outcome == "reject"]
    if rejects:
        rejecter = next((r for r in sorted(file.reviews, key=lambda r: r.reviewed_at) if r.decision == "reject"), None)
        referral = next((spec.referral for spec in rejects if spec.referral), None)
        rejected = ConsultationRejected(**common, rejected_at=now, referral=referral, rejected_by=rejecter and rejecter.clinician_id)
        return Decision("rejected", rejected, _signature("rejected", fired, ()))
    blocking = [f for f in findings if rule_set.rules[f.rule_id].outcome in ("defer", "review") and f.rule_id not in cleared]
    missing = tuple(dict.fromkeys(_missing(f, rule_set) for f in blocking))
    if missing:
        return Decision("deferred", ConsultationDeferred(**common, deferred_at=now, missing=missing), _signature("deferred", fired, missing))
    plan = build_plan(facts, _band(facts, config), formulation.cocktail, findings, file.reviews, config, _today(config, now))
    event = ConsultationApproved(
        **common,
        course_id=course_id(file.consultation_id),
        approved_at=now,
        plan=plan,
        excluded_ingredients=formulation.excluded,
        expectations_discussed=True,
        consent_given=True,
    )
    return Decision("approved", event, _signature("approved", fired, ()))


def rescreen(file: ConsultationFile, patient: PatientFile, config: ConsultationConfig, now: datetime) -> Rescreen:
    """Decide again; a decision equal to the last one published changes nothing and publishes nothing."""
    if file.facts is None or not file.is_open:
        return Rescreen(file, None)
    decision = decide(file, patient, config, now)
    if decision.signature == file.signature:
        return Rescreen(file, None)
    record = {"status": decision.status, "decided_at": now, "event_type": decision.event.event_type, "data": decision.event.model_dump(mode="json")}
    updated = file.model_copy(update={"status": decision.status, "signature": decision.signature, "decisions": (*file.decisions, record)})
    return Rescreen(updated, decision.event)


# The treatment plan: the course template for type and band, the clinician's adjustments, precautions.


def adjustments(reviews: Iterable[Review]) -> dict[str, object]:
    """Each parameter from the latest review that set it."""
    chosen: dict[str, object] = {}
    for review in sorted(reviews, key=lambda r: r.reviewed_at):
        if review.plan_adjustments is not None:
            chosen.update(review.plan_adjustments.model_dump(exclude_none=True))
    return chosen


def build_plan(
    facts: ConsultationRecorded,
    band: Band,
    cocktail: tuple[DoseLine, ...],
    findings: Iterable[Finding],
    reviews: Iterable[Review],
    config: ConsultationConfig,
    today: date,
) -> TreatmentPlan:
    findings = list(findings)
    template = config.formulary.courses[facts.hair_loss_type][band].model_dump()
    washouts = [f.not_before for f in findings if f.not_before is not None]
    precautions = config.precautions
    no_cream = any(f.rule_id == "precaution.numbing_cream_allergy" for f in findings)
    return TreatmentPlan(
        **{**template, **adjustments(reviews)},
        earliest_start=max([today, *washouts]),
        cocktail=cocktail,
        precautions=PreTreatmentPrecautions(
            avoid_aspirin_nsaids_days=precautions.aspirin_nsaid_washout_days,
            avoid_alcohol_days=precautions.alcohol_days,
            numbing_cream_minutes_before=None if no_cream else precautions.numbing_cream_minutes,
            anticoagulant_clinician_review=any(f.rule_id == "review.anticoagulant" for f in findings),
        ),
        concurrent_treatments=facts.concurrent_treatments,
    )


def _today(config: ConsultationConfig, now: datetime) -> date:
    return now.astimezone(ZoneInfo(config.timezone)).date()


def _band(facts: ConsultationRecorded, config: ConsultationConfig) -> Band:
    severity = facts.severity
    return config.formulary.band(severity.scale if severity else None, severity.value if severity else None)


def _outcomes(findings: list[Finding], cleared: dict[str, Review], rule_set: RuleSet) -> tuple[RuleOutcome, ...]:
    fired: dict[str, RuleOutcome] = {}
    for finding in findings:
        if finding.rule_id in fired:
            continue
        spec = rule_set.rules[finding.rule_id]
        review = cleared.get(finding.rule_id)
        fired[finding.rule_id] = RuleOutcome(
            rule_id=finding.rule_id,
            outcome=spec.outcome,
            detail=spec.detail,
            cleared_by=review and review.clinician_id,
            cleared_reason=review and review.reason,
        )
    return tuple(fired.values())


def _missing(finding: Finding, rule_set: RuleSet) -> MissingItem:
    spec = rule_set.rules[finding.rule_id]
    requirement = finding.requirement if spec.outcome == "defer" else "clinician_review"
    return MissingItem(
        requirement=requirement,
        rule_id=finding.rule_id,
        lab_test=finding.lab_test if requirement == "lab_result" else None,
        ingredients=finding.ingredients if requirement == "allergy_test" else (),
        not_before=finding.not_before if requirement == "washout" else None,
        detail=spec.detail,
    )


def _signature(status: str, fired: tuple[RuleOutcome, ...], missing: tuple[MissingItem, ...]) -> str:
    # The washout's not_before moves with the day of the re-screen; it is left out so that a re-screen
    # with nothing new to say publishes nothing.
    return json.dumps(
        {
            "status": status,
            "fired": sorted([r.rule_id, r.outcome, r.cleared_by or ""] for r in fired),
            "missing": sorted([m.requirement, m.rule_id, m.lab_test or "", *m.ingredients] for m in missing),
        },
        sort_keys=True,
    )
