"""Deciding against the calendar days read so far: a day not read yet counts as free and is noted."""

from __future__ import annotations

import random
from datetime import timedelta

from services.scheduling import calendar as calendar_module
from services.scheduling.calendar import Booking, Calendar, Occupancy, cell_stamp, day_of, days_to_read, first_free
from services.scheduling.config import SchedulingConfig
from services.scheduling.domain import book_course, course_id_of
from tests.unit.scheduling.factories import MONDAY, NOW, approval, at, clinic, whole_days


def decide_until_settled(calendar, config, stored: dict[str, frozenset[str]]):
    """What Claims.place does, with the stored calendar as a dict: returns the decision and the days read."""
    read: dict[str, frozenset[str]] = {}
    for round in range(50):
        occupancy = Occupancy(read)
        decision = book_course(approval(sessions=3, interval_days=14), occupancy, calendar, config, NOW)
        if not occupancy.unread:
            return decision, read
        read.update({day: stored.get(day, frozenset()) for day in days_to_read(occupancy.unread, read.keys(), round)})
    raise AssertionError("never settled")


def test_a_cell_on_a_day_not_read_counts_as_free_and_its_day_is_noted():
    cell = Booking(at(MONDAY, 9), 15, "chair_01").cells(timedelta(minutes=15))[0]
    occupancy = Occupancy({})

    assert occupancy.isdisjoint([cell])
    assert occupancy.unread == {MONDAY.isoformat()} == {day_of(cell)}


def test_a_cell_held_on_a_day_read_or_known_taken_is_busy_without_noting_anything():
    cell = Booking(at(MONDAY, 9), 15, "chair_01").cells(timedelta(minutes=15))[0]

    assert not Occupancy({MONDAY.isoformat(): frozenset({cell})}).isdisjoint([cell])
    known = Occupancy({}) | {cell}
    assert not known.isdisjoint([cell]) and known.unread == set()


def test_a_series_reads_one_day_per_session_when_those_days_are_free():
    config = clinic()
    calendar = Calendar(config.calendar)

    decision, read = decide_until_settled(calendar, config, {})

    assert [s.booking.start for s in decision.course.sessions] == [at(MONDAY + timedelta(days=14 * i), 9) for i in range(3)]
    assert sorted(read) == [(MONDAY + timedelta(days=14 * i)).isoformat() for i in range(3)]


def test_a_series_decided_day_by_day_lands_where_one_decided_on_the_whole_calendar_does():
    config = clinic()
    calendar = Calendar(config.calendar)
    full = whole_days(calendar, *(MONDAY + timedelta(days=i) for i in range(20)))
    stored = {day: frozenset(c for c in full if day_of(c) == day) for day in {day_of(c) for c in full}}

    decision, read = decide_until_settled(calendar, config, stored)

    whole = book_course(approval(sessions=3, interval_days=14), full, calendar, config, NOW)
    assert decision.course.sessions == whole.course.sessions
    assert decision.course.sessions[0].booking.start.date() == MONDAY + timedelta(days=21)
    assert len(read) < 80, "a full stretch is read ahead in growing runs, not one day per decision"


def test_after_the_second_round_the_days_after_the_earliest_unread_one_are_read_too():
    assert days_to_read({"2026-03-09", "2026-03-23"}, set(), 0) == ["2026-03-09", "2026-03-23"]
    assert days_to_read({"2026-03-09", "2026-03-23"}, set(), 1) == ["2026-03-09", "2026-03-23"], "the next day's series: only what it noted"
    assert days_to_read({"2026-03-09"}, {"2026-03-10"}, 2) == ["2026-03-09", *(f"2026-03-{d}" for d in range(11, 18))]
    assert len(days_to_read({"2026-03-09"}, set(), 3)) == 1 + 16, "a growing run"


def test_the_course_of_a_session_is_named_by_its_id():
    assert course_id_of("ses_5D0B7E11_01") == "crs_5D0B7E11"
    assert course_id_of("ses_5D0B7E11_12") == "crs_5D0B7E11"
    assert course_id_of("ses_5D0B7E11") is None
    assert course_id_of("fu_5D0B7E11_M1") is None


