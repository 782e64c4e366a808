"""Aftercare's documents: treated sessions, check-ins, side-effect records and outcomes.

Reads return domain objects; writes are returned as Effects for the runtime to apply (the events to publish
are added by the handlers). Every document belongs to one patient, so only one instance writes it at a time
(see docs/services.md): aftercare claims nothing shared. Every read is by ``_id``: the local store scans a
collection for any other filter, so a course's outcomes are kept together in one document under its id.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.aftercare.domain import AftercarePlan, OutcomePoint, TreatedSession
from services.aftercare.side_effects import Assessment
from shared.contracts.aftercare import CheckInAnswered, IngredientLot, SideEffectReported, Symptom
from shared.runtime import Effects

SESSIONS = "sessions"
CHECK_INS = "check_ins"
SIDE_EFFECTS = "side_effects"
OUTCOME_TRENDS = "outcome_trends"
PARKED = "parked_reports"
"""Side-effect reports that arrived before their session's completion, one document per session (``_id``
the session id, at most ``parked_reports_per_session`` reports): SessionCompleted reads it by ``_id`` and
records them. What stays is a report whose session never completed (or that could not follow it): the
operator's list (``parked_reports``) and the ``clinic_aftercare_parked_reports`` gauge show it."""


@dataclass(frozen=True)
class Parked:
    session_id: str
    reports: tuple[SideEffectReported, ...]
    parked_at: tuple[datetime, ...]
    refused: tuple[dict[str, Any], ...] = ()

    def holds(self, report_id: str) -> bool:
        return any(r.report_id == report_id for r in self.reports)


@dataclass(frozen=True)
class CheckIn:
    check_in_id: str
    session_id: str
    hours_after_session: int | None
    answered_at: datetime | None


class Repository:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
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

    async def parked(self, session_id: str) -> Parked | None:
        doc = await self.db[PARKED].find_one({"_id": session_id})
        return None if doc is None else _parked(doc)

    async def session_and_parked(self, session_id: str) -> tuple[TreatedSession | None, Parked | None]:
        return await asyncio.gather(self.session(session_id), self.parked(session_id))

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

    async def outcomes(self, course_id: str) -> tuple[OutcomePoint, ...]:
        """The course's recorded measurements, oldest first (a handful per course)."""
        doc = await self.db[OUTCOME_TRENDS].find_one({"_id": course_id})
        if doc is None:
            return ()
        return tuple(
            OutcomePoint(
                key=point["key"],
                measured_at=point["measured_at"],
                session_id=point.get("session_id"),
                clinician_id=point.get("clinician_id"),
                density_per_cm2=point.get("density_per_cm2"),
                shaft_diameter_um=point.get("shaft_diameter_um"),
                satisfaction=point.get("satisfaction"),
                photo_views=tuple(point.get("photo_views") or ()),
                clinician_decision=point.get("clinician_decision"),
            )
            for point in doc["points"]
        )

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
        if assessment.escalated != dict(session.escalated):
            effects.merge(SESSIONS, session.session_id, escalated={s.value: g for s, g in assessment.escalated.items()})
        return effects

    def park(self, parked: Parked | None, report: SideEffectReported, now: datetime) -> Effects:
        """The report waits under its session (the whole document: it is small and one patient's)."""
        reports = [*(parked.reports if parked else ()), report]
        times = [*(parked.parked_at if parked else ()), now]
        return Effects().put(
            PARKED,
            report.session_id,
            {
                "patient_id": report.patient_id,
                "reports": [{"report": r.model_dump(mode="json"), "parked_at": t} for r, t in zip(reports, times, strict=True)],
                "refused": list(parked.refused if parked else ()),
            },
        )

    def unpark(self, parked: Parked, refused: list[dict[str, Any]]) -> Effects:
        """The session completed: its reports are recorded; those that could not follow it stay listed."""
        if not refused and not parked.refused:
            return Effects().delete(PARKED, parked.session_id)
        return Effects().put(PARKED, parked.session_id, {"patient_id": None, "reports": [], "refused": [*parked.refused, *refused]})

    def record_answer(self, answer: CheckInAnswered) -> Effects:
        return Effects().merge(
            CHECK_INS,
            answer.check_in_id,
            patient_id=answer.patient_id,
            session_id=answer.session_id,
            answered_at=answer.answered_at,
            symptoms_reported=len(answer.symptoms),
        )

    def save_outcomes(self, patient_id: str, course_id: str, points: tuple[OutcomePoint, ...]) -> Effects:
        document = {"patient_id": patient_id, "course_id": course_id, "points": [{**asdict(p), "photo_views": list(p.photo_views)} for p in points]}
        return Effects().put(OUTCOME_TRENDS, course_id, document)


def _parked(doc: dict[str, Any]) -> Parked:
    lines = doc.get("reports") or []
    return Parked(
        session_id=doc["_id"],
        reports=tuple(SideEffectReported.model_validate(line["report"]) for line in lines),
        parked_at=tuple(line["parked_at"] for line in lines),
        refused=tuple(doc.get("refused") or ()),
    )


async def parked_reports(db: AsyncDatabase[Any]) -> list[Parked]:
    """Every session with reports still parked (waiting for a completion, or refused when it came).

    An operator's and the gauge's view, not a handler's: it reads the whole ``parked_reports`` collection,
    which holds only reports still waiting (a completed session's are removed), so it stays small."""
    return [_parked(doc) async for doc in db[PARKED].find({})]


async def outcome_trend(db: AsyncDatabase[Any], course_id: str) -> list[OutcomePoint]:
    """A course's outcomes, oldest first: what the clinician looks at to decide whether to continue."""
    return list(await Repository(db).outcomes(course_id))
