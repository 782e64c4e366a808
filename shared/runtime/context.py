"""What the parts of one running service share: who it is, its settings, clock, log and spans, the
connections ``Service.start`` makes (store, broker, relay, dependencies), and how a part waits: for a
store or broker that is not there yet (``until_ready``) and between retries (``pause``, which ends
when the service stops)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from faststream.kafka import KafkaBroker

from shared.clock import Clock
from shared.runtime import store
from shared.runtime.kafka_client import denial
from shared.runtime.relay import OutboxRelay
from shared.runtime.retry import backoff, is_transient
from shared.runtime.store import Database
from shared.runtime.tracing import Tracing
from shared.settings import Settings, redact

D = TypeVar("D")


@dataclass
class Context(Generic[D]):
    name: str
    settings: Settings
    clock: Clock
    log: logging.Logger
    tracing: Tracing
    """Spans of this service (replaced before ``start`` to export elsewhere, as the tests do)."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    db: Database | None = None
    broker: KafkaBroker | None = None
    relay: OutboxRelay | None = None
    deps: D | None = None

    @property
    def source(self) -> str:
        return f"/clinic/{self.name}"

    @property
    def group_id(self) -> str:
        return self.settings.group_id(self.name)

    @property
    def dependencies(self) -> D:
        """What the handlers get; built by ``start`` (a service may have none: ``None``)."""
        return cast(D, self.deps)

    @property
    def database(self) -> Database:
        """The service's database; only used once ``start`` connected it."""
        if self.db is None:
            raise RuntimeError(f"{self.name} is not connected to its store (not started)")
        return self.db

    @property
    def kafka(self) -> KafkaBroker:
        """The service's broker; only used once ``start`` made it."""
        if self.broker is None:
            raise RuntimeError(f"{self.name} has no broker (not started)")
        return self.broker

    async def pause(self, seconds: float) -> None:
        if self.stopping.is_set():
            raise asyncio.CancelledError
        await asyncio.sleep(seconds)

    async def until_ready(self, what: str, action: Callable[[], Awaitable[Any]]) -> None:
        attempt = 0
        while True:
            try:
                await action()
                return
            except Exception as error:
                # refused credentials or a missing grant: not ready, and retrying until an operator fixes it
                denied = store.refusal(error, self.settings.database(self.name)) if what == "store" else await denial(error, self.settings)
                if not (denied or is_transient(error)):
                    raise
                attempt += 1
                where = redact(self.settings.mongodb_url if what == "store" else self.settings.kafka_bootstrap_servers)
                message = f"{denied}, retrying" if denied else f"{what} unreachable at {where}, retrying"
                self.log.warning(message, extra={"error": error.__class__.__name__, "attempt": attempt})
                await asyncio.sleep(backoff(attempt, self.settings.retry_max_seconds, base=0.5))
