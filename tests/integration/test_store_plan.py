"""A lookup by `_id` uses the `_id` index, on FerretDB (our patched SQLite build) and on MongoDB alike.

Unpatched FerretDB v1 filters on an expression its `_id` index does not match, so SQLite scans the whole
table for every `{_id: x}` find, update and delete (see FERRETDB_ID_PATCH in infra/local.py).
"""

from __future__ import annotations

from shared.runtime.store import connect, database


def id_index_stages(node) -> list[str]:
    """MongoDB: the stages in a winning plan that look a document up through the `_id` index."""
    if isinstance(node, list):
        return [stage for child in node for stage in id_index_stages(child)]
    if not isinstance(node, dict):
        return []
    stage = node.get("stage")
    own = [stage] if stage in ("IDHACK", "EXPRESS_IXSCAN") or (stage == "IXSCAN" and node.get("keyPattern") == {"_id": 1}) else []
    return own + [found for child in node.values() for found in id_index_stages(child)]


async def test_a_find_by_id_searches_the_id_index_instead_of_scanning(settings):
    client = connect(settings.mongodb_url.get_secret_value(), "test-store-plan")
    try:
        collection = database(client, f"{settings.database_prefix}plan")["docs"]
        await collection.insert_many([{"_id": f"doc-{n:05d}", "n": n} for n in range(3000)])

        assert await collection.find_one({"_id": "doc-01234"}) == {"_id": "doc-01234", "n": 1234}
        explained = await collection.database.command("explain", {"find": "docs", "filter": {"_id": "doc-01234"}}, verbosity="queryPlanner")
        is_ferretdb = "ferretdbVersion" in await client.admin.command("buildInfo")
    finally:
        await client.close()

    if is_ferretdb:  # the SQLite plan, e.g. ["id=3 parent=0 notused=0 detail=SEARCH docs_… USING INDEX docs_…__id_ (<expr>=?)"]
        plan = explained["queryPlanner"]["Plan"]
        assert any("detail=SEARCH" in line and "__id_ (" in line for line in plan), f"the _id lookup does not use the _id index: {plan}"
    else:
        winning = explained["queryPlanner"]["winningPlan"]
        assert id_index_stages(winning), f"the _id lookup does not use the _id index: {winning}"
