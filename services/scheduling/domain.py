"""A treatment course in the calendar, and booking a whole approved series (pure: no I/O, time passed in)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from services.scheduling.calendar import Booking, Busy, Calendar
from services.scheduling.config import SchedulingConfig
from services.scheduling.placement import place_series, search_window
from services.scheduling.reminders import reminders_for
from shared.contracts import EventData
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.plan import Reason, TreatmentPlan
from shared.contracts.scheduling import PreTreatmentReminderDue, SchedulingFailed, SessionScheduled

SessionStatus = Literal["scheduled", "completed", "released", "cancelled", "unbooked"]
CourseStatus = Literal["active", "paused", "completed", "failed"]


@dataclass(frozen=True)
class Session:
    session_id: str
    sequence: int
    booking: Booking | None
    status: SessionStatus = "scheduled"
    at_risk: str | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class FollowUp:
    follow_up_id: str
    kind: Literal["maintenance_visit", "adverse_event_review"]
    booking: Booking
    escalation_id: str | None = None


@dataclass(frozen=True)
class Course:
    course_id: str
    patient_id: str
    consultation_id: str
    plan: TreatmentPlan
    status: CourseStatus
    sessions: tuple[Session, ...] = ()
    follow_ups: tuple[FollowUp, ...] = ()
    completed_at: datetime | None = None
    escalations: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        return self.course_id.removeprefix("crs_")

    def session(self, session_id: str) -> Session | None:
        return next((s for s in self.sessions if s.session_id == session_id), None)

    def with_sessions(self, *changed: Session) -> Course:
        by_id = {s.session_id: s for s in changed}
        return replace(self, sessions=tuple(by_id.get(s.session_id, s) for s in self.sessions))


@dataclass(frozen=True)
class Decision:
    """The course as it is to be stored and the events that say what changed."""

    course: Course
    events: tuple[EventData, ...] = ()
    outcome: str = "applied"
    holds: frozenset[str] = frozenset()
    """Sessions and follow-ups whose calendar claims this decision settles (claimed, moved or released)."""


def session_id_for(course_id: str, sequence: int) -> str:
    return f"ses_{course_id.removeprefix('crs_')}_{sequence:02d}"


def course_id_of(session_id: str) -> str | None:
    """The course a session id names: every session is booked here as ``ses_<course suffix>_<sequence>``."""
    suffix, _, sequence = session_id.removeprefix("ses_").rpartition("_")
    return f"crs_{suffix}" if session_id.startswith("ses_") and suffix and sequence.isdigit() else None


def plan_problems(plan: TreatmentPlan, config: SchedulingConfig) -> list[Reason]:
    rules = config.series
    if not rules.min_interval_days <= plan.interval_days <= rules.max_interval_days:
        detail = f"interval {plan.interval_days} days is outside {rules.min_interval_days}-{rules.max_interval_days}"
        return [Reason(code="interval_out_of_range", detail=detail)]
    return []


def first_possible(plan: TreatmentPlan, calendar: Calendar, config: SchedulingConfig, now: datetime) -> datetime:
    """Not before the plan's earliest start (washout), nor sooner than the booking notice."""
    return max(calendar.day_start(plan.earliest_start), now + timedelta(hours=config.series.booking_notice_hours))


