"""What a service declares: the events it reacts to (``Handlers``), its periodic jobs, and what its
dependency builder gets (``Runtime``). No I/O here: the runtime (``shared.runtime.service``) runs them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar

from pymongo.asynchronous.database import AsyncDatabase

from shared.clock import Clock
from shared.contracts import EventData
from shared.envelope import CloudEvent
from shared.runtime.effects import Effects
from shared.settings import Settings

D = TypeVar("D")
E = TypeVar("E", bound=EventData)
Handler: TypeAlias = Callable[[CloudEvent[E], D], Awaitable[Effects]]
"""A reaction to one event type: ``Handler[SessionCompleted, Deps]``."""
AnyHandler: TypeAlias = Handler[Any, Any]
"""Any registered handler, whatever its event type and dependencies (what the registry stores)."""


class Rejected(Exception):
    """The event is well-formed but cannot be applied (unknown session, impossible data).

    Raised by a handler before it returns effects, so nothing is applied; the event is dead-lettered
    with this reason.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Job: TypeAlias = Callable[[D, datetime], Awaitable[list[tuple[str, Effects]]]]
"""A periodic scan: the (key, effects) pairs it found at the given time."""


class Handlers(Generic[D]):
    """The events a service reacts to, like a FastStream router but with our unit of work.

    ``Handlers[Deps]("aftercare")``: each handler takes the decoded event typed by the contract it is
    registered for (``CloudEvent[SessionCompleted]``) and the service's dependencies ``Deps``."""

    def __init__(self, service: str, concurrency: int = 1) -> None:
        self.service = service
        self.concurrency = concurrency
        """Patients handled at once within a batch unless ``CLINIC_CONSUME_CONCURRENCY`` says otherwise."""
        self.by_type: dict[str, tuple[type[EventData], AnyHandler]] = {}
        self.jobs: dict[str, tuple[float, Job[D]]] = {}

    def every(self, seconds: float) -> Callable[[Job[D]], Job[D]]:
        """A periodic scan (expiring lots, overdue check-ins). The job returns (key, effects) pairs;
        each key is applied once ever, like an event id, so a scan that runs twice changes nothing."""

        def register(job: Job[D]) -> Job[D]:
            self.jobs[job.__name__] = (seconds, job)
            return job

        return register

    def on(self, model: type[E]) -> Callable[[Handler[E, D]], Handler[E, D]]:
        def register(handler: Handler[E, D]) -> Handler[E, D]:
            if model.event_type in self.by_type:
                raise ValueError(f"{self.service} handles {model.event_type} twice")
            self.by_type[model.event_type] = (model, handler)
            return handler

        return register


@dataclass
class Runtime:
    """What dependency builders get: the service's own database, its clock and its settings."""

    name: str
    db: AsyncDatabase[dict[str, Any]]
    clock: Clock
    settings: Settings
