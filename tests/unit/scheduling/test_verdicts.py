"""What searching a day found is not searched again, and that never changes a placement.

``Calendar.find`` keeps "from this time on, no start before that one has room for this appointment on this
local day" (``calendar.Verdict``; no start at all on a full day) with the days as read (``repository.Day``),
for decisions that add nothing there: the next one skips a full day and searches a filling one from its
last room. These tests put answers with kept verdicts beside answers worked out afresh.
"""

from __future__ import annotations

import random
from datetime import date, time, timedelta

import pytest

from services.scheduling import calendar as calendar_module
from services.scheduling.calendar import Booking, Calendar, Occupancy, Verdict, day_of
from services.scheduling.config import OpeningHours
from services.scheduling.domain import book_course
from services.scheduling.repository import Day, Holding, Others
from tests.unit.scheduling.factories import MONDAY, NOW, approval, at, clinic, whole_days

COURSES = tuple(f"crs_{n:08d}" for n in range(1, 7))


def brisbane():
    """Opening 08:00-12:00 in Brisbane (UTC+10, no daylight saving): 22:00-02:00 UTC, so every local day
    lies on two UTC dates, and two chairs and two practitioners on a 15-minute grid."""
    return clinic(
        calendar={
            "timezone": "Australia/Brisbane",
            "opening_hours": tuple(OpeningHours(weekday=d, opens=time(8), closes=time(12)) for d in range(6)),
            "chairs": ("chair_01", "chair_02"),
            "practitioners": ("clin_0101", "clin_0102"),
        }
    )


def random_calendar(rng: random.Random, calendar: Calendar, days: list[date]) -> dict[str, dict[str, Holding]]:
    """Per UTC date, who holds which cell: each local day filled by two of the courses to a random degree,
    some of them whole."""
    config = calendar.config
    stored: dict[str, dict[str, Holding]] = {}
    for day in days:
        fill = rng.choice([0.3, 0.8, 1.0, 1.0])
        owners = rng.sample(COURSES, 2)
        for start in calendar.starts(day, config.slot_step_minutes):
            for resource in (*config.chairs, *config.practitioners):
                if rng.random() < fill:
                    cell = Booking(start, config.slot_step_minutes, resource).cells(calendar.step)[0]
                    stored.setdefault(day_of(cell), {})[cell] = Holding(rng.choice(owners), f"ses_{rng.randrange(100):02d}")
    return stored


def test_a_verdict_kept_with_a_day_answers_as_searching_the_day_again_would(monkeypatch: pytest.MonkeyPatch):
    config = brisbane()
    calendar = Calendar(config.calendar)
    local_days = [MONDAY + timedelta(days=i) for i in range(8)]
    rng = random.Random(20261126)
    stored = random_calendar(rng, calendar, local_days)
    kept = {utc: Day(cells) for utc, cells in stored.items()}  # one copy for every ask: its verdicts accumulate
    grid = sorted(whole_days(calendar, *local_days))
    answered = 0
    from_verdicts = 0
    looked_up = Occupancy.searched

    def counting(self: Occupancy, key, days, since):
        nonlocal from_verdicts
        kept = looked_up(self, key, days, since)
        from_verdicts += kept is not None
        return kept

    monkeypatch.setattr(Occupancy, "searched", counting)
    for _ in range(1500):
        if rng.random() < 0.1:  # a cell taken or given back: the day is a new copy, as Claims._note makes one
            cell = rng.choice(grid)
            utc = day_of(cell)
            copy = Day(stored.setdefault(utc, {}))
            if cell in stored[utc]:
                del stored[utc][cell], copy[cell]
            else:
                stored[utc][cell] = copy[cell] = Holding(rng.choice(COURSES), "ses_99")
                copy.verdicts.update(kept[utc].verdicts if utc in kept else {})  # only taken: what was found stays true
            kept[utc] = copy
        course = rng.choice([*COURSES, "crs_99999999"])
        day = rng.choice(local_days)
        minutes, with_chair = rng.choice([(45, True), (45, True), (30, False), (15, True)])
        not_before = rng.choice([None, calendar.day_start(day) - timedelta(days=1), calendar.day_start(day) + timedelta(hours=rng.randrange(13))])
        keep = rng.choice([None, Booking(calendar.day_start(rng.choice(local_days)) + timedelta(hours=8), minutes, "clin_0102", "chair_02")])
        known = frozenset(rng.sample(grid, rng.choice([0, 0, 0, 4, 40])))  # placed earlier in the decision, or lost
        fresh = {utc: Day(cells) for utc, cells in stored.items()}
        with_verdicts = Occupancy({utc: Others(cells, course) for utc, cells in kept.items()}) | known
        afresh = Occupancy({utc: Others(cells, course) for utc, cells in fresh.items()}) | known

        found = calendar.find(day, with_verdicts, minutes=minutes, with_chair=with_chair, not_before=not_before, keep=keep)

        assert found == calendar.find(day, afresh, minutes=minutes, with_chair=with_chair, not_before=not_before, keep=keep)
        assert with_verdicts.unread == afresh.unread
        answered += found is not None
    assert 0 < answered < 1500, "days with room and days without were both asked about"
    assert from_verdicts > 50, "kept verdicts answered many of the asks"


