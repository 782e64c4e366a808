"""Completing sessions and the course, maintenance visits, and pausing after an escalation."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from services.scheduling.calendar import Calendar
from services.scheduling.domain import already_escalated, complete_session, pause
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.scheduling import FollowUpScheduled, SessionCompleted, TreatmentCourseCompleted, TreatmentPaused
from tests.unit.scheduling.factories import PATIENT, at, booked, clinic


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
