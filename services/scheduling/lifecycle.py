"""The end of a course (completion and maintenance) and its pause after an escalated adverse event."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from services.scheduling.calendar import Busy, Calendar
from services.scheduling.config import SchedulingConfig
from services.scheduling.domain import Course, Decision, FollowUp
from services.scheduling.placement import place_follow_up
from shared.contracts import EventData
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.scheduling import FollowUpScheduled, SessionCompleted, TreatmentCourseCompleted, TreatmentPaused

FINISHED = ("completed", "cancelled")


def complete_session(
    course: Course, completed: SessionCompleted, busy: Busy, calendar: Calendar, config: SchedulingConfig
) -> Decision:
    session = course.session(completed.session_id)
    assert session is not None
    closed = course.with_sessions(replace(session, status="completed", completed_at=completed.completed_at, at_risk=None))
    done = [s for s in closed.sessions if s.status == "completed"]
    if course.status != "active" or not all(s.status in FINISHED for s in closed.sessions):
        return Decision(closed, outcome="closed")
    ended = TreatmentCourseCompleted(
        patient_id=course.patient_id,
        course_id=course.course_id,
        completed_at=completed.completed_at,
        sessions_planned=course.plan.sessions,
        sessions_completed=len(done),
        last_session_id=session.session_id,
        maintenance_interval_weeks=course.plan.maintenance_interval_weeks,
    )
    visits = maintenance(closed, completed.completed_at, busy, calendar, config)
    final = replace(closed, status="completed", completed_at=completed.completed_at, follow_ups=closed.follow_ups + visits)
    holds = frozenset(maintenance_ids(course, config))
    return Decision(final, (ended, *(follow_up_scheduled(final, v) for v in visits)), outcome="course-completed", holds=holds)


def maintenance_ids(course: Course, config: SchedulingConfig) -> list[str]:
    return [f"fu_{course.suffix}_M{number}" for number in range(1, config.follow_ups.maintenance_visits + 1)]


def maintenance(course: Course, completed_at: datetime, busy: Busy, calendar: Calendar, config: SchedulingConfig) -> tuple[FollowUp, ...]:
    """Visits every maintenance interval after the last session; a visit with no room in its window is left out."""
    rules, interval = config.follow_ups, timedelta(weeks=course.plan.maintenance_interval_weeks)
    visits: list[FollowUp] = []
    for number, follow_up_id in enumerate(maintenance_ids(course, config), start=1):
        target = calendar.day_start(calendar.local_day(completed_at + interval * number))
        booking = place_follow_up(target, rules.maintenance_search_days, busy, calendar)
        if booking is not None:
            visits.append(FollowUp(follow_up_id, "maintenance_visit", booking))
            busy = busy | set(booking.cells(calendar.step))
    return tuple(visits)


def pause(
    course: Course, escalation: AdverseEventEscalated, busy: Busy, calendar: Calendar, config: SchedulingConfig, now: datetime
) -> Decision:
    """Release every session still ahead and book a clinical review of the escalation."""
    rules = config.follow_ups
    released = [replace(s, status="released") for s in course.sessions if s.status == "scheduled" and s.booking and s.booking.start > now]
    review_id = f"fu_{course.suffix}_R{len(course.escalations) + 1}"
    booking = place_follow_up(now + timedelta(hours=rules.review_after_hours), rules.review_search_days, busy, calendar)
    review = FollowUp(review_id, "adverse_event_review", booking, escalation.escalation_id) if booking else None
    status = "completed" if course.status == "completed" else "paused"
    after = replace(
        course.with_sessions(*released),
        status=status,
        follow_ups=course.follow_ups + ((review,) if review else ()),
        escalations=(*course.escalations, escalation.escalation_id),
    )
    events: list[EventData] = []
    if course.status != "completed":
        events.append(
            TreatmentPaused(
                patient_id=course.patient_id,
                course_id=course.course_id,
                paused_at=now,
                reason="adverse_event",
                escalation_id=escalation.escalation_id,
                released_sessions=tuple(s.session_id for s in released),
                review_follow_up_id=review.follow_up_id if review else None,
            )
        )
    if review is not None:
        events.append(follow_up_scheduled(after, review))
    holds = frozenset({review_id, *(s.session_id for s in released)})
    return Decision(after, tuple(events), outcome="paused" if course.status != "completed" else "review-booked", holds=holds)


def already_escalated(course: Course, escalation_id: str) -> bool:
    return escalation_id in course.escalations


def follow_up_scheduled(course: Course, follow_up: FollowUp) -> FollowUpScheduled:
    return FollowUpScheduled(
        patient_id=course.patient_id,
        course_id=course.course_id,
        follow_up_id=follow_up.follow_up_id,
        kind=follow_up.kind,
        scheduled_for=follow_up.booking.start,
        duration_minutes=follow_up.booking.minutes,
        practitioner_id=follow_up.booking.practitioner_id,
        escalation_id=follow_up.escalation_id,
    )