def test_a_day_on_which_the_course_holds_cells_or_the_decision_placed_some_gets_no_verdict():
    config = clinic()
    calendar = Calendar(config.calendar)
    full = {MONDAY.isoformat(): Day({cell: Holding(COURSES[0], "ses_01") for cell in whole_days(calendar, MONDAY)})}
    key = (MONDAY, 45, True)

    assert calendar.find(MONDAY, Occupancy({d: Others(c, COURSES[1]) for d, c in full.items()}), minutes=45, with_chair=True) is None
    opens = calendar.day_start(MONDAY)
    assert full[MONDAY.isoformat()].verdicts == {key: Verdict(opens, None)}, "another course's full day: the verdict is kept"
    own = Occupancy({d: Others(c, COURSES[0]) for d, c in full.items()})
    assert own.searched(key, (MONDAY.isoformat(),), opens) is None, "the course holding the day may re-place its own cells there"
    assert calendar.find(MONDAY, own, minutes=45, with_chair=True) is not None
    placed = Occupancy({d: Others(c, COURSES[1]) for d, c in full.items()}) | {next(iter(full[MONDAY.isoformat()]))}
    assert placed.searched(key, (MONDAY.isoformat(),), opens) is None, "a decision that placed cells there decides on its own view"


def test_no_room_from_some_time_on_says_nothing_about_earlier_in_the_day():
    config = clinic()
    calendar = Calendar(config.calendar)
    late = ("T10:30Z", "T10:45Z", "T11:00Z", "T11:15Z", "T11:30Z", "T11:45Z")
    afternoon = Day({cell: Holding(COURSES[0], "ses_01") for cell in whole_days(calendar, MONDAY) if cell.endswith(late)})
    occupancy = Occupancy({MONDAY.isoformat(): Others(afternoon, COURSES[1])})

    assert calendar.find(MONDAY, occupancy, minutes=45, with_chair=True, not_before=at(MONDAY, 10, 30)) is None
    assert afternoon.verdicts == {(MONDAY, 45, True): Verdict(at(MONDAY, 10, 30), None)}
    assert calendar.find(MONDAY, occupancy, minutes=45, with_chair=True, not_before=at(MONDAY, 11)) is None, "later still: no room"
    assert calendar.find(MONDAY, occupancy, minutes=45, with_chair=True, not_before=at(MONDAY, 9)) == Booking(at(MONDAY, 9), 45, "clin_0107", "chair_01")
    assert afternoon.verdicts == {(MONDAY, 45, True): Verdict(at(MONDAY, 9), at(MONDAY, 9))}


