"""Wiring: the aftercare service on the shared runtime."""

from __future__ import annotations

from services.aftercare.config import AftercareConfig, load_config
from services.aftercare.handlers import Deps, handlers
from services.aftercare.repository import Repository
from shared.clock import Clock
from shared.runtime import Runtime, Service
from shared.settings import Settings


def create_service(settings: Settings | None = None, clock: Clock | None = None, config: AftercareConfig | None = None) -> Service[Deps]:
    chosen = config or load_config()

    async def dependencies(runtime: Runtime) -> Deps:
        return Deps(repo=Repository(runtime.db), config=chosen, clock=runtime.clock)

    return Service(handlers, dependencies, settings=settings, clock=clock)