def book_course(approved: ConsultationApproved, busy: Busy, calendar: Calendar, config: SchedulingConfig, now: datetime) -> Decision:
    plan = approved.plan
    course = Course(approved.course_id, approved.patient_id, approved.consultation_id, plan, "active")
    not_before = first_possible(plan, calendar, config, now)
    holds = frozenset(session_id_for(course.course_id, i) for i in range(1, plan.sessions + 1))
    problems = plan_problems(plan, config)
    bookings = None if problems else place_series(plan.sessions, plan.interval_days, not_before, busy, calendar, config)
    if bookings is None:
        rules = config.series
        problems = problems or [
            Reason(
                code="no_series_fits",
                detail=f"no {plan.sessions}-session series fits the calendar at {rules.min_interval_days}-{rules.max_interval_days} day intervals",
            )
        ]
        window = search_window(not_before, calendar, config)
        failed = SchedulingFailed(
            patient_id=course.patient_id,
            consultation_id=course.consultation_id,
            course_id=course.course_id,
            failed_at=now,
            sessions_requested=plan.sessions,
            searched_from=window.first,
            searched_until=window.last,
            reasons=tuple(problems),
        )
        return Decision(replace(course, status="failed"), (failed,), outcome="failed", holds=holds)
    sessions = tuple(Session(session_id_for(course.course_id, i), i, b) for i, b in enumerate(bookings, start=1))
    booked = replace(course, sessions=sessions)
    return Decision(booked, tuple(scheduled(booked, s) for s in sessions), outcome="booked", holds=holds)


def scheduled(course: Course, session: Session) -> SessionScheduled:
    booking = _booked(session)
    return SessionScheduled(
        patient_id=course.patient_id,
        course_id=course.course_id,
        session_id=session.session_id,
        sequence=session.sequence,
        of_total=len(course.sessions),
        scheduled_for=booking.start,
        duration_minutes=booking.minutes,
        practitioner_id=booking.practitioner_id,
        chair_id=booking.chair_id,
        cocktail=course.plan.cocktail,
        precautions=course.plan.precautions,
    )


@dataclass(frozen=True)
class DueReminder:
    kind: str
    due_at: datetime
    event: PreTreatmentReminderDue


def due_reminders(course: Course, session: Session, config: SchedulingConfig, now: datetime) -> list[DueReminder]:
    """The reminders a scheduled session should have; one already overdue falls due now."""
    if session.status != "scheduled" or session.booking is None or session.booking.start <= now:
        return []
    found = []
    for reminder in reminders_for(session.booking.start, course.plan.precautions, config.reminders):
        due_at = max(reminder.due_at, now)
        event = PreTreatmentReminderDue(
            patient_id=course.patient_id,
            course_id=course.course_id,
            session_id=session.session_id,
            kind=reminder.kind,
            scheduled_for=session.booking.start,
            due_at=due_at,
            instructions=reminder.instructions,
        )
        found.append(DueReminder(reminder.kind, due_at, event))
    return found


ReminderKey = tuple[str, str, datetime]
"""(session id, kind, session start): what identifies one reminder of one booking."""


@dataclass(frozen=True)
class ReminderChanges:
    cancelled: tuple[ReminderKey, ...]
    """Reminders given when a session was booked that no longer apply (it moved, ended or was released)."""
    scheduled: tuple[DueReminder, ...]
    """Reminders a session should have that it was not given yet."""


def reminder_changes(before: Course | None, after: Course, config: SchedulingConfig, now: datetime) -> ReminderChanges:
    cancelled: list[ReminderKey] = []
    scheduled: list[DueReminder] = []
    for session in after.sessions:
        earlier = before.session(session.session_id) if before else None
        given = _given(before, earlier, config) if before and earlier else set()
        wanted = {(session.session_id, r.kind, r.event.scheduled_for): r for r in due_reminders(after, session, config, now)}
        cancelled.extend(sorted(given - wanted.keys()))
        scheduled.extend(reminder for key, reminder in wanted.items() if key not in given)
    return ReminderChanges(tuple(cancelled), tuple(scheduled))


def _given(course: Course, session: Session, config: SchedulingConfig) -> set[ReminderKey]:
    """The reminders a session was given when it was booked (which kinds depends on the plan alone)."""
    if session.status != "scheduled" or session.booking is None:
        return set()
    start = session.booking.start
    return {(session.session_id, r.kind, start) for r in reminders_for(start, course.plan.precautions, config.reminders)}


def _booked(session: Session) -> Booking:
    if session.booking is None:
        raise ValueError(f"{session.session_id} has no booking")
    return session.booking
