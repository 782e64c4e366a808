"""Scheduling's courses: one document per course, with its sessions, follow-ups and their bookings.

A course belongs to one patient, so only one instance writes it at a time (see docs/services.md). The
calendar cells its bookings hold are claimed directly by ``claims.CalendarClaims``; releasing and
handing over cells goes through the effects, like every other write.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.scheduling.claims import SLOTS, Claim
from services.scheduling.config import SchedulingConfig
from services.scheduling.documents import course_document, course_from
from services.scheduling.domain import Course, Decision, course_id_of, reminder_changes
from shared.runtime import Effects
from shared.runtime.store import derived_id

COURSES = "courses"

__all__ = ["COURSES", "SLOTS", "Claim", "SchedulingRepository", "reminder_id"]


def reminder_id(session_id: str, kind: str, start: datetime) -> str:
    return derived_id(session_id, "reminder", kind, start.isoformat())


class SchedulingRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def course(self, course_id: str) -> Course | None:
        return course_from(await self.db[COURSES].find_one({"_id": course_id}))

    async def course_of_session(self, session_id: str) -> Course | None:
        course_id = course_id_of(session_id)
        course = await self.course(course_id) if course_id else None
        return course if course is not None and course.session(session_id) is not None else None

    def save(self, before: Course | None, decision: Decision, claim: Claim, config: SchedulingConfig, now: datetime) -> Effects:
        after = decision.course
        effects = Effects(outcome=decision.outcome).put(COURSES, after.course_id, course_document(after))
        for cell in sorted(claim.stale):
            effects.delete(SLOTS, cell)
        for cell, holder in sorted(claim.reassigned.items()):
            effects.merge(SLOTS, cell, holder=holder)
        for event in decision.events:
            effects.emit(event)
        reminders = reminder_changes(before, after, config, now)
        effects.cancel.extend(sorted(reminder_id(*key) for key in reminders.cancelled))
        for reminder in reminders.scheduled:
            effects.emit(reminder.event, due_at=reminder.due_at, id=reminder_id(reminder.event.session_id, reminder.kind, reminder.event.scheduled_for))
        return effects
