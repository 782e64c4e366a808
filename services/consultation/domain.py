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
from shared.contracts.consultation import (
    ConsultationApproved,
    ConsultationDeferred,
    ConsultationRecorded,
    ConsultationRejected,
    ConsultationReviewApplied,
    ConsultationReviewed,
    ConsultationWashoutEnded,
    MissingItem,
)
from shared.contracts.plan import DoseLine, PreTreatmentPrecautions, RuleOutcome, TreatmentPlan

Decided = ConsultationApproved | ConsultationDeferred | ConsultationRejected


@dataclass(frozen=True)
class Decision:
    status: Literal["approved", "deferred", "rejected"]
    event: Decided
    signature: str
    washout_ends: date | None = None
    """For a deferral that lapses by itself: the day it stops applying (the consultation is re-screened then)."""


@dataclass(frozen=True)
class Rescreen:
    file: ConsultationFile
    event: Decided | None
    """None when the decision is the one already published (or the consultation is not recorded yet)."""
    washout_listed: date | None = None
    """A new day to list the consultation under for the washout check (``ConsultationFile.washout_ends``)."""
    washout_moved: bool = False

    @property
    def changed(self) -> bool:
        """The file is to be saved: a new decision, or its washout day moved."""
        return self.event is not None or self.washout_moved


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
            if _clearable(rule_id, rule_set):
                cleared[rule_id] = review
    return cleared


def screen(file: ConsultationFile, patient: PatientFile, config: ConsultationConfig, now: datetime) -> tuple[list[Finding], Formulation]:
    facts = file.facts
    assert facts is not None, "only a recorded consultation is screened"
    rule_set, formulary, precautions = config.rule_set, config.formulary, config.precautions
    today = _today(config, now)
    medications = patient.medications(facts)
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
        *rules.blood_thinners(medications, today, precautions.aspirin_nsaid_washout_days),
        *rules.anticoagulants(medications, today, precautions.aspirin_nsaid_washout_days),
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
        deferred = ConsultationDeferred(**common, deferred_at=now, missing=missing)
        return Decision("deferred", deferred, _signature("deferred", fired, missing), _washout_ends(blocking, file, patient, config, now))
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
    washout = decision.washout_ends
    listed = washout if washout is not None and washout != file.washout_ends else None
    if decision.signature == file.signature:
        if washout == file.washout_ends:
            return Rescreen(file, None)
        return Rescreen(file.model_copy(update={"washout_ends": washout}), None, listed, washout_moved=True)
    record = {"status": decision.status, "decided_at": now, "event_type": decision.event.event_type, "data": decision.event.model_dump(mode="json")}
    update = {"status": decision.status, "signature": decision.signature, "decisions": (*file.decisions, record), "washout_ends": washout}
    return Rescreen(file.model_copy(update=update), decision.event, listed, washout_moved=washout != file.washout_ends)


def washout_ended(file: ConsultationFile, day: date) -> ConsultationWashoutEnded | None:
    """What the washout check publishes for a consultation listed under ``day``: nothing for one decided
    since, or listed under another day since (a stale entry of the day's list)."""
    if not file.is_open or file.washout_ends != day:
        return None
    return ConsultationWashoutEnded(patient_id=file.patient_id, consultation_id=file.consultation_id, washout_ended_on=day)


def today(config: ConsultationConfig, now: datetime) -> date:
    """The clinic's day at ``now`` (the washout check's day)."""
    return _today(config, now)


def review_applied(review: ConsultationReviewed, after: Rescreen, rule_set: RuleSet, now: datetime) -> ConsultationReviewApplied:
    """The answer to a review: what it cleared, what no review clears, and the decision that followed."""
    clearable = [r for r in review.rule_ids if _clearable(r, rule_set)] if review.decision == "clear" else []
    return ConsultationReviewApplied(
        patient_id=review.patient_id,
        consultation_id=review.consultation_id,
        clinician_id=review.clinician_id,
        reviewed_at=review.reviewed_at,
        applied_at=now,
        decision=review.decision,
        cleared=tuple(clearable),
        not_cleared=tuple(r for r in review.rule_ids if r not in clearable),
        plan_adjusted=review.plan_adjustments is not None,
        result=after.file.status if after.event is not None and after.file.status != "pending" else "unchanged",
        status=after.file.status,
    )


def _clearable(rule_id: str, rule_set: RuleSet) -> bool:
    spec = rule_set.rules.get(rule_id)
    return spec is not None and spec.clearable and spec.outcome in ("defer", "review")


def _washout_ends(blocking: list[Finding], file: ConsultationFile, patient: PatientFile, config: ConsultationConfig, now: datetime) -> date | None:
    """The day this deferral may lapse by itself: only a prescribed anticoagulant's review does (when every
    one is stopped, the review is needed only until their washout ends). A medication still taken lapses
    by nothing but the EHR's MedicationStopped, so it is never listed."""
    if not any(f.rule_id == "review.anticoagulant" for f in blocking) or file.facts is None:
        return None
    return rules.anticoagulant_washout_ends(patient.medications(file.facts), _today(config, now), config.precautions.aspirin_nsaid_washout_days)


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
