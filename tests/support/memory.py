"""An in-memory stand-in for the part of PyMongo's async API the services use, for the fast handler tier.

Not a MongoDB emulator: ``_id`` look-ups, a few comparison operators in ``find`` (the reads that serve
operator views, never the hot path), inserts refused by unique indexes, replacements, ``$set``/``$unset``
updates and the bulk forms of those. Every write is logged in ``MemoryDatabase.writes`` so a test can see
which writes a handler made itself (its claims on shared resources) and which the runtime applied from
its Effects.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError


@dataclass(frozen=True)
class Written:
    """One write as the store would have received it."""

    collection: str
    op: str
    id: Any


class MemoryDatabase:
    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.collections: dict[str, MemoryCollection] = {}
        self.writes: list[Written] = []

    def __getitem__(self, name: str) -> MemoryCollection:
        if name not in self.collections:
            self.collections[name] = MemoryCollection(self, name)
        return self.collections[name]

    def __getattr__(self, name: str) -> MemoryCollection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def get_collection(self, name: str, **_: Any) -> MemoryCollection:
        return self[name]

    async def command(self, command: str | dict[str, Any], **_: Any) -> dict[str, Any]:
        return {"ok": 1}

    def documents(self, collection: str) -> dict[Any, dict[str, Any]]:
        """What a collection holds now, by ``_id`` (copies)."""
        return copy.deepcopy(self[collection].docs)


class MemoryCollection:
    def __init__(self, database: MemoryDatabase, name: str) -> None:
        self.database = database
        self.name = name
        self.docs: dict[Any, dict[str, Any]] = {}
        self.unique: list[tuple[str, ...]] = []
        self.searches = 0
        """Calls of ``find`` on anything but ``_id``: each reads the whole collection on the embedded store
        (never on a hot path)."""
        self.reads = 0
        """Calls of ``find_one``, and of ``find`` by ``_id`` (one or ``$in`` several: the index serves both)."""

    def _log(self, op: str, id: Any) -> None:
        self.database.writes.append(Written(self.name, op, id))

    async def create_index(self, keys: Any, *, unique: bool = False, **_: Any) -> str:
        fields = (keys,) if isinstance(keys, str) else tuple(k for k, _ in keys)
        if unique and fields not in self.unique:
            self.unique.append(fields)
        return "_".join(fields)

    async def find_one(self, where: dict[str, Any] | None = None, projection: Any = None, **_: Any) -> dict[str, Any] | None:
        where = where or {}
        self.reads += 1
        if list(where) == ["_id"] and not isinstance(where["_id"], dict):
            found = self.docs.get(where["_id"])
            return copy.deepcopy(found) if found is not None else None
        for document in self.docs.values():
            if _matches(document, where):
                return copy.deepcopy(document)
        return None

    def find(self, where: dict[str, Any] | None = None, projection: Any = None, **_: Any) -> MemoryCursor:
        if set(where or {}) == {"_id"}:
            self.reads += 1
        else:
            self.searches += 1
        return MemoryCursor([copy.deepcopy(d) for d in self.docs.values() if _matches(d, where or {})])

    async def count_documents(self, where: dict[str, Any], **_: Any) -> int:
        return sum(1 for d in self.docs.values() if _matches(d, where))

    def _taken(self, document: dict[str, Any]) -> bool:
        if document["_id"] in self.docs:
            return True
        for fields in self.unique:
            wanted = tuple(_get(document, f) for f in fields)
            if any(w is not None for w in wanted) and any(tuple(_get(d, f) for f in fields) == wanted for d in self.docs.values()):
                return True
        return False

    async def insert_one(self, document: dict[str, Any], **_: Any) -> None:
        if "_id" not in document:
            raise ValueError("the memory store needs an _id")
        if self._taken(document):
            raise DuplicateKeyError("E11000 duplicate key")
        self.docs[document["_id"]] = copy.deepcopy(document)
        self._log("insert", document["_id"])

    async def insert_many(self, documents: Iterable[dict[str, Any]], ordered: bool = True, **_: Any) -> None:
        errors, count = [], 0
        for index, document in enumerate(documents):
            count += 1
            try:
                await self.insert_one(document)
            except DuplicateKeyError:
                errors.append({"index": index, "code": 11000})
                if ordered:
                    break
        if errors:
            raise BulkWriteError({"writeErrors": errors, "nInserted": count - len(errors)})

    async def replace_one(self, where: dict[str, Any], document: dict[str, Any], upsert: bool = False, **_: Any) -> None:
        id = self._target(where, upsert)
        if id is not None:
            self.docs[id] = copy.deepcopy({**document, "_id": id})
            self._log("replace", id)

    async def update_one(self, where: dict[str, Any], update: dict[str, Any], upsert: bool = False, **_: Any) -> None:
        id = self._target(where, upsert)
        if id is None:
            return
        document = self.docs.get(id, {"_id": id})
        for field, value in update.get("$set", {}).items():
            _put(document, field, copy.deepcopy(value))
        for field in update.get("$unset", {}):
            _drop(document, field)
        for field, amount in update.get("$inc", {}).items():
            _put(document, field, (_get(document, field) or 0) + amount)
        unknown = set(update) - {"$set", "$unset", "$inc"}
        if unknown:
            raise NotImplementedError(f"the memory store does not do {sorted(unknown)}")
        self.docs[id] = document
        self._log("update", id)

    async def delete_one(self, where: dict[str, Any], **_: Any) -> None:
        for id, document in list(self.docs.items()):
            if _matches(document, where):
                del self.docs[id]
                self._log("delete", id)
                return

    async def delete_many(self, where: dict[str, Any], **_: Any) -> None:
        for id, document in list(self.docs.items()):
            if _matches(document, where):
                del self.docs[id]
                self._log("delete", id)

    async def bulk_write(self, requests: list[Any], ordered: bool = True, **_: Any) -> None:
        errors = []
        for index, request in enumerate(requests):
            try:
                match request:
                    case InsertOne():
                        await self.insert_one(request._doc)
                    case ReplaceOne():
                        await self.replace_one(request._filter, request._doc, request._upsert)
                    case UpdateOne():
                        await self.update_one(request._filter, request._doc, request._upsert)
                    case DeleteOne():
                        await self.delete_one(request._filter)
                    case _:
                        raise NotImplementedError(f"the memory store does not do {request!r}")
            except DuplicateKeyError:
                errors.append({"index": index, "code": 11000})
                if ordered:
                    break
        if errors:
            raise BulkWriteError({"writeErrors": errors})

    def _target(self, where: dict[str, Any], upsert: bool) -> Any:
        if list(where) == ["_id"] and not isinstance(where["_id"], dict):
            return where["_id"] if where["_id"] in self.docs or upsert else None
        for id, document in self.docs.items():
            if _matches(document, where):
                return id
        if upsert:
            raise NotImplementedError("the memory store upserts by _id only")
        return None


class MemoryCursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def sort(self, key: str | list[tuple[str, int]], direction: int = 1) -> MemoryCursor:
        keys = [(key, direction)] if isinstance(key, str) else list(key)
        for field, order in reversed(keys):
            self.docs.sort(key=lambda d, f=field: _sortable(_get(d, f)), reverse=order < 0)
        return self

    def limit(self, count: int) -> MemoryCursor:
        if count:
            self.docs = self.docs[:count]
        return self

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        return self.docs if length is None else self.docs[:length]

    def __aiter__(self) -> MemoryCursor:
        self._at = 0
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._at >= len(self.docs):
            raise StopAsyncIteration
        self._at += 1
        return self.docs[self._at - 1]


def _get(document: dict[str, Any], field: str) -> Any:
    value: Any = document
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _put(document: dict[str, Any], field: str, value: Any) -> None:
    *path, last = field.split(".")
    for part in path:
        document = document.setdefault(part, {})
    document[last] = value


def _drop(document: dict[str, Any], field: str) -> None:
    *path, last = field.split(".")
    parent: Any = document
    for part in path:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if isinstance(parent, dict):
        parent.pop(last, None)


def _sortable(value: Any) -> tuple[bool, Any]:
    return (value is not None, value)


_OPERATORS = {
    "$lt": lambda value, wanted: value is not None and value < wanted,
    "$lte": lambda value, wanted: value is not None and value <= wanted,
    "$gt": lambda value, wanted: value is not None and value > wanted,
    "$gte": lambda value, wanted: value is not None and value >= wanted,
    "$ne": lambda value, wanted: value != wanted,
    "$in": lambda value, wanted: value in wanted,
    "$nin": lambda value, wanted: value not in wanted,
    "$exists": lambda value, wanted: (value is not None) == bool(wanted),
}


def _matches(document: dict[str, Any], where: dict[str, Any]) -> bool:
    for field, wanted in where.items():
        value = _get(document, field)
        if isinstance(wanted, dict) and wanted and all(k.startswith("$") for k in wanted):
            for op, operand in wanted.items():
                if op not in _OPERATORS:
                    raise NotImplementedError(f"the memory store does not do {op}")
                if not _OPERATORS[op](value, operand):
                    return False
        elif value != wanted:
            return False
    return True
