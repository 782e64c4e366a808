"""Moving a session (cancelled, missed, or short of stock) and the later sessions only as far as the gaps need."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from services.scheduling.calendar import Busy, Calendar
from services.scheduling.config import SchedulingConfig
from services.scheduling.domain import Course, Decision, Session
from services.scheduling.placement import replace_chain, search_window
from shared.contracts import EventData
from shared.contracts.inventory import IngredientShortage
from shared.contracts.plan import Reason
from shared.contracts.scheduling import RescheduleReason, SchedulingFailed, SessionRescheduled

ACTIVE = ("scheduled", "completed")


def chain_of(course: Course, session: Session) -> list[Session]:
    """The session and every later one still booked: what a move may ripple through."""
    later = [s for s in course.sessions if s.sequence > session.sequence and s.status == "scheduled"]
    return [session, *sorted(later, key=lambda s: s.sequence)]


def rebook(
    course: Course,
    session: Session,
    reason: RescheduleReason,
    not_before: datetime,
    busy: Busy,
    calendar: Calendar,
    config: SchedulingConfig,
    now: datetime,
) -> Decision:
    """Book ``session`` again from ``not_before`` on, keeping the plan's gap to the session before it when
    possible (otherwise the nearest later slot: the course goes on rather than stopping), and move each
    later session only when its gap to the one before no longer holds."""
    rules = config.series
    notice = now + timedelta(hours=rules.booking_notice_hours)
    lowest, latest = max(not_before, notice), None
    previous = _previous(course, session)
    if previous is not None and previous.booking is not None:
        previous_day = calendar.local_day(previous.booking.start)
        lowest = max(lowest, calendar.day_start(previous_day + timedelta(days=rules.min_interval_days)))
        latest = previous_day + timedelta(days=rules.max_interval_days)
    else:
        lowest = max(lowest, calendar.day_start(course.plan.earliest_start))
    chain = chain_of(course, session)
    current = [s.booking for s in chain if s.booking is not None]
    placed = replace_chain(current, lowest, latest, busy, calendar, config, notice)
    if placed is None and latest is not None:
        placed = replace_chain(current, lowest, None, busy, calendar, config, notice)
    if placed is None:
        return _unbookable(course, session, lowest, calendar, config, now)  # later sessions keep their slots
    moved = [replace(s, booking=b, at_risk=None if i == 0 else s.at_risk) for i, (s, b) in enumerate(zip(chain, placed, strict=True))]
    events: list[EventData] = []
    for index, (before, after) in enumerate(zip(chain, moved, strict=True)):
        if index == 0 or after.booking != before.booking:
            cause = reason if index == 0 else RescheduleReason.EARLIER_SESSION_MOVED
            events.append(rescheduled(course, before, after, cause, None if index == 0 else session.session_id))
    return Decision(course.with_sessions(*moved), tuple(events), outcome="rescheduled", holds=_ids(chain))


def answer_shortage(
    course: Course, session: Session, shortage: IngredientShortage, busy: Busy, calendar: Calendar, config: SchedulingConfig, now: datetime
) -> Decision:
    """At risk while restocking can still make it; moved to when it can otherwise."""
    assert session.booking is not None
    restocked = shortage.detected_at + timedelta(days=config.shortage.restock_lead_days)
    if session.booking.start >= restocked:
        return Decision(course.with_sessions(replace(session, at_risk=shortage.cause)), outcome="at-risk")
    return rebook(course, session, RescheduleReason.INGREDIENT_SHORTAGE, restocked, busy, calendar, config, now)


def release(course: Course, session: Session) -> Decision:
    """Cancelled without rebooking: the slot goes back to the calendar."""
    return Decision(course.with_sessions(replace(session, status="cancelled")), outcome="cancelled", holds=_ids([session]))


def rescheduled(course: Course, before: Session, after: Session, reason: RescheduleReason, caused_by: str | None) -> SessionRescheduled:
    assert before.booking is not None and after.booking is not None
    return SessionRescheduled(
        patient_id=course.patient_id,
        course_id=course.course_id,
        session_id=after.session_id,
        sequence=after.sequence,
        previous_start=before.booking.start,
        scheduled_for=after.booking.start,
        duration_minutes=after.booking.minutes,
        practitioner_id=after.booking.practitioner_id,
        chair_id=after.booking.chair_id,
        reason=reason,
        caused_by_session_id=caused_by,
        cocktail=course.plan.cocktail,
    )


def _previous(course: Course, session: Session) -> Session | None:
    earlier = [s for s in course.sessions if s.sequence < session.sequence and s.status in ACTIVE]
    return max(earlier, key=lambda s: s.sequence, default=None)


def _unbookable(course: Course, session: Session, lowest: datetime, calendar: Calendar, config: SchedulingConfig, now: datetime) -> Decision:
    window = search_window(lowest, calendar, config)
    failed = SchedulingFailed(
        patient_id=course.patient_id,
        consultation_id=course.consultation_id,
        course_id=course.course_id,
        failed_at=now,
        sessions_requested=1,
        searched_from=window.first,
        searched_until=window.last,
        reasons=(Reason(code="no_slot_to_rebook", detail=f"no slot to rebook session {session.sequence} of the course"),),
    )
    unbooked = replace(session, status="unbooked", booking=None)
    return Decision(course.with_sessions(unbooked), (failed,), outcome="unbookable", holds=_ids([session]))


def _ids(sessions: list[Session]) -> frozenset[str]:
    return frozenset(s.session_id for s in sessions)
