"""Completing sessions and the course, maintenance visits, and pausing after an escalation."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from services.scheduling.calendar import Calendar
from services.scheduling.domain import already_escalated, close, complete_session, completed_before_start, pause, resume
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.scheduling import (
    CourseReviewDecided,
    FollowUpScheduled,
    RescheduleReason,
    SchedulingFailed,
    SessionCompleted,
    SessionCompletionFlagged,
    SessionRescheduled,
    TreatmentCourseClosed,
    TreatmentCourseCompleted,
    TreatmentPaused,
    TreatmentResumed,
)
from tests.unit.scheduling.factories import MONDAY, PATIENT, at, booked, clinic, days, whole_days


def completion(session, minutes_after=40) -> SessionCompleted:
    return SessionCompleted(
        patient_id=PATIENT,
        course_id="crs_UNIT0001",
        session_id=session.session_id,
        completed_at=session.booking.start + timedelta(minutes=minutes_after),
        practitioner_id="clin_0107",
        depth_mm=2.0,
        lots_used=[{"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 5.0, "unit": "mg"}],
    )


def complete_all_but_last(course, config):
    for session in course.sessions[:-1]:
        if session.status == "cancelled":
            continue
        course = complete_session(course, completion(session), frozenset(), Calendar(config.calendar), config).course
    return course


def test_completing_a_session_that_is_not_the_last_closes_only_that_session():
    config = clinic()
    course = booked(config)

    decision = complete_session(course, completion(course.sessions[0]), frozenset(), Calendar(config.calendar), config)

    assert decision.events == () and decision.holds == frozenset()
    assert [s.status for s in decision.course.sessions] == ["completed", "scheduled", "scheduled", "scheduled"]
    assert decision.course.status == "active"


def test_the_last_completion_completes_the_course_and_books_maintenance_at_the_plans_interval():
    config = clinic(follow_ups={"maintenance_visits": 2})
    course = complete_all_but_last(booked(config), config)
    last = course.sessions[-1]

    decision = complete_session(course, completion(last), frozenset(), Calendar(config.calendar), config)

    ended, first, second = decision.events
    assert isinstance(ended, TreatmentCourseCompleted)
    assert (ended.sessions_planned, ended.sessions_completed, ended.last_session_id) == (4, 4, last.session_id)
    assert isinstance(first, FollowUpScheduled) and first.kind == "maintenance_visit"
    assert [f.follow_up_id for f in (first, second)] == ["fu_UNIT0001_M1", "fu_UNIT0001_M2"]
    last_day = last.booking.start.date()
    assert first.scheduled_for == at(last_day + timedelta(weeks=12), 9)
    assert second.scheduled_for == at(last_day + timedelta(weeks=24), 9)
    assert first.duration_minutes == 30
    assert decision.course.status == "completed"
    assert decision.holds == {"fu_UNIT0001_M1", "fu_UNIT0001_M2"}


def test_a_session_cancelled_for_good_does_not_hold_up_the_end_of_the_course():
    config = clinic()
    course = booked(config)
    course = complete_all_but_last(course.with_sessions(replace(course.sessions[1], status="cancelled")), config)

    decision = complete_session(course, completion(course.sessions[-1]), frozenset(), Calendar(config.calendar), config)

    assert isinstance(decision.events[0], TreatmentCourseCompleted)
    assert decision.events[0].sessions_completed == 3


def test_a_paused_course_is_not_completed_by_its_remaining_completions():
    config = clinic()
    course = replace(complete_all_but_last(booked(config), config), status="paused")

    decision = complete_session(course, completion(course.sessions[-1]), frozenset(), Calendar(config.calendar), config)

    assert decision.events == ()
    assert decision.course.status == "paused"


def escalation(session, escalated_at, id="esc_UNIT0001_01") -> AdverseEventEscalated:
    return AdverseEventEscalated(
        escalation_id=id,
        patient_id=PATIENT,
        course_id="crs_UNIT0001",
        session_id=session.session_id,
        report_id="sfx_UNIT0001_A",
        symptom="allergic_reaction",
        grade=2,
        onset_at=escalated_at - timedelta(hours=1),
        escalated_at=escalated_at,
        reasons=["allergic_reaction"],
    )


def test_an_escalation_pauses_the_course_releasing_only_sessions_ahead_and_books_a_review():
    config = clinic(follow_ups={"review_after_hours": 12})
    course = booked(config)
    first = course.sessions[0]
    course = course.with_sessions(replace(first, status="completed"))
    now = first.booking.start + timedelta(hours=6)

    decision = pause(course, escalation(first, now), frozenset(), Calendar(config.calendar), config, now)

    paused, review = decision.events
    assert isinstance(paused, TreatmentPaused) and isinstance(review, FollowUpScheduled)
    assert paused.released_sessions == tuple(s.session_id for s in course.sessions[1:])
    assert paused.review_follow_up_id == review.follow_up_id == "fu_UNIT0001_R1"
    assert (review.kind, review.escalation_id) == ("adverse_event_review", "esc_UNIT0001_01")
    assert review.scheduled_for == at(first.booking.start.date() + timedelta(days=1), 9)
    assert [s.status for s in decision.course.sessions] == ["completed", "released", "released", "released"]
    assert decision.course.status == "paused"
    assert decision.holds == {"fu_UNIT0001_R1", *paused.released_sessions}
    assert already_escalated(decision.course, "esc_UNIT0001_01")
    assert not already_escalated(decision.course, "esc_UNIT0001_02")


def test_an_escalation_after_the_course_ended_books_a_review_without_pausing_anything():
    config = clinic()
    course = booked(config)
    course = replace(course.with_sessions(*(replace(s, status="completed") for s in course.sessions)), status="completed")
    now = course.sessions[-1].booking.start + timedelta(days=2)

    decision = pause(course, escalation(course.sessions[-1], now), frozenset(), Calendar(config.calendar), config, now)

    [review] = decision.events
    assert isinstance(review, FollowUpScheduled)
    assert decision.course.status == "completed"


def test_an_escalation_after_the_course_was_closed_books_a_review_and_keeps_it_closed():
    config = clinic()
    course = replace(booked(config), status="closed")
    now = course.sessions[0].booking.start + timedelta(days=2)

    decision = pause(course, escalation(course.sessions[0], now), frozenset(), Calendar(config.calendar), config, now)

    assert [type(e) for e in decision.events] == [FollowUpScheduled]
    assert decision.course.status == "closed" and decision.outcome == "review-booked"


# Completing before the booked start


def test_a_completion_before_the_booked_start_is_early_beyond_the_clinics_allowance_only():
    session = booked(clinic()).sessions[0]

    assert completed_before_start(session, completion(session, minutes_after=-1), clinic())
    assert not completed_before_start(session, completion(session, minutes_after=0), clinic())
    assert not completed_before_start(session, completion(session, minutes_after=-20), clinic(series={"early_completion_minutes": 20}))
    assert completed_before_start(session, completion(session, minutes_after=-21), clinic(series={"early_completion_minutes": 20}))
    assert not completed_before_start(replace(session, booking=None), completion(session, minutes_after=-60), clinic())


def test_a_last_completion_before_its_booked_start_completes_the_course_and_is_flagged():
    config = clinic(follow_ups={"maintenance_visits": 1})
    course = complete_all_but_last(booked(config), config)
    last = course.sessions[-1]

    decision = complete_session(course, completion(last, minutes_after=-24 * 60), frozenset(), Calendar(config.calendar), config)

    flagged, ended, visit = decision.events
    assert isinstance(flagged, SessionCompletionFlagged) and flagged.flag == "completed_before_start"
    assert isinstance(ended, TreatmentCourseCompleted) and isinstance(visit, FollowUpScheduled)
    assert decision.holds == {"fu_UNIT0001_M1", last.session_id}, "the slot of the last session is given back too"


# Resuming or closing a paused course


def decided(decision="resume") -> CourseReviewDecided:
    reason = "reaction_resolved" if decision == "resume" else "insufficient_response"
    return CourseReviewDecided(
        patient_id=PATIENT, course_id="crs_UNIT0001", decision=decision, clinician_id="clin_0042", decided_at=at(MONDAY, 8), reason=reason
    )


def paused_after(config, completed=1):
    """A four-session course (every 14 days from Monday 9 March) paused the day after its ``completed``-th session."""
    course = booked(config)
    course = course.with_sessions(*(replace(s, status="completed") for s in course.sessions[:completed]))
    now = course.sessions[completed - 1].booking.start + timedelta(days=1)
    return pause(course, escalation(course.sessions[completed - 1], now), frozenset(), Calendar(config.calendar), config, now).course


def test_resuming_books_the_released_sessions_at_the_plans_interval_from_the_booking_notice():
    config = clinic(series={"booking_notice_hours": 24})
    course = paused_after(config)
    now = at(MONDAY + timedelta(days=30), 8)  # Wednesday 8 April, long after session 2 was due

    decision = resume(course, decided(), frozenset(), Calendar(config.calendar), config, now)

    answer, *moves = decision.events
    assert isinstance(answer, TreatmentResumed) and answer.rebooked_sessions == tuple(s.session_id for s in course.sessions[1:])
    assert all(isinstance(m, SessionRescheduled) and m.reason == RescheduleReason.COURSE_RESUMED for m in moves)
    assert [m.scheduled_for for m in moves] == [at(MONDAY + timedelta(days=31 + 14 * i), 9) for i in range(3)]
    assert [m.previous_start for m in moves] == [s.booking.start for s in course.sessions[1:]]
    assert decision.course.status == "active" and [s.status for s in decision.course.sessions] == ["completed"] + ["scheduled"] * 3
    assert decision.holds == {s.session_id for s in course.sessions[1:]}


def test_resuming_soon_after_the_pause_keeps_the_shortest_interval_after_the_last_session_held():
    config = clinic(series={"booking_notice_hours": 0, "min_interval_days": 10})
    course = paused_after(config)
    now = at(MONDAY + timedelta(days=2), 8)  # Wednesday 11 March: the first session was on Monday 9

    decision = resume(course, decided(), frozenset(), Calendar(config.calendar), config, now)

    first_move = decision.events[1]
    assert isinstance(first_move, SessionRescheduled) and first_move.scheduled_for == at(MONDAY + timedelta(days=10), 9)


def test_resuming_when_no_series_fits_leaves_the_sessions_unbooked_and_says_so():
    config = clinic(series={"horizon_days": 28})
    course = paused_after(config)
    now = at(MONDAY + timedelta(days=2), 8)
    full = whole_days(Calendar(config.calendar), *days(MONDAY, 60))

    decision = resume(course, decided(), full, Calendar(config.calendar), config, now)

    answer, failed = decision.events
    assert isinstance(answer, TreatmentResumed) and answer.rebooked_sessions == ()
    assert answer.unbooked_sessions == tuple(s.session_id for s in course.sessions[1:])
    assert isinstance(failed, SchedulingFailed) and [r.code for r in failed.reasons] == ["no_slot_to_resume"] and failed.sessions_requested == 3
    assert decision.outcome == "resumed-unbooked" and decision.course.status == "active"
    assert [(s.status, s.booking) for s in decision.course.sessions[1:]] == [("unbooked", None)] * 3


def test_closing_cancels_the_released_sessions_and_counts_what_was_completed():
    config = clinic()
    course = paused_after(config, completed=2)
    now = at(MONDAY + timedelta(days=20), 8)

    decision = close(course, decided("close"), now)

    [closed] = decision.events
    assert isinstance(closed, TreatmentCourseClosed)
    assert closed.cancelled_sessions == tuple(s.session_id for s in course.sessions[2:])
    assert (closed.sessions_planned, closed.sessions_completed, closed.closed_at, closed.reason) == (4, 2, now, "insufficient_response")
    assert decision.course.status == "closed" and decision.holds == frozenset()
    assert [s.status for s in decision.course.sessions] == ["completed", "completed", "cancelled", "cancelled"]