def test_a_filling_calendar_is_read_a_few_days_per_course_and_every_course_lands_where_the_whole_calendar_puts_it():
    """Store round trips of a booking are mostly calendar days read: courses booked one after another on
    the clinic's default calendar (the benchmark's shape) read their series' days and little more."""
    config = SchedulingConfig()
    calendar = Calendar(config.calendar)
    stored: dict[str, set[str]] = {}
    reads = []
    for _ in range(30):
        plan = approval(sessions=6, interval_days=14, earliest_start=NOW.date())
        read: dict[str, frozenset[str]] = {}
        for round in range(50):
            occupancy = Occupancy(read)
            decision = book_course(plan, occupancy, calendar, config, NOW)
            if not occupancy.unread:
                break
            read.update({day: frozenset(stored.get(day, set())) for day in days_to_read(occupancy.unread, read.keys(), round)})
        whole = book_course(plan, frozenset(c for cells in stored.values() for c in cells), calendar, config, NOW)
        assert decision.course.sessions == whole.course.sessions
        reads.append(len(read))
        for session in decision.course.sessions:
            for cell in session.booking.cells(config.calendar.step):
                stored.setdefault(day_of(cell), set()).add(cell)
    assert reads[0] == 6, "a free calendar: one day per session"
    assert max(reads) <= 2 * 6, "a full first day: the next day's series as well, no run of days read ahead"


def every_pair(calendar: Calendar, day, busy: frozenset[str], minutes: int, keep: Booking | None) -> Booking | None:
    """The placement by definition: every start, every chair, every practitioner, in preference order."""
    practitioners = calendar._preferring(calendar.config.practitioners, keep.practitioner_id if keep else None)
    chairs = calendar._preferring(calendar.config.chairs, keep.chair_id if keep else None)
    for start in calendar.starts(day, minutes):
        for chair in chairs:
            for practitioner in practitioners:
                booking = Booking(start, minutes, practitioner, chair)
                if busy.isdisjoint(booking.cells(calendar.step)):
                    return booking
    return None


def test_the_first_free_practitioner_and_chair_are_the_first_free_pair_on_a_busy_calendar():
    config = clinic(calendar={"chairs": ("chair_01", "chair_02", "chair_03"), "practitioners": ("clin_0101", "clin_0102", "clin_0103")})
    calendar = Calendar(config.calendar)
    resources = [*config.calendar.chairs, *config.calendar.practitioners]
    cells = [Booking(start, 15, resource).cells(calendar.step)[0] for start in calendar.starts(MONDAY, 15) for resource in resources]
    rng = random.Random(20261125)
    checked = placed = 0
    for _ in range(400):
        busy = frozenset(rng.sample(cells, rng.randrange(len(cells))))
        # a previous booking outside the opening hours: never kept, but its practitioner and chair come first
        keep = rng.choice([None, Booking(at(MONDAY, 23), 45, rng.choice(config.calendar.practitioners), rng.choice(config.calendar.chairs))])
        expected = every_pair(calendar, MONDAY, busy, 45, keep)
        found = calendar.find(MONDAY, busy, minutes=45, with_chair=True, keep=keep)
        assert found == expected
        checked += 1
        placed += found is not None
    assert checked == 400 and 0 < placed < 400  # both full and partly free calendars were tried


def test_first_free_answers_and_notes_exactly_what_asking_isdisjoint_resource_by_resource_would():
    resources = [f"chair_{n:02d}" for n in range(1, 9)]
    step = timedelta(minutes=15)
    rng = random.Random(11)
    for _ in range(300):
        start = at(MONDAY, 23, 15) if rng.random() < 0.3 else at(MONDAY, 9 + rng.randrange(8))  # some steps cross midnight (UTC)
        stamps = [cell_stamp(start + step * i) for i in range(3)]
        days = sorted({stamp[1:11] for stamp in stamps})
        read = {day: frozenset(r + stamp for r in resources for stamp in stamps if rng.random() < 0.5) for day in days if rng.random() < 0.7}
        known = frozenset(r + stamp for r in resources for stamp in stamps if rng.random() < 0.1)
        fast, slow = Occupancy(read) | known, Occupancy(read) | known

        found = first_free(fast, resources, stamps)

        assert found == next((r for r in resources if slow.isdisjoint([r + at for at in stamps])), None)
        assert fast.unread == slow.unread


def test_a_days_starts_are_worked_out_once_and_the_days_kept_are_bounded(monkeypatch):
    calendar = Calendar(clinic().calendar)
    grids: list[tuple] = []
    grid = calendar._grid
    monkeypatch.setattr(calendar, "_grid", lambda day, minutes: grids.append((day, minutes)) or grid(day, minutes))
    monkeypatch.setattr(calendar_module, "KNOWN_GRIDS", 3)

    first = calendar.starts(MONDAY, 45)
    assert calendar.starts(MONDAY, 45) is first and grids == [(MONDAY, 45)]
    assert first == tuple(sorted(first)) and len(first) == 10  # 09:00-12:00, 45 minutes, every 15
    for i in range(1, 4):
        calendar.starts(MONDAY + timedelta(days=i), 45)
    assert len(calendar._starts) <= 3
