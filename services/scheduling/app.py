"""Wiring: the scheduling service on the shared runtime."""

from __future__ import annotations

from dataclasses import dataclass

from services.scheduling.calendar import Calendar
from services.scheduling.claims import CalendarClaims
from services.scheduling.config import SchedulingConfig, load_config
from services.scheduling.handlers import handlers
from services.scheduling.repository import SchedulingRepository
from shared.clock import Clock
from shared.runtime import Runtime, Service
from shared.settings import Settings


@dataclass(frozen=True)
class Deps:
    repo: SchedulingRepository
    claims: CalendarClaims
    """The calendar cells shared by every patient: claimed by the handlers directly, not through effects."""
    config: SchedulingConfig
    calendar: Calendar
    clock: Clock


def create_service(settings: Settings | None = None, clock: Clock | None = None, config: SchedulingConfig | None = None) -> Service[Deps]:
    chosen = config or load_config()

    async def dependencies(runtime: Runtime) -> Deps:
        claims = CalendarClaims(runtime.db, chosen.calendar.step)
        await claims.prepare(runtime.clock.now())
        return Deps(repo=SchedulingRepository(runtime.db), claims=claims, config=chosen, calendar=Calendar(chosen.calendar), clock=runtime.clock)

    return Service(handlers, dependencies, settings=settings, clock=clock)
