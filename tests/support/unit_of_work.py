"""The fast handler tier: a service's handlers run in-process against the memory store, no Kafka, no store.

    work = await UnitOfWork.of(create_service(settings, clock))
    handled = await work.handle(SessionCompleted(...))
    assert handled.emitted(IngredientsConsumed) ...

``handle`` does what the runtime does with one event, minus transport: it builds the CloudEvent, calls the
handler registered for its type with the service's dependencies, and applies the returned Effects' writes
to the memory store in order (so the next event sees them). What the handler wrote itself, before
returning, is kept apart as its claims (``Handled.claims``); a rejection comes back as ``Handled.rejected``.
Delayed events are kept with their due time; nothing is published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.contracts import EventData
from shared.envelope import CloudEvent, new_event
from shared.runtime import Effects, Rejected, Runtime, Service
from shared.runtime.effects import Delete, Emit, Insert, Merge, Put
from tests.support.memory import MemoryDatabase, Written

D = TypeVar("D")
M = TypeVar("M", bound=EventData)


@dataclass
class Handled:
    event: CloudEvent[Any]
    effects: Effects = field(default_factory=Effects)
    claims: list[Written] = field(default_factory=list)
    """Writes the handler made itself while deciding (claims on shared resources), in order."""
    rejected: Rejected | None = None

    @property
    def outcome(self) -> str:
        return f"rejected:{self.rejected.reason}" if self.rejected else self.effects.outcome

    @property
    def events(self) -> list[Emit]:
        return self.effects.events

    def emitted(self, model: type[M]) -> list[M]:
        """The payloads of one type this event caused (published now or later)."""
        return [e.data for e in self.effects.events if isinstance(e.data, model)]

    def due(self, model: type[EventData]) -> list[datetime | None]:
        return [e.due_at for e in self.effects.events if isinstance(e.data, model)]


class UnitOfWork(Generic[D]):
    def __init__(self, service: Service[D], db: MemoryDatabase, deps: D) -> None:
        self.service = service
        self.db = db
        self.deps = deps
        self.cancelled: list[str] = []
        """Ids of delayed events that Effects withdrew, across every event handled."""

    @classmethod
    async def of(cls, service: Service[D], db: MemoryDatabase | None = None) -> UnitOfWork[D]:
        db = db or MemoryDatabase(service.name)
        deps = await service.dependencies(Runtime(service.name, db, service.clock, service.settings))  # type: ignore[arg-type]
        return cls(service, db, deps)

    async def handle(self, data: EventData, *, id: str | None = None, time: datetime | None = None, correlation_id: str | None = None) -> Handled:
        registered = self.service.handlers.by_type.get(data.event_type)
        if registered is None:
            raise LookupError(f"{self.service.name} has no handler for {data.event_type}")
        _, handler = registered
        event = new_event(data, source="/tests/unit", id=id, time=time or self.service.clock.now(), correlation_id=correlation_id)
        before = len(self.db.writes)
        try:
            effects = await handler(event, self.deps)
        except Rejected as rejected:
            return Handled(event, claims=self.db.writes[before:], rejected=rejected)
        claims = self.db.writes[before:]
        await self.apply(effects)
        return Handled(event, effects, claims)

    async def apply(self, effects: Effects) -> None:
        for write in effects.writes:
            collection = self.db[write.collection]
            match write:
                case Put():
                    await collection.replace_one({"_id": write.id}, {**write.document, "_id": write.id}, upsert=True)
                case Merge():
                    await collection.update_one({"_id": write.id}, {"$set": write.fields}, upsert=True)
                case Insert():
                    if write.document["_id"] not in collection.docs:
                        await collection.insert_one(write.document)
                case Delete():
                    await collection.delete_one({"_id": write.id})
        self.cancelled.extend(effects.cancel)

    async def run_jobs(self, at: datetime) -> dict[str, list[tuple[str, Effects]]]:
        """Every periodic job once at the given time, its Effects applied."""
        found = {}
        for name, (_, job) in self.service.handlers.jobs.items():
            found[name] = await job(self.deps, at)
            for _, effects in found[name]:
                await self.apply(effects)
        return found
