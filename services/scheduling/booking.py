"""Decide against the calendar as stored, then claim what was decided; lose a race, decide again."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import TYPE_CHECKING

from services.scheduling.calendar import Busy
from services.scheduling.claims import Claim, Day, SlotTaken, others
from services.scheduling.domain import Course, Decision
from services.scheduling.occupancy import Occupancy, days_to_read

if TYPE_CHECKING:
    from services.scheduling.app import Deps


class SlotContention(Exception):
    """Other bookings kept winning the same cells: the runtime retries the event with backoff."""

    retriable = True


async def claimed(deps: Deps, before: Course | None, course_id: str, decide: Callable[[Busy], Decision]) -> tuple[Decision, Claim]:
    taken: frozenset[str] = frozenset()
    for _ in range(deps.config.series.claim_attempts):
        decision, seen = await placed(deps, course_id, taken, decide)
        try:
            return decision, await deps.claims.claim(before, decision, seen)
        except SlotTaken as lost:
            taken |= lost.cells
    raise SlotContention(f"{course_id}: calendar cells kept being taken")


async def placed(deps: Deps, course_id: str, taken: frozenset[str], decide: Callable[[Busy], Decision]) -> tuple[Decision, dict[str, Day]]:
    """Decide, read the days the decision looked at without having them, and decide again until it needed
    none: a decision that places nothing reads nothing, a series reads about one day per session."""
    seen: dict[str, Day] = {}
    held: dict[str, frozenset[str]] = {}
    for round in count():
        occupancy = Occupancy(held, taken)
        decision = decide(occupancy)
        if not occupancy.unread:
            break
        read = await deps.claims.days(days_to_read(occupancy.unread, seen.keys(), round))
        seen.update(read)
        held.update({day: others(cells, course_id) for day, cells in read.items()})
    return decision, seen
