"""Scheduling's rules (pure: no I/O, time passed in): a treatment course in the calendar, booking a whole
approved series, moving sessions, completing and pausing a course, the reminders each session is due,
and every event scheduling publishes (built here and nowhere else).

Pre-treatment reminders. Washout: avoid aspirin/NSAIDs and alcohol the plan's number of days before the
session; a patient on prescribed anticoagulants is never told to stop them: the clinician gets a review
item instead. Numbing cream: applied the plan's minutes before the session; the reminder comes a
configured notice before that.

Rebooking (a session cancelled, missed, or short of stock) moves the session and the later sessions only
as far as the gaps need. A course that is not active (paused after an escalation, or closed) rebooks
nothing: a session cancelled or missed then is set aside (released while paused, cancelled once closed).

After the review of an escalation a clinician resumes a paused course (its released sessions are booked
again, from the booking notice on and at least the shortest interval after the last session held) or
closes it (its released sessions are cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from services.scheduling.calendar import Booking, Busy, Calendar, place_follow_up, place_series, replace_chain, search_window
from services.scheduling.config import ReminderRules, SchedulingConfig
from shared.contracts import EventData
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.inventory import IngredientShortage
from shared.contracts.plan import PreTreatmentPrecautions, Reason, TreatmentPlan
from shared.contracts.scheduling import (
    CourseReviewDecided,
    FollowUpScheduled,
    PreTreatmentReminderDue,
    ReminderInstruction,
    RescheduleReason,
    SchedulingFailed,
    SessionAtRisk,
    SessionCompleted,
    SessionCompletionFlagged,
    SessionRescheduled,
    SessionScheduled,
    TreatmentCourseClosed,
    TreatmentCourseCompleted,
    TreatmentPaused,
    TreatmentResumed,
)

SessionStatus = Literal["scheduled", "completed", "released", "cancelled", "unbooked"]
CourseStatus = Literal["active", "paused", "completed", "closed", "failed"]


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


# Pre-treatment reminders


@dataclass(frozen=True)
class Reminder:
    kind: Literal["washout", "numbing_cream"]
    due_at: datetime
    instructions: tuple[ReminderInstruction, ...]


def reminders_for(start: datetime, precautions: PreTreatmentPrecautions, rules: ReminderRules) -> list[Reminder]:
    reminders = []
    washout = _washout(start, precautions, rules)
    if washout:
        reminders.append(Reminder("washout", washout[0].at, washout))
    if precautions.numbing_cream_minutes_before is not None:
        apply_at = start - timedelta(minutes=precautions.numbing_cream_minutes_before)
        cream = ReminderInstruction(action="apply_numbing_cream", audience="patient", at=apply_at)
        reminders.append(Reminder("numbing_cream", apply_at - timedelta(minutes=rules.numbing_cream_notice_minutes), (cream,)))
    return reminders


def _washout(start: datetime, precautions: PreTreatmentPrecautions, rules: ReminderRules) -> tuple[ReminderInstruction, ...]:
    items = []
    if precautions.anticoagulant_clinician_review:
        at = start - timedelta(days=rules.anticoagulant_review_days)
        items.append(ReminderInstruction(action="anticoagulant_clinician_review", audience="clinician", at=at))
    elif precautions.avoid_aspirin_nsaids_days:
        at = start - timedelta(days=precautions.avoid_aspirin_nsaids_days)
        items.append(ReminderInstruction(action="avoid_aspirin_nsaids", audience="patient", at=at))
    if precautions.avoid_alcohol_days:
        at = start - timedelta(days=precautions.avoid_alcohol_days)
        items.append(ReminderInstruction(action="avoid_alcohol", audience="patient", at=at))
    return tuple(sorted(items, key=lambda item: item.at))


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


# Moving a session


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
        at_risk = SessionAtRisk(
            patient_id=course.patient_id,
            course_id=course.course_id,
            session_id=session.session_id,
            scheduled_for=session.booking.start,
            cause=shortage.cause,
            detected_at=shortage.detected_at,
            restock_expected_by=restocked,
            missing=shortage.missing,
        )
        return Decision(course.with_sessions(replace(session, at_risk=shortage.cause)), (at_risk,), outcome="at-risk")
    return rebook(course, session, RescheduleReason.INGREDIENT_SHORTAGE, restocked, busy, calendar, config, now)


def release(course: Course, session: Session) -> Decision:
    """Cancelled without rebooking: the slot goes back to the calendar."""
    return Decision(course.with_sessions(replace(session, status="cancelled")), outcome="cancelled", holds=_ids([session]))


def set_aside(course: Course, session: Session) -> Decision:
    """A session cancelled or missed while the course is not active: nothing is rebooked. While paused it
    is released like the others (booked again if the course resumes); otherwise it is cancelled."""
    if course.status == "paused":
        return Decision(course.with_sessions(replace(session, status="released")), outcome="released", holds=_ids([session]))
    return release(course, session)


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


# Completing and pausing a course


FINISHED = ("completed", "cancelled")


def completed_before_start(session: Session, completed: SessionCompleted, config: SchedulingConfig) -> bool:
    """Finished before the appointment was due to begin (beyond the clinic's allowance for a patient
    treated early): the session took place at another time, or the report names the wrong session."""
    if session.booking is None:
        return False
    return completed.completed_at < session.booking.start - timedelta(minutes=config.series.early_completion_minutes)


def complete_session(
    course: Course, completed: SessionCompleted, busy: Busy, calendar: Calendar, config: SchedulingConfig
) -> Decision:
    """Close the session; after the last one of an active course, complete the course and book its
    maintenance. A completion before the booked start is applied all the same (the treatment room's report
    is what inventory and aftercare act on) but flagged, and the slot it no longer needs is given back."""
    session = course.session(completed.session_id)
    assert session is not None
    flags: tuple[EventData, ...] = ()
    given_back: frozenset[str] = frozenset()
    if completed_before_start(session, completed, config):
        assert session.booking is not None
        flagged = SessionCompletionFlagged(
            patient_id=course.patient_id,
            course_id=course.course_id,
            session_id=session.session_id,
            flag="completed_before_start",
            scheduled_for=session.booking.start,
            completed_at=completed.completed_at,
        )
        flags, given_back = (flagged,), _ids([session])
    closed = course.with_sessions(replace(session, status="completed", completed_at=completed.completed_at, at_risk=None))
    done = [s for s in closed.sessions if s.status == "completed"]
    if course.status != "active" or not all(s.status in FINISHED for s in closed.sessions):
        return Decision(closed, flags, outcome="closed-flagged" if flags else "closed", holds=given_back)
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
    holds = frozenset(maintenance_ids(course, config)) | given_back
    return Decision(final, (*flags, ended, *(follow_up_scheduled(final, v) for v in visits)), outcome="course-completed", holds=holds)


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
    ended = course.status in ("completed", "closed")
    status: CourseStatus = course.status if ended else "paused"
    after = replace(
        course.with_sessions(*released),
        status=status,
        follow_ups=course.follow_ups + ((review,) if review else ()),
        escalations=(*course.escalations, escalation.escalation_id),
    )
    events: list[EventData] = []
    if not ended:
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
    return Decision(after, tuple(events), outcome="review-booked" if ended else "paused", holds=holds)


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


# The clinician's decision after the review


def resume(course: Course, decided: CourseReviewDecided, busy: Busy, calendar: Calendar, config: SchedulingConfig, now: datetime) -> Decision:
    """The course goes on: its released sessions are booked again as a series at the plan's interval, from
    the booking notice on and at least the shortest interval after the last session it still has. Each
    moved session is a SessionRescheduled (inventory reserves again); when no series fits they are left
    unbooked and SchedulingFailed says so."""
    released = sorted((s for s in course.sessions if s.status == "released" and s.booking is not None), key=lambda s: s.sequence)
    active = replace(course, status="active")
    if not released:
        return Decision(active, (resumed(active, decided, now, (), ()),), outcome="resumed")
    rules = config.series
    not_before = max(now + timedelta(hours=rules.booking_notice_hours), calendar.day_start(course.plan.earliest_start))
    previous = _previous(course, released[0])
    if previous is not None and previous.booking is not None:
        not_before = max(not_before, calendar.day_start(calendar.local_day(previous.booking.start) + timedelta(days=rules.min_interval_days)))
    bookings = place_series(len(released), course.plan.interval_days, not_before, busy, calendar, config)
    holds = _ids(released)
    if bookings is None:
        window = search_window(not_before, calendar, config)
        failed = SchedulingFailed(
            patient_id=course.patient_id,
            consultation_id=course.consultation_id,
            course_id=course.course_id,
            failed_at=now,
            sessions_requested=len(released),
            searched_from=window.first,
            searched_until=window.last,
            reasons=(Reason(code="no_slot_to_resume", detail=f"no series of the {len(released)} released sessions fits the calendar"),),
        )
        unbooked = [replace(s, status="unbooked", booking=None) for s in released]
        after = active.with_sessions(*unbooked)
        return Decision(after, (resumed(after, decided, now, (), _ids_in_order(released)), failed), outcome="resumed-unbooked", holds=holds)
    moved = [replace(s, status="scheduled", booking=b, at_risk=None) for s, b in zip(released, bookings, strict=True)]
    after = active.with_sessions(*moved)
    events: list[EventData] = [resumed(after, decided, now, _ids_in_order(moved), ())]
    events.extend(rescheduled(after, before, now_booked, RescheduleReason.COURSE_RESUMED, None) for before, now_booked in zip(released, moved, strict=True))
    return Decision(after, tuple(events), outcome="resumed", holds=holds)


def close(course: Course, decided: CourseReviewDecided, now: datetime) -> Decision:
    """The course ends here: the sessions taken off the calendar by the pause (and any left unbooked) are
    cancelled. They hold no cells and no stock (inventory released them on TreatmentPaused); a session
    still booked from before the pause stays, to be reported completed or missed."""
    cancelled = [replace(s, status="cancelled") for s in course.sessions if s.status in ("released", "unbooked")]
    after = replace(course.with_sessions(*cancelled), status="closed")
    closed = TreatmentCourseClosed(
        patient_id=course.patient_id,
        course_id=course.course_id,
        closed_at=now,
        clinician_id=decided.clinician_id,
        reason=decided.reason,
        sessions_planned=course.plan.sessions,
        sessions_completed=sum(1 for s in after.sessions if s.status == "completed"),
        cancelled_sessions=_ids_in_order(cancelled),
    )
    return Decision(after, (closed,), outcome="closed-course")


def resumed(course: Course, decided: CourseReviewDecided, now: datetime, rebooked: tuple[str, ...], unbooked: tuple[str, ...]) -> TreatmentResumed:
    return TreatmentResumed(
        patient_id=course.patient_id,
        course_id=course.course_id,
        resumed_at=now,
        clinician_id=decided.clinician_id,
        reason=decided.reason,
        rebooked_sessions=rebooked,
        unbooked_sessions=unbooked,
    )


def _ids_in_order(sessions: list[Session]) -> tuple[str, ...]:
    return tuple(s.session_id for s in sorted(sessions, key=lambda s: s.sequence))
