"""The clinic calendar and placing appointments in it (pure: no I/O).

An appointment holds its practitioner (and, for a treatment session, a chair) for every step of the
slot grid it covers. Each held step is a *cell* ``"<resource>|<start UTC>"``; the store claims cells
under exactly these ids, so two bookings can never hold the same resource at the same time.

Occupancy: the store's calendar is read a day at a time, so a decision reads only the days it looks
at. Which days those are is only known while deciding (a series may look anywhere in a year), so a
decision is made against the days read so far, counting a day not read yet as free and noting it. The
caller reads the noted days and decides again; a decision that noted no day is the real one. A day
searched for an appointment keeps where it first had room (``Occupancy.searched``) while it stays as read,
so the next decision skips a full day with a look-up and searches a filling one from there: a calendar
booked up for weeks is not searched again by every booking.

Placement: consecutive sessions lie ``min..max`` days apart (local calendar days), so no two sessions of
a chain share a day and a day's choice never disturbs another's. That makes "can the rest of the chain
be placed from session i on day d" depend on (i, d) alone, so a depth-first search that remembers dead
ends finds the nearest feasible chain in polynomial time.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol, TypeVar

from services.scheduling.config import CalendarConfig, OpeningHours, SchedulingConfig


def cell_id(resource: str, start: datetime) -> str:
    return resource + cell_stamp(start)


@lru_cache(maxsize=8192)
def cell_stamp(start: datetime) -> str:
    """The part of a cell's id after its resource: formatted once per step, not per resource tried, and
    remembered (placements look at the same days' starts booking after booking; a day's grid is ~50 steps).
    Starts are UTC datetimes (``Calendar.starts``, the store's codec), so equal keys are equal instants."""
    return f"|{start.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def day_of(cell: str) -> str:
    """The UTC date (``YYYY-MM-DD``) a cell lies on: placements read the stored calendar by such days."""
    return cell.partition("|")[2][:10]


def hour_of(cell: str) -> str:
    """The UTC hour (``YYYY-MM-DDTHH``) a cell lies in: the store keeps one calendar document per such hour."""
    return cell.partition("|")[2][:13]


def day_of_hour(hour: str) -> str:
    """The UTC date of an hour as ``hour_of`` names it."""
    return hour[:10]


def hours_of(day: str) -> list[str]:
    """The 24 hours of a UTC date, as ``hour_of`` names them."""
    return [f"{day}T{hour:02d}" for hour in range(24)]


class Busy(Protocol):
    """Cells already held by other bookings: a plain frozenset, or a view of the stored calendar."""

    def isdisjoint(self, cells: Iterable[str], /) -> bool: ...

    def __or__(self, cells: Set[str], /) -> Busy: ...


@dataclass(frozen=True)
class Booking:
    """A placed appointment: when, how long, with whom and (for a session) in which chair."""

    start: datetime
    minutes: int
    practitioner_id: str
    chair_id: str | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    def held(self, step: timedelta) -> list[tuple[str, datetime]]:
        """(cell id, cell start) of every resource step this appointment holds."""
        starts = [self.start + step * i for i in range(int(timedelta(minutes=self.minutes) / step))]
        resources = [self.practitioner_id] + ([self.chair_id] if self.chair_id else [])
        return [(cell_id(resource, at), at) for resource in resources for at in starts]

    def cells(self, step: timedelta) -> tuple[str, ...]:
        return tuple(cell for cell, _ in self.held(step))


KNOWN_GRIDS = 4096
"""Days (by appointment length) whose starts a ``Calendar`` keeps worked out; a year ahead is a few hundred."""
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _kept(known: dict[K, V], key: K, work: Callable[[], V]) -> V:
    """``known[key]``, worked out by ``work`` the first time it is asked for; ``known`` starts afresh once it
    holds ``KNOWN_GRIDS``."""
    found = known.get(key)
    if found is None:
        if len(known) >= KNOWN_GRIDS:
            known.clear()
        found = known[key] = work()
    return found


class Calendar:
    def __init__(self, config: CalendarConfig) -> None:
        self.config = config
        self.zone = config.zone
        self.step = config.step
        self._starts: dict[tuple[date, int], tuple[datetime, ...]] = {}
        self._utc_days: dict[date, tuple[str, ...]] = {}

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def day_start(self, day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), self.zone).astimezone(UTC)

    def is_open(self, day: date) -> bool:
        return day not in self.config.closed_dates and any(h.weekday == day.weekday() for h in self.config.opening_hours)

    def starts(self, day: date, minutes: int) -> tuple[datetime, ...]:
        """Every start on the grid where an appointment of ``minutes`` fits inside one opening interval, in
        time order (intervals may overlap, and one may open off another's grid). Worked out once per day
        and length: a placement asks about the same days again and again."""
        return _kept(self._starts, (day, minutes), lambda: self._grid(day, minutes))

    def _grid(self, day: date, minutes: int) -> tuple[datetime, ...]:
        if day in self.config.closed_dates:
            return ()
        length = timedelta(minutes=minutes)
        found: set[datetime] = set()
        for hours in self._hours(day):
            at = datetime.combine(day, hours.opens, self.zone)
            closes = datetime.combine(day, hours.closes, self.zone)
            while at + length <= closes:
                found.add(at.astimezone(UTC))
                at += self.step
        return tuple(sorted(found))

    def _hours(self, day: date) -> list[OpeningHours]:
        return sorted((h for h in self.config.opening_hours if h.weekday == day.weekday()), key=lambda h: h.opens)

    def find(
        self,
        day: date,
        busy: Busy,
        *,
        minutes: int,
        with_chair: bool,
        not_before: datetime | None = None,
        keep: Booking | None = None,
    ) -> Booking | None:
        """The earliest free appointment on ``day``; ``keep`` is tried first (a session that need not move)."""
        if keep is not None and self.local_day(keep.start) == day and (not_before is None or keep.start >= not_before):
            if busy.isdisjoint(keep.cells(self.step)) and keep.start in self.starts(day, keep.minutes):
                return keep
        # Where the day first has room from some time on depends only on what is held there (not on the
        # practitioner and chair preferred, nor on ``keep``, a start with both free when it is kept), so
        # what a search found is kept with the day as read (``Occupancy.searched``): a calendar full for
        # weeks ahead costs a look-up per day, and a filling day is searched from its first room on.
        occupancy = busy if isinstance(busy, Occupancy) else None
        key, utc_days = (day, minutes, with_chair), self.utc_days(day)
        since = self.day_start(day) if not_before is None else max(not_before, self.day_start(day))
        kept = occupancy.searched(key, utc_days, since) if occupancy is not None else None
        first = searched_since = since
        if kept is not None:
            if kept.room_at is None:
                return None
            first = max(since, kept.room_at)
            if since <= kept.room_at:  # this search begins where the kept one left off, so it holds from there
                searched_since = kept.since
        practitioners = self._preferring(self.config.practitioners, keep.practitioner_id if keep else None)
        chairs = self._preferring(self.config.chairs, keep.chair_id if keep else None)
        held = int(timedelta(minutes=minutes) / self.step)
        found: Booking | None = None
        for start in self.starts(day, minutes):
            if start < first:
                continue
            # A practitioner and a chair are held independently, so the first free pair in preference order
            # is the first free practitioner with the first free chair: practitioners + chairs look-ups per
            # start, not practitioners x chairs (a 40-chair calendar spent seconds per booking on the product).
            stamps = [cell_stamp(start + self.step * i) for i in range(held)]
            practitioner = first_free(busy, practitioners, stamps)
            if practitioner is None:
                continue
            if not with_chair:
                found = Booking(start, minutes, practitioner)
                break
            chair = first_free(busy, chairs, stamps)
            if chair is not None:
                found = Booking(start, minutes, practitioner, chair)
                break
        if occupancy is not None:
            occupancy.found(key, utc_days, Verdict(searched_since, found.start if found else None))
        return found

    def utc_days(self, day: date) -> tuple[str, ...]:
        """The UTC dates (``YYYY-MM-DD``, as the stored calendar is kept) the local ``day``'s opening hours
        overlap: where any cell of an appointment that day can lie (one date, unless the clinic is open across
        midnight UTC)."""
        return _kept(self._utc_days, day, lambda: self._dates(day))

    def _dates(self, day: date) -> tuple[str, ...]:
        hours = self._hours(day)
        if not hours:
            return (self.day_start(day).date().isoformat(),)
        first = datetime.combine(day, hours[0].opens, self.zone).astimezone(UTC).date()
        last = (datetime.combine(day, max(h.closes for h in hours), self.zone).astimezone(UTC) - timedelta(microseconds=1)).date()
        return (first.isoformat(),) if first >= last else (first.isoformat(), last.isoformat())

    @staticmethod
    def _preferring(options: tuple[str, ...], preferred: str | None) -> tuple[str, ...]:
        # Continuity: the same practitioner (and chair) as before when they are free.
        return tuple(sorted(options, key=lambda option: option != preferred))


