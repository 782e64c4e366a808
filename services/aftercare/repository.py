"""Aftercare's documents: treated sessions, check-ins, side-effect records and outcomes.

Reads return domain objects; writes are returned as Effects for the runtime to apply. Every document
belongs to one patient, so only one instance writes it at a time (see docs/services.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.aftercare.domain import AftercarePlan, TreatedSession
from services.aftercare.side_effects import Assessment
from shared.contracts.aftercare import CheckInAnswered, IngredientLot, OutcomeRecorded, Symptom
from shared.runtime import Effects
from shared.runtime.store import derived_id

SESSIONS = "sessions"
CHECK_INS = "check_ins"
SIDE_EFFECTS = "side_effects"
OUTCOMES = "outcomes"


def instructions_event_id(session_id: str) -> str:
    return derived_id(session_id, "instructions")


def check_in_event_id(session_id: str, hours: int) -> str:
    return derived_id(session_id, "check-in", hours)


def escalation_event_id(escalation_id: str) -> str:
    return derived_id("escalation", escalation_id)


@dataclass(frozen=True)
class CheckIn:
    check_in_id: str
    session_id: str
    hours_after_session: int | None
    answered_at: datetime | None


class AftercareRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def ensure_indexes(self) -> None:
        await self.db[SIDE_EFFECTS].create_index([("session_id", ASCENDING)], name="session")
        await self.db[OUTCOMES].create_index([("course_id", ASCENDING), ("measured_at", ASCENDING)], name="course_trend")

    async def session(self, session_id: str) -> TreatedSession | None:
        doc = await self.db[SESSIONS].find_one({"_id": session_id})
        if doc is None:
            return None
        return TreatedSession(
            session_id=doc["_id"],
            patient_id=doc["patient_id"],
            course_id=doc["course_id"],
            completed_at=doc["completed_at"],
            lots=tuple(IngredientLot.model_validate(lot) for lot in doc["lots"]),
            escalated={Symptom(symptom): grade for symptom, grade in (doc.get("escalated") or {}).items()},
        )

    async def known_reports(self, report_ids: list[str]) -> set[str]:
        found = await self.db[SIDE_EFFECTS].find({"_id": {"$in": report_ids}}, {"_id": 1}).to_list()
        return {doc["_id"] for doc in found}

    async def check_in(self, check_in_id: str) -> CheckIn | None:
        doc = await self.db[CHECK_INS].find_one({"_id": check_in_id})
        if doc is None:
            return None
        return CheckIn(doc["_id"], doc["session_id"], doc.get("hours_after_session"), doc.get("answered_at"))

    def save_plan(self, plan: AftercarePlan) -> Effects:
        session = plan.session
        effects = Effects().put(
            SESSIONS,
            session.session_id,
            {
                "patient_id": session.patient_id,
                "course_id": session.course_id,
                "completed_at": session.completed_at,
                "lots": [lot.model_dump() for lot in session.lots],
                "escalated": {},
                "instructions_issued_at": plan.instructions.issued_at,
            },
        )
        effects.emit(plan.instructions, id=instructions_event_id(session.session_id))
        for due in plan.check_ins:
            effects.put(
                CHECK_INS,
                due.check_in_id,
                {
                    "patient_id": due.patient_id,
                    "session_id": due.session_id,
                    "hours_after_session": due.hours_after_session,
                    "due_at": due.due_at,
                    "answered_at": None,
                },
            )
            effects.emit(due, due_at=due.due_at, id=check_in_event_id(due.session_id, due.hours_after_session))
        return effects

    def record_assessment(self, session: TreatedSession, assessment: Assessment) -> Effects:
        effects = Effects()
        for item in assessment.items:
            report, escalation = item.report, item.escalation
            effects.put(
                SIDE_EFFECTS,
                report.report_id,
                {
                    "patient_id": report.patient_id,
                    "session_id": report.session_id,
                    "course_id": session.course_id,
                    "symptom": report.symptom.value,
                    "grade": report.grade,
                    "onset_at": report.onset_at,
                    "observed_at": report.observed_at,
                    "still_present": report.still_present,
                    "reported_by": report.reported_by,
                    "check_in_id": report.check_in_id,
                    "category": item.classification.category.value,
                    "reasons": list(item.classification.reasons),
                    "escalation_id": escalation.escalation_id if escalation else None,
                    "already_escalated": item.already_escalated,
                },
            )
            if escalation is not None:
                effects.emit(escalation, id=escalation_event_id(escalation.escalation_id))
        if assessment.escalated != dict(session.escalated):
            effects.merge(SESSIONS, session.session_id, escalated={s.value: g for s, g in assessment.escalated.items()})
        effects.outcome = "escalated" if assessment.escalations else "recorded"
        return effects

    def record_answer(self, answer: CheckInAnswered, known: CheckIn | None) -> Effects:
        effects = Effects().merge(
            CHECK_INS,
            answer.check_in_id,
            patient_id=answer.patient_id,
            session_id=answer.session_id,
            answered_at=answer.answered_at,
            symptoms_reported=len(answer.symptoms),
        )
        if known is not None and known.hours_after_session is not None:
            # Answered before it fell due: no need to ask again. A published one is not touched (runtime cancels pending only).
            effects.cancel.append(check_in_event_id(known.session_id, known.hours_after_session))
        return effects

    def record_outcome(self, outcome: OutcomeRecorded) -> Effects:
        measured_at = outcome.measured_at.astimezone(UTC)
        # A re-sent measurement of the same course at the same moment is a correction: it replaces.
        return Effects().put(
            OUTCOMES,
            f"{outcome.course_id}|{measured_at.isoformat()}",
            {
                "patient_id": outcome.patient_id,
                "course_id": outcome.course_id,
                "session_id": outcome.session_id,
                "clinician_id": outcome.clinician_id,
                "measured_at": measured_at,
                "density_per_cm2": outcome.density_per_cm2,
                "shaft_diameter_um": outcome.shaft_diameter_um,
                "satisfaction": outcome.satisfaction,
                "photo_views": list(outcome.photo_views),
                "clinician_decision": outcome.clinician_decision,
            },
        )


@dataclass(frozen=True)
class OutcomePoint:
    measured_at: datetime
    session_id: str | None
    density_per_cm2: float | None
    shaft_diameter_um: float | None
    satisfaction: int | None
    clinician_decision: str | None


async def outcome_trend(db: AsyncDatabase, course_id: str) -> list[OutcomePoint]:
    """A course's outcomes, oldest first: what the clinician looks at to decide whether to continue."""
    docs: list[dict[str, Any]] = await db[OUTCOMES].find({"course_id": course_id}).sort([("measured_at", ASCENDING)]).to_list()
    return [
        OutcomePoint(
            measured_at=doc["measured_at"],
            session_id=doc.get("session_id"),
            density_per_cm2=doc.get("density_per_cm2"),
            shaft_diameter_um=doc.get("shaft_diameter_um"),
            satisfaction=doc.get("satisfaction"),
            clinician_decision=doc.get("clinician_decision"),
        )
        for doc in docs
    ]
