"""Wiring: the inventory service on the shared runtime."""

from __future__ import annotations

from services.inventory.config import InventoryConfig, load_config
from services.inventory.handlers import Deps, handlers
from services.inventory.repository import Claims, Repository
from shared.clock import Clock
from shared.runtime import Runtime, Service
from shared.settings import Settings


def create_service(settings: Settings | None = None, clock: Clock | None = None, config: InventoryConfig | None = None) -> Service[Deps]:
    chosen = config or load_config()

    async def dependencies(runtime: Runtime) -> Deps:
        repo = Repository(runtime.db)
        await repo.ensure_indexes()
        return Deps(repo=repo, claims=Claims(runtime.db), config=chosen, clock=runtime.clock)

    return Service(handlers, dependencies, settings=settings, clock=clock)
