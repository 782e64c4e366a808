"""Booking an approved plan: all sessions or an honest failure, never part of a series."""

from __future__ import annotations

from datetime import date, timedelta

from services.scheduling.calendar import Calendar
from services.scheduling.domain import book_course
from shared.contracts.scheduling import SchedulingFailed, SessionScheduled
from tests.unit.scheduling.factories import COURSE, MONDAY, NOW, approval, at, clinic, days, whole_days


def test_an_approved_plan_books_every_session_with_its_cocktail_and_preparation():
    config = clinic()
    approved = approval(sessions=5, interval_days=21)

    decision = book_course(approved, frozenset(), Calendar(config.calendar), config, NOW)

    events = decision.events
    assert all(isinstance(e, SessionScheduled) for e in events)
    assert [e.session_id for e in events] == [f"ses_UNIT0001_0{i}" for i in range(1, 6)]
    assert [(e.sequence, e.of_total) for e in events] == [(i, 5) for i in range(1, 6)]
    assert events[0].scheduled_for == at(MONDAY, 9)
    assert {e.cocktail for e in events} == {approved.plan.cocktail}
    assert {e.precautions for e in events} == {approved.plan.precautions}
    assert decision.holds == {e.session_id for e in events}
    assert decision.course.status == "active" and len(decision.course.sessions) == 5


def test_the_first_session_is_not_sooner_than_the_booking_notice_even_if_the_washout_is_over():
    config = clinic()
    decision = book_course(approval(earliest_start=date(2026, 3, 2)), frozenset(), Calendar(config.calendar), config, NOW)

    assert decision.events[0].scheduled_for == NOW.replace(hour=9) + timedelta(days=1)


def test_an_interval_outside_the_clinics_bounds_fails_honestly_and_books_nothing():
    config = clinic(series={"min_interval_days": 10})

    decision = book_course(approval(interval_days=7), frozenset(), Calendar(config.calendar), config, NOW)

    [failed] = decision.events
    assert isinstance(failed, SchedulingFailed)
    assert [r.code for r in failed.reasons] == ["interval_out_of_range"]
    assert decision.course.status == "failed" and decision.course.sessions == ()


def test_a_calendar_with_no_room_for_the_series_fails_with_the_searched_window():
    config = clinic(series={"horizon_days": 60})
    calendar = Calendar(config.calendar)
    full = whole_days(calendar, *days(MONDAY, 61))

    decision = book_course(approval(sessions=3), full, calendar, config, NOW)

    [failed] = decision.events
    assert isinstance(failed, SchedulingFailed)
    assert failed.course_id == COURSE and failed.sessions_requested == 3
    assert [r.code for r in failed.reasons] == ["no_series_fits"]
    assert (failed.searched_from, failed.searched_until) == (MONDAY, MONDAY + timedelta(days=60))
    assert decision.holds, "leftover claims of an earlier attempt are still released"
