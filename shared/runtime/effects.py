"""What a handler decides: state writes and events, applied by the runtime as one recoverable unit.

Handlers read state freely but never write it themselves: they return ``Effects``. The runtime first
records the effects in the inbox document of the event that caused them (one atomic single-document
insert), then applies them. Every write here is idempotent, so a crash anywhere in between is healed by
applying the recorded effects again when the event is redelivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.contracts import EventData


@dataclass(frozen=True)
class Put:
    """Create or replace a whole document."""

    collection: str
    id: Any
    document: dict[str, Any]


@dataclass(frozen=True)
class Merge:
    """Set some fields of a document, creating it when absent (``$set`` with upsert)."""

    collection: str
    id: Any
    fields: dict[str, Any]


@dataclass(frozen=True)
class Insert:
    """Insert a document once; an existing one with the same ``_id`` is left as it is."""

    collection: str
    document: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    collection: str
    id: Any


Write = Put | Merge | Insert | Delete


@dataclass(frozen=True)
class Emit:
    """An event to publish, now or at ``due_at``; ``id`` fixes the CloudEvents id (e.g. to cancel it)."""

    data: EventData
    due_at: datetime | None = None
    id: str | None = None


@dataclass
class Effects:
    writes: list[Write] = field(default_factory=list)
    events: list[Emit] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    """Ids of delayed events not yet published that no longer apply (a moved session's reminder)."""
    outcome: str = "applied"
    """Short word for the log line: applied, approved, deferred, ignored ..."""

    def put(self, collection: str, id: Any, document: dict[str, Any]) -> Effects:
        self.writes.append(Put(collection, id, document))
        return self

    def merge(self, collection: str, id: Any, **fields: Any) -> Effects:
        self.writes.append(Merge(collection, id, fields))
        return self

    def insert(self, collection: str, document: dict[str, Any]) -> Effects:
        self.writes.append(Insert(collection, document))
        return self

    def delete(self, collection: str, id: Any) -> Effects:
        self.writes.append(Delete(collection, id))
        return self

    def emit(self, data: EventData, *, due_at: datetime | None = None, id: str | None = None) -> Effects:
        self.events.append(Emit(data, due_at, id))
        return self

    def __add__(self, other: Effects) -> Effects:
        return Effects(
            [*self.writes, *other.writes],
            [*self.events, *other.events],
            [*self.cancel, *other.cancel],
            other.outcome if other.outcome != "applied" else self.outcome,
        )


def ignored(why: str = "ignored") -> Effects:
    """Nothing to do (e.g. an event about a course this service never booked); still recorded as handled."""
    return Effects(outcome=why)
