"""Wiring: the consultation service on the shared runtime."""

from __future__ import annotations

from services.consultation.config import ConsultationConfig, load_config
from services.consultation.handlers import Deps, handlers
from services.consultation.repository import Repository
from shared.clock import Clock
from shared.runtime import Runtime, Service
from shared.settings import Settings


def create_service(settings: Settings | None = None, clock: Clock | None = None, config: ConsultationConfig | None = None) -> Service[Deps]:
    chosen = config or load_config()

    async def dependencies(runtime: Runtime) -> Deps:
        return Deps(repo=Repository(runtime.db), config=chosen, clock=runtime.clock)

    return Service(handlers, dependencies, settings=settings, clock=clock)
