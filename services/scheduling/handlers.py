"""Scheduling's reactions: read the course, decide in the domain while claiming the calendar cells the
decision books (``Claims``, the one direct write), and return the rest as Effects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scheduling.calendar import Busy, Calendar
from services.scheduling.config import SchedulingConfig
from services.scheduling.domain import (
    Course,
    Decision,
    Session,
    already_escalated,
    answer_shortage,
    book_course,
    close,
    complete_session,
    pause,
    rebook,
    release,
    reminder_changes,
    resume,
    set_aside,
)
from services.scheduling.repository import Claims, Repository
from shared.clock import Clock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.inventory import IngredientShortage
from shared.contracts.scheduling import CourseReviewDecided, RescheduleReason, SessionCancelled, SessionCompleted, SessionNoShow
from shared.envelope import CloudEvent
from shared.runtime import Effects, Handlers, Rejected, ignored


@dataclass(frozen=True)
class Deps:
    repo: Repository
    claims: Claims
    """The calendar cells shared by every patient: claimed by the handlers directly, not through effects."""
    config: SchedulingConfig
    calendar: Calendar
    clock: Clock


handlers = Handlers[Deps]("scheduling")


@handlers.on(ConsultationApproved)
async def on_consultation_approved(event: CloudEvent[ConsultationApproved], deps: Deps) -> Effects:
    approved = event.data
    known = await deps.repo.course(approved.course_id)
    if known is not None:
        if known.patient_id != approved.patient_id:
            raise Rejected("patient-mismatch", f"{approved.course_id} belongs to another patient")
        return ignored("already-booked")
    now = deps.clock.now()
    return await _decided(deps.claims, deps, None, approved.course_id, lambda busy: book_course(approved, busy, deps.calendar, deps.config, now))


@handlers.on(SessionCompleted)
async def on_session_completed(event: CloudEvent[SessionCompleted], deps: Deps) -> Effects:
    completed = event.data
    course, session = await _session(deps.repo, completed.course_id, completed.session_id, completed.patient_id)
    if session.status == "completed":
        return ignored("already-completed")
    return await _decided(deps.claims, deps, course, course.course_id, lambda busy: complete_session(course, completed, busy, deps.calendar, deps.config))


@handlers.on(SessionCancelled)
async def on_session_cancelled(event: CloudEvent[SessionCancelled], deps: Deps) -> Effects:
    cancelled = event.data
    course, session = await _session(deps.repo, cancelled.course_id, cancelled.session_id, cancelled.patient_id)
    if (why := _not_movable(session, cancelled.scheduled_for)) is not None:
        return ignored(why)
    if not cancelled.rebook:
        return await _decided(deps.claims, deps, course, course.course_id, lambda busy: release(course, session))
    return await _moved(deps, course, session, RescheduleReason.SESSION_CANCELLED)


@handlers.on(SessionNoShow)
async def on_session_no_show(event: CloudEvent[SessionNoShow], deps: Deps) -> Effects:
    missed = event.data
    course, session = await _session(deps.repo, missed.course_id, missed.session_id, missed.patient_id)
    if (why := _not_movable(session, missed.scheduled_for)) is not None:
        return ignored(why)
    return await _moved(deps, course, session, RescheduleReason.NO_SHOW)


@handlers.on(IngredientShortage)
async def on_ingredient_shortage(event: CloudEvent[IngredientShortage], deps: Deps) -> Effects:
    shortage = event.data
    course, session = await _session(deps.repo, shortage.course_id, shortage.session_id, shortage.patient_id)
    if (why := _not_movable(session, shortage.needed_by)) is not None:
        return ignored(why)
    if course.status != "active":
        return ignored(f"course-{course.status}")  # nothing is rebooked for a paused or closed course
    now = deps.clock.now()
    return await _decided(
        deps.claims, deps, course, course.course_id, lambda busy: answer_shortage(course, session, shortage, busy, deps.calendar, deps.config, now)
    )


@handlers.on(AdverseEventEscalated)
async def on_adverse_event_escalated(event: CloudEvent[AdverseEventEscalated], deps: Deps) -> Effects:
    escalation = event.data
    if escalation.course_id is not None:
        course = await deps.repo.course(escalation.course_id)
    else:
        course = await deps.repo.course_of_session(escalation.session_id)
    if course is None:
        raise Rejected("unknown-course", f"no course booked for {escalation.course_id or escalation.session_id}")
    if course.patient_id != escalation.patient_id:
        raise Rejected("patient-mismatch", f"{course.course_id} belongs to another patient")
    if already_escalated(course, escalation.escalation_id):
        return ignored("already-paused")
    now = deps.clock.now()
    return await _decided(deps.claims, deps, course, course.course_id, lambda busy: pause(course, escalation, busy, deps.calendar, deps.config, now))


@handlers.on(CourseReviewDecided)
async def on_course_review_decided(event: CloudEvent[CourseReviewDecided], deps: Deps) -> Effects:
    decided = event.data
    course = await deps.repo.course(decided.course_id)
    if course is None:
        raise Rejected("unknown-course", f"no course booked for {decided.course_id}")
    if course.patient_id != decided.patient_id:
        raise Rejected("patient-mismatch", f"{course.course_id} belongs to another patient")
    if course.status != "paused":
        raise Rejected("course-not-paused", f"{course.course_id} is {course.status}: only a paused course can be resumed or closed")
    now = deps.clock.now()
    if decided.decision == "resume":
        return await _decided(deps.claims, deps, course, course.course_id, lambda busy: resume(course, decided, busy, deps.calendar, deps.config, now))
    return await _decided(deps.claims, deps, course, course.course_id, lambda busy: close(course, decided, now))


async def _moved(deps: Deps, course: Course, session: Session, reason: RescheduleReason) -> Effects:
    assert session.booking is not None
    if course.status != "active":
        return await _decided(deps.claims, deps, course, course.course_id, lambda busy: set_aside(course, session))
    now = deps.clock.now()
    # Not on the day it was meant to be: the patient could not come that day.
    next_day = deps.calendar.day_start(deps.calendar.local_day(session.booking.start) + timedelta(days=1))
    return await _decided(
        deps.claims, deps, course, course.course_id, lambda busy: rebook(course, session, reason, next_day, busy, deps.calendar, deps.config, now)
    )


async def _decided(claims: Claims, deps: Deps, before: Course | None, course_id: str, decide: Callable[[Busy], Decision]) -> Effects:
    """Decide and claim the cells the decision books (written now, see ``Claims``); the course, the cells
    it gives back or hands over, its events and its reminder changes go out as Effects."""
    decision, claim = await claims.place(before, course_id, decide)
    reminders = reminder_changes(before, decision.course, deps.config, deps.clock.now())
    return deps.repo.save(decision, claim, reminders)


async def _session(repo: Repository, course_id: str, session_id: str, patient_id: str) -> tuple[Course, Session]:
    course = await repo.course(course_id)
    session = course.session(session_id) if course is not None else None
    if course is None or session is None:
        raise Rejected("unknown-session", f"{session_id} is not a session of a course booked here")
    if course.patient_id != patient_id:
        raise Rejected("patient-mismatch", f"{session_id} belongs to another patient")
    return course, session


def _not_movable(session: Session, expected_start: datetime) -> str | None:
    if session.status != "scheduled" or session.booking is None:
        return f"session-{session.status}"
    if session.booking.start != expected_start:
        return "stale-start"  # about a time the session has already moved away from
    return None
