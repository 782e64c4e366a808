"""Series placement: opening hours, closed days, capacity, washout and interval bounds."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

from services.scheduling.calendar import Booking, Calendar, nearest, place_series
from services.scheduling.config import OpeningHours
from tests.unit.scheduling.factories import MONDAY, at, clinic, days, whole_days

NOT_BEFORE = datetime.combine(MONDAY, time(0), UTC)


def place(config, sessions=4, interval=14, busy=frozenset(), not_before=NOT_BEFORE):
    return place_series(sessions, interval, not_before, busy, Calendar(config.calendar), config)


def gaps(bookings: list[Booking]) -> list[int]:
    return [(b.start.date() - a.start.date()).days for a, b in itertools.pairwise(bookings)]


def test_the_whole_series_lands_at_the_plans_interval_from_the_first_possible_opening():
    bookings = place(clinic(), sessions=6, interval=14)

    assert bookings[0].start == at(MONDAY, 9)
    assert gaps(bookings) == [14] * 5
    assert {(b.chair_id, b.practitioner_id, b.minutes) for b in bookings} == {("chair_01", "clin_0107", 45)}


def test_the_first_session_waits_for_the_washout_even_when_earlier_days_are_free():
    bookings = place(clinic(), not_before=NOT_BEFORE + timedelta(days=3))

    assert bookings[0].start == at(MONDAY + timedelta(days=3), 9)


def test_a_first_possible_moment_inside_opening_hours_takes_the_next_start_on_the_grid():
    bookings = place(clinic(), not_before=at(MONDAY, 10, 5))

    assert bookings[0].start == at(MONDAY, 10, 15)


def test_a_session_that_would_end_after_closing_goes_to_the_next_open_day():
    bookings = place(clinic(), not_before=at(MONDAY, 11, 30))

    assert bookings[0].start == at(MONDAY + timedelta(days=1), 9)
    assert all(time(9) <= b.start.time() and b.end.time() <= time(12) for b in bookings)


def test_a_target_day_on_a_closed_date_moves_to_the_nearest_open_day_later_first():
    closed = MONDAY + timedelta(days=14)
    bookings = place(clinic(calendar={"closed_dates": frozenset({closed})}))

    assert bookings[1].start.date() == closed + timedelta(days=1)
    assert gaps(bookings) == [15, 14, 14], "each next session keeps the interval from the one before"


def test_a_target_day_on_a_weekend_moves_to_the_nearest_weekday():
    bookings = place(clinic(), interval=12)  # Monday + 12 days is a Saturday

    assert bookings[1].start.date() == MONDAY + timedelta(days=11)
    assert all(b.start.weekday() < 5 for b in bookings)


def test_a_taken_chair_pushes_the_session_to_the_next_free_start_that_day():
    config = clinic()
    calendar = Calendar(config.calendar)
    chair_taken = frozenset(Booking(at(MONDAY, 9), 45, "chair_01").cells(calendar.step))

    bookings = place(config, busy=chair_taken)

    assert bookings[0].start == at(MONDAY, 9, 45)


def test_a_busy_practitioner_is_never_double_booked_even_with_a_chair_free():
    config = clinic(calendar={"chairs": ("chair_01", "chair_02")})
    practitioner_busy = frozenset(Booking(at(MONDAY, 9), 120, "clin_0107").cells(Calendar(config.calendar).step))

    bookings = place(config, busy=practitioner_busy)

    assert bookings[0].start == at(MONDAY, 11)


def test_two_chairs_and_two_practitioners_take_a_second_booking_at_the_same_time():
    config = clinic(calendar={"chairs": ("chair_01", "chair_02"), "practitioners": ("clin_0107", "clin_0108")})
    first = place(config)
    busy = frozenset(cell for b in first for cell in b.cells(Calendar(config.calendar).step))

    second = place(config, busy=busy)

    assert [b.start for b in second] == [b.start for b in first]
    assert {(b.chair_id, b.practitioner_id) for b in second} == {("chair_02", "clin_0108")}


def test_a_session_moves_within_the_interval_bounds_to_the_nearest_feasible_day():
    mondays_only = clinic(calendar={"opening_hours": (OpeningHours(weekday=0, opens=time(9), closes=time(12)),)})

    bookings = place(mondays_only, interval=10)

    assert gaps(bookings) == [7, 7, 7], "7 days is nearer the 10-day target than 14"


def test_when_a_later_session_cannot_fit_the_first_moves_so_the_whole_series_does():
    config = clinic(series={"min_interval_days": 7, "max_interval_days": 7})
    calendar = Calendar(config.calendar)

    bookings = place(config, sessions=3, interval=7, busy=whole_days(calendar, MONDAY + timedelta(days=14)))

    assert bookings[0].start == at(MONDAY + timedelta(days=1), 9)
    assert gaps(bookings) == [7, 7]


def test_no_series_is_returned_when_none_fits_within_the_bounds():
    config = clinic(series={"horizon_days": 40})
    calendar = Calendar(config.calendar)
    blocked = whole_days(calendar, *days(MONDAY + timedelta(days=10), 31))

    assert place(config, sessions=3, interval=14, busy=blocked) is None


def test_opening_hours_are_local_time_across_a_daylight_saving_change():
    config = clinic(calendar={"timezone": "Europe/Berlin"})
    bookings = place(config, sessions=3, interval=14, not_before=datetime(2026, 3, 16, tzinfo=UTC))

    assert [b.start for b in bookings] == [
        datetime(2026, 3, 16, 8, tzinfo=UTC),  # 09:00 CET
        datetime(2026, 3, 30, 7, tzinfo=UTC),  # 09:00 CEST
        datetime(2026, 4, 13, 7, tzinfo=UTC),
    ]


def test_nearest_days_prefer_the_target_then_the_later_of_two_equally_near():
    assert nearest(date(2026, 3, 20), date(2026, 3, 18), date(2026, 3, 21)) == [
        date(2026, 3, 20),
        date(2026, 3, 21),
        date(2026, 3, 19),
        date(2026, 3, 18),
    ]
