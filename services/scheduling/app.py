"""Wiring: the scheduling service on the shared runtime."""

from __future__ import annotations

from services.scheduling.calendar import Calendar
from services.scheduling.config import SchedulingConfig, load_config
from services.scheduling.handlers import Deps, handlers
from services.scheduling.repository import Claims, Repository
from shared.clock import Clock
from shared.runtime import Runtime, Service
from shared.settings import Settings


def create_service(settings: Settings | None = None, clock: Clock | None = None, config: SchedulingConfig | None = None) -> Service[Deps]:
    chosen = config or load_config()

    async def dependencies(runtime: Runtime) -> Deps:
        claims = Claims(runtime.db, chosen.calendar.step, chosen.series.claim_attempts)
        await claims.prepare(runtime.clock.now())
        return Deps(repo=Repository(runtime.db), claims=claims, config=chosen, calendar=Calendar(chosen.calendar), clock=runtime.clock)

    return Service(handlers, dependencies, settings=settings, clock=clock)
