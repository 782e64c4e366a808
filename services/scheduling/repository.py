"""Scheduling's documents: one per course (its sessions and follow-ups) and one claim per calendar cell.

A course belongs to one patient, so only one instance writes it at a time (see docs/services.md).
Calendar cells are shared by every patient: ``claim`` inserts them under their unique cell id directly,
the one write a handler makes itself, so two instances can never book one chair or practitioner twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.scheduling.calendar import Booking
from services.scheduling.config import SchedulingConfig
from services.scheduling.domain import Course, Decision, FollowUp, Session, due_reminders
from services.scheduling.reminders import reminders_for
from shared.contracts.plan import TreatmentPlan
from shared.runtime import Effects
from shared.runtime.store import derived_id

COURSES = "courses"
SLOTS = "slots"
DUPLICATE_KEY = 11000


def reminder_id(session_id: str, kind: str, start: datetime) -> str:
    return derived_id(session_id, "reminder", kind, start.isoformat())


class SlotTaken(Exception):
    """Another booking holds some of the cells; the caller places again without them."""

    def __init__(self, cells: frozenset[str]) -> None:
        super().__init__(f"{len(cells)} cell(s) taken")
        self.cells = cells


@dataclass(frozen=True)
class Claim:
    reassigned: dict[str, str]
    """Cells that change hands between the decision's own sessions (one moved into another's old slot)."""
    stale: frozenset[str]
    """Cells the decision's sessions held that it no longer needs: released by the effects."""


