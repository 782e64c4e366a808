"""The calendar as the placement sees it: cells held on the days read so far (pure: no I/O).

The store keeps one calendar document per day, so a decision reads only the days it looks at. Which
days those are is only known while deciding (a series may look anywhere in a year), so a decision is
made against the days read so far, counting a day not read yet as free and noting it. The caller reads
the noted days and decides again; a decision that noted no day is the real one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from datetime import date, timedelta

from services.scheduling.calendar import day_of


class Occupancy:
    def __init__(self, days: Mapping[str, Set[str]], known: Set[str] = frozenset(), unread: set[str] | None = None) -> None:
        self.days = days
        """Cells held by other courses, per day read (``YYYY-MM-DD``)."""
        self.known = frozenset(known)
        """Cells taken whatever the days say (lost to another booking, or placed earlier in the same decision)."""
        self.unread: set[str] = set() if unread is None else unread
        """Days the decision looked at without having them: it must be made again once they are read."""

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

    def __or__(self, cells: Set[str], /) -> Occupancy:
        return Occupancy(self.days, self.known | cells, self.unread)


def days_to_read(unread: Set[str], already: Set[str], round: int, widest: int = 64) -> list[str]:
    """The noted days, and from the second round on a growing run of days after the earliest of them:
    a decision that keeps finding unread days is searching a full calendar, so read ahead of it."""
    wanted = set(unread)
    if round > 0 and unread:
        first = date.fromisoformat(min(unread))
        wanted.update((first + timedelta(days=i)).isoformat() for i in range(1, min(widest, 4 << round) + 1))
    return sorted(wanted - already)
