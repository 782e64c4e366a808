"""A lookup by `_id` uses the `_id` index, on FerretDB (our patched SQLite build) and on MongoDB alike.

Unpatched FerretDB v1 filters on an expression its `_id` index does not match, so SQLite scans the whole
table for every `{_id: x}` find, update and delete (see FERRETDB_ID_PATCH in infra/local.py), and hands
SQLite no filter at all unless it is exactly `{_id: x}`: several ids at once (`$in`) and an `_id` with a
version to compare were scans too (FERRETDB_ID_FILTER).
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.runtime.store import connect, database

LOOKUPS = {
    "one id": ({"_id": "doc-01234"}, [{"_id": "doc-01234", "n": 1234}]),
    "several ids": ({"_id": {"$in": ["doc-00007", "doc-02999", "doc-01234", "doc-absent"]}}, [{"_id": f"doc-{n:05d}", "n": n} for n in (7, 1234, 2999)]),
    "an id with another field": ({"_id": "doc-01234", "n": 1234}, [{"_id": "doc-01234", "n": 1234}]),
    "an id whose other field differs": ({"_id": "doc-01234", "n": 1}, []),
}


def id_index_stages(node) -> list[str]:
    """MongoDB: the stages in a winning plan that look a document up through the `_id` index."""
    if isinstance(node, list):
        return [stage for child in node for stage in id_index_stages(child)]
    if not isinstance(node, dict):
        return []
    stage = node.get("stage")
    own = [stage] if stage in ("IDHACK", "EXPRESS_IXSCAN") or (stage == "IXSCAN" and node.get("keyPattern") == {"_id": 1}) else []
    return own + [found for child in node.values() for found in id_index_stages(child)]


@pytest.mark.parametrize("lookup", LOOKUPS)
async def test_a_find_by_id_searches_the_id_index_instead_of_scanning(settings, lookup: str):
    where, expected = LOOKUPS[lookup]
    client = connect(settings.mongodb_url.get_secret_value(), "test-store-plan")
    try:
        collection = database(client, f"{settings.database_prefix}plan")["docs"]
        await collection.insert_many([{"_id": f"doc-{n:05d}", "n": n} for n in range(3000)])

        assert sorted(await collection.find(where).to_list(), key=_id) == expected, "the documents the filter matches, no more"
        explained = await collection.database.command("explain", {"find": "docs", "filter": where}, verbosity="queryPlanner")
        is_ferretdb = "ferretdbVersion" in await client.admin.command("buildInfo")
    finally:
        await client.close()

    if is_ferretdb:  # the SQLite plan, e.g. ["id=3 parent=0 notused=0 detail=SEARCH docs_… USING INDEX docs_…__id_ (<expr>=?)"]
        plan = explained["queryPlanner"]["Plan"]
        assert any("detail=SEARCH" in line and "__id_ (" in line for line in plan), f"the _id lookup does not use the _id index: {plan}"
        assert explained["filterPushdown"], "SQLite was handed the _id condition"
    else:
        winning = explained["queryPlanner"]["winningPlan"]
        assert id_index_stages(winning), f"the _id lookup does not use the _id index: {winning}"


async def test_an_update_with_a_version_applies_only_at_that_version(settings):
    """The compare-and-set the services build on: `{_id, v}` updates one document, and only while v holds."""
    client = connect(settings.mongodb_url.get_secret_value(), "test-store-plan")
    try:
        collection = database(client, f"{settings.database_prefix}plan")["versioned"]
        await collection.insert_many([{"_id": f"doc-{n:05d}", "v": 1} for n in range(200)])
        first = await collection.update_one({"_id": "doc-00100", "v": 1}, {"$set": {"v": 2}})
        stale = await collection.update_one({"_id": "doc-00100", "v": 1}, {"$set": {"v": 3}})
        versions = {doc["_id"]: doc["v"] async for doc in collection.find({"v": {"$ne": 1}})}
    finally:
        await client.close()
    assert (first.modified_count, stale.modified_count) == (1, 0)
    assert versions == {"doc-00100": 2}


def _id(doc: dict[str, Any]) -> str:
    return str(doc["_id"])