def first_free(busy: Busy, resources: Iterable[str], stamps: Sequence[str]) -> str | None:
    """The first of ``resources`` that ``busy`` leaves free at every step of ``stamps`` (``cell_stamp``s)."""
    if isinstance(busy, Occupancy):
        return busy.first_free(resources, stamps)
    return next((r for r in resources if busy.isdisjoint([r + at for at in stamps])), None)


# Occupancy: the stored calendar as a decision sees it


@dataclass(frozen=True)
class Verdict:
    """What searching a day for an appointment found: from ``since`` on, no start before ``room_at`` has
    room for it (``room_at`` None: no start at all)."""

    since: datetime
    room_at: datetime | None
    others: tuple[object, ...] = ()
    """The snapshots of the local day's other UTC dates it was found against (a day may straddle two)."""


class Snapshot(Protocol):
    """A day as read from the store, unchanged since but for cells taken: what was found out about it is
    kept with it (a cell taken only ever leaves less room; a released one makes a new snapshot)."""

    verdicts: dict[Hashable, Verdict]
    """By (local day, minutes, with a chair); see ``Occupancy.searched``."""


class Occupancy:
    def __init__(self, days: Mapping[str, Container[str]], known: Set[str] = frozenset(), unread: set[str] | None = None) -> None:
        self.days = days
        """Cells held by other courses, per day read (``YYYY-MM-DD``). A day's cells may come with a
        ``snapshot`` (``Snapshot | None``): the day as read, when the deciding course holds nothing on it."""
        self.known = frozenset(known)
        """Cells taken whatever the days say (lost to another booking, or placed earlier in the same decision)."""
        self.unread: set[str] = set() if unread is None else unread
        """Days the decision looked at without having them: it must be made again once they are read."""
        self._known_days: frozenset[str] | None = None

    def searched(self, key: Hashable, days: Sequence[str], since: datetime) -> Verdict | None:
        """What ``Calendar.find`` found for ``key`` on the local day lying on the UTC ``days``, searching from
        ``since`` or earlier, against these snapshots of them (or the same with cells taken since). It
        holds for any decision that adds nothing to those days: the course holds nothing there (else no
        snapshot) and no cell of ``known`` lies there."""
        snapshots = self._snapshots(days)
        return None if snapshots is None else _applying(snapshots, key, since)

    def found(self, key: Hashable, days: Sequence[str], verdict: Verdict) -> None:
        """Keep what a search found (see ``searched``), when it holds for others and says at least as much
        as the verdict kept."""
        snapshots = self._snapshots(days)
        if snapshots is None:
            return
        kept = _applying(snapshots, key, verdict.since)
        if kept is None or kept.since >= verdict.since:
            snapshots[0].verdicts[key] = replace(verdict, others=tuple(snapshots[1:]))

    def _snapshots(self, days: Sequence[str]) -> list[Snapshot] | None:
        if self._known_days is None:
            self._known_days = frozenset(day_of(cell) for cell in self.known)
        snapshots = [getattr(self.days.get(day), "snapshot", None) for day in days]
        if any(s is None for s in snapshots) or not self._known_days.isdisjoint(days):
            return None
        return snapshots  # type: ignore[return-value]

    def isdisjoint(self, cells: Iterable[str], /) -> bool:
        for cell in cells:
            if cell in self.known:
                return False
            held = self.days.get(day := day_of(cell))
            if held is None:
                self.unread.add(day)
            elif cell in held:
                return False
        return True

    def first_free(self, resources: Iterable[str], stamps: Sequence[str]) -> str | None:
        """``isdisjoint`` of each resource's cells in turn, as ``first_free`` asks it, with each step's day
        looked up once rather than once per resource (a 40-chair day is thousands of such checks)."""
        steps = [(stamp, day, self.days.get(day)) for stamp in stamps for day in (stamp[1:11],)]
        known, unread = self.known, self.unread
        for resource in resources:
            for stamp, day, held in steps:
                cell = resource + stamp
                if cell in known or (held is not None and cell in held):
                    break
                if held is None:
                    unread.add(day)
            else:
                return resource
        return None

    def __or__(self, cells: Set[str], /) -> Occupancy:
        return Occupancy(self.days, self.known | cells, self.unread)


