"""Aftercare's documents: treated sessions, check-ins, side-effect records and outcomes.

Reads return domain objects; writes are returned as Effects for the runtime to apply. Every document
belongs to one patient, so only one instance writes it at a time (see docs/services.md). Every read is
by ``_id``: the local store scans a collection for any other filter, so a course's outcomes are kept
together in one document under the course's id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.aftercare.domain import AftercarePlan, TreatedSession
from services.aftercare.side_effects import Assessment
from shared.contracts.aftercare import CheckInAnswered, IngredientLot, OutcomeRecorded, Symptom
from shared.runtime import Effects
from shared.runtime.store import derived_id

SESSIONS = "sessions"
CHECK_INS = "check_ins"
SIDE_EFFECTS = "side_effects"
OUTCOME_TRENDS = "outcome_trends"


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

    async def known_report(self, report_id: str) -> bool:
        return await self.db[SIDE_EFFECTS].find_one({"_id": report_id}, {"_id": 1}) is not None

    async def check_in(self, check_in_id: str) -> CheckIn | None:
        doc = await self.db[CHECK_INS].find_one({"_id": check_in_id})
        if doc is None:
            return None
        return CheckIn(doc["_id"], doc["session_id"], doc.get("hours_after_session"), doc.get("answered_at"))

    async def report_and_session(self, report_id: str, session_id: str) -> tuple[bool, TreatedSession | None]:
        """Whether the report is already recorded, and its session: both reads at once."""
        return await asyncio.gather(self.known_report(report_id), self.session(session_id))

    async def check_in_and_session(self, check_in_id: str, session_id: str) -> tuple[CheckIn | None, TreatedSession | None]:
        return await asyncio.gather(self.check_in(check_in_id), self.session(session_id))

    async def outcomes(self, course_id: str) -> list[dict[str, Any]]:
        """The course's recorded measurements, oldest first (a handful per course)."""
        doc = await self.db[OUTCOME_TRENDS].find_one({"_id": course_id})
        return [] if doc is None else list(doc["points"])

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

    def record_outcome(self, outcome: OutcomeRecorded, recorded: list[dict[str, Any]]) -> Effects:
        measured_at = outcome.measured_at.astimezone(UTC)
        point = {
            "key": measured_at.isoformat(),  # identity to the microsecond; a stored date keeps milliseconds
            "session_id": outcome.session_id,
            "clinician_id": outcome.clinician_id,
            "measured_at": measured_at,
            "density_per_cm2": outcome.density_per_cm2,
            "shaft_diameter_um": outcome.shaft_diameter_um,
            "satisfaction": outcome.satisfaction,
            "photo_views": list(outcome.photo_views),
            "clinician_decision": outcome.clinician_decision,
        }
        # A re-sent measurement of the same course at the same moment is a correction: it replaces.
        points = sorted([p for p in recorded if p["key"] != point["key"]] + [point], key=lambda p: (p["measured_at"], p["key"]))
        return Effects().put(OUTCOME_TRENDS, outcome.course_id, {"patient_id": outcome.patient_id, "course_id": outcome.course_id, "points": points})


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
    return [
        OutcomePoint(
            measured_at=point["measured_at"],
            session_id=point.get("session_id"),
            density_per_cm2=point.get("density_per_cm2"),
            shaft_diameter_um=point.get("shaft_diameter_um"),
            satisfaction=point.get("satisfaction"),
            clinician_decision=point.get("clinician_decision"),
        )
        for point in await AftercareRepository(db).outcomes(course_id)
    ]
