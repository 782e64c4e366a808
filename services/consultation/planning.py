"""The treatment plan: the course template for type and band, the clinician's adjustments, precautions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from services.consultation.config import Band, ConsultationConfig
from services.consultation.rules import Finding
from services.consultation.state import Review
from shared.contracts.consultation import ConsultationRecorded
from shared.contracts.plan import DoseLine, PreTreatmentPrecautions, TreatmentPlan


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