class SchedulingRepository:
    def __init__(self, db: AsyncDatabase, step: timedelta) -> None:
        self.db = db
        self.step = step

    async def ensure_indexes(self) -> None:
        await self.db[SLOTS].create_index([("start", ASCENDING)], name="start")
        await self.db[SLOTS].create_index([("holder", ASCENDING)], name="holder")
        await self.db[COURSES].create_index([("sessions.session_id", ASCENDING)], name="session")

    async def course(self, course_id: str) -> Course | None:
        return _course(await self.db[COURSES].find_one({"_id": course_id}))

    async def course_of_session(self, session_id: str) -> Course | None:
        return _course(await self.db[COURSES].find_one({"sessions.session_id": session_id}))

    async def busy(self, course_id: str, since: datetime) -> frozenset[str]:
        """Cells from ``since`` on held by other courses (this course's own may be re-placed)."""
        docs = await self.db[SLOTS].find({"start": {"$gte": since}}, {"course_id": 1}).to_list()
        return frozenset(doc["_id"] for doc in docs if doc.get("course_id") != course_id)

    async def claim(self, decision: Decision) -> Claim:
        """Hold every cell the decision books for its sessions; raises SlotTaken (holding nothing new) when
        another booking was first. Cells already held by the same sessions (a redelivery) are theirs."""
        course, holders = decision.course, decision.holds
        if not holders:
            return Claim({}, frozenset())
        wanted = {cell: (holder, start) for holder, booking in _bookings(course, holders) for cell, start in booking.held(self.step)}
        documents = [
            {"_id": cell, "holder": holder, "course_id": course.course_id, "patient_id": course.patient_id, "start": start}
            for cell, (holder, start) in wanted.items()
        ]
        clashing = await self._insert(documents)
        held = {doc["_id"]: doc for doc in await self.db[SLOTS].find({"_id": {"$in": clashing}}).to_list()} if clashing else {}
        lost = frozenset(c for c in clashing if c not in held or held[c].get("course_id") != course.course_id or held[c].get("holder") not in holders)
        if lost:
            fresh = [d["_id"] for d in documents if d["_id"] not in clashing]
            await self.db[SLOTS].delete_many({"_id": {"$in": fresh}})
            raise SlotTaken(lost)
        reassigned = {c: wanted[c][0] for c, doc in held.items() if doc["holder"] != wanted[c][0]}
        mine = await self.db[SLOTS].find({"holder": {"$in": sorted(holders)}}, {"_id": 1}).to_list()
        return Claim(reassigned, frozenset(doc["_id"] for doc in mine) - wanted.keys())

    async def _insert(self, documents: list[dict[str, Any]]) -> list[str]:
        """Insert every claim it can; returns the ids someone already holds."""
        if not documents:
            return []
        try:
            await self.db[SLOTS].insert_many(documents, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return [documents[e["index"]]["_id"] for e in errors]
        return []

    def save(self, before: Course | None, decision: Decision, claim: Claim, config: SchedulingConfig, now: datetime) -> Effects:
        after = decision.course
        effects = Effects(outcome=decision.outcome).put(COURSES, after.course_id, _document(after))
        for cell in sorted(claim.stale):
            effects.delete(SLOTS, cell)
        for cell, holder in sorted(claim.reassigned.items()):
            effects.merge(SLOTS, cell, holder=holder)
        for event in decision.events:
            effects.emit(event)
        for session in after.sessions:
            earlier = before.session(session.session_id) if before else None
            scheduled_before = _reminder_ids(before, earlier, config) if before and earlier else set()
            wanted = {reminder_id(session.session_id, r.kind, r.event.scheduled_for): r for r in due_reminders(after, session, config, now)}
            effects.cancel.extend(sorted(scheduled_before - wanted.keys()))
            for id, reminder in wanted.items():
                if id not in scheduled_before:
                    effects.emit(reminder.event, due_at=reminder.due_at, id=id)
        return effects



def _reminder_ids(course: Course, session: Session, config: SchedulingConfig) -> set[str]:
    """The reminders a session was given when it was booked (which kinds depends on the plan alone)."""
    if session.status != "scheduled" or session.booking is None:
        return set()
    start = session.booking.start
    return {reminder_id(session.session_id, r.kind, start) for r in reminders_for(start, course.plan.precautions, config.reminders)}


def _bookings(course: Course, holders: frozenset[str]) -> list[tuple[str, Booking]]:
    sessions = [(s.session_id, s.booking) for s in course.sessions if s.status == "scheduled" and s.booking is not None]
    follow_ups = [(f.follow_up_id, f.booking) for f in course.follow_ups]
    return [(holder, booking) for holder, booking in [*sessions, *follow_ups] if holder in holders]


def _document(course: Course) -> dict[str, Any]:
    return {
        "patient_id": course.patient_id,
        "consultation_id": course.consultation_id,
        "status": course.status,
        "plan": course.plan.model_dump(mode="json"),
        "sessions": [
            {
                "session_id": s.session_id,
                "sequence": s.sequence,
                "status": s.status,
                "booking": _booking_doc(s.booking),
                "at_risk": s.at_risk,
                "completed_at": s.completed_at,
            }
            for s in course.sessions
        ],
        "follow_ups": [
            {"follow_up_id": f.follow_up_id, "kind": f.kind, "booking": _booking_doc(f.booking), "escalation_id": f.escalation_id}
            for f in course.follow_ups
        ],
        "completed_at": course.completed_at,
        "escalations": list(course.escalations),
    }


def _booking_doc(booking: Booking | None) -> dict[str, Any] | None:
    if booking is None:
        return None
    return {"start": booking.start, "minutes": booking.minutes, "practitioner_id": booking.practitioner_id, "chair_id": booking.chair_id}


def _booking(doc: dict[str, Any] | None) -> Booking | None:
    return None if doc is None else Booking(doc["start"], doc["minutes"], doc["practitioner_id"], doc.get("chair_id"))


def _course(doc: dict[str, Any] | None) -> Course | None:
    if doc is None:
        return None
    sessions = tuple(
        Session(s["session_id"], s["sequence"], _booking(s.get("booking")), s["status"], s.get("at_risk"), s.get("completed_at"))
        for s in doc["sessions"]
    )
    follow_ups = tuple(
        FollowUp(f["follow_up_id"], f["kind"], _booking(f["booking"]), f.get("escalation_id")) for f in doc.get("follow_ups", [])
    )
    return Course(
        course_id=doc["_id"],
        patient_id=doc["patient_id"],
        consultation_id=doc["consultation_id"],
        plan=TreatmentPlan.model_validate(doc["plan"]),
        status=doc["status"],
        sessions=sessions,
        follow_ups=follow_ups,
        completed_at=doc.get("completed_at"),
        escalations=tuple(doc.get("escalations", [])),
    )
