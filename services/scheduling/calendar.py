"""The clinic calendar: when it is open, which resources an appointment holds, where one still fits.

An appointment holds its practitioner (and, for a treatment session, a chair) for every step of the
slot grid it covers. Each held step is a *cell* ``"<resource>|<start UTC>"``; the store claims cells
under exactly these ids, so two bookings can never hold the same resource at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from services.scheduling.config import CalendarConfig


def cell_id(resource: str, start: datetime) -> str:
    return f"{resource}|{start.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def day_of(cell: str) -> str:
    """The UTC date (``YYYY-MM-DD``) a cell lies on: the store keeps one calendar document per such day."""
    return cell.partition("|")[2][:10]


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


class Calendar:
    def __init__(self, config: CalendarConfig) -> None:
        self.config = config
        self.zone = config.zone
        self.step = config.step

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def day_start(self, day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), self.zone).astimezone(UTC)

    def is_open(self, day: date) -> bool:
        return day not in self.config.closed_dates and any(h.weekday == day.weekday() for h in self.config.opening_hours)

    def starts(self, day: date, minutes: int) -> Iterator[datetime]:
        """Every start on the grid where an appointment of ``minutes`` fits inside one opening interval."""
        if day in self.config.closed_dates:
            return
        length = timedelta(minutes=minutes)
        for hours in sorted((h for h in self.config.opening_hours if h.weekday == day.weekday()), key=lambda h: h.opens):
            at = datetime.combine(day, hours.opens, self.zone)
            closes = datetime.combine(day, hours.closes, self.zone)
            while at + length <= closes:
                yield at.astimezone(UTC)
                at += self.step

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
            if busy.isdisjoint(keep.cells(self.step)) and keep.start in set(self.starts(day, keep.minutes)):
                return keep
        practitioners = self._preferring(self.config.practitioners, keep.practitioner_id if keep else None)
        chairs: tuple[str | None, ...] = self._preferring(self.config.chairs, keep.chair_id if keep else None) if with_chair else (None,)
        for start in self.starts(day, minutes):
            if not_before is not None and start < not_before:
                continue
            for chair in chairs:
                for practitioner in practitioners:
                    booking = Booking(start, minutes, practitioner, chair)
                    if busy.isdisjoint(booking.cells(self.step)):
                        return booking
        return None

    @staticmethod
    def _preferring(options: tuple[str, ...], preferred: str | None) -> tuple[str, ...]:
        # Continuity: the same practitioner (and chair) as before when they are free.
        return tuple(sorted(options, key=lambda option: option != preferred))
