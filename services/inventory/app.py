"""Wiring: the inventory service on the shared runtime."""

from __future__ import annotations

from dataclasses import dataclass

from services.inventory import lot_handlers  # noqa: F401  (registers the lot-side handlers)
from services.inventory.config import InventoryConfig, load_config
from services.inventory.handlers import handlers
from services.inventory.repository import Repository
from shared.clock import Clock
from shared.runtime import Runtime, Service
from shared.settings import Settings


@dataclass(frozen=True)
class Deps:
    repo: Repository
    config: InventoryConfig
    clock: Clock


def create_service(settings: Settings | None = None, clock: Clock | None = None, config: InventoryConfig | None = None) -> Service[Deps]:
    chosen = config or load_config()

    async def dependencies(runtime: Runtime) -> Deps:
        repo = Repository(runtime.db)
        await repo.ensure_indexes()
        return Deps(repo=repo, config=chosen, clock=runtime.clock)

    return Service(handlers, dependencies, settings=settings, clock=clock)
