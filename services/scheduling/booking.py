"""Decide against the calendar as stored, then claim what was decided; lose a race, decide again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from services.scheduling.domain import Decision
from services.scheduling.repository import Claim, SlotTaken

if TYPE_CHECKING:
    from services.scheduling.app import Deps


class SlotContention(Exception):
    """Other bookings kept winning the same cells: the runtime retries the event with backoff."""

    retriable = True


async def claimed(deps: Deps, course_id: str, now: datetime, decide: Callable[[frozenset[str]], Decision]) -> tuple[Decision, Claim]:
    taken: frozenset[str] = frozenset()
    for _ in range(deps.config.series.claim_attempts):
        busy = await deps.repo.busy(course_id, now) | taken
        decision = decide(busy)
        try:
            return decision, await deps.repo.claim(decision)
        except SlotTaken as lost:
            taken |= lost.cells
    raise SlotContention(f"{course_id}: calendar cells kept being taken")
