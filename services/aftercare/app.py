"""Wiring: the aftercare service on the shared runtime."""

from __future__ import annotations

from dataclasses import dataclass

from services.aftercare.config import AftercareConfig, load_config
from services.aftercare.handlers import handlers
from services.aftercare.repository import AftercareRepository
from shared.clock import Clock
from shared.runtime import Runtime, Service
from shared.settings import Settings


@dataclass(frozen=True)
class Deps:
    repo: AftercareRepository
    config: AftercareConfig
    clock: Clock


def create_service(settings: Settings | None = None, clock: Clock | None = None, config: AftercareConfig | None = None) -> Service[Deps]:
    chosen = config or load_config()

    async def dependencies(runtime: Runtime) -> Deps:
        return Deps(repo=AftercareRepository(runtime.db), config=chosen, clock=runtime.clock)

    return Service(handlers, dependencies, settings=settings, clock=clock)
