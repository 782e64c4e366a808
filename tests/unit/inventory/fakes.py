"""An in-memory stand-in for the few store operations the ledger and the stock book use: ``_id`` reads,
inserts refused by unique indexes, and replacements."""

from __future__ import annotations

import copy
from typing import Any

from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, DuplicateKeyError


class Collection:
    def __init__(self, unique: tuple[str, ...] = ()) -> None:
        self.docs: dict[Any, dict[str, Any]] = {}
        self.unique = unique
        self.searches = 0
        """Calls of ``find``: reads of the whole collection on the real store."""

    def find(self, where: dict[str, Any]) -> Cursor:
        self.searches += 1
        return Cursor([copy.deepcopy(d) for d in self.docs.values() if all(_matches(d.get(k), v) for k, v in where.items())])

    async def find_one(self, where: dict[str, Any]) -> dict[str, Any] | None:
        assert list(where) == ["_id"], f"only _id lookups, not {where}"
        return copy.deepcopy(self.docs.get(where["_id"]))

    async def insert_one(self, document: dict[str, Any]) -> None:
        taken = any(document.get(f) is not None and d.get(f) == document.get(f) for f in self.unique for d in self.docs.values())
        if document["_id"] in self.docs or taken:
            raise DuplicateKeyError("E11000 duplicate key")
        self.docs[document["_id"]] = copy.deepcopy(document)

    async def insert_many(self, documents: list[dict[str, Any]], ordered: bool = True) -> None:
        errors = []
        for index, document in enumerate(documents):
            try:
                await self.insert_one(document)
            except DuplicateKeyError:
                errors.append({"index": index, "code": 11000})
        if errors:
            raise BulkWriteError({"writeErrors": errors, "nInserted": len(documents) - len(errors)})

    async def replace_one(self, where: dict[str, Any], document: dict[str, Any], upsert: bool = False) -> None:
        assert list(where) == ["_id"]
        self.docs[where["_id"]] = copy.deepcopy({**document, "_id": where["_id"]})

    async def bulk_write(self, requests: list[ReplaceOne], ordered: bool = True) -> None:
        for request in requests:
            await self.replace_one(request._filter, request._doc, request._upsert)


class Cursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def sort(self, key: str, direction: int = 1) -> Cursor:
        self.docs.sort(key=lambda d: d[key], reverse=direction < 0)
        return self

    async def to_list(self) -> list[dict[str, Any]]:
        return self.docs


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        tests = {"$lt": lambda v: value < v, "$ne": lambda v: value != v}
        return all(tests[op](v) for op, v in wanted.items())
    return value == wanted


class Database:
    def __init__(self) -> None:
        self.collections = {"ledger": Collection(unique=("cause", "key"))}

    def __getitem__(self, name: str) -> Collection:
        return self.collections.setdefault(name, Collection())
