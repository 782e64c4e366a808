"""The commands a service sends to the store, seen by a PyMongo listener: proof that what a handler
does per event is a lookup by ``_id`` (the local store scans the whole collection for any other filter).

A lookup by ``_id`` is ``{_id: x}`` or ``{_id: {$in: [x, y]}}``, with or without other fields beside the
``_id`` (a version to compare): our build of the local store hands SQLite the ``_id`` condition of any
filter (FERRETDB_ID_FILTER in infra/local.py, its plan checked in tests/integration/test_store_plan.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import monitoring

QUERIES = {"aggregate", "count", "distinct", "mapReduce"}


@dataclass(frozen=True)
class Command:
    name: str
    collection: str
    filters: tuple[Any, ...]

    @classmethod
    def of(cls, event: monitoring.CommandStartedEvent) -> Command:
        body = event.command
        match event.command_name:
            case "find":
                filters = (body.get("filter", {}),)
            case "findAndModify":
                filters = (body.get("query", {}),)
            case "update":
                filters = tuple(u.get("q", {}) for u in body.get("updates", ()))
            case "delete":
                filters = tuple(d.get("q", {}) for d in body.get("deletes", ()))
            case _:
                filters = ()
        return cls(event.command_name, str(body.get(event.command_name)), filters)

    @property
    def scans(self) -> bool:
        return self.name in QUERIES or not all(by_id(f) for f in self.filters)


def by_id(query: Any) -> bool:
    """A filter the store answers from the `_id` index."""
    if not isinstance(query, dict) or "_id" not in query:
        return False
    wanted = query["_id"]
    if isinstance(wanted, dict):
        return list(wanted) == ["$in"] and isinstance(wanted["$in"], list) and bool(wanted["$in"]) and all(_plain(v) for v in wanted["$in"])
    return _plain(wanted)


def _plain(value: Any) -> bool:
    """A value the store looks up in the ``_id`` index: a string or an ObjectId (what the services use)."""
    return isinstance(value, str | ObjectId)


class _Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.database: str | None = None
        self.collections: frozenset[str] = frozenset()
        self.seen: list[Command] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            command = Command.of(event)
            if command.collection in self.collections:
                self.seen.append(command)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_recorder: _Recorder | None = None


@contextmanager
def watching(database: str, collections: set[str]) -> Iterator[list[Command]]:
    """Every command on these collections of this database by any client created from now on."""
    global _recorder
    if _recorder is None:  # PyMongo's listeners are global and cannot be removed: one, idle between tests
        _recorder = _Recorder()
        monitoring.register(_recorder)
    _recorder.database, _recorder.collections, _recorder.seen = database, frozenset(collections), []
    try:
        yield _recorder.seen
    finally:
        _recorder.database = None


def reads(commands: list[Command], since: int) -> list[str]:
    """The collections read since a mark, in order."""
    return [c.collection for c in commands[since:] if c.name == "find"]
