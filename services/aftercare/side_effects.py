"""Side effects after a session: checked, classified, and escalated when serious.

Escalation policy (pure, time passed in):
- A report is identified by its ``report_id``; the handler ignores a report it already recorded, and the
  escalation id is derived from the report id, so a re-sent report never escalates twice.
- At most one escalation per (session, symptom), unless a later report of that symptom has a higher
  grade than the one escalated (it worsened): then it is escalated again, under its own report's id.
- A serious report that is not escalated again is still recorded, marked ``already_escalated``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from services.aftercare.config import EscalationRules
from services.aftercare.domain import TreatedSession, bounded_id
from shared.contracts.aftercare import AdverseEventEscalated, CheckInAnswered, SideEffectRecorded, SideEffectReported, Symptom

Reason = Literal["allergic_reaction", "infection", "grade_3_or_above", "persisting"]
Channel = Literal["patient_app", "clinician", "check_in"]
SERIOUS_REASONS: dict[Symptom, Reason] = {Symptom.ALLERGIC_REACTION: "allergic_reaction", Symptom.INFECTION: "infection"}
"""The escalation reason of each symptom that may be configured as serious at any grade."""


class InvalidReport(ValueError):
    """A report that contradicts what aftercare knows; ``reason`` is the dead-letter reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Category(StrEnum):
    EXPECTED = "expected"
    """An expected, mild reaction (pain, redness, swelling, bruising, itching): recorded only."""
    UNEXPECTED = "unexpected"
    """Not on the expected list but below every escalation threshold: recorded for the clinician."""
    SERIOUS = "serious"


@dataclass(frozen=True)
class Report:
    """One symptom observed after a session, from a SideEffectReported or one line of a check-in answer."""

    report_id: str
    patient_id: str
    session_id: str
    symptom: Symptom
    grade: int
    onset_at: datetime
    observed_at: datetime
    still_present: bool
    reported_by: Channel
    check_in_id: str | None = None

    @classmethod
    def of(cls, event: SideEffectReported) -> Report:
        fields = event.model_dump(exclude={"reported_at"})
        return cls(**fields, observed_at=event.reported_at)


def reports_from_answer(answer: CheckInAnswered) -> tuple[Report, ...]:
    """Every symptom of a check-in answer as a report; ids follow from the check-in and the line."""
    return tuple(
        Report(
            report_id=bounded_id("sfx_", f"{answer.check_in_id[4:]}_{line}", answer.check_in_id, line),
            patient_id=answer.patient_id,
            session_id=answer.session_id,
            symptom=item.symptom,
            grade=item.grade,
            onset_at=item.onset_at,
            observed_at=answer.answered_at,
            still_present=item.still_present,
            reported_by="check_in",
            check_in_id=answer.check_in_id,
        )
        for line, item in enumerate(answer.symptoms, start=1)
    )


@dataclass(frozen=True)
class Classification:
    category: Category
    reasons: tuple[Reason, ...] = ()


def classify(report: Report, rules: EscalationRules) -> Classification:
    reasons: list[Reason] = []
    if report.symptom in rules.serious_symptoms:
        reasons.append(SERIOUS_REASONS[report.symptom])
    if report.grade >= rules.escalate_from_grade:
        reasons.append("grade_3_or_above")
    if report.still_present and report.observed_at - report.onset_at > rules.persisting_after:
        reasons.append("persisting")
    if reasons:
        return Classification(Category.SERIOUS, tuple(reasons))
    return Classification(Category.EXPECTED if report.symptom in rules.expected_symptoms else Category.UNEXPECTED)


def check(session: TreatedSession, report: Report, rules: EscalationRules) -> None:
    """Raises InvalidReport for a report that cannot follow this session."""
    if report.patient_id != session.patient_id:
        raise InvalidReport("patient-mismatch", f"{report.session_id} belongs to another patient")
    if report.onset_at < session.completed_at - rules.onset_grace:
        raise InvalidReport("onset-before-session", f"{report.report_id} onset precedes {session.session_id} completion")
    if report.onset_at > report.observed_at:
        raise InvalidReport("onset-after-report", f"{report.report_id} onset is later than its report")


@dataclass(frozen=True)
class Assessed:
    report: Report
    classification: Classification
    escalation: AdverseEventEscalated | None = None

    @property
    def already_escalated(self) -> bool:
        return self.classification.category is Category.SERIOUS and self.escalation is None


@dataclass(frozen=True)
class Assessment:
    items: tuple[Assessed, ...]
    escalated: dict[Symptom, int]
    """The session's highest escalated grade per symptom after these reports."""

    @property
    def escalations(self) -> tuple[AdverseEventEscalated, ...]:
        return tuple(item.escalation for item in self.items if item.escalation is not None)


def assess(session: TreatedSession, reports: tuple[Report, ...], rules: EscalationRules, now: datetime) -> Assessment:
    """Check every report first (all or nothing), then classify each and decide its escalation."""
    for report in reports:
        check(session, report, rules)
    escalated = dict(session.escalated)
    items = []
    for report in reports:
        classification = classify(report, rules)
        escalation = None
        if classification.category is Category.SERIOUS and report.grade > escalated.get(report.symptom, 0):
            escalation = escalate(session, report, classification.reasons, now)
            escalated[report.symptom] = report.grade
        items.append(Assessed(report, classification, escalation))
    return Assessment(tuple(items), escalated)


def recorded(session: TreatedSession, item: Assessed, now: datetime, *, waited: bool = False) -> SideEffectRecorded:
    """The answer to one report: how it was classified and whether it escalated."""
    report = item.report
    return SideEffectRecorded(
        report_id=report.report_id,
        patient_id=report.patient_id,
        course_id=session.course_id,
        session_id=report.session_id,
        symptom=report.symptom,
        grade=report.grade,
        reported_by=report.reported_by,
        check_in_id=report.check_in_id,
        category=item.classification.category.value,
        reasons=item.classification.reasons,
        escalation_id=item.escalation.escalation_id if item.escalation else None,
        already_escalated=item.already_escalated,
        waited_for_session=waited,
        recorded_at=now,
    )


def refusal(session: TreatedSession, report: Report, rules: EscalationRules) -> InvalidReport | None:
    """Why a report that waited for its session cannot follow it, or None when it can."""
    try:
        check(session, report, rules)
    except InvalidReport as error:
        return error
    return None


def escalation_id(report_id: str) -> str:
    return "esc_" + report_id[4:]


def escalate(session: TreatedSession, report: Report, reasons: tuple[Reason, ...], now: datetime) -> AdverseEventEscalated:
    return AdverseEventEscalated(
        escalation_id=escalation_id(report.report_id),
        patient_id=session.patient_id,
        course_id=session.course_id,
        session_id=session.session_id,
        report_id=report.report_id,
        symptom=report.symptom,
        grade=report.grade,
        onset_at=report.onset_at,
        escalated_at=now,
        reasons=reasons,
        suspect_ingredients=session.suspect_ingredients,
        lots=session.lots,
    )
