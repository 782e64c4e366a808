"""Rebooking after a cancellation, a no-show or a shortage, and the ripple through later sessions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import get_args

from services.scheduling.calendar import Calendar
from services.scheduling.domain import answer_shortage, rebook, release
from shared.contracts.inventory import IngredientShortage
from shared.contracts.scheduling import RescheduleReason, SchedulingFailed, SessionAtRisk, SessionRescheduled
from tests.unit.scheduling.factories import MONDAY, NOW, at, booked, clinic, days, whole_days

CANCELLED = RescheduleReason.SESSION_CANCELLED


def day_after(booking):
    return datetime.combine(booking.start.date() + timedelta(days=1), datetime.min.time(), UTC)


def move(course, sequence, config, busy=frozenset(), now=NOW, reason=CANCELLED):
    session = course.sessions[sequence - 1]
    return rebook(course, session, reason, day_after(session.booking), busy, Calendar(config.calendar), config, now)


def starts(course):
    return [s.booking.start for s in course.sessions]


def test_a_cancelled_session_is_rebooked_on_the_next_open_day_and_later_ones_stay_when_their_gap_holds():
    config = clinic()
    course = booked(config, interval_days=14)

    decision = move(course, 2, config)

    [moved] = decision.events
    assert isinstance(moved, SessionRescheduled)
    assert (moved.session_id, moved.reason, moved.caused_by_session_id) == (course.sessions[1].session_id, CANCELLED, None)
    assert moved.previous_start == course.sessions[1].booking.start
    assert moved.scheduled_for == course.sessions[1].booking.start + timedelta(days=1)
    assert starts(decision.course)[2:] == starts(course)[2:]
    assert decision.holds == {s.session_id for s in course.sessions[1:]}


def test_later_sessions_move_only_as_far_as_the_minimum_gap_needs():
    config = clinic()
    course = booked(config, interval_days=7)

    decision = move(course, 2, config)

    second, third, fourth = decision.events
    assert [e.scheduled_for.date() for e in decision.events] == [MONDAY + timedelta(days=d) for d in (8, 15, 22)]
    assert [(e.reason, e.caused_by_session_id) for e in (third, fourth)] == [
        (RescheduleReason.EARLIER_SESSION_MOVED, second.session_id)
    ] * 2
    assert starts(decision.course)[0] == starts(course)[0]


def test_a_later_session_that_keeps_its_day_keeps_its_exact_slot():
    config = clinic(calendar={"chairs": ("chair_01", "chair_02")})
    course = booked(config, interval_days=14)
    fourth = course.sessions[3]
    course = course.with_sessions(replace(fourth, booking=replace(fourth.booking, start=fourth.booking.start + timedelta(hours=2), chair_id="chair_02")))

    decision = move(course, 3, config)

    assert decision.course.sessions[3] == course.sessions[3]
    assert len(decision.events) == 1


def test_when_no_day_within_the_maximum_gap_is_free_the_course_goes_on_at_the_nearest_later_slot():
    config = clinic(series={"max_interval_days": 16})
    course = booked(config, interval_days=14)
    calendar = Calendar(config.calendar)
    blocked = whole_days(calendar, *days(MONDAY + timedelta(days=15), 2))

    decision = move(course, 2, config, busy=blocked)

    assert decision.events[0].scheduled_for.date() == MONDAY + timedelta(days=17)


def test_a_first_session_cancelled_is_rebooked_after_its_day_with_no_earlier_session_to_keep_a_gap_to():
    config = clinic()
    course = booked(config, interval_days=14)

    decision = move(course, 1, config)

    assert decision.events[0].scheduled_for == at(MONDAY + timedelta(days=1), 9)
    assert len(decision.events) == 1


def test_a_no_show_discovered_later_is_rebooked_no_sooner_than_the_booking_notice():
    config = clinic()
    course = booked(config, interval_days=14)
    now = at(MONDAY + timedelta(days=16), 10)

    decision = move(course, 2, config, now=now, reason=RescheduleReason.NO_SHOW)

    assert decision.events[0].scheduled_for == now + timedelta(hours=24)
    assert decision.events[0].reason == RescheduleReason.NO_SHOW


def test_a_session_with_no_slot_left_in_the_horizon_is_unbooked_with_a_failure_and_the_rest_untouched():
    config = clinic(series={"horizon_days": 30})
    course = booked(config, interval_days=14)
    calendar = Calendar(config.calendar)

    decision = move(course, 2, config, busy=whole_days(calendar, *days(MONDAY, 80)))

    [failed] = decision.events
    assert isinstance(failed, SchedulingFailed)
    assert [r.code for r in failed.reasons] == ["no_slot_to_rebook"]
    assert decision.course.sessions[1].status == "unbooked" and decision.course.sessions[1].booking is None
    assert decision.course.sessions[2:] == course.sessions[2:]


def test_a_session_cancelled_without_rebooking_gives_its_slot_back():
    course = booked(clinic())

    decision = release(course, course.sessions[1])

    assert decision.events == ()
    assert decision.course.sessions[1].status == "cancelled"
    assert decision.holds == {course.sessions[1].session_id}


def shortage(session, detected_at) -> IngredientShortage:
    return IngredientShortage(
        patient_id="pt_UNIT0001",
        course_id="crs_UNIT0001",
        session_id=session.session_id,
        needed_by=session.booking.start,
        detected_at=detected_at,
        cause="insufficient_stock",
        missing=[{"ingredient": "biotin", "amount": 5.0, "unit": "mg"}],
    )


def test_a_shortage_that_restocking_can_still_meet_marks_the_session_at_risk_announces_it_and_moves_nothing():
    config = clinic(shortage={"restock_lead_days": 3})
    course = booked(config)
    session = course.sessions[1]
    detected = session.booking.start - timedelta(days=3)

    decision = answer_shortage(course, session, shortage(session, detected), frozenset(), Calendar(config.calendar), config, NOW)

    [at_risk] = decision.events
    assert isinstance(at_risk, SessionAtRisk) and decision.outcome == "at-risk" and decision.holds == frozenset()
    assert (at_risk.session_id, at_risk.scheduled_for, at_risk.cause) == (session.session_id, session.booking.start, "insufficient_stock")
    assert at_risk.detected_at == detected and at_risk.restock_expected_by == detected + timedelta(days=3)
    assert [(m.ingredient, m.amount) for m in at_risk.missing] == [("biotin", 5.0)]
    assert decision.course.sessions[1].at_risk == "insufficient_stock"
    assert decision.course.sessions[1].booking == session.booking


def test_a_shortage_too_close_to_the_session_moves_it_to_when_stock_can_arrive():
    config = clinic(shortage={"restock_lead_days": 3})
    course = booked(config)
    session = course.sessions[1]
    detected = session.booking.start - timedelta(days=2)

    decision = answer_shortage(course, session, shortage(session, detected), frozenset(), Calendar(config.calendar), config, detected)

    [moved] = decision.events
    assert moved.reason == RescheduleReason.INGREDIENT_SHORTAGE
    assert moved.scheduled_for == session.booking.start + timedelta(days=1)
    assert decision.course.sessions[1].at_risk is None


def test_every_shortage_cause_inventory_gives_can_be_announced_as_a_session_at_risk():
    assert get_args(IngredientShortage.model_fields["cause"].annotation) == get_args(SessionAtRisk.model_fields["cause"].annotation)
