"""Wait until a service has handled what a test sent and published everything that is due."""

from __future__ import annotations

from typing import Any

from clinic.polling import eventually
from shared.contracts import EventData
from shared.runtime.store import OUTBOX


async def settle(service: Any, *expected: tuple[type[EventData], int]) -> None:
    """Until each model has been handled (or dead-lettered) that often and nothing due is left to publish."""

    async def quiet() -> bool:
        stats = service.stats
        seen = all(stats.handled.get(m.event_type, 0) + stats.dead_lettered.get(m.event_type, 0) >= n for m, n in expected)
        due = {"status": "pending", "due_at": {"$lte": service.clock.now()}}
        return seen and await service.db[OUTBOX].count_documents(due) == 0

    await eventually(quiet, what=f"handled {[(m.__name__, n) for m, n in expected]} and outbox flushed")