def test_a_filling_day_is_searched_from_where_it_last_had_room(monkeypatch: pytest.MonkeyPatch):
    config = clinic()
    calendar = Calendar(config.calendar)
    morning = Day({cell: Holding(COURSES[0], "ses_01") for cell in whole_days(calendar, MONDAY) if cell.partition("|")[2] < f"{MONDAY}T10:15Z"})
    searched: list[str] = []
    search = calendar_module.first_free

    def counting(busy, resources, stamps):
        searched.append(stamps[0])
        return search(busy, resources, stamps)

    monkeypatch.setattr(calendar_module, "first_free", counting)
    first = calendar.find(MONDAY, Occupancy({MONDAY.isoformat(): Others(morning, COURSES[1])}), minutes=45, with_chair=True)
    assert first == Booking(at(MONDAY, 10, 15), 45, "clin_0107", "chair_01")
    assert morning.verdicts == {(MONDAY, 45, True): Verdict(calendar.day_start(MONDAY), at(MONDAY, 10, 15))}
    later = Day({**morning, **{cell: Holding(COURSES[1], "ses_02") for cell in first.cells(calendar.step)}})
    later.verdicts.update(morning.verdicts)  # cells taken only: Claims._note keeps what was found
    searched.clear()

    second = calendar.find(MONDAY, Occupancy({MONDAY.isoformat(): Others(later, COURSES[2])}), minutes=45, with_chair=True)

    assert second == Booking(at(MONDAY, 11), 45, "clin_0107", "chair_01")
    assert searched and min(searched) >= f"|{MONDAY}T10:15Z", "nothing before the room found last time was searched again"
    assert later.verdicts[(MONDAY, 45, True)] == Verdict(calendar.day_start(MONDAY), at(MONDAY, 11))


def test_the_next_course_does_not_search_the_full_days_the_previous_one_found_full(monkeypatch: pytest.MonkeyPatch):
    config = clinic()
    calendar = Calendar(config.calendar)
    full = whole_days(calendar, *(MONDAY + timedelta(days=i) for i in range(20)))
    stored = {day: Day({c: Holding(COURSES[0], "ses_01") for c in full if day_of(c) == day}) for day in {day_of(c) for c in full}}
    whole = book_course(approval(sessions=3, interval_days=14), full, calendar, config, NOW)
    searched: list[int] = []
    search = calendar_module.first_free

    def counting(busy, resources, stamps):
        searched[-1] += 1
        return search(busy, resources, stamps)

    monkeypatch.setattr(calendar_module, "first_free", counting)
    decisions = []
    for course in COURSES[1:3]:
        searched.append(0)
        plan = approval(sessions=3, interval_days=14)
        occupancy = Occupancy({day: Others(cells, course) for day, cells in stored.items()})
        decisions.append(book_course(plan, occupancy, calendar, config, NOW))

    assert [d.course.sessions for d in decisions] == [whole.course.sessions] * 2
    assert decisions[0].course.sessions[0].booking.start.date() == MONDAY + timedelta(days=21)
    assert searched[1] * 10 < searched[0], f"the second course searched the full days again ({searched})"


def test_starts_come_in_time_order_when_opening_intervals_overlap_off_the_grid():
    """Intervals 08:00-09:00 and 08:05-10:00: searched interval by interval, 08:05 came after 08:45, so a
    search found 08:30 while 08:05 was free, and a verdict kept from it hid 08:05 for good."""
    config = clinic(
        calendar={"opening_hours": (OpeningHours(weekday=0, opens=time(8), closes=time(9)), OpeningHours(weekday=0, opens=time(8, 5), closes=time(10)))}
    )
    calendar = Calendar(config.calendar)
    starts = list(calendar.starts(MONDAY, 15))
    morning = Day({cell: Holding(COURSES[0], "ses_01") for cell in whole_days(calendar, MONDAY) if cell.partition("|")[2] < f"{MONDAY}T08:30Z" and not cell.endswith("T08:05Z")})

    assert starts == sorted(set(starts)) and at(MONDAY, 8, 5) in starts
    assert calendar.find(MONDAY, Occupancy({MONDAY.isoformat(): Others(morning, COURSES[1])}), minutes=15, with_chair=False).start == at(MONDAY, 8, 5)


def test_the_utc_dates_of_a_day_are_those_its_opening_hours_lie_on():
    berlin = Calendar(clinic(calendar={"timezone": "Europe/Berlin", "opening_hours": (OpeningHours(weekday=0, opens=time(9), closes=time(19)),)}).calendar)
    assert berlin.utc_days(MONDAY) == (MONDAY.isoformat(),), "09:00-19:00 in Berlin is one UTC date, though the local day is two"
    assert Calendar(brisbane().calendar).utc_days(MONDAY) == ((MONDAY - timedelta(days=1)).isoformat(), MONDAY.isoformat())
    assert len(Calendar(brisbane().calendar).utc_days(MONDAY + timedelta(days=6))) == 1, "closed on Sunday: no cells, one date to keep verdicts on"