def _applying(snapshots: Sequence[Snapshot], key: Hashable, since: datetime) -> Verdict | None:
    """The verdict kept for ``key`` on the first of these snapshots, if it was found against the others
    (by identity) from ``since`` or earlier."""
    kept = snapshots[0].verdicts.get(key)
    if kept is None or kept.since > since or len(kept.others) != len(snapshots) - 1:
        return None
    return kept if all(a is b for a, b in zip(kept.others, snapshots[1:], strict=True)) else None


def days_to_read(unread: Set[str], already: Set[str], round: int, widest: int = 64) -> list[str]:
    """The noted days, and from the third round on a growing run of days after the earliest of them:
    a decision that keeps finding unread days is searching a full calendar, so read ahead of it. The
    second round reads only what it noted: most decisions that need it found their first day full and
    settle on the next one, so days read ahead there would mostly be store round trips for nothing."""
    wanted = set(unread)
    if round > 1 and unread:
        first = date.fromisoformat(min(unread))
        wanted.update((first + timedelta(days=i)).isoformat() for i in range(1, min(widest, 4 << (round - 1)) + 1))
    return sorted(wanted - already)


# Placement: a whole new series, the rest of one after a move, a follow-up


def days_between(first: date, last: date) -> Iterator[date]:
    """``first`` to ``last`` inclusive, made as they are asked for: a series' search window is a year of
    days, and most placements settle on one of its first few."""
    return (first + timedelta(days=i) for i in range((last - first).days + 1))


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
