"""Placing a chain of sessions into the calendar: a whole new series, or the rest of one after a move.

Consecutive sessions lie ``min..max`` days apart (local calendar days), so no two sessions of a chain
share a day and a day's choice never disturbs another's. That makes "can the rest of the chain be placed
from session i on day d" depend on (i, d) alone, so a depth-first search that remembers dead ends finds
the nearest feasible chain in polynomial time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.scheduling.calendar import Booking, Busy, Calendar
from services.scheduling.config import SchedulingConfig


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def nearest(target: date, low: date, high: date) -> list[date]:
    """Days in [low, high], nearest to ``target`` first; on a tie the later day (a longer gap is the safer side)."""
    return sorted(days_between(low, high), key=lambda d: (abs((d - target).days), d < target))


def solve(
    count: int,
    first_days: Iterable[date],
    next_days: Callable[[int, date], Iterable[date]],
    slot_on: Callable[[int, date], Booking | None],
) -> list[Booking] | None:
    dead: set[tuple[int, date]] = set()

    def rest_from(index: int, day: date) -> list[Booking] | None:
        if (index, day) in dead:
            return None
        booking = slot_on(index, day)
        if booking is not None:
            if index == count - 1:
                return [booking]
            for following in next_days(index + 1, day):
                tail = rest_from(index + 1, following)
                if tail is not None:
                    return [booking, *tail]
        dead.add((index, day))
        return None

    for day in first_days:
        found = rest_from(0, day)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Window:
    first: date
    last: date


def search_window(not_before: datetime, calendar: Calendar, config: SchedulingConfig) -> Window:
    first = calendar.local_day(not_before)
    return Window(first, first + timedelta(days=config.series.horizon_days))


def place_series(
    sessions: int, interval_days: int, not_before: datetime, busy: Busy, calendar: Calendar, config: SchedulingConfig
) -> list[Booking] | None:
    """The whole series, first session as early as possible, each next one as near the plan's interval as fits."""
    rules, window = config.series, search_window(not_before, calendar, config)

    def next_days(index: int, previous: date) -> list[date]:
        high = min(previous + timedelta(days=rules.max_interval_days), window.last)
        return nearest(previous + timedelta(days=interval_days), previous + timedelta(days=rules.min_interval_days), high)

    def slot_on(index: int, day: date) -> Booking | None:
        return calendar.find(day, busy, minutes=calendar.config.session_minutes, with_chair=True, not_before=not_before)

    return solve(sessions, days_between(window.first, window.last), next_days, slot_on)


def replace_chain(
    current: list[Booking],
    not_before: datetime,
    latest_first_day: date | None,
    busy: Busy,
    calendar: Calendar,
    config: SchedulingConfig,
    notice: datetime,
) -> list[Booking] | None:
    """New bookings for a chain whose first session must move to ``not_before`` or later (and, when given,
    no later than ``latest_first_day``); each later session keeps its booking when the gap still holds and
    otherwise moves to the nearest day that restores it."""
    rules, window = config.series, search_window(not_before, calendar, config)
    last_first = min(latest_first_day, window.last) if latest_first_day else window.last

    def next_days(index: int, previous: date) -> list[date]:
        high = min(previous + timedelta(days=rules.max_interval_days), window.last)
        return nearest(calendar.local_day(current[index].start), previous + timedelta(days=rules.min_interval_days), high)

    def slot_on(index: int, day: date) -> Booking | None:
        minutes = current[index].minutes
        if index == 0:
            return calendar.find(day, busy, minutes=minutes, with_chair=True, not_before=not_before, keep=current[0])
        return calendar.find(day, busy, minutes=minutes, with_chair=True, not_before=notice, keep=current[index])

    return solve(len(current), days_between(window.first, last_first), next_days, slot_on)


def place_follow_up(target: datetime, search_days: int, busy: Busy, calendar: Calendar) -> Booking | None:
    """A practitioner-only appointment (no chair) on the first day from ``target`` on that has room."""
    first = calendar.local_day(target)
    for day in days_between(first, first + timedelta(days=search_days)):
        found = calendar.find(day, busy, minutes=calendar.config.follow_up_minutes, with_chair=False, not_before=target)
        if found is not None:
            return found
    return None
